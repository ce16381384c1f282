"""Runs computed by an older runlog are recomputed from their files; nothing else changes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import runlog
from runlog.refresh import stale_runs
from runlog.schema import METRICS_VERSION

STRAVA = "martin-ueding__geo-activity-playground/testdata/Strava Export"


def age_runs(log: runlog.RunLog) -> pd.DataFrame:
    """Make every stored run look computed by the previous metrics version, with a wrong
    elapsed time, as an older runlog would have left it."""
    before = log.store.runs()
    with log.store.writer() as tx:
        tx.update_runs(before[["run_id"]].assign(metrics_version=METRICS_VERSION - 1,
                                                 elapsed_s=1.0))
    return before


def test_refresh_recomputes_stale_runs_and_keeps_identity_and_annotations(
        corpus: Path, tmp_path: Path) -> None:
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([corpus / STRAVA])
    log.annotate("last", knee_pain=3, shoes="Pegasus")
    before = age_runs(log)
    assert len(stale_runs(log.store.runs())) == 1
    count, problems = log.refresh_metrics()
    assert (count, problems) == (1, [])
    after = log.store.runs()
    assert after["metrics_version"].tolist() == [METRICS_VERSION]
    assert after["elapsed_s"].iloc[0] == before["elapsed_s"].iloc[0] == pytest.approx(1428, abs=0.1)
    # The Strava name came from activities.csv, which the lone file does not carry.
    assert after["name"].iloc[0] == "Laufen Landal Park"
    assert log.store.annotations().set_index("run_id").loc[after["run_id"].iloc[0],
                                                           "knee_pain"] == 3
    assert len(log.store.samples(after["run_id"])) == len(log.store.samples(before["run_id"]))
    assert log.refresh_metrics() == (0, [])


def test_refresh_names_runs_whose_file_is_gone(tmp_path: Path) -> None:
    src = (Path(__file__).resolve().parents[1] / "data" / "sample" / "fit"
           / "workoutizer-run_with_coordinates.fit")
    copy = tmp_path / "run.fit"
    copy.write_bytes(src.read_bytes())
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([copy])
    age_runs(log)
    copy.unlink()
    count, problems = log.refresh_metrics()
    assert count == 0 and len(problems) == 1 and "is gone; old metrics kept" in problems[0]
    assert log.store.runs()["elapsed_s"].iloc[0] == 1.0  # kept, not guessed


def test_report_says_when_runs_are_stale(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from runlog.cli import cli

    src = (Path(__file__).resolve().parents[1] / "data" / "sample" / "fit"
           / "workoutizer-run_with_coordinates.fit")
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([src])
    report = CliRunner().invoke(cli, ["--store", str(tmp_path / "s"), "report"])
    assert "older runlog" not in report.output
    age_runs(log)
    report = CliRunner().invoke(cli, ["--store", str(tmp_path / "s"), "report"])
    assert "1 runs were computed by an older runlog" in report.output


def test_refresh_of_a_relative_path_says_where_it_looked_and_works_from_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stores of older runlogs recorded paths as typed: relative to the import's folder."""
    src = (Path(__file__).resolve().parents[1] / "data" / "sample" / "fit"
           / "workoutizer-run_with_coordinates.fit")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "run.fit").write_bytes(src.read_bytes())
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([tmp_path / "in" / "run.fit"])
    age_runs(log)
    with log.store.writer() as tx:
        tx.update_runs(log.store.runs()[["run_id"]].assign(source_file="in/run.fit"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    count, problems = log.refresh_metrics()
    assert count == 0 and len(problems) == 1
    assert f"in/run.fit not found from {elsewhere}" in problems[0]
    assert "relative to the folder the import ran in" in problems[0]
    monkeypatch.chdir(tmp_path)
    assert log.refresh_metrics() == (1, [])


def test_refresh_says_when_the_file_no_longer_gives_the_run(tmp_path: Path) -> None:
    """The path now holds another recording: the run keeps its metrics and is named."""
    fit = Path(__file__).resolve().parents[1] / "data" / "sample" / "fit"
    path = tmp_path / "run.fit"
    path.write_bytes((fit / "workoutizer-run_with_coordinates.fit").read_bytes())
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([path])
    age_runs(log)
    path.write_bytes((fit / "geo-activity-playground-Laufen_Landal_Park.fit").read_bytes())
    count, problems = log.refresh_metrics()
    run_id = log.store.runs()["run_id"].iloc[0]
    assert count == 0
    assert problems == [f"{run_id}: {path} no longer gives this run; old metrics kept"]
    assert log.store.runs()["elapsed_s"].iloc[0] == 1.0
