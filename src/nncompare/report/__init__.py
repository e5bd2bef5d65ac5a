"""The comparison report: reads stored results only, never trains (DESIGN.md: report/).

`build_report(folder)` writes report.html (self-contained) and report.md into the comparison folder.
"""

from __future__ import annotations

from pathlib import Path

from ..utils import atomic_write_text
from .collect import analyse_comparison, read_comparison
from .html import SECTIONS, render


def build_report(folder: str | Path, progress=None) -> tuple[Path, Path]:
    """Analyse the stored runs of a comparison and write its report; returns (report.html, report.md)."""
    comparison = read_comparison(folder)
    analysed = analyse_comparison(comparison, progress)
    page, markdown = render(comparison, analysed)
    folder = Path(folder)
    atomic_write_text(folder / "report.html", page)
    atomic_write_text(folder / "report.md", markdown)
    return folder / "report.html", folder / "report.md"


__all__ = ["build_report", "SECTIONS"]
