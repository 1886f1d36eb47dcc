"""Commands on AMI traffic: replay and record traces, monitor a live AMI, serve traces, run the simulator and the demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TextIO

from callcenter.commands.common import TRACES_ENV, run_interruptible
from callcenter.demo import ROOT, Demo
from callcenter.monitor import Monitor
from ivr.flow import load_flow
from kernel import config
from kernel.db import open_store
from kernel.exceptions import ConfigError
from pbx.client import AMIClient, ClientOptions
from pbx.playback import PlaybackServer
from pbx.simulator.server import SimulatorServer
from pbx.simulator.server import build as simulator_build
from pbx.simulator.server import truth as simulator_truth
from pbx.simulator.traffic import TrafficModel
from pbx.trace import replay
from pbx.tracker import CallTracker, record_line


def cmd_replay(args: argparse.Namespace) -> int:
    """Print one JSON line per finished call of each trace."""
    for path in args.traces:
        for record in replay(path):
            print(record_line(record))
    return 0


async def _monitor(options: ClientOptions, monitor: Monitor, once: bool, record: TextIO | None) -> None:
    client = AMIClient(options, monitor.on_event, monitor.on_resync, record=record, on_session=monitor.on_session)
    try:
        await client.run(once=once)
    finally:
        await client.close()


def cmd_monitor(args: argparse.Namespace) -> int:
    """Watch a live Asterisk (or the simulator) and print calls as they happen."""
    settings = config.load(args.config, require=("ami",))
    store = None if args.no_store else open_store(settings.database.url)
    monitor = Monitor(CallTracker(), store, sys.stdout, as_json=args.json, queue_log=settings.ami.queue_log, cdr=settings.ami.cdr)
    record = open(args.record, "a", encoding="utf-8") if args.record else None
    try:
        run_interruptible(_monitor(ClientOptions.of(settings.ami), monitor, args.once, record))
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
        cdr=args.cdr,
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

    run_interruptible(run())
    _print_truth(server)
    return 0


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
    run_interruptible(demo.run(args.minutes))
    _print_truth(demo.server)
    print(f"{store.count()} calls stored in {settings.database.url}; reports in {settings.paths.reports}", flush=True)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the command line."""
    p = sub.add_parser("replay", help="print the finished calls of recorded AMI traces as JSON lines")
    p.add_argument("traces", nargs="+", type=Path)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("monitor", help="watch a live AMI and print calls as they happen")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.add_argument("--no-store", action="store_true", help="do not write finished calls to the database")
    p.add_argument("--once", action="store_true", help="exit if the first connection fails instead of retrying")
    p.add_argument("--record", type=Path, help="keep the AMI conversation as a trace (JSON lines) that `replay` reads")
    p.set_defaults(func=cmd_monitor)

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
            p.add_argument("--cdr", type=Path, help="append cdr_csv's rows (Master.csv, newcdrcolumns) to this file")
            p.add_argument("--dialplan", type=Path, help="run this extensions.conf instead of the simulator's own")
            p.add_argument("--entry", default="Local/s@ivr-main", help="where simulated callers are sent (a Local channel)")
        p.set_defaults(func=func)
