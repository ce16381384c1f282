"""The command line: help everywhere, exact exit codes, one-line errors, JSON fields."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from cli_process import cli_command, cli_env, run_cli
from click.testing import CliRunner

from runlog.chart_cache import chart_data_from_cache
from runlog.cli import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, cli
from runlog.report import FLAG_JSON_FIELDS, RUN_JSON_FIELDS
from runlog.rules import REGISTRY

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
LANDAL_FIT = SAMPLE / "fit" / "geo-activity-playground-Laufen_Landal_Park.fit"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, store: Path, *args: str):
    return runner.invoke(cli, ["--store", str(store), *args], catch_exceptions=False)


def test_every_command_has_help(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.output and "Not medical advice" in result.output
    for name in cli.commands:
        sub = runner.invoke(cli, [name, "--help"])
        assert sub.exit_code == 0, name
        assert "Usage:" in sub.output and len(sub.output.splitlines()) > 3, name


def test_store_defaults_to_environment_variable(runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "env-store"
    result = runner.invoke(cli, ["import", str(LANDAL_FIT)], env={"RUNLOG_STORE": str(store)})
    assert result.exit_code == EXIT_OK, result.output
    assert (store / "manifest.json").exists()


def test_import_prints_one_line_per_file_summary_and_table(runner: CliRunner,
                                                           tmp_path: Path) -> None:
    result = invoke(runner, tmp_path / "s", "import", str(LANDAL_FIT))
    assert result.exit_code == EXIT_OK, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("new       ") and lines[0].endswith(": 1 run")
    assert any(line.startswith("1 file: 1 new (1 run), 0 duplicate, 0 skipped, 0 failed")
               for line in lines)
    assert "2022-05-29 17:53" in result.output  # local time (UTC+2), not UTC
    assert "3.32" in result.output
    again = invoke(runner, tmp_path / "s", "import", str(LANDAL_FIT))
    assert again.exit_code == EXIT_OK
    assert again.output.splitlines()[0].startswith("duplicate ")
    from runlog.store import Store

    run_id = Store(tmp_path / "s").runs()["run_id"].item()
    assert again.output.splitlines()[0].endswith(f"(run {run_id})")  # the run it matched
    assert "0 new (0 runs), 1 duplicate" in again.output


def test_import_with_a_failed_file_exits_3_and_names_it(runner: CliRunner,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(LANDAL_FIT, folder / "good.fit")
    (folder / "broken.fit").write_bytes(b"\x0e\x10garbage-not-a-fit-file")
    result = invoke(runner, tmp_path / "s", "import", str(folder))
    assert result.exit_code == EXIT_SOME_FAILED
    failed = [line for line in result.output.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and "broken.fit: " in failed[0]
    assert "Traceback" not in result.output
    assert "1 new (1 run)," in result.output


def test_import_json_has_documented_fields(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, tmp_path / "s", "import", "--format", "json", str(LANDAL_FIT))
    assert result.exit_code == EXIT_OK
    payload = json.loads(result.output)
    assert set(payload) == {"files", "ignored", "summary", "runs"}
    assert set(payload["files"][0]) == {"path", "format", "outcome", "reason", "run_ids",
                                        "matched_run_id", "byte_offset"}
    assert payload["summary"]["new_runs"] == 1
    (run,) = payload["runs"]
    assert set(run) == set(RUN_JSON_FIELDS)
    assert run["start_local"] == "2022-05-29T17:53:35+02:00"
    assert run["distance_km"] == pytest.approx(3.323, abs=0.03)
    for flag in run["flags"]:
        assert set(flag) == set(FLAG_JSON_FIELDS)
        assert flag["grade"] == REGISTRY[flag["rule"]].grade != ""


def test_report_json_and_explain_one_run(runner: CliRunner, tmp_path: Path) -> None:
    invoke(runner, tmp_path / "s", "import", "--quiet", str(LANDAL_FIT))
    result = invoke(runner, tmp_path / "s", "report", "--format", "json")
    runs = json.loads(result.output)["runs"]
    assert len(runs) == 1 and runs[0]["knee_risk"] in ("low", "moderate", "high")
    one = invoke(runner, tmp_path / "s", "report", "--run", "last")
    assert one.exit_code == EXIT_OK
    assert runs[0]["run_id"] in one.output
    assert "not medical advice" in one.output.lower()
    full = json.loads(invoke(runner, tmp_path / "s", "report", "--run", "last",
                             "--format", "json").output)
    for part in ("flags", "info", "all_flags"):
        assert all(f["grade"] == REGISTRY[f["rule"]].grade for f in full[part]), part
    assert {f["rule"] for f in full["all_flags"]} == set(REGISTRY)


def test_unknown_run_is_one_line_error_exit_1(runner: CliRunner, tmp_path: Path) -> None:
    invoke(runner, tmp_path / "s", "import", "--quiet", str(LANDAL_FIT))
    result = runner.invoke(cli, ["--store", str(tmp_path / "s"), "annotate", "zzzz",
                                 "--knee-pain", "3"])
    assert result.exit_code == EXIT_ERROR
    assert result.output.count("\n") == 1 and result.output.startswith("runlog: ")


def test_usage_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    bad_range = runner.invoke(cli, ["--store", str(tmp_path), "annotate", "last",
                                    "--knee-pain", "11"])
    assert bad_range.exit_code == EXIT_USAGE
    bad_tz = runner.invoke(cli, ["--store", str(tmp_path), "profile", "--default-tz", "Mars/Base"])
    assert bad_tz.exit_code == EXIT_USAGE and "unknown time zone" in bad_tz.output
    missing = runner.invoke(cli, ["--store", str(tmp_path), "import", str(tmp_path / "nope")])
    assert missing.exit_code == EXIT_USAGE


def test_top_level_mistakes_are_one_line_and_bare_groups_show_their_help(
        runner: CliRunner) -> None:
    for args, named in ((["--bogus"], "--bogus"), (["--store"], "--store"),
                        (["bogus"], "bogus"), (["store", "--bogus"], "--bogus")):
        result = runner.invoke(cli, args)
        assert result.exit_code == EXIT_USAGE, args
        assert result.output.count("\n") == 1 and result.output.startswith("runlog: "), args
        assert named in result.output and "--help`)" in result.output, args
    bare = runner.invoke(cli, ["store"])  # click's help for a group given no command
    assert bare.exit_code == EXIT_USAGE and " store [OPTIONS] COMMAND" in bare.output
    assert "\n  check " in bare.output and "runlog: " not in bare.output

def test_annotate_and_profile_round_trip(runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s"
    invoke(runner, store, "import", "--quiet", str(LANDAL_FIT))
    result = invoke(runner, store, "annotate", "last", "--knee-pain", "4", "--no-electrolytes",
                    "--shoes", "Pegasus", "--format", "json")
    assert result.exit_code == EXIT_OK, result.output
    data = json.loads(result.output)
    assert data["knee_pain"] == 4 and data["electrolytes"] is False and data["shoes"] == "Pegasus"
    # Annotations survive a re-import of the same file.
    invoke(runner, store, "import", "--quiet", str(LANDAL_FIT))
    again = invoke(runner, store, "annotate", "last", "--rpe", "6", "--format", "json")
    assert json.loads(again.output)["knee_pain"] == 4
    prof = invoke(runner, store, "profile", "--mass-kg", "70", "--default-tz", "Europe/Berlin",
                  "--format", "json")
    assert json.loads(prof.output)["mass_kg"] == 70
    shown = invoke(runner, store, "profile")
    assert "default_tz: Europe/Berlin" in shown.output


def test_profile_clear_forgets_a_value_and_hr_max_goes_back_to_the_estimate(
        runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s"
    invoke(runner, store, "import", "--quiet", str(LANDAL_FIT))

    def sources() -> set[str]:
        runs = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"]
        return {r["hr_max_source"] for r in runs}

    invoke(runner, store, "profile", "--hr-max-bpm", "185", "--mass-kg", "70")
    assert sources() == {"profile"}
    cleared = json.loads(invoke(runner, store, "profile", "--clear", "hr-max-bpm",
                                "--format", "json").output)
    assert cleared == {"mass_kg": 70}
    assert sources() == {"history_30s"}
    both = runner.invoke(cli, ["--store", str(store), "profile", "--clear", "mass-kg",
                               "--mass-kg", "60"])
    assert both.exit_code == EXIT_USAGE and "--mass-kg is both set and cleared" in both.output
    assert json.loads(invoke(runner, store, "profile", "--format", "json").output) == {
        "mass_kg": 70}


def test_weeks_chart_and_export_commands(runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s"
    session = sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[:6]
    invoke(runner, store, "import", "--quiet", *map(str, session))
    weeks = invoke(runner, store, "report", "--weeks", "--format", "json")
    assert weeks.exit_code == EXIT_OK
    rows = json.loads(weeks.output)["weeks"]
    runs = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"]
    assert sum(r["runs"] for r in rows) == len(runs) == 6
    assert sum(r["distance_km"] or 0 for r in rows) == pytest.approx(
        sum(r["distance_km"] for r in runs), abs=0.01)
    png = tmp_path / "chart.png"
    result = invoke(runner, store, "chart", "-o", str(png), "--since", "2020-01-01")
    assert result.exit_code == EXIT_OK and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(cli, ["--store", str(store), "chart", "-o", str(tmp_path / "c.bmp")])
    assert bad.exit_code == EXIT_USAGE and ".bmp" in bad.output
    csv_out = invoke(runner, store, "export", "--what", "runs")
    assert csv_out.output.splitlines()[0].startswith("run_id,start_local,start_utc")
    assert len(csv_out.output.splitlines()) == 7


def _three_sample_files(tmp_path: Path) -> Path:
    """The folder ``tmp_path/in`` holding copies of three GPX runs of data/sample."""
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[:3]:
        shutil.copy(f, folder)
    return folder


def _three_sample_runs(runner: CliRunner, tmp_path: Path) -> tuple[Path, Path]:
    """(store, folder): three GPX runs of data/sample copied to a folder and imported."""
    store = tmp_path / "s"
    folder = _three_sample_files(tmp_path)
    invoke(runner, store, "import", "--quiet", str(folder))
    return store, folder


def test_store_check_detects_damage_and_rebuild_repairs_keeping_annotations(
        runner: CliRunner, tmp_path: Path) -> None:
    store, _folder = _three_sample_runs(runner, tmp_path)
    invoke(runner, store, "annotate", "last", "--knee-pain", "2", "--cramp")
    assert invoke(runner, store, "store", "check").output.strip() == "Store is consistent."
    manifest = json.loads((store / "manifest.json").read_text())
    runs_file = store / manifest["tables"]["runs"]
    runs_file.write_bytes(runs_file.read_bytes()[:100])  # a table damaged by hand
    check = runner.invoke(cli, ["--store", str(store), "store", "check"])
    assert check.exit_code == EXIT_ERROR and "rebuild" in check.output
    report = runner.invoke(cli, ["--store", str(store), "report"])
    assert report.exit_code == EXIT_ERROR and report.output.startswith("runlog: ")
    rebuilt = invoke(runner, store, "store", "rebuild")
    assert rebuilt.exit_code == EXIT_OK, rebuilt.output
    assert "Re-imported 3 runs" in rebuilt.output
    # ... and it computed the assessment and the chart's data for the next read
    assert chart_data_from_cache(store) is not None
    runs = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"]
    assert len(runs) == 3
    note = json.loads(invoke(runner, store, "annotate", "last", "--rpe", "5",
                             "--format", "json").output)
    assert note["knee_pain"] == 2 and note["cramp"] is True


def test_report_run_shows_every_flags_message_under_its_numbers(runner: CliRunner,
                                                                tmp_path: Path) -> None:
    store, _folder = _three_sample_runs(runner, tmp_path)
    info = json.loads(invoke(runner, store, "report", "--run", "last", "--format",
                             "json").output)
    text = invoke(runner, store, "report", "--run", "last").output.splitlines()
    assert info["flags"]
    for flag in info["flags"]:
        at = next(i for i, line in enumerate(text)
                  if line.startswith(f"  {flag['rule']} [{flag['risk']}] level "))
        assert flag["message"] and text[at + 1] == f"      {flag['message']}"


def _lose_samples(store: Path) -> None:
    """Damage by hand: every samples part gone, so a rebuild removes every run."""
    for part in store.glob("samples-*.parquet"):
        part.unlink()


def test_rebuild_from_another_folder_finds_the_originals_or_names_the_missing_ones(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths typed relative are stored absolute, so a rebuild run anywhere finds them; when
    they have moved, it says which, exits 1 and says to give their folder (no loop)."""
    folder = _three_sample_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "s"
    invoke(runner, store, "import", "--quiet", "in")
    invoke(runner, store, "annotate", "last", "--knee-pain", "2")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = invoke(runner, store, "import", "../in").output.splitlines()[:3]
    assert all(": already imported: unchanged since the last import (run " in line
               for line in again), again
    _lose_samples(store)
    rebuilt = invoke(runner, store, "store", "rebuild")
    assert rebuilt.exit_code == EXIT_OK and "Re-imported 3 runs" in rebuilt.output, \
        rebuilt.output
    _lose_samples(store)
    folder.rename(tmp_path / "moved")
    lost = invoke(runner, store, "store", "rebuild")
    assert lost.exit_code == EXIT_ERROR, lost.output
    assert f"3 original files of removed runs not found, so their runs are not back: {folder}" \
        in lost.output
    assert lost.output.splitlines()[-1].endswith("runlog store rebuild PATH...")
    check = invoke(runner, store, "store", "check")  # no loop back to a plain rebuild
    assert check.exit_code == EXIT_ERROR and "runlog store rebuild PATH..." in check.output
    back = invoke(runner, store, "store", "rebuild", "../moved")
    assert back.exit_code == EXIT_OK and "Re-imported 3 runs" in back.output, back.output
    assert json.loads(invoke(runner, store, "annotate", "last", "--rpe", "5",
                             "--format", "json").output)["knee_pain"] == 2


def test_a_store_with_relative_paths_re_imports_safely_and_rebuild_names_them(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store written before paths were stored absolute: the same files are recognised by
    content (no second run), and a rebuild elsewhere names them instead of saying nothing."""
    import dataclasses

    import runlog
    from runlog.sources import SourceFile, discover

    _three_sample_files(tmp_path)  # in/
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "s"
    as_typed = [dataclasses.replace(s, display=os.path.relpath(s.display))
                for s in discover(["in"]) if isinstance(s, SourceFile)]
    runlog.open_store(store).import_sources(as_typed)  # what an older runlog stored
    again = invoke(runner, store, "import", "in")
    assert again.exit_code == EXIT_OK and "0 new (0 runs), 3 duplicate" in again.output
    assert len(runlog.open_store(store).store.runs()) == 3
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    _lose_samples(store)
    lost = invoke(runner, store, "store", "rebuild")
    assert lost.exit_code == EXIT_ERROR
    assert "3 original files of removed runs not found" in lost.output
    assert "relative paths are from the folder an older runlog imported in" in lost.output


def test_a_chart_with_no_runs_in_its_window_is_written_and_says_why(
        runner: CliRunner, tmp_path: Path) -> None:
    store, _folder = _three_sample_runs(runner, tmp_path)
    out = tmp_path / "chart.png"
    for _ in range(2):  # drawn, then from the cached PNG: the same words
        empty = invoke(runner, store, "chart", "-o", str(out), "--since", "2099-01-01")
        assert empty.exit_code == EXIT_OK and out.stat().st_size > 0
        assert empty.output.splitlines()[-1] == (
            f"It is empty: No runs since 2099-01-01 (3 runs in {store} in all).")
    svg = invoke(runner, store, "chart", "-o", str(tmp_path / "chart.svg"), "--until", "2001-01-01")
    assert svg.output.splitlines()[-1] == (
        f"It is empty: No runs until 2001-01-01 (3 runs in {store} in all).")
    shown = invoke(runner, store, "chart", "-o", str(out))
    assert shown.exit_code == EXIT_OK and "empty" not in shown.output
    nothing = invoke(runner, tmp_path / "new", "chart", "-o", str(out))
    assert nothing.exit_code == EXIT_OK
    assert "It is empty: No runs in" in nothing.output and "runlog import PATH" in nothing.output


def test_rebuild_repairs_a_damaged_files_table_and_keeps_every_run(
        runner: CliRunner, tmp_path: Path) -> None:
    """The files table says where runs came from; rebuild must still run when it is the
    damaged part (the runs themselves are whole)."""
    store, folder = _three_sample_runs(runner, tmp_path)
    manifest = json.loads((store / "manifest.json").read_text())
    files = store / manifest["tables"]["files"]
    files.write_bytes(files.read_bytes()[:100])
    rebuilt = invoke(runner, store, "store", "rebuild")
    assert rebuilt.exit_code == EXIT_OK, rebuilt.output
    assert "was unreadable: replaced by an empty table" in rebuilt.output
    assert "Store is consistent." in rebuilt.output
    runs = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"]
    assert len(runs) == 3
    again = invoke(runner, store, "import", str(folder))  # known again, by content
    assert "0 new (0 runs), 3 duplicate" in again.output


def test_rebuild_recovers_a_deleted_manifest_and_an_import_never_collects_the_files(
        runner: CliRunner, tmp_path: Path) -> None:
    """A deleted manifest.json: every command says to rebuild (an import refuses and
    deletes nothing), and `store rebuild` gets every run back with its annotation."""
    store, folder = _three_sample_runs(runner, tmp_path)
    invoke(runner, store, "annotate", "last", "--knee-pain", "2")
    before = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"]
    (store / "manifest.json").unlink()
    for command in (["report"], ["import", "--quiet", str(folder)], ["store", "check"]):
        result = runner.invoke(cli, ["--store", str(store), *command])
        assert result.exit_code == EXIT_ERROR and "runlog store rebuild" in result.output, \
            (command, result.output)
    rebuilt = invoke(runner, store, "store", "rebuild")
    assert "- manifest.json was missing: wrote a new one listing the" in rebuilt.output
    assert "Re-imported 0 runs" in rebuilt.output and "Store is consistent." in rebuilt.output
    after = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"]
    assert [r["run_id"] for r in after] == [r["run_id"] for r in before]
    note = json.loads(invoke(runner, store, "annotate", "last", "--rpe", "5",
                             "--format", "json").output)
    assert note["knee_pain"] == 2


def test_weather_offline_keeps_working(runner: CliRunner, tmp_path: Path, monkeypatch) -> None:
    import runlog.weather as weather

    monkeypatch.setattr(weather, "ARCHIVE_URL", "http://127.0.0.1:9/v1/archive")
    store = tmp_path / "s"
    invoke(runner, store, "import", "--quiet", str(LANDAL_FIT))
    result = invoke(runner, store, "weather", "fetch")
    assert result.exit_code == EXIT_ERROR  # nothing could be fetched: the network
    lines = result.output.splitlines()
    assert len(lines) == 2 and lines[0] == "Weather for 0 runs; 1 without."
    assert lines[1].startswith("  offline: no weather fetched for 1 run: cannot reach the "
                               "weather service (offline?): ")
    assert invoke(runner, store, "report").exit_code == EXIT_OK


def test_import_with_weather_offline_imports_and_exits_1(runner: CliRunner, tmp_path: Path,
                                                         monkeypatch) -> None:
    import runlog.weather as weather

    monkeypatch.setattr(weather, "ARCHIVE_URL", "http://127.0.0.1:9/v1/archive")
    store = tmp_path / "s"
    result = invoke(runner, store, "import", "--weather", *map(str, (SAMPLE / "fit").glob("*")))
    assert result.exit_code == EXIT_ERROR, result.output
    assert "3 files: 3 new (3 runs)" in result.output
    assert "Weather for 0 new runs; 3 without.\n  offline: no weather fetched for 3 runs: " \
           "cannot reach the weather service (offline?)" in result.output
    assert " -8.9" not in result.output and "c5b3031df05e: no weather" not in result.output


def test_next_answers_from_the_history(runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s"
    empty = invoke(runner, store, "next")
    assert empty.exit_code == EXIT_OK and "gently" in empty.output.lower()
    session = sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[:8]
    invoke(runner, store, "import", "--quiet", *map(str, session))
    last = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"][-1]
    when = pd.Timestamp(last["start_local"]).tz_localize(None) + pd.Timedelta(days=2)
    result = invoke(runner, store, "next", "--when", when.strftime("%Y-%m-%d %H:%M"),
                    "--distance-km", "30", "--format", "json")
    assert result.exit_code == EXIT_OK, result.output
    plan = json.loads(result.output)
    assert plan["ceiling_distance_m"] > 0
    planned = {f["rule"]: f["level"] for f in plan["planned"]["flags"]}
    assert planned.get("session_spike") == 2
    assert plan["planned"]["knee_risk"] == "high"
    no_temp = runner.invoke(cli, ["--store", str(store), "next", "--weather"])
    assert no_temp.exit_code == EXIT_USAGE and "live forecasts" in no_temp.output


def test_report_csv_matches_json(runner: CliRunner, tmp_path: Path) -> None:
    import io

    store = tmp_path / "s"
    session = sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[:4]
    invoke(runner, store, "import", "--quiet", *map(str, session))
    frame = pd.read_csv(io.StringIO(invoke(runner, store, "report", "--format", "csv").output))
    runs = json.loads(invoke(runner, store, "report", "--format", "json").output)["runs"]
    assert frame["run_id"].tolist() == [r["run_id"] for r in runs]
    assert frame["distance_km"].tolist() == pytest.approx([r["distance_km"] for r in runs],
                                                          abs=0.001)
    weeks = invoke(runner, store, "report", "--weeks", "--format", "csv").output
    assert weeks.splitlines()[0].startswith("week_start,week_end,runs,distance_km")
    one = runner.invoke(cli, ["--store", str(store), "report", "--run", "last", "--format",
                              "csv"])
    assert one.exit_code == EXIT_USAGE


def test_store_on_an_impossible_path_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(cli, ["--store", str(blocker / "store"), "import", str(LANDAL_FIT)])
    assert result.exit_code == EXIT_ERROR
    assert result.output.startswith("runlog: ") and result.output.count("\n") == 1
    assert "Traceback" not in result.output and "new " not in result.output


def test_read_only_commands_pause_the_collector_and_restore_it(
        runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import runlog.cli as cli_module

    store = tmp_path / "s"
    assert invoke(runner, store, "import", "-q", str(LANDAL_FIT)).exit_code == EXIT_OK
    seen: list[bool] = []
    real = cli_module._report_text

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(cli_module, "_report_text", spy)
    assert gc.isenabled()
    result = invoke(runner, store, "report", "--weeks")
    assert result.exit_code == EXIT_OK and seen == [False]
    assert gc.isenabled()  # this (in-process) caller gets its collector back
    with pytest.raises(RuntimeError), cli_module._collector_paused():  # and after a failure
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:  # a caller that had it off keeps it off
        with cli_module._collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_main_freezes_the_collector_at_exit(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import runlog.cli as cli_module

    monkeypatch.setattr("sys.argv", ["runlog", "--store", str(tmp_path / "s"), "report"])
    frozen_before = gc.get_freeze_count()
    try:
        with pytest.raises(SystemExit) as stop:
            cli_module.main()
        assert stop.value.code == EXIT_OK
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("args", [
    ("report", "--since", "notadate"), ("report", "--weeks", "--until", "31-31-2024"),
    ("chart", "-o", "x.png", "--since", "notadate"),
    ("export", "--what", "weeks", "--since", "notadate"),
    # what pandas read as some day: "June 1" as the year 1 (every run), "1.6.2021" as 6 Jan
    ("report", "--since", "June 1"), ("report", "--since", "1.6.2021"),
    ("report", "--until", "02/01/2021"), ("report", "--weeks", "--since", "2021/06/01"),
    ("chart", "-o", "x.png", "--until", "20210601"),
    ("export", "--what", "flags", "--since", "June 1", "--until", "2021-12-31"),
    ("weather", "fetch", "--since", "1.6.2021"),
    ("next", "--when", "June 1 8:00"), ("next", "--when", "1.6.2021 08:00")])
def test_a_bad_date_is_one_line_usage_error(runner: CliRunner, tmp_path: Path,
                                            args: tuple[str, ...]) -> None:
    invoke(runner, tmp_path / "s", "import", "--quiet", str(LANDAL_FIT))
    args = tuple(str(tmp_path / a) if a == "x.png" else a for a in args)
    result = runner.invoke(cli, ["--store", str(tmp_path / "s"), *args])
    assert not (tmp_path / "x.png").exists()
    assert result.exit_code == 2, result.output     # bad input, as for every InputError
    assert result.output.count("\n") == 1 and result.output.startswith("runlog: not a date")
    bad = args[args.index("June 1") if "June 1" in args else -1]
    assert repr(bad) in result.output               # the value, named as typed


# --- the console script (runlog.cli.run) --------------------------------------------------------

def _console(store: Path, *args: str) -> subprocess.CompletedProcess:
    """The console script's command, with buffered output as for a runner."""
    return run_cli(store, *args, buffered=True, text=False)


def test_console_script_exits_with_the_commands_status_and_whole_output(
        runner: CliRunner, tmp_path: Path) -> None:
    """run() ends the process without the interpreter's shutdown (os._exit): the exit
    status is still the command's, and buffered output arrives whole, equal to the
    in-process command's."""
    store = tmp_path / "s"
    imported = _console(store, "import", "-q", str(LANDAL_FIT))
    assert imported.returncode == EXIT_OK, imported.stderr
    assert (store / "manifest.json").exists()

    exported = _console(store, "export", "--what", "samples", "--run", "last")
    assert exported.returncode == EXIT_OK, exported.stderr
    assert len(exported.stdout) > 32 * 1024  # several of stdout's 8 KiB buffers
    here = invoke(runner, store, "export", "--what", "samples", "--run", "last")
    assert exported.stdout.decode("utf-8") == here.output

    usage = _console(store, "report", "--no-such-option")
    assert usage.returncode == EXIT_USAGE
    assert b"No such option" in usage.stderr and usage.stdout == b""

    unknown = _console(store, "report", "--run", "no-such-run")
    assert unknown.returncode == EXIT_ERROR
    assert b"no-such-run" in unknown.stderr and b"Traceback" not in unknown.stderr

    bad = tmp_path / "broken.fit"
    bad.write_bytes(b"\x0e\x10" + b"\x00" * 40)
    some_failed = _console(store, "import", str(bad))
    assert some_failed.returncode == EXIT_SOME_FAILED
    assert b"broken.fit" in some_failed.stderr + some_failed.stdout


def test_a_missing_path_is_one_line_and_nothing_is_imported(runner: CliRunner,
                                                           tmp_path: Path) -> None:
    store = tmp_path / "s"
    result = runner.invoke(cli, ["--store", str(store), "import", str(LANDAL_FIT),
                                 str(tmp_path / "typo.fit"), str(tmp_path / "nor-this")])
    assert result.exit_code == EXIT_USAGE
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"runlog: {tmp_path / 'typo.fit'}, {tmp_path / 'nor-this'}:")
    assert "no such file or folder" in result.output
    assert not (store / "manifest.json").exists()  # the files that exist were not imported


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """`runlog export ... | head`: the reader is gone before the output is written. The
    command ends with status 1 and says nothing (no 'Broken pipe', no traceback)."""
    store = tmp_path / "s"
    assert _console(store, "import", "-q", str(LANDAL_FIT)).returncode == EXIT_OK
    process = subprocess.Popen(cli_command(store, "export", "--what", "samples", "--run", "last"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=cli_env(buffered=True))
    process.stdout.close()  # the reader has gone
    errors = process.stderr.read()
    assert process.wait(timeout=120) == EXIT_ERROR
    assert errors == b""


# --- options that cannot mean what they say --------------------------------------------------

@pytest.mark.parametrize("args", [
    ["report", "--since", "2021-06-01", "--until", "2021-01-01"],
    ["report", "--weeks", "--since", "2021-06-01", "--until", "2021-01-01"],
    ["chart", "-o", "x.png", "--since", "2021-06-01", "--until", "2021-01-01"],
    ["export", "--what", "flags", "--since", "2021-06-01", "--until", "2021-01-01"],
    ["report", "--run", "last", "--weeks"],
    ["report", "--run", ""],
    ["export", "--what", "runs", "--run", "last"],
    ["annotate", "last", "--knee-pain", "11"],   # click's own range check
    ["annotate", "last"],                        # click's UsageError from the command
    ["report", "--bogus"],                       # an unknown option of a command
    ["profile", "--hr-max-bpm", "100", "--hr-rest-bpm", "110"],
    ["profile", "--birth-year", str(date.today().year + 1)],
])
def test_contradictory_or_bad_options_are_one_usage_line(runner: CliRunner, tmp_path: Path,
                                                          args: list[str]) -> None:
    """Each is exit 2 with one line naming the problem; nothing is written."""
    store = tmp_path / "s"
    invoke(runner, store, "import", "-q", str(LANDAL_FIT))
    manifest = (store / "manifest.json").read_bytes()
    result = runner.invoke(cli, ["--store", str(store), *args])
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("runlog: "), \
        result.output
    assert (store / "manifest.json").read_bytes() == manifest
    assert not (tmp_path / "x.png").exists()


def test_an_empty_window_says_so_and_how_many_runs_the_store_holds(
        runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s"
    invoke(runner, store, "import", "-q", str(LANDAL_FIT))
    for args in (["report"], ["report", "--weeks"]):
        result = invoke(runner, store, *args, "--since", "2099-01-01")
        assert result.output == f"No runs since 2099-01-01 (1 run in {store} in all).\n"


def test_ctrl_c_says_what_the_store_kept(runner: CliRunner, tmp_path: Path,
                                        monkeypatch) -> None:
    """An interrupt is one line saying the store is whole and how to go on, exit 1."""
    import runlog.api

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runlog.api.RunLog, "import_sources", interrupted)
    result = runner.invoke(cli, ["--store", str(tmp_path / "s"), "import", str(LANDAL_FIT)])
    assert result.exit_code == EXIT_ERROR
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("runlog: interrupted: the store keeps")


def test_a_privacy_zone_given_twice_is_kept_once(runner: CliRunner, tmp_path: Path) -> None:
    store = tmp_path / "s"
    zone = ["--privacy-zone", "47.3,8.5,200"]
    invoke(runner, store, "profile", *zone, *zone)
    shown = json.loads(invoke(runner, store, "profile", *zone, "--format", "json").output)
    assert shown["privacy_zones"] == [{"lat_deg": 47.3, "lon_deg": 8.5, "radius_m": 200.0}]


def test_the_import_table_explains_its_star(runner: CliRunner, tmp_path: Path) -> None:
    """A partial copy imports as a run marked '*'; the table says what '*' means."""
    data = LANDAL_FIT.read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "half.fit").write_bytes(data[: len(data) // 2])
    result = invoke(runner, tmp_path / "s", "import", str(tmp_path / "in"))
    assert "*" in result.output.split("------")[-1].splitlines()[1]  # the run's km
    assert "\n* data-quality problems were found" in result.output


def test_import_names_what_it_ignored_for_a_reason_the_runner_should_know(
        runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(LANDAL_FIT, folder / "run.fit")
    (folder / "gone.fit").symlink_to(tmp_path / "nowhere.fit")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")
    result = invoke(runner, tmp_path / "s", "import", str(folder), str(folder / "run.fit"))
    lines = result.output.splitlines()
    assert f"ignored   {folder / 'gone.fit'}: broken symbolic link" in lines
    assert not any("photo.jpg" in line for line in lines)  # counted only
    assert any(line.startswith("1 file: 1 new (1 run), 0 duplicate") and
               "2 other files ignored" in line for line in lines)
    (folder / "gone.fit").unlink()
    again = invoke(runner, tmp_path / "s", "import", str(folder)).output.splitlines()
    assert any(line.startswith("1 file: 0 new (0 runs), 1 duplicate") and
               line.endswith(f"0 failed, 1 other file ignored. Store: {tmp_path / 's'}")
               for line in again), again
