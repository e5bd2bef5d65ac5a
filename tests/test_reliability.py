"""Reliability, end to end: a comparison killed with SIGKILL at many moments (in the middle of a
checkpoint write among them) and resumed gives byte for byte the files of one never stopped; a dead
worker, a diverging run and a crashing run are isolated; several processes share one store without
losing a row; `runs --check` finds every kind of damage; the same command twice writes the same
metrics files; no code path unpickles."""

import importlib.util
import json
import multiprocessing as mp
import os
import random
import re
import shlex
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

import nncompare
from nncompare.results import format_score
from nncompare.store.check import check_store
from nncompare.cli.main import main
from nncompare.store import comparison_lock
from nncompare.train import TrainConfig

MODELS, SEEDS, EPOCHS = ["mlp", "gru"], 2, 6
CLI = ["compare", "digits", "--models", ",".join(MODELS), "--seeds", str(SEEDS), "--epochs", str(EPOCHS), "--quiet", "--no-report"]
COMPARED = ("metrics.json", "history.csv", "model.safetensors", "config.json")  # byte for byte
SRC = Path(nncompare.__file__).parent


def _load_killhooks():
    """tests/hooks/killhooks.py, the kill tests' fault injection, loaded without putting tests/hooks
    (which holds a sitecustomize.py for the children) on this process's path."""
    spec = importlib.util.spec_from_file_location("killhooks", Path(__file__).parent / "hooks" / "killhooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["killhooks"] = module
    spec.loader.exec_module(module)
    return module


killhooks = sys.modules.get("killhooks") or _load_killhooks()


def run_files(folder: Path) -> dict:
    """{(run folder, file): bytes} of every run of a comparison: what must come out the same."""
    return {(d.name, f): (d / f).read_bytes() for d in sorted(folder.iterdir()) if d.is_dir() for f in COMPARED if (d / f).exists()}


def errors_in(store) -> list[str]:
    findings, _ = check_store(store)
    return [f.line() for f in findings if f.error]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The comparison run once, never stopped."""
    store = tmp_path_factory.mktemp("reference")
    result = nncompare.compare("digits", models=MODELS, seeds=SEEDS, config=TrainConfig(max_epochs=EPOCHS), workers=1, store=store)
    assert all(r["status"] == "done" for r in result.runs)
    files = run_files(result.folder)
    assert len(files) == len(MODELS) * SEEDS * len(COMPARED)
    return result, files


# -- kills ------------------------------------------------------------------------------------------
class Child:
    """`nncompare ARGS` in a child process forked from this one: torch is already imported, so a child
    starts in milliseconds where a fresh interpreter takes seconds (on two shared cores, most of a
    kill test's time). It leads its own process group, as a terminal's foreground job does, with
    stdout and stderr in files. A fault asked for in `env` (NNCOMPARE_TEST_*, tests/hooks/killhooks.py)
    is installed in the child, and in the workers it spawns through tests/hooks/sitecustomize.py."""

    FORK = mp.get_context("fork")

    def __init__(self, args, folder: Path, env=None):
        self.out, self.err = folder / f"out-{time.monotonic_ns()}", folder / f"err-{time.monotonic_ns()}"
        env = killhooks.environment(env) if env else {}
        self.proc = self.FORK.Process(target=self._main, args=(list(args), env, str(self.out), str(self.err)))
        self.proc.start()
        self.pid = self.proc.pid

    @staticmethod
    def _main(args, env, out, err):
        os.setsid()
        os.environ.update(env)
        killhooks.install()  # the fault asked for in env, if any, replaces the product's seams here
        for fd, path in ((1, out), (2, err)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", closefd=False)
        code = main(args)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no test-runner teardown in the child

    def poll(self):
        return self.proc.exitcode

    def wait(self, timeout=600):
        self.proc.join(timeout)
        assert self.proc.exitcode is not None, "the comparison did not end"
        return self.proc.exitcode

    def stdout(self) -> str:
        return self.out.read_text() if self.out.exists() else ""

    def stderr(self) -> str:
        return self.err.read_text() if self.err.exists() else ""


def _wait_for(predicate, child, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        if child.poll() is not None:
            return False
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the comparison")


def _progress_since(store: Path, since: float):
    """True once a run in the store has checkpointed or finished after `since` (training is under way)."""
    def seen():
        for f in list(store.glob("*/*/checkpoint.json")) + list(store.glob("*/*/metrics.json")):
            try:
                if f.stat().st_mtime > since:
                    return True
            except FileNotFoundError:
                continue
        return False

    return seen


def _gone(pgid: int, timeout: float) -> bool:
    """Whether every process of the group ended within `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _without_workers(args: list[str]) -> list[str]:
    i = args.index("--workers")
    return args[:i] + args[i + 2 :]


# how the comparison is stopped, and when: a write paused half-way ("FRAGMENT:N" of tests/hooks/killhooks.py); a
# Ctrl-C (SIGINT), after which the command it prints is the next step's; the main process alone
# SIGKILLed at a seeded random moment, its workers orphaned; or the whole group at a random moment
KILL_POINTS = [
    ("write", "checkpoint-:2"),  # half of a checkpoint's tensor file written
    ("write", "checkpoint.json:2"),  # the checkpoint's commit point half written
    ("write", "metrics.json:1"),  # a run's last file half written (its checkpoint still there)
    ("ctrl-c", ""),  # the first Ctrl-C: the runs stop after a step, the command prints how to resume
    ("random-main", "--workers 2"),  # the main process killed, its two workers orphaned
    ("write", "summary.json:1"),  # every run finished, the comparison's summary half written
]


def _stop_and_resume(points, store: Path, tmp_path: Path, rng: random.Random) -> tuple[Path, list[str]]:
    """Stop one comparison at each of `points` in turn (each step resumes what the last one left),
    then resume it to the end in this process; returns its folder and what each stop hit."""
    command, moments = CLI + ["--store", str(store)], []
    for k, (how, what) in enumerate(points):
        args = command + (what.split() if how == "random-main" else ["--workers", "1"])
        marker = tmp_path / f"paused-{time.monotonic_ns()}"
        started = time.time()
        child = Child(args, tmp_path, {"NNCOMPARE_TEST_PAUSE_WRITE": f"{what}:{marker}"} if how == "write" else {})
        if how == "write":
            assert _wait_for(marker.exists, child), f"never reached the write {what}: {child.stderr()}"
        else:
            _wait_for(_progress_since(store, started), child)
            if how != "ctrl-c":
                time.sleep(rng.uniform(0.0, 0.8))
        running = child.poll() is None
        if how == "ctrl-c":
            os.killpg(child.pid, signal.SIGINT)
            assert child.wait() == 130
            err = child.stderr()
            assert "Traceback" not in err, err
            printed = re.search(r"^resume with: (.*)$", err, re.M).group(1)
            assert shlex.split(printed)[:2] == ["nncompare", "compare"]
            command = _without_workers(shlex.split(printed)[1:])  # the printed command, as is (the next step sets --workers)
        elif running:
            try:
                if how == "random-main":
                    os.kill(child.pid, signal.SIGKILL)
                else:
                    os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:  # it finished in the meantime
                running = False
            child.wait()
            # orphaned workers notice that their parent is gone and end themselves
            assert _gone(child.pid, 10), "worker processes outlived the killed main process"
        else:
            assert child.wait() == 0, child.stderr()
        moments.append(f"{how} {what}".strip() + ("" if running else " (had finished)"))
        if "--resume" not in command:
            (folder,) = [p for p in store.iterdir() if p.is_dir()]
            command = command + ["--resume", str(folder)]
    (folder,) = [p for p in store.iterdir() if p.is_dir()]
    result = nncompare.compare("digits", models=MODELS, seeds=SEEDS, config=TrainConfig(max_epochs=EPOCHS), workers=1, resume=folder)
    assert [r["status"] for r in result.runs] == ["done"] * len(MODELS) * SEEDS
    return folder, moments


@pytest.mark.slow
def test_a_comparison_killed_at_many_moments_resumes_to_the_same_files(reference, tmp_path, report_line):
    _, expected = reference
    rng = random.Random(8)  # the random moments come from a seeded generator: the test repeats
    chains = [KILL_POINTS]
    extra = int(os.environ.get("NNCOMPARE_EXTRA_KILL_POINTS", "0"))  # a longer hunt: NNCOMPARE_EXTRA_KILL_POINTS=30
    chains += [[("random", "")] * min(5, extra - i) for i in range(0, extra, 5)]  # fresh comparisons, 5 random kills each
    all_moments = []
    for c, points in enumerate(chains):
        store = tmp_path / f"store{c}"
        folder, moments = _stop_and_resume(points, store, tmp_path, rng)
        assert run_files(folder) == expected  # byte for byte the files of the run never stopped
        findings, counts = check_store(store)
        assert findings == [] and counts == {"comparisons": 1, "runs": 4}  # not even a stray temporary file
        con = sqlite3.connect(store / "index.sqlite")
        assert con.execute("SELECT status FROM comparisons").fetchall() == [("done",)]
        assert con.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone() == (4,)
        con.close()
        all_moments += moments
        if c == 0:  # the hooked writes and the Ctrl-C always catch the comparison at work
            assert not any("had finished" in m for m in moments if not m.startswith("random")), moments
    hit = sum("had finished" not in m for m in all_moments)
    n_sigint = sum(m.startswith("ctrl-c") for m in all_moments)
    report_line(f"kill test: {len(all_moments)} stops tried on {len(chains)} comparison(s) ({len(all_moments) - n_sigint} SIGKILL, {n_sigint} SIGINT), "
                f"{hit} caught it running ({'; '.join(all_moments[:len(KILL_POINTS)])}{'; ...' if len(all_moments) > len(KILL_POINTS) else ''}); "
                f"every resumed result byte-identical to the uninterrupted one, runs --check clean")


@pytest.mark.slow
def test_a_dead_worker_takes_only_its_own_run(reference, tmp_path):
    """gru seed 1 kills its worker at every epoch end from the second: the pool breaks, the run goes on
    alone from its epoch-2 checkpoint, dies again after epoch 3 and is failed; gru seed 0 ends as the
    run that was never stopped (whether it was still training when the pool broke, and was resumed,
    or had finished, depends on timing)."""
    _, expected = reference
    store = tmp_path / "store"
    child = Child(["compare", "digits", "--models", "gru", "--seeds", "2", "--epochs", str(EPOCHS), "--workers", "2", "--store", str(store), "--no-report"], tmp_path, {"NNCOMPARE_TEST_KILL_RUN": "gru:1:2+"})
    assert child.wait() == 0, child.stderr()
    out = child.stdout()
    assert "run gru seed 1 failed: its worker process died twice, the second time running alone" in out
    assert "(1 failed)" in out
    (folder,) = [p for p in store.iterdir() if p.is_dir()]
    assert {k: v for k, v in expected.items() if k[0] == "gru-seed0"} == run_files(folder)
    failure = json.loads((folder / "gru-seed1" / "failure.json").read_text())
    assert failure["status"] == "failed" and "died twice" in failure["error"]
    # alone, it went on from its epoch-2 checkpoint instead of starting over
    assert json.loads((folder / "gru-seed1" / "checkpoint.json").read_text())["epoch"] == 3
    assert errors_in(store) == []


def test_a_second_process_cannot_resume_a_comparison_in_use(reference):
    result, _ = reference
    with comparison_lock(result.folder):
        with pytest.raises(nncompare.UserError, match="is being run by another nncompare process"):
            nncompare.compare("digits", models=MODELS, seeds=SEEDS, config=TrainConfig(max_epochs=EPOCHS), workers=1, resume=result.folder)


def test_resume_refuses_other_options_and_keeps_finished_runs(reference, capsys):
    result, expected = reference
    with pytest.raises(nncompare.UserError, match=r"train.max_epochs: stored 6, this command 5"):
        nncompare.compare("digits", models=MODELS, seeds=SEEDS, config=TrainConfig(max_epochs=5), resume=result.folder)
    with pytest.raises(nncompare.UserError, match=r"models: stored \['mlp', 'gru'\], this command \['gru', 'mlp'\]"):
        nncompare.compare("digits", models=MODELS[::-1], seeds=SEEDS, config=TrainConfig(max_epochs=EPOCHS), resume=result.folder)
    with pytest.raises(nncompare.UserError, match="no comparison folder 'nowhere'"):
        nncompare.compare("digits", resume="nowhere", store=result.folder.parent)
    # a finished comparison resumed: nothing trains again, the table is the same
    again = nncompare.compare("digits", models=MODELS, seeds=SEEDS, config=TrainConfig(max_epochs=EPOCHS), workers=2, resume=result.folder.name, store=result.folder.parent)
    assert [r["score"] for r in again.runs] == [r["score"] for r in result.runs]
    assert [(r["model"], r["score_mean"]) for r in again.rows] == [(r["model"], r["score_mean"]) for r in result.rows]
    assert run_files(result.folder) == expected
    assert main(["compare", "digits", "--semi", "pseudo", "--labels", "50", "--resume", str(result.folder)]) == 2
    assert "--resume cannot be combined with --semi" in capsys.readouterr().err


def test_a_damaged_finished_run_is_trained_again_not_used(reference, tmp_path):
    import shutil

    result, expected = reference
    folder = tmp_path / result.folder.name
    shutil.copytree(result.folder, folder)
    (folder / "mlp-seed1" / "model.safetensors").write_bytes(b"\0" * 100)  # truncated weights
    (folder / "gru-seed0" / "metrics.json").write_text('{"model": "gru", "seed": 0, "sta')  # a torn file
    events = []
    again = nncompare.compare("digits", models=MODELS, seeds=SEEDS, config=TrainConfig(max_epochs=EPOCHS), workers=1, resume=folder, progress=events.append)
    notes = [e["text"] for e in events if e["event"] == "note"]
    assert len(notes) == 2 and all("it is trained again" in n for n in notes)
    assert next(e for e in events if e["event"] == "plan")["skipped"] == 2
    assert run_files(folder) == expected and len(again.runs) == 4


# -- divergence and crashes --------------------------------------------------------------------------
def test_a_run_forced_to_diverge_is_reported_and_the_others_complete(tmp_path, monkeypatch, capsys):
    compare_module = sys.modules["nncompare.runs.workers"]
    real_execute = compare_module.execute

    def one_huge_rate(spec, on_epoch=None):
        if (spec.model, spec.seed) == ("mlp", 1):
            spec.train = {**spec.train, "lr": 1e6}
        return real_execute(spec, on_epoch=on_epoch)

    monkeypatch.setattr(compare_module, "execute", one_huge_rate)
    result = nncompare.compare("digits", models=["mlp", "cnn"], seeds=2, config=TrainConfig(max_epochs=3), workers=1, store=tmp_path)
    status = {(r["model"], r["seed"]): r["status"] for r in result.runs}
    assert status == {("mlp", 0): "done", ("mlp", 1): "diverged", ("cnn", 0): "done", ("cnn", 1): "done"}
    bad = next(r for r in result.runs if r["status"] == "diverged")
    assert bad["stop_reason"] == "diverged" and bad["epochs"] == 1
    assert re.search(r"training loss \S+ in epoch 1 is over 10,000 times that of a trivial predictor", bad["error"])
    mlp = next(r for r in result.rows if r["model"] == "mlp")
    assert mlp["n_done"] == 1 and mlp["n_diverged"] == 1
    assert format_score(mlp).endswith("(1 diverged)")
    con = sqlite3.connect(tmp_path / "index.sqlite")
    assert con.execute("SELECT status FROM runs WHERE model='mlp' AND seed=1").fetchone() == ("diverged",)
    assert errors_in(tmp_path) == []  # a diverged run is a result, stored and readable

    # on the command line every run at lr 1e6 diverges, and says so
    assert main(["compare", "digits", "--models", "mlp", "--seeds", "1", "--epochs", "2", "--lr", "1e6", "--workers", "1", "--store", str(tmp_path), "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "diverged" in out and "run mlp seed 0 diverged: training loss" in out


def test_a_crashing_run_leaves_its_reason_and_is_tried_again_on_resume(tmp_path, monkeypatch):
    compare_module = sys.modules["nncompare.runs.workers"]
    real_execute = compare_module.execute

    def gru_crashes(spec, on_epoch=None):
        if spec.model == "gru":
            raise RuntimeError("disk on fire")
        return real_execute(spec, on_epoch=on_epoch)

    monkeypatch.setattr(compare_module, "execute", gru_crashes)
    result = nncompare.compare("digits", models=["mlp", "gru"], seeds=1, config=TrainConfig(max_epochs=1), workers=1, store=tmp_path)
    assert {r["model"]: r["status"] for r in result.runs} == {"mlp": "done", "gru": "failed"}
    failure = json.loads((result.folder / "gru-seed0" / "failure.json").read_text())
    assert failure["error"] == "RuntimeError: disk on fire"
    assert errors_in(tmp_path) == []
    monkeypatch.setattr(compare_module, "execute", real_execute)  # the cause is gone: a resume trains it
    again = nncompare.compare("digits", models=["mlp", "gru"], seeds=1, config=TrainConfig(max_epochs=1), workers=1, resume=result.folder)
    assert {r["model"]: r["status"] for r in again.runs} == {"mlp": "done", "gru": "done"}
    assert not (result.folder / "gru-seed0" / "failure.json").exists()


# -- several processes, one store ------------------------------------------------------------------------
def _write_runs(store_path, k, go):
    """A process that adds 2 comparisons of 25 runs each to the store, as fast as it can."""
    import torch

    from nncompare.store import Store, write_run

    store = Store(store_path)
    while not os.path.exists(go):
        time.sleep(0.01)
    for _ in range(2):
        folder = store.new_comparison("digits", ["mlp"], 25, {"writer": k, "models": ["mlp"], "seeds": list(range(25))})
        for seed in range(25):
            run = folder / f"mlp-seed{seed}"
            metrics = {"model": "mlp", "seed": seed, "status": "done", "test_acc": 0.5, "epochs": 0}
            write_run(run, {"model": "mlp", "seed": seed}, metrics, [], torch.nn.Linear(2, 2))
            store.index_run(folder, run, "mlp", seed, metrics, "done")
        store.finish_comparison(folder, {"writer": k}, "done")


def test_writers_in_several_processes_lose_no_row(tmp_path, report_line):
    store, go = tmp_path / "store", tmp_path / "go"
    procs = [mp.get_context("fork").Process(target=_write_runs, args=(str(store), k, str(go))) for k in range(6)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    go.touch()  # all at once
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    con = sqlite3.connect(store / "index.sqlite")
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT path) FROM comparisons").fetchone() == (12, 12)
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone() == (12 * 25,)
    folders = [p for p in store.iterdir() if p.is_dir()]
    assert len(folders) == 12 and all(len(list(f.glob("mlp-seed*/metrics.json"))) == 25 for f in folders)
    report_line("concurrency: 6 processes x 2 comparisons x 25 runs written into one store at once: 300 of 300 index rows and run folders present")


def test_four_nncompare_commands_into_one_store_at_once(tmp_path):
    store = tmp_path / "store"
    args = ["compare", "digits", "--models", "mlp", "--seeds", "2", "--epochs", "1", "--workers", "1", "--quiet", "--no-report", "--store", str(store)]
    children = [Child(args, tmp_path) for _ in range(4)]
    for c in children:
        assert c.wait() == 0, c.stderr()
    con = sqlite3.connect(store / "index.sqlite")
    assert con.execute("SELECT COUNT(*) FROM comparisons WHERE status = 'done'").fetchone() == (4,)
    assert con.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone() == (8,)
    assert len(list(store.glob("*/mlp-seed*/metrics.json"))) == 8
    metrics = {p.read_bytes() for p in store.glob("*/mlp-seed0/metrics.json")}
    assert len(metrics) == 1  # four processes at once, the same numbers
    assert main(["runs", "--check", "--store", str(store)]) == 0


# -- runs --check ------------------------------------------------------------------------------------
def test_runs_check_reports_every_kind_of_damage(reference, tmp_path, capsys):
    import shutil

    result, _ = reference
    store = tmp_path / "store"
    shutil.copytree(result.folder.parent, store)
    folder = store / result.folder.name
    assert main(["runs", "--check", "--store", str(store)]) == 0
    assert "checked 1 comparison(s), 4 run folder(s): 0 error(s), 0 note(s)" in capsys.readouterr().out

    damage = {
        "mlp-seed0": lambda d: (d / "history.csv").unlink(),
        "mlp-seed1": lambda d: (d / "config.json").write_text("{"),
        "gru-seed0": lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:-64]),
        "gru-seed1": lambda d: (d / "metrics.json").write_text(json.dumps({**json.loads((d / "metrics.json").read_text()), "epochs": 99})),
    }
    for run, harm in damage.items():
        harm(folder / run)
    (folder / "mlp-seed0" / ".metrics.json.x1.tmp").write_text("half")
    con = sqlite3.connect(store / "index.sqlite")
    with con:
        con.execute("INSERT INTO runs VALUES ('gone', 'mlp', 0, 'done', 0.5, 1, 1.0, 1, '/nowhere')")
        con.execute("INSERT INTO comparisons VALUES ('gone', 'x', 'digits', 'mlp', 1, 'done', '/nowhere')")
    con.close()
    (store / "stray").mkdir()
    assert main(["runs", "--check", "--store", str(store)]) == 1
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    expect = [
        ("mlp-seed0", "missing history.csv"),
        ("mlp-seed1", "config.json' is corrupt"),
        ("gru-seed0", "is not a readable safetensors file"),
        ("gru-seed1", "history.csv has 6 epochs, metrics.json says 99"),
        ("gone", "in the index but its folder is gone"),
        ("stray", "not a comparison folder"),
    ]
    for where, what in expect:
        assert any(l.startswith("error: ") and where in l and what in l for l in lines), (where, what, out)
    assert any(l.startswith("note: ") and ".metrics.json.x1.tmp" in l for l in lines)
    assert lines[-1] == "checked 1 comparison(s), 4 run folder(s): 6 error(s), 1 note(s)"


# -- determinism ---------------------------------------------------------------------------------------
def test_the_same_command_twice_writes_byte_identical_metrics(tmp_path):
    """metrics.json, history.csv, the weights and config.json repeat byte for byte; only timing.json
    (seconds, throughput, the finishing time) may differ, and holds nothing else."""
    args = ["compare", "digits", "--models", "cnn,lstm", "--seeds", "2", "--epochs", "2", "--dropout", "0.2", "--augment", "--quiet", "--no-report", "--workers", "1"]
    assert main(args + ["--store", str(tmp_path / "a")]) == 0
    assert main(args + ["--store", str(tmp_path / "b")]) == 0
    (a,), (b,) = [[p for p in (tmp_path / s).iterdir() if p.is_dir()] for s in "ab"]
    files_a, files_b = run_files(a), run_files(b)
    assert len(files_a) == 4 * len(COMPARED) and files_a == files_b
    timing = json.loads((a / "cnn-seed0" / "timing.json").read_text())
    assert set(timing) == {"train_seconds", "inference_per_second", "finished", "epoch_seconds", "resumed_from_epoch"}
    metrics = json.loads((a / "cnn-seed0" / "metrics.json").read_text())
    assert not set(metrics) & set(timing)
    run = nncompare.load_run(a / "cnn-seed0")  # a reader still sees one dict, timings merged back
    assert run.metrics["train_seconds"] == timing["train_seconds"] and run.history[0]["seconds"] == timing["epoch_seconds"][0]


def test_the_product_carries_no_test_hooks():
    """Fault injection for the kill tests lives in tests/hooks/killhooks.py; the package reads no
    NNCOMPARE_TEST_* variable and has no testhooks module (as `grep -rn "NNCOMPARE_TEST\\|testhooks" src`)."""
    offenders = []
    for path in sorted(p for p in SRC.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        text = path.read_bytes().decode("utf-8", errors="replace")
        offenders += [f"{path.relative_to(SRC)}:{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if re.search(r"NNCOMPARE_TEST|testhooks", line)]
    assert offenders == []
    assert not (SRC / "testhooks.py").exists()
    # the seams killhooks.install() replaces are still there, with the arguments it passes
    import inspect

    from nncompare import utils
    from nncompare.train.checkpoint import Checkpointer

    assert list(inspect.signature(utils._write_payload).parameters) == ["f", "path", "data"]
    assert list(inspect.signature(Checkpointer.save).parameters)[:2] == ["self", "epoch"]
    assert "label" in inspect.signature(Checkpointer).parameters


# -- untrusted files -----------------------------------------------------------------------------------
def test_no_code_path_unpickles():
    """Weights come from safetensors, arrays from NumPy with allow_pickle=False; nothing calls pickle,
    and torch.load only with weights_only=True."""
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"\b(import|from)\s+(c?pickle|dill|joblib|shelve|marshal)\b", code) or re.search(r"\b(pickle|joblib|dill|marshal)\.(loads?|Unpickler)\b", code):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
            if "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{path.name}:{n}: {line.strip()}")
            if re.search(r"np\.load\(", code) and "allow_pickle=False" not in code:
                offenders.append(f"{path.name}:{n}: {line.strip()}")
            if "allow_pickle=True" in code:
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []
    # the check itself finds what it looks for
    assert re.search(r"\b(import|from)\s+(c?pickle|dill|joblib|shelve|marshal)\b", "import pickle")


def test_the_command_line_names_a_run_that_skipped_steps(tmp_path, monkeypatch, capsys):
    """A step whose gradient is not finite is skipped (steps.optimizer_step); the run finishes, and the
    summary under the table says which run skipped how many, as the run's metrics count them."""
    steps = sys.modules["nncompare.train.steps"]
    real_step, calls = steps.optimizer_step, []

    def every_other_overflows(model, optimizer, scheduler, config, loss):
        calls.append(1)
        if len(calls) % 2:
            return real_step(model, optimizer, scheduler, config, loss)
        return real_step(model, optimizer, scheduler, config, loss * float("inf"))  # inf gradient

    monkeypatch.setattr(steps, "optimizer_step", every_other_overflows)
    assert main(["compare", "digits", "--models", "mlp", "--seeds", "1", "--epochs", "2", "--workers", "1", "--store", str(tmp_path), "--quiet", "--no-report", "--no-reference"]) == 0
    out = capsys.readouterr().out
    (run,) = [json.loads(p.read_text()) for p in tmp_path.glob("*/mlp-seed0/metrics.json")]
    assert run["status"] == "done" and run["skipped_steps"] == len(calls) // 2 > 0
    assert f"run mlp seed 0 skipped {run['skipped_steps']} training step(s) whose gradient was not finite" in out
    # every step overflowing: the run stops as stalled after STALL_EPOCHS epochs and the line says so
    from nncompare.train.epochs import STALL_EPOCHS

    monkeypatch.setattr(steps, "optimizer_step", lambda model, optimizer, scheduler, config, loss: real_step(model, optimizer, scheduler, config, loss * float("inf")))
    store = tmp_path / "stalled"
    assert main(["compare", "digits", "--models", "mlp", "--seeds", "1", "--epochs", "30", "--patience", "50", "--workers", "1", "--store", str(store), "--quiet", "--no-reference"]) == 0
    out = capsys.readouterr().out
    (run,) = [json.loads(p.read_text()) for p in store.glob("*/mlp-seed0/metrics.json")]
    assert run["status"] == "done" and run["stop_reason"] == "stalled" and run["epochs"] == STALL_EPOCHS
    assert f"and stopped after epoch {STALL_EPOCHS}: every step of its last {STALL_EPOCHS} epochs was skipped" in " ".join(out.split())
    report = " ".join(next(store.glob("*/report.md")).read_text().split())  # and the report says it under the results
    assert f"mlp seed 0 skipped {run['skipped_steps']} training step(s) whose gradient was not finite, and stopped after epoch {STALL_EPOCHS}" in report
