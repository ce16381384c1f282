"""Find activity files in what a runner hands over: files, folders, .gz, .zip, whole exports.

Everything is read, never extracted: zip members and gzip streams are decompressed in memory
with a hard cap on size and ratio (zip/gzip bombs), and nothing is ever written to disk here.
A Strava bulk export (a folder or zip with ``activities.csv``) is joined to its files through
the CSV's ``Filename`` column — the Activity ID is not the file name — and lends each file its
activity name, type and gear. A Garmin "export all data" archive keeps its activity files in
nested zips under ``DI_CONNECT/DI-Connect-Uploaded-Files``; those are opened one level deep.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from runlog.errors import FileReadError

ACTIVITY_FORMATS = ("fit", "gpx", "tcx")
#: Largest decompressed file accepted [bytes]. A 10-hour 1 Hz FIT file is ~2 MB; GPX ~20 MB.
MAX_DECOMPRESSED_BYTES = 256 * 1024 * 1024
#: Largest decompressed/compressed ratio accepted for members above 1 MiB (bomb guard).
MAX_COMPRESSION_RATIO = 200
#: How many archives deep runlog follows (Garmin exports nest zips once).
MAX_ARCHIVE_DEPTH = 2
#: Folders of exports that never hold the runner's own activities.
NON_ACTIVITY_FOLDERS = frozenset({"routes", "segments", "media", "clubs", "__macosx"})

_CHUNK = 1 << 20
#: What reading a damaged archive member can raise (zipfile, zlib, gzip): NotImplementedError
#: (unknown compression method or zip version) is a RuntimeError, a bad seek an OSError.
_ARCHIVE_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, ValueError)


@dataclass
class SourceFile:
    """One candidate activity file, wherever it lives (disk, gzip, zip member)."""

    display: str                      # path shown to the runner; archive members as a.zip!m
    fmt: str | None                   # fit | gpx | tcx, None when not an activity format
    size_bytes: int | None            # stored size (compressed for .gz / zip members)
    mtime_ns: int | None              # modification time, when there is one
    opener: Callable[[], bytes] = field(repr=False)
    extra: dict[str, str] = field(default_factory=dict)  # export metadata: name, type, gear

    def read_bytes(self) -> bytes:
        """The file's decompressed bytes; FileReadError naming the file on any problem."""
        try:
            return self.opener()
        except FileReadError as err:
            err.path = err.path or self.display
            raise
        except _ARCHIVE_ERRORS as err:
            raise FileReadError(f"cannot read: {err}", path=self.display) from err


@dataclass
class Ignored:
    """A file seen but not an activity format (photos, JSON, ...): counted, not imported.

    ``problem``: something the runner should hear about by name, not only in a count (a
    broken link, a folder that cannot be read, a file named on the command line that is no
    activity, a file Strava's ``activities.csv`` lists but the export lacks).
    """

    display: str
    reason: str
    problem: bool = False


def activity_format(name: str) -> tuple[str | None, bool]:
    """(format, gzipped) from a file name: ``run.fit.gz`` → ('fit', True)."""
    lower = name.lower()
    gz = lower.endswith(".gz")
    if gz:
        lower = lower[:-3]
    suffix = lower.rsplit(".", 1)[-1] if "." in lower else ""
    return (suffix if suffix in ACTIVITY_FORMATS else None), gz


def sniff_format(head: bytes) -> str | None:
    """Recognise a format from the first bytes (for files whose name says nothing)."""
    if len(head) >= 12 and head[8:12] == b".FIT":
        return "fit"
    text = head[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<gpx" in text:
        return "gpx"
    if b"<trainingcenterdatabase" in text:
        return "tcx"
    return None


def gunzip_bounded(data: bytes, name: str) -> bytes:
    """Decompress gzip bytes with a cap on output size and ratio (gzip bomb guard)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    total = 0
    view = data
    while True:
        chunk = inflater.decompress(view, _CHUNK)
        total += len(chunk)
        _check_expansion(total, len(data), name)
        parts.append(chunk)
        view = inflater.unconsumed_tail
        if inflater.eof:
            # Concatenated gzip members are legal; continue with the rest.
            rest = inflater.unused_data
            if rest.strip(b"\x00"):
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                view = rest
                continue
            break
        if not view and not chunk:
            raise FileReadError("truncated gzip stream", path=name)
    return b"".join(parts)


def _check_expansion(total: int, compressed: int, name: str) -> None:
    if total > MAX_DECOMPRESSED_BYTES:
        raise FileReadError(
            f"refused: decompresses to more than {MAX_DECOMPRESSED_BYTES // 2**20} MiB "
            "(possible decompression bomb)", path=name)
    if total > _CHUNK and total > MAX_COMPRESSION_RATIO * max(compressed, 1):
        raise FileReadError(
            f"refused: compression ratio above {MAX_COMPRESSION_RATIO}:1 "
            "(possible decompression bomb)", path=name)


def _maybe_gunzip(data: bytes, gz: bool, name: str) -> bytes:
    if not data:  # an empty file, ``.gz`` or not: the importer fails it as "empty file"
        return data
    if gz or data[:2] == b"\x1f\x8b":
        return gunzip_bounded(data, name)
    return data


def _read_disk(path: Path, gz: bool) -> Callable[[], bytes]:
    def opener() -> bytes:
        size = path.stat().st_size
        if size > MAX_DECOMPRESSED_BYTES:
            raise FileReadError(f"refused: file larger than {MAX_DECOMPRESSED_BYTES // 2**20} "
                                "MiB", path=str(path))
        return _maybe_gunzip(path.read_bytes(), gz, str(path))
    return opener


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, gz: bool,
                 display: str) -> Callable[[], bytes]:
    def opener() -> bytes:
        parts: list[bytes] = []
        total = 0
        with archive.open(info) as member:
            while chunk := member.read(_CHUNK):
                total += len(chunk)
                _check_expansion(total, info.compress_size, display)
                parts.append(chunk)
        return _maybe_gunzip(b"".join(parts), gz, display)
    return opener


# --- Strava bulk export ---------------------------------------------------------------------

def read_strava_activities_csv(data: bytes) -> dict[str, dict[str, str]]:
    """Map each ``Filename`` in a Strava ``activities.csv`` to its name, type and gear.

    Strava's CSV repeats some headers (Elapsed Time, Distance); the first of each is kept.
    Returns ``{"activities/123.fit.gz": {"name": ..., "type": ..., "gear": ..., "id": ...}}``.
    """
    text = data.decode("utf-8-sig", errors="replace")
    rows = csv.reader(io.StringIO(text))
    try:
        header = next(rows)
    except StopIteration:
        return {}
    first: dict[str, int] = {}
    for i, col in enumerate(header):
        first.setdefault(col.strip(), i)
    if "Filename" not in first:
        return {}

    def cell(row: list[str], col: str) -> str:
        i = first.get(col)
        return row[i].strip() if i is not None and i < len(row) else ""

    out: dict[str, dict[str, str]] = {}
    for row in rows:
        filename = cell(row, "Filename")
        if not filename:
            continue
        gear = cell(row, "Activity Gear") or cell(row, "Gear")
        meta = {"name": cell(row, "Activity Name"), "type": cell(row, "Activity Type"),
                "gear": gear, "id": cell(row, "Activity ID"), "export": "strava"}
        out[str(PurePosixPath(filename))] = {k: v for k, v in meta.items() if v}
    return out


# --- discovery ------------------------------------------------------------------------------

def discover(paths: Iterable[str | os.PathLike]) -> Iterator[SourceFile | Ignored]:
    """Yield every candidate activity file under ``paths`` (files, folders, .zip, .gz).

    Folders are walked recursively in sorted order without following directory symlinks;
    files of other types are yielded as :class:`Ignored` so the import can count them.
    A path that does not exist raises FileReadError (a usage mistake, reported at once).
    Every path yielded is absolute, as the store records it.
    """
    seen: set[str] = set()  # a path given twice (or a file and its folder) is read once
    said: set[tuple[str, str]] = set()  # ... and what is ignored is said once
    for raw in paths:
        if not Path(raw).exists():
            raise FileReadError("no such file or folder", path=str(raw))
        # Absolute (symlinks kept, '..' folded): the files table and each run's source_file
        # then name the original wherever runlog runs next (`runlog store rebuild`).
        path = Path(os.path.abspath(raw))
        found = (_walk_folder(path, seen) if path.is_dir() else
                 _from_disk_file(path, strava={}, explicit=True, seen=seen))
        for item in found:
            if isinstance(item, Ignored):
                if (item.display, item.reason) in said:
                    continue
                said.add((item.display, item.reason))
            yield item


def _walk_folder(root: Path, seen: set[str]) -> Iterator[SourceFile | Ignored]:
    strava: dict[str, dict[str, str]] = {}
    unreadable: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable.append,
                                                followlinks=False):
        yield from _unreadable_folders(unreadable)
        dirnames[:] = sorted(d for d in dirnames if d.lower() not in NON_ACTIVITY_FOLDERS)
        here = Path(dirpath)
        if "activities.csv" in filenames:
            try:
                listing = read_strava_activities_csv((here / "activities.csv").read_bytes())
            except OSError:
                listing = {}
            strava.update({str(here / name): meta for name, meta in listing.items()})
        for name in sorted(filenames):
            if name == "activities.csv" and strava:
                continue
            yield from _from_disk_file(here / name, strava=strava, explicit=False,
                                       seen=seen)
    yield from _unreadable_folders(unreadable)
    for listed in strava:
        if not os.path.lexists(listed):
            yield Ignored(listed, "listed in Strava's activities.csv, but not in the export",
                          problem=True)


def _unreadable_folders(errors: list[OSError]) -> Iterator[Ignored]:
    """The folders os.walk could not list (it reports them through ``onerror``)."""
    for err in errors:
        yield Ignored(str(err.filename), f"cannot read the folder: {err.strerror}",
                      problem=True)
    errors.clear()


def _from_disk_file(path: Path, strava: dict[str, dict[str, str]],
                    explicit: bool, seen: set[str]) -> Iterator[SourceFile | Ignored]:
    key = os.path.abspath(path)
    if key in seen:
        return
    seen.add(key)
    try:
        st = path.lstat()
    except OSError as err:
        yield Ignored(str(path), f"cannot stat: {err.strerror}", problem=True)
        return
    if stat.S_ISLNK(st.st_mode):
        try:
            st = path.stat()
        except OSError:
            yield Ignored(str(path), "broken symbolic link", problem=True)
            return
    if not stat.S_ISREG(st.st_mode):
        yield Ignored(str(path), "not a regular file")
        return
    lower = path.name.lower()
    if lower.endswith(".zip"):
        yield from _walk_zip_path(path, depth=1)
        return
    fmt, gz = activity_format(path.name)
    if fmt is None and explicit:
        fmt = _sniff_disk(path)
    if fmt is None:
        yield Ignored(str(path), f"not an activity file ({path.suffix or 'no extension'})",
                      problem=explicit)
        return
    yield SourceFile(str(path), fmt, st.st_size, st.st_mtime_ns, _read_disk(path, gz),
                     extra=strava.get(str(path), {}))


def _sniff_disk(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 4096)
        except zlib.error:
            return None
    return sniff_format(head)


def _walk_zip_path(path: Path, depth: int) -> Iterator[SourceFile | Ignored]:
    try:
        archive = zipfile.ZipFile(path)
    except _ARCHIVE_ERRORS as err:
        yield SourceFile(str(path), "zip", None, None, _raise(f"not a readable zip archive: "
                                                                f"{err}", str(path)))
        return
    mtime = path.stat().st_mtime_ns
    yield from _walk_zip(archive, str(path), depth, mtime)


def _raise(reason: str, display: str) -> Callable[[], bytes]:
    def opener() -> bytes:
        raise FileReadError(reason, path=display)
    return opener


def _walk_zip(archive: zipfile.ZipFile, display: str, depth: int,
              mtime_ns: int | None) -> Iterator[SourceFile | Ignored]:
    infos = [i for i in archive.infolist() if not i.is_dir()]
    strava: dict[str, dict[str, str]] = {}
    for info in infos:
        if PurePosixPath(info.filename).name == "activities.csv":
            try:
                listing = read_strava_activities_csv(
                    _read_member(archive, info, False, f"{display}!{info.filename}")())
            except (FileReadError, *_ARCHIVE_ERRORS):
                listing = {}
            base = PurePosixPath(info.filename).parent
            strava.update({str(base / name): meta for name, meta in listing.items()})
    for info in sorted(infos, key=lambda i: i.filename):
        member = info.filename
        shown = f"{display}!{member}"
        parts = PurePosixPath(member).parts
        if any(p.lower() in NON_ACTIVITY_FOLDERS for p in parts[:-1]):
            continue
        if PurePosixPath(member).name == "activities.csv" and strava:
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            yield Ignored(shown, "symbolic link inside an archive: not followed")
            continue
        lower = member.lower()
        if lower.endswith(".zip"):
            if depth >= MAX_ARCHIVE_DEPTH:
                yield Ignored(shown, "archive nested too deep")
                continue
            try:
                inner_bytes = _read_member(archive, info, False, shown)()
                inner = zipfile.ZipFile(io.BytesIO(inner_bytes))
            except (FileReadError, *_ARCHIVE_ERRORS) as err:
                # A damaged nested zip (Garmin export) is that member's failure, never the
                # whole import's: zlib, OSError and NotImplementedError used to escape here.
                reason = err.one_line() if isinstance(err, FileReadError) else str(err)
                yield SourceFile(shown, "zip", info.compress_size, mtime_ns,
                                 _raise(f"not a readable zip archive: {reason}", shown))
                continue
            yield from _walk_zip(inner, shown, depth + 1, mtime_ns)
            continue
        fmt, gz = activity_format(member)
        if fmt is None:
            yield Ignored(shown, f"not an activity file ({PurePosixPath(member).suffix or '-'})")
            continue
        yield SourceFile(shown, fmt, info.compress_size, mtime_ns,
                         _read_member(archive, info, gz, shown),
                         extra=strava.get(str(PurePosixPath(member)), {}))
