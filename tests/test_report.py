"""report.render_table / runs_table, pinned to the row-by-row versions they replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog import report


def _render_row_by_row(table: pd.DataFrame) -> str:
    """The former render_table: cells row by row, padded by a per-row generator."""
    cols = list(table.columns)
    cells = [[str(c) for c in cols]] + [[str(v) for v in row] for row in table.to_numpy()]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    right = {"km", "time", "pace", "HR", "cad", "asc m", "°C"}

    def fmt(row):
        return "  ".join(v.rjust(w) if cols[i] in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)]
                     + [fmt(r) for r in cells[1:]])


@pytest.mark.parametrize("table", [
    pd.DataFrame({"run": ["a1", "b22"], "km": ["5.00", "12.30*"], "reason": ["", "long"]}),
    # ints beside floats: to_numpy makes them floats, as the former version printed them
    pd.DataFrame({"week": [1, 2, 3], "km": [10.5, np.nan, 3.0], "HR": [140, 150, 160]}),
    pd.DataFrame({"n": pd.array([1, None], dtype="Int64"), "note": ["x", None]}),
])
def test_render_table_is_the_row_by_row_text(table):
    assert report.render_table(table) == _render_row_by_row(table)


def test_runs_table_formats_as_series_map_did():
    runs = pd.DataFrame({
        "run_id": ["abcdef123456", "0123456789ab"],
        "start_local": pd.to_datetime(["2024-05-01 07:05", "2024-05-02 18:30"]),
        "distance_m": [10012.0, np.nan], "moving_s": [3661.0, np.nan],
        "avg_hr_bpm": [141.6, np.nan], "avg_cadence_spm": [171.2, 160.0],
        "ascent_m": [np.nan, 12.4], "temp_c": [-0.4, 21.5],
        "knee_risk": ["moderate", "low"], "cramp_risk": ["low", None],
        "knee_top": ["x" * 80 + " | second", ""], "cramp_top": ["", ""],
        "quality_issues": ["", "gps_jump"],
    })
    table = report.runs_table(runs)
    assert table.to_dict("list") == {
        "run": ["abcdef12", "01234567"], "date": ["2024-05-01 07:05", "2024-05-02 18:30"],
        "km": ["10.01", "nan*"], "time": ["1:01:01", "–"], "pace": ["6:06", "–"],
        "HR": ["142", "–"], "cad": ["171", "160"], "asc m": ["–", "12"], "°C": ["-0", "22"],
        "knee": ["moderate", "low"], "cramp": ["low", "–"], "reason": ["x" * 69 + "…", ""]}


def _former_runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """runs_table as it was with pandas throughout (before report_text built the cells)."""
    rank = {"low": 0, "moderate": 1, "high": 2}
    empty = pd.Series("", index=runs.index)
    knee = runs.get("knee_risk", empty).map(rank).fillna(0)
    cramp = runs.get("cramp_risk", empty).map(rank).fillna(0)
    knee_top = runs.get("knee_top", empty).fillna("").astype(str)
    cramp_top = runs.get("cramp_top", empty).fillna("").astype(str)
    chosen = knee_top.where(knee >= cramp, cramp_top).where((knee > 0) | (cramp > 0), "")
    reason = chosen.str.split(" | ", regex=False).str[0].fillna("")
    km = runs["distance_m"] / 1000.0
    pace = (runs["moving_s"] / km).where((km > 0) & (runs["moving_s"] > 0))  # no 0:00 pace

    def duration(seconds):
        if pd.isna(seconds):
            return "–"
        h, rem = divmod(round(float(seconds)), 3600)
        m, s = divmod(rem, 60)
        return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

    def pace_text(x):
        if pd.isna(x) or not np.isfinite(x):
            return "–"
        m, s = divmod(round(float(x)), 60)
        return f"{m}:{s:02d}"

    def each(values, fmt):
        return [fmt(x) for x in values.tolist()]

    def whole(x):
        return "–" if pd.isna(x) else f"{x:.0f}"

    table = pd.DataFrame({
        "run": runs["run_id"].str[:8],
        "date": runs["start_local"].dt.strftime("%Y-%m-%d %H:%M"),
        "km": each(runs["distance_m"] / 1000, lambda x: f"{x:.2f}"),
        "time": each(runs["moving_s"], duration),
        "pace": each(pace, pace_text),
        "HR": each(runs["avg_hr_bpm"], whole),
        "cad": each(runs["avg_cadence_spm"], whole),
        "asc m": each(runs["ascent_m"], whole),
        "°C": each(runs["temp_c"], whole),
        "knee": runs.get("knee_risk", pd.Series("–", index=runs.index)).fillna("–"),
        "cramp": runs.get("cramp_risk", pd.Series("–", index=runs.index)).fillna("–"),
        "reason": each(reason.fillna(""), lambda s: s if len(s) <= 70 else s[:69] + "…"),
    }, index=runs.index)
    quality = runs.get("quality_issues", pd.Series("", index=runs.index)).fillna("")
    table.loc[quality != "", "km"] += "*"
    return table


_NUMBER = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.4, 0.5, 1.5, 59.5]))
_LEVEL = st.one_of(st.none(), st.sampled_from(["low", "moderate", "high", "", "other"]))
_TOP = st.one_of(st.none(), st.text(max_size=4), st.sampled_from([
    "", "x" * 69, "y" * 70, "z" * 71 + " | second", "a | b | c", " | lead", "é" * 75]))


@st.composite
def _runs_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 6))

    def column(strategy):
        return draw(st.lists(strategy, min_size=n, max_size=n))

    frame = pd.DataFrame({
        "run_id": column(st.text("0123456789abcdef", min_size=1, max_size=14)),
        "start_local": pd.to_datetime(column(st.integers(0, 2_000_000_000)), unit="s"),
        "distance_m": np.array(column(_NUMBER), dtype="float64"),
        "moving_s": np.array(column(st.one_of(st.none(), st.floats(0, 1e6))), dtype="float64"),
        "avg_hr_bpm": np.array(column(_NUMBER), dtype="float64"),
        "avg_cadence_spm": np.array(column(_NUMBER), dtype="float64"),
        "ascent_m": np.array(column(_NUMBER), dtype="float64"),
        "temp_c": np.array(column(_NUMBER), dtype="float64"),
    })
    optional = {"knee_risk": _LEVEL, "cramp_risk": _LEVEL, "knee_top": _TOP, "cramp_top": _TOP,
                "quality_issues": st.one_of(st.none(), st.sampled_from(["", "gps_jump"]))}
    for name, strategy in optional.items():
        if draw(st.booleans()):
            frame[name] = pd.Series(column(strategy), dtype=draw(st.sampled_from(["str",
                                                                                  object])))
    return frame


@given(_runs_frames())
@settings(max_examples=300, deadline=None)
def test_runs_table_is_the_former_pandas_table(runs):
    got = report.runs_table(runs)
    want = _former_runs_table(runs)
    assert got.to_dict("list") == want.to_dict("list")
    assert report.runs_table_text(runs) == report.render_table(want)


def test_no_pace_without_moving_time() -> None:
    """A run with distance but 0 s moving (a device summary only) has no pace, not 0:00."""
    from runlog.report_text import format_pace, pace_s_per_km

    assert format_pace(pace_s_per_km(0.0, 1500.0)) == format_pace(None)
    assert format_pace(pace_s_per_km(600.0, 1500.0)) == "6:40"
