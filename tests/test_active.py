"""Active learning (`nncompare label-next`, `label-add`, nncompare/active.py): the scores against their
formulas, the ranking on a model whose probabilities are set by hand, the files written, the labels
folded back in, and the one-line errors (exit 2)."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from nncompare import UserError
from nncompare.active import (
    CSV_NAME,
    HTML_NAME,
    acquisition_scores,
    add_labels,
    bald_scores,
    entropy_scores,
    label_next,
    margin_scores,
    random_scores,
    ranking,
)
from nncompare.analysis.predict import mc_dropout_proba
from nncompare.cli.main import main
from nncompare.data import DatasetMeta
from nncompare.models import create_model
from nncompare.store import write_run

# four inputs whose class probabilities the stub model returns as they are
PROBS = np.array(
    [
        [0.98, 0.01, 0.01],  # 0: confident
        [0.40, 0.30, 0.30],  # 1: the highest entropy, margin 0.9
        [0.45, 0.45, 0.10],  # 2: the smallest margin (1 - 0 = 1), entropy below 1's
        [0.60, 0.30, 0.10],  # 3: in between on both
    ]
)
ENTROPY_ORDER = [1, 2, 3, 0]
MARGIN_ORDER = [2, 1, 3, 0]
SERIES = DatasetMeta(name="toy", kind="series", task="classify", input_shape=(5, 1), n_classes=3, class_names=["a", "b", "c"])


class FixedProbabilities(nn.Module):
    """Input i (its first value is i) -> log PROBS[i], so the softmax gives PROBS[i] back."""

    def __init__(self, probs: np.ndarray):
        super().__init__()
        self.logits = nn.Parameter(torch.log(torch.tensor(probs, dtype=torch.float32)), requires_grad=False)

    def forward(self, x):
        return self.logits[x[:, 0, 0].round().long()]  # (B, L, C) -> (B, K)


def stub_run(probs=PROBS, meta=SERIES):
    return SimpleNamespace(meta=meta, model=FixedProbabilities(probs), config={"model": "stub"}, path="stub-run")


def series_pool(tmp_path, n=4):
    x = np.zeros((n, 5, 1), dtype=np.float32)
    x[:, 0, 0] = np.arange(n)  # the index the stub reads
    x[:, 1:, 0] = np.sin(np.arange(4))[None] * np.arange(1, n + 1)[:, None]
    path = tmp_path / "pool.npz"
    np.savez(path, X=x)
    return path


def entropy_by_hand(p):
    return -sum(v * np.log(v) for v in p if v > 0)


# -- the scores -------------------------------------------------------------------------------------
def test_entropy_and_margin_values():
    assert np.allclose(entropy_scores(PROBS), [entropy_by_hand(p) for p in PROBS])
    assert entropy_scores(np.full((1, 4), 0.25))[0] == pytest.approx(np.log(4))
    assert np.allclose(margin_scores(PROBS), [1 - 0.97, 1 - 0.10, 1.0, 1 - 0.30])
    assert list(ranking(entropy_scores(PROBS))) == ENTROPY_ORDER
    assert list(ranking(margin_scores(PROBS))) == MARGIN_ORDER


def test_bald_equals_its_formula_on_a_toy():
    # 3 passes, 3 inputs, 2 classes: passes that disagree confidently, agree on 50/50, agree confidently
    mc = np.array(
        [
            [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
            [[0.0, 1.0], [0.5, 0.5], [0.9, 0.1]],
            [[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]],
        ]
    )
    by_hand = []
    for n in range(3):
        mean = mc[:, n].mean(0)
        by_hand.append(entropy_by_hand(mean) - np.mean([entropy_by_hand(mc[t, n]) for t in range(3)]))
    assert by_hand[0] == pytest.approx(np.log(2) - np.log(2) / 3)  # H[0.5, 0.5] - (0 + 0 + ln 2) / 3
    assert np.allclose(bald_scores(mc), by_hand)
    assert bald_scores(mc)[1] == pytest.approx(0.0) and entropy_scores(mc.mean(0))[1] == pytest.approx(np.log(2))  # unsure, but no disagreement


def test_bald_of_a_dropout_model_is_the_formula_over_its_passes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).eval()
    x = torch.randn(7, 5, 1)
    passes = mc_dropout_proba(model, x, passes=8, seed=3)  # (T, N, K)
    mean = passes.mean(0)
    expected = -(mean * np.log(mean)).sum(1) - np.mean([-(p * np.log(p)).sum(1) for p in passes], 0)
    assert np.allclose(acquisition_scores(model, x, "bald", passes=8, seed=3), expected, atol=1e-6)
    assert not model.training  # the model's mode is left as it was


def test_random_is_seeded():
    assert np.array_equal(random_scores(50, seed=4), random_scores(50, seed=4))
    assert not np.array_equal(ranking(random_scores(50, seed=4)), ranking(random_scores(50, seed=5)))


# -- label-next ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("strategy", "order"), [("entropy", ENTROPY_ORDER), ("margin", MARGIN_ORDER)])
def test_label_next_ranks_by_the_known_probabilities(tmp_path, strategy, order):
    chosen = label_next(stub_run(), series_pool(tmp_path), k=3, strategy=strategy, out=None)
    assert [r["index"] for r in chosen.rows] == order[:3]
    assert [r["name"] for r in chosen.rows] == [str(i) for i in order[:3]]  # a .npz's inputs are named by index
    first = chosen.rows[0]
    assert first["predicted"] == "a" and first["probabilities"]["a"] == pytest.approx(PROBS[order[0], 0], abs=1e-6)


def test_label_next_random_follows_its_seed(tmp_path):
    pool = series_pool(tmp_path)
    picks = [[r["index"] for r in label_next(stub_run(), pool, k=4, strategy="random", seed=s, out=None).rows] for s in (1, 1, 2)]
    assert picks[0] == picks[1] == list(ranking(random_scores(4, seed=1)))
    assert sorted(picks[2]) == [0, 1, 2, 3]


def test_label_next_writes_k_rows_to_csv_and_html(tmp_path):
    out = tmp_path / "out"
    chosen = label_next(stub_run(), series_pool(tmp_path), k=3, strategy="entropy", out=out)
    with open(out / CSV_NAME, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", "score", "predicted", "p_a", "p_b", "p_c", "label"]
    assert [r["name"] for r in rows] == ["1", "2", "3"] and all(r["label"] == "" for r in rows)
    assert float(rows[0]["score"]) == pytest.approx(entropy_by_hand(PROBS[1]), abs=1e-5)
    page = (out / HTML_NAME).read_text()
    assert page.count('<input id="label') == 3 and page.count("<svg") == 3  # a plot and a blank label per input
    assert json.loads(page.split('<script id="rows" type="application/json">')[1].split("</script>")[0])["rows"][0][0] == "1"
    assert chosen.csv_path == out / CSV_NAME and "entropy score" in chosen.table()


def test_label_next_shows_images_as_a_grid(tmp_path):
    meta = DatasetMeta(name="toy-img", kind="image", task="classify", input_shape=(1, 4, 4), n_classes=3)
    torch.manual_seed(0)
    model = create_model("mlp", meta).eval()
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        Image.fromarray((np.arange(16).reshape(4, 4) * 16 * (i + 1) % 256).astype(np.uint8)).save(folder / f"im{i}.png")
    chosen = label_next(SimpleNamespace(meta=meta, model=model, config={"model": "mlp"}, path="r"), folder, k=4, strategy="bald", out=tmp_path / "o", passes=5)
    page = (tmp_path / "o" / HTML_NAME).read_text()
    assert len(chosen.rows) == 4 and page.count("<img") == 4 and page.count('<input id="label') == 4
    assert all(r["name"].startswith("im") for r in chosen.rows)


def test_k_larger_than_the_pool_takes_the_whole_pool(tmp_path):
    assert len(label_next(stub_run(), series_pool(tmp_path), k=50, out=None).rows) == len(PROBS)


def test_bald_without_dropout_is_a_user_error_naming_the_fix(tmp_path):
    with pytest.raises(UserError, match="`dropout`"):
        label_next(stub_run(), series_pool(tmp_path), strategy="bald", out=None)


# -- folding the labels back in -------------------------------------------------------------------------
def fill(csv_path, labels: dict):
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["label"] = labels.get(r["name"], "")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_label_add_appends_csv_rows_with_the_label_first(tmp_path):
    pool = tmp_path / "pool.csv"
    pool.write_text("".join(f"{i},{i + 0.5},{i + 1},{i + 2},{i + 3}\n" for i in range(4)))
    label_next(stub_run(), pool, k=2, strategy="margin", out=tmp_path / "o")  # lines 3 and 2 (inputs 2 and 1)
    fill(tmp_path / "o" / CSV_NAME, {"3": "c", "2": "b"})
    training = tmp_path / "train.csv"
    training.write_text("a,9,9,9,9,9\n")
    done = add_labels(tmp_path / "o" / CSV_NAME, pool, training)
    assert done["added"] == 2
    assert training.read_text().splitlines() == ["a,9,9,9,9,9", "b,1,1.5,2,3,4", "c,2,2.5,3,4,5"]


def test_label_add_finds_inputs_named_by_an_identifier_and_refuses_a_long_pool(tmp_path):
    from nncompare import UserError

    pool = tmp_path / "pool.csv"
    pool.write_text("meter_id,t0,t1\nm7,1,2\nm8,3,4\n")
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("name,score,predicted,label\nm8,0.9,a,b\n")  # label-next names the inputs by their identifier
    training = tmp_path / "train.csv"
    assert add_labels(labelled, pool, training)["added"] == 1
    assert training.read_text().splitlines() == ["label,meter_id,t0,t1", "b,m8,3,4"]
    long = tmp_path / "long.csv"
    long.write_text("series_id,time,value\nm8,0,1\nm8,1,2\n")
    before = training.read_text()
    with pytest.raises(UserError, match="several rows per input in column 'series_id'.*long layout"):
        add_labels(labelled, long, training)
    assert training.read_text() == before  # nothing written


def test_label_add_npz_and_image_folder(tmp_path):
    pool = series_pool(tmp_path)
    label_next(stub_run(), pool, k=2, out=tmp_path / "o")
    fill(tmp_path / "o" / CSV_NAME, {"1": "b"})  # one of the two labelled, the other left blank
    add_labels(tmp_path / "o" / CSV_NAME, pool, tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as f:
        assert f["X"].shape == (1, 5, 1) and f["X"][0, 0, 0] == 1 and list(f["y"]) == ["b"]

    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("L", (4, 4), 200).save(folder / "x.png")
    labelled = tmp_path / "l.csv"
    labelled.write_text("name,score,predicted,label\nx.png,0.5,a,seven\n")
    add_labels(labelled, folder, tmp_path / "train")
    assert (tmp_path / "train" / "seven" / "x.png").is_file()
    with pytest.raises(UserError, match="exists already"):
        add_labels(labelled, folder, tmp_path / "train")  # never overwrites


# -- the command line ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stored_runs(tmp_path_factory):
    """Two untrained runs on 5-step series: a CNN (no dropout) and an MLP (dropout 0.5)."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for name in ("cnn", "mlp"):
        torch.manual_seed(0)
        model = create_model(name, SERIES)
        # model_args as the runner records them: what the model's rules resolved (the CNN's kernels, fixed filters)
        config = {"dataset": "toy.npz", "data_options": {"normalize": False}, "dataset_meta": SERIES.to_dict(), "model": name, "model_args": dict(getattr(model, "stored_args", {})), "seed": 0}
        write_run(root / name, config, {"status": "done"}, [], model)
        runs[name] = root / name
    return runs


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_label_next_and_label_add(tmp_path, capsys, stored_runs):
    pool = series_pool(tmp_path, n=6)
    code, out, err = run_cli(capsys, "label-next", stored_runs["mlp"], pool, "--k", "3", "--strategy", "bald", "--passes", "4", "--out", tmp_path / "o")
    assert code == 0, err
    assert "3 of 6 inputs to label next, by bald" in out and "label-add" in out
    with open(tmp_path / "o" / CSV_NAME, newline="") as f:
        names = [r["name"] for r in csv.DictReader(f)]
    assert len(names) == 3
    fill(tmp_path / "o" / CSV_NAME, {n: "a" for n in names})
    code, out, err = run_cli(capsys, "label-add", tmp_path / "o" / CSV_NAME, pool, "--out", tmp_path / "more.npz")
    assert code == 0 and "added 3 labelled input(s)" in out, err


def test_cli_bald_on_a_cnn_trained_with_dropout(tmp_path, capsys):
    """`nncompare train --model cnn --dropout 0.2` on a tiny data set, then label-next by BALD, end to end."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 10)
    x = (rng.normal(size=(30, 8, 1)) + y[:, None, None]).astype(np.float32)
    np.savez(tmp_path / "train.npz", X=x, y=y)
    code, _, err = run_cli(capsys, "train", tmp_path / "train.npz", "--model", "cnn", "--dropout", "0.2", "--width", "4", "--layers", "1", "--epochs", "2", "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model_args"]["dropout"] == 0.2
    np.savez(tmp_path / "pool.npz", X=rng.normal(size=(6, 8, 1)).astype(np.float32))
    code, out, err = run_cli(capsys, "label-next", tmp_path / "run", tmp_path / "pool.npz", "--k", "3", "--strategy", "bald", "--passes", "4", "--out", tmp_path / "o")
    assert code == 0, err
    assert "3 of 6 inputs to label next, by bald" in out
    with open(tmp_path / "o" / CSV_NAME, newline="") as f:
        scores = [float(r["score"]) for r in csv.DictReader(f)]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and scores[0] > 0  # the passes differ: the dropout layer samples


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "entorpy"], "unknown strategy 'entorpy'; did you mean 'entropy'?"),
        (["--k", "0"], "argument --k: '0' must be at least 1"),
        (["--strategy", "bald"], "--model cnn --dropout 0.2"),  # a CNN trained without dropout (its default, 0)
        (["--passes", "1", "--strategy", "bald"], "passes must be a whole number of at least 2"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, stored_runs, args, message):
    code, _, err = run_cli(capsys, "label-next", stored_runs["cnn"], series_pool(tmp_path), "--out", tmp_path / "o", *args)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_cli_missing_run_folder_and_pool(tmp_path, capsys, stored_runs):
    code, _, err = run_cli(capsys, "label-next", tmp_path / "nope", series_pool(tmp_path))
    assert code == 2 and "no run folder" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "label-next", stored_runs["cnn"], tmp_path / "missing.csv")
    assert code == 2 and "no such file or folder" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "label-add", tmp_path / "missing.csv", tmp_path, "--out", tmp_path / "x.csv")
    assert code == 2 and "no such file" in err and err.count("\n") == 1
