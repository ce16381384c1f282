"""Concurrency, for real: several runlog processes on one store at the same time.

* Two imports of the same folder started together into one store (two CLI imports, or a CLI
  import against one committing every 2 files): each one either
  finishes (exit 0) or — only if the other held the write lock for longer than the writer's
  10 s wait — stops with exit 1 and the one line ``runlog: <store>: store is busy: ...``.
  Either way the final store equals a clean single import: the same run ids, each once, with
  the same distances and numbers of samples, and ``Store.check() == []``.
* ``runlog report --format json`` run again and again while an import commits batch after
  batch: every report exits 0, prints nothing on stderr, parses as JSON, and lists exactly
  the runs of the first *k* files of the import (for some *k*): a prefix of the final set,
  never a half-committed batch; later reports never lose runs an earlier one showed.

The folder holds 12 real files (10 GPX and 2 FIT runs of ``data/sample``).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_process import cli_command, cli_env

from runlog.importer import import_paths
from runlog.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
#: Importer with a commit every 2 files (many intermediate states for the reports to see).
SMALL_BATCH_IMPORT = (
    "import sys; from runlog.importer import import_paths; from runlog.store import Store; "
    "import_paths(Store(sys.argv[1]), [sys.argv[2]], batch_files=2)"
)


#: ``runlog report --format json`` again and again in one process (no interpreter start-up
#: per report, so the reports sample the import densely), one JSON line per report, until the
#: file argv[2] exists; then one last report.
REPORT_LOOP = """
import contextlib, io, json, os, sys, traceback
from runlog.cli import cli
def report():
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(["--store", sys.argv[1], "report", "--format", "json"],
                     prog_name="runlog", standalone_mode=False)
        except SystemExit as exit:
            code = exit.code or 0
        except BaseException:
            code, _ = 99, traceback.print_exc()
    print(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}),
          flush=True)
while not os.path.exists(sys.argv[2]):
    report()
report()
"""


def store_state(store: Store) -> pd.DataFrame:
    """run_id → distance_m and number of samples, sorted by run_id."""
    runs = store.runs()[["run_id", "distance_m"]]
    counts = store.samples().groupby("run_id").size().rename("n_samples")
    return runs.set_index("run_id").join(counts).fillna({"n_samples": 0}).sort_index()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = [*sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[:10],
             *sorted((SAMPLE / "fit").glob("*.fit"))[:2]]
    assert len(files) == 12
    target = tmp_path_factory.mktemp("concurrent-input")
    for path in files:
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="module")
def clean(folder: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[pd.DataFrame, list[list[str]]]:
    """A clean single import: its state, and the new run ids of each file in import order."""
    store = Store(tmp_path_factory.mktemp("clean") / "store")
    result = import_paths(store, [folder])
    assert result.counts()["failed"] == 0
    state = store_state(store)
    assert len(state) == 12
    return state, [list(o.run_ids) for o in result.outcomes]


@pytest.mark.parametrize("second", ["cli", "small-batches"])
def test_two_imports_at_once_end_like_one_clean_import(
        folder: Path, clean: tuple[pd.DataFrame, list[list[str]]], tmp_path: Path,
        second: str) -> None:
    """Two CLI imports; or a CLI import against one committing every 2 files (interleaved)."""
    store = tmp_path / "store"
    commands = [cli_command(store, "import", "-q", str(folder)),
                cli_command(store, "import", "-q", str(folder)) if second == "cli" else
                [sys.executable, "-c", SMALL_BATCH_IMPORT, str(store), str(folder)]]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=cli_env()) for command in commands]
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    for code, _out, err in results:
        if code == 0:
            assert "Traceback" not in err, err
            continue
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1, (code, err)
        assert lines[0].startswith(f"runlog: {store}: store is busy"), err
    assert any(code == 0 for code, _, _ in results), results
    assert Store(store).check() == []
    pd.testing.assert_frame_equal(store_state(Store(store)), clean[0])
    assert not Store(store).files()["sha256"].dropna().duplicated().any()


def test_reports_during_an_import_show_a_prefix_of_the_runs(
        folder: Path, clean: tuple[pd.DataFrame, list[list[str]]], tmp_path: Path) -> None:
    state, runs_per_file = clean
    prefixes = []
    so_far: set[str] = set()
    for ids in runs_per_file:
        so_far |= set(ids)
        prefixes.append(frozenset(so_far))
    allowed = {frozenset(), *prefixes}

    store = tmp_path / "store"
    stop = tmp_path / "stop"
    reporter = subprocess.Popen([sys.executable, "-c", REPORT_LOOP, str(store), str(stop)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=cli_env())
    time.sleep(1.0)                 # the reporter's imports; reports of the empty store begin
    importer = subprocess.Popen([sys.executable, "-c", SMALL_BATCH_IMPORT, str(store),
                                 str(folder)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=cli_env())
    code = importer.wait(timeout=120)
    assert code == 0, importer.stderr.read() if importer.stderr else ""
    stop.touch()
    out, err = reporter.communicate(timeout=120)
    assert reporter.returncode == 0 and err == "", err
    reports = [json.loads(line) for line in out.splitlines()]
    seen: list[frozenset[str]] = []
    for done in reports:
        assert done["code"] == 0 and done["stderr"] == "", done
        runs = json.loads(done["stdout"])["runs"]
        ids = frozenset(run["run_id"] for run in runs)
        assert len(ids) == len(runs), "a run listed twice"
        assert ids in allowed, f"not the runs of a prefix of the files: {sorted(ids)}"
        for run in runs:
            assert run["distance_km"] == pytest.approx(state.loc[run["run_id"],
                                                                 "distance_m"] / 1000, abs=5e-3)
        seen.append(ids)
    assert all(a <= b for a, b in itertools.pairwise(seen)), "a report lost runs"
    assert seen[-1] == frozenset(state.index), "the last report (after the import) is complete"
    print(f"{len(reports)} reports, {len(set(seen))} distinct states: "
          f"{[len(ids) for ids in seen]} runs")
    assert len(set(seen)) >= 3, "the reports did not see the import in progress"
    assert Store(store).check() == []
    pd.testing.assert_frame_equal(store_state(Store(store)), state)
