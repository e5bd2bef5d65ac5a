"""Inputs that would not fit in memory and absurd option values are refused before anything is
loaded, built or stored, with one line that says what was asked, what it would need and what to do."""

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest

import nncompare
from nncompare.cli.main import main
from nncompare.data import load_dataset
from nncompare.train import TrainConfig

NEEDS = r"would need about [\d.]+ [KMGT]?B of memory and [\d.]+ [KMGT]?B is available"


def _csv(path, rows=300, length=40):
    rng = np.random.default_rng(0)
    lines = [",".join([str(i % 3)] + [f"{v:.4f}" for v in rng.normal(size=length)]) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_files_larger_than_the_memory_budget_are_refused_before_reading(tmp_path, monkeypatch):
    csv = _csv(tmp_path / "series.csv")
    assert len(load_dataset(str(csv)).train) > 0  # fits in the machine's memory
    text = tmp_path / "notes.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200)
    assert load_dataset(f"text:{text}").meta.kind == "text"
    folder = tmp_path / "images"
    from PIL import Image

    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(np.full((32, 32), 40 * k, np.uint8)).save(folder / c / f"{k}.png")
    assert load_dataset(str(folder)).meta.input_shape == (1, 32, 32)

    monkeypatch.setenv("NNCOMPARE_MEMORY_LIMIT", "64k")
    with pytest.raises(nncompare.UserError, match=rf"'{csv}' \([\d,]+ bytes\) {NEEDS}; use a smaller file"):
        load_dataset(str(csv))
    with pytest.raises(nncompare.UserError, match=NEEDS):
        load_dataset(f"text:{text}")
    with pytest.raises(nncompare.UserError, match=rf"the 6 images of '{folder}' at 32 x 32 {NEEDS}"):
        load_dataset(str(folder))
    monkeypatch.setenv("NNCOMPARE_MEMORY_LIMIT", "lots")
    with pytest.raises(nncompare.UserError, match="NNCOMPARE_MEMORY_LIMIT 'lots' is not a size"):
        load_dataset(str(csv))


def _npy_header_only(shape, dtype="<f8") -> bytes:
    """A .npy header that declares `shape`, followed by no data at all."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def test_an_npz_declaring_huge_arrays_is_refused_from_its_header(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("X.npy", _npy_header_only((10**7, 10**6)))  # 80 TB of float64, declared in 100 bytes
        z.writestr("y.npy", _npy_header_only((10**7,), "<i8"))
    path = tmp_path / "bomb.npz"
    path.write_bytes(buf.getvalue())
    with pytest.raises(nncompare.UserError, match=rf"'{path}' {NEEDS}"):
        load_dataset(str(path))


def test_an_idx_file_declaring_huge_images_is_refused_before_decompressing(tmp_path):
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (10**6, 10**4, 10**4))
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress(header + bytes(100)))
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(bytes([0, 0, 8, 1]) + (10**6).to_bytes(4, "big"))
    with pytest.raises(nncompare.UserError, match=NEEDS):
        load_dataset(f"mnist:{tmp_path}")


def test_absurd_comparison_options_are_refused_before_anything_is_stored(tmp_path):
    store = tmp_path / "store"
    with pytest.raises(nncompare.UserError, match="batch size 5000 is larger than the 1077 training examples of digits; choose at most 1077"):
        nncompare.compare("digits", models=["mlp"], config=TrainConfig(batch_size=5000), store=store)
    with pytest.raises(nncompare.UserError, match=r"training mlp \([\d,]+ parameters\) " + NEEDS + "; choose a smaller `width`"):
        nncompare.compare("digits", models=["mlp"], model_args={"mlp": {"width": 200_000}}, store=store)
    with pytest.raises(nncompare.UserError, match="seeds 5000 is more runs per model than nncompare will plan"):
        nncompare.compare("digits", models=["mlp"], seeds=5000, store=store)
    assert not store.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "100000"], "batch size 100000 is larger than the 1077 training examples"),
        (["--width", "-3"], "argument --width: '-3' must be at least 1"),
        (["--seeds", "0"], "argument --seeds: '0' must be at least 1"),
        (["--epochs", "0"], "argument --epochs: '0' must be at least 1"),
        (["--max-seconds", "-5"], "argument --max-seconds: '-5' must be a positive number"),
        (["--params", "1T"], "argument --params: '1T' is not a parameter count"),
        (["--params", "1000000M"], "would need about"),
        (["--width", "1000000"], "would need about"),
        (["--labels", "0"], "argument --labels: '0' must be at least 1"),
        (["--labels", "5000"], "labels=5000 leaves nothing unlabelled"),
    ],
)
def test_absurd_values_on_the_command_line_are_one_line_exit_2_nothing_stored(args, message, tmp_path, capsys):
    store = tmp_path / "store"
    assert main(["compare", "digits", "--models", "mlp", "--store", str(store), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nncompare: error: ") and message in err and err.count("\n") == 1, err
    assert not store.exists()


def test_the_default_batch_size_still_fits_a_small_training_split():
    from nncompare.runs.grid import check_batch_size

    small = load_dataset("digits")
    small.train = type(small.train)(small.train.x[:50], small.train.y[:50])
    check_batch_size(TrainConfig(), small)  # 128 > 50: the default is cut to the split, as documented
    with pytest.raises(nncompare.UserError, match="batch size 64 is larger than the 50 training examples"):
        check_batch_size(TrainConfig(batch_size=64), small)
