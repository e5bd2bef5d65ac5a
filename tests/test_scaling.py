"""`nncompare scaling`: times per length, the fitted growth exponent, the plot, bad lengths."""

import pytest
from PIL import Image

from nncompare.cli.main import main
from nncompare.runs.scaling import growth_exponent, measure_scaling, scaling_model, scaling_table


def test_growth_exponent_of_known_power_laws():
    assert growth_exponent([32, 128, 512], [3.0, 12.0, 48.0]) == pytest.approx(1.0)
    assert growth_exponent([2, 4, 8], [1.0, 4.0, 16.0]) == pytest.approx(2.0)
    assert growth_exponent([10, 100], [5.0, 5.0]) == pytest.approx(0.0, abs=1e-12)


def test_every_model_is_timed_at_every_length_with_matched_parameters():
    points = measure_scaling(["cnn", "gru"], [16, 64], params=2000, min_seconds=0.01)
    lengths, rows = scaling_table(points)
    assert lengths == [16, 64] and [r["model"] for r in rows] == ["cnn", "gru"]
    for r in rows:
        assert all(abs(p - 2000) <= 100 for p in r["params"])  # within 5% at each length
        assert all(t > 0 for t in r["train_us"] + r["infer_us"])
        assert r["train_exponent"] == pytest.approx(growth_exponent(lengths, r["train_us"]))


def test_cli_prints_the_table_and_writes_the_plot(tmp_path, capsys):
    plot = tmp_path / "s.png"
    assert main(["scaling", "--models", "mlp,rnn", "--lengths", "8,32", "--params", "1000", "--seconds", "0.01", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "L=8" in out and "L=32" in out and "k train" in out and "rnn" in out
    assert Image.open(plot).size[0] > 500
    assert main(["scaling", "--lengths", "32"]) == 2
    assert "two or more" in capsys.readouterr().err
    assert main(["scaling", "--lengths", "a,b"]) == 2


def test_the_models_timed_read_every_step():
    """The exponent is the architecture's: no averaging of a long series (CNN, TCN), no segments (recurrent)."""
    for name in ("cnn", "tcn"):
        assert scaling_model(name, 2048, 20_000).downsample == 1
    for name in ("rnn", "gru"):
        assert scaling_model(name, 2048, 20_000).segment == 1
