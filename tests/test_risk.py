"""§8 scoring: worked examples, modifiers, caps, not-assessed notes, a steady history."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlog.risk import (
    DISCLAIMER,
    FLAG_COLUMNS,
    LEVEL_COLUMNS,
    assess,
    explain,
    render_explanation,
)
from runlog.rules import REGISTRY, RULE_IDS

PROFILE = {"mass_kg": 70.0, "height_cm": 178.0, "hr_max_bpm": 190, "hr_rest_bpm": 50}
START = pd.Timestamp("2024-03-04 06:30", tz="UTC")


def history(weeks: int = 8, pattern=(12.0, 8.0, 10.0, 9.0)) -> pd.DataFrame:
    """A steady runner: 4 runs a week (Mon, Wed, Fri, Sun), 8–12 km at 5:30/km."""
    days = [w * 7 + d for w in range(weeks) for d in (0, 2, 4, 6)]
    km = np.array([pattern[i % 4] for i in range(len(days))])
    n = len(days)
    return pd.DataFrame({
        "run_id": [f"r{i:03d}" for i in range(n)],
        "start_utc": START + pd.to_timedelta(days, unit="D"),
        "tz_offset_min": 60,
        "distance_m": km * 1000,
        "moving_s": km * 330.0,
        "elapsed_s": km * 335.0,
        "v_main_gap_mps": 3.03,
        "v_ngp_mps": 3.05,
        "descent_m": 60.0 + (np.arange(n) % 3) * 10,
        "steep_descent_min": 0.0,
        "avg_hr_bpm": 140.0,
        "main_hr_bpm": 142.0,
        "main_hr_pct_max": 0.74,
        "hr_max_used_bpm": 190.0,
        "best_30s_hr_bpm": 170.0,
        "avg_cadence_spm": 170.0,
        "temp_c": 12.0,
        "temp_source": "device",
        "warmup_present": True,
        "hard_start": False,
        "abrupt_finish": False,
        "finish_speed_ratio": 0.8,
        "quality_ok": True,
        "sub_sport": None,
        "gear": "Pegasus 40",
    })


def bins_for(runs: pd.DataFrame, cadence: dict | None = None) -> pd.DataFrame:
    cadence = cadence or {}
    rows = [(rid, b, 15.0, cadence.get(rid, 170.0)) for rid in runs["run_id"]
            for b in (2.75, 3.0, 3.25)]
    return pd.DataFrame(rows, columns=["run_id", "speed_bin_mps", "minutes",
                                       "median_cadence_spm"])


def add_run(runs: pd.DataFrame, day: float, km: float, **cols) -> pd.DataFrame:
    row = runs.iloc[-1].copy()
    row["run_id"] = cols.pop("run_id", "last")
    row["start_utc"] = START + pd.Timedelta(days=day)
    row["distance_m"] = km * 1000
    row["moving_s"] = km * 330.0
    row["elapsed_s"] = km * 335.0
    for k, v in cols.items():
        row[k] = v
    return pd.concat([runs, row.to_frame().T], ignore_index=True).astype(runs.dtypes.to_dict())


def flag(flags, run_id, rule, risk=None):
    f = flags[(flags["run_id"] == run_id) & (flags["rule"] == rule)]
    if risk:
        f = f[f["risk"] == risk]
    assert len(f) == 1
    return f.iloc[0]


def row(levels, run_id):
    return levels.set_index("run_id").loc[run_id]


# --- shape -----------------------------------------------------------------------------------
def test_registry_covers_the_table():
    assert len(REGISTRY) == 20 and tuple(REGISTRY) == RULE_IDS
    assert REGISTRY["session_spike"].feeds == {"knee": 3}
    assert REGISTRY["descent_spike"].feeds == {"knee": 2, "cramp": 1}
    assert REGISTRY["no_warmup"].feeds == {"knee": 1, "cramp": 1}
    assert REGISTRY["acwr"].feeds == {} and REGISTRY["heat_index"].feeds == {}
    assert all(info.source for info in REGISTRY.values())


def test_output_shape():
    runs = history(2)
    levels, flags = assess(runs, pd.DataFrame(), PROFILE, bins_for(runs))
    assert list(levels.columns) == LEVEL_COLUMNS and len(levels) == len(runs)
    assert list(flags.columns) == FLAG_COLUMNS
    # 20 rules, no_warmup and descent_spike once per risk → 22 rows per run
    assert flags.groupby("run_id").size().eq(22).all()
    assert set(flags["risk"]) <= {"knee", "cramp", "safety", "info"}
    assert str(flags["level"].dtype) == "Int8"
    assert set(flag(flags, "r003", "no_warmup", "cramp")[["weight"]]) == {1}


def test_empty_runs():
    levels, flags = assess(history(1).iloc[:0], pd.DataFrame(), {}, pd.DataFrame())
    assert levels.empty and flags.empty
    assert list(levels.columns) == LEVEL_COLUMNS and list(flags.columns) == FLAG_COLUMNS


def test_single_run_without_messages():
    runs = history(1).iloc[:1]
    levels, flags = assess(runs, pd.DataFrame(), {}, pd.DataFrame())
    assert levels["knee_risk"].tolist() == ["low"] and levels["knee_top"].tolist() == [""]
    assert len(flags) == 22


# --- steady history ----------------------------------------------------------------------------
def test_steady_history_is_low():
    runs = history(8)
    levels, flags = assess(runs, pd.DataFrame(), PROFILE, bins_for(runs))
    assert (levels["knee_risk"] == "low").all()
    assert (levels["cramp_risk"] == "low").all()
    assert (levels["safety_level"] == 0).all()
    late = levels.iloc[-8:]
    assert (late["knee_score"] == 0).all()
    # baselines exist after a few weeks: K1 and L1 are assessed
    assert flag(flags, "r031", "low_cadence")["level"] == 0
    assert flag(flags, "r031", "session_spike")["level"] == 0


# --- §8.5 worked examples ------------------------------------------------------------------------
def test_forty_percent_spike_alone_is_knee_moderate():
    runs = add_run(history(6), 6 * 7 + 1, 16.8)          # 12 km longest → +40 %
    levels, flags = assess(runs, pd.DataFrame(), PROFILE, bins_for(runs))
    r = row(levels, "last")
    assert flag(flags, "last", "session_spike")["level"] == 1
    assert r["knee_score"] == 3 and r["knee_risk"] == "moderate"
    assert r["knee_top"].startswith("This run was 40 % longer than your longest run")
    # L2 is not scored when L1 fires
    assert flag(flags, "last", "weekly_jump")["weight"] == 0


def test_more_than_double_is_knee_high():
    runs = add_run(history(6), 6 * 7 + 1, 24.5)
    levels, _ = assess(runs, pd.DataFrame(), PROFILE, bins_for(runs))
    assert row(levels, "last")["knee_risk"] == "high"


def hot_long_run(**profile):
    # longest of the month: 93 min, 10 days before; then 2 h 10 min (+40 %)
    runs = add_run(history(6), 6 * 7 - 9, 93 * 60 / 330, run_id="long")
    runs = add_run(runs, 6 * 7 + 1, 130 * 60 / 330, run_id="hot")
    runs.loc[runs.run_id == "hot", "elapsed_s"] = 130 * 60.0
    ann = pd.DataFrame({"run_id": ["hot"], "air_temp_c": [22.0], "humidity_pct": [60.0],
                        "fluid_l": [1.0]})
    return assess(runs, ann, {**PROFILE, **profile}, bins_for(runs))


def test_hot_long_run_is_cramp_moderate():
    levels, flags = hot_long_run()
    assert flag(flags, "hot", "longer_than_usual")["level"] == 1           # 2 points
    assert flag(flags, "hot", "heat")["level"] == 1
    assert flag(flags, "hot", "fluid_deficit")["level"] == 1
    assert flag(flags, "hot", "sodium_no_electrolytes")["level"] == 1
    r = row(levels, "hot")
    assert r["cramp_score"] == 5 and r["cramp_risk"] == "moderate"
    assert r["safety_level"] == 1 and "WBGT" in r["safety_top"]
    assert len(r["cramp_top"].split(" | ")) == 3
    assert r["cramp_top"].startswith("2 h 10 min, 40 % longer than anything this month")


def test_hot_long_run_with_cramp_history_is_high():
    levels, flags = hot_long_run(cramp_prone=True)
    assert row(levels, "hot")["cramp_risk"] == "high"
    assert flag(flags, "hot", "cramp_history")["weight"] == 0


def test_cramp_modifier_needs_score_of_two():
    runs = history(4)
    levels, _ = assess(runs, pd.DataFrame(), {**PROFILE, "cramp_prone": True}, bins_for(runs))
    assert (levels["cramp_score"] < 2).all() and (levels["cramp_risk"] == "low").all()


def test_logged_cramp_on_comparable_run_raises_cramp():
    levels, _ = hot_long_run()
    runs = add_run(history(6), 6 * 7 - 9, 93 * 60 / 330, run_id="long")
    runs = add_run(runs, 6 * 7 + 1, 130 * 60 / 330, run_id="hot")
    runs.loc[runs.run_id == "hot", "elapsed_s"] = 130 * 60.0
    ann = pd.DataFrame({"run_id": ["hot", "r020"], "air_temp_c": [22.0, np.nan],
                        "humidity_pct": [60.0, np.nan], "fluid_l": [1.0, np.nan],
                        "cramp": [None, True]})
    # r020 (12 km, 66 min) is not comparable to a 130-min run → no change
    levels2, _ = assess(runs, ann, PROFILE, bins_for(runs))
    assert row(levels2, "hot")["cramp_risk"] == row(levels, "hot")["cramp_risk"] == "moderate"


# --- knee modifiers and caps ---------------------------------------------------------------------
def test_recent_knee_pain_raises_one_level():
    runs = history(6)
    ann = pd.DataFrame({"run_id": ["r020"], "knee_pain": [3.0]})
    levels, _ = assess(runs, ann, PROFILE, bins_for(runs))
    assert row(levels, "r020")["knee_risk"] == "low"           # its own pain: after the run
    assert row(levels, "r021")["knee_risk"] == "moderate"
    assert "Knee pain (up to 3/10)" in row(levels, "r021")["knee_top"]
    assert row(levels, "r021")["knee_score"] == 0               # a modifier, not points


def test_severe_or_lasting_knee_pain_is_high():
    runs = history(6)
    for ann in (pd.DataFrame({"run_id": ["r020"], "knee_pain": [6.0]}),
                pd.DataFrame({"run_id": ["r020"], "knee_pain": [2.0],
                              "knee_pain_next_morning": [True]})):
        levels, _ = assess(runs, ann, PROFILE, bins_for(runs))
        r = row(levels, "r021")
        assert r["knee_risk"] == "high"
        assert "see a physiotherapist/doctor if it persists" in r["knee_top"]


def test_injury_history_only_with_another_knee_flag():
    runs = history(6)
    levels, _ = assess(runs, pd.DataFrame(), {**PROFILE, "knee_injury_history": True},
                       bins_for(runs))
    # week 2's jump (weekly_jump, 2 points) is "another knee rule": +1 there; later all low
    assert row(levels, "r004")["knee_risk"] == "moderate"
    assert (levels.iloc[8:]["knee_risk"] == "low").all()
    runs = add_run(history(6), 6 * 7 + 1, 16.8)
    levels, _ = assess(runs, pd.DataFrame(), {**PROFILE, "knee_injury_history": True},
                       bins_for(runs))
    r = row(levels, "last")
    assert r["knee_risk"] == "high" and "previous injury" in r["modifiers"]
    # RULES.md K4: previous injury of any site, "among" the most consistent (not "the")
    assert "among the most consistent risk factors" in r["modifiers"]
    assert "knee injury" not in r["modifiers"]


def test_levels_are_capped_at_high():
    runs = add_run(history(6), 6 * 7 + 1, 30.0)
    ann = pd.DataFrame({"run_id": ["r023"], "knee_pain": [7.0]})
    levels, _ = assess(runs, ann, {**PROFILE, "knee_injury_history": True}, bins_for(runs))
    assert row(levels, "last")["knee_risk"] == "high"


def test_scores_add_weights_times_levels():
    # spike (3×1) + descent spike (2×2 knee, 1×2 cramp) + low cadence (2×1) → knee 9 → high
    runs = add_run(history(6), 6 * 7 + 1, 16.8, descent_m=400.0)
    bins = bins_for(runs, {"last": 155.0})
    levels, flags = assess(runs, pd.DataFrame(), PROFILE, bins)
    assert flag(flags, "last", "descent_spike", "knee")["level"] == 2
    assert flag(flags, "last", "low_cadence")["level"] == 1
    r = row(levels, "last")
    assert r["knee_score"] == 3 + 4 + 2 and r["knee_risk"] == "high"
    assert r["cramp_score"] >= 2
    assert len(r["knee_top"].split(" | ")) == 3
    assert r["knee_top"].startswith("400 m of descent")         # w·ℓ = 4 first


def test_weekly_jump_scores_when_no_spike():
    # 3 runs of 12 km in 3 days after a 10-km week: weekly jump, no single-run spike
    runs = history(4, pattern=(12.0, 8.0, 10.0, 9.0))
    runs = add_run(runs, 28, 12.0, run_id="a")
    runs = add_run(runs, 29, 12.0, run_id="b")
    runs = add_run(runs, 30, 12.0, run_id="c")
    runs = add_run(runs, 31, 12.0, run_id="d")
    levels, flags = assess(runs, pd.DataFrame(), PROFILE, bins_for(runs))
    f = flag(flags, "d", "weekly_jump")
    assert f["level"] == 1 and f["weight"] == 2
    assert row(levels, "d")["knee_score"] == 2 and row(levels, "d")["knee_risk"] == "low"


# --- not assessed -------------------------------------------------------------------------------
def test_not_assessed_notes():
    runs = history(3)
    runs["temp_c"] = 25.0
    runs["avg_hr_bpm"] = np.nan
    runs["main_hr_pct_max"] = np.nan
    runs["warmup_present"] = False
    levels, flags = assess(runs, pd.DataFrame(), {"mass_kg": 70.0}, bins_for(runs))
    first = row(levels, "r000")["not_assessed"]
    assert "No humidity — heat not assessed" in first
    assert "No height/mass — new-runner rule not assessed" in first
    assert "No HR — intensity from pace" in row(levels, "r011")["not_assessed"]
    h = flag(flags, "r011", "heat")
    assert pd.isna(h["level"]) and h["note"] == "No humidity — heat not assessed"


def test_poor_quality_run_is_not_assessed_and_not_a_baseline():
    runs = add_run(history(6), 6 * 7 + 1, 40.0, run_id="bad", quality_ok=False)
    runs = add_run(runs, 6 * 7 + 2, 12.0, run_id="after", quality_ok=True)
    levels, flags = assess(runs, pd.DataFrame(), PROFILE, bins_for(runs))
    f = flag(flags, "bad", "session_spike")
    assert pd.isna(f["level"]) and "quality" in f["note"]
    assert flag(flags, "after", "session_spike")["level"] == 0
    assert row(levels, "after")["knee_risk"] == "low"


QUALITY_NOTE = "Data quality too poor for this rule — not assessed"


def damaged(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs as too damaged to assess (quality_ok False, e.g. quality issue too_short)."""
    return runs.assign(quality_ok=False)


#: Annotations that would raise nearly every rule on a good run (cramps on comparable runs,
#: knee pain, heat, no fluid, no electrolytes, sandals).
def loud_annotations(run_ids) -> pd.DataFrame:
    ids = list(run_ids)
    n = len(ids)
    return pd.DataFrame({"run_id": ids, "cramp": [True] * n, "knee_pain": [7.0] * n,
                         "knee_pain_next_morning": [True] * n, "air_temp_c": [33.0] * n,
                         "humidity_pct": [70.0] * n, "wind_kmh": [40.0] * n,
                         "fluid_l": [0.0] * n, "electrolytes": [False] * n,
                         "mass_before_kg": [70.0] * n, "shoe_type": ["sandals"] * n})


def assert_not_assessed(levels, flags, run_ids) -> None:
    """Every rule of every run in ``run_ids`` not assessed for data quality, no level."""
    f = flags[flags["run_id"].isin(run_ids)]
    assert len(f) == 22 * len(run_ids)
    assert f["level"].isna().all(), f.loc[f["level"].notna(), "rule"].tolist()
    assert (f["note"] == QUALITY_NOTE).all() and (f["message"] == "").all()
    assert f["value"].isna().all()
    r = levels[levels["run_id"].isin(run_ids)]
    assert r["knee_risk"].isna().all() and r["cramp_risk"].isna().all()
    assert r["knee_score"].isna().all() and r["cramp_score"].isna().all()
    assert (r["knee_top"] == "").all() and (r["cramp_top"] == "").all()
    assert (r["safety_level"] == 0).all() and (r["safety_top"] == "").all()
    assert (r["not_assessed"] == QUALITY_NOTE).all()


@pytest.mark.parametrize("n", [1, 2, 12])
@pytest.mark.parametrize("annotated", [False, True])
def test_only_runs_too_damaged_to_assess(n, annotated):
    """A store whose runs are all too damaged to assess (a 57-s FIT file): every rule, the
    levels and the report's explanation work and say 'not assessed' (no IndexError)."""
    runs = damaged(history(3).iloc[:n])
    ann = loud_annotations(runs["run_id"]) if annotated else pd.DataFrame()
    profile = {**PROFILE, "cramp_prone": True, "knee_injury_history": True}
    levels, flags = assess(runs, ann, profile, bins_for(runs))
    assert list(levels.columns) == LEVEL_COLUMNS and len(levels) == n
    assert list(flags.columns) == FLAG_COLUMNS
    assert_not_assessed(levels, flags, list(runs["run_id"]))
    info = explain(levels, flags, runs["run_id"].iloc[-1])
    assert info["knee_risk"] is None and info["cramp_risk"] is None
    assert info["knee_score"] is None and info["flags"] == []
    assert info["not_assessed"] == [QUALITY_NOTE]
    json.dumps(info, allow_nan=False, default=str)        # valid JSON: no NaN
    text = render_explanation(info)
    assert "Knee pain risk: not assessed" in text and "Cramp risk: not assessed" in text
    assert QUALITY_NOTE in text


def test_damaged_run_stays_out_of_every_rule():
    """A damaged run among good ones: no rule flags it (C3 cramp history, K4 knee pain, heat,
    fluid, shoes … included), so it adds nothing to a week's flags; the good runs around it
    are assessed as without it."""
    good = history(6)
    # on the evening between r022 and r023, without the shoes (their mileage counts every run)
    runs = add_run(good, 6 * 7 - 2.5, 10.0, run_id="bad", quality_ok=False, gear=None)
    cramps = pd.DataFrame({"run_id": ["r020", "r021", "r022"], "cramp": [True] * 3})
    loud = loud_annotations(["bad"]).drop(columns=["cramp", "knee_pain",
                                                   "knee_pain_next_morning"])
    ann = pd.concat([cramps, loud], ignore_index=True)
    profile = {**PROFILE, "cramp_prone": True}
    levels, flags = assess(runs, ann, profile, bins_for(runs))
    assert_not_assessed(levels, flags, ["bad"])
    # C3 on a good run of the same length still sees the earlier cramps (bug: the damaged
    # run got cramp_history too, and a flag in its week's flag_count)
    assert flag(flags, "r023", "cramp_history")["level"] == 1
    want_levels, want_flags = assess(good, cramps, profile, bins_for(good))
    got = flags[flags["run_id"] != "bad"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want_flags.reset_index(drop=True))
    pd.testing.assert_frame_equal(levels[levels["run_id"] != "bad"].reset_index(drop=True),
                                  want_levels.reset_index(drop=True))


def test_annotations_indexed_by_run_id_and_local_time():
    runs = history(6)
    ann = pd.DataFrame({"knee_pain": [3.0]}, index=pd.Index(["r020"], name="run_id"))
    levels, _ = assess(runs, ann, PROFILE, bins_for(runs))
    assert row(levels, "r021")["knee_risk"] == "moderate"


def test_weather_columns_feed_heat_and_runner_wins():
    runs = history(3)
    runs["weather_air_temp_c"] = 30.0
    runs["weather_humidity_pct"] = 50.0
    ann = pd.DataFrame({"run_id": ["r011"], "air_temp_c": [10.0], "humidity_pct": [50.0]})
    levels, flags = assess(runs, ann, PROFILE, bins_for(runs))
    hot = flag(flags, "r010", "heat")
    assert hot["value"] == pytest.approx(29.26, abs=0.01) and hot["level"] == 2
    assert flag(flags, "r011", "heat")["level"] == 0
    assert row(levels, "r010")["safety_level"] == 2


# --- explain ------------------------------------------------------------------------------------
def test_explain():
    levels, flags = hot_long_run()
    out = explain(levels, flags, "hot")
    assert out["cramp_risk"] == "moderate" and out["cramp_score"] == 5
    assert {f["rule"] for f in out["flags"]} >= {"longer_than_usual", "heat", "fluid_deficit",
                                                "sodium_no_electrolytes"}
    assert out["disclaimer"] == DISCLAIMER
    assert "not medical advice" in DISCLAIMER and "not your probability" in DISCLAIMER
    assert "weights and cut-offs are uncalibrated heuristics" in DISCLAIMER   # RULES.md §8.6
    assert isinstance(out["not_assessed"], list) and isinstance(out["knee_top"], list)
    assert any(i["rule"] == "acwr" for i in out["info"])
    with pytest.raises(Exception, match="no assessed run"):
        explain(levels, flags, "nope")
    text = render_explanation(out)
    assert "Cramp risk: moderate (score 5)" in text and DISCLAIMER in text
    # each flag shows its rule's evidence grade beside its source (RULES.md grades)
    from runlog.rules import REGISTRY
    lines = text.splitlines()
    for f in out["flags"]:
        line = next(x for x in lines if x.startswith(f"  {f['rule']} [{f['risk']}] level "))
        assert line.endswith(f" — {f['source']} (evidence grade {REGISTRY[f['rule']].grade})")
    assert any(x.startswith("  longer_than_usual [cramp]") and x.endswith("(evidence grade B)")
               for x in lines)
    assert any(x.startswith("  heat [cramp]") and x.endswith("(evidence grade C)") for x in lines)
    assert ("  Evidence grades (RULES.md): A large prospective cohort or official formula · "
            "B smaller cohort") in text


def test_messages_never_give_fixed_fluid_volumes():
    _, flags = hot_long_run()
    text = " ".join(flags["message"]).lower()
    assert "drink to thirst" in text
    for bad in ("drink as much", "drink at least", "litres per hour", "ml per"):
        assert bad not in text


# --- §8 scoring on numpy blocks vs the pandas long-table version it replaced ----------------------
def _pandas_flags(results: dict) -> pd.DataFrame:
    """The former flags_table: one row per (run, rule, risk), built column by column."""
    from runlog.risk import _risk_rows

    spike = results["session_spike"]["level"].astype("float64").fillna(0).to_numpy()
    cols: dict[str, list] = {c: [] for c in FLAG_COLUMNS}
    for rule_id in RULE_IDS:
        res = results[rule_id]
        n = len(res)
        for risk, weight in _risk_rows(rule_id):
            w = np.full(n, weight, dtype="int64")
            if rule_id == "weekly_jump":
                w = np.where(spike >= 1, 0, w)
            cols["run_id"].append(res.index.to_numpy(dtype=object))
            cols["rule"].append(np.full(n, rule_id, dtype=object))
            cols["risk"].append(np.full(n, risk, dtype=object))
            cols["level"].append(res["level"].astype("float64").to_numpy())
            for c in ("value", "threshold"):
                cols[c].append(res[c].to_numpy(dtype="float64"))
            for c in ("unit", "message", "note"):
                cols[c].append(res[c].to_numpy(dtype=object))
            cols["source"].append(np.full(n, REGISTRY[rule_id].source, dtype=object))
            cols["weight"].append(w)
    flags = pd.DataFrame({c: np.concatenate(v) for c, v in cols.items()})
    flags["level"] = flags["level"].astype("float64").astype("Int8")
    return flags


def _pandas_join(run_id: pd.Series, text: pd.Series, run_ids: pd.Index) -> pd.Series:
    """The former join_by_run: texts joined with ' | ' per run, in their order."""
    ids = run_id.to_numpy(dtype=object)
    order = np.argsort(ids, kind="stable")
    ids, texts = ids[order], text.to_numpy(dtype=object)[order].tolist()
    if not len(ids):
        return pd.Series("", index=run_ids, dtype=object)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    joined = {ids[a]: " | ".join(texts[a:b]) for a, b in zip(starts, ends, strict=True)}
    return pd.Series(joined, dtype=object).reindex(run_ids).fillna("")


def _pandas_top(flags: pd.DataFrame, risk: str, run_ids: pd.Index) -> pd.Series:
    from runlog.risk import MODIFIER_RANK

    f = flags[(flags["risk"] == risk) & (flags["message"] != "")].copy()
    lvl = f["level"].astype("float64").fillna(0)
    rank = f["rule"].map(MODIFIER_RANK).astype("float64").fillna(0)
    f["key"] = np.where(rank > 0, rank * lvl, f["weight"] * lvl)
    f["order"] = f["rule"].map({r: i for i, r in enumerate(RULE_IDS)}).astype("float64")
    f = f[f["key"] > 0].sort_values(["run_id", "key", "order"], ascending=[True, False, True])
    f = f[f.groupby("run_id").cumcount() < 3]
    return _pandas_join(f["run_id"], f["message"], run_ids)


def _pandas_combine(results: dict, profile: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The former tail of assess: scores, modifiers and texts by grouping the flags table."""
    from runlog.risk import INJURY_HISTORY_MESSAGE, RISK_NAMES, SAFETY_RULES, _grade

    flags = _pandas_flags(results)
    ids = results["session_spike"].index
    lvl = flags["level"].astype("float64").fillna(0)
    points = (lvl * flags["weight"]).groupby([flags["run_id"], flags["risk"]]).sum()
    knee_score = points.xs("knee", level="risk").reindex(ids).fillna(0).to_numpy()
    cramp_score = points.xs("cramp", level="risk").reindex(ids).fillna(0).to_numpy()

    def level_of(rule_id):
        return results[rule_id]["level"].astype("float64").fillna(0).to_numpy()

    knee = _grade(knee_score, level_of("session_spike"))
    cramp = _grade(cramp_score)
    pain = level_of("knee_pain_recent")
    knee = np.where(pain >= 1, knee + 1, knee)
    knee = np.where(pain >= 2, 2, knee)
    knee_rules = flags[(flags["risk"] == "knee") & (flags["weight"] > 0)]
    any_knee = (knee_rules["level"].astype("float64").fillna(0) >= 1).groupby(
        knee_rules["run_id"]).any().reindex(ids).fillna(False).to_numpy(dtype=bool)
    injury_step = bool(profile.get("knee_injury_history")) & any_knee
    knee = np.where(injury_step, knee + 1, knee)
    cramp_step = (level_of("cramp_history") >= 1) & (cramp_score >= 2)
    cramp = np.where(cramp_step, cramp + 1, cramp)
    knee, cramp = np.minimum(knee, 2), np.minimum(cramp, 2)
    safety = np.maximum.reduce([level_of(r) for r in SAFETY_RULES])
    safe_f = flags[flags["rule"].isin(SAFETY_RULES) & (flags["message"] != "")
                   & (flags["level"].astype("float64").fillna(0) >= 1)]
    noted = flags[flags["note"] != ""].drop_duplicates(["run_id", "note"])
    names = np.array(RISK_NAMES, dtype=object)
    levels = pd.DataFrame({
        "run_id": ids.to_numpy(),
        "knee_score": knee_score,
        "cramp_score": cramp_score,
        "knee_risk": names[knee.astype(int)],
        "cramp_risk": names[cramp.astype(int)],
        "knee_top": _pandas_top(flags, "knee", ids).to_numpy(),
        "cramp_top": _pandas_top(flags, "cramp", ids).to_numpy(),
        "safety_level": pd.array(safety.astype(int), dtype="Int8"),
        "safety_top": _pandas_join(safe_f["run_id"], safe_f["message"], ids).to_numpy(),
        "modifiers": np.where(injury_step, INJURY_HISTORY_MESSAGE, ""),
        "not_assessed": _pandas_join(noted["run_id"], noted["note"], ids).to_numpy(),
    })
    return levels, flags


def rule_results(n: int, seed: int) -> dict:
    """Random rule frames for ``n`` runs: levels, shared and repeated messages and notes."""
    from runlog.rules.base import rule_frame

    rng = np.random.default_rng(seed)
    ids = pd.Index(rng.permutation([f"r{i}" for i in range(n)]))
    texts = np.array(["", "", "a", "b", "c d"], dtype=object)
    notes = np.array(["", "", "poor data", "no HR"], dtype=object)
    out = {}
    for rule_id in RULE_IDS:
        level = rng.choice([np.nan, 0.0, 1.0, 2.0], n)
        value = np.where(rng.random(n) < 0.2, np.nan, rng.normal(0, 5, n))
        out[rule_id] = rule_frame(ids, level, value, 1.0, rng.choice(texts),
                                  rng.choice(texts, n), rng.choice(notes, n))
    return out


@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=60, deadline=None)
def test_combine_matches_the_pandas_long_table_version(n, seed, injured):
    from runlog.risk import combine

    results = rule_results(n, seed)
    profile = {"knee_injury_history": injured}
    levels, flags = combine(results, profile)
    want_levels, want_flags = _pandas_combine(results, profile)
    pd.testing.assert_frame_equal(flags, want_flags, check_exact=True)
    pd.testing.assert_frame_equal(levels, want_levels, check_exact=True)


def test_duplicate_run_ids_are_refused():
    runs = history(1)
    runs.loc[1, "run_id"] = runs.loc[0, "run_id"]
    with pytest.raises(ValueError, match="unique"):
        assess(runs, pd.DataFrame(), PROFILE, bins_for(runs))


@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=40, deadline=None)
def test_combine_leaves_runs_not_assessable_out_of_every_rule(n, seed, injured):
    """combine with ``assessed`` = the pandas version on results where those runs are not
    assessed by any rule, with their knee/cramp levels and scores missing."""
    from runlog.risk import combine
    from runlog.rules.base import rule_frame

    results = rule_results(n, seed)
    assessed = np.random.default_rng(seed + 1).random(n) < 0.5
    profile = {"knee_injury_history": injured}
    levels, flags = combine(results, profile, assessed)
    bad = ~assessed
    masked = {rule: rule_frame(
        res.index, np.where(bad, np.nan, res["level"].astype("float64")),
        np.where(bad, np.nan, res["value"]), res["threshold"], res["unit"].to_numpy(object),
        np.where(bad, "", res["message"].to_numpy(object)),
        np.where(bad, QUALITY_NOTE, res["note"].to_numpy(object)))
        for rule, res in results.items()}
    want_levels, want_flags = _pandas_combine(masked, profile)
    for c in ("knee_score", "cramp_score"):
        want_levels[c] = np.where(bad, np.nan, want_levels[c])
    for c in ("knee_risk", "cramp_risk"):
        want_levels[c] = want_levels[c].where(assessed, None)
    pd.testing.assert_frame_equal(flags, want_flags, check_exact=True)
    pd.testing.assert_frame_equal(levels, want_levels, check_exact=True, check_dtype=False)
    assert levels.loc[bad, "knee_risk"].isna().all()
    assert levels.loc[assessed, "knee_risk"].notna().all()
