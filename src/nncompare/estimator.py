"""scikit-learn estimators around nncompare's models: `NeuralClassifier` and `NeuralRegressor`.

    from . import NeuralClassifier
    from sklearn.model_selection import cross_val_score
    scores = cross_val_score(NeuralClassifier("cnn", epochs=20), X, y, cv=5)

They follow scikit-learn's contract: `__init__` only stores its arguments, `fit` returns `self`, what
is learned ends in `_`, and `get_params` / `set_params` / `clone` see every argument, the model's own
hyperparameters included (`NeuralClassifier("cnn", channels=64)`; `set_params` accepts any
hyperparameter of the chosen architecture, so a grid search can tune it).

Training is nncompare's own loop (`train/loop.py`, the same rules as `nncompare compare`): Adam, early
stopping on a stratified validation split of the training data (`validation_fraction`, 10% by
default) with the best weights restored, the architecture's recommended learning rate unless `lr` is
given, and the same numbers for the same `seed` on CPU.

Inputs are NumPy arrays (or anything array-like): (N, L) or (N, L, C) series, (N, C, H, W) images,
(N, H, W) grey images with `input_kind="image"`. A 2-D table (N, D) is read as N series of D steps,
so the MLP sees a plain feature vector. Labels may be of any type (`classes_`, as scikit-learn's
LabelEncoder orders them).

A fitted estimator pickles (scikit-learn and joblib need that) with its weights stored as
safetensors bytes, never as pickled tensors.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from .errors import UserError

INPUT_KINDS = ("auto", "series", "image")

# the TrainConfig fields an estimator takes, each as the keyword its field names (train/config.py:
# max_epochs is epochs=), with the field's default; `validation_fraction` stands for the validation
# protocol; not offered: max_seconds, and compare's strategies (augment, labels, semi, refit)
TRAIN_FIELDS = ("max_epochs", "lr", "batch_size", "patience", "weight_decay", "clip", "schedule", "seed", "device")


class EstimatorInputError(UserError, ValueError):
    """Bad data or arguments given to an estimator: a `nncompare.UserError` that is also the
    ValueError scikit-learn's tools expect."""


class _NeuralEstimator(BaseEstimator):
    """The shared part: arguments, data layout, training, pickling. Subclasses set the task."""

    _task = "classify"

    def __init__(
        self,
        arch: str = "cnn",
        *,
        epochs: int | None = None,
        lr: float | None = None,
        batch_size: int = 128,
        patience: int | None = None,
        validation_fraction: float = 0.1,
        weight_decay: float = 0.0,
        clip: float = 1.0,
        schedule: str = "constant",
        input_kind: str = "auto",
        seed: int = 0,
        device: str = "cpu",
        **model_args,
    ):
        self.arch = arch
        self.epochs = epochs  # most epochs; None: nncompare's default budget (40, more on small data)
        self.lr = lr  # Adam step size; None: the architecture's recommended rate
        self.batch_size = batch_size
        self.patience = patience  # early stopping on validation loss; None: nncompare's default
        self.validation_fraction = validation_fraction  # held out for early stopping; 0: train on all, keep the lowest training loss
        self.weight_decay = weight_decay
        self.clip = clip
        self.schedule = schedule
        self.input_kind = input_kind  # "auto": 2-D and 3-D arrays are series, 4-D images
        self.seed = seed
        self.device = device
        for name, value in model_args.items():  # the architecture's hyperparameters, e.g. channels=64
            setattr(self, name, value)
        self._model_arg_names = tuple(sorted(model_args))

    # -- parameters -------------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        params = super().get_params(deep=deep)
        for name in getattr(self, "_model_arg_names", ()):
            params[name] = getattr(self, name)
        return params

    def set_params(self, **params):
        """Set estimator arguments, or any hyperparameter of the architecture (see `nncompare models`)."""
        from .models import get_model_info

        arch = params.get("arch", self.arch)
        try:
            hyper = get_model_info(arch).hyperparameters()
        except (UserError, TypeError):  # an unknown architecture: fit says so, set_params never raises
            hyper = {}
        new = [k for k in params if k in hyper and k not in self._model_arg_names and k not in self._get_param_names()]
        for name in new:
            setattr(self, name, params[name])
        self._model_arg_names = tuple(sorted((*self._model_arg_names, *new)))
        return super().set_params(**params)

    def _model_args(self) -> dict:
        return {name: getattr(self, name) for name in self._model_arg_names}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # series (N, L, C); images (N, C, H, W) are 4-D
        return tags

    # -- data -------------------------------------------------------------------------------------
    def _kind(self, X: np.ndarray) -> str:
        if self.input_kind not in INPUT_KINDS:
            raise EstimatorInputError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}")
        if self.input_kind == "image" or (self.input_kind == "auto" and X.ndim == 4):
            if X.ndim not in (3, 4):
                raise EstimatorInputError(f"images must be (N, C, H, W) or (N, H, W), got an array of shape {X.shape}")
            return "image"
        if X.ndim not in (2, 3):
            raise EstimatorInputError(f"series must be (N, L) or (N, L, C), got an array of shape {X.shape}; for images pass (N, C, H, W)")
        return "series"

    def _layout(self, X: np.ndarray) -> np.ndarray:
        """X in the models' natural layout: series (N, L, C), images (N, C, H, W); float32."""
        kind = self._kind(X)
        if kind == "image" and X.ndim == 3:
            X = X[:, None]  # (N, H, W) -> (N, C=1, H, W)
        elif kind == "series" and X.ndim == 2:
            X = X[:, :, None]  # (N, L) -> (N, L, C=1)
        return np.asarray(X, dtype=np.float32)

    def _validate(self, X, y=None, reset: bool = True):
        from sklearn.utils.validation import validate_data

        if y is None and not reset:
            X = validate_data(self, X, reset=False, allow_nd=True, dtype=[np.float32, np.float64])
        else:
            X, y = validate_data(self, X, y, reset=reset, allow_nd=True, dtype=[np.float32, np.float64], multi_output=self._task == "regress", y_numeric=self._task == "regress")
        X = self._layout(X)
        if not reset and tuple(X.shape[1:]) != tuple(self.input_shape_):
            raise EstimatorInputError(f"X has examples of shape {tuple(X.shape[1:])}, but {type(self).__name__} was fitted on {tuple(self.input_shape_)}")
        return X, y

    def _train_config(self):
        from .runs.runner import config_for_model
        from .train import TrainConfig
        from .train.config import option_name

        if not (isinstance(self.validation_fraction, (int, float)) and 0 <= self.validation_fraction < 1):
            raise EstimatorInputError(f"validation_fraction must be at least 0 and below 1, got {self.validation_fraction!r}")
        config = TrainConfig(**{name: getattr(self, option_name(name)) for name in TRAIN_FIELDS})
        try:
            return config_for_model(config, self.arch).validate()
        except UserError as e:
            raise EstimatorInputError(str(e)) from None

    def _fit_arrays(self, X: np.ndarray, targets: np.ndarray, meta_fields: dict):
        """Split, build, train; sets model_, meta_, history_, best_epoch_."""
        from dataclasses import replace

        from .data.base import Dataset, DatasetMeta, make_split, stratified_split
        from .models import create_model
        from .train import fit
        from .utils import set_seed

        config = self._train_config()
        kind = "image" if X.ndim == 4 else "series"
        meta = DatasetMeta(name="arrays", kind=kind, task=self._task, input_shape=tuple(X.shape[1:]), **meta_fields)
        if self.validation_fraction > 0 and len(X) >= 2:
            strata = targets if self._task == "classify" else np.zeros(len(X), dtype=np.int64)
            train_idx, val_idx = stratified_split(strata, self.validation_fraction, self.seed)
        elif config.schedule == "constant":
            # no held-out data: the small-set protocol on every example, however many (train/epochs.py
            # NoValidation: the lowest training loss kept); an empty validation split, since that
            # protocol trains on train + validation together and would see each example twice
            train_idx, val_idx = np.arange(len(X)), np.arange(0)
            config = replace(config, validation="none")
        else:  # a per-step schedule needs early stopping: on the training examples themselves
            train_idx = val_idx = np.arange(len(X))
        train = make_split(X[train_idx], targets[train_idx])
        val = make_split(X[val_idx], targets[val_idx])
        # nncompare's loop scores a test split: the validation one here, or the training one without it
        dataset = Dataset(train=train, val=val, test=val if len(val_idx) else train, meta=meta)
        set_seed(self.seed)  # the initial weights depend on the seed alone
        try:
            model = create_model(self.arch, meta, **self._model_args())
            result = fit(model, dataset, config)
        except UserError as e:
            raise EstimatorInputError(str(e)) from None
        model.eval()
        self.model_, self.meta_ = model, meta
        self.history_ = result.history
        self.best_epoch_ = result.metrics["best_epoch"]
        self.input_shape_ = tuple(X.shape[1:])
        return self

    def _outputs(self, X) -> torch.Tensor:
        from sklearn.utils.validation import check_is_fitted

        from .models.inference import model_outputs

        check_is_fitted(self, "model_")
        X, _ = self._validate(X, reset=False)
        return model_outputs(self.model_, torch.tensor(X)).double()  # a copy: X may be read-only

    # -- pickling: weights as safetensors bytes -----------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        model = state.get("model_")
        if model is not None:
            from safetensors.torch import save

            state = dict(state)
            state["model_"] = save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
        return state

    def __setstate__(self, state):
        weights = state.get("model_")
        super().__setstate__(state)
        if isinstance(weights, bytes):
            from safetensors.torch import load

            from .models import create_model

            model = create_model(self.arch, self.meta_, **self._model_args())
            model.load_state_dict(load(weights))
            self.model_ = model.to(self.device).eval()


class NeuralClassifier(ClassifierMixin, _NeuralEstimator):
    """A classifier built from one of nncompare's architectures (`arch`: mlp, cnn, tcn, rnn, lstm, gru).

    `fit(X, y)` trains under nncompare's rules; `predict`, `predict_proba` and `score` (accuracy) follow.
    Learned: `classes_`, `model_` (the torch module, eval mode), `meta_`, `history_` (one dict per
    epoch), `best_epoch_`, `n_features_in_`, `input_shape_`.
    """

    _task = "classify"

    def fit(self, X, y):
        from sklearn.utils.multiclass import check_classification_targets

        X, y = self._validate(X, y)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise EstimatorInputError(f"y holds one class only ({self.classes_[0]!r}); a classifier needs examples of at least 2 classes")
        return self._fit_arrays(X, encoded.reshape(-1).astype(np.int64), {"n_classes": len(self.classes_), "class_names": [str(c) for c in self.classes_]})

    def predict_proba(self, X) -> np.ndarray:
        """(N, n_classes) class probabilities, columns in the order of `classes_`."""
        probs = torch.softmax(self._outputs(X), dim=-1).numpy()
        return probs / probs.sum(1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        ids = self._outputs(X).argmax(-1).numpy()  # first: it raises NotFittedError before fit
        return self.classes_[ids]


class NeuralRegressor(RegressorMixin, _NeuralEstimator):
    """A regressor built from one of nncompare's architectures; one or several targets per input.

    The targets are standardised for training (mean 0, std 1 per target; `y_mean_`, `y_scale_`) and
    the predictions mapped back, so the learning rate does not depend on the targets' units.
    `score` is R². Learned: `model_`, `meta_`, `history_`, `best_epoch_`, `y_mean_`, `y_scale_`,
    `n_features_in_`, `input_shape_`.
    """

    _task = "regress"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        X, y = self._validate(X, y)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        self.y_mean_ = y2.mean(0)
        scale = y2.std(0)
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        targets = ((y2 - self.y_mean_) / self.y_scale_).astype(np.float32)
        return self._fit_arrays(X, targets[:, 0] if self._y_1d else targets, {"n_classes": 0, "n_outputs": y2.shape[1]})

    def predict(self, X) -> np.ndarray:
        out = self._outputs(X).numpy().reshape(-1, len(self.y_mean_)) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_1d else out

