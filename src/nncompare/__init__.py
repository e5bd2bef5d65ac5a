"""nncompare: feed-forward, convolutional or recurrent: which network fits this data, and why?

Python API (the CLI is a thin shell over it):

    import nncompare
    result = nncompare.compare("mnist1d", models=["mlp", "cnn", "gru"], seeds=3)
    print(result.table())
    df = result.dataframe()                      # the table as a pandas DataFrame
    run = nncompare.load_run(result.folder / "cnn-seed0")
    run.predict(x)                               # class names for new inputs

    clf = nncompare.NeuralClassifier("cnn", epochs=20).fit(X, y)   # scikit-learn estimator
"""

__version__ = "0.1.0"

from .errors import UserError  # noqa: E402
from .compare import Comparison, compare  # noqa: E402
from .api import train  # noqa: E402
from .store import load_run  # noqa: E402
from .sampling import generate  # noqa: E402

__all__ = ["UserError", "compare", "Comparison", "train", "load_run", "generate", "NeuralClassifier", "NeuralRegressor", "__version__"]


def __getattr__(name):
    # the scikit-learn estimators load scikit-learn; only when asked for
    if name in ("NeuralClassifier", "NeuralRegressor"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'nncompare' has no attribute {name!r}")
