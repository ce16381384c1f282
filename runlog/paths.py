"""Where the store is by default; importable without pandas (the CLI's fast paths use it)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_STORE = "RUNLOG_STORE"


def default_store_path() -> Path:
    """``$RUNLOG_STORE``, else the platform's user data directory (platformdirs)."""
    env = os.environ.get(ENV_STORE)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("runlog", appauthor=False) / "store"
