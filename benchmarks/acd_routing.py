"""Routing decision time under skills-based routing, with thousands of agents and callers waiting.

Agents (random skills 1-10 in three skills, one to three of five queues) are
all busy and callers (half needing a skill at some level) wait. Then, over and
over, an agent finishes a call and the ACD picks the caller it takes next
(priority, then waiting time, among those it qualifies for); a new caller
arrives so the queue stays as long. One decision = one CallEnded step that
ends in a Ring. Printed for the issue's size (2,000 agents, 10,000 callers),
ten times fewer and ten times more. Goal (issue 5): p99 < 1 ms on one core.

    python benchmarks/acd_routing.py [--decisions 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acd.machine import ACD, AgentLogin, Answered, CallEnded, CallerArrived, Ring  # noqa: E402
from acd.model import QueueSettings  # noqa: E402
from kernel.values import AgentState  # noqa: E402

QUEUES = ["support", "sales", "billing", "retention", "tech"]
SKILLS = ["es", "en", "billing"]


def run(agents: int, callers: int, decisions: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    acd = ACD({q: QueueSettings(q, strategy="skills", widen_after_s=120) for q in QUEUES}, seed=seed)
    now = 0.0

    def caller_event(i: int) -> CallerArrived:
        need = () if rng.random() < 0.5 else ((rng.choice(SKILLS), rng.randint(1, 5)),)
        return CallerArrived(f"c{i}", rng.choice(QUEUES), now, rng.choice([0, 0, 0, 1, 5]), need)

    for i in range(agents):
        skills = tuple((s, rng.randint(1, 10)) for s in SKILLS if rng.random() < 0.7)
        queues = frozenset(rng.sample(QUEUES, rng.randint(1, 3)))
        acd.step(AgentLogin(f"a{i}", f"PJSIP/a{i}", queues, now, skills))
    next_caller = 0
    while any(a.state is AgentState.AVAILABLE for a in acd.agents.values()) or next_caller < agents * 2:
        now += 0.001
        for command in acd.step(caller_event(next_caller)):
            if isinstance(command, Ring):
                acd.step(Answered(command.agent, command.caller, now))
        next_caller += 1
        if next_caller > agents * 3:
            break
    for _ in range(callers):
        now += 0.001
        acd.step(caller_event(next_caller))
        next_caller += 1
    busy = [a.id for a in acd.agents.values() if a.state is AgentState.ON_CALL]
    times: list[float] = []
    for _ in range(decisions):
        now += 0.01
        agent = rng.choice(busy)
        started = time.perf_counter()
        out = acd.step(CallEnded(agent, now))
        elapsed = time.perf_counter() - started
        ring = next((c for c in out if isinstance(c, Ring)), None)
        if ring is not None:
            times.append(elapsed)
            acd.step(Answered(ring.agent, ring.caller, now))
        acd.step(caller_event(next_caller))
        next_caller += 1
    times.sort()
    waiting = sum(1 for c in acd.callers.values() if c.id not in acd.connected)
    return {
        "agents": agents,
        "callers_waiting": waiting,
        "decisions": len(times),
        "p50_ms": round(1000 * times[len(times) // 2], 4),
        "p99_ms": round(1000 * times[int(len(times) * 0.99)], 4),
        "max_ms": round(1000 * times[-1], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20000)
    args = parser.parse_args()
    sizes = [(200, 1000), (2000, 10000), (20000, 100000)]
    results = [run(a, c, args.decisions) for a, c in sizes]
    print(json.dumps({"runs": results, "goal": {"agents": 2000, "callers": 10000, "p99_ms": 1.0}}, indent=2))


if __name__ == "__main__":
    main()
