"""Draw the CLI's chart in a helper process, so matplotlib loads while pandas does.

A fresh ``runlog chart`` process must load pandas and compute the chart's data (≈ 0.7 s or
more when the assessment is not cached) and load matplotlib (≈ 0.4 s with
:func:`load_matplotlib`) before drawing (≈ 0.3 s). :meth:`DrawingHelper.start` starts
:func:`runlog.chart_draw.main` first thing; it loads matplotlib and prepares the figure on
another core while this process computes the data, then draws what
:meth:`DrawingHelper.send` hands it and answers with the file's bytes
(:meth:`DrawingHelper.result`): the bytes :func:`runlog.chart_draw.chart_bytes` gives in
this process.

Anything unusual (one core only, matplotlib already loaded here, no interpreter to start,
the helper failing or answering something else) means no helper: the caller draws in its own
process, exactly as before. The helper's stderr (matplotlib's warnings) is passed on when
its drawing is used, so the runner sees the same messages either way.

:func:`load_matplotlib` is how a process that only draws (the helper, or the CLI drawing
itself) loads matplotlib: without documenting the artists' properties, more than a third
of matplotlib's import time.

Imports only the standard library: the CLI uses it before pandas is loaded.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

from runlog.chart_spec import ChartData

#: What the helper runs: the collector off before matplotlib loads (it would only re-scan
#: the objects loaded), matplotlib loaded by :func:`load_matplotlib`, then
#: runlog.chart_draw.main.
HELPER_CODE = ("import gc; gc.disable(); import runlog.chart_helper as h; h.load_matplotlib(); "
               "import runlog.chart_draw as d; d.main()")
#: The helper's runlog.chart_draw must be this file: the code this process would draw with.
DRAW_FILE = Path(__file__).resolve().with_name("chart_draw.py")
#: First line of the helper's answer on success; the image's bytes follow.
REPLY_OK = b"runlog-chart-ok\n"
#: Longest wait for an answer [s]: matplotlib's first run builds its font cache (tens of
#: seconds on a slow disk); after that, this process draws itself.
ANSWER_TIMEOUT_S = 300.0


#: The matplotlib modules :mod:`runlog.chart_draw` draws with.
MATPLOTLIB_MODULES = ("matplotlib.figure", "matplotlib.backends.backend_agg",
                      "matplotlib.dates", "matplotlib.lines", "matplotlib.patches",
                      "matplotlib.ticker", "matplotlib.transforms")
#: What the artists' property lists say in docstrings when :func:`load_matplotlib` loaded
#: them (the lists are in matplotlib's documentation).
SHORT_KWDOC = "Properties: see matplotlib's documentation of this artist."


def load_matplotlib() -> None:
    """Import :data:`MATPLOTLIB_MODULES` for a process that only draws (the CLI, the
    helper): ≈ 0.2 s faster than a plain import (≈ 0.6 s), the same drawing.

    While its modules load, matplotlib documents each of its ≈ 100 artist classes: the
    signature and docstring of the class's ``set()`` list every property, found by
    inspecting every setter and its docstring
    (``Artist._update_set_signature_and_docstring``, with ``matplotlib.artist.kwdoc``, which
    also writes the property lists of other docstrings): more than a third of the import.
    Here the two stand in for themselves while the modules load, then are put back:
    ``kwdoc`` gives :data:`SHORT_KWDOC`, and each ``set()`` is marked as generated (so every
    subclass still gets its own, as matplotlib does) with that docstring and a plain
    ``(self, **kwargs)`` signature. Only docstrings and ``set()`` signatures differ in this
    process, nothing that draws (``set()`` takes the same properties and aliases).

    Either stand-in is left out when matplotlib does not have what it replaces (another
    version); once the modules are loaded, this is a plain import.
    """
    import importlib

    if all(name in sys.modules for name in MATPLOTLIB_MODULES):
        return
    import matplotlib.artist as artist  # matplotlib itself and the Artist base class

    kwdoc = getattr(artist, "kwdoc", None)
    document_set = artist.Artist.__dict__.get("_update_set_signature_and_docstring")
    if callable(kwdoc):
        artist.kwdoc = _short_kwdoc
    if isinstance(document_set, classmethod):
        artist.Artist._update_set_signature_and_docstring = classmethod(_mark_set)
    try:
        for name in MATPLOTLIB_MODULES:
            importlib.import_module(name)
    finally:
        if callable(kwdoc):
            artist.kwdoc = kwdoc
        if isinstance(document_set, classmethod):
            artist.Artist._update_set_signature_and_docstring = document_set


def _short_kwdoc(artist: object) -> str:
    """Stands in for ``matplotlib.artist.kwdoc`` while :func:`load_matplotlib` imports."""
    return SHORT_KWDOC


def _mark_set(cls: type) -> None:
    """Stands in for ``Artist._update_set_signature_and_docstring`` while
    :func:`load_matplotlib` imports: marks the ``set()`` matplotlib generated for ``cls``
    as generated (its subclasses then get theirs), without listing the properties."""
    cls.set._autogenerated_signature = True
    cls.set.__doc__ = f"Set multiple properties at once.\n\n{SHORT_KWDOC}"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def worthwhile() -> bool:
    """Whether a helper can save time: a second core, matplotlib not loaded here yet, and
    an interpreter to start (not a frozen application, whose executable is runlog itself)."""
    return (usable_cores() > 1 and "matplotlib" not in sys.modules
            and bool(sys.executable) and not getattr(sys, "frozen", False))


class DrawingHelper:
    """One helper process (:func:`runlog.chart_draw.main`), good for one chart.

    >>> helper = DrawingHelper.start()      # doctest: +SKIP
    >>> helper.send(compute_the_chart_data(), "png")  # doctest: +SKIP
    >>> image = helper.result()             # None: draw it yourself  # doctest: +SKIP
    """

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    @classmethod
    def start(cls) -> DrawingHelper | None:
        """Start a helper; None when it cannot be started."""
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", HELPER_CODE], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except (OSError, ValueError):
            return None
        return cls(process)

    def send(self, data: ChartData, fmt: str) -> bool:
        """Hand the helper what to draw (it draws once matplotlib is loaded); False when it
        is gone. The request is a few kB: it waits in the pipe, this process goes on."""
        request = pickle.dumps((str(DRAW_FILE), fmt, data), protocol=pickle.HIGHEST_PROTOCOL)
        try:  # stdin stays open: result() closes it (communicate flushes it first)
            self.process.stdin.write(request)
            self.process.stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def result(self) -> bytes | None:
        """The chart file's bytes as the helper drew them; None when it did not draw them.

        Waits for the helper's answer; ends the helper either way.
        """
        try:
            answer, errors = self.process.communicate(timeout=ANSWER_TIMEOUT_S)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None
        finally:
            self.close()
        if self.process.returncode != 0 or not answer.startswith(REPLY_OK):
            return None
        if errors:  # what matplotlib would have printed in this process
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.write(errors.decode("utf-8", errors="replace"))
                sys.stderr.flush()
        return answer[len(REPLY_OK):]

    def draw(self, data: ChartData, fmt: str) -> bytes | None:
        """:meth:`send` then :meth:`result`."""
        return self.result() if self.send(data, fmt) else None

    def close(self) -> None:
        """End the helper if it is still running (nothing to draw, or an error here)."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
