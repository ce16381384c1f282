"""report.render_table / runs_table, pinned to the row-by-row versions they replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
