"""Image sources and their pixel-sequence variants: seqdigits / pdigits, and MNIST IDX folders."""

import gzip

import numpy as np
import pytest
import torch

import nncompare
from nncompare.data import list_families, list_sources, load_dataset
from nncompare.data.images import PERMUTATION_SEED, fixed_permutation, pixel_sequences, read_idx


def test_sequence_variants_of_digits_hold_the_same_pixels():
    img, seq, perm = load_dataset("digits"), load_dataset("seqdigits"), load_dataset("pdigits")
    assert seq.meta.kind == perm.meta.kind == "series"
    assert seq.meta.input_shape == perm.meta.input_shape == (64, 1)
    assert seq.sizes() == img.sizes() == perm.sizes()
    # row-major order: step 8*r + c is pixel (r, c)
    torch.testing.assert_close(seq.test.x[:, 8 * 3 + 5, 0], img.test.x[:, 0, 3, 5])
    assert torch.equal(seq.test.y, img.test.y)
    # permuted: one fixed order, the same for every split and every load
    p = fixed_permutation(64)
    assert sorted(p.tolist()) == list(range(64)) and p.tolist() != list(range(64))
    torch.testing.assert_close(perm.train.x, seq.train.x[:, p])
    torch.testing.assert_close(perm.test.x, seq.test.x[:, p])
    assert torch.equal(load_dataset("pdigits").val.x, perm.val.x)
    assert np.array_equal(fixed_permutation(64), np.random.default_rng(PERMUTATION_SEED).permutation(64))


def test_pixel_sequences_keep_channels_as_features():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)  # (N, C, H, W)
    seq = pixel_sequences(x)
    assert seq.shape == (2, 4, 3)
    assert seq[1, 2].tolist() == x[1, :, 1, 0].tolist()  # step 2 = row 1, column 0, all channels


def write_idx(path, array, gz=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        data = gzip.compress(data)
        path = path.with_name(path.name + ".gz")
    path.write_bytes(data)
    return path


def make_mnist_folder(folder, n_train=60, n_test=20, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 10,
    }
    for name, a in arrays.items():
        write_idx(folder / name, a, gz=gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_mnist_folder_loads_with_its_sequence_variants(tmp_path, gz):
    arrays = make_mnist_folder(tmp_path / "m", gz=gz)
    d = load_dataset(f"mnist:{tmp_path / 'm'}")
    assert d.meta.kind == "image" and d.meta.input_shape == (1, 28, 28) and d.meta.n_classes == 10
    assert d.sizes() == {"train": 54, "val": 6, "test": 20}
    np.testing.assert_allclose(d.test.x[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"] / 255.0, rtol=1e-6)
    assert d.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    seq = load_dataset(f"seqmnist:{tmp_path / 'm'}")
    perm = load_dataset(f"pmnist:{tmp_path / 'm'}")
    assert seq.meta.input_shape == perm.meta.input_shape == (784, 1)
    torch.testing.assert_close(seq.test.x[:, 28 * 10 + 7, 0], d.test.x[:, 0, 10, 7])
    torch.testing.assert_close(perm.test.x, seq.test.x[:, fixed_permutation(784)])


def test_mnist_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(nncompare.UserError, match="is not a folder"):
        load_dataset(f"mnist:{tmp_path / 'missing'}")
    make_mnist_folder(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(nncompare.UserError, match=r"has no t10k-labels-idx1-ubyte\[.gz\]"):
        load_dataset(f"mnist:{tmp_path / 'm'}")
    write_idx(tmp_path / "m" / "t10k-labels-idx1-ubyte", np.arange(19) % 10)  # 19 labels for 20 images
    with pytest.raises(nncompare.UserError, match="test images .* and labels .* do not match"):
        load_dataset(f"mnist:{tmp_path / 'm'}")
    with pytest.raises(nncompare.UserError, match="needs an argument after the colon"):
        load_dataset("mnist:")


def test_read_idx_refuses_damaged_files(tmp_path):
    good = write_idx(tmp_path / "a", np.zeros((3, 2, 2)))
    assert read_idx(good).shape == (3, 2, 2)
    truncated = tmp_path / "b"
    truncated.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(nncompare.UserError, match="truncated or damaged"):
        read_idx(truncated)
    bad_magic = tmp_path / "c"
    bad_magic.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(nncompare.UserError, match="bad magic number"):
        read_idx(bad_magic)
    not_gzip = tmp_path / "d.gz"
    not_gzip.write_bytes(b"plain bytes")
    with pytest.raises(nncompare.UserError, match="cannot read"):
        read_idx(not_gzip)


def test_listing_names_the_new_sources():
    assert {"digits", "seqdigits", "pdigits", "mnist1d"} <= {s.name for s in list_sources()}
    assert {"mnist:DIR", "seqmnist:DIR", "pmnist:DIR"} <= {f.name for f in list_families()}


def test_unknown_family_suggests_the_close_one():
    with pytest.raises(nncompare.UserError, match="did you mean 'pmnist:DIR'"):
        load_dataset("pmnst:DIR")
