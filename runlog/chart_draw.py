"""Draw the weekly risk chart from a :class:`~runlog.chart_spec.ChartData`: numpy and
matplotlib only, never pandas.

Rendered with matplotlib's Agg canvas on a bare :class:`matplotlib.figure.Figure` (no pyplot
state, no screen needed); see :mod:`runlog.chart` for the gids of the drawn elements.

Its :func:`main` is the CLI's drawing helper process (:func:`serve`, started by
:mod:`runlog.chart_helper`): it loads matplotlib and prepares the
figure while the CLI process loads pandas and computes the data, then reads one pickled
request on stdin and answers with the image's bytes on stdout.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import sys
from pathlib import Path
from typing import BinaryIO

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MultipleLocator
from matplotlib.transforms import blended_transform_factory

from runlog.chart_helper import REPLY_OK
from runlog.chart_spec import (
    ACWR_BAND_LABEL,
    ACWR_COLOUR,
    ACWR_LABEL,
    ACWR_NOT_SHOWN,
    ACWR_TICK_STEP,
    BAND_COLOUR,
    BAR_WIDTH_DAYS,
    DISCLAIMER,
    DPI,
    FIG_SIZE_IN,
    LEVEL_COLOURS,
    MARGINS,
    MARKER_COLOUR,
    MARKER_GAP_FRAC,
    NOT_ASSESSED_COLOUR,
    PNG_COMPRESS_LEVEL,
    WEEK_DAYS,
    ChartData,
)
from runlog.errors import InputError
from runlog.rules.thresholds import ACWR_SWEET_HIGH, ACWR_SWEET_LOW

Canvas = tuple[Figure, object, object]  # the figure, its bar axes and the twin ACWR axes


def new_canvas() -> Canvas:
    """An empty chart figure with its two axes (the same whatever the data)."""
    # Fixed margins: constrained layout costs ~0.5 s per chart and the layout never changes.
    fig = Figure(figsize=FIG_SIZE_IN, dpi=DPI)
    fig.subplots_adjust(**MARGINS)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    return fig, ax, ax2


def draw_chart(data: ChartData, target: str | os.PathLike | BinaryIO, fmt: str,
               canvas: Canvas | None = None) -> Figure:
    """Draw ``data`` and save it to ``target`` (a path or a binary file) as ``fmt``.

    ``canvas``: a figure from :func:`new_canvas` to draw on (default: a new one).
    Returns the :class:`~matplotlib.figure.Figure`: ``fig.axes[0]`` holds the bars [km]
    and the ACWR band, ``fig.axes[1]`` the ACWR line [ratio] and, on top, the high-risk
    markers and their labels (positioned in ``fig.axes[0]``'s km coordinates).
    """
    fig, ax, ax2 = canvas or new_canvas()
    if len(data.week_start) == 0:
        ax.text(0.5, 0.5, "No runs to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax2.set_axis_off()
        fig.suptitle("Weekly running distance and knee/cramp risk")
        _save(fig, target, fmt)
        return fig

    _draw_bars(ax, data)
    _draw_acwr(ax, ax2, data)
    _draw_markers(ax, ax2, data)
    _decorate(fig, ax, ax2, data)
    _save(fig, target, fmt)
    return fig


def chart_bytes(data: ChartData, fmt: str, canvas: Canvas | None = None) -> bytes:
    """The chart file's bytes: what :func:`draw_chart` writes to a path."""
    buffer = io.BytesIO()
    draw_chart(data, buffer, fmt, canvas)
    return buffer.getvalue()


def _save(fig: Figure, target: str | os.PathLike | BinaryIO, fmt: str) -> None:
    """Save (a PNG compressed at :data:`PNG_COMPRESS_LEVEL`), turning an unwritable path
    into an InputError naming it."""
    options = {"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}} if fmt == "png" else {}
    try:
        fig.savefig(target, format=fmt, **options)
    except OSError as err:
        raise InputError(f"cannot write the chart: {err.strerror or err}", path=str(target)
                         ) from err


def _day_text(day: np.datetime64) -> str:
    """'YYYY-MM-DD' of a datetime64 (as pandas formats a Timestamp)."""
    return day.astype("datetime64[D]").item().strftime("%Y-%m-%d")


def _draw_bars(ax, data: ChartData) -> None:
    """One bar per week with runs, left edge on Monday, coloured by the week's level.

    Each bar is a :class:`~matplotlib.patches.Rectangle` added as a plain artist: the
    rectangles ``ax.bar`` makes, without its per-bar data-limit bookkeeping (≈ 40 ms of
    ≈ 50 ms for a year of weeks), which nothing uses: both axes' limits are set explicitly,
    here and in :func:`_decorate`.
    """
    has = (data.week_runs > 0) & ~np.isnan(data.week_km)
    starts, km = data.week_start[has], data.week_km[has]
    levels = [lvl for lvl, keep in zip(data.week_level, has, strict=True) if keep]
    x = mdates.date2num(starts) + (WEEK_DAYS - BAR_WIDTH_DAYS) / 2
    for left, height, start, lvl in zip(x.tolist(), km.tolist(), starts, levels, strict=True):
        day = _day_text(start)
        ax.add_artist(Rectangle(
            (left, 0.0), BAR_WIDTH_DAYS, height, zorder=2,
            facecolor=LEVEL_COLOURS.get(lvl, NOT_ASSESSED_COLOUR), edgecolor="white",
            linewidth=0.5, gid=f"week-bar-{day}",
            label=f"_week {day} {lvl if isinstance(lvl, str) else 'n/a'}"))
    ax.set_ylabel("Distance per week [km]")
    highest = float(km.max()) if len(km) else float("nan")  # max(1.0, NaN) is 1.0
    ax.set_ylim(0, max(1.0, highest) * 1.25)
    ax.grid(axis="y", alpha=0.3, zorder=0)


def _draw_acwr(ax, ax2, data: ChartData) -> None:
    """ACWR at each week's last day on the secondary axis, above the bars; the 0.8–1.3 band
    sits behind the bars (on the bar axes, in ACWR units) so it tints nothing."""
    band = ax.fill_between([0, 1], ACWR_SWEET_LOW, ACWR_SWEET_HIGH, color=BAND_COLOUR,
                           alpha=0.2, linewidth=0, zorder=0,
                           transform=blended_transform_factory(ax.transAxes, ax2.transData),
                           label=f"ACWR {ACWR_SWEET_LOW}–{ACWR_SWEET_HIGH}: {ACWR_BAND_LABEL}")
    band.set_gid("acwr-band")
    x = mdates.date2num(data.week_start) + WEEK_DAYS - 0.5
    y = data.week_acwr
    (line,) = ax2.plot(x, y, color=ACWR_COLOUR, marker="o", markersize=3, linewidth=1.2,
                       alpha=0.85,
                       label="ACWR: 7-day / 28-day mean daily km, at the week's end", zorder=3)
    line.set_gid("acwr-line")
    top = np.nanmax(y) if np.isfinite(y).any() else ACWR_SWEET_HIGH
    ax2.set_ylim(0, max(2.0, float(top) * 1.15))
    ax2.yaxis.set_major_locator(MultipleLocator(ACWR_TICK_STEP))
    ax2.set_ylabel(f"ACWR [ratio]: {ACWR_LABEL}")
    if not np.isfinite(y).any():
        ax2.text(0.5, 0.97, ACWR_NOT_SHOWN,
                 transform=ax2.transAxes, ha="center", va="top", fontsize=8, color=ACWR_COLOUR)


def _draw_markers(ax, ax2, data: ChartData) -> None:
    """A marker above the week's bar on the day of each high-risk run, labelled with rules.

    Positioned in km (the bar axes' data coordinates) but drawn in the top (ACWR) axes so
    the ACWR line never covers a marker or its label. Each marker is a
    :class:`~matplotlib.lines.Line2D` added as a plain artist: the line ``ax2.plot`` makes,
    without its data-limit bookkeeping (the limits are set explicitly).
    """
    if len(data.marker_day) == 0:
        return
    for xi, yi, rid, rules in marker_positions(ax, data):
        ax2.add_artist(Line2D([xi], [yi], linestyle="none", marker="v", markersize=8,
                              color=MARKER_COLOUR, markeredgecolor="white", zorder=5,
                              label=f"_high {rid}", transform=ax.transData,
                              gid=f"high-risk-{rid}"))
        label_marker(ax, ax2, xi, yi, rules)


def marker_positions(ax, data: ChartData) -> list[tuple[float, float, str, str]]:
    """(x [date number], y [km], run id, rules) of each marker, stacked above its week's bar;
    raises the km axis so the top marker and its label fit."""
    ymax = ax.get_ylim()[1]
    gap = ymax * MARKER_GAP_FRAC
    y = data.marker_base_km + gap * (1 + data.marker_stack)
    x = mdates.date2num(data.marker_day) + 0.5
    ax.set_ylim(0, max(ymax, float(np.max(y)) + 3 * gap))
    return list(zip(x, y, data.marker_run_id, data.marker_rules, strict=True))


def label_marker(ax, ax2, x: float, y: float, rules: str) -> None:
    """The rules' label just above one marker."""
    ax2.annotate(rules, (x, y), xycoords=ax.transData, xytext=(0, 6),
                 textcoords="offset points", ha="center", va="bottom", fontsize=7.5,
                 color=MARKER_COLOUR, zorder=6,
                 bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                       "alpha": 0.8})


def _decorate(fig: Figure, ax, ax2, data: ChartData) -> None:
    """Date axis, legend below the plot, title with the period, disclaimer."""
    lo = mdates.date2num(data.week_start.min())
    hi = mdates.date2num(data.week_start.max()) + WEEK_DAYS
    ax.set_xlim(lo - 1, hi + 1)
    locator = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    ax.set_xlabel("Local weeks, Monday–Sunday (no bar = no runs that week)")
    handles = [Patch(color=LEVEL_COLOURS[k], label=f"week's highest knee/cramp level: {k}")
               for k in ("low", "moderate", "high")]
    ran = data.week_runs > 0
    if ran.any() and any(lvl is None for lvl, r in zip(data.week_level, ran, strict=True)
                         if r):
        handles.append(Patch(color=NOT_ASSESSED_COLOUR, label="runs not assessed"))
    handles.append(Line2D([], [], linestyle="none", marker="v", color=MARKER_COLOUR,
                          label="high-risk run (on its day), with the rule ids behind it"))
    handles += [h for h, lab in zip(*ax.get_legend_handles_labels(), strict=True)
                if lab.startswith("ACWR")]
    handles += ax2.get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
               ncols=3, frameon=False)
    fig.suptitle(f"Weekly running distance and knee/cramp risk, {data.title_period}\n"
                 f"{DISCLAIMER}", fontsize=11)


# --- the CLI's drawing helper -------------------------------------------------------------------

def serve(stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Answer one drawing request (see :mod:`runlog.chart_helper`); the exit status.

    The figure is prepared before the request arrives (matplotlib is loaded by then). The
    request is ``(module file, fmt, ChartData)``: a helper whose ``runlog.chart_draw`` is not
    the requesting process's file answers nothing (exit 3), so it never draws with other code.
    The answer is :data:`REPLY_OK` and the image on success; anything else means "draw it
    yourself". Whatever matplotlib prints goes to stderr, never into the answer.
    """
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    with contextlib.redirect_stdout(sys.stderr):
        canvas = new_canvas()
        try:
            expected_file, fmt, data = pickle.load(stdin)
        except EOFError:  # the CLI needed no drawing after all (an error, say)
            return 0
        if Path(expected_file).resolve() != Path(__file__).resolve():
            return 3
        image = chart_bytes(data, fmt, canvas)
    stdout.write(REPLY_OK)
    stdout.write(image)
    stdout.flush()
    return 0


def main() -> None:
    """The helper process: :func:`serve`, then exit at once.

    The answer is out by then: the interpreter's shutdown (≈ 0.1 s with matplotlib loaded),
    which the CLI would wait for, is skipped; the helper holds nothing to clean up.
    """
    gc.disable()  # short-lived: the collector would only re-scan matplotlib's objects
    status = serve()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
