"""Shared fixtures: where the real files are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"


def corpus_path() -> Path | None:
    """../shared/corpus beside the project (or $RUNLOG_CORPUS), None when absent."""
    env = os.environ.get("RUNLOG_CORPUS")
    path = Path(env) if env else REPO.parent / "shared" / "corpus"
    return path if (path / "catalogue.csv").is_file() else None


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus. Required in CI (CI=true): a missing corpus there is a failure."""
    path = corpus_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("../shared/corpus is missing in CI; corpus tests must run there")
        pytest.skip("../shared/corpus is not beside this clone (it is in CI)")
    return path


@pytest.fixture(scope="session")
def catalogue(corpus: Path):
    import pandas as pd

    return pd.read_csv(corpus / "catalogue.csv")
