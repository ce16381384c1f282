"""CSV export: runs, flags, weeks or one run's samples, with units in the column names.

Times are ISO 8601 strings: the local time *with the run's UTC offset* (e.g.
``2021-01-17T11:23:22+01:00``) and the same instant in UTC (``...+00:00``), so a spreadsheet
and ``pandas.read_csv(..., parse_dates=...)`` both read them unambiguously. Missing values
("not measured", "not assessed") are empty cells, never 0. The column lists below are the
contract (the README lists them; tests check them): name → description with unit.

Privacy: :func:`export_samples` can leave positions empty (``drop_positions=True``).
Not medical advice: knee/cramp levels are relative flags, not probabilities.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from runlog.errors import InputError
from runlog.rules import rule_grade
from runlog.weekly import WEEK_COLUMNS

M_PER_KM = 1000.0
#: Decimal places kept per unit (more would be false precision from GPS data).
KM_DECIMALS = 3
SECONDS_DECIMALS = 1
RATE_DECIMALS = 1
RATIO_DECIMALS = 3
DEGREE_DECIMALS = 7
STDOUT = "-"
ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"

RUN_CSV_COLUMNS: dict[str, str] = {
    "run_id": "stable run id",
    "start_local": "local start, ISO 8601 with the run's UTC offset",
    "start_utc": "UTC start, ISO 8601 (+00:00)",
    "tz_offset_min": "local time minus UTC at the start [min]",
    "distance_km": "distance after data-quality cleaning [km]",
    "moving_time_s": "moving time [s]",
    "elapsed_time_s": "elapsed time [s]",
    "pace_s_per_km": "moving pace [s/km]",
    "avg_hr_bpm": "average heart rate while moving [bpm]",
    "max_hr_bpm": "maximum heart rate [bpm]",
    "hr_max_bpm": "HRmax the %HRmax/%HRR tests used [bpm] (empty = none known)",
    "hr_max_source": "profile | history_30s (estimate: best 30-s HR of the last 180 days) | "
                     "age_formula (estimate: 208 − 0.7·age)",
    "avg_cadence_spm": "average cadence while moving [steps/min]",
    "ascent_m": "smoothed ascent [m]",
    "descent_m": "smoothed descent [m]",
    "temp_c": "temperature [°C] (see temp_source)",
    "temp_source": "device | weather | runner | missing",
    "knee_risk": "knee level: low | moderate | high (empty = not assessed)",
    "cramp_risk": "cramp level: low | moderate | high (empty = not assessed)",
    "knee_score": "knee score, Σ weight × level (RULES.md §8)",
    "cramp_score": "cramp score, Σ weight × level (RULES.md §8)",
    "knee_reasons": "top knee messages, ' | '-separated",
    "cramp_reasons": "top cramp messages, ' | '-separated",
    "safety_level": "heat/cold safety note level, 0 none, 1 moderate, 2 high",
    "flag_rules": "rule ids at level ≥ 1 on this run, ';'-separated",
    "quality_ok": "False when the data were too damaged to assess the run",
    "quality_issues": "data-quality codes, ';'-separated",
    "source_file": "file the run came from",
    "source_format": "fit | gpx | tcx",
    "device": "device or app that recorded it",
    "sub_sport": "treadmill, trail, ... or empty",
    "name": "activity name or empty",
}

FLAG_CSV_COLUMNS: dict[str, str] = {
    "run_id": "run the flag belongs to",
    "start_local": "local start of the run, ISO 8601 with offset",
    "start_utc": "UTC start of the run, ISO 8601",
    "rule": "rule id from RULES.md (session_spike, heat, ...)",
    "risk": "knee | cramp | safety | info",
    "level": "0 none, 1 moderate, 2 high; empty = not assessed",
    "value": "the runner's measured number (unit in 'unit')",
    "threshold": "the number it was compared with (unit in 'unit')",
    "unit": "unit of value and threshold",
    "weight": "weight of the rule in the score (0 = shown, never scored)",
    "message": "one sentence for the runner",
    "note": "why not assessed, if so",
    "source": "published source (short citation)",
    "grade": "the rule's evidence grade in RULES.md: A, B, C or I (shown, never scored); "
             "two parts graded apart name each ('B knee, C cramp'); 'not graded' for "
             "knee_pain_recent",
}

WEEK_CSV_COLUMNS: dict[str, str] = {
    "week_start": "Monday of the local week, YYYY-MM-DD",
    "week_end": "Sunday of the local week, YYYY-MM-DD",
    **{k: v for k, v in WEEK_COLUMNS.items() if k != "week_start"},
}

SAMPLE_CSV_COLUMNS: dict[str, str] = {
    "run_id": "run",
    "time_local": "sample time, local, ISO 8601 with the run's offset",
    "time_utc": "sample time, UTC, ISO 8601",
    "elapsed_s": "time since the first sample [s]",
    "lat_deg": "latitude [°] (empty when positions are dropped)",
    "lon_deg": "longitude [°] (empty when positions are dropped)",
    "altitude_m": "altitude [m]",
    "distance_m": "cumulative distance as the device recorded it [m] (empty when the file "
                  "did not record it, e.g. most GPX; not cleaned: the run's distance_km is)",
    "speed_mps": "speed as the device recorded it [m/s] (empty when the file did not record "
                 "it)",
    "hr_bpm": "heart rate [bpm]",
    "cadence_spm": "cadence, both feet [steps/min]",
    "temp_c": "device temperature [°C]",
    "power_w": "running power [W]",
}

EXPORTS = ("runs", "flags", "weeks", "samples")


# --- time formatting (vectorised) ---------------------------------------------------------------
def offset_text(offset_min: pd.Series) -> pd.Series:
    """'+01:00' / '-05:30' from offsets [min] (missing → +00:00)."""
    m = pd.to_numeric(offset_min, errors="coerce").fillna(0).round().astype("int64")
    sign = np.where(m < 0, "-", "+")
    a = m.abs()
    return (pd.Series(sign, index=m.index) + (a // 60).astype(str).str.zfill(2) + ":"
            + (a % 60).astype(str).str.zfill(2))


def iso_local(utc: pd.Series, offset_min: pd.Series | int | float, *,
              fraction: bool = False) -> pd.Series:
    """ISO 8601 local times with offset, e.g. ``2021-01-17T11:23:22+01:00`` (vectorised).

    Whole seconds (floored) unless ``fraction``: then milliseconds are written when some
    time has them (``...T11:23:22.369+01:00``).
    """
    utc = pd.to_datetime(utc, utc=True)
    off = pd.Series(offset_min, index=utc.index) if np.isscalar(offset_min) else offset_min
    off = pd.to_numeric(pd.Series(off, index=utc.index), errors="coerce").fillna(0)
    local = utc.dt.tz_localize(None) + pd.to_timedelta(off.astype("float64"), unit="min")
    text = _format(local, fraction) + offset_text(off)
    return text.where(utc.notna())


def iso_utc(utc: pd.Series, *, fraction: bool = False) -> pd.Series:
    """ISO 8601 UTC times with ``+00:00``; whole seconds unless ``fraction`` (vectorised)."""
    utc = pd.to_datetime(utc, utc=True)
    return (_format(utc.dt.tz_localize(None), fraction) + "+00:00").where(utc.notna())


def _format(naive: pd.Series, fraction: bool) -> pd.Series:
    """'YYYY-MM-DDTHH:MM:SS' (floored), or with '.mmm' when asked and any time has a fraction."""
    if fraction and len(naive) and (naive.dt.microsecond.fillna(0) != 0).any():
        return naive.dt.strftime(ISO_SECONDS + ".%f").str[:-3]
    return naive.dt.floor("s").dt.strftime(ISO_SECONDS)


def _num(frame: pd.DataFrame, name: str) -> pd.Series:
    """A numeric column (all NaN when absent)."""
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return pd.Series(np.nan, index=frame.index, dtype="float64")


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype("object").where(frame[name].notna(), None)
    return pd.Series(None, index=frame.index, dtype="object")


# --- the four exports -----------------------------------------------------------------------------
def export_runs(runs: pd.DataFrame, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per run with RUN_CSV_COLUMNS: numbers in km, s, s/km, bpm, spm, m, °C.

    Parameters
    ----------
    runs : ``RunLog.runs()`` (store columns plus risk.assess levels).
    flags : ``RunLog.flags()``; its rules at level ≥ 1 fill ``flag_rules``.
    """
    km = _num(runs, "distance_m") / M_PER_KM
    moving = _num(runs, "moving_s")
    pace = (moving / km).where((km > 0) & (moving > 0))  # no pace without moving time
    out = pd.DataFrame({
        "run_id": runs["run_id"].astype("object"),
        "start_local": iso_local(runs["start_utc"], _num(runs, "tz_offset_min")),
        "start_utc": iso_utc(runs["start_utc"]),
        "tz_offset_min": _num(runs, "tz_offset_min").astype("Int64"),
        "distance_km": km.round(KM_DECIMALS),
        "moving_time_s": moving.round(SECONDS_DECIMALS),
        "elapsed_time_s": _num(runs, "elapsed_s").round(SECONDS_DECIMALS),
        "pace_s_per_km": pace.round(SECONDS_DECIMALS),
        "avg_hr_bpm": _num(runs, "avg_hr_bpm").round(RATE_DECIMALS),
        "max_hr_bpm": _num(runs, "max_hr_bpm").round(RATE_DECIMALS),
        "hr_max_bpm": _num(runs, "hr_max_used_bpm").round(RATE_DECIMALS),
        "hr_max_source": _text(runs, "hr_max_source"),
        "avg_cadence_spm": _num(runs, "avg_cadence_spm").round(RATE_DECIMALS),
        "ascent_m": _num(runs, "ascent_m").round(RATE_DECIMALS),
        "descent_m": _num(runs, "descent_m").round(RATE_DECIMALS),
        "temp_c": _num(runs, "temp_c").round(RATE_DECIMALS),
        "temp_source": _text(runs, "temp_source"),
        "knee_risk": _text(runs, "knee_risk"),
        "cramp_risk": _text(runs, "cramp_risk"),
        "knee_score": _num(runs, "knee_score"),
        "cramp_score": _num(runs, "cramp_score"),
        "knee_reasons": _text(runs, "knee_top"),
        "cramp_reasons": _text(runs, "cramp_top"),
        "safety_level": _num(runs, "safety_level").astype("Int64"),
        "flag_rules": runs["run_id"].map(_rules_per_run(flags)).fillna(""),
        "quality_ok": _text(runs, "quality_ok"),
        "quality_issues": _text(runs, "quality_issues"),
        "source_file": _text(runs, "source_file"),
        "source_format": _text(runs, "source_format"),
        "device": _text(runs, "device"),
        "sub_sport": _text(runs, "sub_sport"),
        "name": _text(runs, "name"),
    })
    return out[list(RUN_CSV_COLUMNS)].reset_index(drop=True)


def _rules_per_run(flags: pd.DataFrame | None) -> pd.Series:
    """'rule_a;rule_b' per run_id for flags at level ≥ 1 (each rule once, in table order)."""
    if flags is None or flags.empty:
        return pd.Series(dtype="object")
    lvl = pd.to_numeric(flags["level"], errors="coerce").astype("float64")
    active = flags.loc[(lvl >= 1).to_numpy(dtype=bool), ["run_id", "rule"]].drop_duplicates()
    return active.groupby("run_id", sort=False)["rule"].agg(";".join)


def export_flags(flags: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, rule, risk) assessed, with FLAG_CSV_COLUMNS, runs' start times added.

    Parameters
    ----------
    flags : ``RunLog.flags()`` long table.
    runs : ``RunLog.runs()`` (for start times; flags of runs not in ``runs`` are dropped, so a
        --since/--until filter on runs filters the flags too).
    """
    times = pd.DataFrame({
        "run_id": runs["run_id"].to_numpy(),
        "start_local": iso_local(runs["start_utc"], _num(runs, "tz_offset_min")).to_numpy(),
        "start_utc": iso_utc(runs["start_utc"]).to_numpy(),
        "_order": np.arange(len(runs)),
    })
    if flags is None or flags.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in FLAG_CSV_COLUMNS})
    f = flags.reset_index(drop=True).assign(_row=lambda d: np.arange(len(d)))
    out = f.merge(times, on="run_id", how="inner").sort_values(["_order", "_row"])
    out["level"] = pd.to_numeric(out["level"], errors="coerce").astype("Int64")
    for col in ("value", "threshold", "weight"):
        out[col] = _num(out, col)
    for col in ("unit", "message", "note", "source"):
        out[col] = _text(out, col)
    out["grade"] = out["rule"].map(rule_grade).astype("string")
    return out[list(FLAG_CSV_COLUMNS)].reset_index(drop=True)


def export_weeks(weeks: pd.DataFrame) -> pd.DataFrame:
    """The weekly table with WEEK_CSV_COLUMNS: dates as YYYY-MM-DD, levels as text.

    Empty weeks keep ``runs`` = 0 and empty numbers (see :mod:`runlog.weekly`).
    """
    start = pd.to_datetime(weeks["week_start"])
    out = weeks.copy()
    out["week_start"] = start.dt.strftime("%Y-%m-%d")
    out["week_end"] = (start + pd.Timedelta(days=6)).dt.strftime("%Y-%m-%d")
    for col in ("distance_km", "longest_run_km"):
        out[col] = out[col].round(KM_DECIMALS)
    out["moving_time_s"] = out["moving_time_s"].round(SECONDS_DECIMALS)
    out["change_pct"] = out["change_pct"].round(RATE_DECIMALS)
    out["acwr"] = out["acwr"].round(RATIO_DECIMALS)
    for col in ("knee_level", "cramp_level", "risk_level"):
        out[col] = out[col].astype("object").where(out[col].notna(), None)
    return out[list(WEEK_CSV_COLUMNS)].reset_index(drop=True)


def export_samples(samples: pd.DataFrame, tz_offset_min: float | int | None, *,
                   drop_positions: bool = False,
                   privacy_zones: list[dict] | None = None) -> pd.DataFrame:
    """One row per sample of one run with SAMPLE_CSV_COLUMNS.

    Parameters
    ----------
    samples : ``RunLog.samples(run)`` (run_id, timestamp UTC, lat_deg, ... power_w).
    tz_offset_min : the run's UTC offset [min] for ``time_local`` (None → 0, UTC).
    drop_positions : leave ``lat_deg``/``lon_deg`` empty (privacy: where you live and run).
    privacy_zones : the profile's zones ({lat_deg, lon_deg, radius_m}); positions inside
        any of them are left empty, the rest of the sample (time, HR, ...) is kept.
    """
    ts = pd.to_datetime(samples["timestamp"], utc=True)
    offset = 0 if tz_offset_min is None or pd.isna(tz_offset_min) else tz_offset_min
    out = pd.DataFrame({
        "run_id": _text(samples, "run_id"),
        "time_local": iso_local(ts, offset, fraction=True),
        "time_utc": iso_utc(ts, fraction=True),
        "elapsed_s": (ts - ts.min()).dt.total_seconds().round(SECONDS_DECIMALS),
    })
    for col in list(SAMPLE_CSV_COLUMNS)[4:]:
        out[col] = _num(samples, col)
    out[["lat_deg", "lon_deg"]] = out[["lat_deg", "lon_deg"]].round(DEGREE_DECIMALS)
    if drop_positions:
        out[["lat_deg", "lon_deg"]] = np.nan
    elif privacy_zones:
        from runlog.privacy import inside_zones

        private = inside_zones(_num(samples, "lat_deg").to_numpy(),
                               _num(samples, "lon_deg").to_numpy(), privacy_zones)
        out.loc[private, ["lat_deg", "lon_deg"]] = np.nan
    return out[list(SAMPLE_CSV_COLUMNS)].reset_index(drop=True)


# --- writing --------------------------------------------------------------------------------------
def csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text: a header, no index, ``\\n`` line ends, empty missing cells."""
    return frame.to_csv(index=False, lineterminator="\n")


def write_csv(frame: pd.DataFrame, path_or_dash: str | Path) -> None:
    """Write ``frame`` as UTF-8 CSV with a header, no index; ``'-'`` writes to stdout.

    Missing values are empty cells. The file is written next to its final name and renamed,
    so an interrupted export never leaves half a file.
    """
    if str(path_or_dash) == STDOUT:
        sys.stdout.write(csv_text(frame))
        return
    path = Path(path_or_dash)
    if path.is_dir():
        raise InputError("is a folder; give a file name for the CSV", path=str(path))
    if not path.parent.exists():
        raise InputError("folder does not exist", path=str(path.parent))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        frame.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the CSV: {err.strerror or err}", path=str(path)) from err


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows of an export frame: missing values → None, numpy scalars → Python."""
    clean = frame.astype("object").where(frame.notna(), None)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in clean.to_dict(orient="records")]


def export_frame(log, what: str, *, since: str | None = None, until: str | None = None,
                 run: str | None = None, drop_positions: bool = False) -> pd.DataFrame:
    """The CSV frame for ``runlog export --what WHAT``, straight from a :class:`RunLog`.

    ``what`` is one of :data:`EXPORTS`; ``samples`` needs ``run`` (id, prefix or 'last').
    """
    if what not in EXPORTS:
        raise InputError(f"unknown export {what!r}: use one of {', '.join(EXPORTS)}")
    if what == "samples":
        if run is None:
            raise InputError("--what samples needs --run RUN (id, prefix or 'last')")
        samples = log.samples(run)
        runs = log.store.runs()          # the offset only: no need for the risk assessment
        run_id = log.store.resolve_run(run)
        offset = runs.loc[runs["run_id"] == run_id, "tz_offset_min"]
        return export_samples(samples, offset.iloc[0] if len(offset) else None,
                              drop_positions=drop_positions,
                              privacy_zones=log.profile().get("privacy_zones"))
    if what == "weeks":
        from runlog.weekly import weekly_table

        return export_weeks(weekly_table(log.runs(), log.flags(), since=since, until=until))
    runs = log.runs(since, until)
    flags = log.flags(since=since, until=until) if len(runs) else None
    if what == "runs":
        return export_runs(runs, flags)
    return export_flags(flags, runs)


def export_csv(log, what: str, out: str | Path, **options) -> pd.DataFrame:
    """Export ``what`` (runs | flags | weeks | samples) from ``log`` to ``out`` ('-' = stdout).

    ``options`` go to :func:`export_frame` (since, until, run, drop_positions). Returns the
    frame written.
    """
    frame = export_frame(log, what, **options)
    write_csv(frame, out)
    return frame
