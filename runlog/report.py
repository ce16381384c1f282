"""Turn runs, flags and import outcomes into what the runner reads: tables and stable JSON."""

from __future__ import annotations

import math
from datetime import timezone
from typing import Any

import numpy as np
import pandas as pd

from runlog import report_text
from runlog.report_text import RUN_OPTIONAL_COLUMNS, render_columns, run_table_cells
from runlog.rules import rule_grade

#: JSON fields of each run in ``runlog report --format json`` (stable; listed in the README).
RUN_JSON_FIELDS: dict[str, str] = {
    "run_id": "stable run id",
    "start_local": "local start, ISO 8601 with offset",
    "start_utc": "UTC start, ISO 8601",
    "distance_km": "distance [km]",
    "moving_time_s": "moving time [s]",
    "elapsed_time_s": "elapsed time [s]",
    "pace_s_per_km": "moving pace [s/km]",
    "avg_hr_bpm": "average heart rate [bpm]",
    "hr_max_bpm": "HRmax the HR tests used [bpm], null when none is known",
    "hr_max_source": "profile | history_30s | age_formula (the last two are estimates)",
    "avg_cadence_spm": "average cadence [steps/min]",
    "ascent_m": "ascent [m]",
    "temp_c": "temperature [°C]",
    "temp_source": "device | weather | runner",
    "source_file": "file the run came from",
    "sport_inferred": "true when the sport was inferred from speed",
    "quality_issues": "data-quality codes, empty list when clean",
    "knee_risk": "low | moderate | high",
    "cramp_risk": "low | moderate | high",
    "flags": "list of {rule, risk, level, value, threshold, unit, message, source, grade}",
}
FLAG_JSON_FIELDS = ("rule", "risk", "level", "value", "threshold", "unit", "message", "source",
                    "grade")


def _clean(value: Any) -> Any:
    """JSON-safe scalar: NaN/NA → None, numpy → python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def format_duration(seconds: float | None) -> str:
    """1:02:03 or 42:05; '–' when unknown."""
    return report_text.format_duration(None if pd.isna(seconds) else seconds)


def format_pace(s_per_km: float | None) -> str:
    """5:12 /km; '–' when unknown."""
    return report_text.format_pace(None if pd.isna(s_per_km) else s_per_km)


def local_iso(start_utc: pd.Timestamp, offset_min: float | None) -> str:
    """ISO 8601 local time with its offset, e.g. 2024-05-12T23:30:00+02:00."""
    offset = 0 if offset_min is None or pd.isna(offset_min) else int(offset_min)
    zone = timezone(pd.Timedelta(minutes=offset).to_pytimedelta())
    return start_utc.tz_convert(zone).isoformat()


def _pace(runs: pd.DataFrame) -> pd.Series:
    km = runs["distance_m"] / 1000.0
    return (runs["moving_s"] / km).where((km > 0) & (runs["moving_s"] > 0))


def runs_json(runs: pd.DataFrame, flags: pd.DataFrame) -> list[dict]:
    """Per-run JSON objects with RUN_JSON_FIELDS, flags attached (levels ≥ 1 only)."""
    pace = _pace(runs)
    active = flags[flags["level"].fillna(0) > 0] if len(flags) else flags
    by_run = {rid: grp for rid, grp in active.groupby("run_id")} if len(active) else {}
    out = []
    for i, row in runs.iterrows():  # one object per run: per-run, not per-sample
        grp = by_run.get(row["run_id"])
        flag_list = [] if grp is None else [
            {k: _clean(f[k]) if k != "grade" else rule_grade(f["rule"])
             for k in FLAG_JSON_FIELDS} for _, f in grp.iterrows()]
        issues = row.get("quality_issues")
        out.append({
            "run_id": row["run_id"],
            "start_local": local_iso(row["start_utc"], row.get("tz_offset_min")),
            "start_utc": row["start_utc"].isoformat(),
            "distance_km": _round(row["distance_m"] / 1000.0, 3),
            "moving_time_s": _round(row.get("moving_s"), 1),
            "elapsed_time_s": _round(row.get("elapsed_s"), 1),
            "pace_s_per_km": _round(pace.loc[i], 1),
            "avg_hr_bpm": _round(row.get("avg_hr_bpm"), 1),
            "hr_max_bpm": _round(row.get("hr_max_used_bpm"), 1),
            "hr_max_source": _clean(row.get("hr_max_source")),
            "avg_cadence_spm": _round(row.get("avg_cadence_spm"), 1),
            "ascent_m": _round(row.get("ascent_m"), 1),
            "temp_c": _round(row.get("temp_c"), 1),
            "temp_source": _clean(row.get("temp_source")),
            "source_file": row.get("source_file"),
            "sport_inferred": bool(_clean(row.get("sport_inferred")) or False),
            "quality_issues": [x for x in str(issues or "").split(";") if x],
            "knee_risk": _clean(row.get("knee_risk")),
            "cramp_risk": _clean(row.get("cramp_risk")),
            "flags": flag_list,
        })
    return out


def _round(value: Any, digits: int) -> float | None:
    value = _clean(value)
    return None if value is None else round(float(value), digits)


def top_reason(runs: pd.DataFrame) -> pd.Series:
    """The first message behind the higher of the knee and cramp levels; '' when both are low.

    A low run may still carry a moderate flag (a tip-level score below the moderate cut-off);
    the one-line table keeps quiet about it, ``report --run`` shows it.
    """
    values = _run_values(runs, [])
    absent = [None] * len(runs)
    return pd.Series([report_text.top_reason(*four) for four in zip(
        *(values.get(c, absent) for c in ("knee_risk", "cramp_risk", "knee_top", "cramp_top")),
        strict=True)], index=runs.index, dtype=object)


def _run_values(runs: pd.DataFrame, columns: list[str]) -> dict[str, list]:
    """``columns`` and the optional columns present of a runs frame, as lists: numbers as
    floats (NaN when missing), texts as str or None."""
    values: dict[str, list] = {}
    for col in columns:
        if col == "date":
            values[col] = runs["start_local"].dt.strftime("%Y-%m-%d %H:%M").tolist()
        elif col == "run_id":
            values[col] = runs[col].tolist()
        else:
            values[col] = runs[col].to_numpy(dtype="float64", na_value=np.nan).tolist()
    for col in RUN_OPTIONAL_COLUMNS:
        if col in runs.columns:
            texts = runs[col].astype(object)
            values[col] = texts.where(texts.notna(), None).tolist()
    return values


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The terminal table: one line per run, the columns a runner reads first."""
    if runs.empty:
        return pd.DataFrame()
    cells = run_table_cells(_run_values(runs, list(report_text.RUN_VALUE_COLUMNS)))
    return pd.DataFrame(cells, index=runs.index)


def runs_table_text(runs: pd.DataFrame) -> str:
    """``render_table(runs_table(runs))`` without building the table's frame."""
    if runs.empty:
        return render_table(pd.DataFrame())
    cells = run_table_cells(_run_values(runs, list(report_text.RUN_VALUE_COLUMNS)))
    return render_columns(cells.items())


def render_table(table: pd.DataFrame) -> str:
    """Plain aligned text (no external table library): header, rule, rows."""
    if table.empty:
        return "(no runs)"
    values = table.to_numpy()
    return render_columns((name, [str(v) for v in values[:, i]])
                          for i, name in enumerate(table.columns))
