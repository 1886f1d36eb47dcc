"""Concurrent callers in the IVR on the simulator, at speed 1: the engine's per-command turnaround.

Callers arrive at `--rate` per second for `--seconds`, into the documented flow
(contrib/ivr/main.yaml) through contrib/asterisk/extensions.conf, and never
press a key, so each one walks every prompt, timeout and retry of the menus
(the busiest path for the engine). Turnaround is the time from Asterisk's
answer to one AGI command (the AsyncAGIExec frame read off the socket) to the
engine's next command written. Simulator, AMI client and engine share one
process and one core. Goal (issue 4): >= 500 concurrent sessions, p99 < 10 ms.

    python benchmarks/ivr_concurrency.py [--rate 25] [--seconds 24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ivr.engine import IVREngine  # noqa: E402
from ivr.flow import load_flow  # noqa: E402
from pbx.client import AMIClient, ClientOptions  # noqa: E402
from pbx.codec import Message  # noqa: E402
from pbx.simulator.dialplan import QueueConf  # noqa: E402
from pbx.simulator.server import SimulatorServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CALLERS = "\n[callers]\nexten => silent,1,Wait(90)\n same => n,Hangup()\n"
OPEN = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo")).timestamp()


async def run(rate: float, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        conf = Path(folder) / "extensions.conf"
        conf.write_text((ROOT / "contrib" / "asterisk" / "extensions.conf").read_text() + CALLERS)
        server = SimulatorServer("bench", "bench", speed=1.0, dialplan=conf, recordings=Path(folder))
        server.configure({q: QueueConf(q, members=[]) for q in ("support", "sales", "billing")}, None)
        port = await server.start()
        client = AMIClient(ClientOptions("127.0.0.1", port, "bench", "bench", action_timeout=120), lambda m, t: engine.on_event(m, t))
        engine = IVREngine(client, [load_flow(ROOT / "contrib" / "ivr" / "main.yaml")], clock=lambda: OPEN)
        task = asyncio.create_task(client.run())
        await client.connected.wait()
        await engine.beat()
        began = time.monotonic()
        placed = peak = 0
        while time.monotonic() - began < seconds:
            due = int((time.monotonic() - began) * rate)
            while placed < due:
                server.handle(
                    Message(
                        [
                            ("Action", "Originate"),
                            ("Channel", "Local/s@callcenter-ivr"),
                            ("Context", "callers"),
                            ("Exten", "silent"),
                            ("CallerID", f"<55119{placed:08d}>"),
                        ]
                    )
                )
                placed += 1
            peak = max(peak, len(engine.sessions))
            await asyncio.sleep(0.02)
        samples = sorted(engine.turnaround)
        await engine.stop()
        await client.close()
        task.cancel()
        await server.stop()
    pick = lambda q: round(1000 * samples[min(len(samples) - 1, int(q * len(samples)))], 2) if samples else None  # noqa: E731
    return {
        "calls_placed": placed,
        "peak_concurrent_sessions": peak,
        "commands": len(samples),
        "turnaround_ms": {"p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)},
        "goal": {"concurrent_sessions": 500, "p99_ms": 10},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=25.0, help="new callers per second")
    parser.add_argument("--seconds", type=float, default=24.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.rate, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
