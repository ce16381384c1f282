"""The one shape every reader returns: samples in SI units plus the file's own metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Sample columns, in order, with their units. ``timestamp`` is UTC-aware (ns); every other
#: column is float64 with NaN where the file has no value. Readers must return exactly these.
SAMPLE_COLUMNS: dict[str, str] = {
    "timestamp": "UTC time of the sample",
    "lat_deg": "latitude [degrees]",
    "lon_deg": "longitude [degrees]",
    "altitude_m": "altitude [m]",
    "distance_m": "cumulative distance from the device [m] (NaN when the file has none)",
    "speed_mps": "speed from the device [m/s]",
    "hr_bpm": "heart rate [beats/min]",
    "cadence_spm": "cadence [steps/min, both feet]",
    "temp_c": "device temperature [°C]",
    "power_w": "running power [W]",
}
FLOAT_SAMPLE_COLUMNS = [c for c in SAMPLE_COLUMNS if c != "timestamp"]

#: Normalised sport names. Readers map their own vocabularies onto these.
RUNNING = "running"


def empty_samples(n: int = 0) -> pd.DataFrame:
    """A samples frame of ``n`` rows with every column present and NaN/NaT."""
    frame = {"timestamp": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")}
    for col in FLOAT_SAMPLE_COLUMNS:
        frame[col] = np.full(n, np.nan)
    return pd.DataFrame(frame)


def timestamps_ns(timestamps: pd.Series | pd.Index) -> np.ndarray:
    """Nanoseconds since the Unix epoch (int64) of datetime values; NaT → the int64 minimum.

    The hot paths turn timestamps into integers many times per run; reading the datetime
    array's own integers avoids three accessor round trips (tz_convert, as_unit, astype).
    """
    values = timestamps.array if isinstance(timestamps, pd.Series | pd.Index) else timestamps
    if isinstance(values, pd.arrays.DatetimeArray):
        return (values if values.unit == "ns" else values.as_unit("ns")).asi8
    series = pd.Series(pd.to_datetime(pd.Series(timestamps), utc=True))
    return series.dt.as_unit("ns").astype("int64").to_numpy()


def utc_from_ns(ns: np.ndarray) -> pd.Series:
    """A ``datetime64[ns, UTC]`` Series from int64 nanoseconds (the int64 minimum → NaT)."""
    return pd.Series(pd.DatetimeIndex(np.asarray(ns, dtype="int64").view("M8[ns]"), tz="UTC"))


#: pandas' NaT as int64 nanoseconds.
NAT_NS = np.iinfo(np.int64).min

#: A run's samples as numpy arrays: every SAMPLE_COLUMNS float column as float64 (NaN where
#: missing) and ``timestamp`` as int64 nanoseconds since the epoch, UTC (NaT_NS where
#: missing). The import computes on this shape; a DataFrame is built only when asked for.
SampleColumns = dict[str, np.ndarray]


def sample_columns(samples: pd.DataFrame) -> SampleColumns:
    """Own copies of a samples frame's columns (SAMPLE_COLUMNS) as :data:`SampleColumns`."""
    columns = {c: samples[c].to_numpy(dtype="float64", copy=True) for c in FLOAT_SAMPLE_COLUMNS}
    columns["timestamp"] = timestamps_ns(samples["timestamp"]).copy()
    return columns


def samples_frame(columns: SampleColumns) -> pd.DataFrame:
    """The samples frame (SAMPLE_COLUMNS order and dtypes) of :data:`SampleColumns`.

    The frame shares the arrays' memory (no copy).
    """
    frame: dict[str, Any] = {"timestamp": utc_from_ns(columns["timestamp"]).array}
    frame.update((c, columns[c]) for c in FLOAT_SAMPLE_COLUMNS)
    return pd.DataFrame(frame, index=pd.RangeIndex(len(columns["timestamp"])), copy=False)


def normalise_samples(df: pd.DataFrame | dict) -> pd.DataFrame:
    """Return ``df`` with exactly SAMPLE_COLUMNS, in order, with the right dtypes.

    ``df`` is a DataFrame or a dict of equal-length columns. Missing columns are added as
    NaN; the timestamp becomes ``datetime64[ns, UTC]``; rows are kept in file order (sorting
    and de-duplication are data-quality decisions made later). Columns that already have the
    right dtype are taken as they are (the readers' fast path).
    """
    n = len(df) if isinstance(df, pd.DataFrame) else len(next(iter(df.values()), ()))
    if "timestamp" in df:
        ts = df["timestamp"]
        if not (isinstance(ts, pd.Series) and ts.dtype == "datetime64[ns, UTC]"):
            ts = pd.to_datetime(pd.Series(ts).reset_index(drop=True), utc=True)
            ts = ts.dt.tz_convert("UTC").dt.as_unit("ns")
        # Stay in datetime64 all the way: no object arrays of Timestamps on the hot path.
        columns: dict[str, object] = {"timestamp": ts.array}
    else:
        columns = {"timestamp": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")}
    for col in FLOAT_SAMPLE_COLUMNS:
        if col not in df:
            columns[col] = np.full(n, np.nan)
            continue
        values = df[col]
        array = values.to_numpy() if isinstance(values, pd.Series) else values
        if isinstance(array, np.ndarray) and array.dtype == np.float64:
            columns[col] = array
        else:
            columns[col] = (pd.to_numeric(pd.Series(values), errors="coerce")
                            .to_numpy(dtype="float64", na_value=np.nan))
    return pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)


@dataclass
class Activity:
    """One activity read from one file (a multisport file yields one per leg).

    ``columns`` holds the samples as numpy arrays (:data:`SampleColumns`); ``samples`` is the
    same data as a frame. Readers that build a frame use :meth:`from_samples`.

    ``summary`` holds the file's own totals where it has them, in SI units, with keys among:
    ``distance_m``, ``elapsed_s``, ``timer_s``, ``ascent_m``, ``descent_m``, ``avg_hr_bpm``,
    ``max_hr_bpm``, ``avg_cadence_spm``, ``calories_kcal``. They are the ground truth the
    importer is tested against.

    ``pauses`` are the timer's stop→start intervals (UTC) from FIT events; empty when the
    file has no timer events (GPX, most TCX), in which case moving time comes from the track.
    """

    columns: SampleColumns                  # the samples (see ``samples`` for a frame)
    source_format: str                      # "fit" | "gpx" | "tcx"
    sport: str | None = None                # normalised: running, cycling, swimming, walking, ...
    sub_sport: str | None = None            # treadmill, trail, street, track, indoor, ...
    sport_raw: str | None = None            # the file's own word for the sport
    device: str | None = None
    start_utc: pd.Timestamp | None = None
    tz_offset_min: int | None = None        # from the file's own local time, when it has one
    summary: dict[str, float] = field(default_factory=dict)
    pauses: list[tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=list)
    name: str | None = None
    leg_index: int | None = None            # 0-based leg of a multisport file, else None
    notes: list[str] = field(default_factory=list)  # what the reader noticed (quirks, repairs)
    #: The file is damaged (truncated, fails its checksum, unreadable past some point) and
    #: this is what could be read: the run may be longer than its samples say.
    damaged: bool = False
    _frame: tuple[SampleColumns, pd.DataFrame] | None = field(
        default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_samples(cls, samples: pd.DataFrame | dict, **fields: Any) -> Activity:
        """An Activity of a samples frame (normalised: :func:`normalise_samples`)."""
        return cls(sample_columns(normalise_samples(samples)), **fields)

    @property
    def samples(self) -> pd.DataFrame:
        """The samples as a frame (SAMPLE_COLUMNS; timestamps UTC), built once from
        ``columns`` and sharing their memory."""
        if self._frame is None or self._frame[0] is not self.columns:
            self._frame = (self.columns, samples_frame(self.columns))
        return self._frame[1]

    @property
    def has_gps(self) -> bool:
        return bool((~np.isnan(self.columns["lat_deg"])).any())
