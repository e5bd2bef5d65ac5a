"""nncompare: feed-forward, convolutional or recurrent: which network fits this data, and why?

Python API (the CLI is a thin shell over it):

    import nncompare
    result = nncompare.compare("mnist1d", models=["mlp", "cnn", "gru"], seeds=3)
    print(result.table())
"""

__version__ = "0.1.0"

from .errors import UserError  # noqa: E402
from .compare import Comparison, compare  # noqa: E402
from .api import train  # noqa: E402
from .store import load_run  # noqa: E402
from .sampling import generate  # noqa: E402

__all__ = ["UserError", "compare", "Comparison", "train", "load_run", "generate", "__version__"]
