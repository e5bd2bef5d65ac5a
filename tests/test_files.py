"""The user's own files by path: CSV / NPZ series and image folders, their splits, and every bad input
as a one-line UserError that names the problem."""

import os

import numpy as np
import pytest
import torch

import nncompare
from nncompare import UserError
from nncompare.data import load_dataset
from nncompare.data.files import load_path, looks_like_path, znormalise


# -- builders -------------------------------------------------------------------------------------------
def write_csv(path, rows, header=None):
    lines = ([",".join(header)] if header else []) + [",".join(str(c) for c in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def series_rows(n=20, length=10, labels=("cat", "dog"), seed=0):
    """n rows of [label, v0..v(L-1)], the labels taking turns: balanced classes."""
    rng = np.random.default_rng(seed)
    return [[labels[i % len(labels)], *np.round(rng.normal(size=length) * 3 + 5, 4)] for i in range(n)]


@pytest.fixture
def csv_path(tmp_path):
    header = ["label"] + [f"t{i}" for i in range(10)]
    return write_csv(tmp_path / "data.csv", series_rows(), header)


def save_image(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def image_folder(root, classes=("cat", "dog"), per_class=5, size=(6, 8), rgb=False, seed=0):
    """root/<class>/<i>.png random images of size (H, W), grey or RGB."""
    rng = np.random.default_rng(seed)
    shape = size + ((3,) if rgb else ())
    for c in classes:
        for i in range(per_class):
            save_image(root / c / f"{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def assert_user_error(fn, *fragments):
    with pytest.raises(UserError) as e:
        fn()
    message = str(e.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def all_x(ds):
    return torch.cat([ds.train.x, ds.val.x, ds.test.x])


# -- CSV ------------------------------------------------------------------------------------------------
def test_csv_with_header_loads_with_a_fixed_stratified_split(csv_path):
    ds = load_dataset(str(csv_path))
    assert ds.meta.kind == "series" and ds.meta.task == "classify"
    assert ds.meta.name == str(csv_path)
    assert ds.meta.input_shape == (10, 1) and ds.meta.n_classes == 2
    assert ds.meta.class_names == ["cat", "dog"]
    assert ds.sizes() == {"train": 12, "val": 4, "test": 4}  # test 20%, then val 20% of the 16 left
    assert ds.train.x.shape == (12, 10, 1) and ds.train.x.dtype == torch.float32
    assert ds.train.y.dtype == torch.int64 and set(ds.test.y.tolist()) == {0, 1}  # stratified
    assert "20 series of 10 steps" in ds.meta.description and "\n" not in ds.meta.description
    again = load_dataset(str(csv_path))
    for a, b in ((ds.train, again.train), (ds.val, again.val), (ds.test, again.test)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_csv_without_header_and_numeric_labels_sort_as_numbers(tmp_path):
    path = write_csv(tmp_path / "plain.csv", series_rows(n=30, labels=(10, 2, -1)))
    ds = load_path(str(path))
    assert ds.meta.class_names == ["-1", "2", "10"]
    assert ds.sizes() == {"train": 19, "val": 5, "test": 6}
    assert sum(ds.sizes().values()) == 30  # the first row is data, not a header


def test_a_label_column_of_quantities_is_read_as_regression_not_as_hundreds_of_classes(tmp_path):
    rng = np.random.default_rng(0)
    rows = [[f"s{i}", f"{1 + 0.61 * i:.2f}", *(f"{v:.3f}" for v in rng.normal(size=12))] for i in range(80)]  # a fat content: 80 values
    path = write_csv(tmp_path / "fat.csv", rows, ["sample_id", "fat", *(f"w{j}" for j in range(12))])
    ds = load_path(str(path), label_column="fat")
    assert ds.meta.task == "regress" and ds.meta.n_outputs == 1 and ds.meta.n_classes == 0 and ds.meta.class_names == []
    assert ds.sizes() == {"train": 51, "val": 13, "test": 16} and "random, seed 0" in ds.meta.description
    # the targets, standardised with the training split's mean and std, and given back by the scaling
    fat = np.array([1 + 0.61 * i for i in range(80)])
    m, s = ds.meta.target_scaling["mean"], ds.meta.target_scaling["std"]
    assert abs(float(ds.train.y.mean())) < 1e-5 and float(ds.train.y.double().std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    every = np.sort(np.concatenate([(split.y.double().numpy() * s + m) for split in (ds.train, ds.val, ds.test)]))
    assert np.allclose(every, fat, atol=1e-4)  # every series once, in one of the three splits
    assert any("regression (the label read as a quantity)" in n and f"{s:.4g}" in n for n in ds.meta.notes)
    np.savez(tmp_path / "q.npz", X=rng.normal(size=(60, 20)), y=rng.normal(size=60))
    assert load_path(str(tmp_path / "q.npz")).meta.task == "regress"
    # whole numbers, all different, are an identifier, not a quantity: refused
    ids = write_csv(tmp_path / "ids.csv", [[str(i), *(f"{v:.3f}" for v in rng.normal(size=8))] for i in range(60)])
    with pytest.raises(UserError, match=r"'0' has 60 different values in 60 series, too many to be classes; they are whole numbers, all different, as an identifier's are .*--label-column"):
        load_path(str(ids))
    # every number from 1 to K is class numbers, however many: refused, --task classify takes them
    numbered = write_csv(tmp_path / "numbered.csv", [[str(1 + i % 30), *(f"{v:.3f}" for v in rng.normal(size=8))] for i in range(50)])
    with pytest.raises(UserError, match=r"30 different values in 50 series, too many to be classes; they are every whole number from 1 to 30, as class numbers are"):
        load_path(str(numbered))
    assert load_path(str(numbered), task="classify").meta.n_classes == 30
    # names can be neither: refused
    named = write_csv(tmp_path / "named.csv", [[f"n{i}", *(f"{v:.3f}" for v in rng.normal(size=8))] for i in range(60)], ["who", *(f"w{j}" for j in range(8))])
    with pytest.raises(UserError, match=r"'who' has 60 different values in 60 series, too many to be classes; give the column"):
        load_path(str(named), label_column="who")
    # --task overrides the rule: a rating of few values regressed; quantities read as classes; names never regressed
    ratings = write_csv(tmp_path / "ratings.csv", [[str(1 + i % 5), *(f"{v:.3f}" for v in rng.normal(size=8))] for i in range(40)], ["rating", *(f"w{j}" for j in range(8))])
    assert load_path(str(ratings)).meta.n_classes == 5
    regressed = load_path(str(ratings), task="regress")
    scale = regressed.meta.target_scaling
    back = np.concatenate([split.y.double().numpy() * scale["std"] + scale["mean"] for split in (regressed.train, regressed.val, regressed.test)])
    assert regressed.meta.task == "regress" and np.allclose(np.sort(back), sorted(1 + i % 5 for i in range(40)), atol=1e-5)
    assert load_path(str(path), label_column="fat", task="classify").meta.n_classes == 80
    with pytest.raises(UserError, match=r"row 2 has the label 'n0', which is not a number; regression \(task regress\)"):
        load_path(str(named), label_column="who", task="regress")
    with pytest.raises(UserError, match="task must be one of classify, regress"):
        load_path(str(ratings), task="classes")
    with pytest.raises(UserError, match="task applies to a .csv or .npz file"):
        load_path(str(tmp_path), task="regress")
    # many classes of a few examples each still load: 25 classes of 2 series
    many = write_csv(tmp_path / "many.csv", [[f"c{i // 2}", *(f"{v:.3f}" for v in rng.normal(size=8))] for i in range(50)])
    assert len(load_path(str(many)).meta.class_names) == 25


def test_label_column_by_name_and_by_index(tmp_path):
    rows = [[*row[1:], row[0]] for row in series_rows()]  # the label moved to the last column
    header = [f"t{i}" for i in range(10)] + ["kind"]
    path = write_csv(tmp_path / "last.csv", rows, header)
    by_name = load_path(str(path), label_column="kind")
    by_int = load_path(str(path), label_column=10)
    by_str = load_path(str(path), label_column="10")
    for ds in (by_name, by_int, by_str):
        assert ds.meta.class_names == ["cat", "dog"] and ds.meta.input_shape == (10, 1)
        assert torch.equal(ds.train.x, by_name.train.x) and torch.equal(ds.train.y, by_name.train.y)
    headerless = write_csv(tmp_path / "nohead.csv", rows)
    assert load_path(str(headerless), label_column=10).meta.class_names == ["cat", "dog"]


def test_tab_separated_file_reads_like_a_csv(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("\n".join("\t".join(str(c) for c in row) for row in series_rows()) + "\n")
    assert load_path(str(path)).meta.input_shape == (10, 1)


def test_trailing_delimiters_and_an_empty_header_cell_are_tolerated(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(",t0,t1,\n" + "".join(f"{'ab'[i % 2]},{i},{i * i},\n" for i in range(10)))
    ds = load_path(str(path))
    assert ds.meta.input_shape == (2, 1) and sum(ds.sizes().values()) == 10


def test_z_normalisation_on_and_off(tmp_path):
    rows = series_rows(n=12)
    rows[0][1:] = [7.5] * 10  # a constant series
    path = write_csv(tmp_path / "z.csv", rows)
    x = all_x(load_path(str(path)))
    assert torch.allclose(x.mean(dim=1), torch.zeros(12, 1), atol=1e-5)
    std = x.std(dim=1, unbiased=False).flatten()
    assert ((std - 1).abs() < 1e-4).sum() == 11 and (std == 0).sum() == 1  # the constant one is all zeros
    raw = all_x(load_path(str(path), normalize=False))
    expected = {tuple(np.float32(v) for v in row[1:]) for row in rows}
    assert {tuple(r.tolist()) for r in raw[:, :, 0].numpy().astype(np.float32)} == expected


def test_znormalise_never_divides_by_zero():
    x = np.full((2, 5, 3), 1e6)  # (N, L, C), constant
    assert np.array_equal(znormalise(x), np.zeros((2, 5, 3), dtype=np.float32))


# -- NPZ ------------------------------------------------------------------------------------------------
def test_npz_series_two_and_three_dimensional(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "flat.npz", X=rng.normal(size=(30, 16)), y=np.array(["a", "b", "c"] * 10))
    ds = load_path(str(tmp_path / "flat.npz"))
    assert ds.meta.input_shape == (16, 1) and ds.meta.class_names == ["a", "b", "c"]
    assert ds.sizes() == {"train": 19, "val": 5, "test": 6}
    np.savez_compressed(tmp_path / "multi.npz", X=rng.normal(size=(20, 16, 3)).astype(np.float32), y=np.arange(20) % 2)
    ds = load_dataset(str(tmp_path / "multi.npz"), normalize=False)
    assert ds.meta.input_shape == (16, 3) and ds.meta.class_names == ["0", "1"]
    assert ds.train.x.shape == (12, 16, 3) and ds.meta.kind == "series"
    assert torch.equal(ds.test.x, load_dataset(str(tmp_path / "multi.npz"), normalize=False).test.x)


# -- image folders --------------------------------------------------------------------------------------
def test_grey_image_folder_skips_files_that_are_not_images(tmp_path):
    root = image_folder(tmp_path / "imgs", classes=("zebra", "ant"), per_class=5, size=(6, 8))
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "ant" / ".DS_Store").write_bytes(b"\x00\x01")
    ds = load_path(str(root))
    assert ds.meta.kind == "image" and ds.meta.class_names == ["ant", "zebra"]
    assert ds.meta.input_shape == (1, 6, 8) and ds.train.x.shape[1:] == (1, 6, 8)
    assert sum(ds.sizes().values()) == 10
    x = all_x(ds)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.5


def test_rgb_images_are_resized_to_the_most_common_size(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=4, size=(6, 8), rgb=True)
    save_image(root / "cat" / "odd.jpg", np.zeros((20, 30, 3), dtype=np.uint8))
    grey = np.full((6, 8), 128, dtype=np.uint8)
    save_image(root / "dog" / "grey.bmp", grey)  # a grey image among colour ones becomes RGB too
    ds = load_path(str(root))
    assert ds.meta.input_shape == (3, 6, 8) and sum(ds.sizes().values()) == 10


def test_large_images_shrink_to_64_on_the_long_side_and_grey_rgb_files_read_as_grey(tmp_path):
    for c in ("a", "b"):
        for i in range(3):
            pixels = np.full((100, 200, 3), 40 * i + 10, dtype=np.uint8)  # R = G = B: grey, stored as RGB
            save_image(tmp_path / "big" / c / f"{i}.png", pixels)
    ds = load_path(str(tmp_path / "big"))
    assert ds.meta.input_shape == (1, 32, 64)


def test_sixteen_bit_grey_images_are_scaled_not_clipped(tmp_path):
    from PIL import Image

    for c in ("a", "b"):
        for i in range(3):
            path = tmp_path / "deep" / c / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16)).save(path)  # half of the 16-bit range
    x = all_x(load_path(str(tmp_path / "deep")))
    assert x.shape[1:] == (1, 4, 4) and torch.allclose(x, torch.full_like(x, 128 / 255))


# -- the hook in load_dataset ---------------------------------------------------------------------------
def test_paths_and_names_are_told_apart(tmp_path, csv_path):
    assert looks_like_path("data.csv") and looks_like_path("some/folder") and looks_like_path(str(csv_path))
    assert not looks_like_path("mnist2d")
    assert_user_error(lambda: load_dataset("mnist2d"), "unknown data set 'mnist2d'")
    assert_user_error(lambda: load_dataset("missing.csv"), "no such file or folder 'missing.csv'")
    assert_user_error(lambda: load_dataset(str(tmp_path / "nowhere")), "no such file or folder")
    assert_user_error(lambda: load_dataset(str(csv_path), colour=True), "takes no option colour")


# -- bad input ------------------------------------------------------------------------------------------
def test_empty_files(tmp_path):
    for name in ("empty.csv", "empty.npz"):
        (tmp_path / name).write_bytes(b"")
        assert_user_error(lambda: load_path(str(tmp_path / name)), name, "is empty")
    (tmp_path / "blank.csv").write_text("\n  \n")
    assert_user_error(lambda: load_path(str(tmp_path / "blank.csv")), "is empty")
    write_csv(tmp_path / "head.csv", [], ["label", "t0", "t1"])
    assert_user_error(lambda: load_path(str(tmp_path / "head.csv")), "header row but no data rows")


def test_ragged_rows_name_the_first_bad_row(tmp_path):
    rows = series_rows(n=6)
    rows[1] = rows[1][:-2]  # the second data row, line 3 below the header
    path = write_csv(tmp_path / "ragged.csv", rows, ["label"] + [f"t{i}" for i in range(10)])
    assert_user_error(lambda: load_path(str(path)), "ragged.csv", "row 3 has 9 cells", "row 1 has 11")


def test_non_numeric_cell_names_row_column_and_value(tmp_path):
    rows = series_rows(n=6)
    rows[2][4] = "abc"
    path = write_csv(tmp_path / "words.csv", rows, ["label"] + [f"t{i}" for i in range(10)])
    assert_user_error(lambda: load_path(str(path)), "row 4", "column 't3'", "'abc'", "not a number")
    rows[2][4] = ""
    headerless = write_csv(tmp_path / "words2.csv", rows)
    assert_user_error(lambda: load_path(str(headerless)), "row 3", "column 5 (0-based index 4)", "is empty")


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_values_name_row_and_column(tmp_path, bad):
    rows = series_rows(n=6)
    rows[4][2] = bad
    path = write_csv(tmp_path / "nan.csv", rows)
    assert_user_error(lambda: load_path(str(path)), "row 5", "column 3", "finite")
    x = np.random.default_rng(0).normal(size=(6, 5, 2))
    x[3, 2, 1] = float(bad)
    np.savez(tmp_path / "nan.npz", X=x, y=np.arange(6) % 2)
    assert_user_error(lambda: load_path(str(tmp_path / "nan.npz")), "X[3, 2, 1]", "finite")


def test_only_one_class(tmp_path):
    path = write_csv(tmp_path / "one.csv", series_rows(n=6, labels=("solo",)))
    assert_user_error(lambda: load_path(str(path)), "only one class ('solo')", "at least 2 classes")


def test_label_column_that_does_not_exist_lists_the_columns(tmp_path, csv_path):
    assert_user_error(lambda: load_path(str(csv_path), label_column="nope"), "no column 'nope'", "'label', 't0'", "0 to 10")
    assert_user_error(lambda: load_path(str(csv_path), label_column=11), "no column 11", "0 to 10")
    headerless = write_csv(tmp_path / "nohead.csv", series_rows())
    assert_user_error(lambda: load_path(str(headerless), label_column="kind"), "no column 'kind'", "no header row", "0 to 10")
    assert_user_error(lambda: load_path(str(csv_path), label_column=1.5), "label_column must be")


def test_too_few_examples_says_how_many_are_needed(tmp_path):
    path = write_csv(tmp_path / "two.csv", series_rows(n=2))
    assert_user_error(lambda: load_path(str(path)), "holds 2 series", "at least 3")


def test_npz_without_arrays_or_with_mismatched_or_wrong_shapes(tmp_path):
    x, y = np.zeros((6, 5)), np.arange(6) % 2
    cases = {
        "noy.npz": ({"X": x}, ["no array y", "arrays found: X"]),
        "lower.npz": ({"x": x, "y": y}, ["no array X", "arrays found: x, y"]),
        "short.npz": ({"X": x, "y": y[:4]}, ["6 series", "4 labels"]),
        "rank.npz": ({"X": np.zeros((6, 5, 2, 2)), "y": y}, ["shape (6, 5, 2, 2)", "(N, L) or (N, L, C)"]),
        "rank1.npz": ({"X": np.zeros(6), "y": y}, ["(N, L) or (N, L, C)"]),
        "text.npz": ({"X": np.array([["a"] * 5] * 6), "y": y}, ["expected numbers"]),
    }
    for name, (arrays, fragments) in cases.items():
        np.savez(tmp_path / name, **arrays)
        assert_user_error(lambda: load_path(str(tmp_path / name)), name, *fragments)


def test_npz_that_is_not_one_is_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "single.npy", np.zeros(3))
    os.rename(tmp_path / "single.npy", tmp_path / "single.npz")
    assert_user_error(lambda: load_path(str(tmp_path / "single.npz")), "single array")
    np.savez(tmp_path / "objects.npz", X=np.zeros((6, 4)), y=np.array([{"a": 1}] * 6, dtype=object))
    assert_user_error(lambda: load_path(str(tmp_path / "objects.npz")), "never unpickled")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip file")
    assert_user_error(lambda: load_path(str(tmp_path / "junk.npz")), "cannot read", "junk.npz")


def test_image_folder_without_classes_or_images(tmp_path):
    flat = tmp_path / "flat"
    save_image(flat / "1.png", np.zeros((4, 4), dtype=np.uint8))
    assert_user_error(lambda: load_path(str(flat)), "no class subfolders")
    (tmp_path / "noimg" / "cat").mkdir(parents=True)
    (tmp_path / "noimg" / "cat" / "readme.txt").write_text("hi")
    assert_user_error(lambda: load_path(str(tmp_path / "noimg")), "holds no images")
    root = image_folder(tmp_path / "partial", classes=("cat",), per_class=3)
    (root / "dog").mkdir()
    assert_user_error(lambda: load_path(str(root)), "dog", "holds no images")


def test_unreadable_image_names_the_file(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=3)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert_user_error(lambda: load_path(str(root)), "broken.png", "cannot read the image")
    good = (root / "cat" / "0.png").read_bytes()
    (root / "dog" / "broken.png").write_bytes(good[: len(good) // 2])  # a valid header, truncated pixels
    assert_user_error(lambda: load_path(str(root)), "broken.png")


def test_image_folder_with_one_class(tmp_path):
    root = image_folder(tmp_path / "imgs", classes=("only",), per_class=4)
    assert_user_error(lambda: load_path(str(root)), "only one class ('only')")


def test_a_short_text_file_is_read_as_text_and_refused_for_its_length(tmp_path):
    (tmp_path / "story.txt").write_text("once upon a time")
    assert_user_error(lambda: load_dataset(str(tmp_path / "story.txt")), "story.txt' has 16 characters", "are needed")


def test_unknown_extension_lists_the_supported_kinds(tmp_path):
    (tmp_path / "data.json").write_text("{}")
    assert_user_error(lambda: load_path(str(tmp_path / "data.json")), "unsupported extension '.json'", ".csv", ".npz", "folder")


def test_label_column_is_refused_where_there_is_none(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((6, 4)), y=np.arange(6) % 2)
    assert_user_error(lambda: load_path(str(tmp_path / "d.npz"), label_column="y"), "only read from a .csv")


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_garbage_bytes_give_only_user_errors(tmp_path, suffix):
    rng = np.random.default_rng(1)
    for i in range(5):
        path = tmp_path / f"junk{i}{suffix}"
        path.write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
        with pytest.raises(UserError):
            load_path(str(path))


# -- end to end -----------------------------------------------------------------------------------------
def test_compare_runs_on_a_csv(csv_path, tmp_path):
    from nncompare.train import TrainConfig

    result = nncompare.compare(str(csv_path), models=["mlp", "gru"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path / "store", workers=1)
    assert len(result.runs) == 2
    assert all(r["status"] == "done" for r in result.runs)
    assert (tmp_path / "store").is_dir()


def test_cli_bad_label_column_is_one_line_and_exit_2(csv_path, tmp_path, capsys):
    from nncompare.cli.main import main

    assert main(["compare", str(csv_path), "--label-column", "nope", "--store", str(tmp_path / "store")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no column 'nope'" in err
