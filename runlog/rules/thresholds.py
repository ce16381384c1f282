"""Every threshold of the risk rules, in one place so they can be tuned.

Each constant says where it comes from: a published source (see RULES.md / RULES-SOURCES.md) or
``[design]`` — our own uncalibrated starting choice. Units are in the names.
"""

from __future__ import annotations

# --- L1 single-run distance spike (Frandsen 2025, BJSM, doi 10.1136/bjsports-2024-109380) ------
SPIKE_WINDOW_DAYS = 30              # Frandsen 2025: longest run in the previous 30 days
SPIKE_MODERATE_FRAC = 0.10          # Frandsen 2025: > 10 % → HRR 1.52–1.64
SPIKE_HIGH_FRAC = 1.00              # Frandsen 2025: > 100 % → HRR 2.28
SPIKE_GPS_FLOOR_KM = 0.5            # [design] ignore increases under 0.5 km (GPS error)

# --- L2 seven-day volume jump (Nielsen 2014, JOSPT) ---------------------------------------------
WEEK_DAYS = 7                       # Nielsen 2014: week-to-week progression
WEEKLY_JUMP_FRAC = 0.30             # Nielsen 2014: > 30 % progression
WEEKLY_MIN_PREV_KM = 5.0            # [design] only when the week before had ≥ 5 km

# --- L3 ACWR (Williams 2017 BJSM; Gabbett 2016 BJSM) — display only -----------------------------
ACWR_ACUTE_DAYS = 7                 # Williams 2017 / Gabbett 2016
ACWR_CHRONIC_DAYS = 28              # Williams 2017 / Gabbett 2016
ACWR_MIN_HISTORY_DAYS = 28          # RULES.md L3: needs ≥ 28 d of history
ACWR_SWEET_LOW = 0.8                # Gabbett 2016 (team sports) "sweet spot"
ACWR_SWEET_HIGH = 1.3               # Gabbett 2016
ACWR_DANGER = 1.5                   # Gabbett 2016 (team sports); not shown valid for runners

# --- L4 restart after a break, L4b new runner -------------------------------------------------
RESTART_GAP_DAYS = 14               # [design] break of ≥ 14 days
RESTART_LONG_GAP_DAYS = 28          # [design] high only after ≥ 28 days off
RESTART_BASELINE_DAYS = 30          # [design] the 30 days before the break
NEW_RUNNER_HISTORY_DAYS = 28        # RULES.md L4b: < 4 weeks of history
NEW_RUNNER_WEEK1_DAYS = 7           # Nielsen 2014 IJSPT: week 1
NEW_RUNNER_BMI = 30.0               # Nielsen 2014 IJSPT: BMI > 30
NEW_RUNNER_WEEK1_KM = 3.0           # Nielsen 2014 IJSPT: > 3 km in week 1

# --- W1 no warm-up, W2 abrupt finish ---------------------------------------------------------
VIGOROUS_HR_FRAC = 0.77             # ACSM / Garber 2011: vigorous ≥ 77 % HRmax
VIGOROUS_IF = 0.85                  # [design] intensity factor counted as vigorous
THRESHOLD_WINDOW_DAYS = 90          # [design] v_threshold = best 30–60-min run of the last 90 d
THRESHOLD_RUN_MIN_S = 30 * 60       # [design] runs of 30–60 min define v_threshold
THRESHOLD_RUN_MAX_S = 60 * 60       # [design]
PRIOR_ACTIVITY_GAP_MIN = 30         # RULES.md W1: skip if another activity ended ≤ 30 min earlier

# --- H1 heat index (NWS; Rothfusz 1990) --------------------------------------------------------
HI_ROTHFUSZ_SWITCH_F = 80.0         # NWS: use Rothfusz when the simple mean ≥ 80 °F
HI_CAUTION_C = 27.0                 # NWS category: caution 27–32 °C
HI_EXTREME_CAUTION_C = 32.0         # NWS: extreme caution 32–39 °C
HI_DANGER_C = 39.0                  # NWS: danger 39–51 °C
HI_EXTREME_DANGER_C = 52.0          # NWS: extreme danger ≥ 52 °C

# --- H2 heat: WBGT flags (Armstrong 2007 ACSM; BoM approximation) ------------------------------
WBGT_WHITE_BELOW_C = 10.0           # ACSM race flags: < 10 °C white (hypothermia risk)
WBGT_YELLOW_C = 18.0                # ACSM race flags: 18–23 yellow
WBGT_RED_C = 23.0                   # ACSM race flags: 23–28 red
WBGT_BLACK_C = 28.0                 # ACSM race flags: > 28 black
HEAT_YELLOW_MIN = 60.0              # [design] yellow and ≥ 60 min → moderate
HEAT_RED_MIN = 45.0                 # [design] red ≥ 45 min → high, < 45 min → moderate

# --- D1 wind chill (Environment Canada / NWS 2001), D2 cold --------------------------------------
WIND_CHILL_MAX_T_C = 10.0           # Environment Canada: formula valid for T ≤ 10 °C
WIND_CHILL_MIN_V_KMH = 4.8          # Environment Canada: and V ≥ 4.8 km/h
WIND_CHILL_MODERATE_C = -28.0       # Environment Canada: −28 to −39 skin freezes in 10–30 min
WIND_CHILL_HIGH_C = -40.0           # Environment Canada: −40 to −47 in 5–10 min
COLD_AIR_C = 5.0                    # [design] air ≤ 5 °C
COLD_WIND_CHILL_C = 0.0             # [design] or wind chill ≤ 0 °C
COLD_MIN_DURATION_MIN = 45.0        # [design] and ≥ 45 min

# --- S1–S3 sweat, fluid, sodium --------------------------------------------------------------
SWEAT_RATE_DEFAULT_LPH = 1.28       # Barnes 2019: endurance athletes 1.28 ± 0.57 L/h
SWEAT_RATE_SD_LPH = 0.57            # Barnes 2019
SWEAT_RATE_MIN_LPH = 0.2            # RULES.md S1: clamp for the model tier
SWEAT_RATE_MAX_LPH = 2.5            # RULES.md S1: clamp for the model tier
SCALE_ERROR_KG = 0.1                # [design] bathroom-scale error per weighing
#: [design] Largest believable change of body mass over one run, as a fraction of the mass
#: before: sweat losses run at 1–4 %, rarely 6–8 % in ultras (Baker 2017), so a 10 % change
#: is a typing error, and the annotation is refused.
MASS_CHANGE_MAX_FRACTION = 0.10
DEFICIT_MODERATE_PCT = 2.0          # Sawka 2007 ACSM fluid stand: prevent > 2 % loss
DEFICIT_HIGH_PCT = 3.0              # [design]
SWEAT_NA_MMOL_L = 36.0              # Baker 2016: whole-body sweat [Na] 35.9 ± 10.4 mmol/L
SWEAT_NA_LOW_MMOL_L = 26.0          # Baker 2016 (±1 SD)
SWEAT_NA_HIGH_MMOL_L = 46.0         # Baker 2016 (±1 SD)
NA_MG_PER_MMOL = 22.99              # molar mass of sodium [mg/mmol]
SODIUM_MIN_DURATION_H = 2.0         # [design] ≥ 2 h
SODIUM_UPPER_MG = 1500.0            # [design] upper-bound loss ≥ 1.5 g
SODIUM_SHOW_MIN = 60.0              # [design] show numbers when ≥ 60 min
SODIUM_SHOW_WBGT_C = 18.0           # [design] or WBGT ≥ 18 °C

# --- K1 cadence (Heiderscheit 2011; Lenhart 2014) ----------------------------------------------
CADENCE_BASELINE_DAYS = 60          # [design] last 60 days
CADENCE_MIN_RUNS_PER_BIN = 3        # [design] ≥ 3 runs per 0.25 m/s bin
CADENCE_MIN_COVERAGE = 0.5          # [design] ≥ half the run's binned minutes have a baseline
CADENCE_DROP_FRAC = -0.05           # [design, Heiderscheit 2011: ±5 % changes knee loading]
CADENCE_EASY_TIP_SPM = 166.0        # [design] easy-pace tip only

# --- K2 descent spike (Gottschall & Kram 2005; Bontemps 2020) ---------------------------------
DESCENT_WINDOW_DAYS = 30            # [design]
DESCENT_MODERATE_RATIO = 1.3        # [design]
DESCENT_MODERATE_M = 150.0          # [design]
DESCENT_HIGH_RATIO = 2.0            # [design]
DESCENT_HIGH_M = 300.0              # [design]
STEEP_DESCENT_RATIO = 2.0           # [design] steep minutes > 2× their 30-d max
STEEP_DESCENT_MIN = 10.0            # [design] and ≥ 10 min

# --- K3 shoes (Arnold 2024; Malisoux 2015) -----------------------------------------------------
NON_RUNNING_FOOTWEAR = ("sandals", "slippers")  # RULES.md K3 (seed advice, no data)
SHOE_INFO_KM = 500.0                # Arnold 2024: 500–800 km convention from material tests
SHOE_STRONG_INFO_KM = 800.0         # Arnold 2024

# --- K4 knee pain (Silbernagel 2007 pain-monitoring model, adapted) ------------------------------
KNEE_PAIN_WINDOW_DAYS = 14          # RULES.md K4
KNEE_PAIN_HIGH = 5.0                # Silbernagel 2007: > 5/10 is too much

# --- C1 longer than usual, C2 harder than usual, C3 cramp history ------------------------------
LONGER_WINDOW_DAYS = 30             # [design]
LONGER_MODERATE_RATIO = 1.2         # [design]
LONGER_MODERATE_MIN = 60.0          # [design]
LONGER_HIGH_RATIO = 1.5             # [design]
LONGER_HIGH_MIN = 90.0              # [design]
HARDER_WINDOW_DAYS = 90             # [design]
COMPARABLE_TIME_FRAC = 0.25         # [design] moving time ±25 %
HARDER_PERCENTILE = 0.90            # [design] top 10 %
HARDER_MIN_MIN = 45.0               # [design]
HARDER_MIN_COMPARABLES = 5          # [design] at least 5 comparable runs
CRAMP_HISTORY_RUNS = 10             # Schwellnus 2011: cramps in the last 10 races
CRAMP_HISTORY_WINDOW_DAYS = 365     # [design] look for comparables in the last year only

# --- §8 scoring ----------------------------------------------------------------------------------
SCORE_HIGH = 6                      # RULES.md §8 [design]
SCORE_MODERATE = 3                  # RULES.md §8 [design]
CRAMP_MODIFIER_MIN_SCORE = 2        # RULES.md §7 C3: +1 only when cramp score ≥ 2
HR_REST_DEFAULT_BPM = 60.0          # RULES.md §0 [design]
