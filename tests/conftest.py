import os

import pytest
import torch

from nncompare.data import DatasetMeta


# a checkpoint at every epoch end, in this process and every worker it spawns: the resume and kill tests
# stop runs at chosen epochs (the product's default checkpoints every 10 s, train/checkpoint.py)
os.environ["NNCOMPARE_CHECKPOINT_SECONDS"] = "0"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Generated data sets go to a temporary cache, not the user's ~/.cache, for every test and subprocess."""
    old = os.environ.get("NNCOMPARE_CACHE")
    os.environ["NNCOMPARE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("NNCOMPARE_CACHE", None)
    else:
        os.environ["NNCOMPARE_CACHE"] = old


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def series_meta(length=12, channels=2, n_classes=3):
    return DatasetMeta(name="toy-series", kind="series", task="classify", input_shape=(length, channels), n_classes=n_classes)


def image_meta(channels=1, height=6, width=5, n_classes=4):
    return DatasetMeta(name="toy-image", kind="image", task="classify", input_shape=(channels, height, width), n_classes=n_classes)


# -- figures the reliability tests measure (kill points, malformed inputs), shown after the run ----------
_REPORT = pytest.StashKey[list]()


@pytest.fixture
def report_line(request):
    """Append a line to the "reliability figures" section printed at the end of the test session."""
    lines = request.config.stash.setdefault(_REPORT, [])
    return lines.append


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = config.stash.get(_REPORT, [])
    if lines:
        terminalreporter.section("reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
