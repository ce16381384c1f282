"""HRmax resolution (RULES.md §0): profile > best 30-s HR of 180 days > 208 − 0.7·age."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from runlog import hrmax
from runlog.schema import METRICS_VERSION
from runlog.store import Store, conform

T0 = pd.Timestamp("2024-05-01 06:00:00", tz="UTC")


def runs_frame(days: list[float], best: list[float], *, ok: list[bool] | None = None,
               issues: list[str] | None = None, version: int = METRICS_VERSION,
               ) -> pd.DataFrame:
    """Runs on ``days`` after T0 with these best 30-s HRs; every HR number set so that the
    verdicts can be checked: main HR 150, warm-up p80 140, minutes 3–5 at v_main and 160."""
    n = len(days)
    return conform(pd.DataFrame({
        "run_id": [f"r{i:02d}" for i in range(n)],
        "start_utc": [T0 + pd.Timedelta(days=d) for d in days],
        "tz_offset_min": 0,
        "best_30s_hr_bpm": best,
        "quality_ok": ok if ok is not None else [True] * n,
        "quality_issues": issues if issues is not None else [""] * n,
        "metrics_version": version,
        "avg_hr_bpm": 150.0, "main_hr_bpm": 150.0,
        "warmup_easy_speed_ratio": 0.85, "warmup_hr_p80_bpm": 140.0,
        "start_speed_ratio": 1.0, "start_hr_bpm": 160.0,
    }), "runs")


def test_profile_wins_for_every_run():
    value, source = hrmax.resolve_hr_max(runs_frame([0, 1], [170.0, 200.0]),
                                         {"hr_max_bpm": 190, "birth_year": 1980})
    assert value.tolist() == [190.0, 190.0] and source.tolist() == ["profile", "profile"]


def test_history_is_the_best_30s_of_the_last_180_days_this_run_included():
    runs = runs_frame([0, 10, 150, 185, 200], [180.0, 176.0, 172.0, 178.0, 183.0])
    value, source = hrmax.resolve_hr_max(runs, {"birth_year": 1980})
    # day 185: day 0 is out (185 d back), day 10 in; day 200: its own 183 is the best
    assert value.tolist() == [180.0, 180.0, 180.0, 178.0, 183.0]
    assert set(source) == {"history_30s"}


def test_history_ignores_damaged_and_dropout_runs_then_age_formula():
    runs = runs_frame([0, 1, 2], [199.0, 198.0, np.nan], ok=[False, True, True],
                      issues=["", "gps_jump;hr_dropout", ""])
    value, source = hrmax.resolve_hr_max(runs, {"birth_year": 1984})
    assert value.tolist() == pytest.approx([208 - 0.7 * 40] * 3)
    assert source.tolist() == ["age_formula"] * 3
    value, source = hrmax.resolve_hr_max(runs, {})
    assert np.isnan(value).all() and source.tolist() == [None] * 3


def test_age_is_taken_at_the_run_year():
    runs = runs_frame([0, 365], [np.nan, np.nan])
    value, _ = hrmax.resolve_hr_max(runs, {"birth_year": 1974})
    assert value.tolist() == pytest.approx([208 - 0.7 * 50, 208 - 0.7 * 51])


def test_verdicts_follow_the_resolved_value():
    runs = runs_frame([0, 1], [np.nan, np.nan])
    out = hrmax.resolve_runs(runs, {"hr_max_bpm": 200})      # 76 % = 152, 85 % = 170
    assert out["warmup_present"].tolist() == [True, True]
    assert out["hard_start"].tolist() == [False, False]
    assert out["main_hr_pct_max"].tolist() == pytest.approx([0.75, 0.75])
    out = hrmax.resolve_runs(runs, {"hr_max_bpm": 180})      # 76 % = 136.8, 85 % = 153
    assert out["warmup_present"].tolist() == [False, False]
    assert out["hard_start"].tolist() == [True, True]
    out = hrmax.resolve_runs(runs, {})                       # no HRmax: pace only
    assert out["warmup_present"].tolist() == [True, True]
    assert out["hard_start"].tolist() == [pd.NA, pd.NA]
    assert out["hr_max_source"].tolist() == [None, None]


def test_runs_of_an_older_metrics_version_keep_their_values():
    runs = runs_frame([0], [190.0], version=METRICS_VERSION - 1)
    runs["hr_max_used_bpm"], runs["hr_max_source"] = 175.0, pd.NA
    out = hrmax.resolve_runs(runs, {})
    assert out["hr_max_used_bpm"].tolist() == [175.0]


def test_phrase_says_when_it_is_an_estimate():
    assert hrmax.hr_max_phrase(188.2, "history_30s") == (
        "HRmax 188 bpm (estimated: your best 30 s in the last 180 days)")
    assert hrmax.hr_max_phrase(190, "profile") == "HRmax 190 bpm (from your profile)"
    assert "208 − 0.7 × age" in hrmax.hr_max_phrase(180, "age_formula")
    assert hrmax.hr_max_phrase(np.nan, None) == ""


# --- the store keeps every run resolved ------------------------------------------------------
def stored(store: Store) -> pd.DataFrame:
    return store.runs().set_index("run_id")


def test_store_resolves_on_import_order_profile_change_and_removal(tmp_path: Path):
    store = Store(tmp_path / "s")
    later = runs_frame([100], [176.0])
    later["run_id"] = ["late"]
    with store.writer() as tx:
        tx.add_runs(later, pd.DataFrame())
    assert stored(store).loc["late", "hr_max_used_bpm"] == 176.0
    assert stored(store).loc["late", "hr_max_source"] == "history_30s"
    # an older run with a higher best 30 s, imported afterwards, raises the later run's HRmax
    earlier = runs_frame([0], [192.0])
    earlier["run_id"] = ["early"]
    with store.writer() as tx:
        tx.add_runs(earlier, pd.DataFrame())
    runs = stored(store)
    assert runs.loc["late", "hr_max_used_bpm"] == 192.0
    assert runs.loc["late", "main_hr_pct_max"] == pytest.approx(150 / 192)
    assert bool(runs.loc["late", "warmup_present"]) is True       # 140 ≤ 0.76·192
    # the profile wins, and clearing it goes back to the estimate
    with store.writer() as tx:
        tx.set_profile(hr_max_bpm=170)
    runs = stored(store)
    assert runs["hr_max_used_bpm"].tolist() == [170.0, 170.0]
    assert set(runs["hr_max_source"]) == {"profile"}
    assert bool(runs.loc["late", "warmup_present"]) is False      # 140 > 0.76·170
    with store.writer() as tx:
        tx.set_profile(hr_max_bpm=pd.NA, birth_year=1990)
        tx.remove_runs(["early"])
    runs = stored(store)
    assert runs.loc["late", "hr_max_used_bpm"] == 176.0
    assert runs.loc["late", "hr_max_source"] == "history_30s"


def test_profile_change_that_changes_no_run_rewrites_no_runs_table(tmp_path: Path):
    store = Store(tmp_path / "s")
    with store.writer() as tx:
        tx.add_runs(runs_frame([0], [180.0]), pd.DataFrame())
    before = store._manifest()["tables"]["runs"]
    with store.writer() as tx:
        tx.set_profile(sex="female")
    assert store._manifest()["tables"]["runs"] == before


def _rolling_reference(hours: np.ndarray, best: np.ndarray) -> np.ndarray:
    """pandas' time-based rolling max over [t − 180 d, t], shared by runs of the same start."""
    t = pd.Series(T0 + pd.to_timedelta(hours, unit="h"))
    order = np.argsort(t.to_numpy(), kind="stable")
    series = pd.Series(best[order], index=pd.DatetimeIndex(t.iloc[order]))
    rolled = series.rolling(f"{hrmax.HISTORY_DAYS}D", closed="both", min_periods=1).max()
    rolled = rolled.groupby(level=0).transform("max")
    out = np.full(len(t), np.nan)
    out[order] = rolled.to_numpy()
    return out


@settings(max_examples=300, deadline=None)
@example([(0, 200.0), (24 * hrmax.HISTORY_DAYS, 150.0), (24 * hrmax.HISTORY_DAYS, 160.0)])
@given(st.lists(st.tuples(st.integers(0, 24 * 800), st.one_of(
    st.just(float("nan")), st.floats(120, 215))), min_size=1, max_size=60))
def test_history_max_equals_a_rolling_max_over_180_days(runs: list[tuple[int, float]]) -> None:
    """Hours apart from 0 to 800 days, repeated instants and missing best 30 s included."""
    hours = np.array([h for h, _ in runs], dtype="float64")
    best = np.array([b for _, b in runs])
    start = (T0 + pd.to_timedelta(hours, unit="h")).to_numpy()
    got = hrmax.history_hr_max_bpm(pd.Series(start), best, np.ones(len(best), dtype=bool))
    np.testing.assert_array_equal(got, _rolling_reference(hours, best))
