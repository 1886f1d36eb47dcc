"""The pauses of ours in app_queue mode, as a pure machine: `step(event) -> [commands]`: after-call work, and calls
app_queue did not give the agent.

Asterisk's app_queue knows only a fixed `wrapuptime`, invisible over AMI, that no save can end. So the engine pauses
the agent with the reason `ACW_REASON` already when they answer a call of a queue with after-call work (app_queue lets
a paused member's call go on; pausing only once it ended would leave a moment in which app_queue could ring them), and
takes the pause off when the queue's after-call work is over, counted from the end of their part of the call (hung up,
or handed on by a transfer): after `wrapup_s`, or when the agent saves the call's disposition (`wrapup_until_saved`;
with a `wrapup_s` too, whichever comes first). A pause the agent asked for during the call starts at its end instead. The agent registry reports a member
paused for `ACW_REASON` as `wrap_up`, so the screen, the wallboard and the stored states say after-call work, not a
pause. (The native ACD does the same inside its own machine: `acd.machine`, `WRAP_UP`.) An agent talking on a call
app_queue did not give them (a transfer to their phone, their click-to-dial) is paused for `DIRECT_REASON` until it
ends, unless already paused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from acd.machine import StateChange, Tick, WrapupSaved
from kernel.values import AgentState

# app_queue rings a member on a call it did not give them (a transfer to their phone, their own click-to-dial): while on
# one, the member is paused for this reason, which the agent registry reports as on a call.
DIRECT_REASON = "direct_call"


@dataclass(frozen=True)
class QueueCallAnswered:
    """The agent answered a call app_queue gave them; `paused`: already paused (a reason of their own, or ours)."""

    agent: str
    linkedid: str
    queue: str
    paused: bool
    wraps_up: bool = True


@dataclass(frozen=True)
class PartEnded:
    """An agent's part of a call is over: the call ended, or went on without them."""

    agent: str
    linkedid: str
    queue: str | None
    at: float
    wraps_up: bool = True  # the agent saves dispositions (on the panel); else after-call work never waits for one
    paused: bool = False  # the agent asked for a pause of their own during the call: it starts now, instead


@dataclass(frozen=True)
class DirectCall:
    """The agent is talking on a call app_queue did not give them; `paused`: already off the queues (nothing to do)."""

    agent: str
    linkedid: str
    paused: bool


@dataclass(frozen=True)
class HoldOff:
    """Pause the member while on that call, so app_queue does not ring them on top of it."""

    agent: str


@dataclass(frozen=True)
class StartWrapup:
    """Pause the agent for after-call work (if not already, since the answer: `ArmWrapup`)."""

    agent: str


@dataclass(frozen=True)
class ArmWrapup:
    """Pause the agent for after-call work already during the call (app_queue keeps a paused member's call going): the
    moment it ends, they are in after-call work, with no gap in which app_queue could ring them."""

    agent: str


@dataclass(frozen=True)
class EndWrapup:
    """After-call work is over: the agent takes calls again."""

    agent: str


@dataclass
class Wrapping:
    """One agent's after-call work: for which call, until when, and whether the save ends it."""

    linkedid: str
    until: float
    until_saved: bool
    paused: bool = False  # the agent paused meanwhile: the save no longer ends a pause of ours, but is still owed


Event = QueueCallAnswered | PartEnded | WrapupSaved | Tick | StateChange | DirectCall
Command = ArmWrapup | StartWrapup | EndWrapup | HoldOff


class AfterCallWork:
    """Who is in after-call work, for which call and until when; `rules` maps a queue to (wrapup_s, wrapup_until_saved)."""

    def __init__(self, rules: Mapping[str, tuple[float, bool]]) -> None:
        self.rules = dict(rules)
        self.wrapping: dict[str, Wrapping] = {}
        self.saved: dict[str, str] = {}  # agent -> the last call they saved a disposition of (maybe before its end)
        self.direct: dict[str, str] = {}  # agent -> the call app_queue did not give them that they are paused for
        self.armed: dict[str, str] = {}  # agent -> the call they are paused for after-call work during (ArmWrapup)

    def step(self, event: Event) -> list[Command]:
        """Apply one event; return the pauses to start or end."""
        if isinstance(event, DirectCall):
            if event.paused or event.agent in self.direct:
                return []
            self.direct[event.agent] = event.linkedid
            return [HoldOff(event.agent)]
        if isinstance(event, QueueCallAnswered):
            limit_s, until_saved = self.rules.get(event.queue, (0.0, False))
            if event.paused or not (limit_s > 0 or (until_saved and event.wraps_up)):
                return []
            self.armed[event.agent] = event.linkedid
            return [ArmWrapup(event.agent)]
        if isinstance(event, PartEnded):
            was_direct = self.direct.get(event.agent) == event.linkedid and self.direct.pop(event.agent, None) is not None
            was_armed = self.armed.get(event.agent) == event.linkedid and self.armed.pop(event.agent, None) is not None
            limit_s, until_saved = self.rules.get(event.queue or "", (0.0, False))
            until_saved = until_saved and event.wraps_up and self.saved.get(event.agent) != event.linkedid
            if event.paused:
                return []
            if limit_s <= 0 and not until_saved:
                return [EndWrapup(event.agent)] if was_direct or was_armed else []
            self.wrapping[event.agent] = Wrapping(event.linkedid, event.at + limit_s if limit_s > 0 else math.inf, until_saved)
            return [StartWrapup(event.agent)]
        if isinstance(event, WrapupSaved):
            self.saved[event.agent] = event.caller
            wrapping = self.wrapping.get(event.agent)
            if wrapping is not None and wrapping.until_saved and wrapping.linkedid == event.caller:
                del self.wrapping[event.agent]
                return [] if wrapping.paused else [EndWrapup(event.agent)]
            return []
        if isinstance(event, Tick):
            done = [agent for agent, w in self.wrapping.items() if w.until <= event.at and not w.paused]
            for agent in done:
                del self.wrapping[agent]
            return [EndWrapup(agent) for agent in done]
        if event.state in (AgentState.PAUSED, AgentState.LOGGED_OUT):
            self.direct.pop(event.agent, None)  # they paused or left meanwhile: their own choice stands at the call's end
            self.armed.pop(event.agent, None)
        wrapping = self.wrapping.get(event.agent)
        if wrapping is not None and event.state is AgentState.PAUSED and wrapping.until_saved:
            wrapping.paused = True
        elif wrapping is not None and event.state in (AgentState.AVAILABLE, AgentState.PAUSED, AgentState.LOGGED_OUT):
            del self.wrapping[event.agent]
        return []

    def must_save(self, agent: str) -> str | None:
        """The call whose disposition the agent must save before taking calls again, if any."""
        wrapping = self.wrapping.get(agent)
        return wrapping.linkedid if wrapping is not None and wrapping.until_saved else None
