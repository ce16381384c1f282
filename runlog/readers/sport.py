"""Map each format's own sport vocabulary onto runlog's normalised sport names."""

from __future__ import annotations

import re

# Normalised names: running, walking, hiking, cycling, swimming, rowing, skiing, multisport,
# other. Only "running" is imported; the rest are skipped with their name as the reason.
_WORDS: dict[str, str] = {
    "run": "running", "running": "running", "trailrun": "running", "trail_running": "running",
    "treadmill": "running", "treadmill_running": "running", "virtualrun": "running",
    "jog": "running", "jogging": "running", "track_running": "running",
    "walk": "walking", "walking": "walking", "hike": "hiking", "hiking": "hiking",
    "ride": "cycling", "cycling": "cycling", "biking": "cycling", "bike": "cycling",
    "virtualride": "cycling", "ebikeride": "cycling", "mountainbikeride": "cycling",
    "gravelride": "cycling", "e_biking": "cycling", "mountain_biking": "cycling",
    "swim": "swimming", "swimming": "swimming", "open_water": "swimming",
    "rowing": "rowing", "row": "rowing", "kayaking": "rowing", "canoeing": "rowing",
    "alpine_skiing": "skiing", "cross_country_skiing": "skiing", "nordicski": "skiing",
    "alpineski": "skiing", "backcountryski": "skiing", "snowboarding": "skiing",
    "multisport": "multisport", "transition": "transition",
    "generic": "other", "other": "other", "all": "other",
}
# Strava's numeric GPX <type> codes (Strava's own export; 9 = Run, 1 = Ride, 10 = Walk, ...).
_STRAVA_CODES: dict[str, str] = {"1": "cycling", "9": "running", "10": "walking", "4": "hiking",
                                 "2": "skiing", "16": "swimming"}


def normalise_sport(raw: str | None) -> str | None:
    """Return the normalised sport for a file's sport word, or None when there is none.

    >>> normalise_sport("Running"), normalise_sport("Biking"), normalise_sport("9")
    ('running', 'cycling', 'running')
    """
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    if text in _STRAVA_CODES:
        return _STRAVA_CODES[text]
    key = re.sub(r"[\s\-]+", "_", text.lower())
    if key in _WORDS:
        return _WORDS[key]
    compact = key.replace("_", "")
    if compact in _WORDS:
        return _WORDS[compact]
    if "run" in compact:
        return "running"
    if "walk" in compact:
        return "walking"
    if "bik" in compact or "cycl" in compact or "ride" in compact:
        return "cycling"
    if "swim" in compact:
        return "swimming"
    return "other"
