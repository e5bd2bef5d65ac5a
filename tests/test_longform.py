"""CSV files in long layout (one row per time step, series grouped by an identifier column): read as the
same series a wide file holds, told apart from tables and wide files, bad layouts refused in one line,
and the same layout read back by predict."""

import numpy as np
import pytest
import torch

from nncompare import UserError
from nncompare.data.files import load_path


def write(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(str(c) for c in r) for r in rows)]) + "\n")
    return path


def make_series(n=30, length=12, channels=1, seed=0):
    """n series (L, C) of two classes that differ in the sign of their trend, labels 'up' / 'down'."""
    rng = np.random.default_rng(seed)
    labels = ["up" if i % 2 == 0 else "down" for i in range(n)]
    x = rng.normal(size=(n, length, channels)) + np.linspace(-2, 2, length)[None, :, None] * np.array([1 if lab == "up" else -1 for lab in labels])[:, None, None]
    return np.round(x, 4), labels


def long_rows(x, labels, shuffle_seed=None, lengths=None):
    """[series_id, time, channels..., label] per step. shuffle_seed: each series' rows in a random order,
    and each pair of series interleaved row by row (the pair's first series still appears first)."""
    blocks = []
    for i, (s, lab) in enumerate(zip(x, labels)):
        block = [[f"s{i:03d}", t * 10, *s[t], lab] for t in range(lengths[i] if lengths is not None else len(s))]
        if shuffle_seed is not None:
            block = [block[k] for k in np.random.default_rng(shuffle_seed + i).permutation(len(block))]
        blocks.append(block)
    if shuffle_seed is None:
        return [r for b in blocks for r in b]
    rows = []
    for a, b in zip(blocks[::2], blocks[1::2] + [[]] * (len(blocks) % 2)):
        for k in range(max(len(a), len(b))):
            rows += ([a[k]] if k < len(a) else []) + ([b[k]] if k < len(b) else [])
    return rows


def test_a_long_file_reads_as_the_same_series_as_the_wide_file(tmp_path):
    x, labels = make_series()
    wide = write(tmp_path / "wide.csv", ["label", *(f"t{t}" for t in range(12))], [[lab, *s[:, 0]] for s, lab in zip(x, labels)])
    long = write(tmp_path / "long.csv", ["series_id", "time", "value", "label"], long_rows(x, labels, shuffle_seed=1))
    a, b = load_path(str(wide)), load_path(str(long))
    assert b.meta.kind == "series" and b.meta.input_shape == (12, 1) and b.meta.class_names == a.meta.class_names
    assert b.sizes() == a.sizes()
    for part in ("train", "val", "test"):
        assert torch.equal(getattr(a, part).y, getattr(b, part).y)
        assert torch.equal(getattr(a, part).x, getattr(b, part).x)  # the same numbers to the bit: the same runs
        assert getattr(b, part).lengths is None
    assert b.meta.columns["layout"] == "long" and b.meta.columns["group"] == ["series_id"] and b.meta.columns["time"] == "time"
    note = b.meta.notes[0]
    assert "long layout" in note and "30 series told apart by 'series_id'" in note and "in the order of 'time'" in note and "'value'" in note


def test_channels_varying_lengths_and_a_label_found_by_its_constancy(tmp_path):
    x, labels = make_series(n=20, length=10, channels=2)
    lengths = [10 if i % 3 else 7 for i in range(20)]
    rows = [[r[0], r[1], r[2], r[3], "lab", r[4]] for r in long_rows(x, labels, lengths=lengths)]  # a constant 'site' column, then the label
    path = write(tmp_path / "two.csv", ["subject_id", "t", "ax", "ay", "site", "activity"], rows)
    ds = load_path(str(path), drop_columns="site")
    assert ds.meta.input_shape == (10, 2) and ds.meta.columns["channels"] == ["ax", "ay"] and ds.meta.columns["label"] == "activity"
    lengths_seen = torch.cat([ds.train.lengths, ds.val.lengths, ds.test.lengths])
    assert sorted(lengths_seen.tolist()) == sorted(lengths)
    for split in (ds.train, ds.val, ds.test):
        for s, n in zip(split.x, split.lengths):
            assert torch.all(s[n:] == 0)  # padding stays zero
            assert torch.allclose(s[:n].mean(0), torch.zeros(2), atol=1e-5)  # z-normalised over real steps only
    # without a label named so, the last column with one value per series is the label: 'activity', not 'site'
    assert load_path(str(path)).meta.columns["label"] == "activity"


def test_a_file_without_a_time_column_keeps_its_row_order(tmp_path):
    x, labels = make_series(n=12, length=6)
    rows = [[r[0], r[2], r[3]] for r in long_rows(x, labels)]
    ds = load_path(str(write(tmp_path / "notime.csv", ["id", "value", "class"], rows)))
    assert ds.meta.columns["time"] is None and "the file's row order" in ds.meta.notes[0]
    assert ds.meta.input_shape == (6, 1)


def test_tables_and_wide_files_with_repeated_ids_are_not_read_as_long(tmp_path):
    rng = np.random.default_rng(0)
    # a table of visits: a diagnosis per visit, so not one label per patient
    visits = [[f"p{i // 3}", f"{rng.normal():.3f}", f"{rng.normal():.3f}", ["a", "b"][(i * 7 // 3 + i) % 2]] for i in range(60)]
    table = load_path(str(write(tmp_path / "visits.csv", ["patient_id", "age", "pressure", "label"], visits)))
    assert table.meta.kind == "table"
    # several recordings per subject, one per row, the steps named as positions: one series per row
    x, labels = make_series(n=24, length=8)
    wide = [[f"subj{i // 4}", lab, *s[:, 0]] for i, (s, lab) in enumerate(zip(x, labels))]
    ds = load_path(str(write(tmp_path / "wide.csv", ["subject_id", "label", *(f"t{t}" for t in range(8))], wide)))
    assert ds.meta.input_shape == (8, 1) and len(ds.train) + len(ds.val) + len(ds.test) == 24
    # --as table reads a long file row by row, as before
    long = write(tmp_path / "long.csv", ["series_id", "time", "value", "label"], long_rows(x, labels))
    assert load_path(str(long), kind="table").meta.kind == "table"


def test_bad_long_files_are_refused_in_one_line(tmp_path):
    x, labels = make_series(n=12, length=6)
    rows = long_rows(x, labels)

    def refused(name, header, rows, *fragments, **options):
        with pytest.raises(UserError) as e:
            load_path(str(write(tmp_path / name, header, rows)), **options)
        assert "\n" not in str(e.value)
        for f in fragments:
            assert f in str(e.value), (f, str(e.value))

    header = ["series_id", "time", "value", "label"]
    changed = [r if k != 3 else [*r[:3], "down" if r[3] == "up" else "up"] for k, r in enumerate(rows)]
    refused("mixed.csv", header, changed, "series 's000'", "labels 'up' and 'down'", "one label per series", kind="long")
    repeated = [r if k != 2 else [r[0], 0, *r[2:]] for k, r in enumerate(rows)]
    refused("twice.csv", header, repeated, "series 's000' has two rows at time 0", "one row per series and time step")
    gap = [r if k != 4 else [*r[:2], "", r[3]] for k, r in enumerate(rows)]
    refused("gap.csv", header, gap, "row 6, column 'value' is empty", "fill the gap", kind="long")
    for bad, fragment in (("soon", "holds 'soon'"), ("nan", "holds 'nan'"), ("", "is empty")):
        times = [[r[0], bad, *r[2:]] if k == 1 else r for k, r in enumerate(rows)]
        refused("times.csv", header, times, f"row 3, time column 'time' {fragment}", "ISO date")
    mixed = [[r[0], "2024-05-01" if k == 1 else r[1], *r[2:]] for k, r in enumerate(rows)]
    refused("mixed_times.csv", header, mixed, "mixes numbers and dates")
    refused("noid.csv", ["name", "time", "value", "label"], rows, "no identifier column whose values repeat", kind="long")


def test_two_identifier_columns_tell_series_apart_and_a_row_number_is_set_aside(tmp_path):
    x, labels = make_series(n=12, length=6)
    rows = [[f"subj{int(r[0][1:]) // 2}", f"trial{int(r[0][1:]) % 2}", k, *r[1:]] for k, r in enumerate(long_rows(x, labels))]
    path = write(tmp_path / "trials.csv", ["subject_id", "trial_id", "row_id", "time", "value", "label"], rows)
    ds = load_path(str(path))
    assert sum(ds.sizes().values()) == 12 and ds.meta.input_shape == (6, 1)  # 6 subjects x 2 trials, 6 steps each
    assert ds.meta.columns["group"] == ["subject_id", "trial_id"] and ds.meta.columns["ids"] == ["row_id"] and ds.meta.columns["channels"] == ["value"]
    assert "told apart by 'subject_id' and 'trial_id'" in ds.meta.notes[0] and "'row_id' set aside" in ds.meta.notes[1]


def test_iso_dates_order_the_steps(tmp_path):
    x, labels = make_series(n=10, length=5)
    rows = [[r[0], f"2024-05-{1 + r[1] // 10:02d}", r[2], r[3]] for r in long_rows(x, labels)][::-1]  # newest first
    ds = load_path(str(write(tmp_path / "dated.csv", ["series_id", "date", "value", "label"], rows)))
    ordered = load_path(str(write(tmp_path / "ordered.csv", ["series_id", "date", "value", "label"], [r for r in long_rows(x, labels)])))
    # the same series (listed in another order, so compare them sorted by their values)
    key = lambda d: sorted(torch.cat([d.train.x, d.val.x, d.test.x]).reshape(10, -1).tolist())  # noqa: E731
    assert np.allclose(key(ds), key(ordered), atol=1e-5)


def test_compare_and_predict_on_a_long_file(tmp_path):
    import csv

    import nncompare
    from nncompare.predict import predict_file
    from nncompare.train import TrainConfig

    x, labels = make_series(n=30, length=12)
    path = write(tmp_path / "long.csv", ["series_id", "time", "value", "label"], long_rows(x, labels, shuffle_seed=2))
    result = nncompare.compare(str(path), models=["cnn"], seeds=1, config=TrainConfig(max_epochs=3), store=tmp_path / "store", workers=1, reference=False)
    run_dir = result.folder / "cnn-seed0"
    new = write(tmp_path / "new.csv", ["series_id", "time", "value", "label"], long_rows(x[:4], labels[:4]))
    out = predict_file(run_dir, str(new), out=tmp_path / "pred.csv")
    assert out["n"] == 4
    table = list(csv.reader(open(tmp_path / "pred.csv")))
    assert table[0][:3] == ["series_id", "label", "predicted"] and [r[0] for r in table[1:]] == ["s000", "s001", "s002", "s003"]
    short = write(tmp_path / "short.csv", ["series_id", "time", "value"], [r[:3] for r in long_rows(x[:2], labels[:2], lengths=[12, 9])])
    with pytest.raises(UserError, match="series 's001' has 9 rows .time steps.; this run reads series of 12 steps"):
        predict_file(run_dir, str(short), out=tmp_path / "p2.csv")


def test_the_stacked_long_layout_is_refused_with_the_pivot_that_reads(tmp_path):
    """tsfresh's / pandas melt's shape, one row per time step and channel: read as a table it was scored
    as single readings with every series on both sides of the split. It is refused in one line naming
    the pivot; the pivoted file reads as the same series; `kind='table'` still reads rows as examples."""
    x, labels = make_series(n=20, length=8, channels=2)
    stacked = [[f"s{i:03d}", t, kind, s[t, c], lab] for i, (s, lab) in enumerate(zip(x, labels)) for t in range(8) for c, kind in enumerate("xy")]
    path = write(tmp_path / "stacked.csv", ["id", "time", "kind", "value", "label"], stacked)
    for options in ({}, {"kind": "long"}):
        with pytest.raises(UserError) as e:
            load_path(str(path), **options)
        assert "stacked long layout" in str(e.value) and "df.pivot_table(index=['id', 'time'], columns='kind', values='value')" in str(e.value)
        assert "\n" not in str(e.value)
    assert load_path(str(path), kind="table").meta.kind == "table"
    pivoted = write(tmp_path / "pivoted.csv", ["id", "time", "x", "y", "label"], long_rows(x, labels))
    assert load_path(str(pivoted)).meta.input_shape == (8, 2)
    # a column named like a channel that is constant within each series is not a channel name
    constant = [[*r[:2], "left", *r[2:]] for r in long_rows(x[:, :, :1], labels)]
    sensor = write(tmp_path / "sensor.csv", ["id", "time", "sensor", "value", "label"], constant)
    assert load_path(str(sensor)).meta.kind == "table"  # a word column is no channel of a long file: read as before, not refused
    # one row per series and time: a numeric channel that happens to be called 'feature' is a channel
    two = [[*r[:2], r[2], r[2] * 2, r[3]] for r in long_rows(x[:, :, :1], labels)]
    assert load_path(str(write(tmp_path / "feature.csv", ["id", "time", "feature", "value", "label"], two))).meta.input_shape == (8, 2)
