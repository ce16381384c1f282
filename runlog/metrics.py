"""Per-run metrics from samples: distance, time, grade-adjusted speed, climbing, HR, cadence.

Building blocks are pure vectorised functions with units in their names; the main entry,
:func:`run_metrics`, runs :func:`runlog.quality.assess_quality` first and returns one row of
:data:`runlog.schema.RUN_METRIC_COLUMNS`, the cleaned samples and the cadence bins (the input of
rule K1) as numpy arrays; :func:`compute_run_metrics` gives the same with frames. Time-based
statistics are taken on a 1-s grid (files sample every 1–10 s), where
each grid second carries the values of the sample step that covers it.

References
----------
Minetti AE, Moia C, Roi GS, Susta D, Ferretti G (2002). Energy cost of walking and running at
extreme uphill and downhill slopes. J Appl Physiol 93:1039–1046. doi:10.1152/japplphysiol.01177.2001
Tanaka H, Monahan KD, Seals DR (2001). Age-predicted maximal heart rate revisited.
J Am Coll Cardiol 37:153–156. doi:10.1016/S0735-1097(00)01054-8
"""

from __future__ import annotations

import numpy as np
import pandas as pd

try:    # pandas' own rolling-median kernel: the Series/Rolling wrappers around it cost ~0.2 ms
    from pandas._libs.window.aggregations import roll_median_c as _roll_median_c
except ImportError:     # pragma: no cover - a pandas without it takes the public path
    _roll_median_c = None

from runlog.activity import Activity, SampleColumns, samples_frame, timestamps_ns
from runlog.quality import (
    HR_MAX_BPM,
    HR_MIN_BPM,
    LONG_STEP_S,
    MAX_RUN_STEP_SPEED_MPS,
    STOP_SPEED_MPS,
    assess_quality,
    ffill_bfill,
    has_distance_channel,
    haversine_m,  # noqa: F401  (re-exported: part of this module's API)
)
from runlog.schema import CADENCE_BIN_COLUMNS, METRICS_VERSION, RUN_METRIC_COLUMNS

# --- constants ------------------------------------------------------------------------------
#: Minetti 2002: the polynomial is fitted on grades −0.45…+0.45; clamp outside.
MINETTI_MAX_GRADE = 0.45
#: Minetti 2002: cost of running on the flat [J/kg/m].
MINETTI_FLAT_COST = 3.6
#: RULES.md §0: altitude smoothing of at least 30 s.
ALTITUDE_SMOOTH_S = 30.0
#: RULES.md §0: hysteresis for gain/loss [m]: barometric ~3 m, GPS ~10 m.
HYSTERESIS_BAROMETRIC_M = 3.0
HYSTERESIS_GPS_M = 10.0
#: Distance over which the grade is taken [m] [design: RULES.md §0 smooths over ≥ 50 m].
GRADE_BASE_M = 50.0
#: Shortest stretch the grade is computed over at the ends of the track [m].
GRADE_MIN_BASE_M = 10.0
#: RULES.md K2: steep descent is grade ≤ −8 % over ≥ 50 m.
STEEP_DESCENT_GRADE = -0.08
STEEP_DESCENT_MIN_M = 50.0
#: Half-window for speed derived from distance over time [s] [design].
DERIVED_SPEED_HALF_WINDOW_S = 5.0
#: Devices whose FIT altitude is GPS-only (no barometer) [design, from product sheets].
GPS_ALTITUDE_DEVICES = ("forerunner 10", "forerunner 15", "forerunner 25", "forerunner 30",
                        "forerunner 35", "forerunner 45", "forerunner 55", "forerunner 110",
                        "forerunner 210", "forerunner 220", "forerunner 225", "forerunner 230",
                        "forerunner 235", "forerunner 245", "forerunner 405", "forerunner 410",
                        "fr10", "fr15", "fr25", "fr110", "fr210", "fr220", "fr235", "fr245")
#: RULES.md §0: v_main over moving time from 20 % to 90 % of the run.
MAIN_FROM_FRAC = 0.20
MAIN_TO_FRAC = 0.90
#: RULES.md §0: NGP-like mean uses a 30-s rolling grade-adjusted speed and the 4th power.
NGP_WINDOW_S = 30
NGP_POWER = 4.0
#: Best 30-s HR window needs at least this many seconds of valid HR [s].
HR_WINDOW_S = 30
HR_WINDOW_MIN_S = 25
#: HR is carried to grid seconds at most this far from a valid value [s].
HR_FILL_S = 10.0
#: HR changes faster than this between consecutive valid values are artefacts [bpm/s] [design].
HR_MAX_RATE_BPM_PER_S = 10.0
#: RULES.md W1: warm-up within the first 12 min, ≥ 5 min long, median v_GAP ≤ 0.90·v_main,
#: ≥ 80 % of HR samples ≤ 76 % HRmax (ACSM moderate band, Garber 2011).
WARMUP_SEARCH_S = 12 * 60
WARMUP_MIN_S = 5 * 60
WARMUP_SPEED_RATIO = 0.90
WARMUP_HR_FRAC_MAX = 0.76
WARMUP_HR_SHARE = 0.80
#: Runs shorter than this (moving) have no warm-up verdict [s] [design].
WARMUP_MIN_RUN_S = 15 * 60
#: RULES.md W1 "hard start": minutes 3–5 at ≥ v_main and HR > 85 % HRmax.
HARD_START_FROM_S = 3 * 60
HARD_START_TO_S = 5 * 60
HARD_START_HR_FRAC = 0.85
#: RULES.md W2: last 5 min median v_GAP > 0.85·v_main is an abrupt finish.
FINISH_WINDOW_S = 5 * 60
ABRUPT_FINISH_RATIO = 0.85
#: RULES.md K1: cadence bins of 0.25 m/s grade-adjusted speed.
CADENCE_BIN_MPS = 0.25
#: Device distance whose first value is below this is counted from zero (timer start) [m].
FIRST_DISTANCE_SLACK_M = 100.0


# --- building blocks ------------------------------------------------------------------------
def minetti_cost_j_per_kg_m(grade) -> np.ndarray:
    """Energy cost of running on a slope (Minetti 2002) [J/kg/m].

    Cr(i) = 155.4i⁵ − 30.4i⁴ − 43.3i³ + 46.3i² + 19.5i + 3.6, with the grade ``i`` [fraction,
    rise/run] clamped to ±0.45, the range the polynomial was fitted on. NaN grades stay NaN.
    """
    i = np.clip(np.asarray(grade, dtype="float64"), -MINETTI_MAX_GRADE, MINETTI_MAX_GRADE)
    return ((((155.4 * i - 30.4) * i - 43.3) * i + 46.3) * i + 19.5) * i + MINETTI_FLAT_COST


def grade_adjusted_speed_mps(speed_mps, grade) -> np.ndarray:
    """Flat-equivalent speed v·Cr(i)/Cr(0) [m/s]; a missing grade counts as flat."""
    g = np.asarray(grade, dtype="float64")
    g = np.where(np.isnan(g), 0.0, g)   # ±inf need no care: the clamp to ±0.45 takes them
    with np.errstate(over="ignore"):    # absurd speeds of broken files become inf, not noise
        return (np.asarray(speed_mps, dtype="float64") * minetti_cost_j_per_kg_m(g)
                / MINETTI_FLAT_COST)


def smoothed_altitude_m(timestamp: pd.Series | np.ndarray, altitude_m,
                        window_s: float = ALTITUDE_SMOOTH_S) -> np.ndarray:
    """Centred time-based rolling mean of altitude [m] over ``window_s`` [s] (≥ 30 s).

    ``timestamp``: sorted, unique sample times (datetimes, or int64 ns). Missing altitudes are
    interpolated in time first (and held at the ends); all-missing → NaN. The window of a
    sample at t holds the samples in (t − w/2, t + w/2], as pandas' centred time window does;
    the means come from one cumulative sum (taken about the first value, for precision).
    """
    ns = _ns(timestamp)
    alt = np.asarray(altitude_m, dtype="float64")
    known = np.isfinite(alt)
    if not known.any():
        return np.full(len(alt), np.nan)
    if not known.all():
        alt = np.interp(ns.astype("float64"), ns[known].astype("float64"), alt[known])
    half_ns = int(max(window_s, ALTITUDE_SMOOTH_S) * 1e9) // 2
    lo = np.searchsorted(ns, ns - half_ns, side="right")
    hi = np.searchsorted(ns, ns + half_ns, side="right")
    base = alt[0]
    with np.errstate(over="ignore", invalid="ignore"):   # absurd altitudes of broken files
        total = np.concatenate(([0.0], np.cumsum(alt - base)))
        return base + (total[hi] - total[lo]) / (hi - lo)


def ascent_descent_m(altitude_m, hysteresis_m: float) -> tuple[float, float]:
    """Total ascent and descent [m] with a dead band of ``hysteresis_m`` [m].

    Reversals smaller than the hysteresis are removed from the sequence of turning points
    (each pass drops every locally smallest sub-threshold swing at once, vectorised) until all
    remaining swings exceed it; ascent and descent are the sums of the remaining rises/falls.
    Use 3 m for barometric and 10 m for GPS altitude (RULES.md §0).
    """
    x = np.asarray(altitude_m, dtype="float64")
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return 0.0, 0.0
    x = _turning_points(x)
    while len(x) > 2:
        d = np.abs(x[1:] - x[:-1])
        small = d < hysteresis_m
        if not small.any():
            break
        # a swing is removed when it is no larger than its neighbours (non-overlapping pick)
        pick = small.copy()
        pick[1:] &= d[1:] <= d[:-1]
        pick[:-1] &= d[:-1] < d[1:]
        if not pick.any():
            pick = small & (d == d[small].min())
            pick &= np.concatenate(([True], ~pick[:-1]))
        # drop both ends of an inner swing; at the track's ends keep the end point itself
        drop = np.zeros(len(x), dtype=bool)
        drop[:-1] = pick
        drop[1:] |= pick
        drop[0] = drop[-1] = False
        if not drop.any():
            break
        x = _turning_points(x[~drop])
    d = np.diff(x)
    if len(d) == 1 and abs(d[0]) < hysteresis_m:
        return 0.0, 0.0
    return float(d[d > 0].sum()), float(np.abs(d[d < 0]).sum())  # never -0.0


def _turning_points(x: np.ndarray) -> np.ndarray:
    """The first and last value and every local extremum (plateaus collapsed)."""
    x = x[np.concatenate(([True], x[1:] != x[:-1]))]
    if len(x) < 3:
        return x
    up = x[1:] > x[:-1]                  # (no plateaus left: a step is either up or down)
    turn = np.concatenate(([True], up[1:] != up[:-1], [True]))
    return x[turn]


def _grade(cum_m: np.ndarray, alt_m: np.ndarray, base_m: float = GRADE_BASE_M) -> np.ndarray:
    """Grade [fraction] at each sample over ``base_m`` of distance centred on it."""
    if not np.isfinite(alt_m).any() or len(cum_m) < 2 or cum_m[-1] - cum_m[0] < GRADE_MIN_BASE_M:
        return np.zeros(len(cum_m))
    lo = np.clip(cum_m - base_m / 2, cum_m[0], cum_m[-1])
    hi = np.clip(cum_m + base_m / 2, cum_m[0], cum_m[-1])
    a_lo, a_hi = np.interp(lo, cum_m, alt_m), np.interp(hi, cum_m, alt_m)
    span = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(span >= GRADE_MIN_BASE_M, (a_hi - a_lo) / span, 0.0)
    return g if np.isfinite(g).all() else np.nan_to_num(g)    # (nan_to_num is slow to call)


def steep_descent_minutes(timestamp: pd.Series, cum_distance_m, altitude_m, moving,
                          grade_max: float = STEEP_DESCENT_GRADE,
                          min_stretch_m: float = STEEP_DESCENT_MIN_M) -> float:
    """Moving minutes on stretches of ≥ ``min_stretch_m`` [m] at grade ≤ ``grade_max`` [min].

    For every sample the grade over the next ``min_stretch_m`` of distance is taken from the
    (smoothed) altitude; each steep stretch marks the samples inside it (a difference array,
    no loop). Minutes are the moving step durations of marked samples.
    """
    cum = np.asarray(cum_distance_m, dtype="float64")
    alt = np.asarray(altitude_m, dtype="float64")
    n = len(cum)
    if n < 2 or not np.isfinite(alt).any():
        return 0.0
    ahead = cum + min_stretch_m
    fits = ahead <= cum[-1]
    drop = np.interp(ahead, cum, alt) - alt
    steep = fits & (drop / min_stretch_m <= grade_max)
    starts = np.flatnonzero(steep)
    if not len(starts):
        return 0.0
    ends = np.searchsorted(cum, ahead[starts], side="left")
    # the step INTO the next sample is downhill (counts as one np.add.at, cheaper to call)
    mark = (np.bincount(starts + 1, minlength=n + 1)
            - np.bincount(np.minimum(ends, n - 1) + 1, minlength=n + 1))
    inside = np.cumsum(mark[:-1]) > 0
    t = _seconds(timestamp)
    dt = np.concatenate(([0.0], np.diff(t)))
    return float(dt[inside & np.asarray(moving, dtype=bool)].sum() / 60.0)


def derived_speed_mps(timestamp: pd.Series, cum_distance_m,
                      half_window_s: float = DERIVED_SPEED_HALF_WINDOW_S) -> np.ndarray:
    """Speed from cumulative distance over a centred time window [m/s].

    The distance is interpolated at t ± ``half_window_s`` [s], so sample spacing of 1–10 s,
    sub-second duplicates and recording gaps all give the mean speed over the window (over a
    gap: the gap's mean speed, near zero when the runner stood still).
    """
    t = _seconds(timestamp)
    cum = np.asarray(cum_distance_m, dtype="float64")
    if len(t) < 2:
        return np.full(len(t), np.nan)
    lo = np.clip(t - half_window_s, t[0], t[-1])
    hi = np.clip(t + half_window_s, t[0], t[-1])
    # a step longer than the window spreads its distance evenly over the step
    with np.errstate(invalid="ignore", divide="ignore"):
        v = (np.interp(hi, t, cum) - np.interp(lo, t, cum)) / (hi - lo)
    return v


def moving_mask(timestamp: pd.Series, speed_mps, pauses=(),
                stop_speed_mps: float = STOP_SPEED_MPS) -> np.ndarray:
    """Per-sample moving flag: the step into the sample is outside every timer pause and the
    speed is ≥ ``stop_speed_mps`` [m/s] (RULES.md §0: stops < 0.5 m/s excluded everywhere).

    ``pauses`` are (stop, start) UTC timestamps from the file's timer events.
    """
    v = np.asarray(speed_mps, dtype="float64")
    moving = v >= stop_speed_mps        # a NaN speed compares False: not moving
    if len(pauses) and len(v):
        ns = _ns(timestamp)
        stops = np.array([pd.Timestamp(a).value for a, _ in pauses], dtype="int64")
        starts = np.array([pd.Timestamp(b).value for _, b in pauses], dtype="int64")
        order = np.argsort(stops)
        stops, starts = stops[order], starts[order]
        prev = np.concatenate((ns[:1], ns[:-1]))
        mid = prev + (ns - prev) // 2
        k = np.searchsorted(stops, mid, side="right") - 1
        paused = (k >= 0) & (mid < starts[np.maximum(k, 0)])
        moving &= ~paused
    return moving


def hr_max_estimate_bpm(timestamp: pd.Series, hr_bpm) -> float:
    """Best artefact-free 30-s mean heart rate of one run [bpm] (RULES.md §0 HRmax tier 2).

    Values outside 30–240 bpm and values changing faster than 10 bpm/s from their valid
    neighbours are removed; the best 30-s window needs ≥ 25 s of valid HR. NaN without HR.
    """
    ns = _ns(timestamp)
    hr = _clean_hr(_seconds(ns), np.asarray(hr_bpm, dtype="float64"))
    return _best_window_mean(_hr_on_grid(ns, hr))


def _clean_hr(t: np.ndarray, hr: np.ndarray) -> np.ndarray:
    hr = np.where((hr >= HR_MIN_BPM) & (hr <= HR_MAX_BPM), hr, np.nan)
    vi = np.flatnonzero(np.isfinite(hr))
    if len(vi) > 2:
        v, tv = hr[vi], t[vi]
        rate_in = np.abs(np.diff(v)) / np.maximum(np.diff(tv), 1.0)
        up = np.concatenate(([0.0], rate_in)) > HR_MAX_RATE_BPM_PER_S
        down = np.concatenate((rate_in, [0.0])) > HR_MAX_RATE_BPM_PER_S
        spike = up & down                    # a lone value far from both neighbours
        hr[vi[spike]] = np.nan
    return hr


def _hr_on_grid(ns: np.ndarray, hr: np.ndarray) -> np.ndarray:
    """HR carried to each second of the 1-s grid from the nearest valid sample within
    HR_FILL_S (a tie goes to the later sample, as pandas' ``reindex(method="nearest")``)."""
    grid = _grid_ns(ns)
    valid = np.isfinite(hr)
    times, values = ns[valid], hr[valid]
    if not len(times):
        return np.full(len(grid), np.nan)
    first = np.concatenate(([True], np.diff(times) != 0))         # one value per time: the first
    times, values = times[first], values[first]
    right = np.searchsorted(times, grid, side="left")           # first sample at/after
    left = right - 1                                             # last sample before
    at_right = np.minimum(right, len(times) - 1)
    at_left = np.maximum(left, 0)
    far = np.iinfo(np.int64).max
    to_right = np.where(right < len(times), times[at_right] - grid, far)
    to_left = np.where(left >= 0, grid - times[at_left], far)
    pick = np.where(to_left < to_right, at_left, at_right)
    near = np.minimum(to_left, to_right) <= int(HR_FILL_S * 1e9)
    return np.where(near, values[pick], np.nan)


def _best_window_mean(grid_hr: np.ndarray) -> float:
    if not np.isfinite(grid_hr).any():
        return float("nan")
    roll = rolling_mean(grid_hr, HR_WINDOW_S, HR_WINDOW_MIN_S)
    best = np.nanmax(roll) if np.isfinite(roll).any() else np.nan
    return float(best) if np.isfinite(best) else float(np.nanmax(grid_hr))


def rolling_mean(values: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """Trailing mean over ``window`` samples, NaN-skipping, NaN under ``min_periods`` valid.

    As ``pd.Series(values).rolling(window, min_periods).mean()``, from two cumulative sums
    (the values are taken about their first valid value, for precision).
    """
    x = np.asarray(values, dtype="float64")
    size = len(x)
    valid = ~np.isnan(x)
    base = x[np.argmax(valid)] if valid.any() else 0.0
    total = np.zeros(size + 1)
    count = np.zeros(size + 1, dtype="int64")
    with np.errstate(over="ignore", invalid="ignore"):
        np.cumsum(np.where(valid, x - base, 0.0), out=total[1:])
    np.cumsum(valid, out=count[1:])
    # a window's sum is the running sum at its end minus the one `window` samples earlier;
    # the first `window` windows start at the beginning (slices, not gathers)
    head = min(window, size)
    total_before = np.concatenate((np.zeros(head), total[1:size - head + 1]))
    count_before = np.concatenate((np.zeros(head, dtype="int64"), count[1:size - head + 1]))
    n = count[1:] - count_before
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = base + (total[1:] - total_before) / n
    return np.where(n >= min_periods, mean, np.nan)


def rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing median over ``window`` samples; NaN unless all ``window`` values are finite.

    As ``pd.Series(values).rolling(window, min_periods=window).median()`` (which counts ±inf as
    missing), from pandas' own kernel without the Series and Rolling objects around it
    (~0.25 ms a run); the public call when this pandas lacks the kernel or it refuses the
    arguments (a private function may change between versions; a test pins the two equal).
    """
    x = np.asarray(values, dtype="float64")
    if _roll_median_c is not None and len(x):
        kernel_input = np.where(np.isinf(x), np.nan, x)  # as pandas' Rolling._prep_values
        end = np.arange(1, len(x) + 1, dtype="int64")
        start = np.maximum(end - window, 0)
        try:
            with np.errstate(all="ignore"):      # as pandas' Rolling._apply
                return np.asarray(_roll_median_c(kernel_input, start, end, window))
        except (TypeError, ValueError):          # a private kernel may change: public path
            pass
    return pd.Series(x).rolling(window, min_periods=window).median().to_numpy()


def _nanmedian(values: np.ndarray) -> float:
    """``np.nanmedian`` of a 1-D float array (NaN when nothing is left), without its wrappers
    (~50 µs a call, which a run pays several times): the middle order statistics of the
    non-NaN values, the mean of the two middle ones for an even count."""
    x = values[~np.isnan(values)]
    half = len(x) // 2
    if not len(x):
        return float("nan")
    if len(x) % 2:
        return float(np.partition(x, half)[half])
    part = np.partition(x, (half - 1, half))
    with np.errstate(invalid="ignore"):          # inf + -inf is NaN, as np.median gives
        return float((part[half - 1] + part[half]) / 2)


def _nanmean(values: np.ndarray) -> np.float64:
    """``np.nanmean`` of a 1-D float array (NaN when all are NaN), without its wrappers: the
    same pairwise sum of the values with NaN as 0, divided by the count of the others."""
    valid = ~np.isnan(values)
    count = np.count_nonzero(valid)
    if not count:
        return np.float64(np.nan)
    return np.where(valid, values, 0.0).sum() / count


def _ns(timestamp: pd.Series | np.ndarray) -> np.ndarray:
    """Sample times as int64 ns (datetimes are converted; int64 arrays pass through)."""
    if isinstance(timestamp, np.ndarray) and timestamp.dtype == np.int64:
        return timestamp
    return timestamps_ns(pd.Series(timestamp))


def _seconds(timestamp: pd.Series | np.ndarray) -> np.ndarray:
    """Seconds since the first sample."""
    ns = _ns(timestamp)
    return (ns - ns[0]) / 1e9 if len(ns) else np.zeros(0)


_SECOND_NS = 1_000_000_000


def _grid_ns(ns: np.ndarray) -> np.ndarray:
    """1-s grid [int64 ns] from the first sample's second (floor) to the last's (ceil)."""
    start = ns[0] // _SECOND_NS * _SECOND_NS
    stop = -(-ns[-1] // _SECOND_NS) * _SECOND_NS
    return np.arange(start, stop + 1, _SECOND_NS, dtype="int64")


# --- altitude source --------------------------------------------------------------------------
def altitude_source(activity: Activity, samples: pd.DataFrame | dict[str, np.ndarray]) -> str:
    """``barometric`` | ``gps`` | ``none``.

    FIT files from watches write barometric (``enhanced_altitude``) when the device has a
    barometer; a short list of GPS-only Forerunners is known. GPX/TCX altitude is treated as GPS
    (phones and exporters rarely say, and GPX often carries DEM or GPS heights).
    """
    if np.isnan(np.asarray(samples["altitude_m"], dtype="float64")).all():
        return "none"
    if activity.source_format == "fit":
        device = (activity.device or "").lower()
        return "gps" if any(d in device for d in GPS_ALTITUDE_DEVICES) else "barometric"
    return "gps"


# --- the main entry ---------------------------------------------------------------------------
def compute_run_metrics(activity: Activity, *, hr_max_bpm: float | None = None,
                        ) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Metrics of one run, its cleaned samples and its cadence-per-speed bins, as frames.

    :func:`run_metrics` computes them; this returns the samples and bins as DataFrames.
    """
    metrics, samples, bins = run_metrics(activity, hr_max_bpm=hr_max_bpm)
    return metrics, samples_frame(samples), pd.DataFrame(bins, copy=False)


def run_metrics(activity: Activity, *, hr_max_bpm: float | None = None,
                hr_max_source: str = "profile",
                ) -> tuple[dict, SampleColumns, dict[str, np.ndarray]]:
    """Metrics of one run, its cleaned samples and its cadence-per-speed bins.

    The import's path: everything stays numpy arrays (a few pandas calls per run would cost
    more than the maths).

    Parameters
    ----------
    activity : Activity
        One run as a reader returned it.
    hr_max_bpm : float, optional
        The HRmax [bpm] the %HRmax verdicts (``main_hr_pct_max``, ``warmup_present``,
        ``hard_start``) are taken with; without it they use no HR. The store replaces them
        with those of the HRmax each run resolves to (:mod:`runlog.hrmax`: profile > best
        30 s of 180 days > age formula), from the HRmax-free numbers computed here.
    hr_max_source : str
        ``hr_max_source`` recorded with ``hr_max_bpm`` (profile | history_30s | age_formula).

    Returns
    -------
    metrics : dict
        Exactly the keys of :data:`runlog.schema.RUN_METRIC_COLUMNS`.
    samples : SampleColumns
        The cleaned samples (:func:`runlog.quality.assess_quality`).
    bins : dict of arrays
        :data:`runlog.schema.CADENCE_BIN_COLUMNS` without ``run_id``.
    """
    q = assess_quality(activity.columns, sport_sub=activity.sub_sport, summary=activity.summary)
    col = q.columns
    n = len(col["timestamp"])
    m: dict = dict.fromkeys(RUN_METRIC_COLUMNS, np.nan)
    m.update(distance_source="device", altitude_source="none", temp_source="missing",
             warmup_present=pd.NA, hard_start=pd.NA, abrupt_finish=pd.NA,
             has_gps=bool((~np.isnan(col["lat_deg"])).any()),
             has_hr=bool((~np.isnan(col["hr_bpm"])).any()),
             has_cadence=bool((col["cadence_spm"] > 0).any()),
             # a damaged file's run may be longer than what could be read (the reader's
             # note, added by the importer, says where it stops)
             quality_issues=";".join([*q.issues, *(["file_damaged"] if activity.damaged
                                                  else [])]),
             quality_notes=" ".join(q.notes),
             quality_ok=bool(q.ok), metrics_version=METRICS_VERSION,
             hr_max_used_bpm=float(hr_max_bpm) if hr_max_bpm else np.nan,
             hr_max_source=hr_max_source if hr_max_bpm else None,
             # Climbing stays unknown (NaN) unless the file has altitude: 0 would be a claim.
             elapsed_s=0.0, moving_s=0.0, distance_m=0.0)
    if n < 2:
        summ = activity.summary.get("distance_m")
        m["distance_m"] = float(summ) if summ else 0.0
        return m, col, _empty_bins()

    ts = col["timestamp"]
    t = _seconds(ts)
    dt = np.concatenate(([0.0], np.diff(t)))
    m["elapsed_s"] = float(t[-1])
    summary_elapsed = activity.summary.get("elapsed_s")
    if summary_elapsed and q.trimmed_s == 0 and np.isfinite(summary_elapsed):
        # The file's own total is the truth (records may stop a second or two before the
        # session ends); after a trim it no longer describes the run, so the track wins.
        m["elapsed_s"] = float(summary_elapsed)

    # --- distance: device channel > positions > file summary -------------------------------
    if has_distance_channel(col):
        d = ffill_bfill(col["distance_m"])
        cum = np.maximum.accumulate(d)
        first = float(cum[0])
        offset = first if first < FIRST_DISTANCE_SLACK_M else 0.0
        distance = float(cum[-1] - first + offset)
        source = "device"
    elif q.segment_valid.any():
        # the track's steps as the quality checks measured them (a valid step has a length)
        cum = np.cumsum(np.where(q.segment_valid, q.step_m, 0.0))
        distance = float(cum[-1])
        source = "track"
    else:
        summ = activity.summary.get("distance_m")
        distance = float(summ) if summ else np.nan
        speed_dev = col["speed_mps"]
        if np.isfinite(speed_dev).any():
            cum = np.cumsum(np.nan_to_num(speed_dev) * dt)
        else:
            cum = np.full(n, np.nan)
        source = "device"
    m["distance_m"], m["distance_source"] = distance, source

    # --- speed and moving time ----------------------------------------------------------------
    step_len = (np.concatenate(([0.0], np.diff(cum))) if np.isfinite(cum).all()
                else np.full(n, np.nan))
    with np.errstate(invalid="ignore", divide="ignore"):
        step_v = step_len / np.where(dt > 0, dt, np.nan)
    dev = col["speed_mps"]
    derived = derived_speed_mps(ts, cum) if np.isfinite(cum).all() else np.full(n, np.nan)
    speed = np.where(np.isfinite(dev), dev, derived)
    # over long steps the step's own mean speed decides (a device speed logged after a gap
    # says nothing about the gap)
    speed = np.where((dt > LONG_STEP_S) & np.isfinite(step_v), np.minimum(speed, step_v), speed)
    speed = np.where(speed > MAX_RUN_STEP_SPEED_MPS, np.nan, speed)
    has_speed = bool(np.isfinite(speed).any())
    moving = moving_mask(ts, speed, activity.pauses)
    moving_s = float(dt[moving].sum())
    m["moving_s"] = moving_s
    m["avg_speed_mps"] = distance / moving_s if moving_s > 0 and np.isfinite(distance) else np.nan

    # --- altitude, grade, climbing ----------------------------------------------------------
    alt_src = altitude_source(activity, col)
    m["altitude_source"] = alt_src
    grade = np.zeros(n)
    if alt_src != "none":
        alt = smoothed_altitude_m(ts, col["altitude_m"])
        hyst = HYSTERESIS_BAROMETRIC_M if alt_src == "barometric" else HYSTERESIS_GPS_M
        m["ascent_m"], m["descent_m"] = ascent_descent_m(alt, hyst)
        if np.isfinite(cum).all():
            grade = _grade(cum, alt)
            m["steep_descent_min"] = steep_descent_minutes(ts, cum, alt, moving)
    v_gap = grade_adjusted_speed_mps(speed, grade)

    # --- the 1-s grid ---------------------------------------------------------------------------
    gns = _grid_ns(ts)
    sns = ts
    idx = np.minimum(np.searchsorted(sns, gns, side="left"), n - 1)
    g_moving = moving[idx] & (gns >= sns[0])
    g_vgap = v_gap[idx]
    hr_clean = _clean_hr(t, col["hr_bpm"])
    g_hr = _hr_on_grid(ts, hr_clean)
    g_cad = col["cadence_spm"][idx]

    mv = np.flatnonzero(g_moving)                    # moving seconds, in order
    n_mv = len(mv)
    frac = (np.arange(n_mv) + 0.5) / n_mv if n_mv else np.zeros(0)
    main = mv[(frac >= MAIN_FROM_FRAC) & (frac <= MAIN_TO_FRAC)]
    vg_mv = g_vgap[mv]
    v_main = _nanmedian(g_vgap[main]) if has_speed and len(main) else np.nan
    m["v_main_gap_mps"] = v_main
    if has_speed and n_mv >= NGP_WINDOW_S:
        roll = rolling_mean(vg_mv, NGP_WINDOW_S, NGP_WINDOW_S // 2)
        m["v_ngp_mps"] = float(_nanmean(roll ** NGP_POWER) ** (1 / NGP_POWER))

    # --- heart rate ----------------------------------------------------------------------------
    if np.isfinite(g_hr).any():
        m["avg_hr_bpm"] = float(_nanmean(g_hr[mv])) if n_mv and np.isfinite(
            g_hr[mv]).any() else np.nan
        m["max_hr_bpm"] = float(np.nanmax(hr_clean))
        m["best_30s_hr_bpm"] = _best_window_mean(g_hr)
        if len(main) and np.isfinite(g_hr[main]).any():
            m["main_hr_bpm"] = float(_nanmean(g_hr[main]))
    cad_mv = g_cad[mv]
    cad_ok = np.isfinite(cad_mv) & (cad_mv > 0)
    if cad_ok.any():
        m["avg_cadence_spm"] = float(cad_mv[cad_ok].mean())
    temp = col["temp_c"]
    if np.isfinite(temp).any():
        m["temp_c"], m["temp_source"] = _nanmedian(temp), "device"

    # --- warm-up, hard start, finish (RULES.md W1/W2) -----------------------------------------
    if has_speed and np.isfinite(v_main) and v_main > 0:
        m.update(_warmup(vg_mv, g_hr[mv], v_main, moving_s))
        if n_mv >= FINISH_WINDOW_S * 2:
            ratio = _nanmedian(vg_mv[-FINISH_WINDOW_S:]) / v_main
            m["finish_speed_ratio"] = ratio
            m["abrupt_finish"] = bool(ratio > ABRUPT_FINISH_RATIO)

    verdicts = hr_verdicts(*(np.array([m[c]], dtype="float64") for c in (
        "hr_max_used_bpm", "avg_hr_bpm", "main_hr_bpm", "warmup_easy_speed_ratio",
        "warmup_hr_p80_bpm", "start_speed_ratio", "start_hr_bpm")))
    m.update({c: v[0] for c, v in verdicts.items()})

    # --- cadence bins ----------------------------------------------------------------------------
    if not (cad_ok.any() and has_speed):
        return m, col, _empty_bins()
    sel = cad_ok & np.isfinite(vg_mv)
    edge = np.floor(vg_mv[sel] / CADENCE_BIN_MPS) * CADENCE_BIN_MPS
    speed_bin, seconds, median = _group_medians(np.round(edge, 2), cad_mv[sel])
    bins = {"speed_bin_mps": speed_bin, "minutes": seconds / 60.0, "median_cadence_spm": median}
    return m, col, bins


_BIN_COLUMNS = [c for c in CADENCE_BIN_COLUMNS if c != "run_id"]


def _empty_bins() -> dict[str, np.ndarray]:
    return {c: np.zeros(0) for c in _BIN_COLUMNS}


def _group_medians(keys: np.ndarray, values: np.ndarray,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted unique keys, count per key, median of ``values`` per key), all numpy.

    An even count takes the mean of the two middle values, as pandas' groupby median does.
    """
    if not len(keys):
        return np.zeros(0), np.zeros(0, dtype="int64"), np.zeros(0)
    # one sort by key, then value (np.unique would sort the keys a second time)
    order = np.lexsort((values, keys))
    sorted_keys, ordered = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    counts = np.diff(np.append(starts, len(keys)))
    upper = ordered[starts + counts // 2]
    lower = ordered[starts + (counts - 1) // 2]
    return sorted_keys[starts].astype("float64"), counts, (lower + upper) / 2.0


def _warmup(vg: np.ndarray, hr: np.ndarray, v_main: float, moving_s: float) -> dict:
    """The HRmax-free numbers of W1's detector and hard start over the moving seconds ``vg``
    (v_GAP [m/s]) and ``hr`` [bpm] on the 1-s grid; :func:`hr_verdicts` turns them into
    ``warmup_present`` and ``hard_start`` for a given HRmax.

    * ``warmup_easy_speed_ratio``: the lowest median v_GAP / v_main of the trailing 5-min
      windows ending in the first 12 min (≤ 0.90 passes the pace test).
    * ``warmup_hr_p80_bpm``: over the windows passing the pace test, the lowest HR that ≥ 80 %
      of a window's valid HR samples are at or below (its ⌈0.8·n⌉-th smallest value); NaN
      when no such window has HR. "≥ 80 % of samples ≤ 76 % HRmax" holds for some pace-easy
      window exactly when this is ≤ 0.76·HRmax (:func:`_lowest_window_quantile`).
    * ``start_speed_ratio``: median v_GAP of minutes 3–5 / v_main; ``start_hr_bpm``: their
      mean HR.
    """
    out: dict = {}
    n = len(vg)
    if moving_s >= WARMUP_MIN_RUN_S and n >= WARMUP_SEARCH_S:
        ratio = rolling_median(vg[:WARMUP_SEARCH_S], WARMUP_MIN_S) / v_main
        finite = np.isfinite(ratio)
        if finite.any():
            out["warmup_easy_speed_ratio"] = float(ratio[finite].min())
            # trailing windows ending at WARMUP_MIN_S − 1 … (only they have a pace median)
            ends = np.flatnonzero(ratio <= WARMUP_SPEED_RATIO)
            h = hr[:WARMUP_SEARCH_S]
            if len(ends) and np.isfinite(h).any():
                p80 = _lowest_window_quantile(h, ends, WARMUP_MIN_S, WARMUP_HR_SHARE)
                if np.isfinite(p80):
                    out["warmup_hr_p80_bpm"] = p80
    if n >= HARD_START_TO_S:
        seg = slice(HARD_START_FROM_S, HARD_START_TO_S)
        out["start_speed_ratio"] = _nanmedian(vg[seg]) / v_main
        if np.isfinite(hr[seg]).any():
            out["start_hr_bpm"] = float(_nanmean(hr[seg]))
    return out


def _lowest_window_quantile(x: np.ndarray, ends: np.ndarray, window: int,
                            share: float) -> float:
    """Lowest value X of ``x`` such that, in one of the trailing ``window``-sample windows
    ending at ``ends``, at least ``share`` of the window's non-NaN values are ≤ X (NaN when
    those windows hold no value).

    A binary search over the distinct values: for a candidate X the windows' counts of
    values ≤ X are one cumulative sum, so the search costs ~log2(distinct) array passes
    (heart rates: ~7), not a sort of every window.
    """
    valid = np.isfinite(x)
    starts = ends - window + 1
    count_valid = _window_sums(valid, starts, ends)
    has = count_valid > 0
    if not has.any():
        return float("nan")
    starts, ends, count_valid = starts[has], ends[has], count_valid[has]
    # smallest k with k / count ≥ share (rounded: 0.8·5 must give 4, not 4.000…1)
    need = np.ceil(np.round(count_valid * share, 9))
    values = np.unique(x[valid])
    lo, hi = 0, len(values) - 1          # values[hi] always passes: every value is ≤ it
    while lo < hi:
        mid = (lo + hi) // 2
        if (_window_sums(valid & (x <= values[mid]), starts, ends) >= need).any():
            hi = mid
        else:
            lo = mid + 1
    return float(values[lo])


def _window_sums(flags: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Number of True ``flags`` in each window [start, end] (inclusive indices)."""
    total = np.concatenate(([0], np.cumsum(flags)))
    return total[ends + 1] - total[starts]


def hr_verdicts(hr_max_bpm, avg_hr_bpm, main_hr_bpm, warmup_easy_speed_ratio,
                warmup_hr_p80_bpm, start_speed_ratio, start_hr_bpm,
                ) -> dict[str, np.ndarray]:
    """The HRmax-dependent metrics of runs from their HRmax-free numbers (arrays, one per run).

    * ``main_hr_pct_max`` = main-part mean HR / HRmax [fraction].
    * ``warmup_present`` (RULES.md W1 detector): missing without a warm-up window
      (``warmup_easy_speed_ratio`` NaN: run < 15 min or no pace); with HR and HRmax, some
      pace-easy 5-min window has ≥ 80 % of its HR samples ≤ 76 % HRmax, i.e.
      ``warmup_hr_p80_bpm`` ≤ 0.76·HRmax; otherwise the pace test alone (ratio ≤ 0.90).
    * ``hard_start``: minutes 3–5 at ≥ v_main (``start_speed_ratio`` ≥ 1) and, with HR there
      and HRmax, mean HR > 85 % HRmax; False when not fast; missing when fast but HR or HRmax
      is unknown, or the run is under 5 moving minutes.

    Returns float arrays for ``main_hr_pct_max`` and object arrays (True/False/``pd.NA``) for
    the two verdicts.
    """
    h = np.asarray(hr_max_bpm, dtype="float64")
    h = np.where(np.isfinite(h) & (h > 0), h, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.asarray(main_hr_bpm, dtype="float64") / h
    hr_known = np.isfinite(h) & np.isfinite(np.asarray(avg_hr_bpm, dtype="float64"))
    ratio = np.asarray(warmup_easy_speed_ratio, dtype="float64")
    p80 = np.asarray(warmup_hr_p80_bpm, dtype="float64")
    with np.errstate(invalid="ignore"):
        by_hr = p80 <= WARMUP_HR_FRAC_MAX * h          # (NaN compares False)
    warm = np.where(hr_known, by_hr, ratio <= WARMUP_SPEED_RATIO).astype(object)
    warm[np.isnan(ratio)] = pd.NA
    s_ratio = np.asarray(start_speed_ratio, dtype="float64")
    s_hr = np.asarray(start_hr_bpm, dtype="float64")
    fast = s_ratio >= 1.0
    with_hr = hr_known & np.isfinite(s_hr)
    with np.errstate(invalid="ignore"):
        hard_by_hr = fast & (s_hr > HARD_START_HR_FRAC * h)
    hard = np.full(len(s_ratio), pd.NA, dtype=object)
    hard[~fast] = False
    hard[with_hr] = hard_by_hr[with_hr]
    hard[np.isnan(s_ratio)] = pd.NA
    return {"main_hr_pct_max": pct, "warmup_present": _plain_bools(warm),
            "hard_start": _plain_bools(hard)}


def _plain_bools(values: np.ndarray) -> np.ndarray:
    """numpy bools as Python bools (True/False/pd.NA), as the metrics rows hold them."""
    return np.array([x if x is pd.NA else bool(x) for x in values], dtype=object)
