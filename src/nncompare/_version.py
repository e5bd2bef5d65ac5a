"""The version of nncompare (one place; nncompare/__init__.py and run configs read it)."""

__version__ = "0.1.0"
