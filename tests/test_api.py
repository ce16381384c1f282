"""RunLog's derived-cache writes, immediate or deferred to the end of a block."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_weekly import sample_store_copy

import runlog
from runlog.derived_cache import CACHE_DIR


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A copy of the sample store without derived results."""
    return sample_store_copy(tmp_path_factory, tmp_path)


#: What computing the assessment caches: its two frames and the chart's data (chart_cache).
ASSESSED = ["assessment-flags", "assessment-levels", "chart-history"]


def entries(root: Path) -> list[str]:
    return sorted(p.name.split("-")[0] + "-" + p.name.split("-")[1]
                  for p in (root / CACHE_DIR).glob("*/*.bin"))


def test_assessment_is_cached_at_once_by_default(store: Path) -> None:
    runlog.open_store(store).runs()
    assert entries(store) == ASSESSED


def test_deferred_writes_happen_when_the_block_ends(store: Path) -> None:
    log = runlog.open_store(store)
    with log.derived_writes_deferred():
        runs = log.runs()
        with log.derived_writes_deferred():  # nested: kept for the outer block
            flags = log.flags()
        assert entries(store) == []
    assert entries(store) == ASSESSED
    again = runlog.open_store(store)
    pd.testing.assert_frame_equal(again.runs(), runs)
    pd.testing.assert_frame_equal(again.flags(), flags)


def test_deferred_writes_happen_after_an_error_too(store: Path) -> None:
    log = runlog.open_store(store)
    with pytest.raises(RuntimeError), log.derived_writes_deferred():
        log.runs()
        raise RuntimeError("after the assessment")
    assert entries(store) == ASSESSED
    with log.derived_writes_deferred():
        pass
    log.derived.clear()
    runlog.open_store(store).runs()  # not deferred any more
    assert entries(store) == ASSESSED
