"""Discovery of activity files in folders, .gz, .zip and exports; bomb and link guards."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from runlog.errors import FileReadError
from runlog.sources import (
    MAX_COMPRESSION_RATIO,
    Ignored,
    SourceFile,
    activity_format,
    discover,
    gunzip_bounded,
    read_strava_activities_csv,
    sniff_format,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE_FIT = REPO / "data" / "sample" / "fit" / "geo-activity-playground-Laufen_Landal_Park.fit"
SAMPLE_GPX_GZ = next((REPO / "data" / "sample" / "runpandas-session").glob("*.gpx.gz"))
STRAVA = "martin-ueding__geo-activity-playground/testdata/Strava Export"


def sources(paths) -> list[SourceFile]:
    return [s for s in discover(paths) if isinstance(s, SourceFile)]


def test_activity_format_by_name() -> None:
    assert activity_format("a/Run.FIT") == ("fit", False)
    assert activity_format("x.gpx.gz") == ("gpx", True)
    assert activity_format("notes.txt") == (None, False)


def test_sniff_format_from_content() -> None:
    assert sniff_format(SAMPLE_FIT.read_bytes()[:64]) == "fit"
    assert sniff_format(b"\xef\xbb\xbf  <?xml version='1.0'?><gpx>") == "gpx"
    assert sniff_format(b"<TrainingCenterDatabase xmlns='x'>") == "tcx"
    assert sniff_format(b"hello") is None


def test_folder_recursive_sorted_and_others_ignored(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    shutil.copy(SAMPLE_FIT, tmp_path / "b" / "c" / "run.fit")
    shutil.copy(SAMPLE_GPX_GZ, tmp_path / "a.gpx.gz")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")
    found = list(discover([tmp_path]))
    files = [f for f in found if isinstance(f, SourceFile)]
    assert [Path(f.display).name for f in files] == ["a.gpx.gz", "run.fit"]
    assert [f.fmt for f in files] == ["gpx", "fit"]
    ignored = [f for f in found if isinstance(f, Ignored)]
    assert len(ignored) == 1 and "photo.jpg" in ignored[0].display


def test_paths_come_out_absolute_as_the_store_records_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in").mkdir()
    shutil.copy(SAMPLE_FIT, tmp_path / "in" / "run.fit")
    monkeypatch.chdir(tmp_path)
    found = sources(["in", "in/../in/run.fit"])  # the same file twice: read once
    assert [f.display for f in found] == [str(tmp_path / "in" / "run.fit")]


def test_gz_is_decompressed_transparently() -> None:
    (src,) = sources([SAMPLE_GPX_GZ])
    data = src.read_bytes()
    assert b"<gpx" in data[:500]
    assert data == gzip.decompress(SAMPLE_GPX_GZ.read_bytes())


def test_zip_members_read_without_extracting(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(SAMPLE_FIT, "runs/2022/run.fit")
        zf.writestr("runs/readme.txt", "hi")
    before = set(os.listdir(tmp_path))
    files = sources([archive])
    assert [f.display for f in files] == [f"{archive}!runs/2022/run.fit"]
    assert files[0].read_bytes() == SAMPLE_FIT.read_bytes()
    assert set(os.listdir(tmp_path)) == before  # nothing written beside the archive


def test_nested_zip_one_level_garmin_style(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.write(SAMPLE_FIT, "12345_ACTIVITY.fit")
    outer = tmp_path / "garmin.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.writestr("DI_CONNECT/DI-Connect-Uploaded-Files/UploadedFiles_0-_Part1.zip",
                    inner.getvalue())
    (src,) = sources([outer])
    assert src.display.endswith("UploadedFiles_0-_Part1.zip!12345_ACTIVITY.fit")
    assert src.read_bytes() == SAMPLE_FIT.read_bytes()


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) * MAX_COMPRESSION_RATIO < 64 * 1024 * 1024
    with pytest.raises(FileReadError, match="decompression bomb"):
        gunzip_bounded(bomb, "bomb.gpx.gz")


def test_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.gpx", b"\0" * (64 * 1024 * 1024))
    (src,) = sources([archive])
    with pytest.raises(FileReadError, match="decompression bomb") as err:
        src.read_bytes()
    assert "bomb.zip!huge.gpx" in err.value.one_line()


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gpx.gz"
    cut.write_bytes(SAMPLE_GPX_GZ.read_bytes()[:300])
    (src,) = sources([cut])
    with pytest.raises(FileReadError) as err:
        src.read_bytes()
    assert str(cut) in err.value.one_line()


def test_zip_member_paths_with_dotdot_and_symlinks_never_touch_disk(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escape.gpx", "<gpx/>")
        link = zipfile.ZipInfo("link.fit")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    found = list(discover([archive]))
    ignored = [f for f in found if isinstance(f, Ignored)]
    assert any("symbolic link" in f.reason for f in ignored)
    escape = [f for f in found if isinstance(f, SourceFile)]
    assert escape[0].read_bytes() == b"<gpx/>"  # read in memory, never extracted
    assert not (tmp_path.parent / "escape.gpx").exists()


def test_directory_symlink_loops_are_not_followed(tmp_path: Path) -> None:
    shutil.copy(SAMPLE_FIT, tmp_path / "run.fit")
    (tmp_path / "loop").symlink_to(tmp_path)
    assert len(sources([tmp_path])) == 1


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileReadError, match="no such file"):
        list(discover([tmp_path / "nope"]))


def test_strava_csv_first_of_repeated_headers_and_filename_key() -> None:
    csv_bytes = (b"Activity ID,Activity Name,Activity Type,Distance,Activity Gear,Filename,"
                 b"Distance\n42,Morning Run,Run,3.3,Pegasus 40,activities/99.fit.gz,3300\n")
    meta = read_strava_activities_csv(csv_bytes)
    assert meta == {"activities/99.fit.gz": {"name": "Morning Run", "type": "Run",
                                             "gear": "Pegasus 40", "id": "42",
                                             "export": "strava"}}


def test_real_strava_export_folder_joins_csv_by_filename(corpus: Path) -> None:
    files = sources([corpus / STRAVA])
    assert len(files) == 1
    (src,) = files
    assert src.display.endswith("activities/12866632127.fit.gz")
    assert src.fmt == "fit"
    assert src.extra["name"] == "Laufen Landal Park"
    assert src.extra["type"] == "Run"
    assert src.extra["id"] == "12070555079"  # the Activity ID is not the file name
    assert src.read_bytes()[8:12] == b".FIT"


def test_real_strava_export_zipped(corpus: Path, tmp_path: Path) -> None:
    root = corpus / STRAVA
    archive = tmp_path / "export_123.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in root.rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
        zf.writestr("Strava Export/routes/route1.gpx", "<gpx/>")
    files = sources([archive])
    assert len(files) == 1  # routes/ skipped, activities.csv consumed as metadata
    assert files[0].extra["name"] == "Laufen Landal Park"


def test_an_empty_gz_file_or_member_reads_as_empty(tmp_path: Path) -> None:
    """0 bytes is an empty file whatever its name says (the importer fails it as "empty
    file"), not a damaged gzip stream."""
    (tmp_path / "run.fit.gz").write_bytes(b"")
    (tmp_path / "run.gpx").write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as archive:
        archive.writestr("activities/1.gpx.gz", b"")
        archive.writestr("activities/2.tcx", b"")
        archive.writestr("activities/3.fit.gz", gzip.compress(b""))
    found = sources([tmp_path])
    assert [Path(s.display.split("!")[-1]).name for s in found] == [
        "1.gpx.gz", "2.tcx", "3.fit.gz", "run.fit.gz", "run.gpx"]
    assert [s.read_bytes() for s in found] == [b""] * 5


def test_a_path_given_twice_or_inside_a_folder_given_too_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    shutil.copy(SAMPLE_FIT, tmp_path / "a" / "run.fit")
    run = tmp_path / "a" / "run.fit"
    files = sources([run, tmp_path, str(run), tmp_path / "a" / ".." / "a" / "run.fit"])
    assert [f.display for f in files] == [str(run)]


def test_what_the_runner_should_hear_about_is_a_problem_not_only_a_count(
        tmp_path: Path, monkeypatch) -> None:
    """A broken link, an unreadable folder and a file named on the command line that is no
    activity are problems (the CLI names them); a photo inside a folder is only counted."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "photo.jpg").write_bytes(b"\xff\xd8")
    (tmp_path / "in" / "gone.fit").symlink_to(tmp_path / "nowhere.fit")
    (tmp_path / "notes.txt").write_text("not a run")
    real_walk = os.walk

    def walk_with_a_locked_folder(top, onerror=None, followlinks=False):
        # a folder chmod 000 (root reads it anyway, so the refusal is simulated)
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "in" / "locked")))
        yield from real_walk(top, onerror=onerror, followlinks=followlinks)

    monkeypatch.setattr("runlog.sources.os.walk", walk_with_a_locked_folder)
    found = {Path(i.display).name: (i.reason, i.problem)
             for i in discover([tmp_path / "in", tmp_path / "notes.txt"])
             if isinstance(i, Ignored)}
    assert found == {
        "locked": ("cannot read the folder: Permission denied", True),
        "gone.fit": ("broken symbolic link", True),
        "photo.jpg": ("not an activity file (.jpg)", False),
        "notes.txt": ("not an activity file (.txt)", True),
    }


def test_a_file_strava_lists_but_the_export_lacks_is_named(corpus: Path,
                                                           tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(corpus / STRAVA, export)
    (listed,) = sources([export])
    assert not [i for i in discover([export]) if isinstance(i, Ignored) and i.problem]
    Path(listed.display).unlink()
    problems = [i for i in discover([export]) if isinstance(i, Ignored) and i.problem]
    assert [(i.display, i.reason) for i in problems] == [
        (listed.display, "listed in Strava's activities.csv, but not in the export")]
