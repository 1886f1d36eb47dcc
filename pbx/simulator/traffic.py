"""The seeded traffic model: callers arriving, choosing in the menu, waiting, and agent phones answering.

Arrivals are Poisson (calls per minute, optionally shaped by a 24-hour curve);
caller numbers come from a pool, and a share of calls are repeat callers;
menu choices follow given probabilities; caller patience is exponential, so
abandonment emerges from waiting rather than being decided up front; agent
phones ring for a while, sometimes never answer, and talk for an exponential
handle time. The same seed gives the same day.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from pbx.codec import Message
from pbx.simulator import actions
from pbx.simulator.core import Channel, Sim
from pbx.simulator.dialplan import MemberConf, QueueConf

FIRST = [
    "Ana",
    "Bruno",
    "Carla",
    "Diego",
    "Elisa",
    "Fábio",
    "Gabriela",
    "Heitor",
    "Isabel",
    "João",
    "Karina",
    "Lucas",
    "Mariana",
    "Nuno",
    "Otávio",
    "Paula",
    "Rafael",
    "Sofia",
    "Tiago",
    "Vitória",
]
LAST = ["Silva", "Souza", "Oliveira", "Santos", "Pereira", "Lima", "Costa", "Ferreira", "Almeida", "Ribeiro"]
AGENT_NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Uma",
    "Victor",
    "Walter",
]


@dataclass(frozen=True)
class TrafficModel:
    """What a day of calls looks like."""

    calls_per_minute: float = 30.0
    hourly_curve: tuple[float, ...] | None = None
    caller_pool: int = 2000
    repeat_share: float = 0.15
    menu: tuple[tuple[str, float], ...] = (("1", 0.6), ("2", 0.3), ("9", 0.05), ("", 0.05))
    think_s: tuple[float, float] = (1.0, 3.0)
    patience_mean_s: float = 120.0
    answer_delay_s: tuple[float, float] = (1.0, 4.0)
    no_answer_share: float = 0.03
    handle_mean_s: float = 150.0
    min_handle_s: float = 15.0
    hold_share: float = 0.1
    hold_mean_s: float = 30.0
    queue_timeout_s: int = 600
    entry: str = "Local/s@ivr-main"
    caller_context: str = "sim-callers"
    languages: tuple[tuple[str, float], ...] = ()
    known_callers: tuple[tuple[str, str], ...] = ()
    known_share: float = 0.0


@dataclass
class Traffic:
    """Generates calls into a `Sim` and keeps the ground truth of what it generated."""

    sim: Sim
    model: TrafficModel
    seed: int = 1
    generated: Counter = field(default_factory=Counter)
    callers: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.sim.functions["SIM_DRAW"] = self.draw
        self._recent: list[tuple[str, str]] = []
        self._running = False

    def start(self) -> None:
        """Begin generating arrivals from the current sim time."""
        self._running = True
        self._schedule_next()

    def stop(self) -> None:
        """Stop generating new calls (calls in progress go on)."""
        self._running = False

    def rate_per_s(self, t: float) -> float:
        """Arrival rate at sim time `t`, with the hourly curve applied."""
        rate = self.model.calls_per_minute / 60.0
        if self.model.hourly_curve:
            rate *= self.model.hourly_curve[int(t // 3600) % 24 % len(self.model.hourly_curve)]
        return rate

    def _schedule_next(self) -> None:
        rate = self.rate_per_s(self.sim.now)
        delay = self.rng.expovariate(rate) if rate > 0 else 60.0
        self.sim.at(delay, self._arrive)

    def _caller(self) -> tuple[str, str]:
        if self.model.known_callers and self.rng.random() < self.model.known_share:
            return self.rng.choice(self.model.known_callers)
        if self._recent and self.rng.random() < self.model.repeat_share:
            return self.rng.choice(self._recent)
        number = "55" + str(self.rng.choice([11, 21, 31, 41, 51, 61, 71, 81])) + "9" + f"{self.rng.randrange(10**8):08d}"
        name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
        who = (number, name)
        self._recent = (self._recent + [who])[-self.model.caller_pool :]
        return who

    def _arrive(self) -> None:
        if not self._running:
            return
        number, name = self._caller()
        digits = self._pick(self.model.menu)
        language = self._pick(self.model.languages) if self.model.languages else ""
        exten, _, context = self.model.entry[len("Local/") :].partition("@")
        variables = (
            f"CALLER_THINK={self.rng.uniform(*self.model.think_s):.2f},CALLER_DIGITS={digits},CALLER_LANG={language},"
            f"CALLER_PATIENCE={self.rng.expovariate(1 / self.model.patience_mean_s):.2f}"
        )
        action = Message(
            [
                ("Action", "Originate"),
                ("Channel", f"Local/{exten}@{context}"),
                ("Context", self.model.caller_context),
                ("Exten", "caller"),
                ("Priority", "1"),
                ("CallerID", f'"{name}" <{number}>'),
                ("Async", "true"),
                ("Timeout", "30000"),
                ("Variable", variables),
            ]
        )
        actions.originate(self.sim, action)
        self.generated["calls"] += 1
        self.generated[f"menu:{digits or 'none'}"] += 1
        self.callers.append((number, name))
        self._schedule_next()

    def _pick(self, shares: tuple[tuple[str, float], ...]) -> str:
        pick = self.rng.random()
        for digits, share in shares:
            pick -= share
            if pick <= 0:
                return digits
        return shares[-1][0]

    def draw(self, ch: Channel, name: str) -> str:
        """${SIM_DRAW(name)}: one value of the model for this channel."""
        m = self.model
        if name == "answer_delay":
            return f"{self.rng.uniform(*m.answer_delay_s):.2f}"
        if name == "no_answer":
            return "1" if self.rng.random() < m.no_answer_share else "0"
        if name == "handle_time":
            return f"{max(m.min_handle_s, self.rng.expovariate(1 / m.handle_mean_s)):.2f}"
        if name == "hold_time":
            held = self.rng.random() < m.hold_share
            ch.vars["__held"] = "1" if held else ""
            return f"{self.rng.expovariate(1 / m.hold_mean_s):.2f}" if held else "0"
        if name == "after_hold":
            return f"{self.rng.expovariate(1 / 30.0):.2f}" if ch.vars.get("__held") else "0"
        if name == "queue_timeout":
            return str(m.queue_timeout_s)
        return "0"


def simulated_queues(agents: int) -> dict[str, QueueConf]:
    """Queues support (every agent) and sales (every other agent), agents as simulated phones 1001, 1002, ..."""
    members = [
        MemberConf(
            f"Local/{1001 + i}@sim-agents/n",
            0,
            AGENT_NAMES[i % len(AGENT_NAMES)] + ("" if i < len(AGENT_NAMES) else str(i)),
            f"Local/{1001 + i}@sim-agents",
        )
        for i in range(agents)
    ]
    support = QueueConf("support", strategy="leastrecent", timeout=15, retry=2, wrapuptime=5, servicelevel=20, members=list(members))
    sales = QueueConf("sales", strategy="rrmemory", timeout=15, retry=2, wrapuptime=5, servicelevel=20, members=members[::2] or members[:1])
    return {"support": support, "sales": sales}
