"""The live board: what agents and supervisors see, kept from the engine's events.

Pure and synchronous, like the tracker it listens to: `on_call(event)` takes a
call's domain event, `on_agent(change)` an agent's state change, and each
returns the notes to push (`Note(room, event, payload)`). The notifier is the
only code that sends them; the board never touches a socket.

Rooms are chosen here, from the data, never from what a browser asks:
``agent:<name>`` gets that agent's pops and call card, ``queue:<name>`` the
queue's figures, ``supervisors`` every agent's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from acd.machine import StateChange
from kernel.records import DomainEvent
from kernel.values import Outcome
from reports.metrics import percent

BUCKET_S = 900
SUPERVISORS = "supervisors"


def agent_room(name: str) -> str:
    """The room of one agent's own screen."""
    return f"agent:{name}"


def queue_room(name: str) -> str:
    """The room of one queue's wallboard tile."""
    return f"queue:{name}"


@dataclass(frozen=True)
class Note:
    """One Socket.IO message to send: to which room, which event, what data."""

    room: str
    event: str
    payload: dict[str, Any]


@dataclass
class LiveCall:
    """A call in progress as the panel needs it: who, what they keyed, where it is, which channels to act on."""

    linkedid: str
    number: str | None = None
    name: str | None = None
    digits: str = ""
    queue: str | None = None
    waiting_since: float | None = None
    priority: int = 0
    agent: str | None = None
    channel: str | None = None
    agent_channel: str | None = None
    answered_at: float | None = None
    held: bool = False
    held_since: float | None = None
    consulting: bool = False  # the agent's own leg is on hold: an attended transfer's consultation (Asterisk holds it)
    recording: str | None = None  # on, paused, off (not being recorded), unavailable (opted out, or recordings off)
    popped: set[str] = field(default_factory=set)  # agents whose screen has had this call's pop

    def card(self, now: float) -> dict[str, Any]:
        """The call as an agent's call card shows it."""
        return {
            "linkedid": self.linkedid,
            "number": self.number,
            "name": self.name,
            "digits": self.digits,
            "queue": self.queue,
            "wait_s": round((self.answered_at or now) - self.waiting_since, 1) if self.waiting_since is not None else None,
            "answered_at": self.answered_at,
            "held": self.held,
            "held_since": self.held_since,
            "consulting": self.consulting,
            "recording": self.recording,
            "now": now,
        }


@dataclass
class AgentRow:
    """One agent on the wallboard."""

    name: str
    state: str = "logged_out"
    reason: str | None = None
    since: float = 0.0
    call: str | None = None

    def row(self, calls: dict[str, LiveCall], now: float) -> dict[str, Any]:
        """The agent as the wallboard lists it, with the number of the call they are on (and the PBX's clock, for time in state)."""
        call = calls.get(self.call or "")
        on_call = self.state == "on_call"
        return {
            "name": self.name,
            "state": self.state,
            "reason": None if on_call else self.reason,
            "pause_after": self.reason if on_call else None,  # on a call, the reason is that of the pause asked for meanwhile
            "since": self.since,
            "now": now,
            "call": {"number": call.number, "queue": call.queue} if call else None,
        }


@dataclass
class QueueDay:
    """One queue's figures today, and its callers waiting now."""

    name: str
    service_level_s: float = 20.0
    waiting: dict[str, float] = field(default_factory=dict)
    callbacks: int | None = None
    buckets: dict[int, list[int]] = field(default_factory=dict)

    def bucket(self, t: float) -> list[int]:
        """offered, answered, answered within the service level, abandoned, in the 15 minutes around t."""
        return self.buckets.setdefault(int(t // BUCKET_S) * BUCKET_S, [0, 0, 0, 0])

    def totals(self) -> tuple[int, int, int, int]:
        """Today's offered, answered, answered within the service level and abandoned: the sums of the quarter-hours."""
        if not self.buckets:
            return 0, 0, 0, 0
        offered, answered, in_sl, abandoned = (sum(column) for column in zip(*self.buckets.values()))
        return offered, answered, in_sl, abandoned

    def tile(self, now: float) -> dict[str, Any]:
        """The queue's wallboard tile: service level is answered within the threshold over answered plus abandoned."""
        offered, answered, in_sl, abandoned = self.totals()
        return {
            "name": self.name,
            "waiting": len(self.waiting),
            "now": now,
            "callbacks": self.callbacks,
            "longest_wait_s": round(now - min(self.waiting.values()), 1) if self.waiting else 0.0,
            "longest_since": min(self.waiting.values()) if self.waiting else None,  # the screen's ticking longest wait
            "offered": offered,
            "answered": answered,
            "abandoned": abandoned,
            "service_level": percent(in_sl, answered + abandoned, 1),
            "chart": [
                {"start": start, "offered": b[0], "answered": b[1], "service_level": percent(b[2], b[1] + b[3], 1)}
                for start, b in sorted(self.buckets.items())
            ],
        }


class LiveBoard:
    """Live calls, agents and today's queue figures; changed only by the engine's event loop."""

    def __init__(self, service_levels: dict[str, float] | None = None, timezone: tzinfo | str = "UTC", pace: float = 1.0) -> None:
        self.service_levels = dict(service_levels or {})
        self.pace = pace  # the PBX's seconds per real second (a demo day runs faster), for the screens' clocks
        self.recording_default: str | None = None  # a new call's recording state until the recorder says (none: unavailable)
        self.tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self.calls: dict[str, LiveCall] = {}
        self.agents: dict[str, AgentRow] = {}
        self.queues: dict[str, QueueDay] = {}
        self.day: str | None = None
        self.now = 0.0
        # (linkedid, agent) -> the call as it was when the agent's part ended: calls the agent worked and has not wrapped up
        # yet (the call may go on with another agent, or not be stored yet); a reloaded screen shows their forms again
        self.worked: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_part: dict[str, str] = {}  # agent -> the call whose part ended last (their after-call work is for it)
        for name in self.service_levels:  # every configured queue is on the wallboard, calls or not
            self._queue(name)

    # inputs -----------------------------------------------------------------------
    def on_call(self, e: DomainEvent) -> list[Note]:
        """One domain event of a call (from the tracker)."""
        self._clock(e.t)
        d = e.data
        call = self.calls.get(e.linkedid)
        if call is None:
            call = self.calls[e.linkedid] = LiveCall(e.linkedid, recording=self.recording_default)
        out: list[Note] = []
        if e.kind == "call_started":
            call.number, call.name = d.get("caller_number"), d.get("caller_name")
        elif e.kind == "dialled":
            call.number = d.get("number") or call.number
        elif e.kind == "dtmf" and not d.get("in_queue"):
            call.digits += str(d.get("digit", ""))
        elif e.kind == "transferred" and call.answered_at is not None:
            out += self._requeued(call)
            if d.get("agent"):
                out += self._answered(call, e)
        elif e.kind == "queue_joined":
            if call.answered_at is not None:
                out += self._requeued(call)
            call.queue, call.channel = d.get("queue"), d.get("channel") or call.channel
            if call.waiting_since is None:
                call.waiting_since = e.t
            queue = self._queue(call.queue)
            if not d.get("resynced"):
                queue.bucket(e.t)[0] += 1
            queue.waiting[call.linkedid] = call.waiting_since
            out.append(self._tile(queue))
        elif e.kind == "agent_ringing" and d.get("agent"):
            call.channel = d.get("channel") or call.channel
            out.append(self._pop(call, d["agent"], d.get("queue") or call.queue, e.t))
        elif e.kind == "answered":
            out += self._answered(call, e)
        elif e.kind == "queue_left" and d.get("reason") != Outcome.ANSWERED:
            queue = self._queue(d.get("queue") or call.queue)
            if queue.waiting.pop(call.linkedid, None) is not None and d.get("reason") == Outcome.ABANDONED:
                queue.bucket(e.t)[3] += 1
            out.append(self._tile(queue))
        elif e.kind in ("hold", "unhold") and call.agent:
            call.held = e.kind == "hold"
            call.held_since = e.t if call.held else None
            if d.get("channel") == call.agent_channel:
                call.consulting = call.held
            out.append(Note(agent_room(call.agent), "call", call.card(e.t)))
        elif e.kind == "dial_failed" and d.get("agent"):
            out.append(Note(agent_room(d["agent"]), "dial_failed", {"number": d.get("number"), "status": d.get("status"), "now": e.t}))
        elif e.kind == "call_ended":
            out += self._ended(call, e)
        return out

    def on_agent(self, change: StateChange) -> list[Note]:
        """One agent state change (from the ACD or app_queue's events)."""
        self._clock(change.at)
        agent = self.agents.setdefault(change.agent, AgentRow(change.agent))
        if not (agent.state == change.state.value == "on_call"):  # a pause asked for during a call: still on it since
            agent.since = change.at
        agent.state, agent.reason = change.state.value, change.reason
        if change.state.value not in ("on_call", "ringing", "wrap_up"):
            agent.call = None
        row = agent.row(self.calls, self.now)
        return [Note(SUPERVISORS, "agent", row), Note(agent_room(agent.name), "me", row)]

    def tick(self, now: float) -> list[Note]:
        """The clock moves on: a new day starts today's figures afresh; calls ended a day ago are no longer waiting for a wrap-up
        here (the stored call's legs still say who worked it)."""
        before = self.day
        self._clock(now)
        for key in [k for k, ended in self.worked.items() if ended["ended_at"] < self.now - 86400]:
            del self.worked[key]
        return [self._tile(q) for q in self.queues.values()] if before != self.day else []

    def callbacks(self, waiting: Mapping[str, int]) -> list[Note]:
        """Callers keeping their place for a call back (native ACD): they left the line, not the queue."""
        out: list[Note] = []
        for name in set(waiting) | {q.name for q in self.queues.values() if q.callbacks}:
            queue = self._queue(name)
            if queue.callbacks != waiting.get(name, 0):
                queue.callbacks = waiting.get(name, 0)
                out.append(self._tile(queue))
        return out

    # reads -----------------------------------------------------------------------
    def snapshot(self, queues: list[str] | None = None) -> dict[str, Any]:
        """Everything a wallboard shows, for a supervisor who just connected (only their queues if they have a list)."""
        names = [q for q in self.queues if queues is None or q in queues]
        return {
            "queues": [self.queues[q].tile(self.now) for q in names],
            "agents": [a.row(self.calls, self.now) for a in sorted(self.agents.values(), key=lambda a: a.name)],
            "now": self.now,
            "pace": self.pace,
            "tz": str(self.tz),
        }

    def agent_view(self, name: str) -> dict[str, Any]:
        """What an agent's screen shows when it (re)connects: their state and their current call."""
        agent = self.agents.get(name, AgentRow(name))
        call = self.calls.get(agent.call or "")
        ringing = None if call else next((c for c in self.calls.values() if name in c.popped and c.answered_at is None), None)
        return {
            "me": agent.row(self.calls, self.now),
            "call": call.card(self.now) if call else None,
            "ringing": {**ringing.card(self.now), "agent": name} if ringing and agent.state == "ringing" else None,
            "agents": [{"name": a.name, "state": a.state} for a in sorted(self.agents.values(), key=lambda a: a.name) if a.name != name],
            "wrapups": sorted((card for (_, agent), card in self.worked.items() if agent == name), key=lambda c: c["ended_at"]),
            "now": self.now,
            "pace": self.pace,
            "tz": str(self.tz),
        }

    def call_of(self, agent: str) -> LiveCall | None:
        """The call an agent is on now, for call controls: the server decides which channels, never the browser."""
        row = self.agents.get(agent)
        call = self.calls.get(row.call or "") if row else None
        if call is None:
            call = next((c for c in self.calls.values() if c.agent == agent), None)
        return call

    def has_worked(self, agent: str, linkedid: str) -> bool:
        """Whether the agent worked this call (it ended, or went on without them, since the engine started)."""
        return (linkedid, agent) in self.worked

    def wrapped_up(self, agent: str, linkedid: str) -> None:
        """The agent saved their wrap-up of the call."""
        self.worked.pop((linkedid, agent), None)

    def recording(self, linkedid: str, state: str) -> list[Note]:
        """The call's recording started, paused, resumed, failed or is not allowed: its agent's card says so."""
        call = self.calls.get(linkedid)
        if call is None or call.recording == state:
            return []
        call.recording = state
        return [Note(agent_room(call.agent), "call", call.card(self.now))] if call.agent else []

    def find_waiting(self, linkedid: str) -> LiveCall | None:
        """A caller still waiting in a queue."""
        call = self.calls.get(linkedid)
        return call if call is not None and call.queue and linkedid in self._queue(call.queue).waiting else None

    # helpers ---------------------------------------------------------------------
    def _answered(self, call: LiveCall, e: DomainEvent) -> list[Note]:
        d = e.data
        call.agent, call.answered_at = d.get("agent"), e.t
        call.channel = d.get("channel") or call.channel
        call.agent_channel = d.get("agent_channel") or call.agent_channel
        call.queue = d.get("queue") or call.queue
        out: list[Note] = []
        if call.queue:
            queue = self._queue(call.queue)
            if queue.waiting.pop(call.linkedid, None) is not None or call.waiting_since is not None:
                bucket = queue.bucket(e.t)
                bucket[1] += 1
                if (d.get("wait_s") or 0.0) <= queue.service_level_s:
                    bucket[2] += 1
            out.append(self._tile(queue))
        if call.agent:
            agent = self.agents.setdefault(call.agent, AgentRow(call.agent))
            agent.call = call.linkedid
            if call.agent not in call.popped:
                out.append(self._pop(call, call.agent, call.queue, e.t))
            out += [Note(agent_room(call.agent), "call", call.card(e.t)), Note(SUPERVISORS, "agent", agent.row(self.calls, self.now))]
        return out

    def _pop(self, call: LiveCall, agent: str, queue: str | None, t: float) -> Note:
        """The screen pop of this call on the agent's screen (once per agent: ringing, or reached by a transfer)."""
        call.popped.add(agent)
        return Note(agent_room(agent), "pop", {**call.card(t), "agent": agent, "queue": queue})

    def _requeued(self, call: LiveCall) -> list[Note]:
        """A transferred call (to a queue, where it waits again, or anywhere else): its last agent (and that agent's leg) is
        off it, and their wrap-up of it begins."""
        out: list[Note] = []
        row = self.agents.get(call.agent or "")
        if row is not None and row.call == call.linkedid:
            row.call = None
            out.append(Note(SUPERVISORS, "agent", row.row(self.calls, self.now)))
        if call.agent:
            out.append(self._part_ended(call, "transferred"))
        call.agent = call.agent_channel = call.answered_at = call.waiting_since = call.held_since = None
        call.held = call.consulting = False
        return out

    def _ended(self, call: LiveCall, e: DomainEvent) -> list[Note]:
        self.calls.pop(call.linkedid, None)
        out: list[Note] = []
        if call.queue and self._queue(call.queue).waiting.pop(call.linkedid, None) is not None:
            out.append(self._tile(self._queue(call.queue)))
        if call.agent:
            out.append(self._part_ended(call, e.data.get("outcome")))
        return out

    def _part_ended(self, call: LiveCall, outcome: str | None) -> Note:
        """The agent's part of a call is over (hung up, or handed on): the call their wrap-up form is for."""
        assert call.agent
        card = {**call.card(self.now), "agent": call.agent, "outcome": outcome, "ended_at": self.now}
        self.worked[(call.linkedid, call.agent)] = card
        self.last_part[call.agent] = call.linkedid
        return Note(agent_room(call.agent), "ended", card)

    def _queue(self, name: str | None) -> QueueDay:
        name = name or "?"
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = QueueDay(name, self.service_levels.get(name, 20.0))
        return queue

    def _tile(self, queue: QueueDay) -> Note:
        return Note(queue_room(queue.name), "queue", queue.tile(self.now))

    def _clock(self, t: float) -> None:
        self.now = max(self.now, t)
        day = datetime.fromtimestamp(self.now, self.tz).date().isoformat()
        if day != self.day:
            if self.day is not None:
                for queue in self.queues.values():
                    queue.buckets.clear()
            self.day = day
