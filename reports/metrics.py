"""Contact-center figures: the rates of docs/metrics.md from the sums the report engine counts.

`Counters` holds one row's sums (a queue, an agent or an interval) and turns
them into figures; `Report` gathers the rows and the agents' login and pause
spans, which it follows change by change. After-call work (ACW) is measured
from the agents' changes by the report engine (`reports.engine`) and counted in
handle time, not as a pause.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kernel.values import ACW_REASON, AgentState
from reports.queue_log import AgentChange

DAY = 86400
WEEK = 7 * DAY
ACW_STATE = AgentState.WRAP_UP.value


def is_acw(state: str, reason: str | None) -> bool:
    """Whether an agent change puts them in after-call work: the engine's `wrap_up`, or a pause for `ACW_REASON`."""
    return state == ACW_STATE or (state == "paused" and reason == ACW_REASON)


@dataclass(frozen=True)
class Options:
    """Thresholds and the reporting window."""

    sl_seconds: float = 20.0
    short_abandon_seconds: float = 5.0
    interval_seconds: int = 900
    wrapup_seconds: float = 0.0  # each answered visit's after-call work when the data measures none (see docs/metrics.md)
    start: float | None = None
    end: float | None = None


def percent(part: float, whole: float, digits: int = 2) -> float | None:
    """`part` of `whole` in percent (None of nothing), the one rounding the reports and the wallboard share."""
    return round(100.0 * part / whole, digits) if whole else None


def _avg(total: float, count: int) -> float | None:
    return round(total / count, 2) if count else None


@dataclass
class Counters:
    """The sums behind one row of figures (a queue, an agent or an interval)."""

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    timed_out: int = 0
    exited_key: int = 0
    exited_empty: int = 0
    transferred: int = 0
    transferred_in: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    wait_answered: float = 0.0
    wait_all: float = 0.0
    waits: int = 0
    max_wait: float = 0.0
    talk: float = 0.0
    talked: int = 0
    acw: float = 0.0
    handle: float = 0.0
    repeat_24h: int = 0
    repeat_7d: int = 0
    answered_repeated_24h: int = 0
    answered_repeated_7d: int = 0

    def figures(self) -> dict[str, Any]:
        """The row, as docs/metrics.md defines each figure."""
        counted = self.offered - self.short_abandoned
        asterisk_abandons = self.abandoned + self.short_abandoned + self.timed_out
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "timed_out": self.timed_out,
            "exited_key": self.exited_key,
            "exited_empty": self.exited_empty,
            "transferred": self.transferred,
            "transferred_in": self.transferred_in,
            "asa_s": _avg(self.wait_answered, self.answered),
            "avg_wait_s": _avg(self.wait_all, self.waits),
            "max_wait_s": round(self.max_wait, 2),
            "avg_talk_s": _avg(self.talk, self.talked),
            "acw_s": _avg(self.acw, self.talked),
            "aht_s": _avg(self.handle, self.talked),
            "abandon_rate_pct": percent(self.abandoned, counted),
            "service_level_pct": percent(self.answered_within, counted),
            "asterisk_sl_pct": percent(self.answered_within, self.answered),
            "asterisk_sl2_pct": percent(self.answered_within + self.abandoned_within, self.answered + asterisk_abandons),
            "repeat_calls_24h": self.repeat_24h,
            "repeat_calls_7d": self.repeat_7d,
            "fcr_24h_pct": percent(self.answered - self.answered_repeated_24h, self.answered),
            "fcr_7d_pct": percent(self.answered - self.answered_repeated_7d, self.answered),
        }


@dataclass
class AgentTime:
    """An agent's logged-in and paused time, built from state changes."""

    login_since: float | None = None
    pause_since: float | None = None
    pause_reason: str | None = None
    logged_in: float = 0.0
    paused: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    seen_login: bool = False


@dataclass
class Report:
    """Every figure of a report: rows of sums from the engine, agent time from state changes."""

    options: Options = field(default_factory=Options)
    queues: dict[str, Counters] = field(default_factory=lambda: defaultdict(Counters))
    agents: dict[str, Counters] = field(default_factory=lambda: defaultdict(Counters))
    intervals: dict[tuple[int, str], Counters] = field(default_factory=lambda: defaultdict(Counters))
    ring_no_answer: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    agent_time: dict[str, AgentTime] = field(default_factory=lambda: defaultdict(AgentTime))

    def add_agent_change(self, change: AgentChange) -> None:
        """Track login and pause spans (a pause in every queue counts once; a pause for another reason ends the one before
        it). After-call work is no pause: it ends one, and its time is handle time."""
        t = self._clip(change.epoch)
        at = self.agent_time[change.agent]
        if change.state == "logged_in":
            at.seen_login = True
            if at.login_since is None:
                at.login_since = t
        elif change.state == "logged_out":
            self._end_pause(at, t)
            if at.login_since is not None:
                at.logged_in += t - at.login_since
                at.login_since = None
        elif is_acw(change.state, change.reason) or change.state == "available":
            self._end_pause(at, t)
        elif change.state == "paused":
            reason = change.reason or "unspecified"
            if at.pause_since is not None and at.pause_reason != reason:
                self._end_pause(at, t)
            if at.pause_since is None:
                at.pause_since, at.pause_reason = t, reason

    def _clip(self, t: float) -> float:
        o = self.options
        if o.start is not None:
            t = max(t, o.start)
        if o.end is not None:
            t = min(t, o.end)
        return t

    @staticmethod
    def _end_pause(at: AgentTime, t: float) -> None:
        if at.pause_since is not None:
            at.paused[at.pause_reason or "unspecified"] += t - at.pause_since
            at.pause_since = None

    def finish(self, until: float) -> None:
        """Close spans still open at the end of the window."""
        t = self._clip(until)
        for at in self.agent_time.values():
            self._end_pause(at, t)
            if at.login_since is not None:
                at.logged_in += t - at.login_since
                at.login_since = t

    def result(self) -> dict[str, Any]:
        """The report as data: queues, agents and intervals (JSON shape of `callcenter report`)."""
        agents: dict[str, Any] = {}
        for name in sorted(set(self.agents) | set(self.agent_time) | set(self.ring_no_answer)):
            c = self.agents.get(name, Counters())
            at = self.agent_time.get(name, AgentTime())
            paused = sum(at.paused.values())
            staffed = at.logged_in - paused
            agents[name] = {
                "answered": c.answered,
                "talk_s": round(c.talk, 2),
                "avg_talk_s": _avg(c.talk, c.talked),
                "acw_s": _avg(c.acw, c.talked),
                "aht_s": _avg(c.handle, c.talked),
                "transferred": c.transferred,
                "ring_no_answer": self.ring_no_answer.get(name, 0),
                "logged_in_s": round(at.logged_in, 2) if at.seen_login else None,
                "pause_s_by_reason": {reason: round(seconds, 2) for reason, seconds in sorted(at.paused.items())},
                "occupancy_pct": percent(c.handle, staffed) if at.seen_login and staffed > 0 else None,
            }
        intervals = [
            {"start": datetime.fromtimestamp(slot, tz=UTC).isoformat().replace("+00:00", "Z"), "queue": queue, **c.figures()}
            for (slot, queue), c in sorted(self.intervals.items())
        ]
        return {"queues": {name: c.figures() for name, c in sorted(self.queues.items())}, "agents": agents, "intervals": intervals}
