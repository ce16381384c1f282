"""Readers: one module per format, each turning one file's bytes into Activity objects.

They know nothing of the store. Every problem leaves as :class:`~runlog.errors.FileReadError`
(unreadable) or :class:`~runlog.errors.SkippedFile` (readable, but not an activity).
"""

from __future__ import annotations

from runlog.activity import Activity
from runlog.errors import FileReadError

__all__ = ["read_activities"]


def read_activities(data: bytes, fmt: str | None, name: str) -> list[Activity]:
    """Read ``data`` (already decompressed) in format ``fmt`` ('fit', 'gpx', 'tcx')."""
    if not data:
        raise FileReadError("empty file (0 bytes)", path=name)
    if fmt == "fit":
        from runlog.readers.fit import read_fit

        return read_fit(data, name)
    if fmt == "gpx":
        from runlog.readers.gpx import read_gpx

        return read_gpx(data, name)
    if fmt == "tcx":
        from runlog.readers.tcx import read_tcx

        return read_tcx(data, name)
    raise FileReadError(f"unsupported format {fmt!r}", path=name)
