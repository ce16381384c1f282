"""The derived-results cache on real imported stores: never stale, never in the way.

The cached assessment (and the cached CLI outputs) must equal a fresh computation, dtypes
included; every change of the store (annotation, profile, import, rebuild) and of runlog's
code gives a new key; damaged entries, an unwritable cache and concurrent readers are
harmless; the store's own check, garbage collection and rebuild ignore it; git ignores it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import runlog
import runlog.derived_cache as dc
import runlog.risk
from runlog.cli import cli
from runlog.derived_cache import CACHE_DIR, DerivedCache
from runlog.risk import assess

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SESSION = sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))
LANDAL_FIT = SAMPLE / "fit" / "geo-activity-playground-Laufen_Landal_Park.fit"
#: Report variants whose cached output must equal the fresh one.
REPORTS = [("report",), ("report", "--format", "json"), ("report", "--weeks"),
           ("report", "--weeks", "--format", "json"), ("report", "--format", "csv"),
           ("report", "--run", "last"), ("report", "--since", "2020-07-01")]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 10 real GPX runs, knee pain logged on the fifth (no derived cache yet)."""
    root = tmp_path_factory.mktemp("derived") / "store"
    log = runlog.open_store(root)
    assert log.import_paths([str(p) for p in SESSION[:10]], jobs=1).counts()["failed"] == 0
    log.annotate(log.store.runs()["run_id"].iloc[4], knee_pain=6)
    shutil.rmtree(root / CACHE_DIR, ignore_errors=True)
    return root


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "store"
    shutil.copytree(template, root)
    return root


def fresh(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The assessment computed from the store, no cache involved."""
    s = runlog.open_store(root).store
    return assess(s.runs(), s.annotations(), s.profile(), s.cadence_bins())


def assert_same_assessment(got: tuple[pd.DataFrame, pd.DataFrame],
                           want: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    pd.testing.assert_frame_equal(got[0], want[0], check_dtype=True, check_exact=True)
    pd.testing.assert_frame_equal(got[1], want[1], check_dtype=True, check_exact=True)


def entries(root: Path) -> list[Path]:
    return sorted((root / CACHE_DIR).glob("*/*.bin"))


def refuse_to_assess(*_args, **_kwargs):
    """Stands in for risk.assess where a result must come from the cache."""
    raise AssertionError("assessment recomputed although it was cached")


def cli_out(root: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--store", str(root), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


# --- the assessment ------------------------------------------------------------------------

def test_cached_assessment_equals_a_fresh_one(store: Path, monkeypatch) -> None:
    first = runlog.open_store(store).assessment()
    names = {p.name.rsplit("-", 1)[0] for p in entries(store)}
    assert names == {"assessment-levels", "assessment-flags", "chart-history"}
    monkeypatch.setattr(runlog.risk, "assess", refuse_to_assess)
    cached = runlog.open_store(store).assessment()
    monkeypatch.undo()
    want = fresh(store)
    assert_same_assessment(cached, want)
    assert_same_assessment(first, want)
    assert (cached[0]["knee_risk"] != "low").any()  # a real assessment, not an empty one
    runs = runlog.open_store(store).runs()
    assert runs["knee_risk"].tolist() == want[0].set_index("run_id").loc[
        runs["run_id"], "knee_risk"].tolist()


@pytest.mark.parametrize("change", ["annotate", "profile", "import", "update_runs"])
def test_every_commit_gives_a_new_key_and_a_fresh_assessment(store: Path, change: str) -> None:
    log = runlog.open_store(store)
    before = log.assessment()
    key = log.derived.key("assessment")
    generation = log.store.generation()
    if change == "annotate":
        log.annotate("last", air_temp_c=34.0, humidity_pct=70.0)  # a hot run now
    elif change == "profile":
        log.set_profile(knee_injury_history=True, mass_kg=95, height_cm=170)
    elif change == "import":
        assert log.import_paths([str(SESSION[10])], jobs=1).new_run_ids
    else:
        with log.store.writer() as tx:
            tx.update_runs(log.store.runs()[["run_id"]].assign(temp_c=33.0))
    assert log.store.generation() == generation + 1
    assert log.derived.key("assessment") != key
    again = runlog.open_store(store).assessment()  # a new process's view: from disk
    assert_same_assessment(again, fresh(store))
    assert_same_assessment(log.assessment(), fresh(store))
    assert not (again[0].equals(before[0]) and again[1].equals(before[1]))


def test_an_import_that_adds_no_run_keeps_the_cached_assessment(store: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    """An import that only records files (here a file that fails) commits a new store
    state without touching what the assessment reads: the cached assessment and chart data
    move on to the new state, in this RunLog and for the next process, and equal a fresh
    computation. The next report answers without assessing."""
    log = runlog.open_store(store)
    log.assessment()
    key, generation = log.derived.key("assessment"), log.store.generation()
    broken = tmp_path / "broken.fit"
    broken.write_bytes(b"\x0e\x10" + b"\x00" * 40)
    result = log.import_paths([str(broken)], jobs=1)
    assert result.counts()["failed"] == 1 and not result.new_run_ids
    assert log.store.generation() == generation + 1
    new_key = log.derived.key("assessment")
    assert new_key != key
    assert {p.name.rsplit("-", 1)[0] for p in entries(store)} == {
        "assessment-levels", "assessment-flags", "chart-history"}
    assert all(new_key.split("-")[1][:dc.NAME_DIGITS] in p.name for p in entries(store))
    monkeypatch.setattr(runlog.risk, "assess", refuse_to_assess)
    assert_same_assessment(log.assessment(), fresh(store))
    assert_same_assessment(runlog.open_store(store).assessment(), fresh(store))
    from_cache = cli_out(store, "report")
    monkeypatch.undo()
    DerivedCache(store).clear()
    assert from_cache == cli_out(store, "report")


def test_inputs_state_follows_what_the_assessment_reads(store: Path) -> None:
    """The fingerprint of the assessment's inputs changes with the runs, annotations and
    profile, not with the files table."""
    log = runlog.open_store(store)
    seen = [dc.inputs_state(store)]
    with log.store.writer() as tx:
        tx.record_files(pd.DataFrame({"path": ["x.fit"], "sha256": ["h"], "outcome": ["failed"],
                                      "reason": ["test"]}))
    assert dc.inputs_state(store) == seen[-1]
    log.annotate("last", rpe=7)
    seen.append(dc.inputs_state(store))
    log.set_profile(mass_kg=70)
    seen.append(dc.inputs_state(store))
    with log.store.writer() as tx:
        tx.update_runs(log.store.runs()[["run_id"]].assign(temp_c=12.0))
    seen.append(dc.inputs_state(store))
    assert None not in seen and len(set(seen)) == 4


def test_other_code_or_libraries_miss(store: Path, monkeypatch) -> None:
    runlog.open_store(store).assessment()
    cache = DerivedCache(store)
    key = cache.key("assessment")
    assert cache.get_frame("assessment-levels", key) is not None
    monkeypatch.setattr(dc, "code_fingerprint", lambda: "an edited runlog")
    assert cache.key("assessment") != key
    monkeypatch.undo()
    monkeypatch.setattr(dc, "library_fingerprint", lambda names: "another pandas")
    assert cache.key("assessment") != key


def test_code_fingerprint_follows_the_sources(tmp_path: Path) -> None:
    copy = tmp_path / "runlog"
    shutil.copytree(Path(dc.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = dc.sources_fingerprint(copy)
    os.utime(copy / "risk.py", ns=(1, 1))  # touched, not changed: same code
    assert dc.sources_fingerprint(copy) == before
    with open(copy / "rules" / "thresholds.py", "a") as fh:
        fh.write("\nSCORE_HIGH = 7\n")
    assert dc.sources_fingerprint(copy) != before


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty", "not arrow",
                                    "parquet", "wrong dtypes"])
def test_damaged_entries_are_ignored_and_recomputed(store: Path, damage: str) -> None:
    runlog.open_store(store).assessment()
    cache = DerivedCache(store)
    key = cache.key("assessment")
    for path in entries(store):
        data = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif damage == "flip":
            path.write_bytes(data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:])
        elif damage == "garbage":
            path.write_bytes(os.urandom(len(data)))
        elif damage == "empty":
            path.write_bytes(b"")
    if damage == "not arrow":  # a whole, well-formed entry whose payload is no Arrow file
        cache.put("assessment-levels", key, b"ARROW1 not really")
    elif damage == "parquet":  # the right frame in another format (an older runlog's)
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(fresh(store)[0], preserve_index=True), buffer)
        cache.put("assessment-levels", key, buffer.getvalue())
    elif damage == "wrong dtypes":  # a frame whose dtypes differ from those recorded
        levels, _ = fresh(store)
        table = pa.Table.from_pandas(levels.astype({"knee_score": "str"}), preserve_index=True)
        recorded = json.dumps([[str(c), str(t)] for c, t in levels.dtypes.items()])
        table = table.replace_schema_metadata({**table.schema.metadata,
                                               b"runlog_dtypes": recorded.encode()})
        buffer = io.BytesIO()
        with pa.ipc.new_file(buffer, table.schema) as writer:  # as put_frame writes frames
            writer.write_table(table)
        cache.put("assessment-levels", key, buffer.getvalue())
    assert cache.get_frame("assessment-levels", key) is None
    assert_same_assessment(runlog.open_store(store).assessment(), fresh(store))
    assert cache.get_frame("assessment-levels", key) is not None  # rewritten


def test_a_damaged_store_is_not_hidden_by_the_cache(store: Path) -> None:
    cli_out(store, "report")
    manifest = json.loads((store / "manifest.json").read_text())
    runs_file = store / manifest["tables"]["runs"]
    runs_file.write_bytes(runs_file.read_bytes()[:100])
    result = CliRunner().invoke(cli, ["--store", str(store), "report"])
    assert result.exit_code == 1 and result.output.startswith("runlog: ")
    runs_file.unlink()
    result = CliRunner().invoke(cli, ["--store", str(store), "report"])
    assert result.exit_code == 1 and result.output.startswith("runlog: ")


def test_an_unwritable_cache_still_reports(store: Path) -> None:
    (store / "cache").write_text("a file where the cache folder would go")
    assert_same_assessment(runlog.open_store(store).assessment(), fresh(store))
    want = cli_out(store, "report")
    assert "knee" in want and cli_out(store, "report") == want
    assert (store / "cache").is_file()


def test_a_refused_write_leaves_nothing_behind(store: Path, monkeypatch) -> None:
    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(dc.os, "replace", refuse)  # as on a read-only or full disk
    want = fresh(store)
    assert_same_assessment(runlog.open_store(store).assessment(), want)
    report = cli_out(store, "report")
    assert "knee" in report and cli_out(store, "report") == report
    assert not entries(store) and not list((store / CACHE_DIR).rglob("*.tmp"))


def test_a_store_without_a_manifest_writes_nothing(tmp_path: Path) -> None:
    log = runlog.open_store(tmp_path / "none")
    levels, flags = log.assessment()
    assert levels.empty and flags.empty
    assert log.derived.key("assessment") is None
    assert not (tmp_path / "none").exists()


# --- the CLI outputs ------------------------------------------------------------------------

@pytest.mark.parametrize("args", REPORTS, ids=" ".join)
def test_cached_report_output_equals_a_fresh_one(store: Path, args: tuple[str, ...],
                                                 monkeypatch) -> None:
    first = cli_out(store, *args)
    assert {p.name.split("-")[0] for p in entries(store)} >= {"assessment", "report"}
    monkeypatch.setattr(runlog.risk, "assess", refuse_to_assess)
    assert cli_out(store, *args) == first  # served from the cache
    monkeypatch.undo()
    DerivedCache(store).clear()
    assert cli_out(store, *args) == first


def test_report_after_an_annotation_is_recomputed(store: Path) -> None:
    before = cli_out(store, "report", "--format", "json")
    cli_out(store, "annotate", "last", "--air-temp-c", "34", "--humidity-pct", "70")
    after = cli_out(store, "report", "--format", "json")
    assert after != before
    DerivedCache(store).clear()
    assert cli_out(store, "report", "--format", "json") == after
    last = json.loads(after)["runs"][-1]
    assert any(f["rule"] == "heat" for f in last["flags"])


def test_cached_png_chart_is_the_same_file_and_svg_is_always_drawn(store: Path,
                                                                   tmp_path: Path) -> None:
    first, second, svg = tmp_path / "a.png", tmp_path / "b.PNG", tmp_path / "c.svg"
    cli_out(store, "chart", "-o", str(first))
    assert any(p.name.startswith("chart-") for p in entries(store))
    cli_out(store, "chart", "-o", str(second))
    assert first.read_bytes() == second.read_bytes()
    DerivedCache(store).clear()
    cli_out(store, "chart", "-o", str(second))
    assert first.read_bytes() == second.read_bytes()
    cli_out(store, "chart", "-o", str(svg))
    assert not any(p.name.startswith("chart-") and "svg" in p.name for p in entries(store))
    bad = CliRunner().invoke(cli, ["--store", str(store), "chart", "-o",
                                   str(tmp_path / "missing" / "x.png")])
    assert bad.exit_code == 2 and "cannot write the chart" in bad.output


def test_chart_environment_covers_matplotlibrc(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = dc.chart_environment()
    (tmp_path / "matplotlibrc").write_text("lines.linewidth: 3\n")
    assert dc.chart_environment() != before


def test_two_report_processes_at_once(store: Path) -> None:
    expected = cli_out(store, "report", "--format", "json")
    DerivedCache(store).clear()
    cmd = [sys.executable, "-m", "runlog.cli", "--store", str(store), "report", "--format",
           "json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              cwd=REPO) for _ in range(3)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and err == b""
        assert out.decode() == expected
    assert cli_out(store, "report", "--format", "json") == expected
    assert not list((store / CACHE_DIR).rglob("*.tmp"))


# --- the store and git leave it alone ----------------------------------------------------------

def test_store_check_and_gc_leave_the_cache_alone_and_rebuild_recomputes_it(store: Path) -> None:
    cli_out(store, "report")
    assert "Store is consistent." in cli_out(store, "store", "check")
    state_folders = {p.name for p in (store / CACHE_DIR).iterdir() if p.is_dir()}
    cli_out(store, "annotate", "last", "--rpe", "4")  # a commit: garbage collection runs
    cli_out(store, "report")
    now = {p.name for p in (store / CACHE_DIR).iterdir() if p.is_dir()}
    assert len(now) == 1 and now != state_folders  # the old state's folder was removed
    assert "Store is consistent." in cli_out(store, "store", "check")
    before = entries(store)
    rebuilt = cli_out(store, "store", "rebuild")
    assert "Store is consistent." in rebuilt
    # cleared, then computed afresh for the next read: the assessment and the chart's data
    # in one new folder; the old report's text is gone
    after = entries(store)
    assert len({p.parent for p in after}) == 1 and not set(after) & set(before)
    names = sorted(p.name.rsplit("-", 1)[0] for p in after)
    assert names == ["assessment-flags", "assessment-levels", "chart-history"]
    assert cli_out(store, "report") == cli_out(store, "report")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_ignores_the_cache(store: Path) -> None:
    cli_out(store, "report")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", str(store)], check=True, env=env)
    listed = subprocess.run(["git", "-C", str(store), "status", "--porcelain",
                             "--untracked-files=all"], check=True, capture_output=True,
                            text=True, env=env).stdout
    assert "manifest.json" in listed and "cache/derived" not in listed
    assert (store / CACHE_DIR / "CACHEDIR.TAG").read_text().startswith(
        "Signature: 8a477f597d28d172789f06886806bc55")


def test_a_frame_that_cannot_be_encoded_is_a_miss_not_an_error(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyarrow without the frames' codec: nothing is cached and the command still answers."""
    monkeypatch.setattr(dc, "FRAME_COMPRESSION", "no-such-codec")
    cache = DerivedCache(store)
    key = cache.key("assessment")
    levels, _ = fresh(store)
    assert cache.put_frame("assessment-levels", key, levels) is False
    assert cache.get_frame("assessment-levels", key) is None
    assert_same_assessment(runlog.open_store(store).assessment(), fresh(store))
    assert not [p for p in entries(store) if p.name.startswith("assessment-")]
