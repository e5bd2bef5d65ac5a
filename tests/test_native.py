"""The LSTM's loops compiled from C (models/native.py, models/lstm_loop.c): the same numbers as the
Python loops, the activations to about an ulp, and every way of not having them (no compiler, a failing
one, turned off) falls back to the Python loops with the reason on record and nothing half-written."""

import os
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nncompare.models import create_model, native, rnn

from conftest import series_meta

needs_compiler = pytest.mark.skipif(native._compiler() is None or sys.platform == "win32", reason="no C compiler on this machine")


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """An empty cache folder and no library loaded yet; the process's library loaded again afterwards."""
    monkeypatch.setenv("NNCOMPARE_CACHE", str(tmp_path / "cache"))
    native.reset()
    yield tmp_path / "cache" / "native"
    native.reset()


@needs_compiler
def test_the_library_is_built_and_used_where_there_is_a_compiler():
    assert native.lstm_library() is not None
    status = native.native_status()
    assert status.startswith("compiled LSTM loops: in use") and str(native._state["path"]) in status
    assert native._state["path"].exists()
    assert rnn._native_lstm(torch.zeros(2, dtype=torch.float32), torch.zeros(8, 2)) is native.lstm_library()
    # float64, and tensors a dispatch mode watches (the FLOP counter), run the Python loops
    assert rnn._native_lstm(torch.zeros(2, dtype=torch.float64), torch.zeros(8, 2, dtype=torch.float64)) is None
    with FlopCounterMode(display=False):
        assert rnn._native_lstm(torch.zeros(2), torch.zeros(8, 2)) is None


@needs_compiler
def test_activations_are_within_two_ulp_of_torch():
    lib = native.lstm_library()
    x = torch.cat([torch.linspace(-100, 100, 200001), torch.tensor([0.0, 1e-30, -1e-30, 1e-6, 0.625, -0.625, 0.62499, 88.0, -87.0, 89.0, -90.0])])
    for name, exact in (("sigmoid_values", torch.sigmoid), ("tanh_values", torch.tanh)):
        y = torch.empty_like(x)
        getattr(lib, name)(x.numel(), x.data_ptr(), y.data_ptr())
        want = exact(x.double())
        err = (y.double() - want).abs()
        assert err.max() < 1e-7, name
        big = want.abs() > 1e-30
        assert (err[big] / want[big].abs()).max() < 2.4e-7, name  # 2 ulp of float32
    assert torch.equal(torch.tensor([1e-39]) * 1.0, torch.tensor([1e-39]))  # denormals still on: the loops restore the caller's setting


@needs_compiler
@pytest.mark.parametrize("sgemm", [True, False], ids=["torch-sgemm", "own-product"])
def test_the_step_product_with_and_without_torchs_sgemm(sgemm):
    lib = native.lstm_library()
    gen = torch.Generator().manual_seed(1)
    for rows, inner, cols in ((24, 6, 32), (40, 10, 33), (7, 3, 1), (256, 64, 17)):
        w, x, a = torch.randn(rows, inner, generator=gen), torch.randn(inner, cols, generator=gen), torch.randn(rows, cols, generator=gen)
        out = a.clone()
        try:
            if not sgemm:
                lib.use_sgemm(None)
            lib.product(rows, inner, cols, w.data_ptr(), x.data_ptr(), out.data_ptr())
        finally:
            native._connect_sgemm(lib)
        torch.testing.assert_close(out, torch.addmm(a, w, x), atol=1e-5, rtol=1e-5)


def _steps(hidden, steps, batch, masked, seed=0):
    """LSTMSteps' outputs and every input's gradient, under a loss touching every output."""
    gen = torch.Generator().manual_seed(seed)
    x_proj = torch.randn(4 * hidden, steps, batch, generator=gen).requires_grad_()
    w_hh = (0.5 * torch.randn(4 * hidden, hidden, generator=gen)).requires_grad_()
    h0, c0 = (torch.randn(batch, hidden, generator=gen).requires_grad_() for _ in range(2))
    mask = (torch.rand(batch, hidden, generator=gen) > 0.3).float() / 0.7 if masked else None
    hs, c = rnn.LSTMSteps.apply(x_proj, w_hh, h0, c0, mask)
    (hs * torch.randn(hs.shape, generator=gen)).sum().add((c * torch.randn(c.shape, generator=gen)).sum()).backward()
    return [hs.detach(), c.detach(), x_proj.grad, w_hh.grad, h0.grad, c0.grad]


@needs_compiler
@pytest.mark.parametrize("masked", [False, True], ids=["plain", "recurrent-dropout"])
@pytest.mark.parametrize("hidden,steps,batch", [(1, 1, 1), (5, 7, 3), (6, 40, 32), (17, 5, 33)])
def test_compiled_loops_compute_what_the_python_loops_compute(monkeypatch, hidden, steps, batch, masked):
    compiled = _steps(hidden, steps, batch, masked)
    monkeypatch.setattr(native, "_state", {"lib": None, "why": "off in this test", "path": None})
    python = _steps(hidden, steps, batch, masked)
    for name, a, b in zip(("h", "c_T", "d x_proj", "d w_hh", "d h0", "d c0"), compiled, python):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5, msg=name)


@needs_compiler
def test_an_lstm_trains_the_same_on_either_path(monkeypatch):
    """A few Adam steps of an equations-path LSTM with recurrent dropout: the compiled loops and the Python
    loops end at the same weights (to float32 rounding); and the compiled path repeats itself exactly."""
    meta = series_meta(length=30, channels=2, n_classes=3)
    x, y = torch.randn(16, 30, 2, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 3

    def train():
        torch.manual_seed(0)
        model = create_model("lstm", meta, hidden_size=12, impl="equations", recurrent_dropout=0.2)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    compiled, again = train(), train()
    assert all(torch.equal(compiled[k], again[k]) for k in compiled)
    monkeypatch.setattr(native, "_state", {"lib": None, "why": "off in this test", "path": None})
    python = train()
    for k in compiled:
        torch.testing.assert_close(compiled[k], python[k], atol=1e-4, rtol=1e-4, msg=k)


def test_turned_off_by_the_environment(monkeypatch, fresh_native):
    monkeypatch.setenv("NNCOMPARE_NATIVE", "0")
    assert native.lstm_library() is None
    assert "NNCOMPARE_NATIVE=0" in native.native_status() and "in Python" in native.native_status()
    assert not fresh_native.exists()


def test_no_compiler_falls_back_to_the_python_loops(monkeypatch, fresh_native):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert native.lstm_library() is None
    assert "no C compiler" in native.native_status()
    model = create_model("lstm", series_meta(length=6, channels=1, n_classes=2), hidden_size=4, impl="equations")
    model(torch.randn(3, 6, 1)).sum().backward()  # trains on the Python loops
    assert model.recurrent.fused.weight_hh_l0.grad is not None


def _fake_compiler(folder, body):
    path = folder / "fake-cc"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script as the compiler")
def test_a_failing_compiler_leaves_no_half_written_library(monkeypatch, fresh_native, tmp_path):
    # answers --version and -###, then writes half a file and fails, as a compiler killed midway would
    cc = _fake_compiler(tmp_path, """
        case "$*" in *--version*|*-###*) exit 0;; esac
        while [ $# -gt 0 ]; do [ "$1" = -o ] && printf 'half' > "$2"; shift; done
        echo "fake-cc: error: out of memory" >&2; exit 1
    """)
    monkeypatch.setenv("CC", cc)
    assert native.lstm_library() is None
    assert "failed to build" in native.native_status() and "out of memory" in native.native_status()
    assert list(fresh_native.iterdir()) == []  # the temporary files removed, no library under its final name


@needs_compiler
@pytest.mark.skipif(sys.platform == "win32", reason="a shell script as the compiler")
def test_a_compiler_without_march_native_builds_the_portable_library(monkeypatch, fresh_native, tmp_path):
    real = shlex.join(native._compiler())
    cc = _fake_compiler(tmp_path, f"""
        case "$*" in *-march=native*) echo "fake-cc: unknown option -march=native" >&2; exit 1;; esac
        exec {real} "$@"
    """)
    monkeypatch.setenv("CC", cc)
    assert native.lstm_library() is not None
    assert "-march=native" not in native.native_status()
    assert len(list(fresh_native.glob("lstm_loop-*.so"))) == 1
    compiled = _steps(5, 9, 4, masked=False)
    monkeypatch.setattr(native, "_state", {"lib": None, "why": "off in this test", "path": None})
    for a, b in zip(compiled, _steps(5, 9, 4, masked=False)):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5)


@needs_compiler
def test_processes_building_at_once_all_get_a_whole_library(fresh_native):
    """Parallel comparison workers may all build on their first LSTM: each writes a file of its own and
    renames it into place, so every one loads a complete library."""
    code = "from nncompare.models import native; import sys; sys.exit(0 if native.lstm_library() is not None else 1)"
    env = {**os.environ, "NNCOMPARE_CACHE": str(fresh_native.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    assert len(list(fresh_native.glob("lstm_loop-*.so"))) == 1 and not list(fresh_native.glob(".lstm_loop-*"))


@needs_compiler
@pytest.mark.skipif(shutil.which("env") is None, reason="no env command")
def test_a_compiler_command_of_several_words_is_run_as_given(monkeypatch, fresh_native):
    """CC="ccache gcc" and the like: the first word is the program, the rest its arguments."""
    monkeypatch.setenv("CC", f"env {native._compiler()[0]}")
    assert native.lstm_library() is not None
    assert native.native_status().startswith(f"compiled LSTM loops: in use (compiled with {shutil.which('env')} ")
