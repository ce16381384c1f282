"""The weekly risk chart: weekly distance bars coloured by risk, the ACWR trend, high-risk runs.

Rendered with matplotlib's Agg canvas on a bare :class:`matplotlib.figure.Figure` (no pyplot
state, no screen needed). Every drawn element a test or a reader may look for carries a gid:

``week-bar-YYYY-MM-DD``     one bar per week with runs (its Monday); no bar for empty weeks
``acwr-line``               the ACWR line (secondary axis); ``acwr-band`` the 0.8–1.3 band
``high-risk-<run_id>``      one marker per high-risk run, at its local day (x = day + 0.5)

Not medical advice: the colours are the highest relative knee/cramp flag of the week.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from runlog.errors import InputError
from runlog.rules.thresholds import ACWR_SWEET_HIGH, ACWR_SWEET_LOW
from runlog.weekly import WEEK_DAYS, run_local_start, week_of

#: Output formats by file suffix.
FORMATS: dict[str, str] = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: Figure size [inch] and PNG resolution [dots per inch].
FIG_SIZE_IN = (11.0, 5.5)
#: Plot area within the figure (fractions): room for the two-line title, the right-hand ACWR
#: axis label and the three-column legend below the date axis.
MARGINS = {"left": 0.06, "right": 0.935, "top": 0.885, "bottom": 0.215}
DPI = 120
#: Bar colours by the week's highest knee-or-cramp level (colour-blind-safe-ish traffic light).
LEVEL_COLOURS: dict[str, str] = {
    "low": "#4caf50",        # green
    "moderate": "#f5a623",   # amber
    "high": "#d0021b",       # red
}
NOT_ASSESSED_COLOUR = "#9e9e9e"
ACWR_COLOUR = "#1f4e9c"
BAND_COLOUR = "#6fa8dc"
MARKER_COLOUR = "#7a0010"
#: Bars fill this fraction of the 7-day week so neighbouring weeks stay apart.
BAR_WIDTH_DAYS = 6.0
#: The markers of high-risk runs sit above the week's bar by this fraction of the y range.
MARKER_GAP_FRAC = 0.06
#: Default chart window of the CLI: this many weeks up to the last week with runs.
DEFAULT_CHART_WEEKS = 52
#: At most this many rule ids in one marker's annotation.
MAX_RULES_SHOWN = 2
ACWR_LABEL = "training trend, not an injury predictor"
DISCLAIMER = ("Not medical advice: colours are relative flags from population studies, "
              "not your probability of injury or cramp.")


def check_format(path: str | Path) -> str:
    """The matplotlib format for ``path``'s suffix, or InputError naming the suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        shown = suffix or "(none)"
        raise InputError(f"unsupported chart format {shown!r}: use .png, .svg or .pdf",
                         path=str(path))
    return FORMATS[suffix]


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
    high = runs[((knee == "high") | (cramp == "high")).to_numpy(dtype=bool)]
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
    # Fixed margins: constrained layout costs ~0.5 s per chart and the layout never changes.
    fig = Figure(figsize=FIG_SIZE_IN, dpi=DPI)
    fig.subplots_adjust(**MARGINS)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    if weeks.empty:
        ax.text(0.5, 0.5, "No runs to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax2.set_axis_off()
        fig.suptitle("Weekly running distance and knee/cramp risk")
        _save(fig, path, fmt)
        return fig

    _draw_bars(ax, weeks)
    _draw_acwr(ax, ax2, weeks)
    _draw_markers(ax, ax2, weeks, runs, flags)
    _decorate(fig, ax, ax2, weeks, title_period)
    _save(fig, path, fmt)
    return fig


def _save(fig: Figure, path: str | Path, fmt: str) -> None:
    """Save, turning an unwritable path into an InputError naming it."""
    try:
        fig.savefig(path, format=fmt)
    except OSError as err:
        raise InputError(f"cannot write the chart: {err.strerror or err}", path=str(path)
                         ) from err


def _draw_bars(ax, weeks: pd.DataFrame) -> None:
    """One bar per week with runs, left edge on Monday, coloured by the week's level."""
    has = weeks[(weeks["runs"] > 0) & weeks["distance_km"].notna()]
    level = has["risk_level"].astype("object")
    colours = level.map(LEVEL_COLOURS).fillna(NOT_ASSESSED_COLOUR)
    x = mdates.date2num(pd.to_datetime(has["week_start"]).to_numpy())
    bars = ax.bar(x + (WEEK_DAYS - BAR_WIDTH_DAYS) / 2, has["distance_km"].to_numpy(),
                  width=BAR_WIDTH_DAYS, align="edge", color=colours.to_numpy(),
                  edgecolor="white", linewidth=0.5, zorder=2)
    for bar, start, lvl in zip(bars, has["week_start"], level, strict=True):
        bar.set_gid(f"week-bar-{start:%Y-%m-%d}")
        bar.set_label(f"_week {start:%Y-%m-%d} {lvl if isinstance(lvl, str) else 'n/a'}")
    ax.set_ylabel("Distance per week [km]")
    ax.set_ylim(0, max(1.0, float(has["distance_km"].max())) * 1.25)
    ax.grid(axis="y", alpha=0.3, zorder=0)


def _draw_acwr(ax, ax2, weeks: pd.DataFrame) -> None:
    """ACWR at each week's last day on the secondary axis, above the bars; the 0.8–1.3 band
    sits behind the bars (on the bar axes, in ACWR units) so it tints nothing."""
    band = ax.fill_between([0, 1], ACWR_SWEET_LOW, ACWR_SWEET_HIGH, color=BAND_COLOUR,
                           alpha=0.2, linewidth=0, zorder=0,
                           transform=blended_transform_factory(ax.transAxes, ax2.transData),
                           label=f"ACWR {ACWR_SWEET_LOW}–{ACWR_SWEET_HIGH}: {ACWR_LABEL}")
    band.set_gid("acwr-band")
    x = mdates.date2num(pd.to_datetime(weeks["week_start"]).to_numpy()) + WEEK_DAYS - 0.5
    y = weeks["acwr"].to_numpy(dtype="float64")
    (line,) = ax2.plot(x, y, color=ACWR_COLOUR, marker="o", markersize=3, linewidth=1.2,
                       alpha=0.85,
                       label="ACWR: 7-day / 28-day mean daily km, at the week's end", zorder=3)
    line.set_gid("acwr-line")
    top = np.nanmax(y) if np.isfinite(y).any() else ACWR_SWEET_HIGH
    ax2.set_ylim(0, max(2.0, float(top) * 1.15))
    ax2.set_ylabel("ACWR [ratio]: training trend, not an injury predictor")
    if not np.isfinite(y).any():
        ax2.text(0.5, 0.97, "ACWR not shown: under 28 days of history",
                 transform=ax2.transAxes, ha="center", va="top", fontsize=8, color=ACWR_COLOUR)


def _draw_markers(ax, ax2, weeks: pd.DataFrame, runs: pd.DataFrame,
                  flags: pd.DataFrame) -> None:
    """A marker above the week's bar on the day of each high-risk run, labelled with rules.

    Positioned in km (the bar axes' data coordinates) but drawn in the top (ACWR) axes so
    the ACWR line never covers a marker or its label.
    """
    hr = high_risk_runs(runs, flags)
    if hr.empty:
        return
    hr["week_start"] = week_of(hr["day"])
    heights = weeks.set_index("week_start")["distance_km"]
    hr = hr[hr["week_start"].isin(heights.index)].sort_values(["day", "run_id"])
    if hr.empty:
        return
    ymax = ax.get_ylim()[1]
    gap = ymax * MARKER_GAP_FRAC
    stack = hr.groupby("week_start").cumcount().to_numpy()
    y = heights.reindex(hr["week_start"]).fillna(0).to_numpy() + gap * (1 + stack)
    x = mdates.date2num(pd.to_datetime(hr["day"]).to_numpy()) + 0.5
    for xi, yi, rid, rules in zip(x, y, hr["run_id"], hr["rules"], strict=True):
        (m,) = ax2.plot([xi], [yi], linestyle="none", marker="v", markersize=8,
                        color=MARKER_COLOUR, markeredgecolor="white", zorder=5,
                        label=f"_high {rid}", transform=ax.transData)
        m.set_gid(f"high-risk-{rid}")
        ax2.annotate(rules, (xi, yi), xycoords=ax.transData, xytext=(0, 6),
                     textcoords="offset points", ha="center", va="bottom", fontsize=7.5,
                     color=MARKER_COLOUR, zorder=6,
                     bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                           "alpha": 0.8})
    ax.set_ylim(0, max(ymax, float(np.max(y)) + 3 * gap))



def _decorate(fig: Figure, ax, ax2, weeks: pd.DataFrame, title_period: str | None) -> None:
    """Date axis, legend below the plot, title with the period, disclaimer."""
    lo = mdates.date2num(pd.Timestamp(weeks["week_start"].min()).to_datetime64())
    hi = mdates.date2num(pd.Timestamp(weeks["week_start"].max()).to_datetime64()) + WEEK_DAYS
    ax.set_xlim(lo - 1, hi + 1)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    ax.set_xlabel("Local weeks, Monday–Sunday (no bar = no runs that week)")
    handles = [Patch(color=LEVEL_COLOURS[k], label=f"week's highest knee/cramp level: {k}")
               for k in ("low", "moderate", "high")]
    if (weeks["runs"] > 0).any() and weeks.loc[weeks["runs"] > 0, "risk_level"].isna().any():
        handles.append(Patch(color=NOT_ASSESSED_COLOUR, label="runs not assessed"))
    handles.append(Line2D([], [], linestyle="none", marker="v", color=MARKER_COLOUR,
                          label="high-risk run (on its day), with the rule ids behind it"))
    handles += [h for h, lab in zip(*ax.get_legend_handles_labels(), strict=True)
                if lab.startswith("ACWR")]
    handles += ax2.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
               ncols=3, frameon=False)
    period = title_period or default_period(weeks)
    fig.suptitle(f"Weekly running distance and knee/cramp risk, {period}\n{DISCLAIMER}",
                 fontsize=11)


def recent_weeks(weeks: pd.DataFrame, n: int = DEFAULT_CHART_WEEKS) -> pd.DataFrame:
    """The last ``n`` weeks of a weekly table (which ends at the last week with runs)."""
    return weeks.tail(n).reset_index(drop=True)


def chart_from_log(log, path: str | Path, *, since: str | None = None,
                   until: str | None = None, n_weeks: int = DEFAULT_CHART_WEEKS) -> Figure:
    """``runlog chart``: the weekly chart of a :class:`runlog.api.RunLog` saved to ``path``.

    Without ``since``/``until`` the last ``n_weeks`` weeks up to the last run are drawn; the
    numbers (ACWR) always use the whole history.
    """
    from runlog.weekly import weekly_table

    check_format(path)
    runs, flags = log.runs(), log.flags()
    weeks = weekly_table(runs, flags, since=since, until=until)
    if since is None and until is None:
        weeks = recent_weeks(weeks, n_weeks)
    return render_chart(weeks, runs, flags, path)
