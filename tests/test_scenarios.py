"""Risk scenarios built from real runs placed on chosen dates (RULES.md §1–§8, end to end).

Each scenario copies real recordings from the bundled sample (one runner's phone GPX year) or
the corpus, moves their timestamps to chosen dates — the track, pace and heart rate stay as
recorded — imports them through the normal pipeline, adds what the runner would log, and
checks the flags and levels the report gives.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd

import runlog

REPO = Path(__file__).resolve().parents[1]
SESSION = REPO / "data" / "sample" / "runpandas-session"
ISO_TIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})")

# Real runs of the sample year with clean data (distance as imported).
FIVE_KM = ["fa0d167b-893e-4e48-8ee9-7aca5b6aebb0", "a68bfaae-d6e8-4dab-a931-689bce3baa24",
           "dbb3a010-2584-4c98-a346-4f1bc00f1d3a", "e3f2100c-f9f8-4897-b4f6-278dffa6143c",
           "5a37ceaf-18be-46ed-8a81-df908f8cbd3f", "36bb9510-27b3-4c13-9d68-55b59af24ec3"]
SIX_KM = ["b98b1c3e-7c2e-427f-8064-0df0e38b789e",  # 6.28 km, the longest of these
          "038a22f7-eb5e-44f9-a551-de14d84d8524", "bf9be49e-05ce-4587-a535-2509bbf1bc83",
          "531a7cd6-3ae1-4a03-99dc-f6fcb8d97eb0", "e72ac978-0e43-493a-b4f2-50102b64939a"]
TWELVE_KM = "3f39b522-95e1-40a1-8707-79443ae64be8"      # 12.69 km
HOUR_RUN = "f9f17bc7-6763-4bf4-8428-df0c95a9ac32"       # 10.16 km in 66 min
TWO_HOUR_TCX = ("corriporai__runpandas/runpandas/tests/io/data/samples/"
                "2020-12-20T05_50_47-300_Running.tcx")  # 16.1 km in 1 h 58 min


def placed(data: bytes, start_utc: str, stretch: float = 1.0) -> bytes:
    """The file with every timestamp moved so the recording starts at ``start_utc``.

    ``stretch`` > 1 slows the clock (same track, proportionally longer times).
    """
    found = [m.group().decode() for m in ISO_TIME.finditer(data)]
    times = pd.to_datetime(pd.Series(found), utc=True, format="ISO8601")
    first = times.min()
    moved = pd.Timestamp(start_utc) + (times - first) * stretch
    text = iter(moved.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(
        r"\.(\d{3})\d{3}Z", r".\1Z", regex=True))
    return ISO_TIME.sub(lambda _: next(text).encode(), data)


def session_run(stem: str) -> bytes:
    return gzip.decompress((SESSION / f"{stem}.gpx.gz").read_bytes())


def build(tmp_path: Path, plan: list[tuple[str, bytes, str]], **profile) -> runlog.RunLog:
    """Write each (name, bytes, start) as a file placed on its date, import them all."""
    folder = tmp_path / "files"
    folder.mkdir()
    for i, (suffix, data, start) in enumerate(plan):
        (folder / f"{i:03d}.{suffix}").write_bytes(placed(data, start))
    log = runlog.open_store(tmp_path / "store")
    if profile:
        log.set_profile(**profile)
    result = log.import_paths([folder])
    assert result.counts()["new_runs"] == len(plan), [o.reason for o in result.outcomes]
    return log


def flag(log: runlog.RunLog, rule: str, run: str = "last") -> pd.Series:
    flags = log.flags(run=run)
    rows = flags[flags["rule"] == rule]
    assert len(rows), f"{rule} not assessed at all"
    return rows.iloc[0]


def last_run(log: runlog.RunLog) -> pd.Series:
    return log.runs().iloc[-1]


def every_few_days(first: str, n: int, days: float) -> list[str]:
    base = pd.Timestamp(first)
    return [(base + pd.Timedelta(days=days * i)).isoformat() for i in range(n)]


def test_spike_after_a_steady_month_is_session_spike_high(tmp_path: Path) -> None:
    starts = every_few_days("2021-03-01T06:00:00Z", 7, 5)
    plan = [("gpx", session_run(s), t) for s, t in zip(FIVE_KM, starts[:6], strict=True)]
    plan.append(("gpx", session_run(TWELVE_KM), starts[6]))
    log = build(tmp_path, plan)
    spike = flag(log, "session_spike")
    assert spike["level"] == 2  # > 100 % longer than the longest of the last 30 days
    assert spike["value"] > 100 and spike["threshold"] == 100
    assert "longer than your longest run of the last 30 days" in spike["message"]
    assert "Frandsen" in spike["source"]
    assert last_run(log)["knee_risk"] == "high"
    earlier = log.runs().iloc[:-1]
    assert (earlier["knee_risk"] != "high").all()


def test_return_after_four_weeks_off_is_restart(tmp_path: Path) -> None:
    before = every_few_days("2021-04-01T06:00:00Z", 4, 7)  # a steady month
    after = (pd.Timestamp(before[-1]) + pd.Timedelta(days=29)).isoformat()
    plan = [("gpx", session_run(s), t) for s, t in zip(SIX_KM[1:], before, strict=True)]
    plan.append(("gpx", session_run(SIX_KM[0]), after))  # as long as the longest before
    log = build(tmp_path, plan)
    restart = flag(log, "restart")
    assert restart["level"] == 2  # gap ≥ 28 d and at least the longest run before the gap
    assert restart["value"] >= 28
    assert last_run(log)["knee_risk"] in ("moderate", "high")
    assert (log.flags()["rule"].eq("restart") & log.flags()["level"].fillna(0).gt(0)).sum() == 1


def test_hot_two_hour_run_without_electrolytes_then_with(corpus: Path, tmp_path: Path) -> None:
    # The corpus's longest real run is 1 h 58 min; its clock is slowed by 5 % to reach two
    # hours (same route, heart rate and cadence, 5 % slower pace).
    data = placed((corpus / TWO_HOUR_TCX).read_bytes(), "2021-07-10T07:00:00Z", stretch=1.05)
    log = build(tmp_path, [("tcx", data, "2021-07-10T07:00:00Z")], mass_kg=70)
    assert last_run(log)["elapsed_s"] >= 2 * 3600
    log.annotate("last", air_temp_c=30, humidity_pct=60, electrolytes=False)
    heat, sodium = flag(log, "heat"), flag(log, "sodium_no_electrolytes")
    assert heat["level"] >= 1 and heat["unit"] == "°C"
    assert sodium["level"] == 1 and "No electrolytes logged" in sodium["message"]
    assert "estimate" in sodium["message"].lower() or "Estimated" in sodium["message"]
    assert last_run(log)["cramp_risk"] in ("moderate", "high")
    log.annotate("last", electrolytes=True)
    assert flag(log, "sodium_no_electrolytes")["level"] == 0


def test_an_hour_at_minus_five_is_cold(tmp_path: Path) -> None:
    log = build(tmp_path, [("gpx", session_run(HOUR_RUN), "2021-01-20T07:00:00Z")])
    before = flag(log, "cold")
    assert pd.isna(before["level"]) and "temperature" in before["note"]  # not assessed
    log.annotate("last", air_temp_c=-5)
    cold = flag(log, "cold")
    assert cold["level"] == 1  # capped at moderate: cold is not shown to cause cramps
    assert cold["value"] == -5 and cold["unit"] == "°C"


def test_steady_consistent_history_stays_low(tmp_path: Path) -> None:
    # Eight weeks, three runs a week, each run one of the runner's real 5–6 km runs,
    # the longest first so that nothing is a step up.
    files = SIX_KM + FIVE_KM
    starts = [t for week in range(8) for t in every_few_days(
        (pd.Timestamp("2021-01-04T06:30:00Z") + pd.Timedelta(weeks=week)).isoformat(), 3, 2)]
    plan = [("gpx", session_run(files[i % len(files)]), t) for i, t in enumerate(starts)]
    log = build(tmp_path, plan)
    runs = log.runs()
    assert len(runs) == 24
    # The log's second week is compared with its partial first week (L2 counts from 5 km),
    # so the steady history is judged from the third week on, once two full weeks exist.
    settled = runs[runs["start_local"] >= runs["start_local"].min() + pd.Timedelta(days=14)]
    assert len(settled) == 18
    assert (settled["knee_risk"] == "low").all(), settled[["start_local", "knee_top"]]
    assert (settled["cramp_risk"] == "low").all(), settled[["start_local", "cramp_top"]]
    assert (runs["knee_risk"] != "high").all() and (runs["cramp_risk"] != "high").all()
    spikes = log.flags()
    spikes = spikes[spikes["rule"] == "session_spike"]["level"].astype("float64")
    assert np.nanmax(spikes.to_numpy()) == 0
