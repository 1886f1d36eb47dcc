"""One way for the panel to set agents' states and move callers, whichever ACD runs the queues.

`AppQueueDesk` speaks to Asterisk's app_queue (QueueAdd/QueuePause/...),
`NativeDesk` to our own ACD; both satisfy `cti_panel.controls.AgentDesk`. The panel's side of the ACD: it knows
both, the ACD knows nothing of the panel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from acd.app_queue import AppQueueACD, Member
from acd.machine import StateChange, Tick, WrapupSaved
from acd.native import NativeACD
from acd.wrapup import (
    DIRECT_REASON,
    AfterCallWork,
    ArmWrapup,
    Command,
    DirectCall,
    HoldOff,
    PartEnded,
    QueueCallAnswered,
    StartWrapup,
)
from cti_panel.live import LiveCall
from kernel.exceptions import AMIError, Refused
from kernel.values import ACW_REASON, AgentState

log = logging.getLogger(__name__)


class AppQueueDesk:
    """Agent states through app_queue's manager actions; after-call work as a pause of ours (`acd.wrapup`)."""

    def __init__(
        self,
        acd: AppQueueACD,
        skills: Mapping[str, Mapping[str, int]] | None = None,
        wrapups: Mapping[str, tuple[float, bool]] | None = None,
        members: Mapping[str, Member] | None = None,
    ) -> None:
        self.acd, self.skills, self.members = acd, dict(skills or {}), members if members is not None else {}
        self.after_call_work = AfterCallWork(wrapups or {})
        self._locks: dict[str, asyncio.Lock] = {}  # one per agent: their pauses are sent in the order they were decided
        self.on_panel: set[str] = set()  # agents who logged in from the panel since the engine started: they save dispositions
        # agent -> the pause they asked for (until they are available again): it stands over any pause of ours, even one
        # decided before it whose QueuePause is sent after it, and before app_queue's event says it
        self.own_pause: dict[str, str] = {}

    async def direct_call(self, agent: str, linkedid: str) -> None:
        """The agent talks on a call app_queue did not give them (a transfer, their click-to-dial): paused meanwhile, unless
        already off the queues (paused, or no member)."""
        member = self.members.get(agent)
        paused = member is None or member.paused is not None
        await self._carry_out(self.after_call_work.step(DirectCall(agent, linkedid, paused)))

    async def answered(self, agent: str, linkedid: str, queue: str) -> None:
        """The agent answered a call of the queue: paused for its after-call work already, if it has any."""
        member = self.members.get(agent)
        paused = member is None or member.paused is not None or agent in self.own_pause
        await self._carry_out(self.after_call_work.step(QueueCallAnswered(agent, linkedid, queue, paused, agent in self.on_panel)))

    async def after_call(self, agent: str, linkedid: str, queue: str | None, at: float) -> None:
        """The agent's part of a call ended: their queue's after-call work begins (or a direct call's pause ends), unless
        they asked for a pause of their own meanwhile."""
        member = self.members.get(agent)
        own_pause = agent in self.own_pause or (member is not None and member.own_pause is not None)
        await self._carry_out(self.after_call_work.step(PartEnded(agent, linkedid, queue, at, agent in self.on_panel, own_pause)))

    async def wrapup_saved(self, agent: str, linkedid: str, at: float) -> None:
        """The agent saved the call's disposition: after-call work that waits for it ends."""
        await self._carry_out(self.after_call_work.step(WrapupSaved(agent, linkedid, at)))

    async def tick(self, at: float) -> None:
        """After-call work past its time limit ends."""
        await self._carry_out(self.after_call_work.step(Tick(at)))

    def on_state(self, change: StateChange) -> None:
        """An agent's state as app_queue reports it (one who leaves after-call work by hand is no longer in it)."""
        if change.state in (AgentState.AVAILABLE, AgentState.LOGGED_OUT):
            self.own_pause.pop(change.agent, None)
        self.after_call_work.step(change)

    def must_save(self, agent: str) -> bool:
        """Whether the agent must save a disposition before taking calls again."""
        return self.after_call_work.must_save(agent) is not None

    async def _carry_out(self, commands: list[Command]) -> None:
        """QueuePause on or off for each command; an agent's are sent one at a time, in the order they were decided."""
        for command in commands:
            member = self.members.get(command.agent)
            if member is None or not member.interface:
                continue
            async with self._lock(command.agent):
                if isinstance(command, ArmWrapup) and command.agent in self.own_pause:
                    continue  # they asked for a pause of their own since: it starts at the call's end
                try:
                    if isinstance(command, ArmWrapup | StartWrapup | HoldOff):
                        await self.acd.pause(member.interface, DIRECT_REASON if isinstance(command, HoldOff) else ACW_REASON)
                    else:
                        await self.acd.unpause(member.interface)
                except AMIError as exc:
                    log.warning("%s of %s not carried out: %s", type(command).__name__, command.agent, exc)

    async def login(self, agent: str, interface: str, queues: list[str]) -> None:
        """QueueAdd in the agent's queues (already a member: nothing changes), as one who saves dispositions."""
        await self.acd.login(agent, interface, queues, self.skills.get(agent))
        self.on_panel.add(agent)

    async def logout(self, agent: str, interface: str, queues: list[str]) -> None:
        """QueueRemove from every queue."""
        await self.acd.logout(interface, queues)
        self.on_panel.discard(agent)

    async def pause(self, agent: str, interface: str, reason: str) -> None:
        """QueuePause with the reason, in turn with the pauses of ours."""
        async with self._lock(agent):
            self.own_pause[agent] = reason
            await self.acd.pause(interface, reason)

    async def unpause(self, agent: str, interface: str) -> None:
        """QueuePause off, in turn with the pauses of ours."""
        async with self._lock(agent):
            self.own_pause.pop(agent, None)
            await self.acd.unpause(interface)

    def _lock(self, agent: str) -> asyncio.Lock:
        return self._locks.setdefault(agent, asyncio.Lock())

    async def call_back(self, channel: str, linkedid: str, queue: str, number: str, data: Mapping[str, str]) -> None:
        """A call back waiting in the app_queue queue (Originate through contrib's [callcenter-callback-queue])."""
        await self.acd.call_back(queue, number)

    async def move(self, call: LiveCall, queue: str) -> None:
        """Redirect the waiting caller into the other queue's extension."""
        await self.acd.move_caller(call.channel or "", queue)

    async def priority(self, call: LiveCall, priority: int) -> None:
        """QueueChangePriorityCaller."""
        if not call.queue:
            raise Refused(f"caller {call.linkedid!r} is in no queue")
        await self.acd.set_priority(call.queue, call.channel or "", priority)


class NativeDesk:
    """Agent states in our own ACD (no AMI action: the ACD decides who rings)."""

    def __init__(self, acd: NativeACD, skills: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.acd, self.skills = acd, dict(skills or {})
        self.direct: dict[str, str] = {}  # agent -> the call the ACD did not give them that they are on

    async def login(self, agent: str, interface: str, queues: list[str]) -> None:
        """Log in (the ACD leaves an agent already in as they are), as one who saves dispositions."""
        self.acd.login(agent, interface, queues, dict(self.skills.get(agent, {})), wraps_up=True)

    async def logout(self, agent: str, interface: str, queues: list[str]) -> None:
        """Log out."""
        self.acd.logout(agent)

    async def pause(self, agent: str, interface: str, reason: str) -> None:
        """Pause with the reason."""
        self.acd.pause(agent, reason)

    async def unpause(self, agent: str, interface: str) -> None:
        """Available again."""
        self.acd.unpause(agent)

    async def direct_call(self, agent: str, linkedid: str) -> None:
        """The agent talks on a call the ACD did not connect (a transfer, their click-to-dial): it offers them none meanwhile."""
        if agent not in self.direct:
            self.direct[agent] = linkedid
            self.acd.busy_elsewhere(agent, True)

    async def answered(self, agent: str, linkedid: str, queue: str) -> None:
        """Nothing to do: the ACD connected the call, and starts its after-call work itself when it ends."""

    async def after_call(self, agent: str, linkedid: str, queue: str | None, at: float) -> None:
        """A call the ACD did not connect is over: the agent is free for it again. (After a call it connected, the ACD
        starts after-call work itself, before it could offer another.)"""
        if self.direct.get(agent) == linkedid:
            del self.direct[agent]
            self.acd.busy_elsewhere(agent, False)

    async def wrapup_saved(self, agent: str, linkedid: str, at: float) -> None:
        """The agent saved the call's disposition: after-call work that waits for it ends."""
        self.acd.wrapup_saved(agent, linkedid)

    async def tick(self, at: float) -> None:
        """Nothing to do: the ACD's own tick ends after-call work past its time."""

    def on_state(self, change: StateChange) -> None:
        """Nothing to do: the ACD made the change."""

    def must_save(self, agent: str) -> bool:
        """Whether the agent must save a disposition before taking calls again."""
        return self.acd.must_save(agent)

    async def call_back(self, channel: str, linkedid: str, queue: str, number: str, data: Mapping[str, str]) -> None:
        """The caller's place kept in our ACD; the agent is rung first when it comes."""
        self.acd.call_back_later(channel, linkedid, queue, number, dict(data))

    async def move(self, call: LiveCall, queue: str) -> None:
        """The caller keeps waiting, now for the other queue's agents."""
        self.acd.move_caller(call.channel or "", queue)

    async def priority(self, call: LiveCall, priority: int) -> None:
        """The caller's new priority."""
        self.acd.set_priority(call.channel or "", priority)
