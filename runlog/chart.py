"""The weekly risk chart: weekly distance bars coloured by risk, the ACWR trend, high-risk runs.

Rendered with matplotlib's Agg canvas on a bare :class:`matplotlib.figure.Figure` (no pyplot
state, no screen needed). Every drawn element a test or a reader may look for carries a gid:

``week-bar-YYYY-MM-DD``     one bar per week with runs (its Monday); no bar for empty weeks
``acwr-line``               the ACWR line (secondary axis); ``acwr-band`` the 0.8–1.3 band
``high-risk-<run_id>``      one marker per high-risk run, at its local day (x = day + 0.5)

This module computes what is drawn (:func:`chart_data`, with pandas);
:mod:`runlog.chart_draw` draws it (matplotlib, loaded only when a chart is drawn) and
:mod:`runlog.chart_spec` holds the constants both share.

Not medical advice: the colours are the highest relative knee/cramp flag of the week.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from runlog.chart_spec import (  # noqa: F401  (the chart's constants, also public here)
    ACWR_BAND_LABEL,
    ACWR_COLOUR,
    ACWR_LABEL,
    ACWR_NOT_SHOWN,
    ACWR_TICK_STEP,
    BAND_COLOUR,
    BAR_WIDTH_DAYS,
    DEFAULT_CHART_WEEKS,
    DISCLAIMER,
    DPI,
    FIG_SIZE_IN,
    FORMATS,
    LEVEL_COLOURS,
    MARGINS,
    MARKER_COLOUR,
    MARKER_GAP_FRAC,
    MAX_RULES_SHOWN,
    NOT_ASSESSED_COLOUR,
    PNG_COMPRESS_LEVEL,
    ChartData,
    check_format,
)
from runlog.weekly import WEEK_DAYS, run_local_start, week_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def high_risk_runs(runs: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """Runs with a high knee or cramp level: run_id, day (local date), distance_km, rules.

    ``rules`` names the rule ids behind the level: the knee/cramp flags of the run at its
    highest level, largest weight × level first (at most :data:`MAX_RULES_SHOWN`).
    """
    cols = ["run_id", "day", "distance_km", "rules"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    knee = runs.get("knee_risk", pd.Series(None, index=runs.index)).astype("object")
    cramp = runs.get("cramp_risk", pd.Series(None, index=runs.index)).astype("object")
    # Only the columns used below: not the rows of all ~80 columns of the runs table.
    start = ["start_local"] if "start_local" in runs.columns else ["start_utc", "tz_offset_min"]
    high = runs[["run_id", "distance_m", *start]][
        ((knee == "high") | (cramp == "high")).to_numpy(dtype=bool)]
    if high.empty:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame({
        "run_id": high["run_id"].to_numpy(),
        "day": run_local_start(high).dt.normalize().to_numpy(),
        "distance_km": pd.to_numeric(high["distance_m"], errors="coerce").to_numpy() / 1000.0,
    })
    rules = out["run_id"].map(_top_rules(flags, set(out["run_id"]))).astype("object")
    out["rules"] = rules.where(rules.notna(), "high")
    return out


def _top_rules(flags: pd.DataFrame, run_ids: set) -> pd.Series:
    """'rule_a, rule_b' per run_id: its knee/cramp flags by level, then weight × level."""
    if flags is None or flags.empty:
        return pd.Series(dtype="object")
    f = flags[flags["run_id"].isin(run_ids) & flags["risk"].isin(["knee", "cramp"])].copy()
    f["lvl"] = pd.to_numeric(f["level"], errors="coerce").astype("float64")
    f = f[f["lvl"] >= 1]
    if f.empty:
        return pd.Series(dtype="object")
    weight = pd.to_numeric(f.get("weight", pd.Series(1.0, index=f.index)), errors="coerce")
    f["score"] = weight.fillna(1.0).astype("float64") * f["lvl"]
    f = f.sort_values(["run_id", "lvl", "score"], ascending=[True, False, False])
    f = f.drop_duplicates(["run_id", "rule"]).groupby("run_id").head(MAX_RULES_SHOWN)
    return f.groupby("run_id")["rule"].agg(", ".join)


def default_period(weeks: pd.DataFrame) -> str:
    """'4 Jan 2021 – 28 Mar 2021': first Monday to last Sunday of the table."""
    first = weeks["week_start"].min()
    last = weeks["week_start"].max() + pd.Timedelta(days=WEEK_DAYS - 1)
    return f"{first:%-d %b %Y} – {last:%-d %b %Y}"


def chart_data(weeks: pd.DataFrame, runs: pd.DataFrame, flags: pd.DataFrame, *,
               title_period: str | None = None) -> ChartData:
    """What :func:`render_chart` draws, as plain arrays (see its parameters)."""
    week_start = pd.to_datetime(weeks["week_start"]).to_numpy(dtype="datetime64[ns]")
    level = weeks["risk_level"].astype("object")
    markers = _markers(weeks, runs, flags)
    return ChartData(
        week_start=week_start,
        week_runs=weeks["runs"].to_numpy(dtype="int64"),
        week_km=weeks["distance_km"].to_numpy(dtype="float64"),
        week_acwr=weeks["acwr"].to_numpy(dtype="float64"),
        week_level=tuple(lvl if isinstance(lvl, str) else None for lvl in level),
        marker_day=pd.to_datetime(markers["day"]).to_numpy(dtype="datetime64[ns]"),
        marker_base_km=markers["base_km"].to_numpy(dtype="float64"),
        marker_stack=markers["stack"].to_numpy(dtype="int64"),
        marker_run_id=tuple(markers["run_id"]),
        marker_rules=tuple(markers["rules"]),
        title_period=("" if weeks.empty else title_period or default_period(weeks)),
    )


def _markers(weeks: pd.DataFrame, runs: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """The high-risk runs inside the weeks shown, by day then run id: day, run_id, rules,
    base_km (their week's distance, 0 when none) and stack (rank within the week)."""
    none = pd.DataFrame({"day": pd.Series(dtype="datetime64[ns]"), "run_id": [], "rules": [],
                         "base_km": pd.Series(dtype="float64"),
                         "stack": pd.Series(dtype="int64")})
    if weeks.empty:
        return none
    hr = high_risk_runs(runs, flags)
    if hr.empty:
        return none
    hr["week_start"] = week_of(hr["day"])
    heights = weeks.set_index("week_start")["distance_km"]
    hr = hr[hr["week_start"].isin(heights.index)].sort_values(["day", "run_id"])
    if hr.empty:
        return none
    return pd.DataFrame({
        "day": hr["day"].to_numpy(), "run_id": hr["run_id"].to_numpy(),
        "rules": hr["rules"].to_numpy(),
        "base_km": heights.reindex(hr["week_start"]).fillna(0).to_numpy(),
        "stack": hr.groupby("week_start").cumcount().to_numpy(),
    })


def render_chart(weeks: pd.DataFrame, runs: pd.DataFrame, flags: pd.DataFrame,
                 path: str | Path, *, title_period: str | None = None) -> Figure:
    """Draw the weekly risk chart and save it to ``path`` (.png, .svg or .pdf).

    Parameters
    ----------
    weeks : :func:`runlog.weekly.weekly_table` output (weeks with ``runs`` = 0 get no bar).
    runs : ``RunLog.runs()`` (for the high-risk markers; runs outside the weeks are ignored).
    flags : ``RunLog.flags()`` (rule ids for the markers' labels).
    path : output file; the suffix picks the format, anything else raises InputError.
    title_period : text for the title's period, default "first Monday – last Sunday".

    Returns
    -------
    The :class:`~matplotlib.figure.Figure` (Agg canvas): ``fig.axes[0]`` holds the bars
    [km] and the ACWR band, ``fig.axes[1]`` the ACWR line [ratio] and, on top, the
    high-risk markers and their labels (positioned in ``fig.axes[0]``'s km coordinates).
    """
    fmt = check_format(path)
    from runlog.chart_draw import draw_chart

    return draw_chart(chart_data(weeks, runs, flags, title_period=title_period), path, fmt)


def recent_weeks(weeks: pd.DataFrame, n: int = DEFAULT_CHART_WEEKS) -> pd.DataFrame:
    """The last ``n`` weeks of a weekly table (which ends at the last week with runs)."""
    return weeks.tail(n).reset_index(drop=True)


def chart_data_from_log(log, *, since: str | None = None, until: str | None = None,
                        n_weeks: int = DEFAULT_CHART_WEEKS) -> ChartData:
    """What ``runlog chart`` draws for a :class:`runlog.api.RunLog`.

    Without ``since``/``until`` the last ``n_weeks`` weeks up to the last run are drawn; the
    numbers (ACWR) always use the whole history.
    """
    from runlog.weekly import weekly_table

    runs, flags = log.runs(), log.flags()
    weeks = weekly_table(runs, flags, since=since, until=until)
    if since is None and until is None:
        weeks = recent_weeks(weeks, n_weeks)
    return chart_data(weeks, runs, flags)


def chart_history(runs: pd.DataFrame, flags: pd.DataFrame) -> ChartData:
    """The chart data of every week from the first to the last week with runs: what
    :mod:`runlog.chart_cache` caches with the assessment and crops to any window.

    ``runs``, ``flags``: every run and flag, as ``RunLog.runs()`` and ``RunLog.flags()``.
    """
    from runlog.weekly import weekly_table

    return chart_data(weekly_table(runs, flags), runs, flags)


def chart_from_log(log, path: str | Path, *, since: str | None = None,
                   until: str | None = None, n_weeks: int = DEFAULT_CHART_WEEKS) -> Figure:
    """``runlog chart``: the weekly chart of a :class:`runlog.api.RunLog` saved to ``path``
    (see :func:`chart_data_from_log`)."""
    fmt = check_format(path)
    data = chart_data_from_log(log, since=since, until=until, n_weeks=n_weeks)
    from runlog.chart_draw import draw_chart

    return draw_chart(data, path, fmt)
