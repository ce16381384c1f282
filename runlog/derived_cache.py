"""A cache of derived results (the risk assessment, the chart's data, rendered reports and
charts) in the store.

Everything here can be recomputed from the store, so the cache may be lost, damaged or
unwritable at any time: a missing, corrupt or mismatching entry is a miss (recompute), and a
failed write is ignored (a read-only store still answers). It is never stale: an entry is
found only under a key that fingerprints everything the result depends on:

* the **store state**: the bytes of ``manifest.json`` (generation, table file names, profile:
  every commit, annotation and profile change writes a new one) and the size and mtime of
  every file it lists (a damaged or replaced table is a miss, so it raises as without cache);
* the **code**: the contents of every ``.py`` file of the ``runlog`` package (an upgraded or
  edited runlog never serves an older result) and the Python version;
* the **libraries** the result is computed with (numpy, pandas, pyarrow; for charts also
  matplotlib, Pillow and the matplotlib settings and font list that apply: see
  :func:`chart_environment`), by the location, size and mtime of their files;
* the **question**: the command and its options, given by the caller.

Nothing derived depends on today's date, the time zone or the locale: local times come from
the offsets stored with each run.

An import that only records files (duplicates, failures, other sports) commits a new store
state with the same runs, annotations, cadence bins and profile. The API then carries the
assessment's entries over to the new state (:func:`inputs_state` is the same before and
after; :meth:`DerivedCache.carry_over`): the same bytes under the new key, so the next report
does not compute the assessment again.

Layout: ``<store>/cache/derived/<state>/<name>-<key>.bin``: one folder per store state
(``<state>``, a hash of the store state above, also starts every key); writing into a new
state's folder removes the folders of older states. ``cache/derived`` holds a ``.gitignore``
(``*``) and a ``CACHEDIR.TAG``, so neither git nor backup tools that honour the tag pick it
up. The store's own code never looks into ``cache/`` (it collects only its own table files at
the top level), and ``runlog store rebuild`` clears this cache.

An entry file is ``MAGIC``, the full key, the SHA-256 of the payload and its length, one line
each, then the payload; written to a temporary file and ``os.replace``\\ d into place, so a
reader sees a whole entry or none. Frames are stored as Arrow IPC files with their column
dtypes, checked on reading.

This module imports only the standard library at import time: the CLI uses it to answer from
the cache without loading pandas.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import io
import json
import os
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: Where the cache lives inside a store directory.
CACHE_DIR = Path("cache") / "derived"
#: First line of every entry file (bump the number when the entry format changes).
MAGIC = b"runlog-derived-cache 1"
#: Libraries every derived result is computed with.
BASE_LIBRARIES = ("numpy", "pandas", "pyarrow")
#: Libraries a rendered chart also depends on.
CHART_LIBRARIES = ("matplotlib", "PIL")
#: Buffer compression of cached frames (Arrow IPC files): lz4 writes and reads fastest here.
FRAME_COMPRESSION = "lz4"
#: Hex digits of the state hash used as folder name.
STATE_DIGITS = 24
#: Hex digits of the key used in entry file names (the full key is inside the file).
NAME_DIGITS = 24
#: The manifest of a store (see :mod:`runlog.store`).
MANIFEST = "manifest.json"


def current_manifest(root: Path) -> dict | None:
    """The store's manifest when this runlog wrote its format and schema version, else None:
    the pandas-free readers of cached results (:mod:`runlog.cached_report`,
    :mod:`runlog.chart_cache`) answer only then, and leave anything else to the store."""
    from runlog.schema import STORE_FORMAT_NAME, STORE_SCHEMA_VERSION

    manifest = json.loads((root / MANIFEST).read_bytes())
    if (manifest.get("format") != STORE_FORMAT_NAME
            or manifest.get("schema_version") != STORE_SCHEMA_VERSION):
        return None
    return manifest


_IGNORE_FILES = {
    ".gitignore": "# runlog's derived-results cache: recomputable, never committed\n*\n",
    "CACHEDIR.TAG": ("Signature: 8a477f597d28d172789f06886806bc55\n"
                     "# This file is a cache directory tag created by runlog.\n"
                     "# For information about cache directory tags see https://bford.info/cachedir/\n"),
}


def _sha256(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _stat_text(path: Path | str) -> str:
    """'size:mtime_ns' of a file, or '-' when it cannot be seen."""
    try:
        st = os.stat(path)
    except OSError:
        return "-"
    return f"{st.st_size}:{st.st_mtime_ns}"


def store_state(root: Path) -> str | None:
    """Fingerprint of a store's committed state: the manifest's bytes and the size and mtime
    of every file it lists. None when there is no manifest, it cannot be parsed, or a listed
    file is missing (then nothing is cached and the store's own errors surface)."""
    try:
        raw = (root / MANIFEST).read_bytes()
        manifest = json.loads(raw)
        names = [n for n in manifest["tables"].values() if n]
        names += [part["file"] for part in manifest["samples_parts"]]
        stats = []
        for name in sorted(names):
            st = os.stat(root / name)
            stats.append(f"{name}={st.st_size}:{st.st_mtime_ns}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return _sha256(raw, "\n".join(stats))


#: The tables the assessment (and the chart's data cached with it) is computed from; with the
#: profile and the schema version, its inputs. The files table is not one of them.
ASSESSMENT_TABLES = ("runs", "annotations", "cadence_bins")


def inputs_state(root: Path, tables: Iterable[str] = ASSESSMENT_TABLES) -> str | None:
    """Fingerprint of part of a store's committed state: the files of ``tables`` (name, size
    and mtime: a table file is never rewritten, a change is a new name), the profile and the
    schema version. None as for :func:`store_state`.

    Two states with the same fingerprint give the same result for anything computed from
    those tables and the profile alone (the assessment): see :meth:`DerivedCache.carry_over`.
    """
    try:
        manifest = json.loads((root / MANIFEST).read_bytes())
        parts = [json.dumps([manifest["schema_version"], manifest.get("profile")],
                            sort_keys=True)]
        for table in tables:
            name = manifest["tables"].get(table)
            parts.append(f"{table}={name}={_stat_text(root / name) if name else ''}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if any(part.endswith("=-") for part in parts):
        return None  # a listed file is missing: nothing is carried
    return _sha256(*parts)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """:func:`sources_fingerprint` of this runlog package and Python's version, computed
    once per process (~10 ms)."""
    return _sha256(sys.version, sys.implementation.cache_tag or "",
                   sources_fingerprint(Path(__file__).resolve().parent))


def sources_fingerprint(package: Path) -> str:
    """Hash of every ``.py`` file under ``package``: relative path and contents."""
    parts: list[bytes | str] = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = Path(folder) / name
                parts += [path.relative_to(package).as_posix(), path.read_bytes()]
    return _sha256(*parts)


@functools.lru_cache(maxsize=8)
def library_fingerprint(names: tuple[str, ...]) -> str:
    """Where the libraries ``names`` are installed and the size and mtime of their
    ``__init__.py`` (an upgrade or reinstall rewrites it), without importing them."""
    parts = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = getattr(spec, "origin", None) or "-"
        parts.append(f"{name}={origin}={_stat_text(origin)}")
    return _sha256(*parts)


def _matplotlib_dirs() -> tuple[list[Path], list[Path]]:
    """(config folders, cache folders) matplotlib may read from, as matplotlib finds them."""
    home = Path.home()
    env = os.environ
    if env.get("MPLCONFIGDIR"):
        return [Path(env["MPLCONFIGDIR"])], [Path(env["MPLCONFIGDIR"])]
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "matplotlib"
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache") / "matplotlib"
    return [config, home / ".matplotlib"], [cache, home / ".matplotlib"]


def chart_environment() -> str:
    """What a rendered chart depends on besides the data and the code: the matplotlib and
    Pillow installs, every ``matplotlibrc`` that may apply ($MATPLOTLIBRC, the working
    folder, the user's config folder, matplotlib's own) and matplotlib's font list cache."""
    parts = [library_fingerprint(CHART_LIBRARIES)]
    rc_files: list[Path] = []
    if os.environ.get("MATPLOTLIBRC"):
        given = Path(os.environ["MATPLOTLIBRC"])
        rc_files += [given, given / "matplotlibrc"]
    config_dirs, cache_dirs = _matplotlib_dirs()
    rc_files += [Path.cwd() / "matplotlibrc", *(d / "matplotlibrc" for d in config_dirs)]
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        rc_files.append(Path(spec.origin).parent / "mpl-data" / "matplotlibrc")
    parts += [f"{p}={_stat_text(p)}" for p in rc_files]
    for folder in cache_dirs:
        with contextlib.suppress(OSError):
            parts += sorted(f"{p.name}={_stat_text(p)}" for p in folder.glob("fontlist-*.json"))
    return _sha256(*parts)


class DerivedCache:
    """The derived-results cache of one store directory (see the module docstring).

    >>> cache = DerivedCache(Path("~/runlog-store").expanduser())   # doctest: +SKIP
    >>> key = cache.key("report", "table")                           # doctest: +SKIP
    >>> cache.get("report", key) or compute_and(cache.put)           # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.folder = self.root / CACHE_DIR

    # --- keys -----------------------------------------------------------------------------------
    def key(self, *question: str, environment: Iterable[str] = ()) -> str | None:
        """The key for ``question`` on the store as it is now (None: do not cache).

        ``environment``: more fingerprints the result depends on (e.g.
        :func:`chart_environment`). Take the key *before* reading the store, and
        :meth:`put` the result only if the key is still the same afterwards.
        """
        state = store_state(self.root)
        if state is None:
            return None
        rest = _sha256(state, code_fingerprint(), library_fingerprint(BASE_LIBRARIES),
                       *environment, json.dumps(list(question)))
        return f"{state[:STATE_DIGITS]}-{rest}"

    def _where(self, name: str, key: str) -> tuple[Path, Path] | None:
        """(state folder, entry file) of a key; None for a key not made by :meth:`key`."""
        state, _, rest = key.partition("-")
        if len(state) != STATE_DIGITS or not rest or not (state + rest).isalnum():
            return None
        folder = self.folder / state
        return folder, folder / f"{name}-{rest[:NAME_DIGITS]}.bin"

    # --- bytes --------------------------------------------------------------------------------
    def get(self, name: str, key: str | None) -> bytes | None:
        """The payload stored under ``name`` and ``key``; None when missing or damaged."""
        where = self._where(name, key) if key is not None else None
        if where is None:
            return None
        try:
            data = where[1].read_bytes()
        except OSError:
            return None
        head = data.split(b"\n", 4)
        if len(head) != 5 or head[0] != MAGIC or head[1] != key.encode("ascii"):
            return None
        payload = head[4]
        if head[3] != str(len(payload)).encode("ascii"):
            return None
        if head[2] != hashlib.sha256(payload).hexdigest().encode("ascii"):
            return None
        return payload

    def put(self, name: str, key: str | None, payload: bytes) -> bool:
        """Store ``payload`` atomically; False (and nothing written) when it cannot be."""
        where = self._where(name, key) if key is not None else None
        if where is None:
            return False
        folder, target = where
        header = b"\n".join([MAGIC, key.encode("ascii"),
                             hashlib.sha256(payload).hexdigest().encode("ascii"),
                             str(len(payload)).encode("ascii"), b""])
        tmp = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self._prepare(folder)
            with open(tmp, "wb") as fh:
                fh.write(header)
                fh.write(payload)
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    def carry_over(self, old_key: str, new_key: str, names: Iterable[str]) -> list[str]:
        """Store the entries ``names`` made under ``old_key`` again under ``new_key``; the
        names carried (an entry missing or damaged under ``old_key`` is not).

        For a commit that left an entry's inputs as they were (the caller checks with
        :func:`inputs_state`): the result is the same, only the store state moved on.
        Every payload is read before the first write, which removes the old state's folder.
        """
        payloads = {name: self.get(name, old_key) for name in names}
        return [name for name, payload in payloads.items()
                if payload is not None and self.put(name, new_key, payload)]

    def _prepare(self, folder: Path) -> None:
        """Create the folders and marker files; remove the folders of other store states."""
        new_folder = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for marker, text in _IGNORE_FILES.items():
            path = self.folder / marker
            if not path.exists():
                with contextlib.suppress(OSError):
                    path.write_text(text, encoding="utf-8")
        if new_folder:
            with os.scandir(self.folder) as entries:
                old = [e.path for e in entries
                       if e.is_dir(follow_symlinks=False) and e.name != folder.name]
            import shutil

            for path in old:
                shutil.rmtree(path, ignore_errors=True)

    def clear(self) -> None:
        """Remove every entry (best effort; used by ``runlog store rebuild``)."""
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)

    # --- frames -------------------------------------------------------------------------------
    def get_frame(self, name: str, key: str | None) -> pd.DataFrame | None:
        """A DataFrame stored with :meth:`put_frame`, with the same columns and dtypes; None
        when missing, damaged, or when its dtypes did not survive the round trip."""
        payload = self.get(name, key)
        if payload is None:
            return None
        import pyarrow as pa

        try:
            table = read_frame_table(payload)
            meta = json.loads((table.schema.metadata or {})[b"runlog_dtypes"])
            frame = table.to_pandas()
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
            return None
        if [[str(c), str(t)] for c, t in frame.dtypes.items()] != meta:
            return None
        return frame

    def put_frame(self, name: str, key: str | None, frame: pd.DataFrame) -> bool:
        """Store ``frame`` (index included) as an Arrow IPC file; False when it cannot be."""
        if key is None:
            return False
        import pyarrow as pa
        import pyarrow.ipc as ipc

        try:
            table = pa.Table.from_pandas(frame, preserve_index=True)
        except (ValueError, TypeError, pa.ArrowException):
            return False
        dtypes = json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()])
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               b"runlog_dtypes": dtypes.encode("utf-8")})
        buffer = io.BytesIO()
        # Arrow IPC with lz4 buffers, not Parquet: the 1,500-run assessment's flags (33,000
        # rows) write in ≈ 5 ms instead of ≈ 16 ms (≈ 60 ms as a process's first Parquet
        # write) and read back as fast; size (≈ 1 MB) is no concern in a cache.
        try:  # a pyarrow built without lz4 cannot cache frames: a miss, never an error
            options = ipc.IpcWriteOptions(compression=FRAME_COMPRESSION)
            with ipc.new_file(buffer, table.schema, options=options) as writer:
                writer.write_table(table)
        except (ValueError, pa.ArrowException):
            return False
        return self.put(name, key, buffer.getvalue())


def read_frame_table(payload: bytes) -> pa.Table:
    """The Arrow table of a :meth:`DerivedCache.put_frame` payload (dtypes in its schema's
    ``runlog_dtypes`` metadata). Needs pyarrow only, not pandas."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with ipc.open_file(pa.BufferReader(payload)) as reader:
        return reader.read_all()
