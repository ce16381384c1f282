"""The command line: a thin click layer over :mod:`runlog.api`.

Exit codes (also in ``runlog --help`` and the README):
0 all good · 1 runlog error (store busy or damaged, unknown run, ...; no weather fetched
because the service was unreachable; store rebuild left problems or lost runs) · 2 usage
error (bad option or value) · 3 import finished but some files (or all) failed; the others
went in.

Start-up matters (``runlog report`` should answer within a second): this module imports only
click and the standard library; pandas, the store, the importer and matplotlib load inside the
commands that need them. ``report`` and ``chart`` first look in the store's derived cache
(:mod:`runlog.derived_cache`) for the output of the same command on the same store state with
the same code, and only compute (and cache) it when it is not there. Then ``report`` (every
run, as a table) answers from a cached assessment without pandas
(:mod:`runlog.cached_report`), and ``chart`` crops the chart's data cached with the
assessment (:mod:`runlog.chart_cache`) and draws it; without that cache ``chart`` draws in a
helper process that loads matplotlib while this one loads pandas (:mod:`runlog.chart_helper`).

The commands that change what the assessment depends on (``annotate``, ``profile`` with
options, ``weather fetch`` when it filled runs, ``store refresh`` when it recomputed runs,
``store rebuild`` when the store is consistent again) end by
recomputing and caching the assessment and the chart's data (:func:`_cache_for_next_read`), so
the runner's next ``report`` or ``chart`` answers from the cache instead of computing it.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from runlog.derived_cache import DerivedCache, chart_environment
from runlog.errors import InputError, RunlogError
from runlog.paths import default_store_path
from runlog.schema import PROFILE_FIELDS

if TYPE_CHECKING:
    from runlog.api import RunLog
    from runlog.chart_spec import ChartData
    from runlog.importer import FileOutcome

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_SOME_FAILED = 0, 1, 2, 3
#: Show a progress bar on stderr for imports of at least this many files.
PROGRESS_MIN_FILES = 20

EXIT_CODES_HELP = """\b
Exit codes:
  0  all good
  1  runlog error (store busy or damaged, unknown run, ...); no weather could
     be fetched (service unreachable); store rebuild could not repair all
  2  usage error (bad option or value)
  3  import finished, but some files (or all) failed; the others went in

Not medical advice: levels are relative flags from population studies, never a
person's probability of injury or cramp."""


#: What Ctrl-C prints: the store is written in atomic commits, so nothing half-done stays.
INTERRUPTED = ("interrupted: the store keeps what earlier commits wrote, nothing half-done; "
               "run the command again to go on (an import skips the files it already has)")


#: click ≥ 8.2 shows the help for a bare `runlog` by raising this UsageError.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class RunlogGroup(click.Group):
    """Maps typed RunlogErrors to one line on stderr and a documented exit code."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except _NO_ARGS_IS_HELP:  # bare `runlog`: click's help, as before
            raise
        except click.UsageError as err:  # `runlog --bogus`: one line, as a command's own
            _fail(ctx, InputError(f"{err.format_message()} (see `{ctx.command_path} --help`)"),
                  EXIT_USAGE)
            raise  # not reached: _fail exits

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except _NO_ARGS_IS_HELP:  # bare `runlog store`: the group's help, as click shows it
            raise
        except click.UsageError as err:  # a subcommand's bad option or value, one line too
            command = err.ctx.command_path if err.ctx else ctx.command_path
            _fail(ctx, InputError(f"{err.format_message()} (see `{command} --help`)"),
                  EXIT_USAGE)
        except (KeyboardInterrupt, click.Abort):
            click.echo("", err=True)  # past the terminal's ^C
            _fail(ctx, RunlogError(INTERRUPTED), EXIT_ERROR)
        except InputError as err:
            _fail(ctx, err, EXIT_USAGE)
        except RunlogError as err:
            _fail(ctx, err, EXIT_ERROR)
        except BrokenPipeError:  # `runlog report | head`: the reader has all it wants
            _quiet_stdout()
            ctx.exit(EXIT_ERROR)
        except OSError as err:  # the store's disk: permissions, a full disk, a missing folder
            reason = err.strerror or type(err).__name__
            _fail(ctx, RunlogError(reason, path=err.filename), EXIT_ERROR)


def _quiet_stdout() -> None:
    """Point stdout at the null device: the reader of a closed pipe has gone, and flushing
    what is left for it would raise again (Python's documented way out of SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _fail(ctx: click.Context, err: RunlogError, code: int) -> None:
    verbose = (ctx.obj or {}).get("verbose", False)
    if verbose:
        traceback.print_exc()
    click.echo(f"runlog: {err.one_line()}", err=True)
    ctx.exit(code)


def _log(ctx: click.Context) -> RunLog:
    """The store's RunLog, opened on first use (loads pandas and the store code)."""
    obj = ctx.find_root().obj
    if obj.get("log") is None:
        from runlog.api import open_store

        obj["log"] = open_store(obj["store_dir"])
    return obj["log"]


def _store_dir(ctx: click.Context) -> Path:
    return Path(ctx.find_root().obj["store_dir"]).expanduser()


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a short read-only command.

    Importing pandas (and matplotlib) and assessing a long history allocate hundreds of
    thousands of long-lived objects, and the collector keeps re-scanning them (≈ 0.1 s of a
    cold ``report``); these commands make little cyclic garbage, so memory does not grow
    (peak RSS unchanged on 1,500 runs). Restored afterwards, for in-process callers.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@click.group(cls=RunlogGroup, epilog=EXIT_CODES_HELP)
@click.option("--store", "store_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="RUNLOG_STORE", show_envvar=True,
              help="Store directory [default: the platform's user data directory].")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and more detail.")
@click.version_option(package_name="runlog")
@click.pass_context
def cli(ctx: click.Context, store_dir: Path | None, verbose: bool) -> None:
    """runlog: a local running log that flags knee-pain and cramp risk for every run."""
    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    ctx.obj["store_dir"] = store_dir if store_dir is not None else default_store_path()
    ctx.obj["log"] = None  # opened by _log() when a command needs it


def _day_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--since/--until: exactly YYYY-MM-DD, else one usage line naming the value (exit 2)."""
    if value is None:
        return None
    from runlog.days import parse_day_text

    parse_day_text(value, f"--{param.name}")
    return value.strip()


def _time_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--when: 'YYYY-MM-DD HH:MM', else one usage line naming the value (exit 2)."""
    if value is None or not value.strip():
        return None
    from runlog.days import parse_time_text

    parse_time_text(value, f"--{param.name}")
    return value.strip()


FORMAT_OPTION = click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                             default="table", show_default=True, help="Output format.")


def _outcome_line(o: FileOutcome) -> str:
    from runlog.importer import DUPLICATE, NEW

    detail = o.reason
    if o.outcome == NEW:
        n = len(o.run_ids)
        detail = f"{n} run{'s' if n != 1 else ''}" + (f"; {o.reason}" if o.reason else "")
    elif o.outcome == DUPLICATE and o.matched_run_id and o.matched_run_id not in detail:
        detail = f"{detail} (run {o.matched_run_id})"
    if o.offset is not None:
        detail = f"{detail} (at byte {o.offset})"
    return f"{o.outcome:<9} {o.path}" + (f": {detail}" if detail else "")


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@FORMAT_OPTION
@click.option("--quiet", "-q", is_flag=True,
              help="No per-file lines: only the summary and the table of new runs.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Files parsed at a time: one in this process, the others in worker "
                   "processes [default: one per core but one, at least 1].")
@click.option("--weather", "with_weather", is_flag=True,
              help="Also fetch archive weather for the new runs (network; see `runlog "
                   "weather fetch`). Offline, the import still completes.")
@click.pass_context
def import_cmd(ctx: click.Context, paths: tuple[Path, ...], fmt: str, quiet: bool,
               jobs: int | None, with_weather: bool) -> None:
    """Import FIT/GPX/TCX files, folders, .gz, .zip and Strava/Garmin exports, then report.

    Prints one line per file (new / duplicate / skipped / failed, with the reason), a
    summary, then the new runs with their knee and cramp levels. Re-running is safe.
    """
    import pandas as pd

    from runlog.importer import FAILED
    from runlog.report import render_table, runs_json, runs_table
    from runlog.report_text import QUALITY_LEGEND
    from runlog.sources import discover

    # A mistyped path is a usage mistake: one line naming every such path, nothing imported.
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        raise InputError("no such file or folder (nothing was imported)",
                         path=", ".join(missing))
    log = _log(ctx)
    # Fail before reading anything when the store cannot be created (one line, exit 1).
    log.root.mkdir(parents=True, exist_ok=True)
    _refresh(log, quiet=quiet or fmt == "json")
    sources = list(discover(str(p) for p in paths))
    show_bar = (fmt == "table" and len(sources) >= PROGRESS_MIN_FILES
                and sys.stderr.isatty())
    lines_to_stdout = fmt == "table" and not quiet
    bar = click.progressbar(length=len(sources), file=sys.stderr, label="Importing",
                            show_pos=True) if show_bar else None

    def on_file(o: FileOutcome) -> None:
        if lines_to_stdout:
            if bar is not None:
                click.echo("\r\033[K", nl=False, err=True)
            click.echo(_outcome_line(o))
        if bar is not None:
            bar.update(1)

    if bar is not None:
        bar.__enter__()
    try:
        result = log.import_sources(sources, on_file=on_file, jobs=jobs)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if lines_to_stdout:  # unreadable folders, broken links, ...: by name, not only counted
        for item in result.ignored:
            if item.problem:
                click.echo(f"{'ignored':<9} {item.display}: {item.reason}")
    counts = result.counts()
    # new runs, and stored runs a more complete recording replaced: both are listed
    changed = [*result.new_run_ids, *result.replaced_run_ids]
    weather_unreachable = False
    if with_weather and changed:
        filled, messages = log.fetch_weather(run_ids=changed)
        weather_unreachable = _unreachable(filled) is not None and not len(filled)
        if fmt == "table":
            for line in _weather_lines(filled, messages, "new runs"):
                click.echo(line)
    # The risk assessment covers the whole history; skip it when nothing new came in.
    new_runs = log.runs() if changed else log.store.runs().iloc[0:0]
    new_runs = new_runs[new_runs["run_id"].isin(changed)]
    if fmt == "json":
        _, flags = log.assessment() if len(new_runs) else (None, pd.DataFrame())
        payload = {
            "files": [o.as_dict() for o in result.outcomes],
            "ignored": [{"path": i.display, "reason": i.reason} for i in result.ignored],
            "summary": counts,
            "runs": runs_json(new_runs, flags),
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        ignored = (f", {_count(counts['ignored'], 'other file')} ignored"
                   if counts["ignored"] else "")
        replaced = f", {counts['replaced']} replaced" if counts["replaced"] else ""
        click.echo(f"\n{_count(len(result.outcomes), 'file')}: {counts['new']} new "
                   f"({_count(counts['new_runs'], 'run')})"
                   f"{replaced}, {counts['duplicate']} duplicate, "
                   f"{counts['skipped']} skipped, {counts['failed']} failed{ignored}. "
                   f"Store: {log.root}")
        if len(new_runs):
            click.echo("")
            click.echo(render_table(runs_table(new_runs)))
            quality = new_runs.get("quality_issues")
            if quality is not None and bool((quality.fillna("") != "").any()):
                click.echo(QUALITY_LEGEND)
            _disclaimer()
    if counts[FAILED]:
        ctx.exit(EXIT_SOME_FAILED)
    if weather_unreachable:  # the runs went in; the weather asked for could not be had
        ctx.exit(EXIT_ERROR)


def _unreachable(filled) -> dict | None:
    """{"reason", "run_ids"} when the weather service could not be reached, else None."""
    from runlog.weather import UNREACHABLE

    return filled.attrs.get(UNREACHABLE)


def _weather_lines(filled, messages: list[str], runs: str = "runs") -> list[str]:
    """What `weather fetch` (and `import --weather`) print: a count, then why runs have no
    weather; runs left without because the service was unreachable share one line."""
    offline = _unreachable(filled)
    lines: list[str] = []
    if offline:
        ids = offline["run_ids"]
        shown = {f"{run_id}: " for run_id in ids}
        messages = [m for m in messages if not any(m.startswith(p) for p in shown)]
        lines.append(f"  offline: no weather fetched for {_count(len(ids), 'run')}: "
                     f"{offline['reason']}")
    without = len(messages) + (len(offline["run_ids"]) if offline else 0)
    lines[:0] = [f"Weather for {len(filled)} {runs}; {without} without."]
    return lines + [f"  {line}" for line in messages]


def _refresh(log: RunLog, quiet: bool) -> None:
    """Bring runs computed by an older runlog up to date before anything new goes in."""
    count, problems = log.refresh_metrics()
    if not quiet and (count or problems):
        click.echo(f"Recomputed {count} runs with this version of runlog.", err=True)
        for line in problems:
            click.echo(f"  {line}", err=True)


def _disclaimer() -> None:
    click.echo(_disclaimer_text())


def _disclaimer_text() -> str:
    from runlog.report_text import DISCLAIMER

    return f"\n{DISCLAIMER}"


def _cache_for_next_read(log: RunLog) -> None:
    """The last step of a command that changed the store: compute and cache the assessment
    and the chart's data (:meth:`runlog.api.RunLog.cache_derived`), after the command's
    output is out. The store has changed by then, so this costs what the next ``report``
    would otherwise pay (≈ 0.5 s on 1,500 runs, pandas being loaded already). It never fails
    the command: a failure only leaves the cache empty, and the next read computes it.
    """
    with _collector_paused():
        log.cache_derived()


def _cached_output(ctx: click.Context, question: tuple, build: Callable[[], str]) -> str:
    """The output of a read-only command: from the store's derived cache when this question
    was answered on the same store state with the same code, else ``build()`` (cached)."""
    cache = DerivedCache(_store_dir(ctx))
    question = (str(_store_dir(ctx)), *(str(q) for q in question))
    key = cache.key(*question)
    hit = cache.get(question[1], key)
    if hit is not None:
        return hit.decode("utf-8", errors="surrogatepass")
    text = build()
    if key is not None and cache.key(*question) == key:  # the store did not change meanwhile
        cache.put(question[1], key, text.encode("utf-8", errors="surrogatepass"))
    return text


@cli.command()
@click.option("--run", "run_ref", metavar="RUN",
              help="Explain one run (id, unique prefix or 'last'): every flag and its source.")
@click.option("--since", metavar="YYYY-MM-DD", callback=_day_option,
              help="First local day to include.")
@click.option("--until", metavar="YYYY-MM-DD", callback=_day_option,
              help="Last local day to include.")
@click.option("--weeks", "weekly", is_flag=True,
              help="One line per local week (Monday–Sunday) instead of one per run.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True, help="Output format (csv: the columns of `runlog export`).")
@click.pass_context
def report(ctx: click.Context, run_ref: str | None, since: str | None, until: str | None,
           weekly: bool, fmt: str) -> None:
    """Show runs with distance, time, pace, HR, cadence, ascent, temperature and risk."""
    _check_window(since, until)
    _check_run_ref(run_ref)
    if run_ref is not None and (weekly or since or until):
        raise InputError("--run shows one run: --weeks, --since and --until do not apply")
    if fmt == "csv" and run_ref:
        raise click.UsageError("--format csv lists runs or weeks; for one run's flags "
                               "use `runlog export --what flags` or --format json")
    def build() -> str:
        if fmt == "table" and not (run_ref or since or until or weekly):
            # Every run, the assessment cached by another command: no pandas needed.
            from runlog.cached_report import runs_report_from_cache

            text = runs_report_from_cache(_store_dir(ctx))
            if text is not None:
                return text
        return _report_text(_log(ctx), run_ref, since, until, weekly, fmt)

    with _collector_paused():
        text = _cached_output(ctx, ("report", fmt, run_ref, since, until, weekly), build)
    click.echo(text, nl=False)


def _report_text(log: RunLog, run_ref: str | None, since: str | None, until: str | None,
                 weekly: bool, fmt: str) -> str:
    """Everything ``runlog report`` prints, final newline included."""
    if fmt == "csv":
        from runlog.export import csv_text, export_frame

        return csv_text(export_frame(log, "weeks" if weekly else "runs", since=since,
                                     until=until))
    if run_ref:
        return _report_one(log, run_ref, fmt) + "\n"
    if weekly:
        return _report_weeks(log, since, until, fmt) + "\n"
    return _report_runs(log, since, until, fmt) + "\n"


def _check_window(since: str | None, until: str | None) -> None:
    """--since after --until selects no day at all: a usage error, not an empty answer."""
    if not (since and until):
        return
    from runlog.days import parse_day_text

    first, last = parse_day_text(since, "--since"), parse_day_text(until, "--until")
    if first > last:
        raise InputError(f"--since {since} is after --until {until}: no day is in that range")


def _check_run_ref(run_ref: str | None) -> None:
    if run_ref is not None and not run_ref.strip():
        raise InputError("--run needs a run: an id, a unique prefix or 'last'")


def _no_runs_text(log: RunLog, since: str | None, until: str | None) -> str:
    """What report prints when it has no run to show: an empty store, or an empty window."""
    if not (since or until):
        return f"No runs in {log.root}. Import some with: runlog import PATH"
    stored = len(log.store.runs())  # a count: no assessment needed
    window = (f"from {since} to {until}" if since and until else
              f"since {since}" if since else f"until {until}")
    held = f"{stored} run" + ("" if stored == 1 else "s")
    return (f"No runs {window} ({held} in {log.root} in all)." if stored else
            f"No runs in {log.root}. Import some with: runlog import PATH")


def _report_runs(log: RunLog, since: str | None, until: str | None, fmt: str) -> str:
    import pandas as pd

    from runlog.report import runs_json

    runs = log.runs(since, until)
    if fmt == "json":
        flags = log.flags(since=since, until=until) if len(runs) else pd.DataFrame()
        return json.dumps({"runs": runs_json(runs, flags)}, indent=2, ensure_ascii=False)
    if runs.empty:
        return _no_runs_text(log, since, until)
    from runlog.refresh import stale_runs
    from runlog.report import runs_table_text
    from runlog.report_text import runs_report_text

    quality = runs.get("quality_issues")
    return runs_report_text(runs_table_text(runs), stale_runs=len(stale_runs(runs)),
                            quality_issues=quality is not None
                            and bool((quality.fillna("") != "").any()))


def _report_weeks(log: RunLog, since: str | None, until: str | None, fmt: str) -> str:
    from runlog.export import export_weeks, records
    from runlog.report import render_table
    from runlog.weekly import FOLD_EMPTY_WEEKS, fold_empty_weeks, weeks_table

    weeks = log.weeks(since, until)
    if fmt == "json":
        return json.dumps({"weeks": records(export_weeks(weeks))}, indent=2,
                          ensure_ascii=False)
    if weeks.empty:
        return _no_runs_text(log, since, until)
    header, rule, *rows = render_table(weeks_table(weeks)).splitlines()
    return "\n".join([header, rule, *fold_empty_weeks(weeks, rows),
                      f"\n– = no runs that week ({FOLD_EMPTY_WEEKS} or more such weeks without "
                      "an ACWR are folded into one ⋮ line). ACWR: training trend, not an "
                      "injury predictor.",
                      _disclaimer_text()])


def _report_one(log: RunLog, run_ref: str, fmt: str) -> str:
    info = log.explain(run_ref)
    if fmt == "json":
        return json.dumps(info, indent=2, ensure_ascii=False, default=str)
    from runlog.risk import render_explanation

    return render_explanation(info)


# --- annotate and profile ---------------------------------------------------------------------

def _range(lo: float, hi: float) -> click.FloatRange:
    return click.FloatRange(lo, hi)


@cli.command()
@click.argument("run_ref", metavar="RUN")
@click.option("--electrolytes/--no-electrolytes", default=None,
              help="Whether you took electrolytes (salt) during the run.")
@click.option("--sodium-mg", type=_range(0, 20000), help="Sodium taken during the run [mg].")
@click.option("--fluid-l", type=_range(0, 20), help="Fluid drunk during the run [L].")
@click.option("--knee-pain", type=click.IntRange(0, 10), help="Knee pain, 0–10.")
@click.option("--knee-pain-next-morning/--knee-pain-settled", "knee_pain_next_morning",
              default=None, help="Whether knee pain was still there the next morning.")
@click.option("--cramp/--no-cramp", default=None, help="Whether you had cramps.")
@click.option("--shoes", help="Shoe name (counts mileage per pair).")
@click.option("--shoe-type", type=click.Choice(["running", "sandals", "slippers", "barefoot",
                                                "other"]), help="Kind of footwear.")
@click.option("--rpe", type=click.IntRange(1, 10), help="Perceived exertion, CR-10 scale.")
@click.option("--air-temp-c", type=_range(-60, 60), help="Air temperature [°C].")
@click.option("--humidity-pct", type=_range(0, 100), help="Relative humidity [%].")
@click.option("--wind-kmh", type=_range(0, 200), help="Wind speed [km/h].")
@click.option("--mass-before-kg", type=_range(20, 300), help="Body mass before [kg].")
@click.option("--mass-after-kg", type=_range(20, 300), help="Body mass after [kg].")
@click.option("--warmed-up-before/--no-warm-up-before", "warmed_up_before", default=None,
              help="Whether you warmed up before starting the recording.")
@click.option("--note", help="Free text.")
@FORMAT_OPTION
@click.pass_context
def annotate(ctx: click.Context, run_ref: str, fmt: str, **fields) -> None:
    """Record what you know about a run: RUN is a run id, a unique prefix, or 'last'.

    Annotations are kept when runs are re-imported or recomputed. Options you leave out
    stay as they were.

    Afterwards the risk assessment and the chart's data are recomputed and cached (about
    half a second on years of runs), so the next `runlog report` or `runlog chart` answers
    from the cache; a failure there never fails this command.
    """
    log = _log(ctx)
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one option, e.g. --knee-pain 3")
    row = log.annotate(run_ref, **given)
    data = {k: _jsonable(v) for k, v in row.items()}
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        shown = ", ".join(f"{k}={data[k]}" for k in given)
        click.echo(f"Run {data['run_id']}: {shown}")
    _cache_for_next_read(log)


def _jsonable(value):
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value


#: ``runlog profile --clear`` names: every profile field, as its option is spelt.
CLEARABLE_PROFILE_FIELDS = tuple(name.replace("_", "-") for name in PROFILE_FIELDS)


@cli.command()
@click.option("--mass-kg", type=_range(20, 300), help="Body mass [kg].")
@click.option("--height-cm", type=_range(100, 250), help="Height [cm].")
@click.option("--hr-max-bpm", type=_range(100, 230), help="Maximum heart rate [bpm].")
@click.option("--hr-rest-bpm", type=_range(25, 120), help="Resting heart rate [bpm].")
@click.option("--birth-year", type=click.IntRange(1900, 2030), help="Year of birth.")
@click.option("--sex", type=click.Choice(["female", "male"]), help="Sex (for TRIMP weights).")
@click.option("--cramp-prone/--not-cramp-prone", default=None, help="Prone to cramps.")
@click.option("--knee-injury-history/--no-knee-injury-history", default=None,
              help="A previous knee injury.")
@click.option("--default-tz", help="IANA time zone for files that carry none, "
                                   "e.g. Europe/Berlin; runs already stored without one "
                                   "move to it.")
@click.option("--privacy-zone", "privacy_zones", multiple=True, metavar="LAT,LON,RADIUS_M",
              help="A place whose positions never leave runlog in exports (repeatable; "
                   "adds to the zones you have).")
@click.option("--clear-privacy-zones", is_flag=True, help="Remove every privacy zone.")
@click.option("--clear", "cleared", multiple=True, type=click.Choice(CLEARABLE_PROFILE_FIELDS),
              metavar="FIELD", help="Forget a value you set (repeatable), e.g. --clear "
                                    "hr-max-bpm: HRmax is then estimated from your runs. "
                                    f"FIELD: {', '.join(CLEARABLE_PROFILE_FIELDS)}.")
@FORMAT_OPTION
@click.pass_context
def profile(ctx: click.Context, fmt: str, privacy_zones: tuple[str, ...],
            clear_privacy_zones: bool, cleared: tuple[str, ...], **fields) -> None:
    """Show or set the runner's profile (used by the rules). No options: show it.

    After a change the risk assessment and the chart's data are recomputed and cached
    (about half a second on years of runs), so the next `runlog report` or `runlog chart`
    answers from the cache; a failure there never fails this command.
    """
    from runlog.privacy import parse_zone

    log = _log(ctx)
    given = {k: v for k, v in fields.items() if v is not None}
    forget = {name.replace("-", "_") for name in cleared}
    if forget & set(given):
        both = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(forget & set(given)))
        raise click.UsageError(f"{both} is both set and cleared")
    if privacy_zones or clear_privacy_zones:
        kept = [] if clear_privacy_zones else list(log.profile().get("privacy_zones", []))
        zones = kept + [parse_zone(z) for z in privacy_zones]
        given["privacy_zones"] = [z for i, z in enumerate(zones) if z not in zones[:i]]
    if "default_tz" in given:
        from runlog.localtime import check_zone

        check_zone(given["default_tz"])
    _check_profile({k: v for k, v in {**log.profile(), **given}.items() if k not in forget})
    if forget:
        import pandas as pd

        given.update(dict.fromkeys(forget, pd.NA))  # the store's "clear this field"
    data = log.set_profile(**given) if given else log.profile()
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        if not data:
            click.echo("Profile is empty. Set values with e.g. `runlog profile --mass-kg 70`.")
        for key, value in data.items():
            click.echo(f"{key}: {value}")
    if given:
        _cache_for_next_read(log)


def _check_profile(profile: dict) -> None:
    """Values that cannot all be true at once: one usage line, nothing saved."""
    hr_max, hr_rest = profile.get("hr_max_bpm"), profile.get("hr_rest_bpm")
    if isinstance(hr_max, (int, float)) and isinstance(hr_rest, (int, float)) \
            and hr_max <= hr_rest:
        raise InputError(f"maximum heart rate {hr_max:g} bpm is not above the resting "
                         f"heart rate {hr_rest:g} bpm")
    born = profile.get("birth_year")
    if isinstance(born, int) and born > date.today().year:
        raise InputError(f"birth year {born} is in the future")


@cli.command()
@click.option("-o", "--output", "out", required=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Chart file; the suffix picks the format: .png, .svg or .pdf.")
@click.option("--since", metavar="YYYY-MM-DD", callback=_day_option,
              help="First local day to show [default: the last 52 weeks up to the last run].")
@click.option("--until", metavar="YYYY-MM-DD", callback=_day_option, help="Last local day to show.")
@click.pass_context
def chart(ctx: click.Context, out: Path, since: str | None, until: str | None) -> None:
    """Weekly risk chart: km per local week coloured by the week's highest knee/cramp
    level, the ACWR training trend (not an injury predictor) and the high-risk runs."""
    from runlog.chart_spec import check_format

    _check_window(since, until)
    fmt = check_format(out)
    with _collector_paused(), _loaded_objects_aged():
        if fmt == "png":
            empty = _cached_png_chart(ctx, out, since, until)
        else:  # SVG and PDF embed the time they were drawn: always drawn afresh
            image, empty = _chart_bytes(ctx, fmt, since, until)
            _write_chart(out, image)
    click.echo(f"Chart written to {out}")
    if empty:  # say why, as report does, not only in the image
        click.echo(f"It is empty: {_no_runs_text(_log(ctx), since, until)}")


@contextlib.contextmanager
def _loaded_objects_aged() -> Iterator[None]:
    """On leaving, move every object into the collector's oldest generation unscanned.

    Inside :func:`_collector_paused`, the ≈ 100,000 objects that loading matplotlib (and
    pandas) creates stay in the collector's youngest generation: the first allocation after
    it is enabled again would scan them all (≈ 50 ms). Aged here (``gc.freeze`` then
    ``gc.unfreeze``, two list splices), they are scanned only by the next full collection,
    as long-lived objects are; garbage among them is still collected then.
    """
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()


#: The derived-cache entries of a drawn PNG chart: one that shows runs, one that shows none.
PNG_CHART_ENTRIES = {False: "chart", True: "chart-empty"}


def _cached_png_chart(ctx: click.Context, out: Path, since: str | None,
                      until: str | None) -> bool:
    """Write the PNG chart from the derived cache when the same chart was drawn on the same
    store state, code and matplotlib set-up; else draw it and cache the file's bytes.
    True when the chart shows no run."""
    cache = DerivedCache(_store_dir(ctx))
    question = ("chart", str(_store_dir(ctx)), "png", str(since), str(until))
    key = cache.key(*question, environment=[chart_environment()])
    for empty, entry in PNG_CHART_ENTRIES.items():
        png = cache.get(entry, key)
        if png is not None:
            _write_chart(out, png)
            return empty
    png, empty = _chart_bytes(ctx, "png", since, until)
    _write_chart(out, png)
    if key is not None and cache.key(*question, environment=[chart_environment()]) == key:
        cache.put(PNG_CHART_ENTRIES[empty], key, png)
    return empty


def _chart_bytes(ctx: click.Context, fmt: str, since: str | None, until: str | None
                 ) -> tuple[bytes, bool]:
    """The chart file's bytes, and True when it shows no run.

    When the chart's data was cached with the assessment (:mod:`runlog.chart_cache`), it is
    cropped to the window and drawn here, without pandas: a helper would only add its own
    start-up, as matplotlib's loading and drawing are all that is left to do. Else, where it
    saves time (:mod:`runlog.chart_helper`), a helper process loads matplotlib and draws
    while this one loads pandas and computes the data; without a helper (or when it does
    not answer) this process draws. The same bytes every way.
    """
    from runlog.chart_cache import chart_data_from_cache

    cached = chart_data_from_cache(_store_dir(ctx), since, until)
    if cached is not None:  # the chart's data cached with the assessment: no pandas needed
        return _draw_here(cached, fmt), _shows_no_run(cached)
    from runlog.chart_helper import DrawingHelper, worthwhile

    helper = DrawingHelper.start() if worthwhile() else None
    try:
        from runlog.chart import chart_data_from_log

        log = _log(ctx)
        with log.derived_writes_deferred():  # written while the helper draws
            data = chart_data_from_log(log, since=since, until=until)
            sent = helper is not None and helper.send(data, fmt)
        log.cache_derived()  # the chart's data too, if only the assessment was cached
        image = helper.result() if sent else None
    finally:
        if helper is not None:
            helper.close()
    if image is None:
        image = _draw_here(data, fmt)
    return image, _shows_no_run(data)


def _shows_no_run(data: ChartData) -> bool:
    return not int(data.week_runs.sum())


def _draw_here(data: ChartData, fmt: str) -> bytes:
    """The chart file's bytes drawn in this process, with matplotlib loaded the quick way
    (:func:`runlog.chart_helper.load_matplotlib`: the same drawing)."""
    from runlog.chart_helper import load_matplotlib

    load_matplotlib()
    from runlog.chart_draw import chart_bytes

    return chart_bytes(data, fmt)


def _write_chart(out: Path, image: bytes) -> None:
    """Write the chart file; an unwritable path is one line naming it."""
    try:
        with open(out, "wb") as fh:
            fh.write(image)
    except OSError as err:  # the same one line as matplotlib's savefig failing
        raise InputError(f"cannot write the chart: {err.strerror or err}",
                         path=str(out)) from err


@cli.command()
@click.option("-o", "--output", "out", default="-", show_default=True, metavar="FILE",
              help="CSV file, or - for standard output.")
@click.option("--what", type=click.Choice(["runs", "flags", "weeks", "samples"]),
              default="runs", show_default=True,
              help="One row per run, per flag, per local week, or per sample of --run.")
@click.option("--since", metavar="YYYY-MM-DD", callback=_day_option,
              help="First local day to include.")
@click.option("--until", metavar="YYYY-MM-DD", callback=_day_option,
              help="Last local day to include.")
@click.option("--run", "run_ref", metavar="RUN",
              help="The run for --what samples (id, unique prefix or 'last').")
@click.option("--drop-positions", is_flag=True,
              help="Leave every latitude/longitude empty in --what samples. Without it, "
                   "positions inside your privacy zones (runlog profile) are left out.")
@click.pass_context
def export(ctx: click.Context, out: str, what: str, since: str | None, until: str | None,
           run_ref: str | None, drop_positions: bool) -> None:
    """Export runs, flags, weeks or one run's samples as CSV (units in the column names,
    ISO 8601 times with your UTC offset, empty cells for missing values)."""
    _check_window(since, until)
    _check_run_ref(run_ref)
    if run_ref is not None and what != "samples":
        raise InputError(f"--run picks the run for --what samples; --what {what} lists every "
                         "run (narrow it with --since/--until)")
    with _collector_paused():
        frame = _log(ctx).export(what, out, since=since, until=until, run=run_ref,
                                 drop_positions=drop_positions)
    if out != "-":
        click.echo(f"{len(frame)} rows written to {out}")


@cli.group()
def weather() -> None:
    """Historical weather for your runs (with `runlog import --weather`, runlog's only
    network use)."""


@weather.command("fetch")
@click.option("--since", metavar="YYYY-MM-DD", callback=_day_option,
              help="First local day to include.")
@click.option("--until", metavar="YYYY-MM-DD", callback=_day_option,
              help="Last local day to include.")
@click.pass_context
def weather_fetch(ctx: click.Context, since: str | None, until: str | None) -> None:
    """Fetch hourly historical weather for runs that lack it (network; `runlog import
    --weather` does the same for the runs it adds).

    Sends each run's place (rounded to 0.1°, about 11 km) and dates to the Open-Meteo
    archive; answers are cached in the store, so nothing is fetched twice. Offline, runlog
    keeps working and says which runs lack weather; when the service could not be reached
    and no run got weather, the command exits 1. Your own annotation always wins.
    Weather data by Open-Meteo.com (CC BY 4.0).

    When runs got weather, the risk assessment and the chart's data are then recomputed and
    cached (about half a second on years of runs), so the next `runlog report` or `runlog
    chart` answers from the cache; a failure there never fails this command.
    """
    _check_window(since, until)
    log = _log(ctx.find_root())
    filled, messages = log.fetch_weather(since, until)
    for line in _weather_lines(filled, messages):
        click.echo(line)
    if len(filled):
        _cache_for_next_read(log)
    elif _unreachable(filled) is not None:  # nothing fetched: the network, not the runs
        ctx.exit(EXIT_ERROR)


@cli.group()
def store() -> None:
    """Check or repair the store."""


@store.command("check")
@click.pass_context
def store_check(ctx: click.Context) -> None:
    """List problems in the store (missing or unreadable files, orphaned rows)."""
    from runlog.store import ANNOTATIONS_WAITING

    problems = _log(ctx.find_root()).store.check()
    if not problems:
        click.echo("Store is consistent.")
        return
    for line in problems:
        click.echo(f"- {line}")
    if all(ANNOTATIONS_WAITING in line for line in problems):  # rebuild alone cannot help
        click.echo("Bring those runs back from their original files: runlog store rebuild "
                   "PATH... (the files or folders that hold them)")
    else:
        click.echo("Repair with: runlog store rebuild [PATH...] (PATH: the files or folders "
                   "of the originals, if they moved)")
    ctx.exit(EXIT_ERROR)


@store.command("refresh")
@click.pass_context
def store_refresh(ctx: click.Context) -> None:
    """Recompute runs whose metrics came from an older runlog, from their original files
    (annotations and export names/gear are kept). `runlog import` does this too.

    When runs were recomputed, the risk assessment and the chart's data are then recomputed
    and cached (about half a second on years of runs), so the next `runlog report` or
    `runlog chart` answers from the cache; a failure there never fails this command.
    """
    log = _log(ctx.find_root())
    count, problems = log.refresh_metrics()
    click.echo(f"Recomputed {count} runs.")
    for line in problems:
        click.echo(f"  {line}")
    if count:
        _cache_for_next_read(log)


@store.command("rebuild")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def store_rebuild(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Make a damaged store consistent again, keeping every annotation, then re-import
    the runs it lost from their original files (or from PATHS, if given: the files or
    folders that hold them, when they have moved).

    Exits 1 when runs could not be brought back (their original files were not found) or
    problems remain, and says what to do next.
    """
    log = _log(ctx.find_root())
    # A lost or damaged manifest first: the files table it lists says where runs came from.
    recovered = log.store.recover_manifest()
    # Where the runs came from, read before the rebuild forgets the files of lost runs.
    originals = _imported_contents(log)
    present, missing = log.original_files()
    sources = [str(p) for p in paths] or present
    for line in [*recovered, *log.store.rebuild()]:
        click.echo(f"- {line}")
    log.derived.clear()  # derived results are recomputed from the repaired store
    if sources:
        result = log.import_paths(sources)
        counts = result.counts()
        click.echo(f"Re-imported {counts['new_runs']} runs from {len(sources)} paths.")
    back = set(_imported_contents(log))
    lost = sorted({path for sha, path in originals.items() if sha not in back})
    if lost:
        where = "not among PATHS" if paths else "not found"
        relative = ("; relative paths are from the folder an older runlog imported in"
                    if any(not os.path.isabs(p) for p in lost) else "")
        click.echo(f"- {_count(len(lost), 'original file')} of removed runs {where}, so their "
                   f"runs are not back: {_first_few(lost)}{relative}")
    elif missing and not paths:
        click.echo(f"- {_count(len(missing), 'original file')} not found (no run needed "
                   f"them back): {_first_few(missing)}")
    problems = log.store.check()
    if not problems and not lost:
        click.echo("Store is consistent.")
        _cache_for_next_read(log)
        return
    for line in problems:
        click.echo(f"- {line}")
    click.echo(("Problems remain. " if problems else "The store is consistent, but runs are "
                "missing. ")
               + ("Give the files or folders that hold the originals: "
                  "runlog store rebuild PATH..." if lost else
                  "Rebuilding again will not change them; move the store aside and import "
                  "your original files into a new one: runlog --store NEW import PATH..."))
    if not problems:
        _cache_for_next_read(log)
    ctx.exit(EXIT_ERROR)


def _imported_contents(log: RunLog) -> dict[str, str]:
    """sha256 → the file on disk (an archive's member: the archive) of every file a stored
    run came from, as the files table says; empty when that table cannot be read."""
    rows = log.imported_files()
    rows = rows[rows["sha256"].notna()]
    return dict(zip(rows["sha256"], rows["disk_path"], strict=True))


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _first_few(items: list[str], shown: int = 3) -> str:
    more = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {more} more" if more > 0 else "")


@cli.command("next")
@click.option("--when", metavar="'YYYY-MM-DD HH:MM'", callback=_time_option,
              help="Planned start, your local time [default: now].")
@click.option("--distance-km", "--distance", type=click.FloatRange(0, 1000, min_open=True),
              help="A distance you have in mind [km]: the flags and levels it would get.")
@click.option("--weather", "use_weather", is_flag=True,
              help="Check heat/cold for the run with the values you give (--air-temp-c, "
                   "--humidity-pct, --wind-kmh). Live forecasts are never fetched (offline).")
@click.option("--air-temp-c", type=_range(-60, 60), help="Air temperature [°C] (--weather).")
@click.option("--humidity-pct", type=_range(0, 100), help="Relative humidity [%] (--weather).")
@click.option("--wind-kmh", type=_range(0, 200), help="Wind speed [km/h] (--weather).")
@FORMAT_OPTION
@click.pass_context
def next_cmd(ctx: click.Context, when: str | None, distance_km: float | None,
             use_weather: bool, air_temp_c: float | None, humidity_pct: float | None,
             wind_kmh: float | None, fmt: str) -> None:
    """How far can I run next? The longest run that raises no load flag, from your history.

    Uses the same rule functions as the report: the ceiling is what the report would flag
    one metre later. Also: distance left this week before the 7-day jump rule, a restart
    after a break, recent knee pain or cramps, and (with --distance-km) what a planned run
    would raise.
    """
    given = {"air_temp_c": air_temp_c, "humidity_pct": humidity_pct, "wind_kmh": wind_kmh}
    if any(v is not None for v in given.values()) and not use_weather:
        raise click.UsageError("weather values need --weather")
    if use_weather and air_temp_c is None:
        raise click.UsageError("--weather needs at least --air-temp-c: runlog does not fetch "
                               "live forecasts (today's weather is not in its archive)")
    plan = _log(ctx).plan_next(when=when, distance_km=distance_km,
                               weather=given if use_weather else None)
    if fmt == "json":
        click.echo(json.dumps(plan, indent=2, ensure_ascii=False))
        return
    from runlog.planner import render_plan

    click.echo(render_plan(plan))


def main() -> None:
    """Run the command line in this process; ends with ``SystemExit`` (click's standalone
    mode), after freezing the collector."""
    try:
        cli(prog_name="runlog")
    finally:
        # The process is ending: move every object into the collector's permanent
        # generation, so the collections of interpreter shutdown do not scan all that pandas
        # and matplotlib loaded (≈ 0.1–0.25 s). Reference counting still frees and finalises
        # objects as usual; only cycles are left to the operating system. Files and the
        # store's lock are closed by the commands themselves, never by the collector.
        gc.freeze()


def run() -> NoReturn:
    """The ``runlog`` console script (and ``python -m runlog.cli``): :func:`main`, then end
    the process at once.

    click ends every command, failed or not, with ``sys.exit``. By then the command has
    closed its files and the store's lock and joined its threads and worker processes; what
    remains is the interpreter's shutdown, which tears down every module pandas and
    matplotlib loaded (≈ 30–80 ms, measured on ``runlog chart``). :func:`_exit_now` skips
    it. Anything but ``SystemExit`` (a bug's traceback) ends the usual way. Never call this
    from a process that has more to do: call :func:`main` (or the API).
    """
    try:
        main()
    except SystemExit as done:
        _exit_now(done.code)
    _exit_now(EXIT_OK)


def _exit_now(code: object) -> NoReturn:
    """End the process with ``code`` as ``sys.exit(code)`` would, without the interpreter's
    shutdown (``os._exit``), once standard output and error are flushed.

    A message (``sys.exit("text")``) is printed to stderr with status 1. Output that cannot
    be flushed (a closed pipe: ``runlog report | head``) gives status 120, as Python's own
    shutdown does.
    """
    if code is None:
        status = EXIT_OK
    elif isinstance(code, int):
        status = code
    else:
        with contextlib.suppress(OSError, ValueError):
            print(code, file=sys.stderr)
        status = EXIT_ERROR
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            status = status or 120
    os._exit(status)


if __name__ == "__main__":
    run()
