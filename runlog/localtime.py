"""The runner's local time: weeks and days are theirs, not UTC's.

Order of preference: the file's own local time (FIT ``activity.local_timestamp``), else the
time zone at the start coordinates (timezonefinder, offline), else the runner's default zone,
else UTC. A run keeps its UTC start and this offset.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from runlog.days import parse_day_text
from runlog.errors import InputError


@lru_cache(maxsize=1)
def _finder():
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


def zone_at(lat_deg: float, lon_deg: float) -> str | None:
    """IANA zone name at a point, from timezonefinder's offline polygons; None at sea/unknown."""
    if not (-90 <= lat_deg <= 90 and -180 <= lon_deg <= 180):
        return None
    return _finder().timezone_at(lng=float(lon_deg), lat=float(lat_deg))


def check_zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name, or InputError naming the bad value."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise InputError(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
                         ) from err


def offset_minutes(start_utc: pd.Timestamp, zone: str) -> int:
    """UTC offset [min] of ``zone`` at the instant ``start_utc`` (DST-aware)."""
    local = start_utc.tz_convert(check_zone(zone))
    return int(local.utcoffset().total_seconds() // 60)


def resolve_offset(start_utc: pd.Timestamp, file_offset_min: int | None,
                   lat_deg: float | None, lon_deg: float | None,
                   default_zone: str | None) -> tuple[int, str]:
    """(offset [min], source) for one run: 'file', 'coordinates', 'default' or 'utc'."""
    if file_offset_min is not None:
        return int(file_offset_min), "file"
    if lat_deg is not None and lon_deg is not None and pd.notna(lat_deg) and pd.notna(lon_deg):
        zone = zone_at(lat_deg, lon_deg)
        if zone:
            return offset_minutes(start_utc, zone), "coordinates"
    if default_zone:
        return offset_minutes(start_utc, default_zone), "default"
    return 0, "utc"


def parse_day(text: str | date | pd.Timestamp | None, *, end: bool = False
              ) -> pd.Timestamp | None:
    """A local calendar day → naive local timestamp bound (the day's start, or the next
    day's start with ``end``). Text must be exactly 'YYYY-MM-DD' (:mod:`runlog.days`):
    InputError naming the value for anything else; a date or Timestamp is taken as is."""
    if text is None:
        return None
    value = parse_day_text(text) if isinstance(text, str) else text
    try:
        day = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError) as err:  # also years pandas cannot hold
        raise InputError(f"not a date runlog can use: {text!r} (use YYYY-MM-DD, "
                         f"{pd.Timestamp.min.year + 1}–{pd.Timestamp.max.year - 1})") from err
    if day.tzinfo is not None:
        day = day.tz_localize(None)
    day = day.normalize()
    return day + pd.Timedelta(days=1) if end else day


def local_start(start_utc: pd.Series, tz_offset_min: pd.Series) -> pd.Series:
    """Naive local wall-clock start times from UTC starts and offsets (vectorised)."""
    offsets = pd.to_timedelta(tz_offset_min.fillna(0).astype("float64"), unit="min")
    return start_utc.dt.tz_convert("UTC").dt.tz_localize(None) + offsets
