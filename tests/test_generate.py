"""Writing text from a stored run: reproducible for a seed, the length asked for, greedy at
temperature 0, a stepped recurrent state equal to re-reading the whole prefix, clear errors."""

import subprocess

import pytest
import torch

import nncompare
from nncompare import UserError, generate, load_run
from nncompare.cli.main import main
from nncompare.sampling import choose_next, sample_ids
from nncompare.train import TrainConfig

# non-ASCII characters in the training text: whatever is written must come out as UTF-8
TEXT = "".join(f"ligne {i}: le café → {'é' * (i % 3)} the quick brown fox {i % 7}\n" for i in range(120))
MODELS = ["mlp", "cnn", "tcn", "rnn", "lstm", "gru"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen")
    path = root / "cafe.txt"
    path.write_text(TEXT, encoding="utf-8")
    result = nncompare.compare(
        f"text:{path}", models=MODELS, seeds=1, config=TrainConfig(max_epochs=2), store=root / "store", workers=1,
        model_args={"lstm": {"num_layers": 2, "hidden_size": 16}},
    )
    return {m: load_run(result.folder / f"{m}-seed0") for m in MODELS}


def ids_of(run, text):
    return [run.meta.class_names.index(c) for c in text]


def test_a_seed_repeats_its_text_and_the_length_is_as_asked(runs):
    run = runs["gru"]
    a = generate(run, prompt="ligne", chars=120, seed=3)
    assert generate(run, prompt="ligne", chars=120, seed=3) == a
    assert generate(run.path, prompt="ligne", chars=120, seed=3) == a  # a path reads the same run
    assert generate(run, prompt="ligne", chars=120, seed=4) != a
    for chars in (0, 1, 37):
        assert len(generate(run, prompt="le", chars=chars, seed=0)) == chars
    assert set(a) <= set(TEXT)


@pytest.mark.parametrize("name", MODELS)
def test_temperature_zero_is_the_greedy_path(runs, name):
    run = runs[name]
    sequence = ids_of(run, "ligne 1")
    greedy = []
    with torch.no_grad():
        for _ in range(40):  # the whole prefix read again every step, the most likely character taken
            nxt = int(run.model(torch.tensor([sequence]))[0, -1].argmax())
            greedy.append(nxt)
            sequence.append(nxt)
    expected = "".join(run.meta.class_names[i] for i in greedy)
    assert generate(run, prompt="ligne 1", chars=40, temperature=0) == expected
    assert generate(run, prompt="ligne 1", chars=40, temperature=1e-6, seed=5) == expected  # the limit of T -> 0


@pytest.mark.parametrize("name", MODELS)
def test_stepping_gives_the_outputs_of_reading_the_whole_prefix(runs, name):
    """Recurrent models step their state one character at a time; the others re-read their context.
    The prompt is longer than every fixed context (TCN: 253 characters), so the window is cut."""
    run = runs[name]
    prompt = ids_of(run, TEXT[:300])
    seen, generator = [], torch.Generator().manual_seed(0)

    def choose(logits):
        seen.append(logits.clone())
        return choose_next(logits, 1.0, None, generator)

    new = sample_ids(run.model, prompt, 60, choose)
    with torch.no_grad():
        for k, logits in enumerate(seen):
            whole = run.model(torch.tensor([prompt + new[:k]]))[0, -1]  # (V,): everything so far, read at once
            torch.testing.assert_close(logits, whole, rtol=1e-4, atol=1e-5)


def test_top_k_samples_only_among_the_k_most_likely():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.9, -1.0])
    g = torch.Generator().manual_seed(0)
    picks = {choose_next(logits, 5.0, 2, g) for _ in range(200)}
    assert picks == {1, 3}  # a high temperature spreads the draws, top-k keeps them on the best two


def test_prompt_characters_outside_the_vocabulary_are_named(runs):
    with pytest.raises(UserError, match=r"2 character\(s\) the model never saw in training: 'ß' \(U\+00DF\), '€' \(U\+20AC\)"):
        generate(runs["lstm"], prompt="café ß€")


def test_bad_options_and_non_text_runs_are_user_errors(runs, tmp_path):
    with pytest.raises(UserError, match="temperature must be 0"):
        generate(runs["cnn"], temperature=-1)
    with pytest.raises(UserError, match="top_k must be a positive"):
        generate(runs["cnn"], top_k=0)
    result = nncompare.compare("digits", models=["mlp"], seeds=1, config=TrainConfig(max_epochs=1), store=tmp_path, workers=1)
    with pytest.raises(UserError, match=r"trained on digits \(image, classify\); generate needs a run trained on text"):
        generate(result.folder / "mlp-seed0")


def test_cli_prints_prompt_and_text_as_utf8(runs, capsysbinary):
    run = runs["lstm"]
    assert main(["generate", str(run.path), "--prompt", "le café", "--chars", "50", "--seed", "2", "--temperature", "0.8", "--top-k", "5"]) == 0
    out = capsysbinary.readouterr().out
    expected = "le café" + generate(run, prompt="le café", chars=50, temperature=0.8, top_k=5, seed=2) + "\n"
    assert out == expected.encode("utf-8")


def test_cli_errors_are_one_line_with_exit_code_2(runs, capsys):
    run = runs["lstm"]
    env = {"PATH": __import__("os").environ["PATH"], "LC_ALL": "C", "PYTHONIOENCODING": "ascii"}  # an ASCII terminal
    ok = subprocess.run(["nncompare", "generate", str(run.path), "--prompt", "café", "--chars", "30"], capture_output=True, env=env, timeout=300)
    assert ok.returncode == 0 and ok.stdout.decode("utf-8").startswith("café")  # UTF-8 bytes even so
    bad = subprocess.run(["nncompare", "generate", str(run.path), "--prompt", "naïve"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "'ï' (U+00EF)" in bad.stderr and "training text" in bad.stderr
    assert main(["generate", str(run.path.parent / "nothing")]) == 2
    assert "no run folder" in capsys.readouterr().err
    assert main(["generate", str(run.path), "--temperature", "-1"]) == 2
    assert "must be 0 or a positive number" in capsys.readouterr().err
