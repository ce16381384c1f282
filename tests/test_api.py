"""RunLog's derived-cache writes, immediate or deferred to the end of a block."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_weekly import sample_store_copy

import runlog
from runlog.derived_cache import CACHE_DIR
from runlog.errors import InputError


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


def test_setting_the_default_zone_moves_runs_without_a_zone_of_their_own(
        tmp_path: Path) -> None:
    """A run whose file gave neither a UTC offset nor positions was stored in UTC: setting
    --default-tz later puts it (and only such runs) on the runner's clock, DST included;
    clearing it puts them back in UTC."""
    repo = Path(__file__).resolve().parents[1]
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([str(repo / "data" / "sample" / "fit")])
    before = log.runs()[["run_id", "start_utc", "tz_offset_min", "tz_source"]]
    assert (before["tz_source"] == "file").all() and len(before) == 3
    no_zone = before["run_id"].iloc[:2].tolist()     # as if the files had said nothing
    with log.store.writer() as tx:
        tx.update_runs(pd.DataFrame({"run_id": no_zone, "tz_offset_min": 0,
                                     "tz_source": "utc"}))

    log.set_profile(default_tz="America/New_York")
    runs = log.runs().set_index("run_id")
    for run_id in no_zone:
        start = runs.loc[run_id, "start_utc"]
        expected = start.tz_convert("America/New_York").utcoffset() // pd.Timedelta(minutes=1)
        assert runs.loc[run_id, "tz_offset_min"] == expected in (-300, -240)
        assert runs.loc[run_id, "tz_source"] == "default"
        assert runs.loc[run_id, "start_local"] == (start.tz_convert("America/New_York")
                                                   .tz_localize(None))
    kept = before.set_index("run_id").iloc[2]
    assert runs.loc[kept.name, "tz_source"] == "file"
    assert runs.loc[kept.name, "tz_offset_min"] == kept["tz_offset_min"]

    log.set_profile(default_tz=pd.NA)
    runs = log.runs().set_index("run_id")
    assert (runs.loc[no_zone, "tz_offset_min"] == 0).all()
    assert (runs.loc[no_zone, "tz_source"] == "utc").all()
    assert runs.loc[kept.name, "tz_offset_min"] == kept["tz_offset_min"]


def test_a_truncated_file_is_marked_and_report_run_says_what_was_found(tmp_path: Path) -> None:
    """A partial copy of a real FIT imports what is there, marked file_damaged (the report's
    '*'), and the run's explanation lists the codes and the reader's note."""
    repo = Path(__file__).resolve().parents[1]
    data = (repo / "data" / "sample" / "fit" /
            "geo-activity-playground-Laufen_Landal_Park.fit").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "half.fit").write_bytes(data[: len(data) // 2])
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([str(tmp_path / "in")])
    info = log.explain("last")
    assert info["quality_issues"] == ["file_damaged"]
    assert info["quality_notes"].startswith("file truncated after ")
    assert log.runs()["quality_issues"].tolist() == ["file_damaged"]
    from runlog.risk import render_explanation

    text = render_explanation(info).splitlines()
    at = text.index("Data quality: file_damaged")
    assert text[at + 1].startswith("  - file truncated after ")


def test_an_implausible_change_of_body_mass_is_refused_and_nothing_is_saved(
        tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[1]
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([str(repo / "data" / "sample" / "fit")])
    log.annotate("last", mass_before_kg=70.0)
    generation = log.store.generation()
    with pytest.raises(InputError, match="differ by 14%"):
        log.annotate("last", mass_after_kg=80.0)
    assert log.store.generation() == generation
    assert log.annotate("last", mass_after_kg=68.6)["mass_after_kg"] == 68.6  # 2 %: fine


def test_report_run_names_the_hrmax_and_whether_it_is_estimated(tmp_path: Path) -> None:
    """RULES.md §0: without a profile HRmax the best 30-s HR of the last 180 days is used, and
    the explanation, the JSON and the CSV say it is an estimate; the profile's value wins."""
    from runlog.export import export_runs
    from runlog.report import runs_json
    from runlog.risk import render_explanation

    repo = Path(__file__).resolve().parents[1]
    log = runlog.open_store(tmp_path / "s")
    log.import_paths([str(repo / "data" / "sample" / "fit")])
    runs = log.runs()
    with_hr = runs.loc[runs["avg_hr_bpm"].notna(), "run_id"].iloc[-1]
    info = log.explain(with_hr)
    assert info["hr_max"]["source"] == "history_30s"
    assert info["hr_max"]["text"].endswith("(estimated: your best 30 s in the last 180 days)")
    assert f"Heart rate: {info['hr_max']['text']}" in render_explanation(info)
    row = runs[runs["run_id"] == with_hr]
    assert export_runs(row, log.flags())["hr_max_source"].tolist() == ["history_30s"]
    assert runs_json(row, log.flags().iloc[0:0])[0]["hr_max_bpm"] == pytest.approx(
        info["hr_max"]["bpm"], abs=0.05)

    log.set_profile(hr_max_bpm=191)
    info = log.explain(with_hr)
    assert info["hr_max"] == {"bpm": 191.0, "source": "profile", "has_hr": True,
                              "text": "HRmax 191 bpm (from your profile)"}
