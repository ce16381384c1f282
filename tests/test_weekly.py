"""Weekly table on a store built from the bundled sample (real GPX/FIT runs), checked against
sums computed independently in plain Python; local-week edge cases; empty-week gaps."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

import runlog
from runlog.report import render_table
from runlog.weekly import (
    FOLD_EMPTY_WEEKS,
    WEEK_COLUMNS,
    fold_empty_weeks,
    weekly_table,
    weeks_table,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
#: One real run of the sample gets knee pain 7/10 so the following runs are high risk (K4).
PAIN_DAY = "2020-12-06"
PAIN = 7


def sample_log(tmp_path_factory: pytest.TempPathFactory) -> runlog.RunLog:
    """The bundled sample imported once per test session (shared, read-only for tests), with
    knee pain 7/10 logged on the run of PAIN_DAY."""
    root = tmp_path_factory.getbasetemp() / "runlog-sample-store"
    ready = root / ".tests-ready"
    log = runlog.open_store(root)
    if not ready.exists():
        result = log.import_paths([str(SAMPLE)])
        assert result.counts()["failed"] == 0
        runs = log.runs()
        pain = runs.loc[runs["start_local"].dt.strftime("%Y-%m-%d") == PAIN_DAY, "run_id"]
        log.annotate(pain.iloc[0], knee_pain=PAIN)
        ready.touch()
    return runlog.open_store(root)


def sample_store_copy(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    """A private copy of :func:`sample_log`'s store (real imported runs), without derived
    results, for tests that change or time it."""
    root = tmp_path / "store"
    shutil.copytree(sample_log(tmp_path_factory).root, root,
                    ignore=shutil.ignore_patterns("cache"))
    return root


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> runlog.RunLog:
    return sample_log(tmp_path_factory)


@pytest.fixture(scope="module")
def weeks(log: runlog.RunLog) -> pd.DataFrame:
    return weekly_table(log.runs(), log.flags())


def _local(run: pd.Series) -> dt.datetime:
    """Local wall clock of one run, computed without runlog's helpers."""
    utc = run["start_utc"].to_pydatetime()
    return (utc + dt.timedelta(minutes=int(run["tz_offset_min"]))).replace(tzinfo=None)


def test_columns_and_one_row_per_week(weeks: pd.DataFrame, log: runlog.RunLog) -> None:
    assert list(weeks.columns) == list(WEEK_COLUMNS)
    runs = log.runs()
    first = _local(runs.iloc[0]).date()
    last = _local(runs.iloc[-1]).date()
    monday0 = first - dt.timedelta(days=first.weekday())
    monday1 = last - dt.timedelta(days=last.weekday())
    assert weeks["week_start"].iloc[0].date() == monday0
    assert weeks["week_start"].iloc[-1].date() == monday1
    assert len(weeks) == (monday1 - monday0).days // 7 + 1
    assert (weeks["week_start"].dt.day_of_week == 0).all()
    assert weeks["week_start"].diff().dropna().eq(pd.Timedelta(days=7)).all()


def test_weekly_sums_match_plain_python(weeks: pd.DataFrame, log: runlog.RunLog) -> None:
    runs = log.runs()
    expected_km: dict[dt.date, float] = {}
    expected_n: dict[dt.date, int] = {}
    for _, run in runs.iterrows():   # independent reference: one run at a time, stdlib dates
        day = _local(run).date()
        monday = day - dt.timedelta(days=day.weekday())
        expected_km[monday] = expected_km.get(monday, 0.0) + run["distance_m"] / 1000
        expected_n[monday] = expected_n.get(monday, 0) + 1
    got = weeks.set_index(weeks["week_start"].dt.date)
    assert weeks["runs"].sum() == len(runs) == 71
    for monday, km in expected_km.items():
        assert got.loc[monday, "distance_km"] == pytest.approx(km, rel=1e-9)
        assert got.loc[monday, "runs"] == expected_n[monday]
    # Across the new year: 28 Dec 2020 (Mon) and 2 Jan 2021 (Sat) are one local week.
    assert got.loc[dt.date(2020, 12, 28), "runs"] == 2
    assert got.loc[dt.date(2020, 12, 28), "distance_km"] == pytest.approx(8.166 + 10.078, abs=0.01)


def test_empty_weeks_are_gaps_not_zeros(weeks: pd.DataFrame) -> None:
    empty = weeks[weeks["runs"] == 0]
    assert len(empty) > 200        # 2015 → 2020 and 2021 → 2022 have no runs in the sample
    assert empty["distance_km"].isna().all()
    assert empty["moving_time_s"].isna().all()
    assert empty["change_pct"].isna().all()
    assert empty["knee_level"].isna().all() and empty["risk_level"].isna().all()
    assert (empty["flag_count"] == 0).all() and (empty["high_risk_runs"] == 0).all()
    full = weeks[weeks["runs"] > 0]
    assert full["distance_km"].notna().all() and (full["distance_km"] > 0).all()
    # A known empty week between two running weeks of the real log.
    row = weeks.set_index(weeks["week_start"].dt.date).loc[dt.date(2021, 1, 4)]
    assert row["runs"] == 0 and math.isnan(row["distance_km"])


def test_change_pct_vs_previous_week(weeks: pd.DataFrame) -> None:
    prev = weeks.shift(1)
    both = (weeks["runs"] > 0) & (prev["runs"] > 0)
    expected = (weeks["distance_km"] / prev["distance_km"] - 1) * 100
    assert both.sum() > 20
    pd.testing.assert_series_equal(weeks.loc[both, "change_pct"], expected[both],
                                   check_names=False)
    after_gap = (weeks["runs"] > 0) & (prev["runs"] == 0)
    assert after_gap.any() and weeks.loc[after_gap, "change_pct"].isna().all()


def test_acwr_coupled_7_over_28_day_means(weeks: pd.DataFrame, log: runlog.RunLog) -> None:
    runs = log.runs()
    km_by_day: dict[dt.date, float] = {}
    for _, run in runs.iterrows():
        day = _local(run).date()
        km_by_day[day] = km_by_day.get(day, 0.0) + run["distance_m"] / 1000

    def mean_km(end: dt.date, days: int) -> float:
        return sum(km_by_day.get(end - dt.timedelta(days=i), 0.0) for i in range(days)) / days

    got = weeks.set_index(weeks["week_start"].dt.date)
    checked = 0
    for monday in (dt.date(2020, 11, 30), dt.date(2021, 3, 15), dt.date(2021, 6, 7)):
        sunday = monday + dt.timedelta(days=6)
        expected = mean_km(sunday, 7) / mean_km(sunday, 28)
        assert got.loc[monday, "acwr"] == pytest.approx(expected, rel=1e-9)
        checked += 1
    assert checked == 3
    # Under 28 days of history: the first week (2015, a single FIT run) has no ACWR.
    assert math.isnan(weeks["acwr"].iloc[0])
    # The final week: evaluated at the last run's day (later days are unknown, not rest).
    # Last week of the GPX year, Sunday 4 Jul 2021 is its last run: nothing after it.
    monday = dt.date(2021, 6, 28)
    assert got.loc[monday, "acwr"] == pytest.approx(
        mean_km(dt.date(2021, 7, 4), 7) / mean_km(dt.date(2021, 7, 4), 28))
    # Cut the log on Wednesday 23 Jun 2021 (a run): its final week's ACWR is taken that day,
    # not on Sunday 27 Jun with four unknown days counted as rest.
    cut = weekly_table(runs[runs["start_local"] < "2021-06-24"], log.flags())
    wed, sun = dt.date(2021, 6, 23), dt.date(2021, 6, 27)
    assert wed in km_by_day and cut["week_start"].iloc[-1].date() == dt.date(2021, 6, 21)
    assert cut["acwr"].iloc[-1] == pytest.approx(mean_km(wed, 7) / mean_km(wed, 28))
    km_by_day = {d: km for d, km in km_by_day.items() if d <= wed}
    assert cut["acwr"].iloc[-1] != pytest.approx(mean_km(sun, 7) / mean_km(sun, 28), rel=1e-3)
    # First run after ten months off (29 May 2022): the 28 days hold only the acute week, the
    # ratio would be 4.0 whatever the load → not shown. Same for the first 2020 week.
    assert math.isnan(weeks["acwr"].iloc[-1])
    assert math.isnan(got.loc[dt.date(2020, 6, 29), "acwr"])


def test_levels_flags_and_high_risk_runs(weeks: pd.DataFrame, log: runlog.RunLog) -> None:
    runs, flags = log.runs(), log.flags()
    runs = runs.assign(monday=[_local(r).date() - dt.timedelta(days=_local(r).weekday())
                               for _, r in runs.iterrows()])
    got = weeks.set_index(weeks["week_start"].dt.date)
    order = {"low": 0, "moderate": 1, "high": 2}
    # warnings: each knee/cramp/safety rule once per run, info tips (abrupt_finish) not
    active = flags[(flags["level"].fillna(0) >= 1) & (flags["risk"] != "info")]
    active = active.drop_duplicates(["run_id", "rule"])
    assert (flags["risk"] == "info").any() and active["rule"].ne("abrupt_finish").all()
    for monday, grp in runs.groupby("monday"):
        knee = max(grp["knee_risk"].dropna(), key=order.get, default=None)
        assert got.loc[monday, "knee_level"] == knee
        cramp = max(grp["cramp_risk"].dropna(), key=order.get, default=None)
        assert got.loc[monday, "cramp_level"] == cramp
        assert got.loc[monday, "flag_count"] == active["run_id"].isin(grp["run_id"]).sum()
        n_high = ((grp["knee_risk"] == "high") | (grp["cramp_risk"] == "high")).sum()
        assert got.loc[monday, "high_risk_runs"] == n_high
    # The logged knee pain makes the runs of the next 14 days high (K4): week of 7 Dec 2020.
    assert got.loc[dt.date(2020, 12, 7), "knee_level"] == "high"
    assert got.loc[dt.date(2020, 12, 7), "high_risk_runs"] >= 2
    assert weeks["high_risk_runs"].sum() >= 3


def test_sunday_2330_local_counts_in_that_sundays_week(log: runlog.RunLog) -> None:
    """Sunday 21:30Z at UTC+2 is Sunday 23:30 local: that Sunday's week, not the next."""
    real = log.runs().iloc[[10, 11]].copy()     # two real runs, moved in time
    real["start_utc"] = pd.to_datetime(["2024-05-12T21:30:00Z", "2024-05-12T22:30:00Z"])
    real["tz_offset_min"] = [120, 180]          # 23:30 Sunday and 01:30 Monday local
    real = real.drop(columns="start_local")     # computed from start_utc + offset
    w = weekly_table(real, log.flags())
    assert list(w["week_start"].dt.date) == [dt.date(2024, 5, 6), dt.date(2024, 5, 13)]
    assert list(w["runs"]) == [1, 1]
    assert w["distance_km"].iloc[0] == pytest.approx(real["distance_m"].iloc[0] / 1000)


def test_quality_not_ok_runs_still_count_for_distance(log: runlog.RunLog) -> None:
    runs = log.runs()
    damaged = runs.assign(quality_ok=False, knee_risk=None, cramp_risk=None)
    a = weekly_table(runs, log.flags())
    b = weekly_table(damaged, log.flags().iloc[:0])
    pd.testing.assert_series_equal(a["distance_km"], b["distance_km"])
    assert b["knee_level"].isna().all() and (b["flag_count"] == 0).all()


def test_since_until_crop_rows_but_keep_history(weeks: pd.DataFrame, log: runlog.RunLog) -> None:
    cropped = weekly_table(log.runs(), log.flags(), since="2020-07-01", until="2021-07-04")
    assert cropped["week_start"].iloc[0].date() == dt.date(2020, 6, 29)
    assert cropped["week_start"].iloc[-1].date() == dt.date(2021, 6, 28)
    full = weeks.set_index("week_start").loc[cropped["week_start"]]
    assert cropped["acwr"].to_numpy() == pytest.approx(full["acwr"].to_numpy(), nan_ok=True)


def test_empty_log_gives_empty_table() -> None:
    w = weekly_table(pd.DataFrame(columns=["run_id", "start_utc", "tz_offset_min",
                                           "distance_m"]), pd.DataFrame())
    assert w.empty and list(w.columns) == list(WEEK_COLUMNS)


def test_terminal_table(weeks: pd.DataFrame) -> None:
    text = render_table(weeks_table(weeks[weeks["week_start"] >= "2020-12-28"].head(2)))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["week", "runs", "km"]
    assert lines[2].split()[:3] == ["2020-12-28", "2", "18.2"]
    assert lines[3].split()[:3] == ["2021-01-04", "0", "–"]


def test_acwr_needs_28_days_of_history(log: runlog.RunLog) -> None:
    """History starting Fri 3 Jul 2020: Sundays 5, 12, 19 Jul have < 28 days → no ACWR;
    Sunday 2 Aug (31 days) has one."""
    runs = log.runs()
    runs = runs[runs["start_local"] >= "2020-07-01"]
    w = weekly_table(runs, log.flags()).set_index("week_start")
    early = w.loc["2020-06-29":"2020-07-19", "acwr"]
    assert len(early) == 3 and early.isna().all()
    assert w.loc["2020-07-27", "acwr"] > 0


# --- runs too damaged to assess (quality_ok False) ------------------------------------------------
def _assessed(runs: pd.DataFrame, annotations: pd.DataFrame, profile: dict
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``runs`` with their knee/cramp levels (as RunLog.runs()), and the flags."""
    from test_risk import bins_for

    from runlog.risk import assess

    levels, flags = assess(runs, annotations, profile, bins_for(runs))
    return runs.merge(levels[["run_id", "knee_risk", "cramp_risk"]], on="run_id"), flags


def test_weeks_of_runs_too_damaged_to_assess() -> None:
    """Only damaged runs (and annotations that would flag good ones): they count for distance
    and time, their weeks have no level and no flag."""
    from test_risk import PROFILE, damaged, history, loud_annotations

    runs = damaged(history(3))
    with_levels, flags = _assessed(runs, loud_annotations(runs["run_id"]),
                                   {**PROFILE, "cramp_prone": True})
    w = weekly_table(with_levels, flags)
    assert list(w["runs"]) == [4, 4, 4]
    assert w["distance_km"].sum() == pytest.approx(runs["distance_m"].sum() / 1000)
    assert w["knee_level"].isna().all() and w["cramp_level"].isna().all()
    assert w["risk_level"].isna().all()
    assert (w["flag_count"] == 0).all() and (w["high_risk_runs"] == 0).all()
    assert list(weeks_table(w)["knee"]) == ["–"] * 3
    one = weekly_table(with_levels.iloc[:1], flags[flags["run_id"] == runs["run_id"].iloc[0]])
    assert list(one["runs"]) == [1] and one["knee_level"].isna().all()


def test_damaged_run_adds_no_flag_to_its_week() -> None:
    """A damaged run alone in its week, after runs with cramps logged and a cramp-prone
    runner: C3 (and every other rule) leaves it out, so its week counts no flag."""
    from test_risk import PROFILE, add_run, history

    runs = add_run(history(6), 6 * 7 + 2, 10.0, run_id="bad", quality_ok=False)
    cramps = pd.DataFrame({"run_id": ["r020", "r021", "r022", "r023"], "cramp": [True] * 4})
    with_levels, flags = _assessed(runs, cramps, {**PROFILE, "cramp_prone": True})
    w = weekly_table(with_levels, flags)
    last = w.iloc[-1]
    assert last["runs"] == 1 and last["flag_count"] == 0 and pd.isna(last["risk_level"])
    assert w["flag_count"].iloc[:-1].sum() > 0               # the good runs are flagged (C3)


def test_store_holding_only_a_run_too_short_to_assess(tmp_path: Path) -> None:
    """A real 57-s FIT run (quality issue too_short) alone in a store, then annotated: every
    read works and shows it as not assessed (it crashed with an IndexError in L4)."""
    fit = REPO / "tests" / "data" / "fit" / "garmin-fenix-5-run.fit"
    log = runlog.open_store(tmp_path / "store")
    result = log.import_paths([str(fit)])
    assert result.counts()["new"] == 1
    for annotate in (False, True):
        if annotate:
            log.annotate("last", cramp=True, knee_pain=4, electrolytes=False)
            log = runlog.open_store(tmp_path / "store")
        runs = log.runs()
        assert len(runs) == 1 and not runs["quality_ok"].iloc[0]
        assert "too_short" in runs["quality_issues"].iloc[0]
        assert runs["knee_risk"].isna().all() and runs["cramp_risk"].isna().all()
        assert log.flags()["level"].isna().all()
        weeks = log.weeks()
        assert list(weeks["runs"]) == [1] and list(weeks["flag_count"]) == [0]
        info = log.explain("last")
        assert info["knee_risk"] is None and info["flags"] == []
    log.chart(tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0


def test_text_table_folds_long_stretches_of_empty_weeks(weeks: pd.DataFrame) -> None:
    """Four or more weeks with no run and no ACWR become one line; shorter gaps, and weeks
    with an ACWR, stay rows; every other row is unchanged, in order."""
    rows = render_table(weeks_table(weeks)).splitlines()[2:]  # below the header and rule
    folded = fold_empty_weeks(weeks, rows)
    empty = ((weeks["runs"] == 0) & weeks["acwr"].isna()).tolist()
    # the stretches, computed plainly
    stretches, i = [], 0
    while i < len(empty):
        j = i
        while j < len(empty) and empty[j]:
            j += 1
        if j - i >= FOLD_EMPTY_WEEKS:
            stretches.append((i, j))
        i = max(j, i + 1)
    assert stretches, "the fixture has a long gap"
    assert len(folded) == len(rows) - sum(j - i - 1 for i, j in stretches)
    starts = weeks["week_start"].dt.strftime("%Y-%m-%d").tolist()
    for i, j in stretches:
        line = f"⋮ {j - i} weeks without runs: {starts[i]} to {starts[j - 1]}"
        assert line in folded
    kept = [r for r in folded if not r.startswith("⋮")]
    assert kept == [r for k, r in enumerate(rows)
                    if not any(i <= k < j for i, j in stretches)]
