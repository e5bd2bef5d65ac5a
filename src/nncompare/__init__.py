"""nncompare: feed-forward, convolutional or recurrent: which network fits this data, and why?

Python API (the CLI is a thin shell over it):

    import nncompare
    result = nncompare.compare("mnist1d", models=["mlp", "cnn", "gru"], seeds=3)
    print(result.table())
    df = result.dataframe()                      # the table as a pandas DataFrame
    run = nncompare.load_run(result.folder / "cnn-seed0")
    run.predict(x)                               # class names for new inputs
    nncompare.label_next(run, "pool/", k=50)     # which unlabelled inputs to label next (active learning)

    clf = nncompare.NeuralClassifier("cnn", epochs=20).fit(X, y)   # scikit-learn estimator
"""

from ._version import __version__
from .active import add_labels, label_next
from .api import train
from .errors import UserError
from .results import Comparison
from .runs.grid import compare
from .sampling import generate
from .store import load_run

__all__ = ["UserError", "compare", "Comparison", "train", "load_run", "generate", "label_next", "add_labels", "NeuralClassifier", "NeuralRegressor", "__version__"]


def __getattr__(name):
    # the scikit-learn estimators load scikit-learn; only when asked for
    if name in ("NeuralClassifier", "NeuralRegressor"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module 'nncompare' has no attribute {name!r}")
