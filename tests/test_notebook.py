"""Execute notebooks/runlog_tour.ipynb against the bundled sample and check what it shows."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "runlog_tour.ipynb"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Whole-notebook budget [s] (import of the sample included).
TIME_LIMIT_S = 120
CELL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # Run from a folder outside the repo: the notebook must find data/sample on its own.
    cwd = tmp_path_factory.mktemp("nb-cwd")
    env_before = os.environ.get("RUNLOG_REPO")
    os.environ.pop("RUNLOG_REPO", None)
    start = time.monotonic()
    try:
        client = nbclient.NotebookClient(
            nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
            resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        if env_before is not None:
            os.environ["RUNLOG_REPO"] = env_before
    return nb, time.monotonic() - start


def _outputs(nb):
    return [(i, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", [])]


def test_no_cell_errored_and_fast_enough(executed) -> None:
    nb, seconds = executed
    errors = [out for _, out in _outputs(nb) if out.get("output_type") == "error"]
    assert errors == []
    stderr = [out["text"] for _, out in _outputs(nb)
              if out.get("output_type") == "stream" and out.get("name") == "stderr"]
    assert not any("Traceback" in t for t in stderr)
    assert seconds < TIME_LIMIT_S
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def test_import_summary_printed(executed) -> None:
    nb, _ = executed
    text = "".join(out.get("text", "") for _, out in _outputs(nb)
                   if out.get("output_type") == "stream")
    assert "Imported from data/sample" in text and "'failed': 0" in text
    assert "71 runs from 15 Aug 2015 to 29 May 2022" in text


def test_dataframes_shown_as_html(executed) -> None:
    nb, _ = executed
    html = [out["data"]["text/html"] for _, out in _outputs(nb)
            if "text/html" in out.get("data", {})]
    assert len(html) >= 4
    runs_html = next(h for h in html if "knee_risk" in h and "distance_km" in h)
    assert "<table" in runs_html
    weeks_html = next(h for h in html if "acwr" in h and "week_start" in h)
    assert "2020-" in weeks_html
    flags_html = next(h for h in html if "threshold" in h and "source" in h)
    assert "session_spike" in flags_html or "longer_than_usual" in flags_html


def test_chart_shown_inline_as_png(executed) -> None:
    nb, _ = executed
    pngs = [base64.b64decode(out["data"]["image/png"]) for _, out in _outputs(nb)
            if "image/png" in out.get("data", {})]
    assert len(pngs) == 1
    assert pngs[0][:8] == PNG_MAGIC and len(pngs[0]) > 20_000


def test_one_run_explained_with_sources(executed) -> None:
    nb, _ = executed
    text = "".join(out.get("text", "") for _, out in _outputs(nb)
                   if out.get("output_type") == "stream")
    assert "Knee pain risk:" in text and "Cramp risk:" in text
    assert "not medical advice" in text
    assert "Frandsen" in text or "Martínez-Navarro" in text


def test_markdown_says_what_runlog_is_not() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    text = " ".join(" ".join(c.source for c in nb.cells if c.cell_type == "markdown")
                    .replace("*", "").split())
    assert "not medical advice" in text
    assert "training trend, not an injury predictor" in text


def test_the_explained_run_is_said_to_be_the_highest_level_there_is(executed) -> None:
    """The sample has no high run: the notebook explains its highest-level run and says
    which level that is, never that it is a high-risk run."""
    nb, _ = executed
    text = "".join(out.get("text", "") for _, out in _outputs(nb)
                   if out.get("output_type") == "stream")
    assert "Highest level in the log: moderate (" in text and "; no run is high" in text
    markdown = " ".join(" ".join(c.source for c in nb.cells if c.cell_type == "markdown")
                        .split())
    assert "no run reaches *high*" in markdown
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "explains one high-risk run" not in readme
    assert "explains the run with the highest knee or cramp level" in readme
