"""Turn rule levels into a knee level and a cramp level per run (RULES.md §8), with reasons.

:func:`assess` runs every rule of :data:`runlog.rules.REGISTRY` over the whole history at once
and returns ``(levels, flags)``; :func:`explain` gathers what the report shows for one run.
Weights and cut-offs are uncalibrated heuristics; :data:`DISCLAIMER` must accompany outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from runlog.errors import RunNotFoundError
from runlog.localtime import local_start
from runlog.report_text import DISCLAIMER  # kept with the runs table's texts (no pandas)
from runlog.rules import REGISTRY, RULE_IDS, rule_grade
from runlog.rules import cramp as C
from runlog.rules import environment as E
from runlog.rules import knee as K
from runlog.rules import load as L
from runlog.rules import sweat as S
from runlog.rules import thresholds as T
from runlog.rules import warmup as W
from runlog.rules.base import GRADE_MEANINGS, HIGH, MODERATE, level_array, str_array

RISK_NAMES = ("low", "moderate", "high")
LEVEL_COLUMNS = ["run_id", "knee_score", "cramp_score", "knee_risk", "cramp_risk", "knee_top",
                 "cramp_top", "safety_level", "safety_top", "modifiers", "not_assessed"]
FLAG_COLUMNS = ["run_id", "rule", "risk", "level", "value", "threshold", "unit", "message",
                "source", "weight", "note"]
SAFETY_RULES = ("heat", "wind_chill")
#: Messages shown per risk (RULES.md §8.4: the top 3 by w·ℓ).
TOP_MESSAGES = 3
#: Sort key per level for the modifiers in the top-3 lists (they carry no weight) [design].
MODIFIER_RANK = {"knee_pain_recent": 3, "cramp_history": 1}
INJURY_HISTORY_MESSAGE = ("A previous injury is among the most consistent risk factors in "
                          "runners, so the knee level is one step higher.")
SEP = " | "
#: The grade letters of ``report --run``, in a runner's words (RULES.md "Grade → weight").
EVIDENCE_KEY = " · ".join(f"{k} {v}" for k, v in GRADE_MEANINGS.items())

_ANNOTATION_FIELDS = ("electrolytes", "sodium_mg", "fluid_l", "knee_pain", "knee_pain_next_morning",
                      "cramp", "shoes", "shoe_type", "rpe", "air_temp_c", "humidity_pct",
                      "wind_kmh", "mass_before_kg", "mass_after_kg", "warmed_up_before")


def _num(profile: dict, key: str) -> float:
    value = (profile or {}).get(key)
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def _col(frame: pd.DataFrame, name: str, dtype: str = "float64") -> pd.Series:
    """A column as a Series (all-missing when absent)."""
    if name in frame.columns:
        s = frame[name]
        if dtype != "float64" or s.dtype == np.float64:      # most metric columns already are
            return s
        return pd.to_numeric(s, errors="coerce").astype("float64")
    return pd.Series(np.nan if dtype == "float64" else None, index=frame.index,
                     dtype=dtype if dtype == "float64" else object)


def prepare(runs: pd.DataFrame, annotations: pd.DataFrame | None) -> pd.DataFrame:
    """Runs oldest first, indexed by run_id, with the runner's annotations and local start."""
    frame = runs.copy()
    frame = frame.sort_values("start_utc", kind="stable").reset_index(drop=True)
    ann = annotations if annotations is not None else pd.DataFrame()
    if "run_id" not in ann.columns and ann.index.name == "run_id":
        ann = ann.reset_index()
    keep = [c for c in _ANNOTATION_FIELDS if c in ann.columns]
    if "run_id" in ann.columns and keep:
        ann = ann.drop_duplicates("run_id", keep="last")[["run_id", *keep]]
        frame = frame.drop(columns=[c for c in keep if c in frame.columns]).merge(
            ann, on="run_id", how="left")
    for c in _ANNOTATION_FIELDS:
        if c not in frame.columns:
            frame[c] = np.nan if c not in ("electrolytes", "cramp", "shoes", "shoe_type",
                                          "knee_pain_next_morning", "warmed_up_before") else None
    tz = frame["tz_offset_min"] if "tz_offset_min" in frame.columns else pd.Series(
        0, index=frame.index)
    frame["start_local"] = local_start(pd.to_datetime(frame["start_utc"], utc=True), tz)
    if "quality_ok" not in frame.columns:
        frame["quality_ok"] = True
    return frame.set_index("run_id", drop=False)


def evaluate_rules(frame: pd.DataFrame, profile: dict,
                   cadence_bins: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """Every rule's result frame (indexed by run_id) for the prepared runs."""
    profile = profile or {}
    t, q = frame["start_local"], frame["quality_ok"]
    dist, moving = _col(frame, "distance_m"), _col(frame, "moving_s")
    elapsed = _col(frame, "elapsed_s").fillna(moving)
    dur_min, dur_h = elapsed / 60.0, elapsed / 3600.0
    v_ngp = _col(frame, "v_ngp_mps").fillna(_col(frame, "v_main_gap_mps"))
    mass = _col(frame, "mass_before_kg").fillna(_num(profile, "mass_kg"))
    bmi = L.body_mass_index(_num(profile, "mass_kg"), _num(profile, "height_cm"))
    # the HRmax each run resolved to (runlog.hrmax: profile > best 30 s of 180 d > age)
    hr_max = _col(frame, "hr_max_used_bpm").fillna(_num(profile, "hr_max_bpm"))
    hr_rest = _num(profile, "hr_rest_bpm")
    hr_rest = T.HR_REST_DEFAULT_BPM if np.isnan(hr_rest) else hr_rest
    hrr = (_col(frame, "avg_hr_bpm") - hr_rest) / (hr_max - hr_rest)

    temp, source = E.air_temperature(_col(frame, "air_temp_c"), _col(frame, "temp_c"),
                                     _col(frame, "temp_source", "object"),
                                     _col(frame, "weather_air_temp_c"))
    temp = pd.Series(temp, index=frame.index)
    # RH and wind only from the runner or weather (never the device)
    rh = _col(frame, "humidity_pct").fillna(_col(frame, "weather_humidity_pct"))
    wind = _col(frame, "wind_kmh").fillna(_col(frame, "weather_wind_kmh"))
    wbgt = np.where(np.isnan(rh), np.nan, E.wbgt_bom(temp, rh))
    rate, low, high, tier = S.sweat_rate(_col(frame, "mass_before_kg"),
                                         _col(frame, "mass_after_kg"), _col(frame, "fluid_l"),
                                         dur_h)
    shoe_name = _col(frame, "shoes", "object").where(
        _col(frame, "shoes", "object").notna(), _col(frame, "gear", "object"))

    out: dict[str, pd.DataFrame] = {}
    out["session_spike"] = L.session_spike(t, dist, q)
    out["weekly_jump"] = L.weekly_jump(t, dist, q)
    out["acwr"] = L.acwr(t, dist, q)
    out["restart"] = L.restart(t, dist, q)
    out["new_runner"] = L.new_runner(t, dist, q, bmi)
    if_ = W.intensity_factor(t, v_ngp, moving, q)
    # rows of metrics version < 4 knew the profile's HRmax only
    hr_source = _col(frame, "hr_max_source", "object").fillna("profile")
    out["no_warmup"] = W.no_warmup(t, elapsed, _col(frame, "warmup_present", "object"),
                                   _col(frame, "main_hr_pct_max"), if_,
                                   _col(frame, "hard_start", "object"),
                                   _col(frame, "warmed_up_before", "object"), q,
                                   has_hr=_col(frame, "has_hr", "object"),
                                   hr_max_bpm=_col(frame, "hr_max_used_bpm"),
                                   hr_max_source=hr_source)
    out["abrupt_finish"] = W.abrupt_finish(_col(frame, "abrupt_finish", "object"),
                                           _col(frame, "finish_speed_ratio"), q)
    out["heat_index"] = E.heat_index(temp, rh, source)
    out["heat"] = E.heat(temp, rh, source, dur_min)
    out["wind_chill"] = E.wind_chill(temp, wind, v_ngp)
    out["cold"] = E.cold(temp, out["wind_chill"]["value"], dur_min)
    out["fluid_deficit"] = S.fluid_deficit(rate, low, high, tier, dur_h, _col(frame, "fluid_l"),
                                           mass)
    out["sodium_no_electrolytes"] = S.sodium_no_electrolytes(
        rate, low, high, tier, dur_h, _col(frame, "electrolytes", "object"),
        _col(frame, "sodium_mg"), mass, wbgt)
    bins = cadence_bins if cadence_bins is not None else pd.DataFrame()
    easy = _col(frame, "main_hr_pct_max") < T.VIGOROUS_HR_FRAC
    out["low_cadence"] = K.low_cadence(frame["run_id"], t, q, bins,
                                       _col(frame, "avg_cadence_spm"), easy)
    out["descent_spike"] = K.descent_spike(t, _col(frame, "descent_m"),
                                           _col(frame, "steep_descent_min"), q)
    out["shoes"] = K.shoes(t, dist, shoe_name, _col(frame, "shoe_type", "object"))
    out["knee_pain_recent"] = K.knee_pain_recent(t, _col(frame, "knee_pain"),
                                                 _col(frame, "knee_pain_next_morning", "object"))
    out["longer_than_usual"] = C.longer_than_usual(t, moving, q)
    out["harder_than_usual"] = C.harder_than_usual(t, moving, hrr, v_ngp, q,
                                                   out["longer_than_usual"]["level"]
                                                   .astype("float64"), hr_max_bpm=hr_max,
                                                   hr_max_source=hr_source)
    out["cramp_history"] = C.cramp_history(t, moving, _col(frame, "cramp", "object"), q,
                                           bool(profile.get("cramp_prone") or False))
    for frame_ in out.values():
        frame_.index = frame.index
    return out


def _risk_rows(rule_id: str) -> list[tuple[str, int]]:
    """(risk, weight) rows a rule contributes to the flags table."""
    info = REGISTRY[rule_id]
    if info.feeds:
        return list(info.feeds.items())
    if rule_id == "knee_pain_recent":
        return [("knee", 0)]
    if rule_id == "cramp_history":
        return [("cramp", 0)]
    return [("safety" if info.kind == "safety" else "info", 0)]


#: The flags table's blocks of rows, one row per run each: (rule id, risk, weight w) in
#: RULE_IDS order; a rule scoring both knee and cramp has a block per risk.
FLAG_BLOCKS: tuple[tuple[str, str, int], ...] = tuple(
    (rule_id, risk, weight) for rule_id in RULE_IDS for risk, weight in _risk_rows(rule_id))
_BLOCK_RULE = np.array([rule for rule, _, _ in FLAG_BLOCKS], dtype=object)
_BLOCK_RISK = np.array([risk for _, risk, _ in FLAG_BLOCKS], dtype=object)
_FIRST_BLOCK = {rule: list(_BLOCK_RULE).index(rule) for rule in RULE_IDS}


@dataclass(frozen=True)
class Blocks:
    """Every rule's result laid out like the flags table: block b (FLAG_BLOCKS[b]) × run i.

    The matrices have shape (blocks, runs); the texts are flat Arrow arrays in the flags
    table's row order (b·runs + i). Scoring reads these numpy arrays: grouping and filtering
    the 22-rows-per-run long table with pandas cost more than all the rules together.
    """

    index: pd.Index           # run ids, the rules' common index
    level: np.ndarray         # float, NaN = not assessed
    weight: np.ndarray        # int64 w, L2's set to 0 where L1 is ≥ moderate
    value: np.ndarray         # float
    threshold: np.ndarray     # float
    text: dict[str, pa.Array]  # "unit", "message", "note": large_string
    has_message: np.ndarray   # bool, message != ''
    has_note: np.ndarray      # bool, note != ''


def _texts(results: dict[str, pd.DataFrame], column: str) -> pa.Array:
    return pa.concat_arrays([pa.array(results[rule][column].array, type=pa.large_string())
                             for rule, _, _ in FLAG_BLOCKS])


def _not_empty(text: pa.Array, shape: tuple[int, int]) -> np.ndarray:
    return (pc.binary_length(text).to_numpy(zero_copy_only=False) > 0).reshape(shape)


def blocks(results: dict[str, pd.DataFrame], assessed: np.ndarray | None = None) -> Blocks:
    """:class:`Blocks` of :func:`evaluate_rules`' results (all indexed alike).

    ``assessed``: False for runs too damaged to assess (quality_ok False). No rule assesses
    them: level <NA>, no value, no message, the quality note, in every block. The history
    rules leave them out themselves (and out of their baselines); the rules without a
    quality input (weather, sweat, shoes, knee pain) do not know them, so it is done here
    for all alike (README: such runs stay out of every rule).
    """
    index = results[RULE_IDS[0]].index
    shape = (len(FLAG_BLOCKS), len(index))

    def stack(column: str) -> np.ndarray:
        cols = {rule: results[rule][column].to_numpy(dtype="float64", na_value=np.nan)
                for rule in RULE_IDS}
        return np.array([cols[rule] for rule, _, _ in FLAG_BLOCKS]).reshape(shape)

    level, value = stack("level"), stack("value")
    text = {c: _texts(results, c) for c in ("unit", "message", "note")}
    if assessed is not None and not np.all(assessed):
        left_out = ~np.asarray(assessed, dtype=bool)
        level[:, left_out] = np.nan
        value[:, left_out] = np.nan
        flat = pa.array(np.tile(left_out, shape[0]))
        for column, fill in (("message", ""), ("note", L.QUALITY_NOTE)):
            text[column] = pc.if_else(flat, pa.scalar(fill, type=pa.large_string()),
                                      text[column])
    weight = np.repeat(np.array([w for _, _, w in FLAG_BLOCKS], dtype="int64"), shape[1]
                       ).reshape(shape)
    spike = np.nan_to_num(level[_FIRST_BLOCK["session_spike"]])
    jump = _BLOCK_RULE == "weekly_jump"        # L2 scored only when L1 is none
    weight[jump] = np.where(spike >= MODERATE, 0, weight[jump])
    return Blocks(index, level, weight, value, stack("threshold"), text,
                  _not_empty(text["message"], shape), _not_empty(text["note"], shape))


def _flags_frame(b: Blocks) -> pd.DataFrame:
    k, n = b.level.shape
    block = np.repeat(np.arange(k), n)

    def per_block(values: list[str]) -> pd.api.extensions.ExtensionArray:
        return str_array(pa.array(values, type=pa.large_string()).take(block))

    # run ids get the dtype pandas infers for them, as the levels table's run_id does
    ids = pd.Series(b.index.to_numpy(dtype=object), copy=False).array
    return pd.DataFrame({
        "run_id": ids.take(np.tile(np.arange(n), k)),
        "rule": per_block(list(_BLOCK_RULE)),
        "risk": per_block(list(_BLOCK_RISK)),
        "level": level_array(b.level.ravel()),
        "value": b.value.ravel(),
        "threshold": b.threshold.ravel(),
        "unit": str_array(b.text["unit"]),
        "message": str_array(b.text["message"]),
        "source": per_block([REGISTRY[rule].source for rule in _BLOCK_RULE]),
        "weight": b.weight.ravel(),
        "note": str_array(b.text["note"]),
    }, copy=False)


def flags_table(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table: one row per (run, rule, risk), assessed or not (block by block)."""
    return _flags_frame(blocks(results))


def _joined(text: pa.Array, flat: np.ndarray, mask: np.ndarray) -> pa.Array:
    """Per run (column of ``mask``), ``text`` at the flat positions ``flat`` where ``mask``
    holds, in row order, joined with ' | ' ('' when none) — by Arrow, no loop in Python."""
    run, row = np.nonzero(mask.T)                       # run by run, rows in order
    offsets = np.r_[0, np.cumsum(np.bincount(run, minlength=mask.shape[1]))]
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()),
                                          text.take(flat[row, run]))
    return pc.binary_join(lists, pa.scalar(SEP, type=pa.large_string()))


def _top(b: Blocks, risk: str) -> pa.Array:
    """Top-3 messages by w·ℓ (modifiers ranked by MODIFIER_RANK·ℓ), joined with ' | '.

    Ties keep RULE_IDS order (a stable sort over the blocks, which are in that order).
    """
    rows = np.flatnonzero(np.equal(_BLOCK_RISK, risk))
    lvl = np.nan_to_num(b.level[rows])
    rank = np.array([MODIFIER_RANK.get(rule, 0) for rule in _BLOCK_RULE[rows]], dtype="float64")
    key = np.where(rank[:, None] > 0, rank[:, None] * lvl, b.weight[rows] * lvl)
    key = np.where(b.has_message[rows], key, 0.0)
    best = np.argsort(-key, axis=0, kind="stable")[:TOP_MESSAGES]
    chosen = np.take_along_axis(key, best, axis=0) > 0
    n = key.shape[1]
    return _joined(b.text["message"], rows[best] * n + np.arange(n), chosen)


def _unique_notes(b: Blocks) -> pa.Array:
    """Per run, its distinct notes in flags-table order, joined with ' | '."""
    k, n = b.level.shape
    pos = np.flatnonzero(b.has_note)                    # block-major, as the flags table
    note_id = pc.dictionary_encode(b.text["note"]).indices.to_numpy()[pos].astype("int64")
    _, first = np.unique(note_id * n + pos % n, return_index=True)   # first of (note, run)
    keep = np.zeros(k * n, dtype=bool)
    keep[pos[first]] = True
    return _joined(b.text["note"], np.arange(k * n).reshape(k, n), keep.reshape(k, n))


def _grade(score: np.ndarray, spike: np.ndarray | None = None) -> np.ndarray:
    """§8.3: high if score ≥ 6 (or L1 ℓ = 2), moderate if ≥ 3 (or L1 ℓ = 1), else low."""
    level = np.select([score >= T.SCORE_HIGH, score >= T.SCORE_MODERATE], [HIGH, MODERATE], 0)
    if spike is not None:
        level = np.maximum(level, spike)
    return level


def combine(results: dict[str, pd.DataFrame], profile: dict,
            assessed: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """§8 scoring of :func:`evaluate_rules`' results: ``(levels, flags)`` as :func:`assess`.

    ``assessed``: False for runs too damaged to assess (quality_ok False): no rule assesses
    them (see :func:`blocks`) and their knee and cramp levels and scores are missing ("not
    assessed"), not "low"; all True if None.
    """
    profile = profile or {}
    b = blocks(results, assessed)
    flags = _flags_frame(b)
    ids = b.index
    lvl = np.nan_to_num(b.level)
    points = lvl * b.weight
    knee_rows, cramp_rows = _BLOCK_RISK == "knee", _BLOCK_RISK == "cramp"
    knee_score = points[knee_rows].sum(axis=0)
    cramp_score = points[cramp_rows].sum(axis=0)

    def level_of(rule_id: str) -> np.ndarray:
        return lvl[_FIRST_BLOCK[rule_id]]

    spike = level_of("session_spike")
    knee = _grade(knee_score, spike)
    cramp = _grade(cramp_score)

    # knee modifiers: K4 recent pain (+1, or high), previous injury (+1 if a knee rule ≥ moderate)
    pain = level_of("knee_pain_recent")
    knee = np.where(pain >= MODERATE, knee + 1, knee)
    knee = np.where(pain >= HIGH, HIGH, knee)
    any_knee = ((lvl >= MODERATE) & (b.weight > 0))[knee_rows].any(axis=0)
    injured = bool(profile.get("knee_injury_history") or False)
    injury_step = injured & any_knee
    knee = np.where(injury_step, knee + 1, knee)
    # cramp modifier: C3 history (+1 when the cramp score ≥ 2)
    history = level_of("cramp_history")
    cramp_step = (history >= MODERATE) & (cramp_score >= T.CRAMP_MODIFIER_MIN_SCORE)
    cramp = np.where(cramp_step, cramp + 1, cramp)
    knee, cramp = np.minimum(knee, HIGH), np.minimum(cramp, HIGH)

    safety = np.maximum.reduce([level_of(r) for r in SAFETY_RULES])
    shown = np.isin(_BLOCK_RULE, SAFETY_RULES)[:, None] & b.has_message & (lvl >= MODERATE)
    k, n = lvl.shape
    safety_top = _joined(b.text["message"], np.arange(k * n).reshape(k, n), shown)
    modifiers = np.where(injury_step, INJURY_HISTORY_MESSAGE, "")

    names = pa.array(RISK_NAMES, type=pa.large_string())
    knee_risk, cramp_risk = names.take(knee.astype(int)), names.take(cramp.astype(int))
    if assessed is not None and not np.all(assessed):
        left_out = pa.array(~np.asarray(assessed, dtype=bool))
        missing = pa.scalar(None, type=pa.large_string())
        knee_risk = pc.if_else(left_out, missing, knee_risk)
        cramp_risk = pc.if_else(left_out, missing, cramp_risk)
        knee_score = np.where(assessed, knee_score, np.nan)
        cramp_score = np.where(assessed, cramp_score, np.nan)
    levels = pd.DataFrame({
        "run_id": ids.to_numpy(),
        "knee_score": knee_score,
        "cramp_score": cramp_score,
        "knee_risk": str_array(knee_risk),
        "cramp_risk": str_array(cramp_risk),
        "knee_top": str_array(_top(b, "knee")),
        "cramp_top": str_array(_top(b, "cramp")),
        "safety_level": pd.array(safety.astype(int), dtype="Int8"),
        "safety_top": str_array(safety_top),
        "modifiers": modifiers,
        "not_assessed": str_array(_unique_notes(b)),
    })
    return levels, flags


def assess(runs: pd.DataFrame, annotations: pd.DataFrame, profile: dict,
           cadence_bins: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Knee and cramp levels for every run, and every rule's flag (RULES.md §8).

    Parameters
    ----------
    runs : the runs table (RUN_IDENTITY_COLUMNS + RUN_METRIC_COLUMNS), run_id unique (as the
        store keeps it)
    annotations : the runner's annotations (ANNOTATION_COLUMNS), any subset of runs
    profile : PROFILE_FIELDS (missing keys = unknown)
    cadence_bins : CADENCE_BIN_COLUMNS rows for K1's baseline

    Returns
    -------
    levels : one row per run (oldest first) with LEVEL_COLUMNS; a run too damaged to assess
        (quality_ok False) has knee/cramp risk and score missing
    flags : one row per (run, rule, risk) with FLAG_COLUMNS; level <NA> = not assessed (for
        every rule of a run too damaged to assess)
    """
    if runs is None or len(runs) == 0:
        return pd.DataFrame(columns=LEVEL_COLUMNS), pd.DataFrame(columns=FLAG_COLUMNS)
    if runs["run_id"].duplicated().any():
        raise ValueError("run_id must be unique in the runs assessed")
    profile = profile or {}
    frame = prepare(runs, annotations)
    return combine(evaluate_rules(frame, profile, cadence_bins), profile,
                   L.good_mask(frame["quality_ok"]))


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and np.isnan(x))


def _records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows of a flags frame, each with its rule's evidence ``grade`` added."""
    out = []
    for rec in frame.to_dict("records"):
        row = {k: (None if _missing(v) else (v.item() if hasattr(v, "item") else v))
               for k, v in rec.items()}
        if "rule" in row:
            row["grade"] = rule_grade(row["rule"])
        out.append(row)
    return out


def explain(levels: pd.DataFrame, flags: pd.DataFrame, run_id: str) -> dict:
    """Everything the report shows for one run.

    Returns a dict with run_id, knee_risk, cramp_risk, knee_score, cramp_score (the four
    None for a run too damaged to assess), knee_top and cramp_top (lists of messages),
    safety_level, safety (messages), modifiers, flags (every assessed rule at level ≥ 1 as
    dicts), info (tips and numbers shown at level 0), not_assessed (list of notes),
    all_flags (every row) and the disclaimer.
    """
    row = levels[levels["run_id"] == run_id]
    if row.empty:
        raise RunNotFoundError(f"no assessed run {run_id!r}")
    r = row.iloc[0]
    f = flags[flags["run_id"] == run_id]
    lvl = f["level"].astype("float64")
    active = f[lvl >= MODERATE]
    info = f[(lvl.fillna(0) == 0) & (f["message"] != "")].drop_duplicates("rule")

    def split(text: str) -> list[str]:
        return [x for x in str(text).split(SEP) if x]

    def plain(x, kind=str):
        return None if _missing(x) else kind(x)

    return {
        "run_id": run_id,
        "knee_risk": plain(r["knee_risk"]),
        "cramp_risk": plain(r["cramp_risk"]),
        "knee_score": plain(r["knee_score"], float),
        "cramp_score": plain(r["cramp_score"], float),
        "knee_top": split(r["knee_top"]),
        "cramp_top": split(r["cramp_top"]),
        "safety_level": int(r["safety_level"]),
        "safety": split(r["safety_top"]),
        "modifiers": split(r["modifiers"]),
        "flags": _records(active),
        "info": _records(info[["rule", "risk", "value", "threshold", "unit", "message",
                               "source"]]),
        "not_assessed": split(r["not_assessed"]),
        "all_flags": _records(f),
        "disclaimer": DISCLAIMER,
    }


def _number(x) -> str:
    if x is None:
        return "–"
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.2g}" if abs(x) < 1 else f"{x:.1f}"


def _evidence(flag: dict) -> str:
    """A flag's evidence grade: its own ``grade`` field, else its rule's (RuleInfo.grade)."""
    return flag.get("grade") or (REGISTRY[flag["rule"]].grade if flag["rule"] in REGISTRY
                                 else "–")


def render_explanation(info: dict) -> str:
    """Plain text of :func:`explain`'s dict for the terminal (``runlog report --run``)."""
    def risk(name: str, level: str | None, score: float | None) -> str:
        if level is None:
            return f"{name}: not assessed"
        return f"{name}: {level} (score {score:g})"

    lines = [f"Run {info['run_id']}",
             risk("Knee pain risk", info["knee_risk"], info["knee_score"])]
    lines += [f"  - {m}" for m in info["knee_top"] + info["modifiers"]]
    lines.append(risk("Cramp risk", info["cramp_risk"], info["cramp_score"]))
    lines += [f"  - {m}" for m in info["cramp_top"]]
    if info["safety"]:
        lines.append(f"Heat/cold safety: {RISK_NAMES[info['safety_level']]}")
        lines += [f"  - {m}" for m in info["safety"]]
    if info["flags"]:
        lines.append("Flags (rule, risk, level, value vs threshold, source, evidence grade):")
        for f in info["flags"]:
            unit = f.get("unit") or ""
            lines.append(f"  {f['rule']} [{f['risk']}] level {f['level']}: "
                         f"{_number(f.get('value'))} vs {_number(f.get('threshold'))} {unit}"
                         f" — {f['source']} (evidence grade {_evidence(f)})")
            if f.get("message"):  # what the flag means for the runner, under its numbers
                lines.append(f"      {f['message']}")
        lines.append(f"  Evidence grades (RULES.md): {EVIDENCE_KEY}.")
    if info["info"]:
        lines.append("Information:")
        lines += [f"  - {i['message']}" for i in info["info"]]
    if info["not_assessed"]:
        lines.append("Not assessed / data gaps:")
        lines += [f"  - {n}" for n in info["not_assessed"]]
    # which HRmax the %HRmax / %HRR figures used, and whether it is an estimate (RunLog.explain)
    hr_max = info.get("hr_max") or {}
    if hr_max.get("text"):
        lines.append(f"Heart rate: {hr_max['text']}")
    elif hr_max.get("has_hr"):
        lines.append("Heart rate: recorded, but no HRmax is known (no profile value, no "
                     "best 30 s in the last 180 days, no birth year) — HR tests not used")
    # what the data-quality checks and the file's reader found (RunLog.explain adds it)
    if info.get("quality_issues") or info.get("quality_notes"):
        lines.append("Data quality: " + (", ".join(info.get("quality_issues") or []) or "ok"))
        if info.get("quality_notes"):
            lines.append(f"  - {info['quality_notes']}")
    lines += ["", info["disclaimer"]]
    return "\n".join(lines)
