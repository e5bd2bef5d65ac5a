"""CSV files in long layout: one row per time step, the series told apart by an identifier column.

    series_id,time,accel_x,accel_y,activity
    s1,0,0.12,0.30,walk
    s1,1,0.18,0.27,walk
    ...
    s2,0,0.02,0.91,run

Data loggers, databases and pandas' `melt` write series this way (tsfresh and sktime call it the long
format). Read row by row as a table, such a file is scored as a classification of single time steps,
with steps of one series in both the training and the test split: a wrong answer, not a weak one. So
a file whose identifier column repeats its values is read as one series per identifier.

The rule (docs/data.md), applied to the columns left after `drop_columns`:

- the group columns: every column named like an identifier (`id`, `series_id`, `subjectId`, ...:
  tables.id_like_name) that is not the label and has at most half as many different values as rows;
  together they tell the series apart (`subject_id` and `trial_id`: one series per subject and trial).
  Other identifier columns (values all different, such as a row number) are set aside;
- the label: `label_column`, else the one column named label/target/class/y, else the last column
  whose value is the same on every row of each series; a label that changes within a series is an
  error (one label per series; labels per step are not read from files);
- the time column: one named like a time (TIME_NAMES: `time`, `t`, `timestamp`, `date`, `step`, ...).
  Each series' rows are put in its order (numbers, or ISO dates such as 2024-05-03T10:00), and two
  rows of one series at the same time are an error. Without one, the rows' order in the file is the
  time order;
- every other column is a channel: numbers, no gaps.

Series are kept in the order their identifiers first appear. Series of different lengths are
zero-padded at the end with their real lengths kept, as UCR sets of varying length are (data/ucr.py).
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import UserError
from . import tables
from .userdata import _is_number

# the stacked long layout (tsfresh's column_kind / column_value, pandas melt's variable / value): one
# row per time step and channel; not read, refused with the pivot that gives a column per channel
KIND_NAMES = ("kind", "variable", "channel", "dimension", "dim", "sensor", "signal", "feature", "var", "column_kind")
VALUE_NAMES = ("value", "val", "values", "reading", "column_value")
TIME_NAMES = ("time", "t", "timestamp", "datetime", "date", "step", "timestep", "time_step", "tick", "frame", "seconds", "elapsed", "index", "position")


def time_like_name(name: str) -> bool:
    """`time`, `Timestamp`, `time_s`, `step`, `date`, `elapsed_time`: a column that orders the steps."""
    low = name.strip().lower()
    base = re.sub(r"[\s_\-.]*\(?(s|sec|ms|seconds|min|h|utc)\)?$", "", low)  # a unit after the name: time_s, time (ms)
    return low in TIME_NAMES or base in TIME_NAMES or bool(re.search(r"[_\s\-.](time|timestamp|date|step)$", low))


def group_columns(header: list[str] | None, by_column: list[list[str]], candidates: list[int]) -> list[int]:
    """The columns named like an identifier whose values repeat (at most half as many different values
    as rows): together they tell the series of a long file apart (`subject_id` and `trial_id`: one
    series per subject and trial); [] without one."""
    if header is None:
        return []
    return [j for j in candidates if tables.id_like_name(header[j]) and 2 * len(set(by_column[j])) <= len(by_column[j])]


def series_keys(by_column: list[list[str]], group: list[int]) -> list[str]:
    """Each row's series: the value of its identifier column, or of several joined by " / "."""
    if len(group) == 1:
        return by_column[group[0]]
    return [" / ".join(cells) for cells in zip(*(by_column[j] for j in group))]


def quoted(header: list[str], columns: list[int]) -> str:
    """'a', or 'a' and 'b', or 'a', 'b' and 'c'."""
    names = [f"'{header[j]}'" for j in columns]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def looks_long(header: list[str] | None, by_column: list[list[str]], candidates: list[int], label_at: int | None) -> list[int] | None:
    """The group columns when the file reads as long layout by the module's rule, else None.

    Besides a repeating identifier, the rest must fit: the value columns are not named as a run of
    positions (`t0, t1, ...` is one series per row, several rows per subject), some column holds one
    label per series, and the value columns hold numbers. A table of visits with a repeating
    `patient_id` and a diagnosis per visit stays a table."""
    group = group_columns(header, by_column, [j for j in candidates if j != label_at])
    if not group:
        return None
    rest = [j for j in candidates if j not in group and not tables.is_identifier(header[j], by_column[j])]
    _, rows = groups(series_keys(by_column, group))
    label_at = label_at if label_at is not None else _default_label(header, by_column, rest, rows)
    if label_at is None or not _constant_within(by_column[label_at], rows):
        return None
    values = [j for j in rest if j != label_at and not time_like_name(header[j])]
    if not values or tables.positional_names([header[j] for j in values]) and len(values) > 1:
        return None
    return group if all(tables.is_numeric_column(by_column[j]) for j in values) else None


def refuse_stacked(path: str, header: list[str] | None, by_column: list[list[str]], candidates: list[int]) -> None:
    """A UserError when the file is in the stacked long layout: a repeating identifier, a column named
    like a channel's name (KIND_NAMES) whose value changes within a series, a numeric column named
    like a value (VALUE_NAMES), and several rows per series and time (without a time column: a
    channel name that is not a number). Read as a table its rows would be single readings of one channel each,
    with every series on both sides of the split; read as long, its repeated times are an error that
    does not say what to do."""
    group = group_columns(header, by_column, candidates)
    if not group:
        return
    low = {j: header[j].strip().lower() for j in candidates if j not in group}
    kind = next((j for j, n in low.items() if n in KIND_NAMES), None)
    value = next((j for j, n in low.items() if n in VALUE_NAMES and tables.is_numeric_column(by_column[j])), None)
    if kind is None or value is None or len(set(by_column[kind])) < 2:
        return
    keys = series_keys(by_column, group)
    if _constant_within(by_column[kind], groups(keys)[1]):
        return
    time_at = next((j for j in low if time_like_name(header[j])), None)
    if time_at is not None and len(set(zip(keys, by_column[time_at]))) == len(keys):
        return  # one row per series and time: the channel columns are columns already
    if time_at is None and tables.is_numeric_column(by_column[kind]):
        return  # numbers that change within a series: a channel that happens to have such a name
    index = ", ".join(repr(header[j]) for j in [*group, *([time_at] if time_at is not None else [])])
    raise UserError(
        f"'{path}' is in the stacked long layout: one row per time step and channel, column '{header[kind]}' naming the channel and "
        f"'{header[value]}' holding its value, which nncompare does not read; give one column per channel, e.g. with pandas "
        f"df.pivot_table(index=[{index}], columns='{header[kind]}', values='{header[value]}').reset_index() and the label as a column, "
        "or read each row as an example with `kind='table'`"
    )


def _default_label(header: list[str], by_column: list[list[str]], rest: list[int], rows: list[np.ndarray]) -> int | None:
    """The one column named label/target/class/y, else the last one constant within every series."""
    named = tables.named_label([header[j] for j in rest])
    if named is not None:
        return rest[named]
    constant = [j for j in rest if not time_like_name(header[j]) and _constant_within(by_column[j], rows)]
    return constant[-1] if constant else None


def groups(ids: list[str]) -> tuple[list[str], list[np.ndarray]]:
    """The identifiers in order of first appearance, and the row indexes of each."""
    order: dict[str, list[int]] = {}
    for i, key in enumerate(ids):
        order.setdefault(key, []).append(i)
    return list(order), [np.array(rows, dtype=np.int64) for rows in order.values()]


def _float_or_nan(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return np.nan


def _constant_within(cells: list[str], rows: list[np.ndarray]) -> bool:
    return all(len({cells[i] for i in r}) == 1 for r in rows)


def _time_keys(cells: list[str], name: str, lines: list[int], path: str) -> np.ndarray:
    """The time column as sortable values: finite numbers, else ISO dates and times (no gaps)."""
    keys = None
    try:
        keys = np.array(cells, dtype=str).astype(np.float64)
        bad = ~np.isfinite(keys)
    except ValueError:
        try:
            if any(_is_number(c) for c in cells):  # numpy would read "10" as the year 10
                raise ValueError("numbers among dates")
            dates = np.array(cells, dtype="datetime64[ns]")
            keys, bad = dates.astype(np.int64), np.isnat(dates)
        except (ValueError, OverflowError):  # some cell is neither, or numbers and dates are mixed
            bad = np.array([not _is_time(c) for c in cells])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "is empty" if not cells[i] else f"holds '{cells[i]}', which is neither a finite number nor an ISO date"
        raise UserError(
            f"'{path}' row {lines[i]}, time column '{name}' {what}; give every time as a number or an ISO date (2024-05-03 or "
            "2024-05-03T10:00), or drop the column (`drop_columns`; the rows' order is then the time order)"
        )
    if keys is None:
        raise UserError(f"'{path}': time column '{name}' mixes numbers and dates; give every time the same way")
    return keys


def _is_time(cell: str) -> bool:
    try:
        return bool(np.isfinite(float(cell)))
    except ValueError:
        pass
    try:
        return not np.isnat(np.datetime64(cell, "ns"))
    except (ValueError, OverflowError):
        return False


def read_long(path: str, header: list[str], by_column: list[list[str]], lines: list[int], candidates: list[int], group: list[int], label_at: int | None) -> dict:
    """Series from a long file: {"series": [(L_i, C) float64], "labels": [str], "names": [identifier],
    "time", "label", "channels": column indexes, "aside": other identifier columns, "lengths": (min, max)}."""
    names, rows = groups(series_keys(by_column, group))
    told = quoted(header, group)
    aside = [j for j in candidates if j not in group and j != label_at and tables.is_identifier(header[j], by_column[j])]
    rest = [j for j in candidates if j not in group and j not in aside]
    if label_at is None:
        label_at = _default_label(header, by_column, rest, rows)
        if label_at is None:
            raise UserError(
                f"'{path}' has one row per time step (series told apart by {told}), but no column holds one value per "
                "series to be its label; give the label column as `label_column`"
            )
    labels = by_column[label_at]
    for key, r in zip(names, rows):
        seen = list(dict.fromkeys(labels[i] for i in r))
        if len(seen) > 1:
            raise UserError(
                f"'{path}': series '{key}' ({told}) has the labels '{seen[0]}' and '{seen[1]}' in column "
                f"'{header[label_at]}' (rows {lines[r[0]]} and {lines[r[[labels[i] for i in r].index(seen[1])]]}); a file in long layout needs one label "
                "per series, the same on each of its rows (labels per time step are not read from files)"
            )
        if seen[0] == "":
            raise UserError(f"'{path}': series '{key}' has no label in column '{header[label_at]}' (row {lines[r[0]]}); every series needs a label")
    rest = [j for j in rest if j != label_at]
    time_at = next((j for j in rest if time_like_name(header[j])), None)
    channels = [j for j in rest if j != time_at]
    if not channels:
        raise UserError(f"'{path}' has no value columns besides the identifier {told}, the label and the time column; keep at least one")
    series = series_by_group(path, header, by_column, lines, names, rows, time_at, channels)
    lengths = [len(s) for s in series]
    return {
        "series": series,
        "labels": [labels[r[0]] for r in rows],
        "names": names,
        "time": time_at,
        "aside": aside,
        "label": label_at,
        "channels": channels,
        "lengths": (min(lengths), max(lengths)),
    }


def series_by_group(path: str, header: list[str], by_column: list[list[str]], lines: list[int], names: list[str], rows: list[np.ndarray], time_at: int | None, channels: list[int]) -> list[np.ndarray]:
    """One (L_i, C) float64 array per group of `rows` (named `names`): the `channels` columns, the rows
    in the order of the time column (or the file's). Gaps, words and repeated times are errors."""
    try:
        values = np.array([by_column[j] for j in channels], dtype=str).astype(np.float64).T  # (rows, C)
    except ValueError:  # some cell is not a number: parse cell by cell to name the first one
        values = np.array([[_float_or_nan(by_column[j][i]) for j in channels] for i in range(len(lines))])
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        i, j = int(bad[0][0]), channels[int(bad[0][1])]
        cell = by_column[j][i]
        what = "is empty" if tables.is_missing(cell) else f"holds '{cell}', which is not a finite number"
        raise UserError(
            f"'{path}' row {lines[i]}, column '{header[j]}' {what}; in long layout (one row per time step) every column besides the "
            "identifier, the label and the time is a channel of numbers: fill the gap or drop the column (`drop_columns`), "
            "or read each row as an example (`kind='table'`)"
        )
    series = []
    for key, r in zip(names, rows):
        if time_at is not None:
            keys = _time_keys([by_column[time_at][i] for i in r], header[time_at], [lines[i] for i in r], path)
            order = np.argsort(keys, kind="stable")
            same = np.flatnonzero(np.diff(keys[order]) == 0)
            if same.size:
                a, b = r[order[same[0]]], r[order[same[0] + 1]]
                raise UserError(
                    f"'{path}': series '{key}' has two rows at {header[time_at]} {by_column[time_at][a]} (rows {lines[a]} and {lines[b]}); "
                    "give one row per series and time step, with a column for each channel"
                )
            r = r[order]
        series.append(values[r])  # (L_i, C)
    return series


def load_long(path: str, header: list[str] | None, by_column: list[list[str]], lines: list[int], kept: list[int], label_at: int | None, normalize: bool, dropped: set[int], width: int, asked: bool, task: str | None = None):
    """The Dataset of a CSV in long layout (the module docstring has the rule; data/files.py has read its
    cells into `by_column`): one series per identifier, its rows in time order, its other numeric
    columns its channels; series of different lengths zero-padded at the end with their lengths kept."""
    from .ucr import _pad_end
    from .userdata import _classes_or_values, _series_dataset

    if header is None:
        raise UserError(f"'{path}' has no header row; a file in long layout needs one that names its identifier, time and label columns")
    group = group_columns(header, by_column, [j for j in kept if j != label_at])
    if not group:
        raise UserError(
            f"'{path}' has no identifier column whose values repeat, so its rows cannot be grouped into series; name the column that "
            "tells the series apart like an identifier (id, series_id, subject_id, ...), or leave out `kind='long'`"
        )
    read = read_long(path, header, by_column, lines, list(kept), group, label_at)
    label_name = header[read["label"]]
    y, class_names = _classes_or_values(np.array(read["labels"], dtype=str), lambda i: f"'{path}' series '{read['names'][i]}'", path, f"the label column '{label_name}'", "series", task=task)
    shortest, longest = read["lengths"]
    x, lengths = _pad_end(read["series"], longest)  # (N, L, C), (N,)
    channels = [header[j] for j in read["channels"]]
    time_name = header[read["time"]] if read["time"] is not None else None
    steps = f"{longest} steps" if shortest == longest else f"{shortest}-{longest} steps (zero-padded at the end to {longest})"
    order = f"in the order of '{time_name}'" if time_name else "in the file's row order (no time column)"
    told = quoted(header, group)
    why = "as asked" if asked else (f"{told} repeats its values" if len(group) == 1 else f"{told} repeat their values")
    notes = [
        f"{path}: long layout ({why}): one row per time step, {len(y)} series told apart by {told}, {steps} {order}, "
        f"channel(s) {', '.join(repr(c) for c in channels)}, label column '{label_name}'; --as table reads each row as an example"
    ]
    if read["aside"]:
        notes.append(f"{path}: {quoted(header, read['aside'])} set aside as an identifier (all values distinct or an id name), not read as a channel")
    record = {
        "layout": "long",
        "header": header,
        "label": label_name,
        "group": [header[j] for j in group],
        "time": time_name,
        "channels": channels,
        "ids": [header[j] for j in read["aside"]],
        "dropped": [header[j] for j in sorted(dropped)],
        "width": width,
    }
    # series of one length are normalised as a wide file's (the same numbers to the bit), others over their real steps
    return _series_dataset(x, y, class_names, path, "CSV in long layout", normalize, {"columns": record, "notes": notes}, lengths if shortest < longest else None)
