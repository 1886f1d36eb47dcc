"""Commands on figures: reports, report jobs, imports of queue_log and CDR, staffing."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from callcenter.commands.common import configured_store, must_exist, run_interruptible
from kernel import config
from kernel.db import open_store
from kernel.exceptions import ConfigError, InputError
from reports import jobs as report_jobs
from reports.cdr import cdr_calls, read_cdr
from reports.engine import ReportEngine
from reports.erlang import agents_needed
from reports.forecast import forecast
from reports.ivr import ivr_section, record_rows, stored_ivr_rows
from reports.metrics import Options
from reports.queue_log import FIRST_EPOCH, LAST_EPOCH, LineError, VisitBuilder, read_lines, read_visits
from reports.render import RENDERERS
from reports.store import queue_callids, save_stream, stored_stream

INTERVALS = {"15m": 900, "30m": 1800, "1h": 3600, "1d": 86400}
DAYS = (datetime.fromtimestamp(FIRST_EPOCH, UTC).date(), datetime.fromtimestamp(LAST_EPOCH, UTC).date())  # as queue_log's times
HOUR = 3600.0


def _number(low: float, high: float, *, above: bool = False, below: bool = False) -> Callable[[str], float]:
    """An argparse type: a number from `low` to `high` (over `low`, under `high`: the bound excluded), so nan, inf, a
    negative time or a figure past what any center has is refused naming the option, not met later as a traceback."""

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not ((low < value if above else low <= value) and (value < high if below else value <= high)):
            bounds = f"{'over' if above else 'from'} {low:g} {'and under' if below else 'up to' if above else 'to'} {high:g}"
            raise argparse.ArgumentTypeError(f"{text!r} is not a number {bounds}")
        return value

    return number


def _day(text: str) -> date:
    """An argparse type: a day (YYYY-MM-DD) of the years queue_log's times are read in."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    if not DAYS[0] <= day <= DAYS[1]:
        raise argparse.ArgumentTypeError(f"{text} is not a day from {DAYS[0]} to {DAYS[1]}")
    return day


def _why(exc: OSError) -> str:
    """Why a file or folder could not be written, in words one acts on ("File exists" says nothing of a file in the way)."""
    return "a file is in the way" if isinstance(exc, FileExistsError | NotADirectoryError) else exc.strerror or str(exc)


def _when(text: str | None) -> float | None:
    """--from/--to: an ISO date or date-time (UTC unless it says otherwise)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"not a date or date-time: {text!r} (use e.g. 2026-11-22 or 2026-11-22T08:00)") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _report_options(args: argparse.Namespace) -> Options:
    start, end = _when(args.date_from), _when(args.date_to)
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"--from {args.date_from} is not before --to {args.date_to}: the report would be empty")
    return Options(
        sl_seconds=args.sl_seconds,
        short_abandon_seconds=args.short_abandon_seconds,
        interval_seconds=INTERVALS[args.interval],
        wrapup_seconds=args.wrapup_seconds,
        start=start,
        end=end,
    )


def _report_errors(path: Path, errors: list[LineError]) -> None:
    for error in errors[:20]:
        print(f"callcenter: {path}: {error}", file=sys.stderr)
    if len(errors) > 20:
        print(f"callcenter: {path}: {len(errors) - 20} more bad lines", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    """Waiting time, handle time, abandonment and service level per queue, agent and interval; calls outside the queues.
    Exit 1 when lines of the files could not be read (the report is still written, without them)."""
    options = _report_options(args)
    engine = ReportEngine()
    errors: dict[Path, list[LineError]] = {}
    if args.queue_log or args.cdr:
        if args.queue_log:
            must_exist(args.queue_log)
            engine.load_queue_log(args.queue_log)
            errors[args.queue_log] = engine.errors
        if args.cdr:
            must_exist(args.cdr)
            errors[args.cdr] = []
            if not args.queue_log:
                engine.load_stream([])
            ivr_rows = record_rows(cdr_calls(read_cdr(args.cdr, errors[args.cdr]), engine.callids()), options.start, options.end)
        else:
            ivr_rows = []
    else:
        store = configured_store(args)
        engine.load_stream(stored_stream(store, options.start, options.end))
        ivr_rows = stored_ivr_rows(store, options.start, options.end)
    result = engine.report(options)
    result["ivr"] = ivr_section(ivr_rows)
    text = RENDERERS[args.format](result)
    for path, found in errors.items():
        _report_errors(path, found)
    if options.wrapup_seconds and engine.acw_measured:
        print("callcenter: --wrapup-seconds not used: these calls' after-call work is measured (see docs/metrics.md)", file=sys.stderr)
    if args.output:
        try:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--output {args.output}: cannot write the report: {_why(exc)}") from exc
    else:
        sys.stdout.write(text)
    return 1 if any(errors.values()) else 0  # the report is out, but it left lines out: say so to a script


def cmd_import(args: argparse.Namespace) -> int:
    """Import an Asterisk queue_log and/or CDR CSV into the database (importing twice adds nothing); every good line is
    kept, and exit 1 says some were not."""
    if not args.queue_log and not args.cdr:
        raise ConfigError("import: give --queue-log FILE and/or --cdr FILE")
    store = configured_store(args)
    skipped = 0
    if args.queue_log:
        must_exist(args.queue_log)
        builder = VisitBuilder()
        calls, changes = save_stream(store, read_visits(read_lines(args.queue_log), builder))
        print(f"{args.queue_log}: {calls} new calls, {changes} new agent state changes, {len(builder.errors)} bad lines skipped")
        _report_errors(args.queue_log, builder.errors)
        skipped += len(builder.errors)
    if args.cdr:
        must_exist(args.cdr)
        errors: list[LineError] = []
        calls = store.save(list(cdr_calls(read_cdr(args.cdr, errors), queue_callids(store))), source="cdr")
        print(f"{args.cdr}: {calls} new calls outside the queues, {len(errors)} bad rows skipped")
        _report_errors(args.cdr, errors)
        skipped += len(errors)
    return 1 if skipped else 0


def cmd_report_jobs(args: argparse.Namespace) -> int:
    """Write interval and daily reports (CSV and HTML) into the reports folder as they end; or one day with --day."""
    settings = config.load(args.config)
    store = open_store(settings.database.url)
    folder = args.folder or Path(settings.paths.reports)
    try:
        tz = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"--tz: unknown time zone {args.tz!r}") from exc
    options = _report_options(args)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = report_jobs.daily(store, folder, args.day, options, tz) if args.day else []
    except OSError as exc:
        raise InputError(f"{folder}: cannot write the reports there: {_why(exc)}") from exc
    if args.day:
        for path in written:
            print(path)
        return 0
    print(f"Writing {args.interval} and daily reports into {folder} ({tz.key}); Ctrl-C to stop", flush=True)
    run_interruptible(report_jobs.schedule(store, folder, options, tz, asyncio.Event()))
    return 0


def cmd_staffing(args: argparse.Namespace) -> int:
    """Agents needed for a service-level target (Erlang C), for given traffic or as a forecast from a past day."""
    if args.forecast_day:
        return _forecast(args)
    if args.calls_per_hour is None or args.aht_seconds is None:
        raise ConfigError("staffing: give --calls-per-hour and --aht-seconds, or --forecast-day DATE")
    try:
        result = agents_needed(args.calls_per_hour, args.aht_seconds, args.target_sl, args.answer_within)
    except ValueError as exc:
        raise ConfigError(f"staffing: {exc}") from exc
    data = result.to_json()
    if args.format == "json":
        print(json.dumps(data))
    else:
        print(
            f"{data['agents']} agents: {100 * data['service_level']:.1f}% answered within {args.answer_within:g} s, "
            f"ASA {data['asa_s']:g} s, occupancy {100 * data['occupancy']:.1f}%, "
            f"{100 * data['p_wait']:.1f}% of calls wait, {data['erlangs']:g} erlangs"
        )
    return 0


def _forecast(args: argparse.Namespace) -> int:
    """The forecast of every interval; exit 1, as `report`, when lines of the queue_log could not be read."""
    day = args.forecast_day
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    options = Options(interval_seconds=INTERVALS[args.interval], start=start, end=start + 86400)
    engine = ReportEngine()
    if args.queue_log:
        must_exist(args.queue_log)
        engine.load_queue_log(args.queue_log)
    else:
        engine.load_stream(stored_stream(configured_store(args), options.start, options.end))
    rows = forecast(engine.report(options), options.interval_seconds, args.target_sl, args.answer_within, args.queue)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        columns = ["offered", "calls_per_hour", "aht_s", "agents", "service_level", "asa_s", "occupancy"]
        if not rows:
            print(f"no queue calls on {day.isoformat()}: nothing to forecast from")
        for row in rows:
            print(f"{row['start'][:16].replace('T', ' ')}  {row['queue']:<12} " + "  ".join(f"{c} {row[c]}" for c in columns))
    if args.queue_log:
        _report_errors(args.queue_log, engine.errors)
    return 1 if engine.errors else 0


def _threshold_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sl-seconds", type=_number(0, HOUR), default=20.0, help="service-level threshold T")
    p.add_argument("--short-abandon-seconds", type=_number(0, HOUR), default=5.0)
    p.add_argument(
        "--wrapup-seconds",
        type=_number(0, HOUR),
        default=0.0,
        help="after-call work W added to each answered call's handle time, only when the data measures none (no "
        "after_call_work pause in queue_log, no wrap_up state stored by the engine: e.g. Asterisk's own wrapuptime); "
        "measured after-call work is used otherwise",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the command line."""
    p = sub.add_parser("report", help="queue, agent and interval figures from the database or a queue_log")
    p.add_argument("--queue-log", type=Path, help="read this Asterisk queue_log instead of the database")
    p.add_argument("--cdr", type=Path, help="and this CDR CSV (Master.csv) for the calls outside the queues")
    p.add_argument("--from", dest="date_from", help="first day or moment (UTC), e.g. 2026-11-22 or 2026-11-22T08:00")
    p.add_argument("--to", dest="date_to", help="end (exclusive)")
    p.add_argument("--interval", choices=sorted(INTERVALS), default="15m")
    _threshold_args(p)
    p.add_argument("--format", choices=sorted(RENDERERS), default="table")
    p.add_argument("--output", type=Path, help="write here instead of standard output")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("report-jobs", help="write interval and daily reports (CSV, HTML) into the reports folder")
    p.add_argument("--folder", type=Path, help="default: [paths] reports of the config")
    p.add_argument("--tz", default="UTC", help="time zone of the days, e.g. America/Sao_Paulo")
    p.add_argument("--day", type=_day, help="write this day's report (YYYY-MM-DD) and exit")
    p.add_argument("--interval", choices=sorted(INTERVALS), default="15m")
    _threshold_args(p)
    p.set_defaults(func=cmd_report_jobs, date_from=None, date_to=None)

    p = sub.add_parser("import", help="import an Asterisk queue_log and/or CDR CSV into the database")
    p.add_argument("--queue-log", type=Path)
    p.add_argument("--cdr", type=Path)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("staffing", help="agents needed for a service level (Erlang C)")
    p.add_argument("--calls-per-hour", type=_number(0, 100_000, above=True))
    p.add_argument("--aht-seconds", type=_number(0, 2 * HOUR, above=True))
    p.add_argument(
        "--target-sl",
        type=_number(0, 1, above=True, below=True),
        default=0.8,
        help="fraction of calls answered within --answer-within (0-1)",
    )
    p.add_argument("--answer-within", type=_number(0, HOUR), default=20.0)
    p.add_argument(
        "--forecast-day", type=_day, help="a past day (YYYY-MM-DD, UTC): staff each of its intervals for the same weekday next week"
    )
    p.add_argument("--queue-log", type=Path, help="with --forecast-day: read this queue_log instead of the database")
    p.add_argument("--queue", help="with --forecast-day: only this queue")
    p.add_argument("--interval", choices=sorted(INTERVALS), default="1h")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_staffing)
