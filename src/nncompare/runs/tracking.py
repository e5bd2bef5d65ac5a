"""Log a comparison to MLflow as well as to the store: `nncompare compare ... --mlflow URI`.

The store (run folders + SQLite index) stays the record nncompare reads; MLflow gets a copy to browse
and compare with other experiments. In the experiment "nncompare" (MLFLOW_EXPERIMENT_NAME sets
another), one parent run per comparison (named after its folder; parameters: data set, models,
seeds, training rules; at the end each model's mean score and comparison.json, summary.json and the
report) and one child run per (model, seed), logged as soon as it finishes: its parameters (model,
seed, every training rule, the model's hyperparameters), final metrics (metrics.json's numbers), the
per-epoch history as metric steps (epoch_train_loss, epoch_val_loss, epoch_train_acc, epoch_val_acc),
and its four files as artifacts.

URI: anything MLflow takes (http://HOST:5000, sqlite:///path/mlflow.db, databricks, ...), or a plain
folder, which becomes sqlite:///FOLDER/mlflow.db with artifacts in FOLDER/artifacts (browse it with
`mlflow ui --backend-store-uri sqlite:///FOLDER/mlflow.db`). MLflow is an optional extra
(`pip install 'nncompare[mlflow]'`). A logging failure after the start is reported once as a warning
and logging stops; the comparison itself goes on.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from pathlib import Path

from ..errors import UserError

INSTALL_HINT = "pip install 'nncompare[mlflow]'"
EXPERIMENT = "nncompare"
HISTORY_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc")


class TrackingWarning(UserWarning):
    """MLflow logging failed part-way; the comparison and its store are unaffected."""


def import_mlflow():
    try:
        import mlflow  # noqa: F401
        from mlflow import MlflowClient
    except ImportError:
        raise UserError(f"`mlflow` needs MLflow, which is not installed; {INSTALL_HINT}") from None
    return MlflowClient


def tracking_uri(uri: str) -> tuple[str, str | None]:
    """(the URI MLflow gets, the artifact location for a new experiment or None for the server's
    default). A plain folder becomes an SQLite database inside it, artifacts beside it."""
    if not isinstance(uri, str) or not uri.strip():
        raise UserError("`mlflow` needs a tracking URI (http://HOST:5000, sqlite:///path/mlflow.db) or a folder")
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme or uri.startswith(("databricks", "sqlite:")):
        return uri, None
    folder = Path(uri).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"`mlflow` '{uri}' is a file; give a folder (a database is made in it) or a tracking URI")
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def _flat(prefix: str, d: dict) -> dict:
    """{"train": {"lr": 0.01}} -> {"train.lr": "0.01"}: MLflow parameters are flat strings."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(key + ".", v))
        else:
            out[key] = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
    return out


def _numbers(d: dict) -> dict:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


@contextlib.contextmanager
def _fail_fast():
    """MLflow's HTTP client retries an unreachable server with backoff for minutes (4 min 15 s measured
    here before the first call failed); two retries and a 15 s timeout tell within seconds. Set only
    around nncompare's own MLflow calls; settings the user made in the environment are kept."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
    added = [k for k in quick if k not in os.environ]
    os.environ.update({k: quick[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


class MlflowTracker:
    """One comparison's MLflow logging; made by `connect(uri)(folder, spec)`."""

    @classmethod
    def connect(cls, uri: str):
        """Check MLflow and the URI now (before anything is stored); returns `start(folder, spec)`."""
        client_class = import_mlflow()
        resolved, artifacts = tracking_uri(uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        try:
            with _fail_fast():
                client = client_class(tracking_uri=resolved)
                experiment = client.get_experiment_by_name(name)
                experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(name, artifact_location=artifacts)
        except Exception as e:  # noqa: BLE001 - MLflow raises many kinds (connection, store, permission)
            raise UserError(f"cannot log to MLflow at '{uri}' ({type(e).__name__}: {str(e).splitlines()[0][:200]}); check the URI or leave `mlflow` out") from None
        return lambda folder, spec: cls(client, experiment_id, folder, spec)

    def __init__(self, client, experiment_id: str, folder: Path, spec: dict):
        self.client, self.experiment_id, self.folder = client, experiment_id, Path(folder)
        self.failed = False
        self.parent = None
        self._guard("start the comparison's run", self._start, spec)

    def _guard(self, what: str, fn, *args):
        if self.failed:
            return None
        try:
            with _fail_fast():  # a server gone away must not hold up the comparison for minutes
                return fn(*args)
        except Exception as e:  # noqa: BLE001 - MLflow down or refusing: warn once, keep comparing
            self.failed = True
            warnings.warn(f"MLflow logging stopped: could not {what} ({type(e).__name__}: {str(e).splitlines()[0][:200]}); the runs are still stored in {self.folder}", TrackingWarning, stacklevel=3)
            return None

    def _log(self, run_id: str, params: dict | None = None, metrics: dict | None = None, steps: list | None = None) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        pairs = [Param(k, v[:6000]) for k, v in (params or {}).items()]
        entries = [Metric(k, v, now, 0) for k, v in (metrics or {}).items()] + list(steps or [])
        for i in range(0, len(pairs), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(run_id, params=pairs[i : i + 100])
        for i in range(0, len(entries), 1000):  # and at most 1000 metrics
            self.client.log_batch(run_id, metrics=entries[i : i + 1000])

    def _start(self, spec: dict) -> None:
        tags = {"nncompare.folder": str(self.folder), "nncompare.dataset": str(spec.get("dataset"))}
        self.parent = self.client.create_run(self.experiment_id, run_name=self.folder.name, tags=tags).info.run_id
        params = _flat("", {k: spec[k] for k in ("dataset", "models", "seeds", "train", "params_target") if k in spec})
        self._log(self.parent, params=params)

    def log_run(self, run_spec, metrics: dict) -> None:
        """One finished (model, seed) run as a child run."""
        self._guard(f"log {run_spec.label} seed {run_spec.seed}", self._log_run, run_spec, metrics)

    def _log_run(self, run_spec, metrics: dict) -> None:
        from mlflow.entities import Metric

        from ..store import read_history

        run_dir = Path(run_spec.run_dir)
        tags = {"mlflow.parentRunId": self.parent, "nncompare.folder": str(run_dir), "nncompare.status": metrics.get("status", "done")}
        run_id = self.client.create_run(self.experiment_id, run_name=run_dir.name, tags=tags).info.run_id
        config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
        params = {"model": run_spec.label, "seed": str(run_spec.seed), "dataset": run_spec.dataset}
        params.update(_flat("train.", config.get("train", run_spec.train)))
        params.update(_flat("model.", config.get("model_args", run_spec.model_args)))
        now = int(time.time() * 1000)
        history = read_history(run_dir / "history.csv")
        steps = [Metric(f"epoch_{k}", float(row[k]), now, int(row.get("epoch") or i + 1)) for i, row in enumerate(history) for k in HISTORY_METRICS if isinstance(row.get(k), float)]
        self._log(run_id, params=params, metrics=_numbers(metrics), steps=steps)
        if run_dir.is_dir():
            self.client.log_artifacts(run_id, str(run_dir))
        self.client.set_terminated(run_id, "FINISHED" if metrics.get("status", "done") in ("done", "diverged") else "FAILED")

    def finish(self, result, status: str) -> None:
        """The comparison's summary on the parent run, which then ends."""
        self._guard("log the comparison's summary", self._finish, result, status)

    def _finish(self, result, status: str) -> None:
        summary = {}
        for row in result.rows:
            for key in ("score_mean", "score_std", "train_seconds", "params"):
                summary[f"{row['model']}.{key}"] = row.get(key)
        for model, together in (result.ensembles or {}).items():  # each model's seeds predicting together
            summary[f"{model}.seeds_together"] = together["score"]
        self._log(self.parent, metrics=_numbers(summary))
        for name in ("comparison.json", "summary.json", "report.html", "report.md"):
            if (self.folder / name).exists():
                self.client.log_artifact(self.parent, str(self.folder / name))
        if result.best:
            self.client.set_tag(self.parent, "nncompare.best", result.best)
        self.client.set_terminated(self.parent, "FINISHED" if status == "done" else "KILLED")
