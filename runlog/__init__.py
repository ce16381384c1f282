"""runlog: a local, offline running log that flags knee-pain and cramp risk per run.

Not medical advice: levels are relative flags from population studies, never a person's
probability of injury or cramp.

>>> import runlog
>>> log = runlog.open_store("path/to/store")   # doctest: +SKIP
>>> log.runs()                                  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RunLog", "__version__", "open_store"]

if TYPE_CHECKING:
    from runlog.api import RunLog, open_store


def __getattr__(name: str) -> Any:
    # Lazy, so `import runlog.readers` (e.g. in import workers) does not load the whole stack.
    if name in ("open_store", "RunLog"):
        from runlog import api

        return getattr(api, name)
    raise AttributeError(f"module 'runlog' has no attribute {name!r}")
