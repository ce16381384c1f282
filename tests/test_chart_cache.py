"""`runlog chart` from the chart data cached with the assessment (runlog.chart_cache).

The cached path must give exactly what the pandas path gives (the same ChartData, so the same
file) for the default window and any --since/--until, and step aside (None) whenever it cannot
be sure. The write commands leave the cache filled for the next report and chart, and a
failure there never fails them.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from test_chart import PNG_MAGIC, SINCE, UNTIL  # the main year of the sample
from test_weekly import PAIN_DAY, sample_store_copy

import runlog
import runlog.chart_cache as chart_cache
from runlog.cached_report import runs_report_from_cache
from runlog.chart import chart_data_from_log
from runlog.chart_cache import CACHE_NAME, chart_data_from_cache, history_bytes
from runlog.chart_spec import ChartData
from runlog.cli import EXIT_OK, cli
from runlog.derived_cache import CACHE_DIR, DerivedCache

#: Windows (--since, --until) around the sample's weeks: the default, the main year, a
#: Sunday alone (PAIN_DAY), a Monday, bounds inside weeks keeping some of the high-risk runs
#: that follow PAIN_DAY (three in one week, one the next), and windows before, after and
#: reversed (no week).
WINDOWS: list[tuple[str | None, str | None]] = [
    (None, None), (SINCE, UNTIL), (PAIN_DAY, PAIN_DAY), ("2020-12-07", None),
    (None, PAIN_DAY), ("2020-12-02", "2020-12-09"), ("2020-12-16", "2021-01-13"),
    ("2030-01-01", None), (None, "2000-01-01"), ("2021-03-01", "2020-03-01"),
]


def copy_with_assessment(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A private copy of the sample store with the assessment (and chart data) cached."""
    root = sample_store_copy(tmp_path_factory, tmp_path)
    runlog.open_store(root).flags()
    return root


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    return copy_with_assessment(tmp_path_factory, tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cached copy for the tests that only read it."""
    return copy_with_assessment(tmp_path_factory, tmp_path_factory.mktemp("chart-cache"))


def assert_same(cached: ChartData, computed: ChartData) -> None:
    """Every field equal, arrays with the same dtype (so the same pickle and drawing)."""
    for name in ChartData.__dataclass_fields__:
        a, b = getattr(cached, name), getattr(computed, name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert a == b, name


def test_every_window_is_the_pandas_paths_data(shared: Path) -> None:
    log = runlog.open_store(shared)
    markers = cropped_markers = 0
    for since, until in WINDOWS:
        computed = chart_data_from_log(log, since=since, until=until)
        cached = chart_data_from_cache(shared, since, until)
        assert cached is not None, (since, until)
        assert_same(cached, computed)
        markers += len(computed.marker_day)
        full = chart_data_from_log(log, since="2000-01-01")
        if 0 < len(computed.marker_day) < len(full.marker_day):
            cropped_markers += 1
    # the windows exercise the high-risk markers, kept and cropped, and empty charts
    assert markers > 0 and cropped_markers > 0
    assert any(len(chart_data_from_cache(shared, s, u).week_start) == 0 for s, u in WINDOWS)


def test_the_cli_draws_it_without_pandas_byte_for_byte(shared: Path, tmp_path: Path) -> None:
    """The CLI's cached path (another process, pandas never loaded) against the pandas path
    in the same process afterwards: the same PNG, and the same SVG and PDF once their date
    and ids are made reproducible (SOURCE_DATE_EPOCH, svg.hashsalt)."""
    cases = [(fmt, since, until) for fmt in ("png", "svg", "pdf")
             for since, until in [(None, None), (SINCE, UNTIL)]] + [("png", PAIN_DAY, None)]
    (tmp_path / "matplotlibrc").write_text("svg.hashsalt: runlog-tests\n")
    code = f"""
import json, sys
from runlog.cli import cli
cases = json.loads({json.dumps(cases)!r})
for i, (fmt, since, until) in enumerate(cases):
    args = ["--store", {str(shared)!r}, "chart", "-o", f"cli{{i}}.{{fmt}}"]
    args += ["--since", since] if since else []
    args += ["--until", until] if until else []
    cli.main(args, standalone_mode=False)
assert "pandas" not in sys.modules, "pandas was loaded"
import runlog
from runlog.chart import chart_from_log
log = runlog.open_store({str(shared)!r})
for i, (fmt, since, until) in enumerate(cases):
    chart_from_log(log, f"pandas{{i}}.{{fmt}}", since=since, until=until)
"""
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1600000000"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    for i, (fmt, _, _) in enumerate(cases):
        cli_file = (tmp_path / f"cli{i}.{fmt}").read_bytes()
        assert cli_file == (tmp_path / f"pandas{i}.{fmt}").read_bytes(), cases[i]
    assert (tmp_path / "cli0.png").read_bytes().startswith(PNG_MAGIC)


def test_the_cached_path_starts_no_helper(shared: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With the chart data cached there is nothing to overlap: no drawing helper process."""
    import runlog.chart_helper as chart_helper

    def no_helper():
        raise AssertionError("a drawing helper was started")

    import runlog.cli as cli_module

    drawn = []
    draw_here = cli_module._draw_here
    monkeypatch.setattr(cli_module, "_draw_here", lambda *a: drawn.append(a) or draw_here(*a))
    monkeypatch.setattr(chart_helper, "worthwhile", lambda: True)
    monkeypatch.setattr(chart_helper.DrawingHelper, "start", staticmethod(no_helper))
    for name, args in (("c.svg", []), ("c.png", ["--since", "2020-11-30"])):  # drawn afresh
        result = CliRunner().invoke(cli, ["--store", str(shared), "chart", "-o",
                                          str(tmp_path / name), *args])
        assert result.exit_code == EXIT_OK, result.output
    assert len(drawn) == 2 and (tmp_path / "c.png").read_bytes().startswith(PNG_MAGIC)


def test_the_cli_does_not_scan_matplotlibs_objects_as_young(shared: Path,
                                                            tmp_path: Path) -> None:
    """Loaded while the collector is paused, matplotlib's ≈ 100,000 objects are moved to the
    oldest generation as the chart command ends: no collection then scans them as young
    objects (≈ 50 ms), before or after the collector resumes."""
    code = f"""
import gc, sys
scanned = []
def watch(phase, info):  # objects in the generations a collection is about to scan
    if phase == "start":
        scanned.append(sum(len(gc.get_objects(generation=g))
                           for g in range(info["generation"] + 1)))
gc.callbacks.append(watch)
from runlog.cli import cli
cli.main(["--store", {str(shared)!r}, "chart", "-o", "c.png", "--since", "2021-01-01"],
         standalone_mode=False)
assert "matplotlib" in sys.modules and gc.isenabled() and gc.get_freeze_count() == 0
young = [[] for _ in range(5000)]  # allocations: collections run again
print(max(scanned), len(scanned), len(gc.get_objects(generation=2)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    most, collections, old = map(int, out.stdout.splitlines()[-1].split())
    assert collections > 0 and old > 50_000
    assert most < 20_000  # without the ageing: one scan of ≈ 120,000


def test_no_cached_entry_steps_aside(tmp_path_factory: pytest.TempPathFactory,
                                     tmp_path: Path) -> None:
    root = sample_store_copy(tmp_path_factory, tmp_path)
    assert chart_data_from_cache(root) is None
    assert chart_data_from_cache(tmp_path / "no-store") is None


@pytest.mark.parametrize("bound", ["2020-6-1", "2020-06-01T00:00", "20200601", "2020-02-30",
                                   "0001-01-01", "June", " 2020-06-01"])
def test_bounds_other_than_a_plain_day_are_left_to_pandas(shared: Path, bound: str) -> None:
    assert chart_data_from_cache(shared, since=bound) is None
    assert chart_data_from_cache(shared, until=bound) is None


def _put(root: Path, payload: bytes) -> None:
    cache = DerivedCache(root)
    assert cache.put(CACHE_NAME, cache.key("assessment"), payload)


def _arrays(root: Path) -> dict[str, np.ndarray]:
    cache = DerivedCache(root)
    with np.load(io.BytesIO(cache.get(CACHE_NAME, cache.key("assessment")))) as npz:
        return {name: npz[name] for name in npz.files}


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("damage", [
    lambda a: b"not an npz at all",
    lambda a: _npz({**a, "version": np.array([chart_cache.ENTRY_VERSION + 1])}),
    lambda a: _npz({**a, "week_km": a["week_km"][1:]}),            # lengths disagree
    lambda a: _npz({**a, "week_level": a["week_level"] + 5}),      # unknown level codes
    lambda a: _npz({**a, "week_km": a["week_km"].astype(str)}),    # texts for numbers
    lambda a: _npz({k: v for k, v in a.items() if k != "marker_rules"}),
    lambda a: _npz({**a, "marker_rules": a["marker_rules"].astype(object)}),  # pickled
])
def test_a_damaged_or_other_entry_steps_aside(store: Path, damage) -> None:
    assert chart_data_from_cache(store) is not None
    _put(store, damage(_arrays(store)))
    assert chart_data_from_cache(store) is None


def test_a_store_of_another_schema_version_steps_aside(store: Path) -> None:
    payload = DerivedCache(store).get(CACHE_NAME, DerivedCache(store).key("assessment"))
    manifest = json.loads((store / "manifest.json").read_text())
    (store / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 99}))
    _put(store, payload)  # the entry under the new state's key
    assert chart_data_from_cache(store) is None


def test_a_changed_store_is_a_miss_until_recomputed(store: Path) -> None:
    runlog.open_store(store).annotate("last", knee_pain=8)
    assert chart_data_from_cache(store) is None
    log = runlog.open_store(store)
    assert log.cache_derived()
    assert_same(chart_data_from_cache(store), chart_data_from_log(log))


def test_the_pandas_path_writes_the_chart_data_when_only_the_assessment_was_cached(
        store: Path, tmp_path: Path) -> None:
    for entry in (store / CACHE_DIR).glob(f"*/{CACHE_NAME}-*"):
        entry.unlink()
    assert chart_data_from_cache(store) is None
    result = CliRunner().invoke(cli, ["--store", str(store), "chart", "-o",
                                      str(tmp_path / "c.svg")])
    assert result.exit_code == EXIT_OK, result.output
    assert_same(chart_data_from_cache(store), chart_data_from_log(runlog.open_store(store)))


def test_an_empty_store_gives_the_no_runs_chart_either_way(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    log = runlog.open_store(empty)
    log.set_profile(mass_kg=70)  # a manifest, no runs
    assert log.cache_derived()
    assert_same(chart_data_from_cache(empty), chart_data_from_log(log))


def test_the_entry_holds_every_week_and_round_trips(shared: Path) -> None:
    cache = DerivedCache(shared)
    history = chart_cache.history_from_bytes(cache.get(CACHE_NAME, cache.key("assessment")))
    every_week = chart_data_from_log(runlog.open_store(shared), since="1990-01-01")
    assert len(history.week_start) == len(every_week.week_start) > 52
    assert history.title_period == "" and len(history.marker_run_id) > 0
    assert_same(chart_cache.history_from_bytes(history_bytes(history)), history)


# --- the write commands leave the cache filled ---------------------------------------------

def _cached_for_reads(root: Path) -> bool:
    return (runs_report_from_cache(root) is not None
            and chart_data_from_cache(root) is not None)


def _invoke(store: Path, *args: str):
    return CliRunner().invoke(cli, ["--store", str(store), *args], catch_exceptions=False)


def test_annotate_and_profile_leave_the_assessment_cached(store: Path) -> None:
    result = _invoke(store, "annotate", "last", "--knee-pain", "6")
    assert result.exit_code == EXIT_OK and result.output.startswith("Run ")
    assert _cached_for_reads(store)
    log = runlog.open_store(store)
    assert_same(chart_data_from_cache(store), chart_data_from_log(log))
    assert runs_report_from_cache(store) == _invoke(store, "report", "--since",
                                                    "1990-01-01").output
    result = _invoke(store, "profile", "--mass-kg", "61", "--format", "json")
    assert result.exit_code == EXIT_OK and json.loads(result.output)["mass_kg"] == 61
    assert _cached_for_reads(store)


def test_showing_the_profile_computes_nothing(tmp_path_factory: pytest.TempPathFactory,
                                              tmp_path: Path) -> None:
    root = sample_store_copy(tmp_path_factory, tmp_path)
    assert _invoke(root, "profile").exit_code == EXIT_OK
    assert not list((root / CACHE_DIR).glob("*/*.bin"))


def test_store_refresh_and_weather_fetch_leave_it_cached(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runlog.schema import METRICS_VERSION

    log = runlog.open_store(store)
    first = log.store.runs()["run_id"].iloc[:1]
    with log.store.writer() as tx:  # one run as an older runlog left it: refresh redoes it
        tx.update_runs(pd.DataFrame({"run_id": first, "metrics_version": METRICS_VERSION - 1}))
    assert not _cached_for_reads(store)
    result = _invoke(store, "store", "refresh")
    assert result.exit_code == EXIT_OK and "Recomputed 1 runs." in result.output
    assert _cached_for_reads(store)

    def fetch_weather(self, since=None, until=None, **_):  # one run gets weather
        with self.store.writer() as tx:
            tx.update_runs(pd.DataFrame({"run_id": first, "weather_air_temp_c": [31.0]}))
        return pd.DataFrame({"run_id": first}), []

    monkeypatch.setattr(runlog.RunLog, "fetch_weather", fetch_weather)
    result = _invoke(store, "weather", "fetch")
    assert result.exit_code == EXIT_OK and "Weather for 1 runs" in result.output
    assert _cached_for_reads(store)


def test_a_failing_cache_step_never_fails_the_command(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self):
        raise RuntimeError("the assessment broke")

    monkeypatch.setattr(runlog.RunLog, "assessment", broken)
    result = _invoke(store, "annotate", "last", "--rpe", "4")
    assert result.exit_code == EXIT_OK and result.output.startswith("Run ")
    assert result.output.endswith("rpe=4\n")
    monkeypatch.undo()
    annotations = runlog.open_store(store).store.annotations()
    assert annotations["rpe"].dropna().tolist() == [4]
    assert not _cached_for_reads(store)  # left for the next read to compute


def test_help_of_the_write_commands_says_so() -> None:
    for args in (["annotate"], ["profile"], ["weather", "fetch"], ["store", "refresh"]):
        text = " ".join(CliRunner().invoke(cli, [*args, "--help"]).output.split())
        assert "recomputed and cached" in text and "never fails this command" in text, args
