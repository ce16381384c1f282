"""Weekly risk chart rendered from the imported bundled sample: valid PNG/SVG/PDF files, and the
plotted data read back through the figure object (bar heights, colours, gaps, markers, ACWR)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from test_weekly import sample_log

import runlog
from runlog.chart import (
    ACWR_BAND_LABEL,
    ACWR_LABEL,
    ACWR_NOT_SHOWN,
    ACWR_TICK_STEP,
    BAR_WIDTH_DAYS,
    LEVEL_COLOURS,
    MARKER_COLOUR,
    NOT_ASSESSED_COLOUR,
    PNG_COMPRESS_LEVEL,
    chart_data,
    chart_from_log,
    check_format,
    high_risk_runs,
    render_chart,
)
from runlog.errors import InputError
from runlog.rules.thresholds import ACWR_SWEET_HIGH, ACWR_SWEET_LOW
from runlog.weekly import weekly_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: The main year of the sample (one runner's GPX runs).
SINCE, UNTIL = "2020-06-29", "2021-07-04"


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> runlog.RunLog:
    return sample_log(tmp_path_factory)


@pytest.fixture(scope="module")
def data(log: runlog.RunLog) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    runs, flags = log.runs(), log.flags()
    return weekly_table(runs, flags, since=SINCE, until=UNTIL), runs, flags


@pytest.fixture(scope="module")
def png(data, tmp_path_factory: pytest.TempPathFactory):
    weeks, runs, flags = data
    path = tmp_path_factory.mktemp("chart") / "weekly.png"
    fig = render_chart(weeks, runs, flags, path)
    return fig, path


def _by_gid(fig, prefix: str) -> dict[str, object]:
    return {a.get_gid(): a for a in fig.findobj(lambda a: str(a.get_gid() or "")
                                                .startswith(prefix))}


def test_png_file_is_valid(png) -> None:
    _, path = png
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 20_000


def test_png_holds_the_drawn_image_compressed_fast(png) -> None:
    from PIL import Image

    fig, path = png
    data = path.read_bytes()
    chunks, at = {}, len(PNG_MAGIC)
    while at < len(data):  # length, type, data, CRC
        size = int.from_bytes(data[at:at + 4], "big")
        kind = data[at + 4:at + 8]
        chunks[kind] = chunks.get(kind, b"") + data[at + 8:at + 8 + size]
        at += 12 + size
    # zlib's header names the level class: 0x01 for levels 0-1 (Pillow's default 6: 0x9c)
    assert PNG_COMPRESS_LEVEL == 1 and chunks[b"IDAT"][:2] == b"\x78\x01"
    with Image.open(path) as image:
        np.testing.assert_array_equal(np.asarray(image), np.asarray(fig.canvas.buffer_rgba()))


def test_bar_heights_are_weekly_distances_and_empty_weeks_have_no_bar(png, data) -> None:
    fig, _ = png
    weeks = data[0]
    bars = _by_gid(fig, "week-bar-")
    full = weeks[weeks["runs"] > 0]
    assert len(bars) == len(full) > 40
    for _, row in full.iterrows():
        bar = bars[f"week-bar-{row['week_start']:%Y-%m-%d}"]
        assert bar.get_height() == pytest.approx(row["distance_km"])
        # The bar sits inside its Monday–Sunday week.
        monday = mdates.date2num(row["week_start"])
        assert monday <= bar.get_x() < bar.get_x() + bar.get_width() <= monday + 7
        assert mcolors.to_hex(bar.get_facecolor()) == LEVEL_COLOURS[row["risk_level"]]
    for _, row in weeks[weeks["runs"] == 0].iterrows():
        assert f"week-bar-{row['week_start']:%Y-%m-%d}" not in bars
    # A known real week: 28 Dec 2020 – 3 Jan 2021, two runs, 18.2 km.
    assert bars["week-bar-2020-12-28"].get_height() == pytest.approx(18.24, abs=0.01)


def test_high_risk_markers_on_their_days_with_rule_ids(png, data) -> None:
    fig, _ = png
    weeks, runs, flags = data
    markers = _by_gid(fig, "high-risk-")
    high = runs[(runs["knee_risk"] == "high") | (runs["cramp_risk"] == "high")]
    high = high[(high["start_local"] >= SINCE) & (high["start_local"] < "2021-07-05")]
    assert len(high) >= 3                       # runs after the logged knee pain (fixture)
    assert set(markers) == {f"high-risk-{r}" for r in high["run_id"]}
    for _, run in high.iterrows():
        x = markers[f"high-risk-{run['run_id']}"].get_xdata()[0]
        day = run["start_local"].normalize()
        assert x == pytest.approx(mdates.date2num(day) + 0.5)
        # Above its week's bar.
        monday = day - pd.Timedelta(days=day.day_of_week)
        week_km = weeks.set_index("week_start").loc[monday, "distance_km"]
        assert markers[f"high-risk-{run['run_id']}"].get_ydata()[0] > week_km
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert sum("knee_pain_recent" in t for t in texts) == len(high)
    table = high_risk_runs(runs, flags)
    assert set(table["run_id"]) >= set(high["run_id"])


def test_bars_look_as_axes_bar_draws_them(data, monkeypatch: pytest.MonkeyPatch) -> None:
    """The week bars are plain Rectangles (no autoscaling bookkeeping): the same pixels as
    the rectangles of ``ax.bar`` with the same colours, edges and order."""
    import runlog.chart_draw as chart_draw

    weeks, runs, flags = data
    chart = chart_data(weeks, runs, flags)
    assert (chart.week_runs == 0).any() and len(chart.marker_day) > 0  # gaps and markers
    drawn = chart_draw.chart_bytes(chart, "png")

    def with_axes_bar(ax, d) -> None:
        has = (d.week_runs > 0) & ~np.isnan(d.week_km)
        colours = [LEVEL_COLOURS.get(lvl, NOT_ASSESSED_COLOUR)
                   for lvl, keep in zip(d.week_level, has, strict=True) if keep]
        ax.bar(mdates.date2num(d.week_start[has]) + (7 - BAR_WIDTH_DAYS) / 2, d.week_km[has],
               width=BAR_WIDTH_DAYS, align="edge", color=colours, edgecolor="white",
               linewidth=0.5, zorder=2)
        ax.set_ylabel("Distance per week [km]")
        ax.set_ylim(0, max(1.0, float(d.week_km[has].max())) * 1.25)
        ax.grid(axis="y", alpha=0.3, zorder=0)

    monkeypatch.setattr(chart_draw, "_draw_bars", with_axes_bar)
    assert chart_draw.chart_bytes(chart, "png") == drawn


def test_markers_look_as_axes_plot_draws_them(data, monkeypatch: pytest.MonkeyPatch) -> None:
    """The high-risk markers are plain Line2D artists: the same pixels as ``ax2.plot``'s
    lines with the same style, labels and transform."""
    import runlog.chart_draw as chart_draw

    chart = chart_data(*data)
    assert len(chart.marker_day) >= 3 and chart.marker_stack.max() > 0  # stacked markers
    drawn = chart_draw.chart_bytes(chart, "png")

    def with_axes_plot(ax, ax2, d) -> None:
        for xi, yi, rid, rules in chart_draw.marker_positions(ax, d):
            ax2.plot([xi], [yi], linestyle="none", marker="v", markersize=8,
                     color=MARKER_COLOUR, markeredgecolor="white", zorder=5,
                     label=f"_high {rid}", transform=ax.transData)
            chart_draw.label_marker(ax, ax2, xi, yi, rules)

    monkeypatch.setattr(chart_draw, "_draw_markers", with_axes_plot)
    assert chart_draw.chart_bytes(chart, "png") == drawn


def test_acwr_line_and_band(png, data) -> None:
    fig, _ = png
    weeks = data[0]
    line = _by_gid(fig, "acwr-line")["acwr-line"]
    assert line.axes is fig.axes[1]
    np.testing.assert_allclose(line.get_ydata(), weeks["acwr"].to_numpy(), equal_nan=True)
    # Plotted at each week's Sunday (noon).
    np.testing.assert_allclose(line.get_xdata(), mdates.date2num(weeks["week_start"]) + 6.5)
    band = _by_gid(fig, "acwr-band")["acwr-band"]
    # RULES.md §9: the 0.8–1.3 "sweet spot" is a team-sport range, not a target for runners
    assert band.get_label() == f"ACWR 0.8–1.3: {ACWR_BAND_LABEL}"
    assert ACWR_BAND_LABEL == "team sports (Gabbett 2016), unproven in runners: not a target"
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(ACWR_SWEET_LOW) and ys.max() == pytest.approx(ACWR_SWEET_HIGH)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("unproven in runners: not a target" in t for t in labels)
    assert not any("sweet spot" in t or "target zone" in t for t in labels)
    assert fig.axes[1].get_ylabel() == f"ACWR [ratio]: {ACWR_LABEL}"
    assert ACWR_LABEL == "training trend, not an injury predictor"
    assert not any(t.get_text().startswith("ACWR not shown") for t in fig.axes[1].texts)
    assert any("high-risk run" in t for t in labels)
    assert "ACWR [ratio]" in fig.axes[1].get_ylabel()
    # ACWR ticks every 0.5 from 0 to the top of the axis (≥ 2)
    top = fig.axes[1].get_ylim()[1]
    shown = [t for t in fig.axes[1].get_yticks() if 0 <= t <= top]
    np.testing.assert_allclose(shown, np.arange(len(shown)) * ACWR_TICK_STEP)
    assert ACWR_TICK_STEP == 0.5 and shown[-1] > top - ACWR_TICK_STEP and top >= 2
    assert "[km]" in fig.axes[0].get_ylabel()


def test_acwr_note_is_true_when_the_history_is_long_but_the_runner_was_away(
        log: runlog.RunLog, tmp_path: Path) -> None:
    """The sample's last run comes after ten months off: its week has no ACWR although the
    history is years long — the note must not say 'under 28 days of history' alone."""
    runs, flags = log.runs(), log.flags()
    weeks = weekly_table(runs, flags, since="2022-05-23")
    assert len(weeks) == 1 and np.isnan(weeks["acwr"]).all()
    first = runs["start_local"].min()
    assert weeks["week_start"].iloc[0] - first > pd.Timedelta(days=365)   # not a short history
    fig = render_chart(weeks, runs, flags, tmp_path / "away.png")
    notes = [t.get_text() for t in fig.axes[1].texts if t.get_text().startswith("ACWR")]
    assert notes == [ACWR_NOT_SHOWN]
    assert "under 28 days of history" in ACWR_NOT_SHOWN
    assert "no running in the 3 weeks before the last 7 days" in ACWR_NOT_SHOWN


def test_title_has_the_period(png) -> None:
    fig, _ = png
    title = fig.get_suptitle()
    assert "29 Jun 2020 – 4 Jul 2021" in title
    assert "Not medical advice" in title


def test_svg_is_xml_with_the_bar_ids(data, tmp_path: Path) -> None:
    weeks, runs, flags = data
    path = tmp_path / "weekly.svg"
    render_chart(weeks, runs, flags, path, title_period="my year")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    ids = {el.get("id") for el in root.iter()}
    assert "week-bar-2020-12-28" in ids and "acwr-line" in ids
    assert "week-bar-2021-01-04" not in ids    # an empty week: no bar
    assert "my year" in path.read_text(encoding="utf-8")


def test_pdf_and_case_insensitive_suffix(data, tmp_path: Path) -> None:
    weeks, runs, flags = data
    path = tmp_path / "weekly.PDF"
    render_chart(weeks, runs, flags, path)
    assert path.read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("name", ["chart.jpg", "chart", "chart.png.txt"])
def test_unknown_suffix_is_an_input_error(data, tmp_path: Path, name: str) -> None:
    weeks, runs, flags = data
    with pytest.raises(InputError) as err:
        render_chart(weeks, runs, flags, tmp_path / name)
    suffix = Path(name).suffix or "(none)"
    assert repr(suffix) in str(err.value)
    assert not (tmp_path / name).exists()
    with pytest.raises(InputError):
        check_format(name)


def test_chart_from_log_defaults_to_the_last_52_weeks(log: runlog.RunLog,
                                                      tmp_path: Path) -> None:
    fig = chart_from_log(log, tmp_path / "c.png")
    last_run = log.runs()["start_local"].max()
    # 52 weeks: Monday 31 May 2021 to the Sunday of the last run's week.
    assert "31 May 2021 – 29 May 2022" in fig.get_suptitle()
    bars = _by_gid(fig, "week-bar-")
    assert f"week-bar-{last_run - pd.Timedelta(days=last_run.day_of_week):%Y-%m-%d}" in bars
    assert min(bars) == "week-bar-2021-05-31" and len(bars) == 6


def test_empty_log_draws_a_message(tmp_path: Path) -> None:
    weeks = weekly_table(pd.DataFrame(columns=["run_id", "start_utc", "tz_offset_min",
                                               "distance_m"]), pd.DataFrame())
    fig = render_chart(weeks, pd.DataFrame(), pd.DataFrame(), tmp_path / "e.png")
    assert (tmp_path / "e.png").read_bytes()[:8] == PNG_MAGIC
    assert any("No runs" in t.get_text() for t in fig.axes[0].texts)


def test_sunday_night_marker_stays_in_its_week(log: runlog.RunLog, tmp_path: Path) -> None:
    """A high-risk run on Sunday 23:30 local (21:30Z, UTC+2): marker on that Sunday."""
    runs = log.runs().iloc[[20, 21]].copy()
    runs["start_utc"] = pd.to_datetime(["2024-05-08T07:00:00Z", "2024-05-12T21:30:00Z"])
    runs["tz_offset_min"] = 120
    runs["start_local"] = runs["start_utc"].dt.tz_localize(None) + pd.Timedelta(hours=2)
    runs["knee_risk"] = ["low", "high"]
    weeks = weekly_table(runs, pd.DataFrame())
    assert len(weeks) == 1
    fig = render_chart(weeks, runs, pd.DataFrame(), tmp_path / "s.png")
    (marker,) = _by_gid(fig, "high-risk-").values()
    assert mdates.num2date(marker.get_xdata()[0]).date() == dt.date(2024, 5, 12)


def test_unwritable_path_is_an_input_error(data, tmp_path: Path) -> None:
    weeks, runs, flags = data
    with pytest.raises(InputError, match="cannot write the chart") as err:
        render_chart(weeks, runs, flags, tmp_path / "no-such-folder" / "c.png")
    assert "no-such-folder" in err.value.one_line()
