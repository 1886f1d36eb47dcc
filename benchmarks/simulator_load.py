"""How much traffic the simulator sustains on one core, at speed 1, with our AMI client consuming.

Simulator, AMI client and call tracker share one process and one event loop
(one core). For each arrival rate the day runs for `--seconds` of real time;
we record the peak of concurrent calls, new calls per second, AMI events per
second, and how far behind its clock the simulator fell (timer lateness) and
how late the client saw events (arrival minus the event's Timestamp).
Goal (issue 3): >= 300 concurrent calls and >= 30 new calls/s at speed 1
without falling behind (lateness under a second).

    python benchmarks/simulator_load.py [--rates 10,20,30,40] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pbx.client import AMIClient, ClientOptions  # noqa: E402
from pbx.simulator.server import build  # noqa: E402
from pbx.simulator.traffic import TrafficModel  # noqa: E402
from pbx.tracker import CallTracker, event_time  # noqa: E402


async def one_rate(rate_per_s: float, seconds: float, agents: int) -> dict[str, float]:
    model = TrafficModel(
        calls_per_minute=rate_per_s * 60,
        patience_mean_s=60,
        handle_mean_s=20,
        min_handle_s=5,
        answer_delay_s=(0.5, 1.5),
        think_s=(0.5, 1.5),
    )
    server = build("bench", "bench", agents=agents, model=model, seed=1, speed=1.0)
    port = await server.start(traffic=False)
    tracker = CallTracker()
    lags: list[float] = []
    events = 0

    def on_event(message, arrival):
        nonlocal events
        events += 1
        stamp = message.get("Timestamp")
        if stamp:
            lags.append(arrival - float(stamp))
        tracker.feed(message, event_time(message, arrival))

    client = AMIClient(ClientOptions("127.0.0.1", port, "bench", "bench"), on_event)
    task = asyncio.create_task(client.run())
    await client.connected.wait()
    server.traffic.start()
    began = time.monotonic()
    peak = 0
    while time.monotonic() - began < seconds:
        await asyncio.sleep(0.25)
        peak = max(peak, len({ch.linkedid for ch in server.sim.channels.values()}))
    elapsed = time.monotonic() - began
    generated = server.traffic.generated["calls"]
    server.traffic.stop()
    await client.close()
    await task
    await server.stop()
    lags.sort()
    return {
        "target_calls_per_s": rate_per_s,
        "new_calls_per_s": round(generated / elapsed, 1),
        "peak_concurrent_calls": peak,
        "ami_events_per_s": round(events / elapsed),
        "simulator_max_lateness_s": round(server.late_s, 3),
        "client_event_lag_p50_ms": round(1000 * statistics.median(lags), 1) if lags else None,
        "client_event_lag_p99_ms": round(1000 * lags[int(len(lags) * 0.99)], 1) if lags else None,
        "kept_up": server.late_s < 1.0 and (not lags or lags[int(len(lags) * 0.99)] < 1.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10,20,30,40", help="arrival rates to try, calls per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="real seconds per rate")
    parser.add_argument("--agents", type=int, default=1500)
    args = parser.parse_args()
    results = [asyncio.run(one_rate(float(r), args.seconds, args.agents)) for r in args.rates.split(",")]
    sustained = [r for r in results if r["kept_up"]]
    print(
        json.dumps(
            {
                "runs": results,
                "best_sustained": max(sustained, key=lambda r: r["new_calls_per_s"]) if sustained else None,
                "goal": {"peak_concurrent_calls": 300, "new_calls_per_s": 30},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
