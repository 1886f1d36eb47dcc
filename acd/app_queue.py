"""app_queue mode: the ACD on top of an existing Asterisk queue setup.

Agents log in, out and pause through QueueAdd / QueueRemove / QueuePause (with
the reason); skills become penalties (level 10 -> penalty 0); and the live
state of every agent comes from app_queue's own events, so the panel and the
reports work on a PBX whose queues Asterisk runs. `AgentRegistry` is pure
(events in, state changes out, rebuilt from QueueStatus after a reconnect);
`AppQueueACD` sends the actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from acd.machine import StateChange
from acd.wrapup import DIRECT_REASON
from kernel.exceptions import ActionError
from kernel.values import ACW_REASON, AgentState
from pbx.client import AMIClient
from pbx.tracker import CALLBACK_QUEUE_VAR


@dataclass
class Member:
    """An agent as app_queue sees it: a member of one or more queues."""

    name: str
    interface: str
    queues: set[str] = field(default_factory=set)
    state: AgentState = AgentState.LOGGED_OUT
    reason: str | None = None
    caller: str | None = None
    since: float = 0.0
    paused: str | None = None  # paused in app_queue, with this reason ('' without one): the state after the call in progress

    @property
    def own_pause(self) -> str | None:
        """The pause the agent chose ('' for one without a reason), not one of the engine's (after-call work, a direct call)."""
        return self.paused if self.paused not in (None, ACW_REASON, DIRECT_REASON) else None


class AgentRegistry:
    """Agents' live state from Queue* and Agent* events; changed only by `feed` and `resync`."""

    def __init__(self) -> None:
        self.members: dict[str, Member] = {}
        self.ringing: dict[str, str] = {}  # the channel app_queue rings a member on (AgentCalled's DestChannel) -> member

    def _member(self, m: Mapping[str, str]) -> Member:
        name = m.get("MemberName") or m.get("Name") or m.get("Interface") or m.get("Location") or "?"
        interface = m.get("Interface") or m.get("Location") or ""
        member = self.members.get(name)
        if member is None:
            member = self.members[name] = Member(name, interface)
        member.interface = interface or member.interface
        return member

    def _set(
        self, member: Member, state: AgentState, t: float, out: list[StateChange], reason: str | None = None, caller: str | None = None
    ) -> None:
        member.caller = caller
        if member.state is state and member.reason == reason:
            return
        member.state, member.reason, member.since = state, reason, t
        out.append(StateChange(member.name, state, reason, t))

    def _idle_state(self, m: Mapping[str, str], member: Member | None = None) -> tuple[AgentState, str | None]:
        """A member's state from an event's fields: on a call whatever its pause (a pause asked for during a call starts
        when the call ends: its reason goes with the on-call state), else paused (after-call work when paused for `ACW_REASON`), else available."""
        if member is not None and "Paused" in m:
            member.paused = (m.get("PausedReason") or "") if m.get("Paused") == "1" else None
        if m.get("InCall") == "1" or m.get("Status") in ("2", "3"):
            return AgentState.ON_CALL, (member.own_pause or None) if member is not None else None  # a pause asked for during the call
        if m.get("Paused") == "1":
            return self._paused(m.get("PausedReason") or "")
        return AgentState.AVAILABLE, None

    @staticmethod
    def _paused(reason: str) -> tuple[AgentState, str | None]:
        if reason == DIRECT_REASON:
            return AgentState.ON_CALL, None
        return (AgentState.WRAP_UP, None) if reason == ACW_REASON else (AgentState.PAUSED, reason or None)

    def feed(self, m: Mapping[str, str], t: float) -> list[StateChange]:
        """Apply one AMI event; return the agent state changes it means."""
        out: list[StateChange] = []
        name = m.get("Event")
        if name in ("QueueMemberAdded", "QueueMemberPause"):
            member = self._member(m)
            member.queues.add(m.get("Queue", ""))
            state, reason = self._idle_state(m, member)
            self._set(member, state, t, out, reason, member.caller if state is AgentState.ON_CALL else None)
        elif name == "QueueMemberRemoved":
            member = self._member(m)
            member.queues.discard(m.get("Queue", ""))
            if not member.queues:
                self._set(member, AgentState.LOGGED_OUT, t, out)
        elif name == "QueueMemberStatus":
            member = self._member(m)
            member.queues.add(m.get("Queue", ""))
            if member.state not in (AgentState.RINGING,) or m.get("Status") in ("2", "3"):
                state, reason = self._idle_state(m, member)
                if not (member.state is AgentState.ON_CALL and state is AgentState.ON_CALL):
                    self._set(member, state, t, out, reason, member.caller if state is AgentState.ON_CALL else None)
        elif name == "AgentCalled":
            member = self._member(m)
            self.ringing[m.get("DestChannel", "")] = member.name
            self._set(member, AgentState.RINGING, t, out, caller=m.get("Linkedid") or m.get("Uniqueid"))
        elif name == "DialEnd" and m.get("DestChannel", "") in self.ringing:
            # the ring is over; unanswered, whatever ended it (the caller hung up or left, another member answered, the
            # ring timed out), the member is free again: Asterisk sends no AgentRingNoAnswer when the caller hangs up
            member = self.members[self.ringing.pop(m.get("DestChannel", ""))]
            if m.get("DialStatus") != "ANSWER":
                self._ring_over(member, t, out)
        elif name == "AgentRingNoAnswer":
            self._ring_over(self._member(m), t, out)
        elif name == "AgentConnect":
            self._set(self._member(m), AgentState.ON_CALL, t, out, caller=m.get("Linkedid") or m.get("Uniqueid"))
        elif name == "AgentComplete":
            member = self._member(m)
            if member.state is AgentState.ON_CALL:
                self._free(member, t, out)
        return out

    def _ring_over(self, member: Member, t: float, out: list[StateChange]) -> None:
        if member.state is AgentState.RINGING:
            self._free(member, t, out)

    def _free(self, member: Member, t: float, out: list[StateChange]) -> None:
        """A ring or a call is over: the member goes back to their pause, if they had one, else is available."""
        state, reason = self._paused(member.paused) if member.paused is not None else (AgentState.AVAILABLE, None)
        self._set(member, state, t, out, reason)

    def resync(self, members: list[Mapping[str, str]], t: float) -> list[StateChange]:
        """Rebuild from QueueStatus's QueueMember items after a (re)connect: agents gone in the gap are logged out."""
        out: list[StateChange] = []
        seen: dict[str, set[str]] = {}
        self.ringing.clear()
        for m in members:
            member = self._member(m)
            seen.setdefault(member.name, set()).add(m.get("Queue", ""))
            state, reason = self._idle_state(m, member)
            if member.state is AgentState.RINGING and state is AgentState.AVAILABLE:
                continue
            self._set(member, state, t, out, reason, member.caller if state is AgentState.ON_CALL else None)
        for member in self.members.values():
            member.queues = seen.get(member.name, set())
            if not member.queues:
                self._set(member, AgentState.LOGGED_OUT, t, out)
        return out


def penalty(level: int) -> int:
    """A skill level (1-10, 10 best) as an app_queue penalty (0 best)."""
    return max(0, min(10, 10 - level))


class AppQueueACD:
    """Agent actions for app_queue: login, logout and pause with a reason, sent over AMI."""

    def __init__(self, client: AMIClient, queue_skills: Mapping[str, str] | None = None, queue_context: str = "callcenter-queues") -> None:
        self.client = client
        self.queue_skills = dict(queue_skills or {})
        self.queue_context = queue_context  # where a queue's name is an extension that queues the caller ([panel] queue_context)

    async def login(self, name: str, interface: str, queues: list[str], skills: Mapping[str, int] | None = None) -> None:
        """QueueAdd in each queue, with the penalty of the agent's level in that queue's skill."""
        for queue in queues:
            skill = self.queue_skills.get(queue)
            level = (skills or {}).get(skill, 10) if skill else 10
            try:
                await self.client.send_action(
                    {
                        "Action": "QueueAdd",
                        "Queue": queue,
                        "Interface": interface,
                        "MemberName": name,
                        "Penalty": str(penalty(level)),
                        "Paused": "false",
                    }
                )
            except ActionError as exc:
                if "Already there" not in exc.message:
                    raise

    async def memberships(self, interface: str) -> list[str]:
        """The queues the PBX itself says the interface is a member of (QueueStatus), configured or not."""
        replies = await self.client.send_action({"Action": "QueueStatus", "Member": interface}, as_list=True)
        return [
            m["Queue"]
            for m in replies
            if m.get("Event") == "QueueMember" and interface in (m.get("Location"), m.get("StateInterface"), m.get("Interface"))
        ]

    async def logout(self, interface: str, queues: list[str]) -> None:
        """QueueRemove from each of `queues` and from every other queue the PBX has the interface in."""
        for queue in dict.fromkeys([*queues, *await self.memberships(interface)]):
            try:
                await self.client.send_action({"Action": "QueueRemove", "Queue": queue, "Interface": interface})
            except ActionError as exc:
                if "Not there" not in exc.message:
                    raise

    async def pause(self, interface: str, reason: str) -> None:
        """QueuePause in every queue, with the reason reports group pause time by."""
        await self.client.send_action({"Action": "QueuePause", "Interface": interface, "Paused": "true", "Reason": reason})

    async def call_back(
        self,
        queue: str,
        number: str,
        context: str = "callcenter-callback-queue",
        dial_context: str = "callcenter-callback",
        wait_s: int = 3600,
    ) -> None:
        """A call back waits in the queue as a caller would (app_queue's own place and figures); the agent who takes it dials the number.

        The Local channel's queue half rings unanswered while it waits, so the Originate's answer (OriginateResponse) comes
        when an agent takes it, maybe an hour later: done is Asterisk's word that the call is placed (`as_list=False`).
        """
        await self.client.send_action(
            {
                "Action": "Originate",
                "Channel": f"Local/{queue}@{context}/n",
                "Context": dial_context,
                "Exten": number,
                "Priority": "1",
                "CallerID": f"<{number}>",
                "Async": "true",
                "Timeout": str(wait_s * 1000),
                "Variable": f"{CALLBACK_QUEUE_VAR}={queue}",
            },
            as_list=False,
        )

    async def move_caller(self, channel: str, queue: str) -> None:
        """Supervisor: send a waiting caller to another queue (it keeps its call, not its place)."""
        await self.client.send_action(
            {"Action": "Redirect", "Channel": channel, "Context": self.queue_context, "Exten": queue, "Priority": "1"}
        )

    async def set_priority(self, queue: str, channel: str, priority: int) -> None:
        """Supervisor: change a waiting caller's priority (app_queue serves higher priorities first)."""
        await self.client.send_action({"Action": "QueueChangePriorityCaller", "Queue": queue, "Caller": channel, "Priority": str(priority)})

    async def unpause(self, interface: str) -> None:
        """Back to taking calls in every queue."""
        await self.client.send_action({"Action": "QueuePause", "Interface": interface, "Paused": "false"})
