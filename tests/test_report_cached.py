"""`runlog report` answered from the cached assessment without pandas (runlog.cached_report).

It must print exactly what the pandas path prints, on real stores and on awkward ones (runs
starting at the same instant, stale runs, missing numbers, runs the cached levels lack), and
step aside (None) whenever it cannot be sure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from test_weekly import sample_store_copy

import runlog
import runlog.cached_report as cached_report
from runlog.cached_report import runs_report_from_cache
from runlog.cli import EXIT_OK, _report_text, cli
from runlog.derived_cache import CACHE_DIR, DerivedCache


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy of the sample store (real imported runs) without derived results."""
    return sample_store_copy(tmp_path_factory, tmp_path)


def pandas_text(root: Path) -> str:
    """What the pandas path prints for `runlog report` (from the same cached assessment)."""
    return _report_text(runlog.open_store(root), None, None, None, False, "table")


def cache_assessment(root: Path) -> None:
    runlog.open_store(root).flags()


def test_same_text_as_the_pandas_path_on_real_runs(store: Path) -> None:
    assert runs_report_from_cache(store) is None  # nothing cached yet
    cache_assessment(store)
    text = runs_report_from_cache(store)
    assert text is not None and text == pandas_text(store)
    assert "*" in text and "data-quality problems" in text  # the sample has some


def test_same_text_with_ties_stale_runs_and_missing_numbers(store: Path) -> None:
    log = runlog.open_store(store)
    runs = log.store.runs()
    ids = runs["run_id"].tolist()
    same_start = runs["start_utc"].iloc[5]
    change = pd.DataFrame({"run_id": ids[:40]})
    change["start_utc"] = [same_start] * 30 + runs["start_utc"].iloc[30:40].tolist()
    change["tz_offset_min"] = pd.array([None, -330, 345, 0] * 10, dtype="Int64")
    change["metrics_version"] = pd.array([1, None, 2, 2] * 10, dtype="Int64")
    change["moving_s"] = [np.nan, 0.0, 59.5, 3599.6] * 10
    change["distance_m"] = [0.0, np.nan, -5.0, 12.0] * 10
    change["avg_hr_bpm"] = [np.nan, 141.5, 142.5, -0.4] * 10
    change["quality_issues"] = pd.array([None, "", "gps_jump", None] * 10, dtype="str")
    with log.store.writer() as tx:
        tx.update_runs(change)
    cache_assessment(store)
    text = runs_report_from_cache(store)
    assert text is not None and text == pandas_text(store)
    assert "were computed by an older runlog" in text


def test_runs_the_cached_levels_lack_show_dashes_as_in_pandas(store: Path) -> None:
    log = runlog.open_store(store)
    levels, _ = log.assessment()
    cache = DerivedCache(store)
    key = cache.key("assessment")
    assert cache.put_frame("assessment-levels", key, levels.iloc[3:].reset_index(drop=True))
    text = runs_report_from_cache(store)
    assert text is not None and text == pandas_text(store)


def test_a_store_without_runs_steps_aside(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    runlog.open_store(empty).set_profile(mass_kg=70)  # a manifest, no runs table
    cache_assessment(empty)
    assert list((empty / CACHE_DIR).glob("*/assessment-levels-*"))
    assert runs_report_from_cache(empty) is None


def _rewrite_runs(root: Path, change) -> None:
    """Rewrite the runs table file in place (the store's state, so its key, changes)."""
    name = json.loads((root / "manifest.json").read_text())["tables"]["runs"]
    table = pq.read_table(root / name)
    pq.write_table(change(table), root / name)


@pytest.mark.parametrize("change", [
    # a float offset (an older layout): pandas would round fractional minutes
    lambda t: t.set_column(t.schema.get_field_index("tz_offset_min"), "tz_offset_min",
                           t.column("tz_offset_min").cast(pa.float64())),
    # numbers stored as text
    lambda t: t.set_column(t.schema.get_field_index("moving_s"), "moving_s",
                           t.column("moving_s").cast(pa.string())),
    # a runs column named like a level: the runs' own value would be shown
    lambda t: t.append_column("knee_risk", pa.array(["low"] * t.num_rows)),
])
def test_unusual_runs_tables_step_aside(store: Path, change) -> None:
    _rewrite_runs(store, change)
    cache_assessment(store)
    assert runs_report_from_cache(store) is None


def test_integer_numbers_and_missing_columns_print_as_pandas_reads_them(store: Path) -> None:
    def change(table: pa.Table) -> pa.Table:
        table = table.drop_columns(["temp_c", "quality_issues", "metrics_version"])
        i = table.schema.get_field_index("ascent_m")
        return table.set_column(i, "ascent_m", pa.array(
            [None if v is None else round(v) for v in table.column("ascent_m").to_pylist()],
            type=pa.int64()))

    _rewrite_runs(store, change)
    cache_assessment(store)
    text = runs_report_from_cache(store)
    assert text is not None and text == pandas_text(store)


def test_a_store_changing_while_read_steps_aside(store: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cache_assessment(store)
    real_key = DerivedCache.key
    calls: list[int] = []

    def key(self, *question, **kwargs):
        calls.append(1)
        return real_key(self, *question, **kwargs) if len(calls) == 1 else "changed"

    monkeypatch.setattr(cached_report.DerivedCache, "key", key)
    assert runs_report_from_cache(store) is None and len(calls) == 2


def test_a_damaged_runs_file_steps_aside_and_the_cli_names_it(store: Path) -> None:
    cache_assessment(store)
    name = json.loads((store / "manifest.json").read_text())["tables"]["runs"]
    size = (store / name).stat().st_size
    (store / name).write_bytes(b"\0" * size)  # same size; the mtime changes the key
    assert runs_report_from_cache(store) is None
    result = CliRunner().invoke(cli, ["--store", str(store), "report"])
    assert result.exit_code != EXIT_OK and name in result.output


def test_cli_report_uses_it_without_loading_pandas(store: Path) -> None:
    assert CliRunner().invoke(cli, ["--store", str(store), "report", "--format",
                                    "json"]).exit_code == EXIT_OK
    want = pandas_text(store)
    assert not list((store / CACHE_DIR).glob("*/report-*"))[1:]  # the JSON one only
    code = ("import sys\n"
            "from runlog.cli import cli\n"
            f"cli.main(['--store', {str(store)!r}, 'report'], standalone_mode=False)\n"
            "assert 'pandas' not in sys.modules, 'pandas was loaded'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout == want


def test_the_pandas_free_path_names_real_columns(store: Path) -> None:
    """Its copies of column names (runlog.risk and runlog.store need pandas) stay true, and
    it knows the manifests the store writes (and only those)."""
    from runlog.derived_cache import MANIFEST, current_manifest
    from runlog.risk import LEVEL_COLUMNS
    from runlog.store import RUN_DTYPES

    assert set(cached_report.LEVEL_COLUMNS) <= set(LEVEL_COLUMNS)
    assert set(cached_report.NUMBER_COLUMNS) | set(cached_report.TEXT_COLUMNS) <= set(RUN_DTYPES)
    manifest = current_manifest(store)
    assert manifest is not None and manifest["tables"]["runs"]
    (store / MANIFEST).write_text(json.dumps({**manifest, "format": "someone-else"}))
    assert current_manifest(store) is None
