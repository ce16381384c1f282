"""The planner (``runlog next``) on histories of real runs placed on chosen dates.

Each scenario copies real recordings from the bundled sample (one runner's phone GPX year),
moves their timestamps to chosen dates — track, pace and heart rate stay as recorded — and
imports them through the normal pipeline. The planner's answers are then checked against the
report's own scoring (:func:`runlog.risk.assess`) on the history plus a run of the answered
distance: at a ceiling no flag, one metre (or second) more and the report flags it.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runlog
from runlog.errors import InputError
from runlog.planner import _km_down, largest_quiet, parse_when, plan_next, render_plan
from runlog.risk import DISCLAIMER, assess

REPO = Path(__file__).resolve().parents[1]
SESSION = REPO / "data" / "sample" / "runpandas-session"
ISO_TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")

# Real 5–6 km runs of the sample year with clean data.
FIVE_KM = ["fa0d167b-893e-4e48-8ee9-7aca5b6aebb0", "a68bfaae-d6e8-4dab-a931-689bce3baa24",
           "dbb3a010-2584-4c98-a346-4f1bc00f1d3a", "e3f2100c-f9f8-4897-b4f6-278dffa6143c"]
SIX_KM = ["b98b1c3e-7c2e-427f-8064-0df0e38b789e",  # 6.28 km
          "038a22f7-eb5e-44f9-a551-de14d84d8524", "bf9be49e-05ce-4587-a535-2509bbf1bc83",
          "531a7cd6-3ae1-4a03-99dc-f6fcb8d97eb0", "e72ac978-0e43-493a-b4f2-50102b64939a"]
STEADY = SIX_KM + FIVE_KM


def placed(data: bytes, start_utc: str) -> bytes:
    """The GPX with every timestamp shifted so the recording starts at ``start_utc``."""
    found = [m.group().decode() for m in ISO_TIME.finditer(data)]
    times = pd.to_datetime(pd.Series(found), utc=True, format="ISO8601")
    moved = pd.Timestamp(start_utc) + (times - times.min())
    text = iter(moved.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(
        r"\.(\d{3})\d{3}Z", r".\1Z", regex=True))
    return ISO_TIME.sub(lambda _: next(text).encode(), data)


def build(tmp_path: Path, stems: list[str], starts: list[pd.Timestamp],
          **profile) -> runlog.RunLog:
    """Import the real runs ``stems`` placed at ``starts`` (UTC) into a fresh store."""
    folder = tmp_path / "files"
    folder.mkdir()
    for i, (stem, start) in enumerate(zip(stems, starts, strict=True)):
        data = gzip.decompress((SESSION / f"{stem}.gpx.gz").read_bytes())
        (folder / f"{i:03d}.gpx").write_bytes(placed(data, start.isoformat()))
    log = runlog.open_store(tmp_path / "store")
    if profile:
        log.set_profile(**profile)
    result = log.import_paths([folder])
    assert result.counts()["new_runs"] == len(stems), [o.reason for o in result.outcomes]
    return log


def every(first: str, n: int, days: float) -> list[pd.Timestamp]:
    base = pd.Timestamp(first)
    return [base + pd.Timedelta(days=days * i) for i in range(n)]


def plan(log: runlog.RunLog, when: pd.Timestamp, **kw) -> dict:
    store = log.store
    return plan_next(store.runs(), store.annotations(), store.profile(), when=when,
                     cadence_bins=store.cadence_bins(), **kw)


def report_level(log: runlog.RunLog, when: pd.Timestamp, rule: str, distance_m: float,
                 moving_s: float | None = None) -> float:
    """The report's level of ``rule`` for a copy of the latest real run moved to ``when``
    with ``distance_m`` (and ``moving_s``), assessed with the whole history (risk.assess)."""
    runs = log.store.runs()
    row = runs.sort_values("start_utc").iloc[-1].copy()
    row["run_id"] = "probe"
    row["start_utc"] = when
    row["distance_m"] = float(distance_m)
    if moving_s is not None:
        row["moving_s"] = row["elapsed_s"] = float(moving_s)
    both = pd.concat([runs, row.to_frame().T], ignore_index=True).astype(runs.dtypes.to_dict())
    _, flags = assess(both, log.store.annotations(), log.store.profile(),
                      log.store.cadence_bins())
    f = flags[(flags["run_id"] == "probe") & (flags["rule"] == rule)].iloc[0]
    return np.nan if pd.isna(f["level"]) else float(f["level"])


def longest_before(log: runlog.RunLog, when: pd.Timestamp, days: float = 30) -> float:
    runs = log.store.runs()
    recent = runs[(runs["start_utc"] < when) & (runs["start_utc"] >= when - pd.Timedelta(
        days=days))]
    return float(recent["distance_m"].max())


@pytest.fixture(scope="module")
def steady(tmp_path_factory) -> tuple[runlog.RunLog, pd.Timestamp]:
    """A steady month: 9 real 5–6 km runs, one every 3 days; plan 3 days after the last."""
    starts = every("2021-03-01T09:00:00Z", len(STEADY), 3)
    log = build(tmp_path_factory.mktemp("steady"), STEADY, starts)
    return log, starts[-1] + pd.Timedelta(days=3)


# --- the distance ceiling (L1) -----------------------------------------------------------------
def test_steady_month_ceiling_is_ten_percent_over_the_longest(steady) -> None:
    log, when = steady
    p = plan(log, when)
    longest = longest_before(log, when)
    assert 6200 < longest < 6300                     # the real 6.28 km run
    assert p["ceiling_distance_m"] == math.floor(longest * 1.1)
    assert p["ceiling_reason"]["rule"] == "session_spike"
    assert "Frandsen" in p["ceiling_reason"]["source"]
    assert "longer than your longest run of the last 30 days" in (
        p["ceiling_reason"]["flag_above"])
    assert f"{longest / 1000:.2f} km" in p["ceiling_reason"]["message"]
    assert "not zero" in p["ceiling_reason"]["message"]          # §9: ≤ 10 % is not "safe"
    assert "(10 % more than your longest run" in p["ceiling_reason"]["message"]


# Real ~3 km runs of the sample year (3.00, 3.05, 3.14 km by their GPS tracks).
THREE_KM = ["5b0091ed-6add-427e-8461-f59025c128dc", "ca16e15a-3479-4666-a255-80f6ec84c15f",
            "be72d594-e27d-4cf1-a020-23015985a4c2"]


def test_short_runs_ceiling_is_the_gps_floor_and_says_it_is_over_ten_percent(
        tmp_path: Path) -> None:
    """Longest recent run under 5 km: L1's 0.5 km GPS floor puts the ceiling more than 10 %
    above it, in Frandsen's higher-rate band — the message must not call that band 'lower'."""
    starts = every("2021-03-01T09:00:00Z", len(THREE_KM), 3)
    log = build(tmp_path, THREE_KM, starts)
    when = starts[-1] + pd.Timedelta(days=2)
    p = plan(log, when)
    longest, c = longest_before(log, when), p["ceiling_distance_m"]
    assert 2900 < longest < 3300
    assert p["ceiling_reason"]["rule"] == "session_spike"
    assert c == math.ceil(longest + 500) - 1 and c > longest * 1.1   # the 0.5 km floor
    assert report_level(log, when, "session_spike", c) == 0
    assert report_level(log, when, "session_spike", c + 1) >= 1
    message = p["ceiling_reason"]["message"]
    assert f"({(c / longest - 1) * 100:.0f} % more than your longest run" in message
    assert "not zero" not in message and "lower" not in message
    assert "more than 10 %" in message and "GPS error" in message
    assert "runs more than 10 % longer" in message and "higher overuse-injury rates" in message
    # the ceiling is rounded down: the km shown are never more than the ceiling in metres
    shown = f"{math.floor(c / 10) / 100:.2f} km"
    assert message.startswith(f"Up to {shown} (")
    assert f"Longest run without a load flag: {shown}" in render_plan(p)


def test_km_limits_are_rounded_down() -> None:
    assert _km_down(3499) == "3.49 km"       # not "3.50 km", which 3,501 m would flag
    assert _km_down(3500) == "3.50 km" and _km_down(6908) == "6.90 km" and _km_down(0) == (
        "0.00 km")


def test_ceiling_matches_the_report_one_metre_later(steady) -> None:
    log, when = steady
    c = plan(log, when)["ceiling_distance_m"]
    assert report_level(log, when, "session_spike", c) == 0
    assert report_level(log, when, "session_spike", c + 1) >= 1


def test_steady_month_has_no_holds_and_no_restart(steady) -> None:
    log, when = steady
    p = plan(log, when)
    assert p["holds"] == []
    assert p["restart"]["restart"] is False and p["restart"]["gap_days"] == 3
    assert p["ceilings"]["restart"] is None or p["ceilings"]["restart"] >= p[
        "ceiling_distance_m"]
    assert p["typical_run"]["based_on_runs"] == len(STEADY)
    assert p["disclaimer"] == DISCLAIMER
    json.dumps(p)                                    # JSON-ready as promised


# --- week distance left (L2) ----------------------------------------------------------------------
def test_week_distance_left_agrees_with_weekly_jump(steady) -> None:
    log, when = steady
    p = plan(log, when)
    left = p["week_distance_left_m"]
    assert left is not None and left > 0
    assert report_level(log, when, "weekly_jump", left) == 0
    assert report_level(log, when, "weekly_jump", left + 1) == 1
    assert "km left in your rolling 7 days" in p["week"]["message"]
    assert "above the week before" in p["week"]["flag_above"]


# --- restart (L4) -------------------------------------------------------------------------------
def test_restart_after_four_weeks_off(tmp_path: Path) -> None:
    starts = every("2021-04-01T09:00:00Z", 4, 7)
    log = build(tmp_path, SIX_KM[1:], starts)
    when = starts[-1] + pd.Timedelta(days=29)
    p = plan(log, when)
    r = p["restart"]
    assert r["restart"] is True and r["gap_days"] == 29
    assert "first run after 4 weeks off" in r["message"]
    assert "walk–run is fine" in r["message"]
    # the bands are where the report's restart rule changes level
    assert report_level(log, when, "restart", r["flag_from_m"] - 1) == 0
    assert report_level(log, when, "restart", r["flag_from_m"]) == 1
    assert report_level(log, when, "restart", r["high_from_m"] - 1) == 1
    assert report_level(log, when, "restart", r["high_from_m"]) == 2
    # the restart rule binds the ceiling below L1's band
    assert p["ceiling_reason"]["rule"] == "restart"
    assert p["ceiling_distance_m"] == r["flag_from_m"] - 1
    assert p["ceilings"]["session_spike"] > p["ceiling_distance_m"]
    assert any(h["rule"] == "restart" for h in p["holds"])
    # flag from the usual run before the break, high from the longest
    before = log.store.runs()["distance_m"]
    assert r["flag_from_m"] == math.ceil(before.median())
    assert r["high_from_m"] == math.ceil(before.max())


def test_shorter_break_is_a_restart_without_a_high_band(tmp_path: Path) -> None:
    starts = every("2021-04-01T09:00:00Z", 4, 7)
    log = build(tmp_path, SIX_KM[1:], starts)
    r = plan(log, starts[-1] + pd.Timedelta(days=20))["restart"]
    assert r["restart"] is True and r["gap_days"] == 20
    assert r["flag_from_m"] is not None and r["high_from_m"] is None   # high needs ≥ 28 days
    assert "20 days off" in r["message"] and "rates them high" not in r["message"]
    assert plan(log, starts[-1] + pd.Timedelta(days=10))["restart"]["restart"] is False


def test_week_already_above_the_jump(tmp_path: Path) -> None:
    # one 6.3 km run, a week off, then three runs on three days: 16 km vs 6.3 km
    stems = [SIX_KM[0], FIVE_KM[0], FIVE_KM[1], SIX_KM[1]]
    starts = [pd.Timestamp("2021-06-01T09:00:00Z") + pd.Timedelta(days=d) for d in (0, 8, 9, 10)]
    log = build(tmp_path, stems, starts)
    when = starts[-1] + pd.Timedelta(days=1)
    p = plan(log, when)
    assert p["week_distance_left_m"] == 0 and p["week"]["status"] == "already"
    assert "already more than 30 % above" in p["week"]["message"]
    assert report_level(log, when, "weekly_jump", 0) == 1


# --- holds (K4, C3) ----------------------------------------------------------------------------
def test_knee_pain_three_days_ago_is_a_hold(tmp_path: Path) -> None:
    starts = every("2021-03-01T09:00:00Z", len(STEADY), 3)
    log = build(tmp_path, STEADY, starts)
    when = starts[-1] + pd.Timedelta(days=3)
    before = plan(log, when)
    log.annotate("last", knee_pain=4)
    p = plan(log, when)
    holds = [h for h in p["holds"] if h["rule"] == "knee_pain_recent"]
    assert len(holds) == 1 and holds[0]["level"] == 1
    assert "Knee pain (up to 4/10) logged in the last 14 days" in holds[0]["message"]
    assert "not lowered" in holds[0]["message"]
    assert p["ceiling_distance_m"] == before["ceiling_distance_m"]
    # > 5/10: high, with the rule's own words about seeing a physiotherapist
    log.annotate("last", knee_pain=7)
    hold = next(h for h in plan(log, when)["holds"] if h["rule"] == "knee_pain_recent")
    assert hold["level"] == 2 and "physiotherapist/doctor if it persists" in hold["message"]
    # pain logged more than 14 days before the planned run no longer holds
    later = plan(log, starts[-1] + pd.Timedelta(days=15))
    assert not any(h["rule"] == "knee_pain_recent" for h in later["holds"])


def test_cramp_on_a_similar_run_is_a_hold(tmp_path: Path) -> None:
    starts = every("2021-03-01T09:00:00Z", len(STEADY), 3)
    log = build(tmp_path, STEADY, starts)
    when = starts[-1] + pd.Timedelta(days=3)
    assert not any(h["rule"] == "cramp_history" for h in plan(log, when)["holds"])
    log.annotate("last", cramp=True)                  # a real 5 km run, the usual length
    hold = next(h for h in plan(log, when)["holds"] if h["rule"] == "cramp_history")
    assert hold["level"] == 1 and "Cramps logged on 1 of your last 10 similar runs" in (
        hold["message"])
    assert "usual length" in hold["message"]
    # a planned run of similar length sees it through the report's scoring too
    p = plan(log, when, planned_distance_m=5100)
    assert any(f["rule"] == "cramp_history" for f in p["planned"]["flags"])
    # "no cramp" logged instead: nothing holds
    log.annotate("last", cramp=False)
    assert not any(h["rule"] == "cramp_history" for h in plan(log, when)["holds"])


# --- the planned run through risk.assess ----------------------------------------------------------
def test_twice_the_longest_is_session_spike_high_and_knee_high(steady) -> None:
    log, when = steady
    longest = longest_before(log, when)
    p = plan(log, when, planned_distance_m=2 * longest + 100)
    spike = [f for f in p["planned"]["flags"] if f["rule"] == "session_spike"]
    assert len(spike) == 1 and spike[0]["level"] == 2 and spike[0]["risk"] == "knee"
    assert spike[0]["value"] > 100
    assert p["planned"]["knee_risk"] == "high"
    assert p["planned"]["moving_s_estimate"] > 0
    # exactly double is "up to 100 %": still moderate, as in the report
    exact = plan(log, when, planned_distance_m=2 * longest)
    assert next(f for f in exact["planned"]["flags"] if f["rule"] == "session_spike")[
        "level"] == 1
    # at the ceiling: no load flag at all
    ok = plan(log, when, planned_distance_m=p["ceiling_distance_m"])
    assert not any(f["rule"] == "session_spike" for f in ok["planned"]["flags"])
    assert ok["planned"]["knee_risk"] == "low"


def test_planned_with_knee_pain_is_one_step_higher(steady, tmp_path: Path) -> None:
    starts = every("2021-03-01T09:00:00Z", len(STEADY), 3)
    log = build(tmp_path, STEADY, starts)
    when = starts[-1] + pd.Timedelta(days=3)
    c = plan(log, when)["ceiling_distance_m"]
    log.annotate("last", knee_pain=3)
    p = plan(log, when, planned_distance_m=c)
    assert p["planned"]["knee_risk"] == "moderate"           # low + K4 modifier
    assert any(f["rule"] == "knee_pain_recent" for f in p["planned"]["flags"])


def test_unknown_offset_is_utc(steady) -> None:
    log, when = steady
    store = log.store
    runs = store.runs().assign(tz_offset_min=pd.array([pd.NA] * len(store.runs()),
                                                      dtype="Int64"))
    p = plan_next(runs, store.annotations(), {}, when=when.tz_localize(None))
    assert p["when_utc"] == when.isoformat() and p["ceiling_distance_m"] is not None


def test_bad_planned_distance_is_an_input_error(steady) -> None:
    log, when = steady
    with pytest.raises(InputError):
        plan(log, when, planned_distance_m=0)


# --- C1 time ceiling ------------------------------------------------------------------------------
def test_time_ceiling_matches_longer_than_usual(steady) -> None:
    log, when = steady
    t = plan(log, when)["time_ceiling"]
    limit = t["moving_s"]
    assert limit is not None and limit >= 3600 - 1             # C1 needs ≥ 60 min to fire
    assert report_level(log, when, "longer_than_usual", 10_000, limit) == 0
    assert report_level(log, when, "longer_than_usual", 10_000, limit + 1) >= 1
    runs = log.store.runs()
    pace = float(np.median(runs["moving_s"] / runs["distance_m"]))
    assert t["pace_s_per_km"] == pytest.approx(pace * 1000, abs=0.1)
    assert t["distance_m_estimate"] == int(limit / pace)
    assert "an estimate" in t["message"]


# --- weather --------------------------------------------------------------------------------------
def test_runner_given_weather_is_evaluated_for_the_planned_duration(steady) -> None:
    log, when = steady
    hot = plan(log, when, planned_distance_m=12_000,
               weather={"air_temp_c": 30, "humidity_pct": 70})
    heat = next(f for f in hot["weather"]["flags"] if f["rule"] == "heat")
    assert heat["level"] >= 1 and "WBGT" in heat["message"]
    assert hot["weather"]["for_minutes"] > 60
    assert "never fetches live forecasts" in hot["weather"]["note"]
    assert hot["planned"]["safety"]
    cold = plan(log, when, planned_distance_m=12_000, weather={"air_temp_c": -5})
    assert next(f for f in cold["weather"]["flags"] if f["rule"] == "cold")["level"] == 1
    mild = plan(log, when, planned_distance_m=5_000, weather={"air_temp_c": 12,
                                                              "humidity_pct": 50})
    assert all((f["level"] or 0) == 0 for f in mild["weather"]["flags"])
    assert plan(log, when)["weather"] is None


# --- no history -----------------------------------------------------------------------------------
def test_empty_history_gives_a_clear_answer() -> None:
    empty = pd.DataFrame()
    p = plan_next(empty, empty, {}, when=pd.Timestamp("2021-05-01 08:00"))
    assert p["ceiling_distance_m"] is None and p["ceiling_reason"] is None
    assert any("start gently" in n for n in p["notes"])
    assert any("needs your height and mass" in n for n in p["notes"])
    assert p["restart"]["restart"] is False and p["holds"] == []
    text = render_plan(p)
    assert "start gently" in text and DISCLAIMER in text
    assert "This week" not in text and "Time:" not in text     # nothing to compare yet
    # the profile's time zone places a naive time when there are no runs to take it from
    east = plan_next(empty, empty, {"default_tz": "Europe/Berlin"},
                     when=pd.Timestamp("2021-05-01 08:00"))
    assert east["when_utc"] == "2021-05-01T06:00:00+00:00"
    assert east["when_local"] == "2021-05-01T08:00:00"
    planned = plan_next(empty, empty, {}, when=pd.Timestamp("2021-05-01 08:00"),
                        planned_distance_m=5000)
    assert planned["planned"]["knee_risk"] == "low"


def test_empty_history_with_bmi_over_30_gets_the_new_runner_limit(tmp_path: Path) -> None:
    profile = {"mass_kg": 100.0, "height_cm": 175.0}            # BMI 32.7
    p = plan_next(pd.DataFrame(), pd.DataFrame(), profile,
                  when=pd.Timestamp("2021-05-01 08:00", tz="UTC"))
    assert p["ceiling_reason"]["rule"] == "new_runner"
    c = p["ceiling_distance_m"]
    # check against the report: a real run as the runner's first, at c and c + 1 m
    log = build(tmp_path, [FIVE_KM[0]], [pd.Timestamp("2021-05-01T08:00:00Z")], **profile)
    runs = log.store.runs()
    for d, expected in ((c, 0), (c + 1, 1)):
        first = runs.assign(distance_m=float(d))
        _, flags = assess(first, pd.DataFrame(), profile, pd.DataFrame())
        assert flags.loc[flags["rule"] == "new_runner", "level"].iloc[0] == expected
    assert not any("needs your height" in n for n in p["notes"])


# --- output ---------------------------------------------------------------------------------------
def test_render_plan_and_local_time(steady) -> None:
    log, when = steady
    offset = int(log.store.runs()["tz_offset_min"].iloc[-1])
    local = (when + pd.Timedelta(minutes=offset)).tz_localize(None)
    p = plan(log, local, planned_distance_m=9000)        # naive = the runner's local time
    assert p["when_utc"] == when.isoformat()
    assert p["when_local"] == local.isoformat()
    text = render_plan(p)
    assert f"{math.floor(p['ceiling_distance_m'] / 10) / 100:.2f} km" in text
    assert "Planned 9.00 km" in text and "session_spike" in text
    assert "estimate" in text and DISCLAIMER in text
    assert p["ceiling_reason"]["grade"] == "A"                     # L1, RULES.md grade A
    assert f"Source: {p['ceiling_reason']['source']} (evidence grade A)" in text


def test_largest_quiet_on_a_step() -> None:
    assert largest_quiet(lambda x: float(x > 6907)) == (6907, "ok")
    assert largest_quiet(lambda x: 1.0) == (0, "already")
    assert largest_quiet(lambda x: np.nan) == (None, "not_assessed")
    assert largest_quiet(lambda x: 0.0, limit=10_000) == (None, "unbounded")
    assert largest_quiet(lambda x: float(x >= 5000) * 2, below=2) == (4999, "ok")


def test_parse_when() -> None:
    assert parse_when(None) is None and parse_when("  ") is None
    assert parse_when("2021-03-28 06:00") == pd.Timestamp("2021-03-28 06:00")
    assert parse_when("2021-03-28T09:00Z") == pd.Timestamp("2021-03-28 09:00", tz="UTC")
    with pytest.raises(InputError, match="YYYY-MM-DD HH:MM"):
        parse_when("tomorrow-ish")


def test_the_planned_run_takes_the_latest_runs_hrmax_and_its_source() -> None:
    """The planned run is judged with the HRmax its date would resolve to (the latest run's:
    same profile, same 180 days), and says whether that is an estimate."""
    from runlog.planner import hypothetical_run

    t = pd.Timestamp("2024-05-01 06:00", tz="UTC")
    runs = pd.DataFrame({"run_id": ["a", "b"], "start_utc": [t, t + pd.Timedelta(days=3)],
                         "distance_m": [5000.0, 6000.0], "moving_s": [1800.0, 2100.0],
                         "hr_max_used_bpm": [176.0, 192.0],
                         "hr_max_source": ["history_30s", "history_30s"]})
    row = hypothetical_run(runs, runs, t + pd.Timedelta(days=5), 0, 7000.0)
    assert row["hr_max_used_bpm"] == 192.0 and row["hr_max_source"] == "history_30s"
