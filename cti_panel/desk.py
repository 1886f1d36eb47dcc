"""One way for the panel to set agents' states and move callers, whichever ACD runs the queues.

`AppQueueDesk` speaks to Asterisk's app_queue (QueueAdd/QueuePause/...),
`NativeDesk` to our own ACD; both satisfy `cti_panel.controls.AgentDesk`. The panel's side of the ACD: it knows
both, the ACD knows nothing of the panel.
"""

from __future__ import annotations

from collections.abc import Mapping

from acd.app_queue import AppQueueACD
from acd.native import NativeACD
from cti_panel.live import LiveCall
from kernel.exceptions import Refused


class AppQueueDesk:
    """Agent states through app_queue's manager actions."""

    def __init__(self, acd: AppQueueACD, skills: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self.acd, self.skills = acd, dict(skills or {})

    async def login(self, agent: str, interface: str, queues: list[str]) -> None:
        """QueueAdd in the agent's queues (already a member: nothing changes)."""
        await self.acd.login(agent, interface, queues, self.skills.get(agent))

    async def logout(self, agent: str, interface: str, queues: list[str]) -> None:
        """QueueRemove from every queue."""
        await self.acd.logout(interface, queues)

    async def pause(self, agent: str, interface: str, reason: str) -> None:
        """QueuePause with the reason."""
        await self.acd.pause(interface, reason)

    async def unpause(self, agent: str, interface: str) -> None:
        """QueuePause off."""
        await self.acd.unpause(interface)

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

    async def login(self, agent: str, interface: str, queues: list[str]) -> None:
        """Log in (the ACD leaves an agent already in as they are)."""
        self.acd.login(agent, interface, queues, dict(self.skills.get(agent, {})))

    async def logout(self, agent: str, interface: str, queues: list[str]) -> None:
        """Log out."""
        self.acd.logout(agent)

    async def pause(self, agent: str, interface: str, reason: str) -> None:
        """Pause with the reason."""
        self.acd.pause(agent, reason)

    async def unpause(self, agent: str, interface: str) -> None:
        """Available again."""
        self.acd.unpause(agent)

    async def call_back(self, channel: str, linkedid: str, queue: str, number: str, data: Mapping[str, str]) -> None:
        """The caller's place kept in our ACD; the agent is rung first when it comes."""
        self.acd.call_back_later(channel, linkedid, queue, number, dict(data))

    async def move(self, call: LiveCall, queue: str) -> None:
        """The caller keeps waiting, now for the other queue's agents."""
        self.acd.move_caller(call.channel or "", queue)

    async def priority(self, call: LiveCall, priority: int) -> None:
        """The caller's new priority."""
        self.acd.set_priority(call.channel or "", priority)
