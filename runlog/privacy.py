"""Privacy zones: places (home, work) whose positions never leave runlog in an export.

Runners share exports. A zone is a point and a radius in the profile; any sample inside one
loses its coordinates in ``runlog export --what samples`` unless the runner says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from runlog.errors import InputError
from runlog.metrics import haversine_m


def parse_zone(text: str) -> dict[str, float]:
    """'LAT,LON,RADIUS_M' → {'lat_deg', 'lon_deg', 'radius_m'}; InputError when malformed."""
    parts = [p.strip() for p in text.split(",")]
    try:
        lat, lon, radius = (float(p) for p in parts)
    except ValueError as err:
        raise InputError(f"privacy zone {text!r}: use LAT,LON,RADIUS_M "
                         "(e.g. 52.52,13.40,500)") from err
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        raise InputError(f"privacy zone {text!r} is out of range")
    return {"lat_deg": lat, "lon_deg": lon, "radius_m": radius}


def inside_zones(lat_deg: np.ndarray, lon_deg: np.ndarray,
                 zones: Iterable[dict[str, float]]) -> np.ndarray:
    """Boolean mask: samples within any zone's radius [m] (great-circle distance).

    Samples without a position are never "inside". Vectorised: one pass per zone.
    """
    lat = np.asarray(lat_deg, dtype="float64")
    lon = np.asarray(lon_deg, dtype="float64")
    inside = np.zeros(lat.shape, dtype=bool)
    for zone in zones:
        distance = haversine_m(lat, lon, zone["lat_deg"], zone["lon_deg"])
        inside |= np.nan_to_num(distance, nan=np.inf) <= zone["radius_m"]
    return inside
