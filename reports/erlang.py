"""Staffing with Erlang C: how many agents a queue needs for a service-level target.

Erlang C is computed through the Erlang B recursion (B(0) = 1,
B(n) = A·B(n-1) / (n + A·B(n-1)), C = N·B / (N − A·(1 − B))), which stays
exact for thousands of agents where the factorial form overflows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Staffing:
    """One staffing answer: agents and what they achieve."""

    agents: int
    service_level: float
    asa_s: float
    occupancy: float
    p_wait: float
    erlangs: float

    def to_json(self) -> dict[str, float | int]:
        """Rounded for people and reports."""
        data = asdict(self)
        for key in ("service_level", "occupancy", "p_wait"):
            data[key] = round(data[key], 4)
        data["asa_s"] = round(self.asa_s, 2)
        data["erlangs"] = round(self.erlangs, 3)
        return data


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that a call waits, with `agents` serving `erlangs` of traffic (1.0 when overloaded)."""
    if agents <= erlangs:
        return 1.0
    b = 1.0
    for n in range(1, agents + 1):
        b = erlangs * b / (n + erlangs * b)
    return agents * b / (agents - erlangs * (1 - b))


def evaluate(agents: int, calls_per_hour: float, aht_seconds: float, answer_within: float) -> Staffing:
    """Service level, ASA, occupancy and waiting probability for a given number of agents."""
    erlangs = calls_per_hour * aht_seconds / 3600.0
    p_wait = erlang_c(agents, erlangs)
    if agents <= erlangs:
        return Staffing(agents, 0.0, math.inf, 1.0, 1.0, erlangs)
    service_level = 1.0 - p_wait * math.exp(-(agents - erlangs) * answer_within / aht_seconds)
    asa = p_wait * aht_seconds / (agents - erlangs)
    return Staffing(agents, service_level, asa, erlangs / agents, p_wait, erlangs)


def agents_needed(calls_per_hour: float, aht_seconds: float, target_sl: float, answer_within: float, max_agents: int = 100_000) -> Staffing:
    """The fewest agents whose service level reaches `target_sl` (0-1) for calls answered within `answer_within` s."""
    if not (calls_per_hour < math.inf and 0 < aht_seconds < math.inf and 0 < target_sl < 1 and 0 <= answer_within < math.inf):
        raise ValueError("need finite figures, aht_seconds > 0, 0 < target_sl < 1 and answer_within >= 0")  # nan never reaches a target
    if calls_per_hour <= 0:
        return Staffing(0, 1.0, 0.0, 0.0, 0.0, 0.0)
    agents = max(1, math.floor(calls_per_hour * aht_seconds / 3600.0) + 1)
    while agents <= max_agents:
        result = evaluate(agents, calls_per_hour, aht_seconds, answer_within)
        if result.service_level >= target_sl:
            return result
        agents += 1
    raise ValueError(f"no staffing up to {max_agents} agents reaches the target")
