"""Routing policies: pure functions that order the agents who could take a caller, best first.

A policy gets the available agents already qualified for the caller (in the
queue, with the skills it needs) and returns them in the order to try; the
ACD rings the first, or all of them for ring-all. New policies plug in with
`@policy("name")` without touching the engine.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from acd.model import Agent, Caller

Policy = Callable[[list[Agent], Caller, "RoutingContext"], list[Agent]]
POLICIES: dict[str, Policy] = {}
RING_ALL = {"ring_all"}


class RoutingContext:
    """What policies may remember between decisions (round-robin position, a seeded random generator)."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.last: dict[str, str] = {}


def policy(name: str) -> Callable[[Policy], Policy]:
    """Register a routing policy under a name queues can use."""

    def register(fn: Policy) -> Policy:
        POLICIES[name] = fn
        return fn

    return register


def skill_score(agent: Agent, caller: Caller) -> int:
    """How well an agent's skill levels (1-10) cover what the caller needs."""
    return sum(agent.skills.get(skill, 0) for skill in caller.skills)


def qualified(agent: Agent, caller: Caller, widened: bool) -> bool:
    """Whether an agent has every skill at the level the caller needs (any agent of the queue once widened)."""
    return widened or all(agent.skills.get(skill, 0) >= level for skill, level in caller.skills.items())


@policy("longest_idle")
def longest_idle(agents: list[Agent], caller: Caller, ctx: RoutingContext) -> list[Agent]:
    """The agent idle longest first: fair load."""
    return sorted(agents, key=lambda a: (a.idle_since, a.id))


@policy("fewest_calls")
def fewest_calls(agents: list[Agent], caller: Caller, ctx: RoutingContext) -> list[Agent]:
    """The agent who took fewest calls first (then the longest idle)."""
    return sorted(agents, key=lambda a: (a.calls_taken, a.idle_since, a.id))


@policy("round_robin")
def round_robin(agents: list[Agent], caller: Caller, ctx: RoutingContext) -> list[Agent]:
    """Agents in turn, after the one who got the last call of this queue."""
    ordered = sorted(agents, key=lambda a: a.id)
    last = ctx.last.get(caller.queue)
    after = [a for a in ordered if last is not None and a.id > last]
    return after + [a for a in ordered if a not in after]


@policy("random")
def random_agent(agents: list[Agent], caller: Caller, ctx: RoutingContext) -> list[Agent]:
    """Any agent, at random (seeded)."""
    shuffled = sorted(agents, key=lambda a: a.id)
    ctx.rng.shuffle(shuffled)
    return shuffled


@policy("ring_all")
def ring_all(agents: list[Agent], caller: Caller, ctx: RoutingContext) -> list[Agent]:
    """Every available agent at once; the first to answer takes the call."""
    return sorted(agents, key=lambda a: (a.idle_since, a.id))


@policy("skills")
def best_skill(agents: list[Agent], caller: Caller, ctx: RoutingContext) -> list[Agent]:
    """The agent with the best levels in the caller's skills first (then the longest idle)."""
    return sorted(agents, key=lambda a: (-skill_score(a, caller), a.idle_since, a.id))


@policy("skills_idle")
def skills_longest_idle(agents: list[Agent], caller: Caller, ctx: RoutingContext) -> list[Agent]:
    """Among qualified agents, the longest idle first."""
    return longest_idle(agents, caller, ctx)
