"""The ACD as a state machine: `acd.step(event)` applies one event and returns the commands it implies.

Events are what happened (an agent logged in, a caller arrived, an agent's
phone answered or not, a call ended, time passed); commands are what to do
about it (ring an agent, cancel the other rings, overflow or announce to a
caller) and what to record (agent state changes, abandons). The machine holds
the live registry of agents and waiting callers and never touches a socket.

Waiting callers are grouped by queue and skill need, each group a heap by
priority then waiting time, so a free agent finds its next caller by looking
at a few group heads, not at every caller (see benchmarks/acd_routing.py).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acd.model import Agent, Caller, QueueSettings
from acd.policies import POLICIES, RING_ALL, RoutingContext, qualified
from kernel.values import AgentState, Outcome


# events ---------------------------------------------------------------------
@dataclass(frozen=True)
class AgentLogin:
    agent: str
    interface: str
    queues: frozenset[str]
    at: float
    skills: tuple[tuple[str, int], ...] = ()
    wraps_up: bool = False  # works from the panel, so can save a disposition (after-call work may wait for it)


@dataclass(frozen=True)
class AgentLogout:
    agent: str
    at: float


@dataclass(frozen=True)
class AgentPause:
    agent: str
    reason: str
    at: float


@dataclass(frozen=True)
class AgentUnpause:
    agent: str
    at: float


@dataclass(frozen=True)
class CallerArrived:
    caller: str
    queue: str
    at: float
    priority: int = 0
    skills: tuple[tuple[str, int], ...] = ()
    data: tuple[tuple[str, str], ...] = ()
    callback: bool = False  # already gone, to be called back (the IVR's call-back key): no announcement, no overflow, never 'full'


@dataclass(frozen=True)
class CallerLeft:
    caller: str
    at: float


@dataclass(frozen=True)
class Answered:
    agent: str
    caller: str
    at: float


@dataclass(frozen=True)
class RingNoAnswer:
    agent: str
    caller: str
    at: float


@dataclass(frozen=True)
class CallEnded:
    agent: str
    at: float


@dataclass(frozen=True)
class Tick:
    at: float


@dataclass(frozen=True)
class MoveCaller:
    caller: str
    queue: str
    at: float


@dataclass(frozen=True)
class SetPriority:
    caller: str
    priority: int
    at: float


@dataclass(frozen=True)
class CallbackRequested:
    caller: str
    at: float


@dataclass(frozen=True)
class BusyElsewhere:
    """The agent talks on a call the ACD did not give them (a transfer to their phone, their click-to-dial), or that call
    ended (`busy` False): no caller is offered to them meanwhile."""

    agent: str
    busy: bool
    at: float


@dataclass(frozen=True)
class WrapupSaved:
    agent: str
    caller: str  # the call whose disposition was saved: only that call's after-call work ends with it
    at: float


Event = (
    AgentLogin
    | AgentLogout
    | AgentPause
    | AgentUnpause
    | CallerArrived
    | CallerLeft
    | Answered
    | RingNoAnswer
    | CallEnded
    | Tick
    | MoveCaller
    | SetPriority
    | CallbackRequested
    | WrapupSaved
    | BusyElsewhere
)


# commands -------------------------------------------------------------------
@dataclass(frozen=True)
class Ring:
    agent: str
    interface: str
    caller: str
    timeout_s: float
    data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CancelRing:
    agent: str
    caller: str


@dataclass(frozen=True)
class Connected:
    agent: str
    caller: str
    queue: str
    wait_s: float


@dataclass(frozen=True)
class Overflow:
    caller: str
    queue: str
    kind: str
    target: str
    wait_s: float
    why: Outcome  # timeout or full
    priority: int = 0
    skills: tuple[tuple[str, int], ...] = ()
    data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Announce:
    caller: str
    position: int
    expected_wait_s: float


@dataclass(frozen=True)
class StateChange:
    agent: str
    state: AgentState
    reason: str | None
    at: float


@dataclass(frozen=True)
class Abandoned:
    caller: str
    queue: str
    wait_s: float


@dataclass(frozen=True)
class RequestRefused:
    """An agent's request the ACD would not carry out (a pause reason it does not know), and why."""

    agent: str
    why: str


Command = Ring | CancelRing | Connected | Overflow | Announce | StateChange | Abandoned | RequestRefused
PAUSE_REASONS = ("break", "lunch", "training", "meeting", "coaching", "after_call_work")


@dataclass
class ACD:
    """Agents, queues and waiting callers, and the routing between them."""

    queues: dict[str, QueueSettings]
    seed: int = 1
    pause_reasons: tuple[str, ...] = PAUSE_REASONS
    agents: dict[str, Agent] = field(default_factory=dict)
    callers: dict[str, Caller] = field(default_factory=dict)
    connected: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ctx = RoutingContext(self.seed)
        self.available: dict[str, set[str]] = {name: set() for name in self.queues}
        self.groups: dict[tuple[str, tuple[tuple[str, int], ...]], list[tuple[int, float, int, str]]] = {}
        self.delayed: list[tuple[float, int, str]] = []
        self.rings: dict[tuple[str, str], float] = {}
        self.handle_s: dict[str, float] = {name: 180.0 for name in self.queues}
        self._seq = itertools.count()
        # The handler of each kind of event (one per event class above).
        self._handlers: dict[type, Callable[[Any, list[Command]], None]] = {
            AgentLogin: self._on_AgentLogin,
            AgentLogout: self._on_AgentLogout,
            AgentPause: self._on_AgentPause,
            AgentUnpause: self._on_AgentUnpause,
            CallerArrived: self._on_CallerArrived,
            CallerLeft: self._on_CallerLeft,
            MoveCaller: self._on_MoveCaller,
            CallbackRequested: self._on_CallbackRequested,
            SetPriority: self._on_SetPriority,
            Answered: self._on_Answered,
            RingNoAnswer: self._on_RingNoAnswer,
            CallEnded: self._on_CallEnded,
            Tick: self._on_Tick,
            WrapupSaved: self._on_WrapupSaved,
            BusyElsewhere: self._on_BusyElsewhere,
        }

    # the one entry point ----------------------------------------------------
    def step(self, event: Event) -> list[Command]:
        """Apply one event; return what to do and what to record."""
        out: list[Command] = []
        self._handlers[type(event)](event, out)
        return out

    # agents -------------------------------------------------------------------
    def _set(self, agent: Agent, state: AgentState, at: float, out: list[Command], reason: str | None = None) -> None:
        if state is AgentState.AVAILABLE and agent.busy_elsewhere:
            state = AgentState.ON_CALL  # free of the ACD's calls, still on another: available when it ends
        if agent.state is state and agent.reason == reason:
            return
        for queue in agent.queues:
            pool = self.available.setdefault(queue, set())
            if state is AgentState.AVAILABLE:
                pool.add(agent.id)
            else:
                pool.discard(agent.id)
        if state is AgentState.AVAILABLE:
            agent.idle_since = at
        agent.state, agent.since, agent.reason, agent.pause_after = state, at, reason, None
        out.append(StateChange(agent.id, state, reason, at))

    def _on_AgentLogin(self, e: AgentLogin, out: list[Command]) -> None:
        agent = self.agents.get(e.agent) or Agent(e.agent)
        self.agents[e.agent] = agent
        agent.wraps_up = agent.wraps_up or e.wraps_up
        if agent.state is not AgentState.LOGGED_OUT:
            return
        agent.interface, agent.queues, agent.skills = e.interface, set(e.queues) & set(self.queues), dict(e.skills)
        self._set(agent, AgentState.AVAILABLE, e.at, out)
        self._serve_agent(agent, e.at, out)

    def _on_AgentLogout(self, e: AgentLogout, out: list[Command]) -> None:
        agent = self.agents.get(e.agent)
        if agent is None or agent.state is AgentState.LOGGED_OUT:
            return
        self._drop_rings(agent, e.at, out, requeue=True)
        if agent.state is AgentState.ON_CALL and agent.caller is not None:
            self.connected.pop(agent.caller, None)
            self.callers.pop(agent.caller, None)
        agent.caller, agent.wraps_up, agent.wrap_needs_save, agent.busy_elsewhere = None, False, False, False
        self._set(agent, AgentState.LOGGED_OUT, e.at, out)

    def _on_BusyElsewhere(self, e: BusyElsewhere, out: list[Command]) -> None:
        agent = self.agents.get(e.agent)
        if agent is None or agent.state is AgentState.LOGGED_OUT or agent.busy_elsewhere == e.busy:
            return
        agent.busy_elsewhere = e.busy
        if e.busy and agent.state is AgentState.AVAILABLE:
            self._set(agent, AgentState.ON_CALL, e.at, out)
        elif not e.busy and agent.state is AgentState.ON_CALL and agent.caller is None:
            self._call_over(agent, None, e.at, out)

    def _on_AgentPause(self, e: AgentPause, out: list[Command]) -> None:
        agent = self.agents.get(e.agent)
        if agent is None or agent.state is AgentState.LOGGED_OUT:
            return
        if e.reason not in self.pause_reasons:
            out.append(RequestRefused(e.agent, f"pause reason {e.reason!r} is not one of {', '.join(self.pause_reasons)}"))
            return
        if agent.state in (AgentState.ON_CALL,):
            agent.pause_after = agent.reason = e.reason
            out.append(StateChange(agent.id, AgentState.ON_CALL, e.reason, e.at))  # still on the call, the pause to come said
            return
        self._drop_rings(agent, e.at, out, requeue=True)
        self._set(agent, AgentState.PAUSED, e.at, out, e.reason)

    def _on_AgentUnpause(self, e: AgentUnpause, out: list[Command]) -> None:
        agent = self.agents.get(e.agent)
        if agent is not None and agent.state in (AgentState.PAUSED, AgentState.WRAP_UP):
            agent.missed = 0
            self._set(agent, AgentState.AVAILABLE, e.at, out)
            self._serve_agent(agent, e.at, out)

    # callers ------------------------------------------------------------------
    def _key(self, caller: Caller) -> tuple[int, float, int, str]:
        return (-caller.priority, caller.enqueued_at, caller.seq, caller.id)

    def _push(self, caller: Caller) -> None:
        group = (caller.queue, tuple(sorted(caller.skills.items())))
        heapq.heappush(self.groups.setdefault(group, []), self._key(caller))

    def _waiting(self, caller_id: str, key: tuple[int, float, int, str], at: float) -> bool:
        """Whether a heap entry still stands for a caller who can be offered now (a caller in retry delay is re-queued later)."""
        caller = self.callers.get(caller_id)
        return (
            caller is not None
            and not caller.ringing
            and caller_id not in self.connected
            and self._key(caller) == key
            and caller.next_try <= at
        )

    def _on_CallerArrived(self, e: CallerArrived, out: list[Command]) -> None:
        settings = self.queues.get(e.queue)
        if settings is None or e.caller in self.callers:
            return
        caller = Caller(
            e.caller, e.queue, e.at, e.priority, dict(e.skills), dict(e.data), seq=next(self._seq), announced_at=e.at, callback=e.callback
        )
        on_line = (
            sum(1 for c in self.callers.values() if c.queue == e.queue and c.id not in self.connected and not c.callback)
            if settings.max_length
            else 0
        )
        full = bool(settings.max_length) and on_line >= settings.max_length and not e.callback
        if full:
            out.append(
                Overflow(e.caller, e.queue, settings.overflow, settings.overflow_target, 0.0, Outcome.FULL, e.priority, e.skills, e.data)
            )
            if settings.overflow != "callback":
                return
            caller.callback = True
        self.callers[e.caller] = caller
        self._push(caller)
        if not full:
            self._serve_caller(caller, e.at, out)

    def _on_CallerLeft(self, e: CallerLeft, out: list[Command]) -> None:
        caller = self.callers.pop(e.caller, None)
        if caller is None:
            return
        agent_id = self.connected.pop(e.caller, None)
        if agent_id is None:
            for ringing in list(caller.ringing):
                self._cancel(ringing, caller, out)
            out.append(Abandoned(caller.id, caller.queue, e.at - caller.enqueued_at))
        elif self.agents[agent_id].caller == e.caller:
            self.agents[agent_id].caller = None

    def _on_MoveCaller(self, e: MoveCaller, out: list[Command]) -> None:
        caller = self.callers.get(e.caller)
        if caller is None or e.queue not in self.queues or e.caller in self.connected:
            return
        for ringing in list(caller.ringing):
            self._cancel(ringing, caller, out)
        caller.queue, caller.seq, caller.tried = e.queue, next(self._seq), set()
        self._push(caller)
        self._serve_caller(caller, e.at, out)

    def _on_CallbackRequested(self, e: CallbackRequested, out: list[Command]) -> None:
        """The caller hung up to be called back: the place is kept, with no more announcements and no overflow."""
        caller = self.callers.get(e.caller)
        if caller is not None and e.caller not in self.connected and not caller.ringing:
            caller.callback = True

    def _on_SetPriority(self, e: SetPriority, out: list[Command]) -> None:
        caller = self.callers.get(e.caller)
        if caller is None or e.caller in self.connected:
            return
        caller.priority, caller.seq = e.priority, next(self._seq)
        if not caller.ringing:
            self._push(caller)
            self._serve_caller(caller, e.at, out)

    # ringing and calls ----------------------------------------------------------
    def _ring(self, agent: Agent, caller: Caller, at: float, out: list[Command]) -> None:
        settings = self.queues[caller.queue]
        caller.ringing.add(agent.id)
        caller.tried.add(agent.id)
        agent.caller = caller.id
        self.rings[(agent.id, caller.id)] = at + settings.ring_timeout_s
        self._set(agent, AgentState.RINGING, at, out)
        out.append(Ring(agent.id, agent.interface, caller.id, settings.ring_timeout_s, tuple(caller.data.items())))

    def _cancel(self, agent_id: str, caller: Caller, out: list[Command], at: float | None = None) -> None:
        caller.ringing.discard(agent_id)
        self.rings.pop((agent_id, caller.id), None)
        agent = self.agents[agent_id]
        out.append(CancelRing(agent_id, caller.id))
        if agent.caller == caller.id and agent.state is AgentState.RINGING:
            agent.caller = None
            self._set(agent, AgentState.AVAILABLE, at if at is not None else agent.since, out)

    def _drop_rings(self, agent: Agent, at: float, out: list[Command], requeue: bool) -> None:
        if agent.state is AgentState.RINGING and agent.caller is not None:
            caller = self.callers.get(agent.caller)
            agent.caller = None
            if caller is not None:
                caller.ringing.discard(agent.id)
                self.rings.pop((agent.id, caller.id), None)
                out.append(CancelRing(agent.id, caller.id))
                if requeue and not caller.ringing and caller.id not in self.connected:
                    self._push(caller)

    def _on_Answered(self, e: Answered, out: list[Command]) -> None:
        caller, agent = self.callers.get(e.caller), self.agents.get(e.agent)
        if caller is None or agent is None or e.agent not in caller.ringing or e.caller in self.connected:
            return
        self.rings.pop((agent.id, caller.id), None)
        for other in list(caller.ringing - {agent.id}):
            self._cancel(other, caller, out, e.at)
        caller.ringing.clear()
        self.connected[caller.id] = agent.id
        agent.caller, agent.call_queue, agent.missed, agent.wrap_saved = caller.id, caller.queue, 0, False
        agent.calls_taken += 1
        self.ctx.last[caller.queue] = agent.id
        self._set(agent, AgentState.ON_CALL, e.at, out)
        out.append(Connected(agent.id, caller.id, caller.queue, e.at - caller.enqueued_at))

    def _on_RingNoAnswer(self, e: RingNoAnswer, out: list[Command]) -> None:
        caller, agent = self.callers.get(e.caller), self.agents.get(e.agent)
        if caller is None or agent is None or e.agent not in caller.ringing:
            return
        settings = self.queues[caller.queue]
        caller.ringing.discard(agent.id)
        self.rings.pop((agent.id, caller.id), None)
        agent.caller = None
        agent.missed += 1
        if settings.autopause_after and agent.missed >= settings.autopause_after:
            self._set(agent, AgentState.PAUSED, e.at, out, "missed_calls")
        else:
            self._set(agent, AgentState.AVAILABLE, e.at, out)
        if not caller.ringing:
            caller.next_try = e.at + settings.retry_s
            heapq.heappush(self.delayed, (caller.next_try, caller.seq, caller.id))
        if agent.state is AgentState.AVAILABLE:
            self._serve_agent(agent, e.at, out)

    def _on_CallEnded(self, e: CallEnded, out: list[Command]) -> None:
        agent = self.agents.get(e.agent)
        if agent is None or agent.state is not AgentState.ON_CALL:
            return
        if agent.caller is not None:
            self.callers.pop(agent.caller, None)
            self.connected.pop(agent.caller, None)
        agent.wrap_call, agent.caller = agent.caller, None
        queue = agent.call_queue
        settings = self.queues.get(queue)
        if settings is not None:
            self.handle_s[queue] = 0.9 * self.handle_s[queue] + 0.1 * (e.at - agent.since)
        self._call_over(agent, settings, e.at, out)

    def _call_over(self, agent: Agent, settings: QueueSettings | None, at: float, out: list[Command]) -> None:
        """A call ends (of the queue `settings`, or one the ACD did not give): the pause asked for during it, else the
        queue's after-call work, else available and offered the next caller."""
        pending, agent.pause_after = agent.pause_after, None
        waits = settings is not None and self._waits_for_save(agent, settings)
        if pending:
            self._set(agent, AgentState.PAUSED, at, out, pending)
        elif settings is not None and (settings.wrapup_s > 0 or waits):
            agent.wrap_needs_save = waits
            agent.wrap_until = at + settings.wrapup_s if settings.wrapup_s > 0 else math.inf
            self._set(agent, AgentState.WRAP_UP, at, out)
        else:
            self._set(agent, AgentState.AVAILABLE, at, out)
            self._serve_agent(agent, at, out)

    @staticmethod
    def _waits_for_save(agent: Agent, settings: QueueSettings) -> bool:
        """After-call work waits for the disposition only from an agent who can save one (on the panel) and has not yet."""
        return settings.wrapup_until_saved and agent.wraps_up and not agent.wrap_saved

    def _on_WrapupSaved(self, e: WrapupSaved, out: list[Command]) -> None:
        """The agent saved the disposition of the call they are on (no wait for a save once it ends) or of the one they just
        finished (its after-call work, if it lasts until the save, ends); a save of an older call changes nothing."""
        agent = self.agents.get(e.agent)
        if agent is None:
            return
        if agent.state is AgentState.ON_CALL:
            agent.wrap_saved = agent.wrap_saved or e.caller == agent.caller
        elif agent.wrap_needs_save and e.caller == agent.wrap_call:
            agent.wrap_needs_save = False
            if agent.state is AgentState.WRAP_UP:
                self._set(agent, AgentState.AVAILABLE, e.at, out)
                self._serve_agent(agent, e.at, out)

    # time ---------------------------------------------------------------------
    def _on_Tick(self, e: Tick, out: list[Command]) -> None:
        now = e.at
        for (agent_id, caller_id), deadline in list(self.rings.items()):
            if deadline <= now:
                self._on_RingNoAnswer(RingNoAnswer(agent_id, caller_id, now), out)
        for agent in self.agents.values():
            if agent.state is AgentState.WRAP_UP and agent.wrap_until <= now:
                self._set(agent, AgentState.AVAILABLE, now, out)
        while self.delayed and self.delayed[0][0] <= now:
            _, _, caller_id = heapq.heappop(self.delayed)
            caller = self.callers.get(caller_id)
            if caller is not None and not caller.ringing and caller_id not in self.connected:
                caller.tried = set() if caller.tried >= self._queue_agents(caller.queue) else caller.tried
                self._push(caller)
        for caller in list(self.callers.values()):
            settings = self.queues[caller.queue]
            if caller.id in self.connected or caller.ringing or caller.callback:
                continue
            if settings.max_wait_s and now - caller.enqueued_at >= settings.max_wait_s:
                out.append(
                    Overflow(
                        caller.id,
                        caller.queue,
                        settings.overflow,
                        settings.overflow_target,
                        now - caller.enqueued_at,
                        Outcome.TIMEOUT,
                        caller.priority,
                        tuple(caller.skills.items()),
                        tuple(caller.data.items()),
                    )
                )
                if settings.overflow == "callback":
                    caller.callback = True
                else:
                    del self.callers[caller.id]
            elif settings.announce_every_s and now - caller.announced_at >= settings.announce_every_s:
                caller.announced_at = now
                position = 1 + sum(
                    1
                    for c in self.callers.values()
                    if c.queue == caller.queue and c.id not in self.connected and self._key(c) < self._key(caller)
                )
                staffed = max(1, sum(1 for a in self.agents.values() if caller.queue in a.queues and a.state is not AgentState.LOGGED_OUT))
                out.append(Announce(caller.id, position, round(position * self.handle_s[caller.queue] / staffed, 1)))
        for agent in sorted((a for a in self.agents.values() if a.state is AgentState.AVAILABLE), key=lambda a: (a.idle_since, a.id)):
            if agent.state is AgentState.AVAILABLE:
                self._serve_agent(agent, now, out)
        if any(self.available.values()):
            for caller in sorted((c for c in self.callers.values() if self._widened(c, now)), key=self._key):
                self._serve_caller(caller, now, out)

    def callbacks_waiting(self) -> dict[str, int]:
        """Per queue, the callers keeping their place for a call back (for the wallboard)."""
        counts = dict.fromkeys(self.queues, 0)
        for caller in self.callers.values():
            if caller.callback and caller.id not in self.connected:
                counts[caller.queue] += 1
        return counts

    def _queue_agents(self, queue: str) -> set[str]:
        return {a.id for a in self.agents.values() if queue in a.queues}

    # routing ------------------------------------------------------------------
    def _widened(self, caller: Caller, at: float) -> bool:
        widen = self.queues[caller.queue].widen_after_s
        return bool(widen) and at - caller.enqueued_at >= widen

    def _serve_caller(self, caller: Caller, at: float, out: list[Command]) -> None:
        """A caller needs an agent: the policy orders the qualified available ones."""
        if caller.ringing or caller.id in self.connected or caller.next_try > at:
            return
        widened = self._widened(caller, at)
        pool = [self.agents[a] for a in self.available.get(caller.queue, ())]
        candidates = [a for a in pool if qualified(a, caller, widened) and a.id not in caller.tried]
        if not candidates:
            candidates = [a for a in pool if qualified(a, caller, widened)]
        if not candidates:
            return
        strategy = self.queues[caller.queue].strategy
        ordered = POLICIES[strategy](candidates, caller, self.ctx)
        for agent in ordered if strategy in RING_ALL else ordered[:1]:
            self._ring(agent, caller, at, out)

    def _serve_agent(self, agent: Agent, at: float, out: list[Command]) -> None:
        """An agent is free: the best caller it can take (priority, then waiting time) across its queues.

        Only group heads are looked at; a caller behind a head the agent cannot take, but widened to any
        agent, is served by `_on_Tick` from the caller's side."""
        best: tuple[tuple[int, float, int, str], tuple[str, tuple[tuple[str, int], ...]]] | None = None
        for queue in agent.queues:
            for group, heap in self.groups.items():
                if group[0] != queue:
                    continue
                while heap and not self._waiting(heap[0][3], heap[0], at):
                    heapq.heappop(heap)
                if not heap:
                    continue
                head = self.callers[heap[0][3]]
                if qualified(agent, head, self._widened(head, at)) and (best is None or heap[0] < best[0]):
                    best = (heap[0], group)
        if best is not None:
            heapq.heappop(self.groups[best[1]])
            self._ring(agent, self.callers[best[0][3]], at, out)
