"""The chart drawn from plain data, in this process or in the CLI's helper process.

The helper must answer with exactly the bytes this process would draw, never draw with other
code, and every failure must fall back to drawing here (same file, same exit code).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_chart import PNG_MAGIC, SINCE, UNTIL  # the main year of the sample
from test_weekly import sample_log

import runlog
import runlog.chart_helper as chart_helper
from runlog.chart import chart_data, chart_data_from_log, default_period, render_chart
from runlog.chart_draw import chart_bytes
from runlog.chart_spec import WEEK_DAYS, ChartData
from runlog.cli import EXIT_ERROR, EXIT_OK, cli
from runlog.derived_cache import CACHE_DIR
from runlog.weekly import WEEK_DAYS as WEEKLY_WEEK_DAYS
from runlog.weekly import weekly_table


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> runlog.RunLog:
    return sample_log(tmp_path_factory)


@pytest.fixture(scope="module")
def data(log: runlog.RunLog) -> ChartData:
    return chart_data_from_log(log, since=SINCE, until=UNTIL)


def _imported_by(code: str) -> set[str]:
    """Top-level modules a fresh interpreter has loaded after ``code``."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\n"
                          "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_drawing_needs_no_pandas_and_the_helper_client_nothing_but_the_stdlib() -> None:
    drawing = _imported_by("import runlog.chart_draw, runlog.rules.thresholds")
    assert "matplotlib" in drawing and "pandas" not in drawing
    client = _imported_by("import runlog.chart_helper, runlog.chart_spec")
    assert not {"pandas", "numpy", "matplotlib", "pyarrow"} & client


def test_week_days_agree() -> None:
    assert WEEK_DAYS == WEEKLY_WEEK_DAYS


def test_chart_data_is_what_the_weekly_table_says(log: runlog.RunLog, data: ChartData) -> None:
    runs, flags = log.runs(), log.flags()
    weeks = weekly_table(runs, flags, since=SINCE, until=UNTIL)
    assert data.week_start.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(data.week_start, weeks["week_start"].to_numpy())
    np.testing.assert_array_equal(data.week_km, weeks["distance_km"].to_numpy())
    assert list(data.week_level) == [None if lvl != lvl else lvl
                                     for lvl in weeks["risk_level"].astype(object)]
    # markers: the high-risk runs of the weeks shown, by day, stacked within their week
    assert len(data.marker_run_id) == len(data.marker_day) == len(data.marker_stack) > 0
    assert np.all(np.diff(data.marker_day.astype("int64")) >= 0)
    high = set(runs.loc[(runs["knee_risk"] == "high") | (runs["cramp_risk"] == "high"),
                        "run_id"])
    assert set(data.marker_run_id) <= high
    assert data.title_period == default_period(weeks)


def test_empty_weeks_give_empty_data_and_the_no_runs_chart(tmp_path: Path) -> None:
    nothing = runlog.open_store(tmp_path / "none")
    runs, flags = nothing.runs(), nothing.flags()
    empty = chart_data(weekly_table(runs, flags), runs, flags)
    assert len(empty.week_start) == 0 and len(empty.marker_day) == 0
    assert empty.title_period == ""
    assert chart_bytes(empty, "png").startswith(PNG_MAGIC)


def _drawn_in_a_fresh_process(data: ChartData, folder: Path, quick: bool) -> dict:
    """PNG and SVG of ``data`` drawn by a new interpreter that loads matplotlib plainly or
    by ``load_matplotlib``; and what that process's matplotlib then holds."""
    folder.mkdir()
    (folder / "data.pickle").write_bytes(pickle.dumps(data))
    (folder / "matplotlibrc").write_text("svg.hashsalt: runlog-tests\n")  # reproducible ids
    code = f"""
import json, pickle
if {quick!r}:
    from runlog.chart_helper import load_matplotlib
    load_matplotlib()
import matplotlib.artist, matplotlib.lines
from runlog.chart_draw import chart_bytes
data = pickle.loads(open("data.pickle", "rb").read())
open("c.png", "wb").write(chart_bytes(data, "png"))
open("c.svg", "wb").write(chart_bytes(data, "svg"))
import inspect
kwdoc = matplotlib.artist.kwdoc
document = matplotlib.artist.Artist.__dict__["_update_set_signature_and_docstring"].__func__
line = matplotlib.lines.Line2D([0], [0])
line.set(lw=3, color="red", linestyle="--")  # aliases and properties as ever
json.dump({{"kwdoc": kwdoc.__module__ + "." + kwdoc.__qualname__,
           "document": document.__module__ + "." + document.__qualname__,
           "line_set_doc": matplotlib.lines.Line2D.set.__doc__,
           "line_set_signature": str(inspect.signature(matplotlib.lines.Line2D.set)),
           "own_set": matplotlib.lines.Line2D.set is not matplotlib.artist.Artist.set,
           "line": [line.get_linewidth(), line.get_color(), line.get_linestyle()]}},
          open("seen.json", "w"))
"""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1600000000"}
    subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True)
    return {"png": (folder / "c.png").read_bytes(), "svg": (folder / "c.svg").read_bytes(),
            **json.loads((folder / "seen.json").read_text())}


def test_load_matplotlib_skips_the_property_docs_and_draws_the_same(
        data: ChartData, tmp_path: Path) -> None:
    plain = _drawn_in_a_fresh_process(data, tmp_path / "plain", quick=False)
    quick = _drawn_in_a_fresh_process(data, tmp_path / "quick", quick=True)
    assert quick["png"] == plain["png"] and quick["png"].startswith(PNG_MAGIC)
    assert quick["svg"] == plain["svg"] and b"high-risk-" in quick["svg"]
    # the saving: Line2D.set's docstring and signature do not list every property (a
    # matplotlib without what load_matplotlib replaces fails here: its import is then a
    # plain one, ≈ 0.2 s slower)
    assert "linestyle" in plain["line_set_doc"] and "linestyle" in plain["line_set_signature"]
    assert chart_helper.SHORT_KWDOC in quick["line_set_doc"]
    assert "linestyle" not in quick["line_set_doc"]
    assert quick["line_set_signature"] == "(self, **kwargs)"
    # the same artists otherwise, and matplotlib's own functions put back
    assert quick["own_set"] and plain["own_set"]
    assert quick["line"] == plain["line"] == [3.0, "red", "--"]
    assert quick["kwdoc"] == plain["kwdoc"] == "matplotlib.artist.kwdoc"
    assert quick["document"] == plain["document"] == (
        "matplotlib.artist.Artist._update_set_signature_and_docstring")


def test_load_matplotlib_once_loaded_changes_nothing() -> None:
    import matplotlib.artist
    import matplotlib.lines

    artist = matplotlib.artist.Artist
    kwdoc, doc = matplotlib.artist.kwdoc, matplotlib.lines.Line2D.set.__doc__
    document = artist.__dict__["_update_set_signature_and_docstring"]
    chart_helper.load_matplotlib()
    assert matplotlib.artist.kwdoc is kwdoc
    assert artist.__dict__["_update_set_signature_and_docstring"] is document
    assert matplotlib.lines.Line2D.set.__doc__ == doc and "linestyle" in doc


def test_helper_draws_the_same_bytes_as_this_process(data: ChartData) -> None:
    helper = chart_helper.DrawingHelper.start()
    assert helper is not None
    assert helper.send(data, "png")
    assert helper.result() == chart_bytes(data, "png")
    assert helper.process.returncode == 0


def test_helper_with_other_code_does_not_draw(data: ChartData,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chart_helper, "DRAW_FILE", Path(chart_helper.__file__))
    helper = chart_helper.DrawingHelper.start()
    assert helper.draw(data, "png") is None
    assert helper.process.returncode == 3


@pytest.mark.parametrize("code", [
    "import sys; sys.exit(1)",                                   # dies
    "import sys; sys.stdout.buffer.write(b'garbage'); sys.exit(0)",  # answers nonsense
    "import sys; sys.stdin.close()",                             # leaves before the request
])
def test_a_failing_helper_answers_none(data: ChartData, monkeypatch: pytest.MonkeyPatch,
                                       code: str) -> None:
    monkeypatch.setattr(chart_helper, "HELPER_CODE", code)
    helper = chart_helper.DrawingHelper.start()
    assert helper.draw(data, "png") is None
    assert helper.process.poll() is not None  # ended, not left behind


def test_helper_messages_reach_stderr_with_its_drawing(data: ChartData,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capfd: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(chart_helper, "HELPER_CODE", (
        "import sys; sys.stdin.buffer.read(); sys.stderr.write('font cache built\\n'); "
        f"sys.stdout.buffer.write({chart_helper.REPLY_OK!r} + b'image')"))
    assert chart_helper.DrawingHelper.start().draw(data, "png") == b"image"
    assert "font cache built" in capfd.readouterr().err


def test_close_ends_a_helper_that_got_nothing() -> None:
    helper = chart_helper.DrawingHelper.start()
    helper.close()
    assert helper.process.poll() is not None


def test_worthwhile_only_before_matplotlib_with_a_second_core(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib  # noqa: F401  (loaded here: this process draws itself)

    monkeypatch.setattr(chart_helper, "usable_cores", lambda: 4)
    assert not chart_helper.worthwhile()
    monkeypatch.delitem(sys.modules, "matplotlib")
    assert chart_helper.worthwhile()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert not chart_helper.worthwhile()
    monkeypatch.delattr(sys, "frozen")
    monkeypatch.setattr(chart_helper, "usable_cores", lambda: 1)
    assert not chart_helper.worthwhile()
    assert chart_helper.usable_cores() >= 1


@pytest.fixture
def store(log: runlog.RunLog, tmp_path: Path) -> Path:
    """A copy of the sample store without derived results: the CLI must draw."""
    root = tmp_path / "store"
    shutil.copytree(log.root, root, ignore=shutil.ignore_patterns("cache"))
    return root


def _cli_chart(store: Path, out: Path, *args: str):
    return CliRunner().invoke(cli, ["--store", str(store), "chart", "-o", str(out), *args],
                              catch_exceptions=False)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_cli_uses_the_helpers_drawing(log: runlog.RunLog, store: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, suffix: str) -> None:
    expected = tmp_path / f"expected{suffix}"
    render_chart(*_cli_inputs(log), expected)
    monkeypatch.setattr(chart_helper, "worthwhile", lambda: True)

    def not_here(*_args, **_kwargs):
        raise AssertionError("drawn in this process although the helper answered")

    monkeypatch.setattr("runlog.chart_draw.chart_bytes", not_here)
    out = tmp_path / f"c{suffix}"
    result = _cli_chart(store, out, "--since", SINCE, "--until", UNTIL)
    assert result.exit_code == EXIT_OK, result.output
    assert (store / CACHE_DIR).is_dir()  # the assessment was cached meanwhile
    if suffix == ".png":
        assert out.read_bytes() == expected.read_bytes()
    else:  # SVG: ids and date differ between drawings; the drawn elements do not
        assert out.read_text().count("week-bar-") == expected.read_text().count("week-bar-")


def _cli_inputs(log: runlog.RunLog):
    runs, flags = log.runs(), log.flags()
    return weekly_table(runs, flags, since=SINCE, until=UNTIL), runs, flags


def test_cli_falls_back_when_the_helper_fails(log: runlog.RunLog, store: Path,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    expected = tmp_path / "expected.png"
    render_chart(*_cli_inputs(log), expected)
    monkeypatch.setattr(chart_helper, "worthwhile", lambda: True)
    monkeypatch.setattr(chart_helper, "HELPER_CODE", "import sys; sys.exit(1)")
    out = tmp_path / "c.png"
    result = _cli_chart(store, out, "--since", SINCE, "--until", UNTIL)
    assert result.exit_code == EXIT_OK, result.output
    assert out.read_bytes() == expected.read_bytes()


def test_cli_ends_the_helper_when_the_chart_cannot_be_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[chart_helper.DrawingHelper] = []
    real_start = chart_helper.DrawingHelper.start

    def start():
        started.append(real_start())
        return started[-1]

    monkeypatch.setattr(chart_helper, "worthwhile", lambda: True)
    monkeypatch.setattr(chart_helper.DrawingHelper, "start", staticmethod(start))
    damaged = tmp_path / "s"
    damaged.mkdir()
    (damaged / "manifest.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["--store", str(damaged), "chart", "-o",
                                      str(tmp_path / "c.png")])
    assert result.exit_code == EXIT_ERROR
    assert result.output.startswith("runlog: ") and "manifest" in result.output
    assert len(started) == 1 and started[0].process.poll() is not None
    assert not (tmp_path / "c.png").exists()


def test_serve_answers_one_request_in_process(data: ChartData) -> None:
    import io
    import pickle

    import runlog.chart_draw as chart_draw

    request = pickle.dumps((chart_draw.__file__, "png", data))
    answer = io.BytesIO()
    stdout = sys.stdout
    assert chart_draw.serve(io.BytesIO(request), answer) == 0
    assert sys.stdout is stdout  # restored
    assert answer.getvalue() == chart_helper.REPLY_OK + chart_bytes(data, "png")
    assert chart_draw.serve(io.BytesIO(b""), io.BytesIO()) == 0  # nothing asked
    other = pickle.dumps((chart_helper.__file__, "png", data))
    silent = io.BytesIO()
    assert chart_draw.serve(io.BytesIO(other), silent) == 3 and silent.getvalue() == b""
