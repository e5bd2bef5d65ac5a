"""The scikit-learn estimators: sklearn's own checks, clone/params, cross-validation, pipelines,
determinism, layouts, pickling with safetensors weights."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

import nncompare
from nncompare import NeuralClassifier, NeuralRegressor, UserError

# sklearn's full estimator checks for the classifier (55 on scikit-learn 1.9), on a small budget.
# None is skipped by us or expected to fail; sklearn itself skips check_array_api_input (it needs
# SCIPY_ARRAY_API=1 and an array-API library; the estimators convert to NumPy/torch anyway).
# The checks run on an estimator without extra model hyperparameters: one given, say, `width=32`
# stores it as an attribute named by **kwargs, which check_no_attributes_set_in_init cannot find in
# the __init__ signature (get_params/clone do see it: test_model_hyperparameters_...).
@parametrize_with_checks([NeuralClassifier("mlp", epochs=1)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# The regressor passes the full list as well (53 checks, measured by hand with check_estimator; it
# needs 5 epochs for check_regressors_train's R^2 > 0.5); the suite runs the ones that matter most,
# to keep its time down: every fit also measures inference speed for 0.2 s, as in a comparison.
@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_regressors_train,
        estimator_checks.check_regressor_multioutput,
        estimator_checks.check_estimators_pickle,
        estimator_checks.check_fit_idempotent,
        estimator_checks.check_n_features_in_after_fitting,
        estimator_checks.check_regressors_int,
        estimator_checks.check_estimators_unfitted,
    ],
    ids=lambda check: check.__name__,
)
def test_sklearn_checks_on_the_regressor(check):
    check("NeuralRegressor", NeuralRegressor("mlp", epochs=5))


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
    return d.images[:600].astype(np.float32) / 16.0, names[d.target[:600]]  # (N, 8, 8) images, string labels


def test_model_hyperparameters_are_params_that_clone_and_set_params_see():
    clf = NeuralClassifier("cnn", epochs=3, channels=8)
    params = clf.get_params()
    assert params["channels"] == 8 and params["arch"] == "cnn" and params["epochs"] == 3
    twin = clone(clf)
    assert twin.get_params() == params and twin is not clf
    clf.set_params(depth=2, lr=0.01)  # depth: a CNN hyperparameter not given before
    assert clf.get_params()["depth"] == 2 and clf.lr == 0.01
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(hidden_size=5)  # the GRU's, not the CNN's
    X = np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32)
    y = np.arange(40) % 2
    clf.fit(X, y)
    convs = [m for m in clf.model_.modules() if m.__class__.__name__ == "Conv1d"]
    assert len(convs) == 2 and convs[0].out_channels == 8


def test_cross_val_score_and_string_labels_on_digit_images(digits):
    X, y = digits
    clf = NeuralClassifier("cnn", epochs=5, batch_size=32, input_kind="image", norm="batch")
    scores = cross_val_score(clf, X, y, cv=3)
    assert scores.shape == (3,)
    assert scores.min() > 0.6, scores  # 10 classes: chance is 0.1 (measured 0.83, 0.945, 0.83)
    fitted = clone(clf).fit(X[:400], y[:400])
    assert set(fitted.classes_) == set(y) and fitted.predict(X[400:]).dtype == y.dtype
    assert any(m.__class__.__name__ == "BatchNorm2d" for m in fitted.model_.modules())  # norm="batch" reached the model


def test_pipeline_with_scaler(digits):
    X, y = digits
    flat = X.reshape(len(X), -1)  # (N, 64): a table, read as 64-step series
    pipe = make_pipeline(StandardScaler(), NeuralClassifier("mlp", epochs=10))
    pipe.fit(flat[:450], y[:450])
    assert pipe.score(flat[450:], y[450:]) > 0.8
    proba = pipe.predict_proba(flat[450:])
    assert proba.shape == (150, 10) and np.allclose(proba.sum(1), 1)
    assert (pipe.classes_[proba.argmax(1)] == pipe.predict(flat[450:])).all()


def test_same_seed_same_model_other_seed_other_model(digits):
    X, y = digits
    a = NeuralClassifier("gru", epochs=2, input_kind="image", seed=3).fit(X[:200], y[:200]).predict_proba(X[200:260])
    b = NeuralClassifier("gru", epochs=2, input_kind="image", seed=3).fit(X[:200], y[:200]).predict_proba(X[200:260])
    c = NeuralClassifier("gru", epochs=2, input_kind="image", seed=4).fit(X[:200], y[:200]).predict_proba(X[200:260])
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_layouts_and_shape_errors():
    rng = np.random.default_rng(0)
    series = rng.normal(size=(30, 12, 3)).astype(np.float32)  # (N, L, C)
    y = rng.integers(0, 3, 30)
    clf = NeuralClassifier("tcn", epochs=1).fit(series, y)
    assert clf.input_shape_ == (12, 3) and clf.meta_.kind == "series"
    assert clf.predict_proba(series[:5]).shape == (5, 3)
    with pytest.raises(UserError, match=r"fitted on \(12, 3\)") as e:
        clf.predict(rng.normal(size=(4, 12, 2)))
    assert isinstance(e.value, ValueError)  # scikit-learn's tools catch ValueError
    images = rng.normal(size=(30, 2, 6, 5))  # (N, C, H, W)
    clf = NeuralClassifier("cnn", epochs=1).fit(images, y)
    assert clf.meta_.kind == "image" and clf.input_shape_ == (2, 6, 5)
    with pytest.raises(UserError, match="unknown model 'cnnn'"):
        NeuralClassifier("cnnn").fit(images, y)
    with pytest.raises(UserError, match="validation_fraction"):
        NeuralClassifier("cnn", validation_fraction=1.5).fit(images, y)
    with pytest.raises(ValueError, match="2 classes"):
        NeuralClassifier("cnn").fit(images, np.zeros(30))


def test_pickle_round_trip_keeps_predictions_and_holds_safetensors_bytes(digits):
    X, y = digits
    clf = NeuralClassifier("lstm", epochs=1, input_kind="image", hidden_size=8).fit(X[:100], y[:100])
    state = clf.__getstate__()
    assert isinstance(state["model_"], bytes) and state["model_"][8:9] == b"{"  # safetensors: 8-byte length, then a JSON header
    back = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(back.predict_proba(X[100:150]), clf.predict_proba(X[100:150]))
    assert back.get_params() == clf.get_params()


def test_regressor_multi_output_and_targets_in_their_units():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    w = rng.normal(size=(8, 2))
    y = X @ w * 100 + 1000  # large units: standardised for training, mapped back for predictions
    reg = NeuralRegressor("mlp", epochs=40, dropout=0.0).fit(X[:240], y[:240])
    pred = reg.predict(X[240:])
    assert pred.shape == (60, 2)
    assert reg.score(X[240:], y[240:]) > 0.8
    assert abs(pred.mean() - y[240:].mean()) < 0.2 * y[240:].std()
    one = NeuralRegressor("mlp", epochs=5).fit(X, y[:, 0])
    assert one.predict(X[:7]).shape == (7,)


def test_estimators_are_exported_lazily():
    assert nncompare.NeuralClassifier is NeuralClassifier and nncompare.NeuralRegressor is NeuralRegressor
    with pytest.raises(AttributeError):
        nncompare.NoSuchThing


def test_validation_fraction_zero_trains_on_each_example_once(digits, monkeypatch):
    """validation_fraction=0: the small-set protocol on every example, whatever their number: one
    training split of all of them and an empty validation split (the protocol trains on the two
    together, so a copy there would be seen twice an epoch), the lowest training loss kept."""
    import importlib

    train_module = importlib.import_module("nncompare.train")  # the package; nncompare.train is also the function
    seen = {}
    real_fit = train_module.fit

    def spy(model, dataset, config, **kw):
        seen.update(train=len(dataset.train), val=len(dataset.val), validation=config.validation)
        return real_fit(model, dataset, config, **kw)

    monkeypatch.setattr(train_module, "fit", spy)
    X, y = digits  # 600 examples: twice that once reached the split protocol, validated on the training data
    clf = NeuralClassifier("mlp", epochs=3, validation_fraction=0).fit(X, y)
    assert seen == {"train": 600, "val": 0, "validation": "none"}
    assert len(clf.history_) == 3 and all("lr" in row and "val_loss" not in row for row in clf.history_)
    assert clf.score(X, y) > 0.5
    # a per-step schedule needs early stopping, so there the training examples are also the validation ones
    NeuralClassifier("mlp", epochs=2, validation_fraction=0, schedule="onecycle").fit(X, y)
    assert seen == {"train": 600, "val": 600, "validation": "auto"}
    # and a held-out fraction still holds out
    NeuralClassifier("mlp", epochs=2, validation_fraction=0.2).fit(X, y)
    assert seen["train"] + seen["val"] == 600 and seen["val"] == 120
