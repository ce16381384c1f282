"""The planner: how far can I run next? (``runlog next``)

Answers from the runner's own history and the same rule functions the report uses — never a
copy of their thresholds. A *hypothetical run* is appended to the history at the planned time
(``when``) and the rules are evaluated on it; its distance (or moving time) is then varied:

- **distance ceiling**: the longest whole-metre distance at which the distance-driven knee
  rules stay at level 0 — L1 ``session_spike`` (longest run of the last 30 days + 10 %, or its
  0.5 km GPS floor), L4 ``restart`` and L4b ``new_runner``. The rules are monotone in
  distance, so the ceiling is found by bisection on integer metres: at the ceiling the rule
  gives level 0, one metre more and the report would flag it;
- **week distance left**: the same for L2 ``weekly_jump`` (rolling 7 local days). L2 is
  reported beside the ceiling, not inside it (RULES.md scores it only when L1 is none; it is
  the same construct with weaker evidence);
- **restart** (L4): whether the planned run follows a break, the gap, and the distances from
  which the restart rule would flag the run (moderate) or rate it high;
- **holds**: recent knee pain (K4, last 14 days) and cramps logged on comparable runs (C3), in
  the rules' own non-medical words. They never change the ceiling: no rule gives a distance
  for them;
- **time ceiling** (C1 ``longer_than_usual``): the longest moving time that stays at level 0,
  turned into a distance with the runner's median recent pace — an estimate;
- **planned**: for a given distance, the whole history plus the hypothetical run go through
  :func:`runlog.risk.assess`, so its flags and knee/cramp levels are the report's own scoring;
- **weather**: runner-given air temperature, humidity and wind for the planned run are
  annotated on the hypothetical run, so the heat and cold rules (H1, H2, D1, D2) see them for
  its estimated duration. Live forecasts are never fetched: runlog is an offline tool and the
  weather archive it uses lags about five days.

The hypothetical run copies the runner's typical recent run: medians of the good runs of the
30 days before ``when`` (or, after a longer break, of the 30 days before the last run) for
pace, heart rate, cadence fields, descent scaled per metre, ``quality_ok`` True.
Everything returned is JSON-ready (plain ``dict``/``list``/``str``/``int``/``float``/``None``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from runlog.errors import InputError
from runlog.localtime import offset_minutes
from runlog.risk import DISCLAIMER, assess, explain, prepare
from runlog.rules import REGISTRY
from runlog.rules import cramp as C
from runlog.rules import load as L
from runlog.rules import thresholds as T
from runlog.rules.base import HIGH, MODERATE

#: run_id of the hypothetical run (real run ids are 12 hex digits, so it cannot collide).
PLANNED_ID = "planned"
#: Distance rules whose level-0 band bounds the ceiling, in RULES.md order.
CEILING_RULES = ("session_spike", "restart", "new_runner")
#: Fields copied as the median of the typical recent runs.
MEDIAN_FIELDS = ("v_main_gap_mps", "v_ngp_mps", "avg_hr_bpm", "max_hr_bpm", "best_30s_hr_bpm",
                 "main_hr_bpm", "avg_cadence_spm", "main_hr_pct_max")
#: Fields scaled with distance (median per metre of the typical runs × planned distance).
PER_METRE_FIELDS = ("ascent_m", "descent_m", "steep_descent_min")
#: True/False fields copied as the most common value of the typical runs. How the planned run
#: starts and finishes (warm-up, hard start, jog-out: W1/W2) is the runner's choice, so those
#: stay unknown and W1/W2 are not assessed for it.
MODE_FIELDS = ("has_gps", "has_hr", "has_cadence")
#: Fields copied from the latest run (its HRmax and that HRmax's source: the profile's, or the
#: estimate of the 180 days up to it, which the planned run's would be — runlog.hrmax).
LATEST_FIELDS = ("gear", "device", "sub_sport", "altitude_source", "hr_max_used_bpm",
                 "hr_max_source")
#: Runner-given weather for ``--weather``: annotation field → unit.
WEATHER_FIELDS = {"air_temp_c": "°C", "humidity_pct": "%", "wind_kmh": "km/h"}
#: Upper search bounds for the bisections: 1000 km, 10 days of moving time.
MAX_DISTANCE_M = 1_000_000
MAX_MOVING_S = 864_000

WEATHER_NOTE = ("Weather: the values you gave, not a forecast. runlog is offline and never "
                "fetches live forecasts; its weather archive lags about 5 days.")
TYPICAL_NOTE = ("The planned run is an estimate: your typical recent run (median pace, heart "
                "rate and cadence of the last 30 days, descent per km) scaled to the distance.")
PAIN_NOTE = ("The distance ceiling is not lowered for this: no rule gives a distance for pain. "
             "While it lasts, every run's knee level is one step higher.")
NO_HISTORY = ("No runs in your log yet: start gently — short, easy runs, and walk–run is fine. "
              "Import some runs and the planner can give you a distance ceiling.")
NEW_RUNNER_NEEDS = ("The new-runner rule (L4b) needs your height and mass "
                    "(`runlog profile --height-cm … --mass-kg …`) to give a first-week limit.")


# --- small helpers -----------------------------------------------------------------------------
def _number(profile: dict, key: str) -> float:
    """A profile value as float [its unit], NaN when missing or not a number."""
    value = (profile or {}).get(key)
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def _numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column as float64 (all NaN when absent) — the same reading as the report's."""
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return pd.Series(np.nan, index=frame.index, dtype="float64")


def _level(result: pd.DataFrame) -> float:
    """The planned run's level in a rule frame: 0, 1, 2 or NaN (not assessed)."""
    value = result.loc[PLANNED_ID, "level"]
    return np.nan if value is pd.NA or pd.isna(value) else float(value)


def _plain(value):
    """A JSON-ready scalar (None for missing, Python numbers)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def _km_down(metres: float) -> str:
    """A distance limit [m] as km with 2 decimals, rounded DOWN: 3,499 m reads '3.49 km',
    never '3.50 km', which one more metre would flag."""
    return f"{math.floor(round(float(metres)) / 10) / 100:.2f} km"


def _pace(s_per_km: float) -> str:
    minutes, seconds = divmod(round(s_per_km), 60)
    return f"{minutes}:{seconds:02d}/km"


def largest_quiet(level_at: Callable[[int], float], below: int = MODERATE,
                  limit: int = MAX_DISTANCE_M) -> tuple[int | None, str]:
    """Largest integer x ≥ 0 with ``level_at(x) < below``, for a level monotone in x.

    Parameters
    ----------
    level_at : the rule's level (0, 1, 2 or NaN = not assessed) for the hypothetical run at
        x [m or s]
    below : the level that must not be reached (1 = any flag, 2 = high)
    limit : search bound [m or s]

    Returns
    -------
    (x, status): status "ok"; "not_assessed" (x None) when the rule does not assess the run;
    "already" (x 0) when even x = 0 reaches the level; "unbounded" (x None) when ``limit``
    does not reach it.
    """
    first = level_at(0)
    if np.isnan(first):
        return None, "not_assessed"
    if first >= below:
        return 0, "already"
    lo, hi = 0, 1024
    while not (level_at(hi) >= below):
        lo, hi = hi, hi * 2
        if hi > limit:
            return None, "unbounded"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if level_at(mid) >= below:
            hi = mid
        else:
            lo = mid
    return lo, "ok"


# --- the hypothetical run ------------------------------------------------------------------------
def parse_when(text: str | None) -> pd.Timestamp | None:
    """The planned start from the command line: 'YYYY-MM-DD HH:MM' (the runner's local time,
    naive) or an ISO time with offset; None = now. InputError for anything else."""
    if text is None or not str(text).strip():
        return None
    try:
        return pd.Timestamp(str(text).strip())
    except (ValueError, TypeError) as err:
        raise InputError(f"not a date/time: {text!r} (use 'YYYY-MM-DD HH:MM', your local "
                         "time)") from err


def _start_utc(when: pd.Timestamp | None, offset_min: float) -> pd.Timestamp:
    """UTC start of the planned run; a naive ``when`` is the runner's local time."""
    if when is None:
        return pd.Timestamp.now(tz="UTC").floor("s")
    when = pd.Timestamp(when)
    if when.tzinfo is not None:
        return when.tz_convert("UTC")
    return (when - pd.Timedelta(minutes=offset_min)).tz_localize("UTC")


def typical_runs(history: pd.DataFrame, when_local: pd.Timestamp) -> tuple[pd.DataFrame, str]:
    """The good runs the hypothetical run is modelled on, and which window they come from.

    The good runs (quality_ok not False, distance > 0) in the 30 days before ``when_local``
    (L1's window); with none there, the 30 days up to the last good run before it (the runs
    before a break, as L4 and C1 use).
    """
    good = history[L.good_mask(history["quality_ok"]) & (_numeric(history, "distance_m") > 0)]
    good = good[good["start_local"] < when_local]
    window = pd.Timedelta(days=T.SPIKE_WINDOW_DAYS)
    recent = good[good["start_local"] >= when_local - window]
    if len(recent):
        return recent, "the last 30 days"
    if len(good):
        last = good["start_local"].max()
        return good[good["start_local"] >= last - window], "the 30 days before your last run"
    return good, "no runs"


def _mode(series: pd.Series):
    values = series.dropna()
    return None if values.empty else bool(values.astype(bool).mode().iloc[0])


def hypothetical_run(runs: pd.DataFrame, typical: pd.DataFrame, start_utc: pd.Timestamp,
                     offset_min: float, distance_m: float) -> dict:
    """One runs-table row for the planned run, modelled on ``typical`` and scaled to distance.

    Pace = median moving seconds per metre [s/m]; moving_s = pace × distance; elapsed_s keeps
    the median elapsed/moving ratio. Heart rate and cadence are medians; warm-up and finish
    are unknown (the runner's choice); descent and ascent scale per metre; no device
    temperature (the day's weather is unknown unless the runner gives it). quality_ok is True.
    """
    row: dict = {c: None for c in runs.columns}
    dist = _numeric(typical, "distance_m")
    moving = _numeric(typical, "moving_s")
    pace = float(np.nanmedian((moving / dist).to_numpy())) if len(typical) else np.nan
    ratio = (_numeric(typical, "elapsed_s") / moving).to_numpy()
    ratio = float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else 1.0
    for name in MEDIAN_FIELDS:
        values = _numeric(typical, name).to_numpy()
        row[name] = float(np.nanmedian(values)) if np.isfinite(values).any() else np.nan
    for name in PER_METRE_FIELDS:
        values = (_numeric(typical, name) / dist).to_numpy()
        row[name] = (float(np.nanmedian(values)) * distance_m if np.isfinite(values).any()
                     else np.nan)
    for name in MODE_FIELDS:
        if name in typical.columns:
            row[name] = _mode(typical[name])
    latest = runs.sort_values("start_utc").iloc[-1] if len(runs) else None
    for name in LATEST_FIELDS:
        if latest is not None and name in runs.columns:
            row[name] = latest[name]
    moving_s = pace * distance_m
    row.update({
        "run_id": PLANNED_ID, "sport": "running", "start_utc": start_utc,
        "tz_offset_min": offset_min, "distance_m": float(distance_m), "moving_s": moving_s,
        "elapsed_s": moving_s * ratio, "avg_speed_mps": 1.0 / pace if pace > 0 else np.nan,
        "distance_source": "planned", "temp_c": np.nan, "temp_source": None,
        "quality_ok": True, "quality_issues": "", "quality_notes": "",
    })
    return row


def _with_planned(runs: pd.DataFrame, row: dict) -> pd.DataFrame:
    """The runs table with the hypothetical row appended (dtypes kept where they fit)."""
    extra = pd.DataFrame([row])
    if runs is None or runs.empty:
        return extra
    return pd.concat([runs, extra[runs.columns.union(extra.columns, sort=False)]],
                     ignore_index=True)


def _annotations_with(annotations: pd.DataFrame | None, weather: dict | None,
                      latest_id: str | None) -> pd.DataFrame:
    """The runner's annotations plus the planned run's: given weather, the latest run's shoes."""
    ann = annotations if annotations is not None else pd.DataFrame()
    if "run_id" not in ann.columns and ann.index.name == "run_id":
        ann = ann.reset_index()
    row: dict = {"run_id": PLANNED_ID}
    if latest_id is not None and "run_id" in ann.columns:
        mine = ann[ann["run_id"] == latest_id]
        for name in ("shoes", "shoe_type"):
            if name in mine.columns and len(mine):
                row[name] = mine[name].iloc[-1]
    for name in WEATHER_FIELDS:
        if weather and weather.get(name) is not None:
            row[name] = float(weather[name])
    extra = pd.DataFrame([row])
    return extra if ann.empty else pd.concat([ann, extra], ignore_index=True)


# --- the plan ----------------------------------------------------------------------------------
class _Probe:
    """The prepared history with the planned run, and the rule calls the report makes on it."""

    def __init__(self, frame: pd.DataFrame, profile: dict) -> None:
        self.frame = frame
        self.t, self.q = frame["start_local"], frame["quality_ok"]
        self.dist = _numeric(frame, "distance_m")
        self.moving = _numeric(frame, "moving_s")
        self.bmi = L.body_mass_index(_number(profile, "mass_kg"), _number(profile, "height_cm"))

    def distance_rule(self, rule_id: str, distance_m: float) -> pd.DataFrame:
        """``rule_id``'s frame with the planned run at ``distance_m`` [m] (as in the report)."""
        dist = self.dist.copy()
        dist.loc[PLANNED_ID] = float(distance_m)
        if rule_id == "new_runner":
            return L.new_runner(self.t, dist, self.q, self.bmi)
        return getattr(L, rule_id)(self.t, dist, self.q)

    def longer_than_usual(self, moving_s: float) -> pd.DataFrame:
        """C1's frame with the planned run at ``moving_s`` [s] of moving time."""
        moving = self.moving.copy()
        moving.loc[PLANNED_ID] = float(moving_s)
        return C.longer_than_usual(self.t, moving, self.q)

    def cramp_history(self, moving_s: float, profile: dict) -> pd.DataFrame:
        """C3's frame with the planned run at ``moving_s`` [s] of moving time."""
        moving = self.moving.copy()
        moving.loc[PLANNED_ID] = float(moving_s)
        cramp = (self.frame["cramp"] if "cramp" in self.frame.columns
                 else pd.Series(None, index=self.frame.index, dtype=object))
        return C.cramp_history(self.t, moving, cramp, self.q,
                               bool((profile or {}).get("cramp_prone") or False))

    def ceiling(self, rule_id: str, below: int = MODERATE) -> tuple[int | None, str]:
        return largest_quiet(lambda d: _level(self.distance_rule(rule_id, d)), below)

    def longest_recent_m(self) -> float:
        """L1's reference for the planned run: its longest good run of the previous 30 days
        [m] (NaN when none), from the rule's own window helper."""
        good = L.good_mask(self.q)
        ref = L.window_stat(self.t, np.where(good, self.dist.to_numpy(), np.nan),
                            T.SPIKE_WINDOW_DAYS, "max")
        return float(ref.loc[PLANNED_ID])


def _reason(probe: _Probe, rule_id: str, ceiling_m: int, pace_s_m: float) -> dict:
    """Why the ceiling is where it is: the binding rule, its flag one metre above, its source."""
    above = probe.distance_rule(rule_id, ceiling_m + 1).loc[PLANNED_ID]
    info = REGISTRY[rule_id]
    km = _km_down(ceiling_m)
    if rule_id == "session_spike":
        ref_m = probe.longest_recent_m()
        more = (ceiling_m / ref_m - 1.0) * 100.0
        text = (f"Up to {km} ({more:.0f} % more than your longest run of the last 30 "
                f"days, {ref_m / 1000:.2f} km) raises no distance-spike flag (L1); one metre "
                "more and the report flags it. ")
        if more <= T.SPIKE_MODERATE_FRAC * 100 + 1e-9:
            text += ("Runs up to 10 % longer came with lower — not zero — overuse-injury "
                     "rates in a 5,200-runner study.")
        else:
            # the ceiling is L1's GPS-error floor (increases under 0.5 km are ignored), which
            # lies beyond Frandsen's ≤ 10 % band when the longest run is under 5 km
            text += (f"That is more than 10 %: the rule ignores increases under "
                     f"{T.SPIKE_GPS_FLOOR_KM:g} km as within GPS error, so this ceiling only "
                     "stays within that margin. In a 5,200-runner study, runs more than 10 % "
                     "longer than the longest of the last 30 days came with higher "
                     "overuse-injury rates.")
    elif rule_id == "restart":
        text = (f"You are back after a break: up to {km} stays below your usual run "
                "before the break, which the restart rule (L4) flags. Build back over a few "
                "weeks; walk–run is fine.")
    else:
        text = (f"First weeks of running: up to {km} keeps your first-week total within "
                "the new-runner rule (L4b, BMI over 30); one metre more and it is flagged.")
    if np.isfinite(pace_s_m):
        text += f" At your median recent pace that is about {_duration(pace_s_m * ceiling_m)}."
    return {"rule": rule_id, "section": info.section, "message": text,
            "flag_above": str(above["message"]), "source": info.source, "grade": info.grade}


def _restart_block(probe: _Probe) -> dict:
    """L4 at the planned time: break or not, gap [days], and its distance bands [m]."""
    res = probe.distance_rule("restart", 0.0).loc[PLANNED_ID]
    gap = _plain(float(res["value"]))
    is_restart = gap is not None and gap >= float(res["threshold"])
    block = {"restart": bool(is_restart), "gap_days": gap, "flag_from_m": None,
             "high_from_m": None, "message": ""}
    if not is_restart:
        return block
    quiet, _ = probe.ceiling("restart")
    below_high, status = probe.ceiling("restart", below=HIGH)
    block["flag_from_m"] = None if quiet is None else quiet + 1
    block["high_from_m"] = None if below_high is None or status != "ok" else below_high + 1
    off = f"{gap / 7:.0f} weeks" if gap >= 21 else f"{gap:.0f} days"
    text = f"This would be your first run after {off} off."
    if block["flag_from_m"] is not None:
        text += (f" The restart rule (L4) flags runs from {_km_down(block['flag_from_m'])} "
                 "(your usual run before the break)")
        if block["high_from_m"] is not None:
            text += (f" and rates them high from {_km_down(block['high_from_m'])} (your "
                     "longest before the break)")
        text += "."
    block["message"] = (text + " Fitness returns faster than tendons and bones — build back over "
                        "a few weeks; walk–run is fine.")
    return block


def _week_block(probe: _Probe) -> tuple[int | None, dict]:
    """L2: distance left in the rolling 7 local days before weekly_jump fires [m]."""
    left, status = probe.ceiling("weekly_jump")
    info = {"rule": "weekly_jump", "status": status, "message": "", "flag_above": "",
            "source": REGISTRY["weekly_jump"].source}
    if status == "not_assessed":
        info["message"] = str(probe.distance_rule("weekly_jump", 0.0).loc[PLANNED_ID, "note"])
        return None, info
    if left is None:
        return None, info
    above = probe.distance_rule("weekly_jump", (left or 0) + 1).loc[PLANNED_ID]
    info["flag_above"] = str(above["message"])
    jump = f"{float(above['threshold']):.0f} %"
    if status == "already":
        info["message"] = (f"Your last 7 days are already more than {jump} above the week "
                           "before; any run now adds to the weekly jump (L2, weaker evidence).")
    else:
        info["message"] = (f"{_km_down(left)} left in your rolling 7 days before the weekly-"
                           f"jump flag (L2: > {jump} above the week before; weaker evidence, "
                           "shown beside the ceiling, not in it).")
    return left, info


def _time_block(probe: _Probe, pace_s_m: float, source: str) -> dict:
    """C1: the longest moving time [s] that keeps longer_than_usual at level 0, and its km."""
    limit, status = largest_quiet(lambda s: _level(probe.longer_than_usual(s)),
                                  limit=MAX_MOVING_S)
    block = {"rule": "longer_than_usual", "status": status, "moving_s": limit,
             "pace_s_per_km": None, "distance_m_estimate": None, "message": "",
             "source": REGISTRY["longer_than_usual"].source}
    if limit is None:
        block["message"] = str(probe.longer_than_usual(0).loc[PLANNED_ID, "note"])
        return block
    text = (f"Moving time up to {_duration(limit)} keeps the longer-than-usual cramp rule (C1) "
            "quiet")
    if np.isfinite(pace_s_m) and pace_s_m > 0:
        block["pace_s_per_km"] = round(pace_s_m * 1000.0, 1)
        block["distance_m_estimate"] = int(limit / pace_s_m)
        text += (f" — about {limit / pace_s_m / 1000:.1f} km at your median pace of "
                 f"{_pace(pace_s_m * 1000.0)} over {source} (an estimate: hills, heat and "
                 "fatigue change pace)")
    block["message"] = text + "."
    return block


def _holds(info: dict, restart: dict, usual_c3: pd.Series | None) -> list[dict]:
    """Messages that should hold the runner back: K4, C3 (their own words), L4.

    C3 compares runs of similar moving time: it is checked for the run talked about (planned
    or ceiling) and, through ``usual_c3`` (C3 at the runner's usual moving time), for a run of
    their usual length.
    """
    holds = []
    c3_seen = any(f["rule"] == "cramp_history" and (f["level"] or 0) >= 1
                  for f in info["all_flags"])
    if not c3_seen and usual_c3 is not None and float(usual_c3["level"] or 0) >= 1:
        holds.append({"rule": "cramp_history", "level": int(usual_c3["level"]),
                      "message": f"{usual_c3['message']} (runs of your usual length)",
                      "source": REGISTRY["cramp_history"].source})
    for flag in info["all_flags"]:
        if flag["rule"] in ("knee_pain_recent", "cramp_history") and (flag["level"] or 0) >= 1:
            message = flag["message"]
            if flag["rule"] == "knee_pain_recent":
                message = f"{message} {PAIN_NOTE}"
            holds.append({"rule": flag["rule"], "level": flag["level"], "message": message,
                          "source": flag["source"]})
    if restart["restart"]:
        holds.append({"rule": "restart", "level": None, "message": restart["message"],
                      "source": REGISTRY["restart"].source})
    return holds


def _planned_block(info: dict, distance_m: float, moving_s: float) -> dict:
    keep = ("rule", "risk", "level", "value", "threshold", "unit", "message", "source")
    return {
        "distance_m": float(distance_m),
        "moving_s_estimate": _plain(round(moving_s) if np.isfinite(moving_s) else None),
        "knee_risk": info["knee_risk"], "cramp_risk": info["cramp_risk"],
        "knee_score": info["knee_score"], "cramp_score": info["cramp_score"],
        "flags": [{k: f[k] for k in keep} for f in info["flags"]],
        "safety": info["safety"], "not_assessed": info["not_assessed"],
    }


def plan_next(runs: pd.DataFrame, annotations: pd.DataFrame, profile: dict, *,
              when: pd.Timestamp | None = None, planned_distance_m: float | None = None,
              cadence_bins: pd.DataFrame | None = None,
              weather: dict | None = None) -> dict:
    """How far the runner can go next, from their history and the report's own rules.

    Parameters
    ----------
    runs : the runs table (RUN_IDENTITY_COLUMNS + RUN_METRIC_COLUMNS), any order
    annotations : the runner's annotations (ANNOTATION_COLUMNS)
    profile : PROFILE_FIELDS (missing keys = unknown)
    when : planned start; naive = the runner's local time (offset of the latest run, else of
        the profile's ``default_tz``, else UTC), tz-aware = that instant. Default: now.
    planned_distance_m : a distance the runner has in mind [m]; its flags and levels are
        returned under ``planned``
    cadence_bins : CADENCE_BIN_COLUMNS rows (K1 baseline for the history; the planned run has
        none, so K1 is not assessed for it)
    weather : runner-given ``air_temp_c`` [°C], ``humidity_pct`` [%], ``wind_kmh`` [km/h]
        for the planned run (never fetched)

    Returns
    -------
    dict with ``when_local``, ``when_utc``, ``history_runs``, ``ceiling_distance_m`` (whole
    metres, None when no distance rule assesses the run), ``ceiling_reason`` (rule, section,
    message, flag_above = the report's message one metre above, source, grade = its
    evidence grade), ``ceilings`` (per
    rule), ``week_distance_left_m`` and ``week``, ``restart`` (restart, gap_days,
    flag_from_m, high_from_m, message), ``holds`` (rule, level, message, source),
    ``time_ceiling`` (C1; moving_s, pace_s_per_km, distance_m_estimate), ``typical_run``,
    ``planned`` (None unless ``planned_distance_m``), ``weather`` (None unless given),
    ``notes`` and ``disclaimer``.
    """
    if planned_distance_m is not None and not (planned_distance_m > 0):
        raise InputError(f"planned distance must be > 0 m, got {planned_distance_m!r}")
    runs = runs if runs is not None else pd.DataFrame()
    has_history = len(runs) > 0
    if has_history:
        latest = runs.sort_values("start_utc").iloc[-1]
        tz = latest.get("tz_offset_min")
        offset = 0.0 if tz is None or pd.isna(tz) else float(tz)
        latest_id = str(latest["run_id"])
    else:
        offset, latest_id = 0.0, None
        zone = (profile or {}).get("default_tz")
        if zone:
            offset = float(offset_minutes(_start_utc(when, 0.0), zone))
    start_utc = _start_utc(when, offset)
    ann = _annotations_with(annotations, weather, latest_id)

    history = prepare(runs, annotations) if has_history else None
    when_local = start_utc.tz_localize(None) + pd.Timedelta(minutes=offset)
    if history is not None:
        typical, source = typical_runs(history, when_local)
    else:
        typical, source = pd.DataFrame(), "no runs"
    pace_s_m = np.nan
    if len(typical):
        pace_s_m = float(np.nanmedian((_numeric(typical, "moving_s")
                                       / _numeric(typical, "distance_m")).to_numpy()))

    def with_run(distance_m: float) -> tuple[pd.DataFrame, dict]:
        row = hypothetical_run(runs, typical, start_utc, offset, distance_m)
        return _with_planned(runs, row), row

    probe_runs, _ = with_run(0.0)
    probe = _Probe(prepare(probe_runs, ann), profile or {})

    ceilings: dict[str, int | None] = {}
    statuses: dict[str, str] = {}
    for rule_id in CEILING_RULES:
        ceilings[rule_id], statuses[rule_id] = probe.ceiling(rule_id)
    bound = {r: c for r, c in ceilings.items() if c is not None}
    ceiling = min(bound.values()) if bound else None
    binding = min(bound, key=lambda r: (bound[r], CEILING_RULES.index(r))) if bound else None
    reason = _reason(probe, binding, ceiling, pace_s_m) if binding else None

    week_left, week = _week_block(probe)
    restart = _restart_block(probe)
    time_ceiling = _time_block(probe, pace_s_m, source)

    notes: list[str] = []
    if not has_history:
        notes.append(NO_HISTORY)
    elif ceiling is None:
        notes.append(str(probe.distance_rule("session_spike", 0.0).loc[PLANNED_ID, "note"])
                     or "No distance rule could assess the next run.")
    if statuses["new_runner"] == "not_assessed":
        notes.append(NEW_RUNNER_NEEDS)
    if ceiling == 0:
        notes.append(f"Even a very short run would be flagged by {binding} now: "
                     f"{reason['flag_above']}")

    # one assessment of the run we talk about: the planned distance, else the ceiling
    reference_m = planned_distance_m if planned_distance_m is not None else (ceiling or 0.0)
    full_runs, row = with_run(float(reference_m))
    levels, flags = assess(full_runs, ann, profile or {}, cadence_bins)
    info = explain(levels, flags, PLANNED_ID)
    planned = (_planned_block(info, planned_distance_m, row["moving_s"])
               if planned_distance_m is not None else None)
    weather_block = None
    if weather and any(weather.get(k) is not None for k in WEATHER_FIELDS):
        env = [f for f in info["all_flags"]
               if f["rule"] in ("heat_index", "heat", "wind_chill", "cold")]
        weather_block = {
            "given": {k: _plain(weather.get(k)) for k in WEATHER_FIELDS},
            "for_distance_m": float(reference_m),
            "for_minutes": _plain(round(row["elapsed_s"] / 60.0)
                                  if np.isfinite(row["elapsed_s"]) else None),
            "flags": [{k: f[k] for k in ("rule", "level", "value", "unit", "message", "note")}
                      for f in env],
            "note": WEATHER_NOTE,
        }

    usual_c3 = None
    if len(typical):
        usual_s = float(np.nanmedian(_numeric(typical, "moving_s").to_numpy()))
        if np.isfinite(usual_s):
            usual_c3 = probe.cramp_history(usual_s, profile).loc[PLANNED_ID]
    typical_block = {
        "based_on_runs": len(typical), "window": source,
        "pace_s_per_km": _plain(round(pace_s_m * 1000.0, 1) if np.isfinite(pace_s_m) else None),
        **{k: _plain(round(row[k], 2) if isinstance(row[k], float) else row[k])
           for k in ("avg_hr_bpm", "avg_cadence_spm", "v_main_gap_mps")},
        "note": TYPICAL_NOTE,
    }
    return {
        "when_local": when_local.isoformat(),
        "when_utc": start_utc.isoformat(),
        "history_runs": len(runs),
        "ceiling_distance_m": ceiling,
        "ceiling_reason": reason,
        "ceilings": ceilings,
        "week_distance_left_m": week_left,
        "week": week,
        "restart": restart,
        "holds": _holds(info, restart, usual_c3),
        "time_ceiling": time_ceiling,
        "typical_run": typical_block,
        "planned": planned,
        "weather": weather_block,
        "notes": notes,
        "disclaimer": DISCLAIMER,
    }


def render_plan(plan: dict) -> str:
    """Plain text of :func:`plan_next`'s dict for the terminal (``runlog next``)."""
    lines = [f"Next run ({plan['when_local'][:16].replace('T', ' ')} local)"]
    ceiling = plan["ceiling_distance_m"]
    if ceiling is not None:
        lines.append(f"Longest run without a load flag: {_km_down(ceiling)}")
        lines.append(f"  {plan['ceiling_reason']['message']}")
        lines.append(f"  Source: {plan['ceiling_reason']['source']} (evidence grade "
                     f"{plan['ceiling_reason']['grade']})")
    else:
        lines.append("Longest run without a load flag: no ceiling from your history")
    history = plan["history_runs"] > 0
    if history and plan["week"]["message"]:
        lines.append(f"This week: {plan['week']['message']}")
    if plan["restart"]["restart"]:
        lines.append(f"Restart: {plan['restart']['message']}")
    if history and plan["time_ceiling"]["message"]:
        lines.append(f"Time: {plan['time_ceiling']['message']}")
    if plan["holds"]:
        lines.append("Hold back:")
        lines += [f"  - {h['message']}" for h in plan["holds"]]
    planned = plan["planned"]
    if planned is not None:
        lines.append(f"Planned {planned['distance_m'] / 1000:.2f} km: knee {planned['knee_risk']}"
                     f", cramp {planned['cramp_risk']}")
        lines += [f"  {f['rule']} [{f['risk']}] level {f['level']}: {f['message']}"
                  for f in planned["flags"]]
        lines += [f"  safety: {m}" for m in planned["safety"]]
    if plan["weather"] is not None:
        w = plan["weather"]
        lines.append(f"Weather you gave, for ~{w['for_minutes']} min:")
        lines += [f"  {f['rule']}: {f['message'] or f['note'] or 'no flag'}" for f in w["flags"]]
        lines.append(f"  {w['note']}")
    lines += [f"Note: {n}" for n in plan["notes"]]
    lines.append(f"Note: {plan['typical_run']['note']}")
    lines += ["", plan["disclaimer"]]
    return "\n".join(lines)

