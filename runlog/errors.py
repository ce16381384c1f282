"""Typed errors. The CLI turns each into one line naming the file and the reason."""

from __future__ import annotations

from pathlib import PurePath


class RunlogError(Exception):
    """Base of every error runlog raises on purpose.

    ``path`` names the file (or archive member) concerned, ``offset`` the byte offset
    where a binary reader gave up, when known.
    """

    def __init__(self, reason: str, path: str | PurePath | None = None,
                 offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.offset = offset

    def one_line(self) -> str:
        """``path: reason (at byte N)`` on one line, as the CLI prints it."""
        text = " ".join(self.reason.split())
        if self.offset is not None:
            text = f"{text} (at byte {self.offset})"
        return f"{self.path}: {text}" if self.path else text


class FileReadError(RunlogError):
    """A file (or archive member) could not be read: corrupt, truncated, wrong format, hostile."""


class SkippedFile(RunlogError):
    """A readable file that is deliberately not imported (not a run, not an activity)."""


class StoreError(RunlogError):
    """The store on disk is missing, damaged or of an unknown version."""


class ManifestLostError(StoreError):
    """The store's ``manifest.json`` is damaged, or missing beside the store's data files:
    ``runlog store rebuild`` writes a new one from the files."""


class StoreBusyError(StoreError):
    """Another runlog process holds the store's write lock."""


class RunNotFoundError(RunlogError):
    """A run id, prefix or ``last`` that matches no run (or more than one)."""


class InputError(RunlogError):
    """A value the runner gave is out of range or malformed."""
