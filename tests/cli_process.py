"""The ``runlog`` command line in a child process, as the console script runs it.

Shared by the tests that need a real process (exit status after ``os._exit``, buffered
output, SIGKILL in the middle of a commit, two imports at once): ``python -m runlog.cli``
with this checkout on ``PYTHONPATH``, and never the store of the shell's ``RUNLOG_STORE``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli_env(*, buffered: bool = False) -> dict[str, str]:
    """This process' environment for a child ``runlog``: without ``RUNLOG_STORE``, with
    the checkout first on ``PYTHONPATH``. ``buffered``: also without ``PYTHONUNBUFFERED``
    (which this sandbox sets), so output is buffered as in a runner's shell."""
    dropped = {"RUNLOG_STORE", *(("PYTHONUNBUFFERED",) if buffered else ())}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli_command(store: Path, *args: str) -> list[str]:
    """``python -m runlog.cli --store STORE ARGS``: what the ``runlog`` script runs."""
    return [sys.executable, "-m", "runlog.cli", "--store", str(store), *args]


def run_cli(store: Path, *args: str, timeout: float = 120, buffered: bool = False,
            text: bool = True) -> subprocess.CompletedProcess:
    """:func:`cli_command` run to completion, its output captured."""
    return subprocess.run(cli_command(store, *args), capture_output=True, text=text,
                          timeout=timeout, env=cli_env(buffered=buffered))
