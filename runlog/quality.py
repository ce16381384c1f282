"""Data quality of one run's samples: clean what can be cleaned, say what was done, judge the rest.

:func:`assess_quality` sorts and de-duplicates the samples, trims a watch left running after the
run, removes GPS jumps from the distance, blanks impossible or stuck heart-rate values and
compares the cleaned distance with the file's own summary. Every decision is vectorised
(numpy/pandas), and every change is written down as an issue code plus a sentence for the report.

Issue codes: ``bad_timestamp``, ``timestamps_unordered``, ``duplicate_timestamps``,
``watch_left_running``, ``gps_jump``, ``distance_jump``, ``hr_out_of_range``, ``hr_constant``,
``hr_dropout``, ``summary_mismatch``, ``too_short``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from runlog.activity import NAT_NS, SampleColumns, sample_columns, samples_frame

#: Fastest plausible step speed while running [m/s]; faster position or distance steps are
#: GPS jumps [design; world-class sprint peaks at ~12 m/s].
MAX_RUN_STEP_SPEED_MPS = 12.0
#: Jumps that drop less than this are cleaned silently (single sub-second fixes) [m] [design].
GPS_JUMP_REPORT_M = 50.0
#: A device-distance step must also be longer than this to be a jump [m] [design].
DISTANCE_JUMP_MIN_M = 100.0
#: Shortest step duration used to turn a position step into a speed [s]: fixes logged a few
#: milliseconds apart would otherwise turn centimetres of noise into "jumps".
MIN_STEP_DURATION_S = 1.0
#: Below this speed the runner is stopped [m/s] (RULES.md §0).
STOP_SPEED_MPS = 0.5
#: A stationary stretch stays within this radius [m] [design].
STATIONARY_RADIUS_M = 50.0
#: ... for at least this long [s] to count as the watch left running [design].
STATIONARY_MIN_S = 600.0
#: Elapsed time beyond this multiple of moving time, and beyond ELAPSED_FAR_S, means the watch
#: kept recording long after the run [design].
ELAPSED_OVER_MOVING = 3.0
ELAPSED_FAR_S = 2 * 3600.0
#: A recording gap of this length splits the recording into separate pieces [s] [design].
SPLIT_GAP_S = 600.0
#: Step duration beyond which a step's own average speed decides whether it was moving [s].
LONG_STEP_S = 10.0
#: Window of the rolling median that calms device speed before the stationary test [s].
SPEED_SMOOTH_S = 60.0
#: Physiologically possible heart rate [bpm] (adult, exercising) [design].
HR_MIN_BPM = 30.0
HR_MAX_BPM = 240.0
#: The same HR value held longer than this while moving is a stuck sensor [s] [design].
HR_CONSTANT_S = 300.0
#: A moving second counts as covered by HR when a valid value lies within this distance [s].
HR_COVER_S = 15.0
#: Share of moving time without HR above which HR drops out [fraction] [design].
HR_DROPOUT_FRAC = 0.20
#: Relative difference between summary and track distance that is worth a note [fraction].
SUMMARY_MISMATCH_FRAC = 0.05
#: Below these the run is not usable for rules or baselines [s], [m] [design].
MIN_USABLE_S = 60.0
MIN_USABLE_M = 200.0
#: Timestamps before this, or more than FUTURE_SLACK after now, are absurd.
EARLIEST_VALID_UTC = pd.Timestamp("1990-01-01", tz="UTC")
FUTURE_SLACK = pd.Timedelta(days=1)
#: Mean Earth radius [m] (IUGG).
EARTH_RADIUS_M = 6_371_008.8


@dataclass
class QualityResult:
    """What :func:`assess_quality` made of one run's samples.

    ``columns`` are the cleaned samples as numpy arrays (:data:`runlog.activity.SampleColumns`:
    sorted, de-duplicated, tail trimmed, impossible HR blanked, device distance with jumps
    removed), ``samples`` the same as a frame; ``segment_valid[i]`` tells whether the step
    from sample ``i - 1`` into sample ``i`` counts for distance (False for the first sample,
    GPS jumps and steps without two fixes), ``step_m`` that step's length over the track.
    ``issues`` are codes, ``notes`` sentences for the report.
    """

    columns: SampleColumns
    issues: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = True
    segment_valid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: distance from the previous fix into each sample [m], NaN without two fixes
    step_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    trimmed_s: float = 0.0           # recording time removed from the tail [s]
    dropped_m: float = 0.0           # distance removed as GPS/distance jumps [m]
    track_distance_m: float = float("nan")   # cleaned distance used for the checks [m]

    @property
    def samples(self) -> pd.DataFrame:
        """The cleaned samples as a frame (SAMPLE_COLUMNS), sharing the columns' memory."""
        return samples_frame(self.columns)


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance between points [m].

    Parameters
    ----------
    lat1, lon1, lat2, lon2 : array-like
        Coordinates [degrees]; broadcast against each other.

    Returns
    -------
    ndarray
        Distance on a sphere of the mean Earth radius 6,371,008.8 m [m].
    """
    lat1, lon1, lat2, lon2 = (np.radians(np.asarray(x, dtype="float64"))
                              for x in (lat1, lon1, lat2, lon2))
    h = (np.sin((lat2 - lat1) / 2) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def path_steps_m(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Great-circle distance from each point of a path to the next [m] (one fewer value).

    The haversine of each consecutive pair, by the very operations of a pairwise haversine
    (so the same numbers), but each point's radians and cosine are taken once, not twice.
    """
    phi = np.radians(np.asarray(lat_deg, dtype="float64"))
    lam = np.radians(np.asarray(lon_deg, dtype="float64"))
    cos_phi = np.cos(phi)
    h = (np.sin((phi[1:] - phi[:-1]) / 2) ** 2
         + cos_phi[:-1] * cos_phi[1:] * np.sin((lam[1:] - lam[:-1]) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


#: The helpers below work on columns (one run costs a few numpy calls, not pandas calls).
Columns = SampleColumns


def _take(cols: Columns, rows: np.ndarray | slice) -> Columns:
    return {name: values[rows] for name, values in cols.items()}


def merge_equal_times(s: Columns) -> Columns:
    """One sample per timestamp (``s`` sorted by time): each column takes the first valid
    (non-NaN) value among the samples of that time, NaN when none has one.

    As ``frame.groupby("timestamp", sort=False, as_index=False).first()``, on arrays: the
    position of each column's first valid value per time is a ``minimum.reduceat``.
    """
    ns = s["timestamp"]
    n = len(ns)
    starts = np.flatnonzero(np.concatenate(([True], np.diff(ns) != 0))) if n else \
        np.zeros(0, dtype=np.intp)
    merged: Columns = {"timestamp": ns[starts]}
    positions = np.arange(n)
    for name, values in s.items():
        if name == "timestamp":
            continue
        first = np.minimum.reduceat(np.where(np.isnan(values), n, positions), starts) if n \
            else np.zeros(0, dtype=np.intp)
        found = first < n
        column = np.full(len(starts), np.nan)
        column[found] = values[first[found]]
        merged[name] = column
    return merged


def _fixes(s: Columns | pd.DataFrame) -> np.ndarray:
    return np.isfinite(np.asarray(s["lat_deg"])) & np.isfinite(np.asarray(s["lon_deg"]))


def _fix_steps(s: Columns, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance [m], time [s]) from the previous fix to each fix; NaN where either has no
    position."""
    lat, lon = s["lat_deg"], s["lon_deg"]
    steps = np.full(len(t), np.nan)
    dur = np.full(len(t), np.nan)
    idx = np.flatnonzero(_fixes(s))
    if len(idx) > 1:
        steps[idx[1:]] = path_steps_m(lat[idx], lon[idx])
        dur[idx[1:]] = np.diff(t[idx])
    return steps, dur


def _distance_steps(s: Columns | pd.DataFrame) -> np.ndarray:
    """Steps of the device's cumulative distance channel [m] (NaN where missing or reset)."""
    d = np.asarray(s["distance_m"], dtype="float64")
    steps = np.full(len(d), np.nan)
    idx = np.flatnonzero(np.isfinite(d))
    if len(idx) > 1:
        steps[idx[1:]] = np.diff(d[idx])
    steps[steps < 0] = np.nan            # a reset or a lap restart is not distance
    return steps


def has_distance_channel(s: Columns | pd.DataFrame) -> bool:
    """True when the device's cumulative distance channel is present and increases."""
    d = np.asarray(s["distance_m"], dtype="float64")
    valid = d[np.isfinite(d)]
    return len(valid) >= 2 and valid[-1] > valid[0] and valid.size >= 0.5 * len(d)


def ffill_bfill(values: np.ndarray) -> np.ndarray:
    """Missing (NaN) values carried forward, and the leading ones back (all-NaN stays NaN).

    As pandas' ``ffill().bfill()``; returns a new array unless nothing is missing.
    """
    valid = ~np.isnan(values)
    if valid.all() or not valid.any():
        return values
    last = np.maximum.accumulate(np.where(valid, np.arange(len(values)), -1))
    filled = values[np.maximum(last, 0)]
    filled[last < 0] = values[np.flatnonzero(valid)[0]]
    return filled


def _stationary_tail_start(s: Columns, t: np.ndarray) -> int | None:
    """Index of the first sample of a stationary tail (≥ STATIONARY_MIN_S), else None.

    A sample belongs to the tail when every later sample stays within STATIONARY_RADIUS_M of
    the last one (positions, else the distance channel) and the smoothed device speed stays
    below STOP_SPEED_MPS: reverse cumulative maxima make that one vectorised pass.
    """
    n = len(t)
    if n < 3:
        return None
    lat, lon = s["lat_deg"], s["lon_deg"]
    fix = _fixes(s)
    speed = s["speed_mps"]
    has_speed = bool(np.isfinite(speed).any())
    if np.count_nonzero(fix) >= 2:
        last = np.flatnonzero(fix)[-1]
        # a fix of the last STATIONARY_MIN_S beyond the radius rules a tail out: look there
        # first (most runs end moving), and at the whole track only when they all stay near
        recent = int(np.searchsorted(t, t[-1] - STATIONARY_MIN_S))
        near = haversine_m(lat[recent:], lon[recent:], lat[last], lon[last])
        if (fix[recent:] & (near > STATIONARY_RADIUS_M)).any():
            return None
        r = np.where(fix, haversine_m(lat, lon, lat[last], lon[last]), 0.0)
    elif np.isfinite(s["distance_m"]).sum() >= 2:
        d = ffill_bfill(s["distance_m"])
        r = np.abs(d[-1] - d)
    elif has_speed:
        r = np.zeros(n)
    else:
        return None                      # no movement signal: nothing tells run from rest
    far = np.maximum.accumulate(r[::-1])[::-1]
    if not (far[-1] <= STATIONARY_RADIUS_M) or t[-1] - t[np.argmax(far <= STATIONARY_RADIUS_M)] \
            < STATIONARY_MIN_S:
        return None                      # no long still tail: skip the rolling median
    if has_speed:
        smooth = (pd.Series(speed, index=pd.DatetimeIndex(s["timestamp"].view("M8[ns]")))
                  .rolling(pd.Timedelta(seconds=SPEED_SMOOTH_S)).median().to_numpy())
        fast = np.maximum.accumulate(np.where(np.isnan(smooth), 0.0, smooth)[::-1])[::-1]
    else:
        fast = np.zeros(n)
    still = (far <= STATIONARY_RADIUS_M) & (fast < STOP_SPEED_MPS)
    if not still[-1]:
        return None
    start = int(np.argmax(still))
    return start if t[-1] - t[start] >= STATIONARY_MIN_S else None


def _step_speed(s: Columns, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-sample step speed [m/s], step length [m]) from positions, else the distance channel."""
    if np.count_nonzero(np.isfinite(s["lat_deg"])) >= 2:
        steps, dur = _fix_steps(s, t)
    else:
        steps = _distance_steps(s)
        dur = np.concatenate(([np.nan], np.diff(t))) if len(t) else np.zeros(0)
    speed = steps / np.maximum(dur, MIN_STEP_DURATION_S)
    return speed, steps


def _rough_moving(s: Columns, t: np.ndarray, step_v: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(moving flag per step, step durations [s]) for the quality checks (no pauses known).

    ``step_v``: :func:`_step_speed` of these samples when the caller has it already."""
    dt = np.concatenate(([0.0], np.diff(t))) if len(t) else np.zeros(0)
    if step_v is None:
        step_v, _ = _step_speed(s, t)
    dev = s["speed_mps"]
    v = np.where(np.isfinite(dev) & (dt <= LONG_STEP_S), dev, step_v)
    # faster than a runner is no speed at all; a NaN speed compares False (not moving)
    return (v >= STOP_SPEED_MPS) & (v <= MAX_RUN_STEP_SPEED_MPS), dt


def _idle_pieces(s: Columns, t: np.ndarray) -> np.ndarray:
    """Label of each sample's piece: pieces are split by gaps or stationary stretches ≥ 10 min."""
    n = len(t)
    idle = np.zeros(n, dtype=bool)
    if n == 0:
        return np.zeros(0, dtype=int)
    gap = np.concatenate(([False], np.diff(t) >= SPLIT_GAP_S))
    lat, lon = s["lat_deg"], s["lon_deg"]
    if np.isfinite(lat).sum() >= 2:
        win = pd.DataFrame({"lat": lat, "lon": lon},
                           index=pd.DatetimeIndex(s["timestamp"].view("M8[ns]"))).rolling(
            pd.Timedelta(seconds=STATIONARY_MIN_S))
        hi, lo = win.max(), win.min()
        diag = haversine_m(lo["lat"], lo["lon"], hi["lat"], hi["lon"])
        first = np.searchsorted(t, t - STATIONARY_MIN_S, side="right")
        full = (t - t[first]) >= 0.9 * STATIONARY_MIN_S
        ends = np.flatnonzero(full & (diag / 2 <= STATIONARY_RADIUS_M))
        if len(ends):
            # mark every sample inside a stationary window (difference array, no loop)
            mark = np.zeros(n + 1, dtype=int)
            np.add.at(mark, first[ends], 1)
            np.add.at(mark, ends + 1, -1)
            idle = np.cumsum(mark[:-1]) > 0
    # a new piece starts at a gap, or where activity resumes after an idle stretch
    starts = gap | np.concatenate(([False], idle[:-1] & ~idle[1:]))
    return np.cumsum(starts)


def assess_quality(samples: pd.DataFrame | SampleColumns, *, sport_sub: str | None,
                   summary: dict) -> QualityResult:
    """Clean one run's samples and judge whether its numbers can feed rules and baselines.

    Parameters
    ----------
    samples : DataFrame or SampleColumns
        A reader's samples (:data:`runlog.activity.SAMPLE_COLUMNS`, SI units), as a frame or
        as :data:`runlog.activity.SampleColumns` (never changed: cleaning works on copies).
    sport_sub : str or None
        The file's sub-sport; ``treadmill``/``indoor`` runs have no positions to check.
    summary : dict
        The file's own totals (``distance_m`` [m] is compared with the cleaned track).

    Returns
    -------
    QualityResult
        Cleaned samples, the per-step distance mask, issue codes, notes and ``ok``.
    """
    issues: list[str] = []
    notes: list[str] = []
    ok = True
    # (every column is copied: the caller's arrays are never changed; a plain copy when all
    # samples are timed is cheaper than boolean indexing)
    s = sample_columns(samples) if isinstance(samples, pd.DataFrame) else dict(samples)
    timed = s["timestamp"] != NAT_NS
    s = {name: values.copy() for name, values in s.items()} if timed.all() else _take(s, timed)

    # --- order and duplicates ------------------------------------------------------------
    ns = s["timestamp"]
    step_ns = np.diff(ns)
    n_back = int(np.count_nonzero(step_ns < 0))
    if n_back:
        issues.append("timestamps_unordered")
        notes.append(f"{n_back} samples were out of time order and were sorted.")
        s = _take(s, np.argsort(ns, kind="stable"))
        step_ns = np.diff(s["timestamp"])
    n_dup = int(np.count_nonzero(step_ns == 0))
    if n_dup:
        issues.append("duplicate_timestamps")
        notes.append(f"{n_dup} samples repeated an earlier timestamp and were merged into it.")
        s = merge_equal_times(s)

    if len(s["timestamp"]) == 0:
        return QualityResult(s, ["too_short"], ["The file has no timed samples."],
                             False, np.zeros(0, dtype=bool))

    # (compared as int64 ns: Timestamp objects cost more than the checks)
    start_ns, end_ns = int(s["timestamp"][0]), int(s["timestamp"][-1])
    latest_ns = time.time_ns() + FUTURE_SLACK.value
    if start_ns < EARLIEST_VALID_UTC.value or start_ns > latest_ns:
        issues.append("bad_timestamp")
        start = pd.Timestamp(start_ns, tz="UTC")
        notes.append(f"The start time {start:%Y-%m-%d %H:%M} UTC is not believable.")
        ok = False
    elif end_ns > latest_ns:
        issues.append("bad_timestamp")
        end = pd.Timestamp(end_ns, tz="UTC")
        notes.append(f"Samples run into the future (until {end:%Y-%m-%d}); they were dropped.")
        s = _take(s, s["timestamp"] <= latest_ns)

    # --- a watch left running ------------------------------------------------------------
    t = (s["timestamp"] - s["timestamp"][0]) / 1e9
    trimmed_s = 0.0
    elapsed0 = t[-1]
    # the step speeds of the samples before any trim (a trim keeps a prefix of them)
    step_v_all, steps_all = _step_speed(s, t)
    moving, dt = _rough_moving(s, t, step_v_all)
    moving_s = float(dt[moving].sum())
    # (without any movement signal there is nothing to tell the run from the rest)
    if moving_s > 0 and elapsed0 > ELAPSED_FAR_S and elapsed0 > ELAPSED_OVER_MOVING * moving_s:
        piece = _idle_pieces(s, t)
        per_piece = pd.Series(np.where(moving, dt, 0.0)).groupby(piece).sum()
        keep_to = int(np.flatnonzero(piece == per_piece.idxmax())[-1])
        if keep_to < len(t) - 1:
            s = _take(s, slice(0, keep_to + 1))
            t = t[: keep_to + 1]
    tail = _stationary_tail_start(s, t)
    if tail is not None:
        s = _take(s, slice(0, tail + 1))
        t = t[: tail + 1]
    if len(t) and t[-1] < elapsed0:
        trimmed_s = float(elapsed0 - t[-1])
        issues.append("watch_left_running")
        notes.append(
            f"The watch kept recording after the run: {trimmed_s / 3600:.1f} h trimmed "
            f"({elapsed0 / 60:.0f} min recorded, {t[-1] / 60:.0f} min kept)."
            if trimmed_s >= 3600 else
            f"The watch kept recording after the run: {trimmed_s / 60:.0f} min of standing "
            f"still trimmed ({elapsed0 / 60:.0f} min recorded, {t[-1] / 60:.0f} min kept).")

    # --- GPS jumps and distance jumps ----------------------------------------------------
    n = len(t)
    has_track = bool(np.isfinite(s["lat_deg"]).sum() >= 2)
    # position steps only look back to the previous fix, so those of the kept prefix are the
    # prefix of those before the trim (with a track kept, the track was there before it too)
    step_v, steps = ((step_v_all[:n], steps_all[:n]) if has_track
                     else (np.full(n, np.nan), np.full(n, np.nan)))
    jump = step_v > MAX_RUN_STEP_SPEED_MPS
    segment_valid = np.isfinite(steps) & ~jump
    # (valid steps and jumps are finite: a plain sum is the NaN-skipping one)
    track_m = float(np.where(segment_valid, steps, 0.0).sum())
    dropped_m = float(np.where(jump, steps, 0.0).sum())
    if dropped_m >= GPS_JUMP_REPORT_M:
        issues.append("gps_jump")
        notes.append(
            f"{int(jump.sum())} GPS jumps (faster than {MAX_RUN_STEP_SPEED_MPS:.0f} m/s) left "
            f"out of the distance: {dropped_m / 1000:.2f} km dropped, "
            f"{track_m / 1000:.2f} km kept.")
    dev_speed = s["speed_mps"]
    dev_speed[dev_speed > MAX_RUN_STEP_SPEED_MPS] = np.nan

    distance_m = float("nan")
    if has_distance_channel(s):
        d_steps = _distance_steps(s)
        dur = np.concatenate(([np.nan], np.diff(t)))
        # watches correct their total by tens of metres after losing GPS (the summary keeps
        # those); only a large step at an impossible speed is a jump
        d_jump = ((d_steps / np.maximum(dur, MIN_STEP_DURATION_S) > MAX_RUN_STEP_SPEED_MPS)
                  & (d_steps > DISTANCE_JUMP_MIN_M))
        device_m = s["distance_m"]
        has_value = ~np.isnan(device_m)
        first = device_m[has_value][0]
        clean = np.where(np.isfinite(d_steps) & ~d_jump, d_steps, 0.0)
        cum = first + np.cumsum(clean)
        s["distance_m"] = np.where(has_value, cum, np.nan)
        distance_m = float(cum[-1] - first)
        if d_jump.any():
            with np.errstate(over="ignore"):     # absurd distances of broken files
                lost = float(np.nansum(np.where(d_jump, d_steps, 0.0)))
            issues.append("distance_jump")
            notes.append(f"The device distance jumped {int(d_jump.sum())} times; "
                         f"{lost / 1000:.2f} km left out ({distance_m / 1000:.2f} km kept).")
            dropped_m += lost
    elif segment_valid.any():
        distance_m = track_m

    # --- heart rate -----------------------------------------------------------------------
    # (positions are unchanged since step_v; without them the cleaned distance counts)
    moving, dt = _rough_moving(s, t, step_v if has_track else None)
    hr = s["hr_bpm"]
    bad = np.isfinite(hr) & ((hr < HR_MIN_BPM) | (hr > HR_MAX_BPM))
    if bad.any():
        issues.append("hr_out_of_range")
        notes.append(f"{int(bad.sum())} heart-rate values outside {HR_MIN_BPM:.0f}–"
                     f"{HR_MAX_BPM:.0f} bpm were removed.")
        hr[bad] = np.nan
    valid = np.isfinite(hr)
    if valid.any():
        vi = np.flatnonzero(valid)
        same = np.concatenate(([False], hr[vi][1:] == hr[vi][:-1]))
        # stretches of one repeated value: per stretch, its time span and moving share
        first_of_stretch = np.flatnonzero(~same)
        stretch = np.cumsum(~same) - 1
        tv = t[vi]
        span = (np.maximum.reduceat(tv, first_of_stretch)
                - np.minimum.reduceat(tv, first_of_stretch))[stretch]
        sizes = np.diff(np.append(first_of_stretch, len(vi)))
        mv_share = (np.add.reduceat(moving[vi].astype("float64"), first_of_stretch)
                    / sizes)[stretch]
        stuck = (span > HR_CONSTANT_S) & (mv_share >= 0.5)
        if stuck.any():
            issues.append("hr_constant")
            notes.append(f"Heart rate stuck at one value for {span[stuck].max() / 60:.0f} min "
                         "while moving; those values were removed as unreliable.")
            hr[vi[stuck]] = np.nan
            valid = np.isfinite(hr)
    if valid.any() and moving_s > 0:
        vt = t[valid]
        pos = np.clip(np.searchsorted(vt, t), 1, len(vt)) - 1
        nxt = np.clip(pos + 1, 0, len(vt) - 1)
        near = np.minimum(np.abs(t - vt[pos]), np.abs(vt[nxt] - t))
        # a step is covered when an HR value lies near either of its ends
        covered = near <= HR_COVER_S
        mv_total = float(dt[moving].sum())
        missing = float(dt[moving & ~covered].sum())
        if mv_total > 0 and missing / mv_total > HR_DROPOUT_FRAC:
            issues.append("hr_dropout")
            notes.append(f"No heart rate for {missing / 60:.0f} of {mv_total / 60:.0f} moving "
                         "minutes; HR numbers of this run are unreliable.")

    # --- summary vs track -----------------------------------------------------------------
    summ = summary.get("distance_m") if summary else None
    if (summ is not None and np.isfinite(summ) and summ > 0 and np.isfinite(distance_m)
            and abs(distance_m - summ) / summ > SUMMARY_MISMATCH_FRAC):
        issues.append("summary_mismatch")
        notes.append(f"The file's summary says {summ / 1000:.2f} km, the cleaned track "
                     f"{distance_m / 1000:.2f} km.")
    usable_m = distance_m if np.isfinite(distance_m) else float(summ or 0.0)
    if (t[-1] if len(t) else 0.0) < MIN_USABLE_S or usable_m < MIN_USABLE_M:
        issues.append("too_short")
        notes.append("Less than 1 min or 200 m is left after cleaning: not used for rules.")
        ok = False

    return QualityResult(columns=s, issues=issues, notes=notes, ok=ok,
                         segment_valid=segment_valid, step_m=steps, trimmed_s=trimmed_s,
                         dropped_m=dropped_m, track_distance_m=distance_m)
