"""The Python API: what the CLI calls, returning DataFrames for notebooks.

>>> import runlog
>>> log = runlog.open_store("~/runlog-store")      # doctest: +SKIP
>>> log.runs()[["start_local", "distance_m", "knee_risk", "cramp_risk"]]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from runlog.chart_cache import CACHE_NAME as CHART_HISTORY
from runlog.days import parse_time_text
from runlog.derived_cache import DerivedCache, inputs_state
from runlog.errors import InputError, StoreError
from runlog.localtime import check_zone, local_start, parse_day
from runlog.paths import ENV_STORE, default_store_path
from runlog.store import Store, empty_table

if TYPE_CHECKING:  # the importer (readers, metrics) loads only when importing
    from runlog.importer import FileOutcome, ImportResult
    from runlog.sources import Ignored, SourceFile

__all__ = ["ENV_STORE", "RunLog", "default_store_path", "open_store", "parse_day"]

#: The derived-cache entries of the assessment: computed from the runs, annotations, cadence
#: bins and profile alone (:data:`runlog.derived_cache.ASSESSMENT_TABLES`).
ASSESSMENT_ENTRIES = ("assessment-levels", "assessment-flags", CHART_HISTORY)


def open_store(path: str | os.PathLike | None = None) -> RunLog:
    """Open (or prepare) the runlog store at ``path`` (default: :func:`default_store_path`)."""
    return RunLog(Path(path).expanduser() if path is not None else default_store_path())


def _check_masses(annotation: pd.Series) -> None:
    """InputError when the body masses before and after a run differ by more than a run can
    change them (:data:`runlog.rules.thresholds.MASS_CHANGE_MAX_FRACTION`)."""
    from runlog.rules.thresholds import MASS_CHANGE_MAX_FRACTION

    before, after = annotation.get("mass_before_kg"), annotation.get("mass_after_kg")
    if pd.isna(before) or pd.isna(after):
        return
    change = abs(float(after) - float(before)) / float(before)
    if change > MASS_CHANGE_MAX_FRACTION:
        raise InputError(f"body mass {float(before):g} kg before and {float(after):g} kg after "
                         f"the run differ by {change:.0%}; one run changes it by a few % at "
                         "most, so check the values (nothing was saved)")


def _runs_in_default_zone(runs: pd.DataFrame, zone: str | None) -> pd.DataFrame:
    """run_id, tz_offset_min [min] and tz_source of the runs whose local time comes from
    the default zone or from nothing (UTC), in ``zone`` (DST-aware at each start), or back
    in UTC when ``zone`` is None."""
    affected = runs.loc[runs["tz_source"].isin(["default", "utc"]), ["run_id", "start_utc"]]
    start = affected["start_utc"].dt.tz_convert("UTC")
    if zone:
        wall = start.dt.tz_convert(check_zone(zone)).dt.tz_localize(None)
        offset = (wall - start.dt.tz_localize(None)) // pd.Timedelta(minutes=1)
    else:
        offset = pd.Series(0, index=affected.index)
    return pd.DataFrame({"run_id": affected["run_id"], "tz_offset_min": offset.astype("int64"),
                         "tz_source": "default" if zone else "utc"})


def _with_levels(runs: pd.DataFrame, levels: pd.DataFrame) -> pd.DataFrame:
    """The store's ``runs`` with their local start and assessed levels (unsorted: the caller
    sorts after any filter, as :meth:`RunLog.runs` does)."""
    if runs.empty:
        return runs.assign(start_local=pd.Series(dtype="datetime64[ns]"))
    runs = runs.assign(start_local=local_start(runs["start_utc"], runs["tz_offset_min"]))
    keep = [c for c in levels.columns if c not in runs.columns or c == "run_id"]
    return runs.merge(levels[keep], on="run_id", how="left")


class RunLog:
    """One runner's log: the store plus the derived risk assessment."""

    def __init__(self, root: Path) -> None:
        self.store = Store(root)
        self.derived = DerivedCache(self.store.root)
        self._assessed_key: str | None = None
        self._assessed: dict[str, pd.DataFrame] = {}
        self._deferred_writes: list[Callable[[], object]] | None = None

    @property
    def root(self) -> Path:
        return self.store.root

    # --- import ---------------------------------------------------------------------------
    def import_paths(self, paths: Iterable[str],
                     on_file: Callable[[FileOutcome], None] | None = None,
                     jobs: int | None = None) -> ImportResult:
        """Import files, folders and archives; see :func:`runlog.importer.import_paths`.

        ``jobs``: files parsed at a time, one in this process and the others in worker
        processes (default: one per core but one; 1 parses in this process only). With more
        than one, call it under ``if __name__ == "__main__":`` in a script.
        """
        from runlog.importer import import_paths

        with self._assessment_kept():
            return import_paths(self.store, paths, on_file=on_file, jobs=jobs)

    def import_sources(self, sources: Iterable[SourceFile | Ignored],
                       on_file: Callable[[FileOutcome], None] | None = None,
                       jobs: int | None = None) -> ImportResult:
        """Import sources already found by :func:`runlog.sources.discover`."""
        from runlog.importer import import_sources

        with self._assessment_kept():
            return import_sources(self.store, sources, on_file=on_file, jobs=jobs)

    @contextlib.contextmanager
    def _assessment_kept(self) -> Iterator[None]:
        """Around an import: when its commits left the assessment's inputs as they were
        (it only recorded files: duplicates, failures, other sports), the cached assessment
        and the chart's data move on to the new store state, so the next ``report`` or
        ``chart`` reads them instead of computing them again. Best effort, never raises."""
        before = self._assessment_state()
        yield
        after = self._assessment_state()
        if before is None or after is None or before[0] == after[0] or before[1] != after[1]:
            return
        try:
            carried = self.derived.carry_over(before[0], after[0], ASSESSMENT_ENTRIES)
        except Exception:  # an optional cache never fails the import
            return
        if self._assessed_key == before[0] and len(carried) == len(ASSESSMENT_ENTRIES):
            self._assessed_key = after[0]

    def _assessment_state(self) -> tuple[str, str] | None:
        """(the assessment's cache key, :func:`~runlog.derived_cache.inputs_state`) of one
        store state; None when there is none or a commit came between the two."""
        try:
            key = self.derived.key("assessment")
            inputs = inputs_state(self.root)
            if key is None or inputs is None or self.derived.key("assessment") != key:
                return None
        except Exception:
            return None
        return key, inputs

    # --- derived tables -------------------------------------------------------------------
    def assessment(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(levels, flags) for every run, computed over the whole history in one pass.

        Kept in memory and in the store's derived cache (:mod:`runlog.derived_cache`), keyed
        by the store's state and runlog's code: a commit, an annotation, a profile change or
        another runlog version recomputes it. When computed, the weekly chart's data for the
        whole history is cached with it (:mod:`runlog.chart_cache`, ≈ 50 ms on 1,500 runs),
        so ``runlog chart`` then needs no pandas.
        """
        return self._assessed_part("levels"), self._assessed_part("flags")

    def _assessed_part(self, part: str) -> pd.DataFrame:
        """'levels' or 'flags' of :meth:`assessment`: from memory, the cache, or computed."""
        key = self.derived.key("assessment")
        if key is None or key != self._assessed_key:
            self._assessed_key, self._assessed = key, {}
        if part in self._assessed:
            return self._assessed[part]
        cached = self.derived.get_frame(f"assessment-{part}", key)
        if cached is not None:
            self._assessed[part] = cached
            return cached
        from runlog.risk import assess

        runs = self.store.runs()
        levels, flags = assess(runs, self.store.annotations(), self.store.profile(),
                               self.store.cadence_bins())
        if key is not None and self.derived.key("assessment") == key:  # unchanged meanwhile
            self._assessed = {"levels": levels, "flags": flags}
            self._write_derived(lambda: self.derived.put_frame("assessment-levels", key, levels))
            self._write_derived(lambda: self.derived.put_frame("assessment-flags", key, flags))
            # The chart's data too (≈ 50 ms on 1,500 runs): `runlog chart` then needs no pandas.
            self._write_derived(lambda: self._put_chart_history(key, runs, levels, flags))
        return {"levels": levels, "flags": flags}[part]

    def _put_chart_history(self, key: str, runs: pd.DataFrame, levels: pd.DataFrame,
                           flags: pd.DataFrame) -> bool:
        """Cache the chart data of every week (:mod:`runlog.chart_cache`) computed from the
        store's ``runs`` and their assessment, as :meth:`runs` and :meth:`flags` give them,
        under the assessment's ``key``. Best effort: False when it cannot be cached."""
        from runlog.chart import chart_history
        from runlog.chart_cache import history_bytes

        try:
            every_run = _with_levels(runs, levels).sort_values("start_utc")  # as runs()
            payload = history_bytes(chart_history(every_run.reset_index(drop=True),
                                                  flags.reset_index(drop=True)))
        except Exception:  # an optional cache entry never fails the command computing it
            return False
        return self.derived.put(CHART_HISTORY, key, payload)

    def cache_derived(self) -> bool:
        """Compute and cache what ``runlog report`` and ``runlog chart`` read (the
        assessment and the chart's data) unless it is cached already; True when it is cached
        afterwards.

        The write commands call it last, so the runner's next report or chart answers
        from the cache. Best effort: it never raises (the store's own errors surface in the
        next command that needs the data).
        """
        try:
            key = self.derived.key("assessment")
            if key is None:
                return False
            if self.derived.get(CHART_HISTORY, key) is not None:
                return True
            levels, flags = self.assessment()  # computes and caches all three when missing
            if self.derived.get(CHART_HISTORY, key) is None:  # the assessment was cached alone
                runs = self.store.runs()
                # Read in one store state (the key's) or not cached: never a stale entry.
                if self.derived.key("assessment") == key:
                    self._put_chart_history(key, runs, levels, flags)
            return self.derived.get(CHART_HISTORY, key) is not None
        except Exception:  # a cache is optional: it never fails the command
            return False

    def _write_derived(self, write: Callable[[], object]) -> None:
        if self._deferred_writes is not None:
            self._deferred_writes.append(write)
        else:
            write()

    @contextlib.contextmanager
    def derived_writes_deferred(self) -> Iterator[None]:
        """Keep the derived-cache writes of this block until it ends (they then happen).

        An entry is written under the key its data was read with, so a later write is as
        valid as an immediate one. The CLI's chart uses this to write the assessment while
        its drawing helper draws, instead of before handing it the data.
        """
        outer, self._deferred_writes = self._deferred_writes, []
        try:
            yield
        finally:
            pending, self._deferred_writes = self._deferred_writes, outer
            for write in pending:
                self._write_derived(write)

    def runs(self, since: str | None = None, until: str | None = None) -> pd.DataFrame:
        """Runs with local start time and their knee/cramp levels, oldest first.

        ``since``/``until`` are local calendar days (inclusive).
        """
        runs = self.store.runs()
        if runs.empty:
            return runs.assign(start_local=pd.Series(dtype="datetime64[ns]"))
        runs = _with_levels(runs, self._assessed_part("levels"))
        lo, hi = parse_day(since), parse_day(until, end=True)
        if lo is not None:
            runs = runs[runs["start_local"] >= lo]
        if hi is not None:
            runs = runs[runs["start_local"] < hi]
        return runs.sort_values("start_utc").reset_index(drop=True)

    def flags(self, run: str | None = None, since: str | None = None,
              until: str | None = None) -> pd.DataFrame:
        """One row per (run, rule) assessed, with value, threshold, unit, message, source."""
        flags = self._assessed_part("flags")
        if run is not None:
            return flags[flags["run_id"] == self.store.resolve_run(run)].reset_index(drop=True)
        if since or until:
            ids = set(self.runs(since, until)["run_id"])
            flags = flags[flags["run_id"].isin(ids)]
        return flags.reset_index(drop=True)

    def explain(self, run: str) -> dict:
        """Everything the report shows for one run: levels, every flag, what was not assessed."""
        from runlog.risk import explain

        levels, flags = self.assessment()
        run_id = self.store.resolve_run(run)
        info = explain(levels, flags, run_id)
        runs = self.store.runs()
        row = runs.loc[runs["run_id"] == run_id].iloc[0]
        # what the data-quality checks and the reader found (the report's '*')
        info["quality_issues"] = [x for x in str(row.get("quality_issues") or "").split(";") if x]
        notes = row.get("quality_notes")
        info["quality_notes"] = "" if pd.isna(notes) else str(notes)
        info["hr_max"] = _hr_max_info(row)
        return info

    def samples(self, run: str) -> pd.DataFrame:
        """The samples of one run (id, unique prefix or 'last')."""
        run_id = self.store.resolve_run(run)
        return self.store.samples([run_id])

    def weeks(self, since: str | None = None, until: str | None = None) -> pd.DataFrame:
        """One row per local week (Monday–Sunday); see :func:`runlog.weekly.weekly_table`."""
        from runlog.weekly import weekly_table

        return weekly_table(self.runs(), self.flags(), since=since, until=until)

    def chart(self, path: str | os.PathLike, since: str | None = None,
              until: str | None = None):
        """Save the weekly risk chart (.png/.svg/.pdf); returns the matplotlib Figure."""
        from runlog.chart import chart_from_log

        return chart_from_log(self, path, since=since, until=until)

    def export(self, what: str, out: str | os.PathLike, **options) -> pd.DataFrame:
        """Write runs | flags | weeks | samples as CSV to ``out`` ('-' = standard output)."""
        from runlog.export import export_csv

        return export_csv(self, what, out, **options)

    def refresh_metrics(self, on_run: Callable[[str], None] | None = None,
                        ) -> tuple[int, list[str]]:
        """Recompute runs whose metrics came from an older runlog; annotations untouched."""
        from runlog.refresh import refresh_metrics

        return refresh_metrics(self.store, on_run=on_run)

    def original_files(self) -> tuple[list[str], list[str]]:
        """(present, missing): the files and archives on disk that runs were imported from,
        as the files table names them, split by whether they are there now. Stores written
        before runlog recorded absolute paths hold them as typed, relative to the folder the
        import ran in: from another folder they count as missing."""
        on_disk = set(self.imported_files()["disk_path"])
        present = sorted(p for p in on_disk if Path(p).exists())
        return present, sorted(on_disk.difference(present))

    def imported_files(self) -> pd.DataFrame:
        """The files table's rows of files that gave stored runs (outcome new or replaced),
        with ``disk_path``: the file on disk (an archive's, for its members). Empty when the
        table cannot be read (a damaged store: ``store rebuild`` must still run)."""
        from runlog.importer import NEW, REPLACED

        try:
            files = self.store.files()
        except StoreError:
            files = empty_table("files")
        rows = files[files["outcome"].isin([NEW, REPLACED])]
        return rows.assign(disk_path=rows["path"].astype(str).str.split("!").str[0])

    # --- weather ------------------------------------------------------------------------
    def fetch_weather(self, since: str | None = None, until: str | None = None,
                      client=None, run_ids: Iterable[str] | None = None,
                      ) -> tuple[pd.DataFrame, list[str]]:
        """Fill in hourly archive weather for runs that lack it (needs the network).

        Returns (weather rows written, messages for runs left without weather). Offline or
        when the service fails, nothing else changes: the runs keep what they had.
        """
        from runlog.weather import STORE_COLUMNS, WeatherClient, weather_for_runs

        runs = self.runs(since, until)
        if run_ids is not None:
            runs = runs[runs["run_id"].isin(set(run_ids))]
        if "weather_source" in runs:
            runs = runs[runs["weather_source"].isna()]
        client = client or WeatherClient(cache_dir=self.root / "cache" / "weather")
        weather, messages = weather_for_runs(runs, client)
        if len(weather):
            with self.store.writer() as tx:
                tx.update_runs(weather.rename(columns=STORE_COLUMNS))
        return weather, messages

    # --- planning -------------------------------------------------------------------------
    def plan_next(self, when: str | pd.Timestamp | None = None,
                  distance_km: float | None = None, weather: dict | None = None) -> dict:
        """How far to run next; see :func:`runlog.planner.plan_next`.

        ``when``: planned start, 'YYYY-MM-DD HH:MM' local time (default now);
        ``distance_km``: a distance in mind [km]; ``weather``: runner-given air_temp_c [°C],
        humidity_pct [%], wind_kmh [km/h] (never fetched).
        """
        from runlog.planner import parse_when, plan_next

        if isinstance(when, str) and when.strip():
            parse_time_text(when, "when")  # exactly 'YYYY-MM-DD HH:MM', never a guess
        start = when if isinstance(when, pd.Timestamp) else parse_when(when)
        return plan_next(self.store.runs(), self.store.annotations(), self.store.profile(),
                         when=start, cadence_bins=self.store.cadence_bins(),
                         planned_distance_m=None if distance_km is None
                         else distance_km * 1000.0,
                         weather=weather)

    # --- what the runner tells us ---------------------------------------------------------
    def annotate(self, run: str, **fields) -> pd.Series:
        """Record what the runner says about a run; None leaves a field unchanged."""
        run_id = self.store.resolve_run(run)
        with self.store.writer() as tx:
            row = tx.set_annotation(run_id, **fields)
            _check_masses(row)  # raising here leaves the store as it was
            return row

    def profile(self) -> dict:
        return self.store.profile()

    def set_profile(self, **fields) -> dict:
        """Set profile fields (see :meth:`runlog.store.StoreWriter.set_profile`).

        Setting or clearing ``default_tz`` also moves the runs that took their local time
        from it, or had none (``tz_source`` 'default' or 'utc'), to the new zone, in the same
        commit: their weeks and days then follow the runner's clock.
        """
        with self.store.writer() as tx:
            profile = tx.set_profile(**fields)
            if "default_tz" in fields:
                moved = _runs_in_default_zone(self.store.runs(), profile.get("default_tz"))
                if len(moved):
                    tx.update_runs(moved)
            return profile


def _hr_max_info(row: pd.Series) -> dict:
    """The HRmax a run's %HRmax and %HRR figures were taken with: bpm, source (profile |
    history_30s | age_formula, None when unknown), the phrase the report shows, and whether
    the run recorded HR."""
    from runlog.hrmax import hr_max_phrase

    bpm = pd.to_numeric(pd.Series([row.get("hr_max_used_bpm")]), errors="coerce").iloc[0]
    source = row.get("hr_max_source")
    source = None if source is None or pd.isna(source) else str(source)
    known = bool(pd.notna(bpm))
    has_hr = row.get("has_hr")
    return {"bpm": float(bpm) if known else None, "source": source if known else None,
            "text": hr_max_phrase(float(bpm), source) if known else "",
            "has_hr": bool(has_hr) if has_hr is not None and not pd.isna(has_hr) else False}
