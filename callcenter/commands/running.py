"""Commands that run the call center against a PBX: the engine, the PBX check, a panel worker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flask_socketio import SocketIO

from callcenter.commands.common import run_interruptible
from callcenter.engine import Engine
from callcenter.wsgi import serve_panel, worker_app
from cti_panel.notifier import Notifier
from cti_panel.server import PanelServer
from ivr.flow import load_flow
from kernel import config
from kernel.db import open_store


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
        run_interruptible(engine.run(args.heartbeat_every))
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


def _flows_argument(p: argparse.ArgumentParser, nargs: str, helptext: str) -> None:
    """--flows, the shipped flows by default: the engine serves them and check-pbx checks the same ones."""
    p.add_argument("--flows", nargs=nargs, type=Path, default=sorted(Path("contrib/ivr").glob("*.yaml")), help=helptext)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the command line."""
    p = sub.add_parser("engine", help="run the engine on a live AMI: calls tracked and stored, IVR flows served")
    _flows_argument(p, "+", "IVR flow files (default: contrib/ivr/*.yaml)")
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
    _flows_argument(p, "*", "IVR flow files whose prompts must exist (default: contrib/ivr/*.yaml, as the engine)")
    p.set_defaults(func=cmd_check_pbx)

    p = sub.add_parser("panel", help="run one CTI panel worker that reaches the engine through Redis ([panel] message_queue)")
    p.add_argument("--port", type=int, help="port (default: [panel] port)")
    p.set_defaults(func=cmd_panel)
