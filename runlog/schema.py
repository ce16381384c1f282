"""Column contracts between the layers: importer → store → metrics → rules → risk → outputs.

Every table is a pandas DataFrame. Units are in the column names. ``NaN``/``<NA>`` means "not
measured", never zero. This module is the single place these names are written down; tests
and the README's JSON/CSV field lists follow it.
"""

from __future__ import annotations

#: Bumped whenever metrics change; stored runs with an older version are recomputed.
METRICS_VERSION = 4
#: Bumped whenever the on-disk layout changes; the store upgrades older stores in place.
STORE_SCHEMA_VERSION = 1
#: The store manifest's ``format`` value: a manifest without it is not a runlog store.
STORE_FORMAT_NAME = "runlog-store"

# --- runs: one row per imported run -----------------------------------------------------------
#: Identity and provenance, set by the importer from the Activity.
RUN_IDENTITY_COLUMNS: dict[str, str] = {
    "run_id": "stable id: first 12 hex of sha1(start_utc ISO second | leg index)",
    "source_file": "path of the file (archive members as archive.zip!member)",
    "source_format": "fit | gpx | tcx",
    "file_sha256": "content hash of the (decompressed) file",
    "device": "device or app that recorded it",
    "sport": "normalised sport (always 'running' in runs)",
    "sub_sport": "treadmill, trail, street, track, indoor, ... or missing",
    "sport_inferred": "True when the file had no sport tag and speeds looked like running",
    "multisport_leg": "0-based leg index inside a multisport file, or missing",
    "name": "activity name (Strava export, GPX/TCX name) or missing",
    "gear": "shoes from a Strava export's gear column, or missing",
    "start_utc": "start time, UTC-aware",
    "tz_offset_min": "offset of the runner's local time from UTC at the start [min]",
    "tz_source": "file | coordinates | default | utc",
    "start_lat_deg": "latitude of the first GPS fix [degrees], missing without GPS",
    "start_lon_deg": "longitude of the first GPS fix [degrees], missing without GPS",
    "summary_distance_m": "the file's own total distance [m], or missing",
    "summary_elapsed_s": "the file's own elapsed time [s], or missing",
    "summary_timer_s": "the file's own timer (moving) time [s], or missing",
}

#: Hourly weather for the run's place and time (Open-Meteo archive), filled by
#: ``runlog weather``; the runner's own annotation always wins over these.
RUN_WEATHER_COLUMNS: dict[str, str] = {
    "weather_air_temp_c": "air temperature averaged over the run [°C]",
    "weather_humidity_pct": "relative humidity averaged over the run [%]",
    "weather_wind_kmh": "wind speed at 10 m averaged over the run [km/h]",
    "weather_shortwave_w_m2": "shortwave solar radiation [W/m²]",
    "weather_source": "'open-meteo archive' or missing",
    "weather_fetched_utc": "when the weather was fetched",
}

#: Per-run metrics computed from samples by runlog.metrics (vectorised), stored with the run.
RUN_METRIC_COLUMNS: dict[str, str] = {
    "elapsed_s": "first to last sample, after trimming a stationary tail [s]",
    "moving_s": "time moving: timer running and speed ≥ 0.5 m/s [s]",
    "distance_m": "distance after data-quality cleaning [m]",
    "distance_source": "device (watch/footpod total, treadmill) | track (from positions)",
    "avg_speed_mps": "distance_m / moving_s [m/s]",
    "v_main_gap_mps": "median grade-adjusted speed over moving time 20–90 % of the run [m/s]",
    "v_ngp_mps": "4th-power mean of 30-s rolling grade-adjusted speed [m/s]",
    "ascent_m": "smoothed ascent with hysteresis [m]",
    "descent_m": "smoothed descent with hysteresis [m]",
    "steep_descent_min": "minutes on grades ≤ −8 % over ≥ 50 m stretches [min]",
    "altitude_source": "barometric | gps | none",
    "avg_hr_bpm": "mean heart rate over moving time [bpm]",
    "max_hr_bpm": "maximum heart rate [bpm]",
    "best_30s_hr_bpm": "highest 30-s rolling mean HR, artefacts removed [bpm]",
    "main_hr_bpm": "mean HR from 20 % to 90 % of moving time [bpm]",
    "avg_cadence_spm": "mean cadence while moving [steps/min]",
    "temp_c": "device temperature, median [°C] (see temp_source)",
    "temp_source": "device | weather | runner | missing",
    "warmup_present": "True/False: an easy ≥ 5 min stretch in the first 12 min (pace and, with "
                      "HR and HRmax, ≥ 80 % of its HR ≤ 76 % HRmax); missing if unknown",
    "warmup_easy_speed_ratio": "lowest median v_GAP of a 5-min window in the first 12 min / "
                               "v_main",
    "warmup_hr_p80_bpm": "lowest HR that ≥ 80 % of a pace-easy warm-up window's HR samples stay "
                         "at or below [bpm] (missing without HR there)",
    "start_speed_ratio": "median v_GAP of minutes 3–5 / v_main",
    "start_hr_bpm": "mean HR of minutes 3–5 [bpm]",
    "hard_start": "True when minutes 3–5 are at ≥ v_main and HR > 85 % HRmax",
    "finish_speed_ratio": "median v_GAP of the last 5 min / v_main",
    "abrupt_finish": "True when finish_speed_ratio > 0.85 (no easy jog-out)",
    "main_hr_pct_max": "main_hr_bpm / HRmax used [fraction]",
    "hr_max_used_bpm": "the HRmax the %HRmax metrics were computed with [bpm] (runlog.hrmax)",
    "hr_max_source": "profile | history_30s (best 30-s HR of the last 180 days) | age_formula "
                     "(208 − 0.7·age) | missing",
    "has_gps": "positions present",
    "has_hr": "heart rate present",
    "has_cadence": "cadence present",
    "quality_issues": "semicolon-separated codes (gps_jump, watch_left_running, hr_dropout, ...)",
    "quality_notes": "what was cleaned, in words, for the report",
    "quality_ok": "False when the run's numbers are too damaged to feed rules or baselines",
    "metrics_version": "METRICS_VERSION the row was computed with",
}

#: Cadence per speed bin, one row per (run, bin) — the input of rule K1's 60-day baseline.
CADENCE_BIN_COLUMNS: dict[str, str] = {
    "run_id": "run",
    "speed_bin_mps": "lower edge of the 0.25 m/s grade-adjusted speed bin [m/s]",
    "minutes": "moving minutes spent in the bin [min]",
    "median_cadence_spm": "median cadence in the bin [steps/min]",
}

# --- annotations: what the runner tells us (never derived, never lost) -------------------------
ANNOTATION_COLUMNS: dict[str, str] = {
    "run_id": "run",
    "electrolytes": "True / False / missing (not said)",
    "sodium_mg": "sodium taken during the run [mg]",
    "fluid_l": "fluid drunk during the run [L]",
    "knee_pain": "knee pain during or after the run, 0–10",
    "knee_pain_next_morning": "True when the pain had not settled by the next morning",
    "cramp": "True / False / missing",
    "shoes": "shoe name",
    "shoe_type": "running | sandals | slippers | barefoot | other",
    "rpe": "session rating of perceived exertion, CR-10 (1–10)",
    "air_temp_c": "air temperature the runner gives [°C]",
    "humidity_pct": "relative humidity [%]",
    "wind_kmh": "wind speed [km/h]",
    "mass_before_kg": "body mass before [kg]",
    "mass_after_kg": "body mass after [kg]",
    "warmed_up_before": "True when the runner warmed up before recording",
    "note": "free text",
    "updated_utc": "when the annotation last changed",
}

# --- profile: one runner (JSON in the store) -----------------------------------------------------
PROFILE_FIELDS: dict[str, str] = {
    "mass_kg": "body mass [kg]",
    "height_cm": "height [cm]",
    "hr_max_bpm": "maximum heart rate [bpm]",
    "hr_rest_bpm": "resting heart rate [bpm]",
    "birth_year": "year of birth",
    "sex": "female | male",
    "cramp_prone": "True when the runner is prone to cramps",
    "knee_injury_history": "True after a previous knee injury",
    "default_tz": "IANA time zone used when a file gives none (e.g. Europe/Berlin)",
}

# --- flags: derived by rules + risk, recomputable ---------------------------------------------
FLAG_COLUMNS: dict[str, str] = {
    "run_id": "run",
    "rule": "rule id from RULES.md (session_spike, heat, ...)",
    "risk": "knee | cramp | safety | info",
    "level": "0 none, 1 moderate, 2 high",
    "value": "the runner's measured number",
    "threshold": "the number it was compared with",
    "unit": "unit of value and threshold",
    "message": "one sentence for the runner",
    "source": "published source (short citation)",
}
