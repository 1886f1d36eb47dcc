"""The `callcenter` command: the composition root that wires config, AMI, tracker and database."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Coroutine, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_socketio import SocketIO

from callcenter.demo import ROOT, Demo
from callcenter.engine import Engine, recordings_library
from callcenter.monitor import Monitor
from callcenter.wsgi import serve_panel, worker_app
from cti_panel.customers import import_csv
from cti_panel.notifier import Notifier
from cti_panel.server import PanelServer
from cti_panel.users import Users
from ivr.draw import to_dot, to_text
from ivr.flow import load_flow
from kernel import config
from kernel.db import CallStore, make_engine, migrate, open_store
from kernel.exceptions import AuthenticationError, CallCenterError, ConfigError, InputError, Refused
from kernel.who import LANGS, ROLES, Who
from pbx.client import AMIClient, ClientOptions
from pbx.playback import PlaybackServer
from pbx.simulator.server import SimulatorServer
from pbx.simulator.server import build as simulator_build
from pbx.simulator.server import truth as simulator_truth
from pbx.simulator.traffic import TrafficModel
from pbx.trace import replay
from pbx.tracker import CallTracker, record_line
from reports import jobs as report_jobs
from reports.cdr import cdr_calls, read_cdr
from reports.engine import ReportEngine
from reports.erlang import agents_needed
from reports.forecast import forecast
from reports.ivr import ivr_section, record_rows, stored_ivr_rows
from reports.metrics import Options
from reports.queue_log import LineError, VisitBuilder, read_lines, read_visits
from reports.render import RENDERERS
from reports.store import queue_callids, save_stream, stored_stream

EXIT_CONFIG = 2
EXIT_AUTH = 3
EXIT_ERROR = 1
TRACES_ENV = "CALLCENTER_TRACES"


def cmd_replay(args: argparse.Namespace) -> int:
    """Print one JSON line per finished call of each trace."""
    for path in args.traces:
        for record in replay(path):
            print(record_line(record))
    return 0


async def _monitor(options: ClientOptions, monitor: Monitor, once: bool, record: TextIO | None) -> None:
    client = AMIClient(options, monitor.on_event, monitor.on_resync, record=record)
    try:
        await client.run(once=once)
    finally:
        await client.close()


def cmd_monitor(args: argparse.Namespace) -> int:
    """Watch a live Asterisk (or the simulator) and print calls as they happen."""
    settings = config.load(args.config, require=("ami",))
    store = None if args.no_store else open_store(settings.database.url)
    monitor = Monitor(CallTracker(), store, sys.stdout, as_json=args.json)
    record = open(args.record, "a", encoding="utf-8") if args.record else None
    try:
        asyncio.run(_monitor(ClientOptions.of(settings.ami), monitor, args.once, record))
    except KeyboardInterrupt:
        pass
    finally:
        if record is not None:
            record.close()
    return 0


def default_traces() -> Path:
    """Where the recorded Asterisk traces are: $CALLCENTER_TRACES, else ../shared/ami-traces."""
    if TRACES_ENV in os.environ:
        return Path(os.environ[TRACES_ENV])
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = base.parent / "shared" / "ami-traces"
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no recorded traces found: set {TRACES_ENV} to a folder of *.jsonl traces")


def cmd_playback(args: argparse.Namespace) -> int:
    """Serve recorded traces on an AMI port for `monitor` or a real client."""
    secret = args.secret or os.environ.get("CALLCENTER_AMI_SECRET")
    if not secret:
        raise ConfigError("playback: --secret or CALLCENTER_AMI_SECRET is required")
    traces = args.traces or sorted(default_traces().glob("*.jsonl"))

    async def serve() -> None:
        server = PlaybackServer(args.username, secret, speed=args.speed)
        port = await server.start(args.host, args.port)
        print(f"playing {len(traces)} trace(s) on {args.host}:{port}; waiting for a client to log in", flush=True)
        while server.clients == 0:
            await asyncio.sleep(0.05)
        await server.play(traces)
        await asyncio.sleep(0.5)
        await server.stop()

    asyncio.run(serve())
    return 0


def _traffic(args: argparse.Namespace) -> TrafficModel:
    return TrafficModel(calls_per_minute=args.calls_per_minute, entry=getattr(args, "entry", "Local/s@ivr-main"))


async def _run_day(server: SimulatorServer, minutes: float | None) -> None:
    """Let the simulated day run (for `minutes` of sim time, or until cancelled), then let calls in progress finish."""
    if minutes is None:
        await asyncio.Event().wait()
    while server.sim.now < server.start_at + minutes * 60:
        await asyncio.sleep(0.05)
    if server.traffic is not None:
        server.traffic.stop()
    while server.sim.channels:
        await asyncio.sleep(0.05)
    await server.drain()


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the PBX simulator standalone: an Asterisk-like AMI with seeded traffic."""
    settings = config.load(args.config, require=("ami",))
    assert settings.ami.secret is not None
    server = simulator_build(
        settings.ami.username,
        settings.ami.secret.get_secret_value(),
        agents=args.agents,
        model=_traffic(args),
        seed=args.seed,
        speed=args.speed,
        queue_log=args.queue_log,
        dialplan=args.dialplan,
    )
    print(
        f"Simulator on {args.host}:{args.port or settings.ami.port}: {args.agents} agents, {args.calls_per_minute} calls/min, "
        f"seed {args.seed}, {args.speed}x",
        flush=True,
    )

    async def run() -> None:
        await server.start(args.host, args.port or settings.ami.port)
        try:
            await _run_day(server, args.minutes)
        finally:
            await server.stop()

    _run_interruptible(run())
    _print_truth(server)
    return 0


def _run_interruptible(main: Coroutine[Any, Any, None]) -> None:
    """Run until done or Ctrl-C; either way the coroutine's cleanup has run."""
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass


def _print_truth(server: SimulatorServer) -> None:
    print(simulator_truth(server), flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole call center on one machine: simulator with a day of traffic, engine, panel, report jobs (until Ctrl-C or --minutes)."""
    settings = config.load(args.config)
    store = open_store(settings.database.url)
    flows = [load_flow(path) for path in sorted((ROOT / "contrib" / "ivr").glob("*.yaml"))]
    demo = Demo(
        settings,
        store,
        flows,
        agents=args.agents,
        calls_per_minute=args.calls_per_minute,
        seed=args.seed,
        speed=args.speed,
        out=sys.stdout if args.verbose_calls else None,
    )
    _run_interruptible(demo.run(args.minutes))
    _print_truth(demo.server)
    print(f"{store.count()} calls stored in {settings.database.url}; reports in {settings.paths.reports}", flush=True)
    return 0


INTERVALS = {"15m": 900, "30m": 1800, "1h": 3600, "1d": 86400}


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
    return Options(
        sl_seconds=args.sl_seconds,
        short_abandon_seconds=args.short_abandon_seconds,
        interval_seconds=INTERVALS[args.interval],
        wrapup_seconds=args.wrapup_seconds,
        start=_when(args.date_from),
        end=_when(args.date_to),
    )


def _report_errors(path: Path, errors: list[LineError]) -> None:
    for error in errors[:20]:
        print(f"callcenter: {path}: {error}", file=sys.stderr)
    if len(errors) > 20:
        print(f"callcenter: {path}: {len(errors) - 20} more bad lines", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    """Waiting time, handle time, abandonment and service level per queue, agent and interval; calls outside the queues."""
    options = _report_options(args)
    engine = ReportEngine()
    errors: dict[Path, list[LineError]] = {}
    if args.queue_log or args.cdr:
        if args.queue_log:
            _must_exist(args.queue_log)
            engine.load_queue_log(args.queue_log)
            errors[args.queue_log] = engine.errors
        if args.cdr:
            _must_exist(args.cdr)
            errors[args.cdr] = []
            if not args.queue_log:
                engine.load_stream([])
            ivr_rows = record_rows(cdr_calls(read_cdr(args.cdr, errors[args.cdr]), engine.callids()), options.start, options.end)
        else:
            ivr_rows = []
    else:
        store = _configured_store(args)
        engine.load_stream(stored_stream(store, options.start, options.end))
        ivr_rows = stored_ivr_rows(store, options.start, options.end)
    result = engine.report(options)
    result["ivr"] = ivr_section(ivr_rows)
    text = RENDERERS[args.format](result)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    for path, found in errors.items():
        _report_errors(path, found)
    return 0


def _must_exist(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")


def cmd_import(args: argparse.Namespace) -> int:
    """Import an Asterisk queue_log and/or CDR CSV into the database (importing twice adds nothing)."""
    if not args.queue_log and not args.cdr:
        raise ConfigError("import: give --queue-log FILE and/or --cdr FILE")
    store = _configured_store(args)
    if args.queue_log:
        _must_exist(args.queue_log)
        builder = VisitBuilder()
        calls, changes = save_stream(store, read_visits(read_lines(args.queue_log), builder))
        print(f"{args.queue_log}: {calls} new calls, {changes} new agent state changes, {len(builder.errors)} bad lines skipped")
        _report_errors(args.queue_log, builder.errors)
    if args.cdr:
        _must_exist(args.cdr)
        errors: list[LineError] = []
        calls = store.save(list(cdr_calls(read_cdr(args.cdr, errors), queue_callids(store))), source="cdr")
        print(f"{args.cdr}: {calls} new calls outside the queues, {len(errors)} bad rows skipped")
        _report_errors(args.cdr, errors)
    return 0


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
    if args.day:
        try:
            day = date.fromisoformat(args.day)
        except ValueError as exc:
            raise ConfigError(f"--day: not a date: {args.day!r} (use YYYY-MM-DD)") from exc
        for path in report_jobs.daily(store, folder, day, options, tz):
            print(path)
        return 0
    print(f"Writing {args.interval} and daily reports into {folder} ({tz.key}); Ctrl-C to stop", flush=True)
    _run_interruptible(report_jobs.schedule(store, folder, options, tz, asyncio.Event()))
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
    try:
        day = date.fromisoformat(args.forecast_day)
    except ValueError as exc:
        raise ConfigError(f"--forecast-day: not a date: {args.forecast_day!r} (use YYYY-MM-DD)") from exc
    start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    options = Options(interval_seconds=INTERVALS[args.interval], start=start, end=start + 86400)
    engine = ReportEngine()
    if args.queue_log:
        _must_exist(args.queue_log)
        engine.load_queue_log(args.queue_log)
    else:
        engine.load_stream(stored_stream(_configured_store(args), options.start, options.end))
    rows = forecast(engine.report(options), options.interval_seconds, args.target_sl, args.answer_within, args.queue)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    columns = ["offered", "calls_per_hour", "aht_s", "agents", "service_level", "asa_s", "occupancy"]
    if not rows:
        print(f"no queue calls on {day.isoformat()}: nothing to forecast from")
    for row in rows:
        print(f"{row['start'][:16].replace('T', ' ')}  {row['queue']:<12} " + "  ".join(f"{c} {row[c]}" for c in columns))
    return 0


def cmd_engine(args: argparse.Namespace) -> int:
    """The call-center engine on a live AMI: calls tracked and stored, IVR flows served, the ACD run, the panel served."""
    settings = config.load(args.config, require=("ami",))
    flows = [load_flow(path) for path in args.flows]
    store = open_store(settings.database.url)
    notifier = Notifier()
    engine = Engine(settings, store, flows, notifier, as_json=args.json)
    panel = None
    if settings.panel.enabled and not args.no_panel:
        panel = serve_panel(engine)
        print(f"Panel: {panel.url}", flush=True)
    elif settings.panel.message_queue:
        notifier.init_app(SocketIO(message_queue=settings.panel.message_queue))
    print(
        f"Engine: {len(flows)} IVR flow(s) ({', '.join(f.name for f in flows)}); AMI at {settings.ami.host}:{settings.ami.port}", flush=True
    )
    try:
        _run_interruptible(engine.run(args.heartbeat_every))
    finally:
        if panel is not None:
            panel.stop()
    return 0


def cmd_check_pbx(args: argparse.Namespace) -> int:
    """Log in as the configured AMI user and report what the engine needs and the PBX lacks (1 when something is missing)."""
    from callcenter.checkpbx import check_pbx

    settings = config.load(args.config, require=("ami",))
    flows = [load_flow(path) for path in args.flows]
    return check_pbx(settings, flows, sys.stdout)


def cmd_panel(args: argparse.Namespace) -> int:
    """One panel worker of several, on Werkzeug: sockets and requests go through Redis to the engine."""
    settings = config.load(args.config, require=("panel",))
    panel = PanelServer(worker_app(settings), settings.panel.host, args.port or settings.panel.port).start()
    print(f"Panel worker: {panel.url} (requests via {(settings.panel.message_queue or '').split('@')[-1]})", flush=True)
    try:
        panel.thread.join()
    except KeyboardInterrupt:
        panel.stop()
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """Add, list, disable users or set a password (asked for twice, never on the command line)."""
    users = Users(_configured_store(args).sessions)
    if args.users_command == "list":
        for u in users.list():
            print(
                f"{u.login:<16} {u.role:<10} {u.lang:<6} {u.agent or '-':<12} {u.interface or '-':<20} {'disabled' if u.disabled else ''}"
            )
        return 0
    if args.users_command in ("disable", "enable"):
        users.set_disabled(args.login, args.users_command == "disable")
        print(f"{args.login}: {args.users_command}d")
        return 0
    password = _ask_password(args.password_stdin)
    if args.users_command == "add":
        users.add(
            args.login,
            password,
            args.role,
            lang=args.lang,
            display_name=args.name or "",
            agent=args.agent,
            interface=args.interface,
            extension=args.extension,
            queues=args.queues,
        )
        print(f"{args.login}: added as {args.role}")
    else:
        users.passwd(args.login, password)
        print(f"{args.login}: password changed")
    return 0


def _configured_store(args: argparse.Namespace) -> CallStore:
    """The database of the configuration the command was given."""
    return open_store(config.load(args.config).database.url)


def _ask_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
    if first != second:
        raise Refused("the two passwords differ")
    return first


def cmd_recordings(args: argparse.Namespace) -> int:
    """Retention and legal holds: purge (scheduled in the engine too), hold, list."""
    settings = config.load(args.config)
    library = recordings_library(settings, open_store(settings.database.url))
    if library is None:
        raise ConfigError(f"{settings.source}: recordings.enabled is false")
    if args.recordings_command == "hold":
        library.hold(args.id, not args.off)
        print(f"recording {args.id}: legal hold {'off' if args.off else 'on'}")
        return 0
    if args.recordings_command == "list":
        admin = Who(0, "cli", "admin", "en", None, None, None, ())
        for row in library.visible(admin, limit=args.limit):
            print(
                f"{row.id:>6} {row.started_at:%Y-%m-%d %H:%M} {row.queue or '-':<10} {row.agent or '-':<12} {row.caller_number or '-':<15} "
                f"{row.status:<9} {row.duration_s or 0:>6.0f} s {'HOLD' if row.legal_hold else ''}"
            )
        return 0
    deleted, kept = library.purge(datetime.now(UTC), dry_run=args.dry_run, customer=args.customer)
    verb = "would delete" if args.dry_run else "deleted"
    for item in deleted:
        print(f"{verb} recording {item['id']} ({item['queue']}, {item['started_at']}, call {item['linkedid']})")
    for item in kept:
        print(f"kept recording {item['id']}: {item['why']}")
    print(f"{len(deleted)} recording(s) {verb}, {len(kept)} kept")
    return 0


def cmd_customers(args: argparse.Namespace) -> int:
    """Import customers for the screen pop from a CSV file."""
    _must_exist(args.csv)
    added, updated = import_csv(_configured_store(args).sessions, args.csv)
    print(f"{args.csv}: {added} customers added, {updated} updated")
    return 0


def cmd_ivr_check(args: argparse.Namespace) -> int:
    """Check an IVR flow file; every problem is printed with its line."""
    flow = load_flow(args.flow)
    kinds = sorted({n.kind for n in flow.nodes.values()})
    print(f"{args.flow}: flow '{flow.name}' is valid: {len(flow.nodes)} nodes ({', '.join(kinds)}), start '{flow.start}'")
    return 0


def cmd_ivr_draw(args: argparse.Namespace) -> int:
    """Print a flow's menu tree as text, or as Graphviz DOT with --dot."""
    flow = load_flow(args.flow)
    sys.stdout.write(to_dot(flow) if args.dot else to_text(flow))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Create or update the database schema."""
    settings = config.load(args.config)
    migrate(make_engine(settings.database.url))
    print(f"database at {settings.database.url} is up to date")
    return 0


def _threshold_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sl-seconds", type=float, default=20.0, help="service-level threshold T")
    p.add_argument("--short-abandon-seconds", type=float, default=5.0)
    p.add_argument("--wrapup-seconds", type=float, default=0.0, help="wrap-up added to each answered call's handle time")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="callcenter", description="Contact center for Asterisk.")
    top.add_argument("--config", help=f"TOML config file (default: ${config.CONFIG_ENV} or ./{config.DEFAULT_FILE})")
    top.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="print the finished calls of recorded AMI traces as JSON lines")
    p.add_argument("traces", nargs="+", type=Path)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("monitor", help="watch a live AMI and print calls as they happen")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--no-store", action="store_true", help="do not write finished calls to the database")
    p.add_argument("--once", action="store_true", help="exit if the first connection fails instead of retrying")
    p.add_argument("--record", type=Path, help="keep the AMI conversation as a trace (JSON lines) that `replay` reads")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("engine", help="run the engine on a live AMI: calls tracked and stored, IVR flows served")
    p.add_argument(
        "--flows",
        nargs="+",
        type=Path,
        default=sorted(Path("contrib/ivr").glob("*.yaml")),
        help="IVR flow files (default: contrib/ivr/*.yaml)",
    )
    p.add_argument("--json", action="store_true", help="print call events as JSON lines")
    p.add_argument(
        "--heartbeat-every",
        type=float,
        default=10.0,
        help="seconds between IVR heartbeats (the dialplan falls back after 30 s of PBX time)",
    )
    p.add_argument("--no-panel", action="store_true", help="do not serve the CTI panel from this process")
    p.set_defaults(func=cmd_engine)

    p = sub.add_parser("check-pbx", help="log in to the AMI and list what the engine needs and the PBX lacks (exit 1 if anything)")
    p.add_argument(
        "--flows",
        nargs="*",
        type=Path,
        default=sorted(Path("contrib/ivr").glob("*.yaml")),
        help="IVR flow files whose prompts must exist (default: contrib/ivr/*.yaml, as the engine)",
    )
    p.set_defaults(func=cmd_check_pbx)

    p = sub.add_parser("panel", help="run one CTI panel worker that reaches the engine through Redis ([panel] message_queue)")
    p.add_argument("--port", type=int, help="port (default: [panel] port)")
    p.set_defaults(func=cmd_panel)

    p = sub.add_parser("users", help="panel users: add, list, passwd, disable, enable")
    usersub = p.add_subparsers(dest="users_command", required=True)
    q = usersub.add_parser("add", help="add a user (password asked twice, or read from stdin with --password-stdin)")
    q.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    q.add_argument("login")
    q.add_argument("--role", choices=ROLES, required=True)
    q.add_argument("--name", help="name shown in the panel")
    q.add_argument("--lang", choices=LANGS, default="en")
    q.add_argument("--agent", help="the ACD agent (queue member name) an agent user is")
    q.add_argument("--interface", help="the user's phone, e.g. PJSIP/1001")
    q.add_argument("--extension", help="digits others transfer to")
    q.add_argument("--queues", nargs="*", default=[], help="queues the user works in or supervises (default: all)")
    usersub.add_parser("list", help="list users")
    for name in ("passwd", "disable", "enable"):
        q = usersub.add_parser(name, help=f"{name} a user")
        q.add_argument("login")
        q.add_argument(
            "--password-stdin", action="store_true", help=argparse.SUPPRESS if name != "passwd" else "read the new password from stdin"
        )
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("recordings", help="recordings: purge by retention or a customer's request, legal holds, list")
    recsub = p.add_subparsers(dest="recordings_command", required=True)
    q = recsub.add_parser("purge", help="delete recordings past retention (never on hold, never under the legal minimum)")
    q.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    q.add_argument("--customer", help="erase this caller number's recordings (on request), holds and the legal minimum still apply")
    q = recsub.add_parser("hold", help="put a recording on legal hold (or --off)")
    q.add_argument("id", type=int)
    q.add_argument("--off", action="store_true")
    q = recsub.add_parser("list", help="the newest recordings")
    q.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_recordings)

    p = sub.add_parser("customers", help="import customers for the screen pop from CSV (number,name,company,email,notes)")
    p.add_argument("csv", type=Path)
    p.set_defaults(func=cmd_customers)

    p = sub.add_parser("playback", help="serve recorded AMI traces on a local port")
    p.add_argument("traces", nargs="*", type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5038)
    p.add_argument("--username", default="callcenter")
    p.add_argument("--secret")
    p.add_argument("--speed", type=float, default=1.0)
    p.set_defaults(func=cmd_playback)

    for name, func, helptext, speed in (
        ("simulate", cmd_simulate, "run the PBX simulator (an Asterisk-like AMI with traffic)", 1.0),
        ("demo", cmd_demo, "run the demo: a whole call center on this machine (simulator, IVR, ACD, panel, reports)", 10.0),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--calls-per-minute", type=float, default=6.0 if name == "demo" else 12.0)
        p.add_argument("--agents", type=int, default=20 if name == "demo" else 10, help="simulated agents")
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--speed", type=float, default=speed, help="how much faster than real time the day runs")
        p.add_argument("--minutes", type=float, help="stop after this many simulated minutes (calls in progress finish)")
        if name == "demo":
            p.add_argument("--verbose-calls", action="store_true", help="print every call event as it happens")
        if name == "simulate":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, help="AMI port (default: [ami] port of the config)")
            p.add_argument("--queue-log", type=Path, help="append app_queue's queue_log lines to this file")
            p.add_argument("--dialplan", type=Path, help="run this extensions.conf instead of the simulator's own")
            p.add_argument("--entry", default="Local/s@ivr-main", help="where simulated callers are sent (a Local channel)")
        p.set_defaults(func=func)

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
    p.add_argument("--day", help="write this day's report (YYYY-MM-DD) and exit")
    p.add_argument("--interval", choices=sorted(INTERVALS), default="15m")
    _threshold_args(p)
    p.set_defaults(func=cmd_report_jobs, date_from=None, date_to=None)

    p = sub.add_parser("import", help="import an Asterisk queue_log and/or CDR CSV into the database")
    p.add_argument("--queue-log", type=Path)
    p.add_argument("--cdr", type=Path)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("staffing", help="agents needed for a service level (Erlang C)")
    p.add_argument("--calls-per-hour", type=float)
    p.add_argument("--aht-seconds", type=float)
    p.add_argument("--target-sl", type=float, default=0.8, help="fraction of calls answered within --answer-within (0-1)")
    p.add_argument("--answer-within", type=float, default=20.0)
    p.add_argument("--forecast-day", help="a past day (YYYY-MM-DD, UTC): staff each of its intervals for the same weekday next week")
    p.add_argument("--queue-log", type=Path, help="with --forecast-day: read this queue_log instead of the database")
    p.add_argument("--queue", help="with --forecast-day: only this queue")
    p.add_argument("--interval", choices=sorted(INTERVALS), default="1h")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_staffing)

    p = sub.add_parser("ivr", help="IVR flows")
    ivrsub = p.add_subparsers(dest="ivr_command", required=True)
    q = ivrsub.add_parser("check", help="validate a flow file")
    q.add_argument("flow", type=Path)
    q.set_defaults(func=cmd_ivr_check)
    q = ivrsub.add_parser("draw", help="print a flow's menu tree")
    q.add_argument("flow", type=Path)
    q.add_argument("--dot", action="store_true", help="Graphviz DOT instead of text")
    q.set_defaults(func=cmd_ivr_draw)

    p = sub.add_parser("db", help="database maintenance")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    q = dbsub.add_parser("upgrade", help="create or migrate the schema")
    q.set_defaults(func=cmd_db_upgrade)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a subcommand and turn our errors into a message and an exit code."""
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AuthenticationError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return EXIT_AUTH
    except CallCenterError as exc:
        print(f"callcenter: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
