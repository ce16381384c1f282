"""The whole shared corpus in one import: every file accounted for, the truth matched.

The corpus (../shared/corpus, catalogue.csv) holds 179 real files from public projects: FIT
from many devices, one runner's GPX year, TCX, a Strava export, rides, swims, walks, settings
and workout files, and broken files. One import of all of it must give every file exactly one
outcome with a reason where it is not new, never a traceback, and runs whose distance, elapsed
time and start match each file's own summary.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import runlog
from runlog.importer import DUPLICATE, FAILED, NEW, SKIPPED


@pytest.fixture(scope="module")
def imported(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    log = runlog.open_store(tmp_path_factory.mktemp("corpus") / "store")
    result = log.import_paths([corpus])
    outcomes = pd.DataFrame([o.as_dict() for o in result.outcomes])
    outcomes["rel"] = outcomes["path"].map(lambda p: str(Path(p).relative_to(corpus)))
    return log, result, outcomes


def test_every_file_has_exactly_one_outcome(imported, corpus: Path, catalogue) -> None:
    _, result, outcomes = imported
    assert not outcomes["rel"].duplicated().any()
    ignored = {str(Path(i.display).relative_to(corpus)) for i in result.ignored}
    every_file = {str(p.relative_to(corpus)) for p in corpus.rglob("*") if p.is_file()}
    # activities.csv of the Strava export is read as the export's list of activities.
    strava_csv = {p for p in every_file if p.endswith("Strava Export/activities.csv")}
    assert set(outcomes["rel"]) | ignored | strava_csv == every_file
    assert set(catalogue["path"]) - strava_csv <= set(outcomes["rel"])
    # Ignored files are the corpus's own paperwork, never activity formats.
    assert all(Path(p).suffix.lower() not in (".fit", ".gpx", ".tcx", ".gz") for p in ignored)
    not_new = outcomes[outcomes["outcome"] != NEW]
    assert (not_new["reason"].str.len() > 0).all()
    assert not outcomes["reason"].str.contains("Traceback|internal error").any()
    assert not outcomes["reason"].str.contains("\n").any()


def test_counts_are_what_the_corpus_holds(imported) -> None:
    log, result, outcomes = imported
    counts = result.counts()
    # 1 failed: activity-settings-corruptheader.fit (its header is corrupt), with byte offset.
    failed = outcomes[outcomes["outcome"] == FAILED]
    assert failed["rel"].str.endswith("activity-settings-corruptheader.fit").tolist() == [True]
    assert failed["byte_offset"].notna().all()
    # 15 duplicates: 5 fitparse variants of Activity.fit (CRC, settings, EOF), 3 copies of
    # runpandas basic.tcx, 4 runpandas TCX samples that are also in the GPX session year,
    # run.tcx and stopped_example.tcx (GPX twins), and the Strava export's .fit.gz (the
    # original FIT is in geo-activity-playground's Local Files).
    dup = outcomes[outcomes["outcome"] == DUPLICATE]
    assert len(dup) == 14
    # ... and 1 replaced: runpandas' 2020-12-02 watch TCX (7.01 km, 2,498 s) is the whole run
    # the phone's GPX of the session year (5.26 km, 1,832 s, same start second) recorded part of
    replaced = outcomes[outcomes["outcome"] == "replaced"]
    assert replaced["rel"].str.endswith("2020-12-02T06_08_29-300_Running.tcx").tolist() == [True]
    assert dup["matched_run_id"].notna().all()
    # 66 skipped, each for a reason a runner recognises.
    skipped = outcomes.loc[outcomes["outcome"] == SKIPPED, "reason"]
    kinds = skipped.str.extract(r"^(cycling|walking|swimming|other|not an activity file|"
                                r"no sport tag|activity without an absolute start time|"
                                r"no track points|track has no timestamps)")[0]
    assert kinds.notna().all(), skipped[kinds.isna()].tolist()
    assert kinds.value_counts().to_dict() == {
        "cycling": 20, "other": 11, "not an activity file": 11, "walking": 7,
        "no sport tag": 6, "swimming": 3, "activity without an absolute start time": 3,
        "no track points": 3, "track has no timestamps": 2}
    # 96 new files give one run each, except the fenix 2 multisport file with two running
    # legs (its generic, transition and cycling legs are skipped): 97 runs.
    assert counts[NEW] == 96 and counts["new_runs"] == 97
    assert len(log.store.runs()) == 97


def test_runs_match_each_files_own_summary(imported, catalogue) -> None:
    log, _, outcomes = imported
    runs = log.store.runs().set_index("run_id")
    new = outcomes[outcomes["outcome"] == NEW].merge(catalogue, left_on="rel", right_on="path",
                                                     suffixes=("", "_cat"))
    checked = 0
    for row in new.itertuples():
        if row.sport_norm == "multisport" or row.format not in ("fit", "gz", "gpx"):
            continue  # legs are checked per session in test_readers_fit
        (run_id,) = row.run_ids
        run = runs.loc[run_id]
        if pd.notna(row.start_time_utc):
            # Exact at the catalogue's precision (whole seconds; GPX times carry milliseconds).
            assert run["start_utc"].floor("s") == pd.Timestamp(row.start_time_utc), row.rel
        if row.sport_norm == "run" and pd.notna(row.distance_summary_m):
            checked += 1
            assert run["distance_m"] == pytest.approx(row.distance_summary_m, rel=0.01), row.rel
            assert run["elapsed_s"] == pytest.approx(row.elapsed_s, abs=2), row.rel
    assert checked >= 12


def test_damaged_and_trimmed_runs_say_so(imported) -> None:
    log, _, _ = imported
    runs = log.store.runs()
    issues = runs.set_index(runs["source_file"].map(lambda p: Path(p).name))["quality_issues"]
    # The Strava Android file is damaged after 473 records: the track is kept, the mismatch
    # with the session total (11.3 km) named, never silently replaced.
    assert "summary_mismatch" in issues["strava-android-app-201.10-b1218918.fit"]
    assert "watch_left_running" in issues["720bf570-d855-4303-87c2-74d85429e52d.gpx"]
    assert "gps_jump" in issues["556160e9-d74c-440c-b0af-363efb753430.gpx"]
