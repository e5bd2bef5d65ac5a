"""Tables: the rule that tells a table from a series, the encoding (standardised numbers, imputed gaps
with indicators, one-hot categories), identifier and dropped columns, the MLP-only rule, the gradient
boosting reference, predict/export on a table run, and bad input as one-line errors (exit 2)."""

import csv
import json

import numpy as np
import torch
import pytest

from nncompare import UserError
from nncompare.cli.main import main
from nncompare.data import load_dataset
from nncompare.data.tables import encode, fit_encoding, native_columns, positional_names, table_reasons
from nncompare.models import create_model, models_for_data


# -- builders -------------------------------------------------------------------------------------------
def write_rows(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


def table_rows(n=60, seed=0):
    """id, age (numeric, gaps), city (categorical), income (numeric), smoker (categorical, gaps), outcome (label):
    the label follows city and income, so a model can learn it."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        city = ["paris", "rome", "oslo"][i % 3]
        income = rng.normal()
        outcome = "yes" if (city == "oslo") or income > 0.8 else "no"
        age = "" if i % 7 == 0 else f"{20 + (i * 13) % 50}"
        smoker = ["y", "n", "NA"][i % 3 if i % 5 else 2]
        rows.append([f"m{125 + i}", age, city, f"{income:.4f}", smoker, outcome])
    return rows


TABLE_HEADER = ["id", "age", "city", "income", "smoker", "outcome"]


@pytest.fixture
def table_csv(tmp_path):
    return write_rows(tmp_path / "people.csv", TABLE_HEADER, table_rows())


def series_rows(n=20, length=8, seed=0):
    rng = np.random.default_rng(seed)
    return [["ab"[i % 2], *np.round(rng.normal(size=length), 4)] for i in range(n)]


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_exit_2(capsys, *argv, fragments=()):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    assert err.startswith("nncompare: error:") and err.count("\n") == 1, err
    for f in fragments:
        assert f in err, f"{f!r} not in {err!r}"


# -- the rule --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("names", [["t0", "t1", "t2"], ["1", "2", "3"], ["x_1", "x_2", "x_10"], ["0.5", "1.0", "1.5"], ["step1s", "step2s", "step3s"]])
def test_positional_header_names_read_as_series(names):
    assert positional_names(names)
    assert table_reasons(names, [["1", "2"]] * len(names)) == []


@pytest.mark.parametrize("names", [["age", "income", "city"], ["t3", "t1", "t2"], ["mean radius", "mean texture"]])
def test_other_header_names_read_as_a_table(names):
    assert not positional_names(names)
    assert table_reasons(names, [["1", "2"]] * len(names))[0] == "named columns"


def test_without_a_header_a_categorical_column_makes_a_table_and_numbers_a_series():
    assert table_reasons(None, [["1", "2", "3"], ["4", "5", "6"]]) == []
    assert table_reasons(None, [["1", "2", "3"], ["red", "blue", "red"]]) == ["1 categorical"]
    assert table_reasons(None, [["1", "", "3"], ["4", "5", "6"]]) == []  # a gap alone: a series with a hole (an error there)


def test_a_table_file_is_recognised_with_a_note_and_its_last_column_as_label(table_csv):
    ds = load_dataset(str(table_csv))
    meta = ds.meta
    assert meta.kind == "table" and meta.task == "classify" and meta.class_names == ["no", "yes"]
    assert meta.columns["label"] == "outcome" and meta.columns["ids"] == ["id"]
    assert [f["name"] for f in meta.columns["features"]] == ["age", "city", "income", "smoker"]
    # age (+ its missing indicator), city one-hot (3), income, smoker one-hot (y, n; NA is missing)
    assert meta.columns["encoded"][:2] == ["age", "age missing"] and meta.input_shape == (len(meta.columns["encoded"]),)
    assert ds.train.x.shape == (len(ds.train), meta.input_shape[0])
    note = meta.notes[0]
    assert "people.csv: 4 named feature columns (2 categorical) and label column 'outcome', read as a table, not as series" in note
    assert "--as series" in note and "\n" not in note
    assert "column 'id' set aside as an identifier" in meta.notes[1]
    json.dumps(meta.to_dict())  # the encoding travels in config.json


def test_a_series_csv_stays_a_series_and_an_id_column_is_set_aside(tmp_path):
    rows = [[f"m{125 + i}", *r] for i, r in enumerate(series_rows())]
    path = write_rows(tmp_path / "s.csv", ["id", "label"] + [f"t{i}" for i in range(8)], rows)
    ds = load_dataset(str(path))  # was: "column 'id' holds 'm125', which is not a number"
    assert ds.meta.kind == "series" and ds.meta.input_shape == (8, 1) and ds.meta.class_names == ["a", "b"]
    assert ds.meta.columns["ids"] == ["id"] and "set aside as an identifier" in ds.meta.notes[0]
    headerless = write_rows(tmp_path / "h.csv", None, series_rows())
    assert load_dataset(str(headerless)).meta.kind == "series"


def test_kind_overrides_the_rule_both_ways(tmp_path, table_csv):
    named = write_rows(tmp_path / "named.csv", ["label", "height", "weight", "speed"], [[r[0], *r[1:4]] for r in series_rows()])
    assert load_dataset(str(named)).meta.kind == "table"
    as_series = load_dataset(str(named), kind="series")
    assert as_series.meta.kind == "series" and as_series.meta.input_shape == (3, 1)
    positional = write_rows(tmp_path / "pos.csv", ["label"] + [f"t{i}" for i in range(8)], series_rows())
    as_table = load_dataset(str(positional), kind="table")
    assert as_table.meta.kind == "table" and as_table.meta.input_shape == (8,) and as_table.meta.columns["label"] == "label"
    with pytest.raises(UserError, match="kind must be one of table, series"):
        load_dataset(str(table_csv), kind="image")


# -- the encoding -----------------------------------------------------------------------------------------
def test_numbers_are_imputed_with_the_training_median_and_flagged_then_standardised_on_train():
    ages = ["10", "", "30", "1000", "NaN"]
    cities = ["a", "b", "a", "zzz", ""]
    train = np.array([0, 1, 2])  # 1000 and zzz appear outside the training rows only
    features = fit_encoding(["age", "city"], [ages, cities], train)
    age, city = features
    assert age["median"] == 20.0 and age["indicator"] is True
    assert city["categories"] == ["a", "b"]  # zzz was never seen in training
    x = encode(features, [ages, cities])
    assert x.shape == (5, 4)  # age, age missing, city=a, city=b
    filled = np.array([10, 20, 30])  # the training rows, the gap filled with the median
    assert np.allclose(x[:, 0], (np.array([10, 20, 30, 1000, 20]) - filled.mean()) / filled.std(), atol=1e-5)
    assert x[:, 1].tolist() == [0, 1, 0, 0, 1]
    assert x[3, 2:].tolist() == [0, 0] and x[4, 2:].tolist() == [0, 0]  # unseen and missing categories: all zeros
    raw, categorical = native_columns(features, x)
    assert categorical == [False, True]
    assert np.isnan(raw[1, 0]) and np.isnan(raw[3, 1]) and raw[2, 1] == 0  # gaps back as NaN for gradient boosting


def test_a_stray_word_in_a_number_column_is_named(tmp_path):
    rows = table_rows()
    rows[3][3] = "oops"
    path = write_rows(tmp_path / "stray.csv", TABLE_HEADER, rows)
    with pytest.raises(UserError, match=r"row 5, column 'income' holds 'oops' among numbers"):
        load_dataset(str(path))


# -- columns ---------------------------------------------------------------------------------------------
def test_drop_columns_by_name_or_index_and_their_errors(table_csv):
    ds = load_dataset(str(table_csv), drop_columns="smoker,1")
    assert [f["name"] for f in ds.meta.columns["features"]] == ["city", "income"]
    assert ds.meta.columns["dropped"] == ["age", "smoker"]
    with pytest.raises(UserError, match="has no column 'nope' to drop"):
        load_dataset(str(table_csv), drop_columns=["nope"])
    with pytest.raises(UserError, match="is the label column and cannot be dropped"):
        load_dataset(str(table_csv), drop_columns="outcome", label_column="outcome")


def test_named_label_column_and_too_many_label_values(tmp_path, table_csv):
    rows = [[r[5], *r[1:5]] for r in table_rows()]
    path = write_rows(tmp_path / "first.csv", ["target", "age", "city", "income", "smoker"], rows)
    assert load_dataset(str(path)).meta.columns["label"] == "target"
    with pytest.raises(UserError, match="'id' has 60 different values in 60 rows, too many to be classes"):
        load_dataset(str(table_csv), label_column="id")
    # a numeric column with too many values to be classes is a quantity: regression on the other columns
    income = load_dataset(str(table_csv), label_column="income")
    assert income.meta.task == "regress" and income.meta.n_outputs == 1 and income.meta.class_names == []
    assert income.meta.columns["label"] == "income" and "outcome" in [f["name"] for f in income.meta.columns["features"]]
    assert income.train.y.dtype == torch.float32 and abs(float(income.train.y.mean())) < 1e-5


# -- models and the reference -----------------------------------------------------------------------------
def test_only_the_mlp_takes_tables(table_csv):
    meta = load_dataset(str(table_csv)).meta
    assert create_model("mlp", meta)  # (B, F) in, (B, 2) out
    with pytest.raises(UserError, match="'cnn' .* only feed-forward models \\(mlp\\) take tables"):
        create_model("cnn", meta)
    kept, notes = models_for_data(["mlp", "cnn", "gru"], meta, chosen=False)
    assert kept == ["mlp"] and "cnn, gru skipped" in notes[0]
    with pytest.raises(UserError):
        models_for_data(["mlp", "cnn"], meta, chosen=True)


def test_the_reference_is_gradient_boosting_with_a_linear_second_row(table_csv):
    from nncompare.reference import fit_reference, reference_line

    ds = load_dataset(str(table_csv))
    ref = fit_reference(ds)
    assert ref["model"] == "gradboost" and "HistGradientBoosting" in ref["description"]
    assert [r["model"] for r in ref["also"]] == ["linear"]
    for r in (ref, *ref["also"]):
        assert 0.5 <= r["score_mean"] <= 1.0 and r["fitted_on"] == f"train + validation ({len(ds.train) + len(ds.val)} examples)"
    behind = {"model": "mlp", "n_done": 3, "score_mean": ref["score_mean"] - 0.2, "score_ci95": 0.05, "train_seconds": 1.0}
    line = reference_line(ref, behind)
    assert "gradient boosting wins: it beats the best network, MLP, by 20.0 points" in line and "not a clear win" not in line
    assert "second reference, logistic regression" in line
    close = {**behind, "score_mean": ref["score_mean"] - 0.01}
    assert "not a clear win" in reference_line(ref, close)


# -- CLI: train, predict, export, errors --------------------------------------------------------------------
def test_train_then_predict_keeps_the_identifier_and_survives_gaps_and_unseen_categories(tmp_path, table_csv, capsys):
    code, out, err = run_cli(capsys, "train", table_csv, "--model", "mlp", "--epochs", "1", "--store", tmp_path / "store", "--quiet")
    assert code == 0, err
    run = next((tmp_path / "store").glob("*/mlp-seed0"))
    new = write_rows(tmp_path / "new.csv", ["outcome", "smoker", "income", "city", "age", "id", "extra"], [
        ["yes", "y", "0.1", "oslo", "40", "p1", "x"],
        ["no", "", "", "tokyo", "", "p2", "x"],  # gaps and a city never seen in training
        ["no", "maybe", "nan", "rome", "?", "p3", "x"],
    ])
    code, out, err = run_cli(capsys, "predict", run, new, "--out", tmp_path / "pred.csv")
    assert code == 0, err
    assert "wrote 3 prediction(s)" in out and "accuracy against the labels" in out
    rows = list(csv.reader(open(tmp_path / "pred.csv")))
    assert rows[0] == ["id", "label", "predicted", "p_no", "p_yes"]
    assert [r[0] for r in rows[1:]] == ["p1", "p2", "p3"]
    assert all(abs(float(r[3]) + float(r[4]) - 1) < 1e-4 for r in rows[1:])
    assert_exit_2(capsys, "predict", run, write_rows(tmp_path / "short.csv", ["age", "city"], [["1", "rome"]]), fragments=("has no column 'income'",))
    np.savez(tmp_path / "x.npz", X=np.zeros((2, 3)))
    assert_exit_2(capsys, "predict", run, tmp_path / "x.npz", fragments=("trained on a table", ".csv with the same columns"))
    code, out, err = run_cli(capsys, "export", run, "--format", "torchscript", "--out", tmp_path / "m.pt")
    assert code == 0, err
    assert json.loads((tmp_path / "m.pt.columns.json").read_text())["label"] == "outcome"


def test_sanity_on_a_table_skips_the_sequence_models_with_notes(table_csv, capsys):
    code, out, err = run_cli(capsys, "sanity", table_csv, "--steps", "30")
    assert code in (0, 1), err
    assert "read as a table, not as series" in out and "cnn, tcn, rnn, lstm, gru skipped" in out
    assert "  mlp:" in out and "  cnn:" not in out


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--as", "graph"], ("invalid choice: 'graph'",)),
        (["--drop-columns", "nope"], ("has no column 'nope' to drop",)),
        (["--models", "cnn"], ("only feed-forward models (mlp) take tables",)),
        (["--label-column", "id"], ("too many to be classes",)),
    ],
)
def test_bad_table_options_are_one_line_errors(table_csv, tmp_path, capsys, argv, fragments):
    assert_exit_2(capsys, "compare", table_csv, "--store", tmp_path / "st", "--seeds", "1", "--epochs", "1", *argv, fragments=fragments)


def test_table_options_on_files_that_are_not_csv_are_refused(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", X=np.zeros((6, 4)), y=np.arange(6) % 2)
    assert_exit_2(capsys, "sanity", tmp_path / "d.npz", "--as", "table", fragments=("applies to a .csv file",))
    assert_exit_2(capsys, "sanity", tmp_path / "d.npz", "--drop-columns", "a", fragments=("applies to a .csv file",))


def test_predict_on_a_series_run_keeps_the_identifier(tmp_path, capsys):
    rows = [[f"m{125 + i}", *r] for i, r in enumerate(series_rows())]
    path = write_rows(tmp_path / "s.csv", ["id", "label"] + [f"t{i}" for i in range(8)], rows)
    code, _, err = run_cli(capsys, "train", path, "--model", "mlp", "--epochs", "1", "--store", tmp_path / "store", "--quiet")
    assert code == 0, err
    run = next((tmp_path / "store").glob("*/mlp-seed0"))
    code, _, err = run_cli(capsys, "predict", run, path, "--out", tmp_path / "pred.csv")
    assert code == 0, err
    rows = list(csv.reader(open(tmp_path / "pred.csv")))
    assert rows[0][:3] == ["id", "label", "predicted"] and [r[0] for r in rows[1:4]] == ["m125", "m126", "m127"]
