"""Import end to end on real files: outcomes, idempotence, duplicates across formats."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

import runlog
from runlog.importer import DUPLICATE, FAILED, NEW, SKIPPED, import_paths, run_id_for
from runlog.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
LANDAL_FIT = SAMPLE / "fit" / "geo-activity-playground-Laufen_Landal_Park.fit"
STRAVA = "martin-ueding__geo-activity-playground/testdata/Strava Export"
LANDAL_IN_CORPUS = ("martin-ueding__geo-activity-playground/testdata/Local Files/Activities/"
                    "2022-05-29-15-53-35_Laufen_Landal_Park.fit")


def by_outcome(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for o in result.outcomes:
        out.setdefault(o.outcome, []).append(Path(o.path.split("!")[-1]).name)
    return out


def test_run_id_is_stable_and_depends_on_start_and_leg() -> None:
    start = pd.Timestamp("2021-01-17T10:23:22Z")
    assert run_id_for(start, None) == run_id_for(start.tz_convert("Europe/Berlin"), None)
    assert run_id_for(start, None) != run_id_for(start, 0)
    assert len(run_id_for(start, None)) == 12


def test_import_fit_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    result = import_paths(store, [LANDAL_FIT])
    assert [o.outcome for o in result.outcomes] == [NEW]
    runs = store.runs()
    assert len(runs) == 1
    run = runs.iloc[0]
    # The file's own session summary: 3322.9 m, 1428 s, start 2022-05-29T15:53:35Z.
    assert run["distance_m"] == pytest.approx(3322.9, rel=0.01)
    assert run["elapsed_s"] == pytest.approx(1428.0, abs=2)
    assert run["start_utc"] == pd.Timestamp("2022-05-29T15:53:35Z")
    assert run["tz_source"] in ("file", "coordinates")
    assert run["tz_offset_min"] == 120  # the Netherlands in summer
    assert len(store.samples([run["run_id"]])) > 100


def test_reimport_same_folder_adds_nothing_and_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for f in sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[:4]:
        shutil.copy(f, folder)
    shutil.copy(LANDAL_FIT, folder)
    store = Store(tmp_path / "s")
    first = import_paths(store, [folder])
    assert first.counts()[NEW] == 5
    runs_before = store.runs()
    second = import_paths(store, [folder])
    assert second.counts()[NEW] == 0
    assert second.counts()[DUPLICATE] == 5
    assert all("already imported" in o.reason for o in second.outcomes)
    pd.testing.assert_frame_equal(store.runs(), runs_before)
    # A renamed copy is recognised by content.
    shutil.copy(LANDAL_FIT, folder / "renamed.fit")
    third = import_paths(store, [folder / "renamed.fit"])
    assert third.outcomes[0].outcome == DUPLICATE
    assert "same content" in third.outcomes[0].reason
    assert len(store.runs()) == 5


def _write_gpx_copy(store_samples: pd.DataFrame, path: Path) -> None:
    """A GPX export of a real run's samples, as Garmin Connect would write it."""
    pts = store_samples.dropna(subset=["lat_deg", "lon_deg"])
    body = "".join(
        f'<trkpt lat="{r.lat_deg:.7f}" lon="{r.lon_deg:.7f}"><ele>{r.altitude_m:.1f}</ele>'
        f"<time>{r.timestamp.strftime('%Y-%m-%dT%H:%M:%SZ')}</time></trkpt>"
        for r in pts.itertuples())
    path.write_text('<?xml version="1.0"?><gpx version="1.1" creator="test" '
                    'xmlns="http://www.topografix.com/GPX/1/1"><trk><type>running</type>'
                    f"<trkseg>{body}</trkseg></trk></gpx>")


def test_fit_and_gpx_copy_of_one_activity_keep_one_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    import_paths(store, [LANDAL_FIT])
    (run_id,) = store.runs()["run_id"]
    gpx = tmp_path / "copy.gpx"
    _write_gpx_copy(store.samples([run_id]), gpx)
    result = import_paths(store, [gpx])
    (outcome,) = result.outcomes
    assert outcome.outcome == DUPLICATE, outcome.reason
    assert outcome.matched_run_id == run_id
    assert len(store.runs()) == 1


def test_real_gpx_and_tcx_copies_keep_one_run(corpus: Path, tmp_path: Path) -> None:
    base = corpus / "corriporai__runpandas/runpandas/tests/io/data"
    store = Store(tmp_path / "s")
    result = import_paths(store, [base / "tcx" / "run.tcx", base / "gpx" / "run.gpx"])
    outcomes = {Path(o.path).name: o for o in result.outcomes}
    assert outcomes["run.tcx"].outcome == NEW
    assert outcomes["run.gpx"].outcome == DUPLICATE
    assert len(store.runs()) == 1


def test_strava_export_fit_gz_is_duplicate_of_original_fit(corpus: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    first = import_paths(store, [corpus / STRAVA])
    (o,) = first.outcomes
    assert o.outcome == NEW
    run = store.runs().iloc[0]
    assert run["name"] == "Laufen Landal Park"  # from activities.csv, joined by Filename
    second = import_paths(store, [corpus / LANDAL_IN_CORPUS])
    (dup,) = second.outcomes
    assert dup.outcome == DUPLICATE
    assert dup.matched_run_id == run["run_id"]
    assert len(store.runs()) == 1


def test_corrupt_files_fail_one_line_each_and_do_not_stop_import(corpus: Path,
                                                                 tmp_path: Path) -> None:
    files = corpus / "dtcooper__python-fitparse/tests/files"
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(files / "activity-settings-corruptheader.fit", folder / "a-corrupt-header.fit")
    (folder / "b-empty.fit").write_bytes(b"")
    (folder / "c-not-fit.fit").write_bytes(b"this is not a FIT file at all, just text\n" * 3)
    good = LANDAL_FIT.read_bytes()
    (folder / "d-truncated.fit").write_bytes(good[:14 + 200])
    shutil.copy(LANDAL_FIT, folder / "e-good.fit")
    store = Store(tmp_path / "s")
    result = import_paths(store, [folder])
    outcomes = {Path(o.path).name: o for o in result.outcomes}
    assert outcomes["e-good.fit"].outcome == NEW
    for name in ("a-corrupt-header.fit", "b-empty.fit", "c-not-fit.fit"):
        assert outcomes[name].outcome == FAILED, name
        assert outcomes[name].reason and "\n" not in outcomes[name].reason
        assert "Traceback" not in outcomes[name].reason
    assert outcomes["d-truncated.fit"].outcome in (FAILED, SKIPPED)
    assert len(store.runs()) == 1
    # Failed files are recorded, and tried again next time (a newer runlog may read them).
    files_table = store.files()
    assert set(files_table.loc[files_table["outcome"] == FAILED, "path"].map(
        lambda p: Path(p).name)) >= {"a-corrupt-header.fit", "b-empty.fit", "c-not-fit.fit"}
    again = import_paths(store, [folder])
    assert by_outcome(again)[FAILED] == by_outcome(result)[FAILED]


def test_rides_and_non_activity_files_are_skipped_with_reason(corpus: Path,
                                                              tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    ride = corpus / "fgebhart__workoutizer/wkz/initial_trace_data/cycling_bad_schandau.fit"
    settings = corpus / "dtcooper__python-fitparse/tests/files/Settings.fit"
    result = import_paths(store, [ride, settings])
    outcomes = {Path(o.path).name: o for o in result.outcomes}
    assert outcomes[ride.name].outcome == SKIPPED
    assert "cycling" in outcomes[ride.name].reason
    assert outcomes[settings.name].outcome == SKIPPED
    assert "not an activity" in outcomes[settings.name].reason
    assert store.runs().empty


def test_multisport_fit_yields_only_run_legs(corpus: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    path = corpus / "dtcooper__python-fitparse/tests/files/activity-large-fenxi2-multisport.fit"
    result = import_paths(store, [path])
    (o,) = result.outcomes
    assert o.outcome == NEW
    runs = store.runs()
    # session sports: generic|transition|running|transition|running|transition|cycling
    assert len(runs) == 2
    assert runs["multisport_leg"].notna().all()
    assert "cycling" in o.reason  # the other legs are named as skipped


def test_sample_year_imports_and_names_its_quality_problems(tmp_path: Path) -> None:
    log = runlog.open_store(tmp_path / "s")
    result = log.import_paths([SAMPLE / "runpandas-session"])
    counts = result.counts()
    assert counts[FAILED] == 0
    assert counts[NEW] + counts[SKIPPED] == 68
    assert counts[NEW] >= 60
    runs = log.store.runs()
    assert runs["sport_inferred"].all()  # the phone app wrote no sport tag
    watch_left = runs[runs["quality_issues"].fillna("").str.contains("watch_left_running")]
    spike = runs[runs["quality_issues"].fillna("").str.contains("gps_jump")]
    assert len(watch_left) >= 1 and len(spike) >= 1
    # The 24-hour recording is trimmed to the real run, the 22 km spike is not counted.
    assert watch_left["elapsed_s"].max() < 4 * 3600
    assert runs["distance_m"].max() < 20_000


# --- the commit's frames, built from per-run arrays -----------------------------------------

def _parsed_runs() -> list:
    """process_file's runs of three real sample files (two FIT, one GPX)."""
    from runlog.importer import process_file
    from runlog.sources import discover

    gpx = sorted((SAMPLE / "runpandas-session").glob("*.gpx.gz"))[0]
    paths = [LANDAL_FIT, SAMPLE / "fit" / "workoutizer-run_with_coordinates.fit", gpx]
    runs = []
    for source in discover([str(p) for p in paths]):
        data = source.read_bytes()
        runs += process_file(source, data, "0" * 64, {})[1]
    assert len(runs) == 3
    return runs


def test_stacked_frame_is_the_per_run_frames_concatenated_in_store_shape() -> None:
    from runlog.activity import samples_frame
    from runlog.importer import BIN_ORDER, SAMPLE_ORDER, stacked_frame
    from runlog.store import _already_conforming

    runs = _parsed_runs()
    ids = [row["run_id"] for row, _, _ in runs]
    samples = stacked_frame([s for _, s, _ in runs], ids, SAMPLE_ORDER)
    expected = pd.concat([samples_frame(s).assign(run_id=i) for i, (_, s, _) in
                          zip(ids, runs, strict=True)], ignore_index=True)
    pd.testing.assert_frame_equal(samples, expected[list(samples.columns)])
    assert list(samples.columns) == ["run_id", *SAMPLE_ORDER]
    assert _already_conforming(samples, "samples")   # the store takes it as it is
    bins = stacked_frame([b for _, _, b in runs], ids, BIN_ORDER)
    assert len(bins) == sum(len(b["minutes"]) for _, _, b in runs) > 0
    assert _already_conforming(bins, "cadence_bins")


def test_frame_from_rows_equals_conform_of_an_object_frame() -> None:
    from runlog.store import conform, frame_from_rows

    rows = [row for row, _, _ in _parsed_runs()]
    rows[1] = {k: v for k, v in rows[1].items() if k != "gear"}   # a key missing in a row
    rows[2]["warmup_present"] = pd.NA
    pd.testing.assert_frame_equal(frame_from_rows(rows, "runs"),
                                  conform(pd.DataFrame(rows), "runs"))
    # a key the table does not know takes the general path and is kept
    rows[0]["my_own_column"] = "x"
    out = frame_from_rows(rows, "runs")
    pd.testing.assert_frame_equal(out, conform(pd.DataFrame(rows), "runs"))
    assert out["my_own_column"].tolist()[0] == "x"


def test_stacked_table_is_the_stacked_frame_as_the_store_writes_it() -> None:
    from runlog.importer import BIN_ORDER, SAMPLE_ORDER, stacked_frame, stacked_table
    from runlog.store import _to_arrow, arrow_schema

    runs = _parsed_runs()
    ids = [row["run_id"] for row, _, _ in runs]
    for parts, order, table in (([s for _, s, _ in runs], SAMPLE_ORDER, "samples"),
                                ([b for _, _, b in runs], BIN_ORDER, "cadence_bins")):
        got = stacked_table(parts, ids, table)
        want = _to_arrow(stacked_frame(parts, ids, order), table)
        assert got.schema.equals(arrow_schema(table), check_metadata=True)
        assert got.num_rows > 0 and got.equals(want.cast(got.schema))
    assert stacked_table([], [], "samples").num_rows == 0


def test_arrow_from_rows_gives_the_values_frame_from_rows_gives() -> None:
    from runlog.store import arrow_from_rows, conform, frame_from_rows

    rows = [row for row, _, _ in _parsed_runs()]
    rows[1] = {k: v for k, v in rows[1].items() if k != "gear"}   # a key missing in a row
    rows[2]["warmup_present"] = pd.NA
    rows[2]["avg_hr_bpm"] = None
    rows[0]["start_utc"] = rows[0]["start_utc"].tz_convert("Europe/Ljubljana")  # same instant
    rows[1]["tz_offset_min"] = pd.Series([-300]).to_numpy()[0]     # a numpy integer
    table = arrow_from_rows(rows, "runs")
    assert table is not None
    pd.testing.assert_frame_equal(conform(table.to_pandas(), "runs"),
                                  frame_from_rows(rows, "runs"))
    # what only pandas converts, or a key the table does not know: the frame path's turn
    assert arrow_from_rows([{**rows[0], "tz_offset_min": "60"}], "runs") is None
    assert arrow_from_rows([{**rows[0], "my_own_column": 1}], "runs") is None


# --- a partial copy never blocks the whole file (truncated FIT first) -----------------------

#: A real FIT run (fenix 2, 9.01 km, 2,809 records, start 2015-08-15T14:45:08Z).
FENIX2_FIT = SAMPLE / "fit" / "fitparse-activity-small-fenix2-run.fit"
#: What a partial copy is: the first bytes of the file (runlog salvages the records in them).
SIXTH, HALF = 20_306, 60_919
REPLACED = "replaced"  # importer.REPLACED (a string here: the tests must fail, not the import)


def _cut(path: Path, n: int | None = None) -> Path:
    data = FENIX2_FIT.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if n is None else data[:n])
    return path


def _files(store: Store) -> dict[str, dict]:
    table = store.files()
    return {str(row["path"]): row for row in table.to_dict("records")}


def test_the_complete_file_replaces_a_truncated_copy_imported_before(tmp_path: Path) -> None:
    part = _cut(tmp_path / "card" / "run.fit", SIXTH)
    whole = _cut(tmp_path / "watch" / "run.fit")
    log = runlog.open_store(tmp_path / "s")
    store = log.store
    first = import_paths(store, [part])
    assert [o.outcome for o in first.outcomes] == [NEW]
    (run_id,) = store.runs()["run_id"]
    assert store.runs()["distance_m"].item() == pytest.approx(1537, abs=5)
    log.annotate(run_id, knee_pain=4, note="the long one")

    second = import_paths(store, [whole])
    (o,) = second.outcomes
    assert o.outcome == REPLACED, o.reason
    assert o.reason == (f"more complete than the stored copy of run {run_id} from {part} "
                        "(9.01 vs 1.54 km)")
    assert o.run_ids == [run_id] and o.matched_run_id == run_id
    assert second.counts()[REPLACED] == 1 and second.counts()[NEW] == 0
    assert second.new_run_ids == [] and second.replaced_run_ids == [run_id]
    # the same run id, now the whole run, with its annotation
    runs = store.runs()
    assert runs["run_id"].tolist() == [run_id]
    run = runs.iloc[0]
    assert run["distance_m"] == pytest.approx(9007, abs=5)
    assert run["elapsed_s"] == pytest.approx(2832, abs=2)
    assert run["source_file"] == str(whole)
    assert len(store.samples([run_id])) == 2809
    annotation = store.annotations().set_index("run_id").loc[run_id]
    assert annotation["knee_pain"] == 4 and annotation["note"] == "the long one"
    assert store.check() == []
    # the files table: the whole file gives the run, the partial copy is a duplicate of it
    files = _files(store)
    assert files[str(whole)]["outcome"] == NEW and files[str(whole)]["run_ids"] == run_id
    assert files[str(part)]["outcome"] == DUPLICATE and files[str(part)]["run_ids"] == ""
    assert files[str(part)]["matched_run_id"] == run_id
    assert files[str(part)]["reason"] == (f"superseded by {whole}, a more complete "
                                          f"recording of run {run_id}")
    # importing both again changes nothing, and writes nothing
    generation = store.generation()
    again = import_paths(store, [part, whole])
    assert [o.outcome for o in again.outcomes] == [DUPLICATE, DUPLICATE]
    assert {o.matched_run_id for o in again.outcomes} == {run_id}
    assert store.generation() == generation
    assert store.runs()["distance_m"].item() == pytest.approx(9007, abs=5)
    # a copy of the partial file elsewhere is a duplicate by content, never a new fragment
    copy = _cut(tmp_path / "backup" / "run.fit", SIXTH)
    (dup,) = import_paths(store, [copy]).outcomes
    assert dup.outcome == DUPLICATE and dup.matched_run_id == run_id
    assert store.runs()["distance_m"].item() == pytest.approx(9007, abs=5)


def test_the_complete_file_copied_over_the_partial_one_replaces_it(tmp_path: Path) -> None:
    path = _cut(tmp_path / "in" / "run.fit", HALF)
    store = Store(tmp_path / "s")
    import_paths(store, [tmp_path / "in"])
    assert store.runs()["distance_m"].item() == pytest.approx(5091, abs=5)
    _cut(path)  # the copy finished: same path, the whole file
    (o,) = import_paths(store, [tmp_path / "in"]).outcomes
    assert o.outcome == REPLACED
    assert "(9.01 vs 5.09 km)" in o.reason
    assert store.runs()["distance_m"].item() == pytest.approx(9007, abs=5)
    assert len(store.samples()) == 2809 and store.check() == []
    rows = store.files()
    assert sorted(rows["outcome"]) == [DUPLICATE, NEW] and set(rows["path"]) == {str(path)}


def test_a_partial_copy_after_the_complete_file_stays_a_duplicate(tmp_path: Path) -> None:
    whole = _cut(tmp_path / "a" / "run.fit")
    part = _cut(tmp_path / "b" / "run.fit", HALF)
    nearly = _cut(tmp_path / "c" / "run.fit", len(FENIX2_FIT.read_bytes()) - 20)
    store = Store(tmp_path / "s")
    result = import_paths(store, [whole, part, nearly])
    assert [o.outcome for o in result.outcomes] == [NEW, DUPLICATE, DUPLICATE]
    assert "same start second; distance 5.09 vs 9.01 km" in result.outcomes[1].reason
    assert store.runs()["source_file"].tolist() == [str(whole)]
    assert len(store.samples()) == 2809
    assert _files(store)[str(whole)]["outcome"] == NEW


def test_a_copy_within_the_duplicate_tolerance_never_replaces(tmp_path: Path) -> None:
    """A file cut in its last bytes (no session message) keeps the same start second and
    distance: a duplicate whichever comes first, the stored copy stays."""
    nearly = _cut(tmp_path / "a" / "run.fit", len(FENIX2_FIT.read_bytes()) - 20)
    whole = _cut(tmp_path / "b" / "run.fit")
    store = Store(tmp_path / "s")
    result = import_paths(store, [nearly, whole])
    assert [o.outcome for o in result.outcomes] == [NEW, DUPLICATE]
    assert store.runs()["source_file"].tolist() == [str(nearly)]


@pytest.mark.parametrize(("jobs", "batch_files"), [(1, 100), (1, 1), (2, 100), (2, 1)])
def test_partial_and_complete_files_in_one_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  jobs: int, batch_files: int) -> None:
    """Both in one import (the partial ones first): the last, whole file gives the run;
    outcomes, runs and files table are the same whatever ``jobs`` and however the files
    fall into commits."""
    from runlog import importer

    monkeypatch.setattr(importer, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(importer, "POOL_MIN_AHEAD", 1)
    real_has_room = importer._Parser.has_room

    def has_room(self: importer._Parser) -> bool:  # files after the first go to the worker
        deadline = time.monotonic() + 60
        while self.pool is not None and not self.ready and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_has_room(self)

    monkeypatch.setattr(importer._Parser, "has_room", has_room)
    folder = tmp_path / "in"
    sixth = _cut(folder / "1-sixth.fit", SIXTH)
    half = _cut(folder / "2-half.fit", HALF)
    whole = _cut(folder / "3-whole.fit")
    shutil.copy(LANDAL_FIT, folder / "4-other.fit")
    again_half = _cut(folder / "5-half-again.fit", HALF)
    store = Store(tmp_path / "s")
    result = import_paths(store, [folder], jobs=jobs, batch_files=batch_files)
    assert result.workers == jobs - 1

    outcomes = [(Path(o.path).name, o.outcome) for o in result.outcomes]
    assert outcomes == [("1-sixth.fit", NEW), ("2-half.fit", REPLACED),
                        ("3-whole.fit", REPLACED), ("4-other.fit", NEW),
                        ("5-half-again.fit", DUPLICATE)]
    (run_id,) = result.outcomes[0].run_ids
    assert result.outcomes[1].reason.endswith(f"from {sixth} (5.09 vs 1.54 km)")
    assert result.outcomes[2].reason.endswith(f"from {half} (9.01 vs 5.09 km)")
    assert "same content as" in result.outcomes[4].reason
    assert result.counts() == {NEW: 2, REPLACED: 2, DUPLICATE: 1, SKIPPED: 0, FAILED: 0,
                               "new_runs": 2, "ignored": 0}
    runs = store.runs().set_index("run_id")
    assert len(runs) == 2 and runs.loc[run_id, "source_file"] == str(whole)
    assert runs.loc[run_id, "distance_m"] == pytest.approx(9007, abs=5)
    assert len(store.samples([run_id])) == 2809
    bins = store.cadence_bins()
    assert bins.groupby("run_id").size().index.tolist() == sorted(runs.index)
    assert not bins.duplicated(["run_id", "speed_bin_mps"]).any()
    assert store.check() == []
    files = {Path(p).name: (r["outcome"], r["run_ids"]) for p, r in _files(store).items()}
    assert files == {"1-sixth.fit": (DUPLICATE, ""), "2-half.fit": (DUPLICATE, ""),
                     "3-whole.fit": (NEW, run_id),
                     "4-other.fit": (NEW, runs.index[runs.index != run_id].item())}
    assert again_half.exists()
    # and re-importing is a no-op
    generation = store.generation()
    assert {o.outcome for o in import_paths(store, [folder], jobs=jobs).outcomes} == \
        {DUPLICATE}
    assert store.generation() == generation


def test_cli_names_the_replaced_run_and_counts_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from runlog.cli import cli

    part = _cut(tmp_path / "a" / "run.fit", SIXTH)
    whole = _cut(tmp_path / "b" / "run.fit")
    runner = CliRunner()
    store = str(tmp_path / "s")
    first = runner.invoke(cli, ["--store", store, "import", str(part)])
    assert "1 file: 1 new (1 run), 0 duplicate" in first.output
    result = runner.invoke(cli, ["--store", store, "import", str(whole)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"replaced  {whole}: more complete than the stored copy of run ")
    assert lines[0].endswith(f" from {part} (9.01 vs 1.54 km)")
    assert "1 file: 0 new (0 runs), 1 replaced, 0 duplicate, 0 skipped, 0 failed" in \
        result.output
    assert "  9.01" in result.output.split("------")[-1]  # the run's new row is listed


# --- empty files and copies of failed files are failures, never duplicates ------------------

def _png() -> bytes:
    """A real (1×1, grey) PNG image."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


def test_empty_files_always_fail_as_empty(tmp_path: Path) -> None:
    import gzip

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("empty.fit", "empty.gpx", "empty.tcx", "empty0.fit.gz"):
        (folder / name).write_bytes(b"")
    (folder / "empty1.gpx.gz").write_bytes(gzip.compress(b""))  # decompresses to nothing
    shutil.copy(LANDAL_FIT, folder / "run.fit")
    store = Store(tmp_path / "s")
    result = import_paths(store, [folder])
    outcomes = {Path(o.path).name: o for o in result.outcomes}
    assert outcomes.pop("run.fit").outcome == NEW
    assert {n: (o.outcome, o.reason) for n, o in outcomes.items()} == {
        n: (FAILED, "empty file (0 bytes)") for n in outcomes}
    assert len(outcomes) == 5
    assert result.counts()[DUPLICATE] == 0 and result.counts()[FAILED] == 5
    files = store.files()
    failed = files[files["outcome"] == FAILED]
    assert sorted(failed["path"].map(lambda p: Path(p).name)) == sorted(outcomes)
    assert (failed["reason"] == "empty file (0 bytes)").all()
    # tried again next time, and still empty
    again = import_paths(store, [folder])
    assert [o.reason for o in again.outcomes if o.outcome == FAILED] == \
        ["empty file (0 bytes)"] * 5


def test_a_copy_of_a_failed_file_fails_too(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    png = _png()
    (folder / "a-photo.gpx").write_bytes(png)
    (folder / "b-photo-copy.gpx").write_bytes(png)   # the same bytes, the same format
    (folder / "c-x.fit").write_bytes(png)            # the same bytes under a FIT name
    store = Store(tmp_path / "s")
    result = import_paths(store, [folder])
    by_name = {Path(o.path).name: o for o in result.outcomes}
    assert [o.outcome for o in by_name.values()] == [FAILED] * 3
    assert result.counts()[DUPLICATE] == 0
    first = by_name["a-photo.gpx"]
    assert first.reason.startswith("XML error")
    copy = by_name["b-photo-copy.gpx"]
    assert copy.reason == f"{first.reason} (same content as {first.path})"
    assert copy.offset == first.offset and copy.sha256 == first.sha256
    # read as what its name says, as it would be alone (and in a later import)
    x_fit = by_name["c-x.fit"]
    assert x_fit.reason == "not a FIT file (bad header)" and x_fit.offset == 0
    # a later import: failed content is read again, never a duplicate of the failed file
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "photo.gpx").write_bytes(png)
    (later,) = import_paths(store, [tmp_path / "later"]).outcomes
    assert (later.outcome, later.reason) == (FAILED, first.reason)


def test_a_copy_of_an_imported_or_skipped_file_is_still_a_duplicate(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(LANDAL_FIT, folder / "a-run.fit")
    shutil.copy(LANDAL_FIT, folder / "b-run-copy.fit")
    settings = REPO / "tests" / "data" / "fit" / "fitparse-rs-Settings.fit"
    shutil.copy(settings, folder / "c-settings.fit")
    shutil.copy(settings, folder / "d-settings-copy.fit")
    shutil.copy(LANDAL_FIT, folder / "e-run-as.gpx")  # another format's name: read, then
    result = import_paths(Store(tmp_path / "s"), [folder])  # the first file's outcome
    got = [(Path(o.path).name, o.outcome, o.reason) for o in result.outcomes]
    assert [g[:2] for g in got] == [("a-run.fit", NEW), ("b-run-copy.fit", DUPLICATE),
                                    ("c-settings.fit", SKIPPED),
                                    ("d-settings-copy.fit", DUPLICATE),
                                    ("e-run-as.gpx", DUPLICATE)]
    assert got[1][2] == f"same content as {folder / 'a-run.fit'} (identical file)"
    assert got[3][2] == f"same content as {folder / 'c-settings.fit'} (identical file)"
    assert got[4][2] == f"same content as {folder / 'a-run.fit'} (identical file)"
