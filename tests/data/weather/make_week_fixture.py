"""Writes archive_2024-07-01_2024-07-07_lat52.5_lon13.4.json and archive_2024-07-02_nulls.json.

Not recorded from the live service (there is no network here): the week's values come from a
simple diurnal formula, laid out in the response format the Open-Meteo historical weather API
documents (hourly arrays, ``timezone=GMT``, ``utc_offset_seconds`` 0). The nulls file is the
hand-written one-day fixture with its last six hours set to null, as the archive does for hours
it has no data for yet. Run from this folder: ``python make_week_fixture.py``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).parent


def week() -> dict:
    t0 = datetime(2024, 7, 1)
    times, temp, rh, wind, sw = [], [], [], [], []
    for h in range(7 * 24):
        t = t0 + timedelta(hours=h)
        day, hour = divmod(h, 24)
        phase = math.cos(2 * math.pi * (hour - 14) / 24)  # warmest at 14 UTC
        times.append(t.strftime("%Y-%m-%dT%H:%M"))
        temp.append(round(18.0 + day * 0.5 + 5.0 * phase, 1))
        rh.append(round(65 - 18 * phase))
        wind.append(round(10.0 + 4.0 * phase + day, 1))
        sun = math.cos(2 * math.pi * (hour - 0.5 - 11) / 24)  # hour-mean, centred 11:00 UTC
        sw.append(round(max(0.0, 800.0 * sun), 1))
    return {
        "latitude": 52.5, "longitude": 13.400009, "generationtime_ms": 1.73,
        "utc_offset_seconds": 0, "timezone": "GMT", "timezone_abbreviation": "GMT",
        "elevation": 38.0,
        "hourly_units": {"time": "iso8601", "temperature_2m": "°C", "relative_humidity_2m": "%",
                         "wind_speed_10m": "km/h", "shortwave_radiation": "W/m²"},
        "hourly": {"time": times, "temperature_2m": temp, "relative_humidity_2m": rh,
                   "wind_speed_10m": wind, "shortwave_radiation": sw},
    }


def nulls() -> dict:
    doc = json.loads((HERE / "archive_2024-07-02_lat52.5_lon13.4.json").read_text("utf-8"))
    for var in ("temperature_2m", "relative_humidity_2m", "wind_speed_10m",
                "shortwave_radiation"):
        doc["hourly"][var][18:] = [None] * 6
    return doc


if __name__ == "__main__":
    (HERE / "archive_2024-07-01_2024-07-07_lat52.5_lon13.4.json").write_text(
        json.dumps(week(), ensure_ascii=False) + "\n", encoding="utf-8")
    (HERE / "archive_2024-07-02_nulls.json").write_text(
        json.dumps(nulls(), ensure_ascii=False) + "\n", encoding="utf-8")
