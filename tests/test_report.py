"""The report: every section, images that decode, rebuilt from the store alone, in a real browser."""

import base64
import io
import re
import shutil
import subprocess

import pytest
from PIL import Image

import nncompare
from nncompare import UserError
from nncompare.cli.main import main
from nncompare.report import SECTIONS, build_report
from nncompare.train import TrainConfig

IMG = re.compile(r'<img alt="([^"]*)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    result = nncompare.compare("digits", models=["mlp", "cnn", "gru"], seeds=2, config=TrainConfig(max_epochs=1), store=store, workers=1, order=True, report=True)
    return result


def _images(page: str) -> list[tuple[str, Image.Image]]:
    out = []
    for alt, data in IMG.findall(page):
        im = Image.open(io.BytesIO(base64.b64decode(data)))
        im.load()  # decodes every pixel: a truncated or corrupt PNG raises here
        out.append((alt, im))
    return out


def test_compare_writes_a_self_contained_report_with_every_section(digits_report):
    html_path, md_path = digits_report.report
    assert html_path == digits_report.folder / "report.html" and md_path.name == "report.md"
    page = html_path.read_text(encoding="utf-8")
    for key, title in SECTIONS:
        assert f'<section id="{key}"><h2>' in page, key
    assert "<script" not in page and "http://" not in page and "https://" not in page  # opens from disk, offline
    images = _images(page)
    alts = [a for a, _ in images]
    assert len(images) == page.count("<img ")  # every image is an inline PNG
    for needed in ("validation loss per epoch", "confusion matrices", "reliability diagram", "gradient share per pixel", "order sensitivity", "mlp weights in input space", "cnn filters", "gru hidden activations"):
        assert needed in alts, needed
    assert all(im.width > 50 and im.height > 50 for _, im in images)
    assert "most uncertain under MC dropout" in page  # the MLP has dropout 0.5
    md = md_path.read_text(encoding="utf-8")
    assert "| order sensitivity |" in md and "| FLOPs per example |" in md and md.startswith("# nncompare: digits")


def test_the_overview_table_and_verdict_come_from_the_measurements(digits_report):
    page = digits_report.report[0].read_text(encoding="utf-8")
    rows = {r["model"]: r for r in digits_report.rows}
    order = {r["model"]: r for r in digits_report.order}
    for m in ("mlp", "cnn", "gru"):
        # the order-sensitivity cell quotes both measured accuracies
        assert f"{100 * rows[m]['score_mean']:.1f} → {100 * order[m]['score_mean']:.1f} %" in page
    assert f"{digits_report.best.upper()} fits digits best ({100 * rows[digits_report.best]['score_mean']:.1f}%" in page
    assert "across time steps: the same cell at every step" in page and "none: a separate weight for every input position" in page
    md = digits_report.report[1].read_text(encoding="utf-8")
    assert "| 95% CI | seeds together | train acc % | epochs |" in md  # the kept epochs' training accuracy, as measured
    for m in ("mlp", "cnn", "gru"):
        assert f"| {100 * rows[m]['train_acc_mean']:.1f} | {rows[m]['epochs']:.0f} |" in md


def test_report_rebuilds_the_same_page_from_the_store_alone(digits_report, tmp_path, capsys):
    copy = tmp_path / digits_report.folder.name
    shutil.copytree(digits_report.folder, copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert str(copy / "report.html") in capsys.readouterr().out
    assert (copy / "report.html").read_bytes() == digits_report.report[0].read_bytes()  # deterministic


def test_report_of_a_missing_or_unfinished_comparison_is_a_user_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no comparison folder" in capsys.readouterr().err
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "comparison.json").write_text('{"dataset": "digits", "models": ["mlp"], "seeds": [0]}')
    with pytest.raises(UserError, match="no results yet"):
        build_report(tmp_path / "c")


@pytest.mark.slow
def test_text_and_regression_reports(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text('def f(x):\n    return "quoted (text)" + x\n' * 200, encoding="utf-8")
    text = nncompare.compare(f"text:{corpus}", models=["mlp", "gru"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1, report=True)
    page = text.report[0].read_text(encoding="utf-8")
    assert 'class="chars"' in page and "follows <b>" in page  # characters coloured by a unit's activation
    assert "context (last 40 characters)" in page
    assert '<section id="samples">' in page and page.count("temperature 0.5</h3>") == 2  # mlp and gru
    adding = nncompare.compare("adding:20", models=["cnn"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1, report=True)
    page = adding.report[0].read_text(encoding="utf-8")
    assert "A regression task" in page and len(_images(page)) >= 3


def test_order_sensitivity_is_refused_where_positions_are_the_task(tmp_path):
    with pytest.raises(UserError, match="labels every position"):
        nncompare.compare("copy:10", models=["gru"], seeds=1, store=tmp_path, order=True)
    assert not list(tmp_path.iterdir())  # nothing stored


def test_the_report_in_headless_chromium_has_no_broken_image(digits_report, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no Chromium here (apt-get install chromium); the images are still decoded by Pillow in the tests above")
    page = digits_report.report[0].read_text(encoding="utf-8")
    probe = (
        "<script>addEventListener('load',()=>{const imgs=[...document.images];"
        "document.body.dataset.images=imgs.length;"
        "document.body.dataset.broken=imgs.filter(i=>!i.complete||i.naturalWidth===0).length;"
        "document.body.dataset.sections=document.querySelectorAll('section h2').length;});</script>"
    )
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=5000"]
    dom = subprocess.run(flags + ["--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert f'data-images="{page.count("<img ")}"' in dom
    assert 'data-broken="0"' in dom
    assert f'data-sections="{len(SECTIONS)}"' in dom
    shot = tmp_path / "report.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1200,3000", digits_report.report[0].as_uri()], capture_output=True, timeout=120)
    assert Image.open(shot).size == (1200, 3000)


def test_a_comparison_with_order_runs_passes_the_store_check(digits_report, capsys):
    store = digits_report.folder.parent
    assert main(["runs", "--check", "--store", str(store)]) == 0, capsys.readouterr().out
    listed = sorted(p.name for p in digits_report.folder.iterdir() if p.is_dir())
    assert listed == sorted(f"{m}{v}-seed{s}" for m in ("mlp", "cnn", "gru") for v in ("", "-permuted") for s in (0, 1))


def test_the_configuration_table_says_whether_a_validation_split_was_used():
    from nncompare.report.html import _config

    spec = {"dataset": "ucr:ArrowHead", "models": ["cnn"], "seeds": [0], "train": {"max_epochs": 1000, "validation": "none", "refit": False}}
    table = _config(spec, {})
    assert "<tr><td>validation</td><td>none</td>" in table and "<tr><td>refit</td><td>off</td>" in table


def test_the_data_line_says_the_runs_trained_on_train_and_val_together_without_a_split():
    from nncompare.report.html import trained_on

    sizes = {"train": 28, "val": 8, "test": 175}
    auto_none = {"sizes": sizes, "protocol": "36 labelled training examples (under 1000): ...", "train": {"validation": "auto"}}
    assert trained_on(auto_none) == "; every run trained on all 36 train + val examples (no validation split)"
    assert "all 36" in trained_on({"sizes": sizes, "protocol": None, "train": {"validation": "none"}})  # --no-validation
    assert trained_on({"sizes": sizes, "protocol": None, "train": {"validation": "split"}}) == ""  # the split is what it says


def test_a_regression_verdict_gives_the_rmse_in_the_files_units():
    from nncompare.report.overview import verdict

    rows = [
        {"model": "gru", "score_name": "test MSE", "score_mean": 0.0025, "n_done": 3, "train_seconds": 16.0, "train_acc_mean": float("nan")},
        {"model": "mlp", "score_name": "test MSE", "score_mean": 0.08, "n_done": 3, "train_seconds": 12.0, "train_acc_mean": float("nan")},
    ]
    reference = {"model": "minirocket", "description": "MiniRocket", "score_name": "test MSE", "score_mean": 0.0016, "higher_is_better": False, "train_seconds": 0.7}
    said = verdict("fat.ts", rows, "gru", None, {}, {}, reference=reference, target_scaling={"mean": 18.0, "std": 10.0})
    # sqrt(0.0025) x 10 = 0.5 and sqrt(0.0016) x 10 = 0.4
    assert "In the file's units (targets standardised with std 10) the RMSE is GRU 0.5 and the reference 0.4." in said
    assert "RMSE" not in verdict("fat.ts", rows, "gru", None, {}, {}, reference=reference)  # no scaling known: nothing to convert
