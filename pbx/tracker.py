"""Call tracker: AMI events in, domain events and finished call records out.

Pure and synchronous: `CallTracker.feed(message, t)` is given one AMI event
and the time it happened and returns the domain events it implies. Channels
are grouped into calls by Linkedid, which Asterisk keeps across Local channel
pairs (`;1`/`;2`), queue agent legs and transfers.

Reading real Asterisk (see ../shared/ami-traces/ and tests/data/traces/):
- The *root* channel is the one whose Uniqueid equals its Linkedid. When it is
  a Local `;1` half (a call placed by Originate), its `;2` half is the
  *inbound* channel that runs the IVR and the queue; otherwise the root is the
  inbound channel itself (a SIP trunk call).
- Who hung up: app_queue says it in AgentComplete's Reason; otherwise the first
  hangup of the call decides. A HangupRequest on the inbound channel is the far
  end (the caller) going away, a SoftHangupRequest there is the dialplan or a
  manager hanging up (the system); anything on an agent leg is the agent.
- A queue timeout also raises QueueCallerAbandon (app_queue's record_abandoned);
  it differs from a real abandon in that the caller has not hung up yet, and in
  ``QUEUESTATUS=TIMEOUT`` when VarSet events are readable.
- After a (re)connect `resync` rebuilds calls from CoreShowChannels and
  QueueStatus, and from Asterisk's queue_log visits when the engine can read
  it: a call joined mid-call is stored, marked `resynced`, with what the PBX
  could still tell (what it cannot is null). A call first seen mid-stream
  with no resync (a recorded trace cut in the middle) ends without a record
  (counted in `stats['partial']`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kernel.records import CallRecord, DomainEvent, Leg, Visit
from kernel.values import HANDED_ON, HangupBy, LegEnd, Outcome
from pbx.agi import agi_env

# Transfer and spy events name their channels with a prefix; the call is the transferee's (the spied-on for a spy). Any other
# event without a plain Channel is not one Asterisk sends, and is ignored.
_PARTY_PREFIXES = ("Transferee", "OrigTransferer", "Transferer", "Spyer")
_PARTY_EVENTS = {"BlindTransfer", "AttendedTransfer", "ChanSpyStart"}
# A Timestamp is believed when it is a time a record can print (ISO 8601 stops at year 9999); else the arrival time is used.
_LAST_TIME = 253402300799.0
# A call back (the native ACD's Originate to the agent, then the caller; or one waiting in an app_queue queue) carries
# these channel variables, so the agent's screen pops with the caller's record and the call is stored as a call back.
CALLBACK_QUEUE_VAR = "CALLCENTER_CALLBACK_QUEUE"
CALLBACK_AGENT_VAR = "CALLCENTER_CALLBACK_AGENT"
# The IVR sets this (to the queue) on a caller who asked to be called back, just before hanging up: stored as exit_key there.
CALLBACK_REQUEST_VAR = "CALLCENTER_CALLBACK_REQUEST"
# The panel's click-to-dial (Originate to the agent's phone, then the number) carries the agent's name: the call is theirs,
# connected when the number answers, so the panel's call controls work on it and it is stored with the agent.
DIAL_AGENT_VAR = "CALLCENTER_DIAL_AGENT"

# app_queue's events of a queue visit; those of an attended transfer's consultation leg are not the caller's (`_consulting`).
_QUEUE_EVENTS = {
    "QueueCallerJoin",
    "AgentCalled",
    "AgentRingNoAnswer",
    "AgentConnect",
    "AgentComplete",
    "QueueCallerAbandon",
    "QueueCallerLeave",
}


def _consulting(call: _Call, m: Mapping[str, str]) -> bool:
    """A queue event on another channel of an answered call: the agent's consultation leg of an attended transfer to a queue
    (the caller waits with the first agent until it completes; a blind transfer re-queues the caller's own channel). Once
    the transfer completes, that channel carries the caller's leg and its events are the caller's."""
    return (
        call.visit.answered_at is not None and m.get("Channel") not in (call.root, call.inbound) and m.get("Uniqueid") not in call.adopted
    )


_QUEUESTATUS_OUTCOME = {
    "TIMEOUT": Outcome.TIMEOUT,
    "FULL": Outcome.FULL,
    "JOINEMPTY": Outcome.EXIT_EMPTY,
    "LEAVEEMPTY": Outcome.EXIT_EMPTY,
    "JOINUNAVAIL": Outcome.EXIT_EMPTY,
    "LEAVEUNAVAIL": Outcome.EXIT_EMPTY,
}


def event_time(message: Mapping[str, str], arrival: float) -> float:
    """When an event happened: Asterisk's Timestamp header if on, else when it arrived."""
    try:
        stamp = float(message.get("Timestamp") or "nan")
    except ValueError:
        return arrival
    return stamp if 0.0 < stamp <= _LAST_TIME else arrival


def agent_for(phones: Mapping[str, str], channel: str) -> str | None:
    """Which agent's phone (interface -> agent) a channel is: PJSIP/1001 -> PJSIP/1001-000001, Local/2002@phones/n ->
    Local/2002@phones-0001;1."""
    for interface, agent in phones.items():
        base = interface[:-2] if interface.endswith("/n") else interface
        if base and channel.startswith(base + "-"):
            return agent
    return None


def local_partner(channel: str) -> str | None:
    """The other half of a Local channel pair (`;1` <-> `;2`), or None."""
    if channel.startswith("Local/"):
        if channel.endswith(";1"):
            return channel[:-1] + "2"
        if channel.endswith(";2"):
            return channel[:-1] + "1"
    return None


@dataclass(slots=True)
class _Caller:
    """Who called and what they keyed in the IVR (before any queue)."""

    number: str | None = None
    name: str | None = None
    dnid: str | None = None
    digits: list[str] = field(default_factory=list)
    announced: bool = False
    hiding: bool = False  # keying a sensitive input (the IVR says): those digits are neither kept nor told


@dataclass(slots=True)
class _Visit:
    """The caller's time in a queue and with the agent who answered: the queue, wait, why they left, the agent, hold."""

    queue: str | None = None
    enqueued_at: float | None = None
    left: Outcome | None = None
    left_at: float | None = None
    keyed_in_queue: bool = False
    answered_at: float | None = None
    agent: str | None = None
    interface: str | None = None
    completed_at: float | None = None
    complete_reason: str | None = None
    held_since: dict[str, float] = field(default_factory=dict)
    hold_s: float = 0.0
    status: str | None = None  # QUEUESTATUS, when the Queue() application ended by itself


@dataclass(slots=True)
class _OpenLeg:
    queue: str | None
    enqueued_at: float | None = None
    agent: str | None = None
    answered_at: float | None = None
    hold_s: float = 0.0
    callid: str | None = None


@dataclass(slots=True)
class _Legs:
    """The call's legs as they happen: one per queue visit, or per agent reached without a queue (after a transfer)."""

    done: list[Leg] = field(default_factory=list)
    open: _OpenLeg | None = None
    transferred_at: float | None = None  # the caller went on from a transfer, and no queue or agent has taken them yet

    def join(self, queue: str | None, t: float, held: Mapping[str, float], callid: str | None = None) -> None:
        """Into a queue: the leg before it, if any, was moved on (an AMI Redirect: a transfer's own events close its leg first)."""
        if self.open is not None:
            self.close(t, LegEnd.MOVED, held)
        self.open, self.transferred_at = _OpenLeg(queue, t, callid=callid), None

    def has(self, v: Visit) -> _OpenLeg | Leg | None:
        """The leg that is this queue_log visit, if the call has it: the open leg of that queue and channel, or a finished
        one that entered then (queue_log times are whole seconds)."""
        if self.open is not None and self.open.queue == v.queue and self.open.callid in (v.callid, None):
            return self.open
        for leg in self.done:
            if (
                leg.queue == v.queue
                and leg.callid in (v.callid, None)
                and leg.enqueued_at is not None
                and abs(leg.enqueued_at - v.entered) < 2
            ):
                return leg
        return None

    def answer(self, agent: str | None, t: float, queue: str | None, held: Mapping[str, float]) -> None:
        """An agent takes the caller: the queue's leg is answered; a call with no leg open starts one (a call back, a
        click-to-dial, the target of a transfer)."""
        if self.open is not None and self.open.answered_at is not None:
            self.close(t, LegEnd.TRANSFERRED, held)
        if self.open is None:
            self.open = _OpenLeg(queue)
        self.open.agent, self.open.answered_at, self.transferred_at = agent, t, None

    def complete(self, queue: str | None, t: float, how: LegEnd, held: Mapping[str, float]) -> None:
        """app_queue's AgentComplete ends the answered leg of its queue; after a transfer it can come once the caller has
        already joined the next queue, whose leg it must leave alone."""
        if self.open is not None and self.open.answered_at is not None and self.open.queue == queue:
            self.close(t, how, held)

    def transfer(self, how: LegEnd, t: float, held: Mapping[str, float]) -> None:
        """A transfer succeeded: the agent's leg ends; the caller is with whoever the transfer reached until a queue or an
        agent takes them (or the call ends). Asterisk can tell a blind transfer after the caller has already joined the
        queue it led to (two threads): a transfer is of an answered leg, so it is the last one's, however it was closed."""
        last = self.done[-1] if self.done else None
        if (
            self.open is not None
            and self.open.answered_at is None
            and last is not None
            and last.answered_at is not None
            and last.ended_by in (LegEnd.MOVED, LegEnd.TRANSFERRED, LegEnd.COMPLETED)
        ):
            last.ended_by = how
            return
        self.close(t, how, held)
        self.transferred_at = t

    def unhold(self, since: float, t: float) -> None:
        """A hold from `since` to `t`: the part inside the open, answered leg is that leg's."""
        if self.open is not None and self.open.answered_at is not None:
            self.open.hold_s += max(0.0, t - max(since, self.open.answered_at))

    def close(self, t: float, how: LegEnd, held: Mapping[str, float]) -> None:
        """End the open leg (holds still running count up to `t`). With none open, a transfer corrects how the last leg
        ended: app_queue's AgentComplete races the transfer, saying "transfer" or even "agent" first."""
        leg = self.open
        if leg is None:
            last = self.done[-1] if self.done else None
            if (
                how in HANDED_ON
                and last is not None
                and last.answered_at is not None
                and last.ended_by in (LegEnd.TRANSFERRED, LegEnd.COMPLETED)
            ):
                last.ended_by = how
            return
        for since in held.values():
            self.unhold(since, t)
        answered = leg.answered_at
        until = answered if answered is not None else t
        self.done.append(
            Leg(
                queue=leg.queue,
                agent=leg.agent,
                enqueued_at=leg.enqueued_at,
                answered_at=answered,
                ended_at=t,
                wait_s=until - leg.enqueued_at if leg.enqueued_at is not None else None,
                talk_s=max(0.0, t - answered - leg.hold_s) if answered is not None else None,
                hold_s=leg.hold_s,
                ended_by=LegEnd.MOVED if answered is None and how in HANDED_ON else how,
                callid=leg.callid,
            )
        )
        self.open = None

    def finish(self, t: float, left: Outcome | None, held: Mapping[str, float]) -> list[Leg]:
        """The call ended: its open leg ends with it, as does the time with whoever a transfer reached."""
        if self.open is not None:
            answered = self.open.answered_at is not None
            self.close(t, LegEnd.COMPLETED if answered else LegEnd(left if left in _UNANSWERED else Outcome.ABANDONED), held)
        elif self.transferred_at is not None:
            self.open = _OpenLeg(None, agent=None, answered_at=self.transferred_at)
            self.close(t, LegEnd.COMPLETED, held)
        return self.done


_UNANSWERED = {Outcome.ABANDONED, Outcome.TIMEOUT, Outcome.EXIT_KEY, Outcome.EXIT_EMPTY, Outcome.FULL, Outcome.MOVED}


@dataclass(slots=True)
class _Ending:
    """What decides who hung up and why."""

    first_hangup: tuple[str, str] | None = None
    shutdown: bool = False
    hangup_cause: int | None = None
    handed: set[str] = field(default_factory=set)  # the channels of agents who transferred the call: their hang-up is not its end


@dataclass(slots=True)
class _Call:
    """One call in progress: its channels, what kind of call it is, and the three parts above."""

    linkedid: str
    started_at: float
    partial: bool
    root: str | None = None
    inbound: str | None = None
    channels: dict[str, str] = field(default_factory=dict)
    agent_channels: set[str] = field(default_factory=set)
    dialed_out: bool = False
    spying: bool = False
    callback_queue: str | None = None
    resynced: bool = False
    caller: _Caller = field(default_factory=_Caller)
    visit: _Visit = field(default_factory=_Visit)
    ending: _Ending = field(default_factory=_Ending)
    legs: _Legs = field(default_factory=_Legs)
    uniqueids: set[str] = field(default_factory=set)  # every channel it ever had (queue_log names visits by them)
    parked_at: float | None = None  # ended while a resync was due: finished by it, with what queue_log adds
    consulted_at: float | None = None  # when the agent began consulting someone (an attended transfer), while the caller waits
    consult: _OpenLeg | None = None  # an attended transfer's consultation in a queue, the caller's next leg if it completes
    consult_agents: set[str] = field(default_factory=set)
    adopted: set[str] = field(default_factory=set)
    last_at: float = 0.0

    def at(self, t: float) -> float:
        """The call's clock never runs back: an event stamped before the last one (a wrong Timestamp) counts at the last
        one's time, so no duration of the call is negative."""
        self.last_at = max(self.last_at, t, self.started_at)
        return self.last_at


def _known(value: str | None) -> str | None:
    if not value or value in ("<unknown>", "unknown", "s"):
        return None
    return value


class CallTracker:
    """Live calls keyed by Linkedid, fed AMI events by the event loop only."""

    def __init__(self, phones: Callable[[], Mapping[str, str]] = dict) -> None:
        """`phones`: the logged-in agents' interfaces (interface -> agent), to name the agent a transfer dials directly."""
        self.phones = phones
        self.calls: dict[str, _Call] = {}
        self._by_uniqueid: dict[str, _Call] = {}
        # Channels that hung up: Asterisk still sends some events for them (a NewCallerid after an attended transfer's
        # Hangup), which must not bring them back into their call and keep it open. The last 10,000 are enough.
        self._gone: dict[str, None] = {}
        self.stats = {"events": 0, "finished": 0, "partial": 0, "ignored": 0}
        self.resync_due = False
        self._handlers: dict[str, Callable[[_Call, Mapping[str, str], float, list[DomainEvent]], None]] = {
            "Newchannel": self._on_newchannel,
            "NewCallerid": self._on_callerid,
            "DTMFEnd": self._on_dtmf,
            "QueueCallerJoin": self._on_queue_join,
            "AgentCalled": self._on_agent_called,
            "AgentRingNoAnswer": self._on_ring_noanswer,
            "AgentConnect": self._on_agent_connect,
            "AgentComplete": self._on_agent_complete,
            "QueueCallerAbandon": self._on_abandon,
            "QueueCallerLeave": self._on_queue_leave,
            "VarSet": self._on_varset,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "Hold": self._on_hold,
            "Unhold": self._on_unhold,
            "BlindTransfer": self._on_transfer,
            "AttendedTransfer": self._on_transfer,
            "HangupRequest": self._on_hangup_request,
            "SoftHangupRequest": self._on_hangup_request,
            "Hangup": self._on_hangup,
            "AsyncAGIStart": self._on_agi_start,
            "ChanSpyStart": self._on_spy,
        }

    def feed(self, message: Mapping[str, str], t: float) -> list[DomainEvent]:
        """Apply one AMI event that happened at `t`; return what it means for its call."""
        self.stats["events"] += 1
        handler = self._handlers.get(message.get("Event", ""))
        if handler is None:
            return []
        call = self._call_for(message, t)
        if call is None:
            self.stats["ignored"] += 1
            return []
        if message.get("Event", "") in _QUEUE_EVENTS and _consulting(call, message):
            self._on_consult(call, message, call.at(t))
            return []
        out: list[DomainEvent] = []
        handler(call, message, call.at(t), out)
        return out

    def resync(
        self, channels: list[Mapping[str, str]], queue_entries: list[Mapping[str, str]], t: float, visits: list[Visit] | tuple[()] = ()
    ) -> list[DomainEvent]:
        """Rebuild live state after a (re)connect from CoreShowChannel and QueueEntry lists, and Asterisk's queue_log
        `visits` of the gap (finished and still open) when the engine can read it.

        Every call is flagged `resynced`. A call whose channels all vanished during the gap ends now, with what queue_log
        says happened to it (answered, by whom, who hung up) or, without it, what was known before the gap; channels
        never seen before make calls joined mid-call, stored at their end like any other. Visits of channels this
        tracker never saw are left for the caller to store (`knows`).
        """
        out: list[DomainEvent] = []
        by_callid: dict[str, list[Visit]] = {}
        for v in visits:
            by_callid.setdefault(v.callid, []).append(v)
        listed = {m["Uniqueid"]: m for m in channels if m.get("Uniqueid") and m.get("Linkedid") and m.get("Channel")}
        # Calls first seen by an event that came before this snapshot (their start fell in the gap) are joined mid-call too.
        for call in [c for c in self.calls.values() if c.partial]:
            self._join_mid_call(call, listed, t, out)
        self.resync_due = False
        for call in list(self.calls.values()):
            call.resynced = True
            self._recover(call, [v for u in call.uniqueids for v in by_callid.get(u, ())], t, out)
            if call.parked_at is not None:
                self._finish(call, call.parked_at, out)
                continue
            for uniqueid in [u for u in call.channels if u not in listed]:
                del call.channels[uniqueid]
                self._by_uniqueid.pop(uniqueid, None)
                self._forget(uniqueid)
            if not call.channels:
                self._finish(call, call.at(t), out)
        grown: dict[str, _Call] = {}
        for uniqueid, m in listed.items():
            if uniqueid not in self._by_uniqueid:
                seen = self._call_for(m, t)
                if seen is not None:
                    grown[seen.linkedid] = seen
        for call in grown.values():
            if call.partial:
                self._join_mid_call(call, listed, t, out)
            self._recover(call, [v for u in call.uniqueids for v in by_callid.get(u, ())], t, out)
        for m in queue_entries:
            waiting = self._by_uniqueid.get(m.get("Uniqueid", ""))
            if waiting is not None and (waiting.visit.queue != m.get("Queue") or waiting.visit.enqueued_at is None):
                waiting.visit.queue = m.get("Queue")
                waiting.visit.enqueued_at = t - (_float(m.get("Wait")) or 0.0)
                waiting.visit.left = waiting.visit.left_at = None
                waiting.legs.join(waiting.visit.queue, waiting.visit.enqueued_at, waiting.visit.held_since, m.get("Uniqueid"))
                waiting.caller.number = waiting.caller.number or _known(m.get("CallerIDNum"))
                self._emit(
                    out,
                    "queue_joined",
                    waiting,
                    t,
                    queue=waiting.visit.queue,
                    position=_int(m.get("Position")),
                    resynced=True,
                    channel=waiting.inbound,
                )
        return out

    def _join_mid_call(self, call: _Call, listed: Mapping[str, Mapping[str, str]], t: float, out: list[DomainEvent]) -> None:
        """A call whose start the engine missed: its start and caller from the channels CoreShowChannels lists."""
        call.partial, call.resynced = False, True
        durations = [_duration(m.get("Duration")) for u, m in listed.items() if u in call.channels]
        call.started_at = min([call.started_at, *(t - d for d in durations)])
        root = listed.get(call.linkedid)
        if root is not None and call.root is None:
            self._set_root(call, root["Channel"])
            call.caller.number = call.caller.number or _known(root.get("CallerIDNum"))
            call.caller.name = call.caller.name or _known(root.get("CallerIDName"))
        if call.caller.number and not call.caller.announced:
            call.caller.announced = True
            self._emit(
                out, "call_started", call, t, caller_number=call.caller.number, caller_name=call.caller.name, dnid=None, resynced=True
            )

    def knows(self, uniqueid: str) -> bool:
        """Whether this channel is, or was, one of the calls this tracker followed (its queue_log visits are theirs)."""
        return uniqueid in self._by_uniqueid or uniqueid in self._gone

    def _forget(self, uniqueid: str) -> None:
        self._gone[uniqueid] = None
        if len(self._gone) > 10_000:
            del self._gone[next(iter(self._gone))]

    def _recover(self, call: _Call, visits: list[Visit], t: float, out: list[DomainEvent]) -> None:
        """Apply what queue_log says happened to the call while the engine could not see it (whole seconds; a visit
        already followed live adds nothing)."""
        for v in sorted(visits, key=lambda v: (v.entered, v.visit)):
            leg = call.legs.has(v)
            if leg is not None and leg.callid is None:  # a leg seen only from its answer on (it began in the gap)
                leg.callid = v.callid
                if leg.enqueued_at is None:
                    leg.enqueued_at = float(v.entered)
                    if isinstance(leg, Leg) and leg.wait_s is None and leg.answered_at is not None:
                        leg.wait_s = max(0.0, leg.answered_at - leg.enqueued_at)
                    if call.visit.enqueued_at is None and call.visit.queue == v.queue:
                        call.visit.enqueued_at = float(v.entered)
            if isinstance(leg, Leg):
                continue
            if leg is None:
                call.visit = _Visit(queue=v.queue, enqueued_at=float(v.entered), held_since=call.visit.held_since)
                call.legs.join(v.queue, float(v.entered), call.visit.held_since, v.callid)
                leg = call.legs.open
            if leg is None:
                continue
            entered = leg.enqueued_at if leg.enqueued_at is not None else float(v.entered)
            if leg.answered_at is None and v.agent is not None and v.wait_s is not None:
                answered = call.at(entered + v.wait_s)
                call.visit.answered_at, call.visit.agent, call.visit.left, call.visit.left_at = (
                    answered,
                    v.agent,
                    Outcome.ANSWERED,
                    answered,
                )
                call.legs.answer(v.agent, answered, v.queue, call.visit.held_since)
                agent_channel = call.channels.get(v.agent_channel_id or "")
                self._agent_legs(call, agent_channel)
                if v.ended is None:  # still talking: the panel shows the agent on it
                    self._emit(
                        out,
                        "answered",
                        call,
                        t,
                        queue=v.queue,
                        agent=v.agent,
                        interface=None,
                        wait_s=v.wait_s,
                        channel=call.inbound,
                        agent_channel=agent_channel,
                        resynced=True,
                    )
            if v.ended is None or v.outcome is None:
                continue
            if v.outcome is Outcome.ANSWERED and call.visit.answered_at is not None:
                ended = call.visit.answered_at + v.talk_s if v.talk_s is not None else float(v.ended)
                call.visit.completed_at, call.visit.complete_reason = ended, v.completed_by
                call.legs.complete(v.queue, ended, LegEnd.TRANSFERRED if v.transferred else LegEnd.COMPLETED, call.visit.held_since)
            elif v.outcome is not Outcome.ANSWERED:
                left = entered + v.wait_s if v.wait_s is not None else float(v.ended)
                call.visit.left, call.visit.left_at = v.outcome, left
                if leg is call.legs.open:
                    call.legs.close(left, LegEnd(v.outcome), call.visit.held_since)
                elif isinstance(leg, Leg) and leg.answered_at is None:  # ended live, but the events said less than queue_log
                    leg.ended_by = LegEnd(v.outcome)

    def acd(self, kind: str, linkedid: str, t: float, **data: Any) -> list[DomainEvent]:
        """What our own engine did with a call, which Asterisk's events would otherwise say:
        'joined' (queue), 'ringing' and 'connected' (agent), 'left' with a reason (native ACD: abandoned, timeout, full, exit_key for a
        call back, moved); 'hold', 'unhold' (the panel's hold); 'sensitive' on or off (the IVR collects digits that must not
        be stored)."""
        call = self.calls.get(linkedid)
        out: list[DomainEvent] = []
        if call is None:
            return out
        t = call.at(t)
        if kind == "joined":
            call.visit.queue, call.visit.enqueued_at, call.visit.left, call.visit.left_at = data["queue"], t, None, None
            call.legs.join(call.visit.queue, t, call.visit.held_since)
            self._emit(out, "queue_joined", call, t, queue=call.visit.queue, position=data.get("position"), channel=call.inbound)
        elif kind == "ringing":
            self._emit(
                out,
                "agent_ringing",
                call,
                t,
                queue=call.visit.queue,
                agent=data["agent"],
                interface=data.get("interface"),
                channel=call.inbound,
            )
        elif kind == "connected":
            call.visit.answered_at, call.visit.agent, call.visit.left, call.visit.left_at = t, data["agent"], Outcome.ANSWERED, t
            call.legs.answer(call.visit.agent, t, call.visit.queue, call.visit.held_since)
            wait = t - call.visit.enqueued_at if call.visit.enqueued_at is not None else None
            self._emit(
                out,
                "answered",
                call,
                t,
                queue=call.visit.queue,
                agent=call.visit.agent,
                interface=data.get("interface"),
                wait_s=wait,
                channel=call.inbound,
                agent_channel=data.get("agent_channel"),
            )
        elif kind == "sensitive":
            call.caller.hiding = bool(data["on"])
        elif kind in ("hold", "unhold"):
            message = {"Channel": "panel"}
            (self._on_hold if kind == "hold" else self._on_unhold)(call, message, t, out)
        elif kind == "left" and call.visit.answered_at is None:
            call.visit.left, call.visit.left_at = Outcome(data["reason"]), t
            call.legs.close(t, LegEnd(call.visit.left), call.visit.held_since)
            if call.visit.queue is not None:
                wait = t - call.visit.enqueued_at if call.visit.enqueued_at is not None else None
                self._emit(out, "queue_left", call, t, queue=call.visit.queue, reason=call.visit.left, wait_s=wait)
        return out

    def open_calls(self) -> list[str]:
        """Linkedids of calls still in progress."""
        return list(self.calls)

    def _call_for(self, m: Mapping[str, str], t: float) -> _Call | None:
        prefix = (
            "" if "Channel" in m or m.get("Event") not in _PARTY_EVENTS else next((p for p in _PARTY_PREFIXES if p + "Channel" in m), "")
        )
        linkedid = m.get(prefix + "Linkedid")
        uniqueid = m.get(prefix + "Uniqueid")
        channel = m.get(prefix + "Channel")
        if not linkedid or not uniqueid or not channel or uniqueid in self._gone:
            return None
        if prefix:
            return self._by_uniqueid.get(uniqueid) or self.calls.get(linkedid)
        call = self.calls.get(linkedid)
        if call is None:
            is_root_start = m.get("Event") == "Newchannel" and uniqueid == linkedid
            call = _Call(linkedid=linkedid, started_at=t, partial=not is_root_start)
            self.calls[linkedid] = call
        if uniqueid not in call.channels:
            old = self._by_uniqueid.get(uniqueid)
            if old is not None and old is not call:
                old.channels.pop(uniqueid, None)
            call.channels[uniqueid] = channel
            call.uniqueids.add(uniqueid)
            self._by_uniqueid[uniqueid] = call
        else:
            call.channels[uniqueid] = channel
        return call

    def _emit(self, out: list[DomainEvent], kind: str, call: _Call, t: float, **data: Any) -> None:
        out.append(DomainEvent(kind, call.linkedid, t, data))

    def _caller_side(self, call: _Call, channel: str) -> bool:
        return channel not in call.agent_channels

    @staticmethod
    def _set_root(call: _Call, channel: str) -> None:
        call.root = channel
        call.inbound = (local_partner(channel) if channel.endswith(";1") else None) or channel

    def _on_newchannel(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        if call.visit.answered_at is not None and any(channel in call.agent_channels for channel in call.visit.held_since):
            call.consulted_at = call.consulted_at or t  # a channel of the call while the agent holds it: a consultation
        if m["Uniqueid"] == call.linkedid:
            self._set_root(call, m["Channel"])
            call.caller.dnid = _known(m.get("Exten"))
            self._on_callerid(call, m, t, out)

    def _on_callerid(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        if m["Channel"] not in (call.root, call.inbound):
            return
        number = _known(m.get("CallerIDNum"))
        if number:
            call.caller.number = number
            call.caller.name = _known(m.get("CallerIDName")) or call.caller.name
        if not call.caller.announced and not call.partial and call.caller.number:
            call.caller.announced = True
            self._emit(out, "call_started", call, t, caller_number=call.caller.number, caller_name=call.caller.name, dnid=call.caller.dnid)

    def _on_agi_start(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        dnid = agi_env(m).get("agi_dnid")
        if _known(dnid):
            call.caller.dnid = dnid

    def _on_dtmf(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        if m.get("Direction", "Received") != "Received" or not self._caller_side(call, m["Channel"]) or call.caller.hiding:
            return
        digit = m.get("Digit", "")
        in_queue = call.visit.queue is not None and call.visit.left is None
        if call.visit.queue is None and call.visit.answered_at is None:
            call.caller.digits.append(digit)
        call.visit.keyed_in_queue = call.visit.keyed_in_queue or in_queue
        self._emit(out, "dtmf", call, t, digit=digit, in_queue=in_queue)

    def _on_queue_join(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        open_leg = call.legs.open
        if (
            open_leg is not None
            and open_leg.answered_at is None
            and (open_leg.queue, open_leg.callid) == (m.get("Queue"), m["Uniqueid"])
            and call.visit.left_at is None
        ):
            # The same stay, already taken from queue_log at the resync (the join came with the events held behind it).
            open_leg.enqueued_at = call.visit.enqueued_at = t
            call.visit.keyed_in_queue = False  # keys told before this join were the IVR's
            return
        last = call.legs.done[-1] if call.legs.done else None
        if (
            last is not None
            and last.ended_by is LegEnd.TIMEOUT
            and call.visit.status is None
            and call.legs.open is None
            and t - last.ended_at < 1
        ):
            last.ended_by = LegEnd.MOVED  # left with no hang-up and no QUEUESTATUS, straight into another queue: a Redirect
        call.visit.queue = m.get("Queue")
        call.visit.enqueued_at = t
        call.visit.left = call.visit.left_at = call.visit.status = None
        call.visit.completed_at = call.visit.complete_reason = None
        call.legs.join(call.visit.queue, t, call.visit.held_since, m["Uniqueid"])
        self._emit(out, "queue_joined", call, t, queue=call.visit.queue, position=_int(m.get("Position")), channel=call.inbound)

    @staticmethod
    def _agent_legs(call: _Call, dest: str | None) -> None:
        if dest:
            call.agent_channels.add(dest)
            partner = local_partner(dest)
            if partner:
                call.agent_channels.add(partner)

    def _on_agent_called(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        self._agent_legs(call, m.get("DestChannel"))
        self._emit(
            out,
            "agent_ringing",
            call,
            t,
            queue=m.get("Queue"),
            agent=m.get("MemberName"),
            interface=m.get("Interface"),
            channel=call.inbound,
            agent_channel=m.get("DestChannel"),
        )

    def _on_ring_noanswer(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        self._emit(
            out,
            "agent_no_answer",
            call,
            t,
            queue=m.get("Queue"),
            agent=m.get("MemberName"),
            interface=m.get("Interface"),
            ring_ms=_int(m.get("RingTime")),
        )

    def _on_agent_connect(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        self._agent_legs(call, m.get("DestChannel"))
        recovered = call.legs.open if call.legs.open is not None else (call.legs.done[-1] if call.legs.done else None)
        if (
            recovered is not None
            and recovered.agent == m.get("MemberName")
            and recovered.answered_at is not None
            and abs(recovered.answered_at - t) < 2
        ):
            return  # already known from queue_log at the resync
        call.visit.answered_at = t
        call.visit.agent = m.get("MemberName")
        call.visit.interface = m.get("Interface")
        call.visit.left, call.visit.left_at = Outcome.ANSWERED, t
        call.legs.answer(call.visit.agent, t, m.get("Queue") or call.visit.queue, call.visit.held_since)
        wait = t - call.visit.enqueued_at if call.visit.enqueued_at is not None else _float(m.get("HoldTime"))
        self._emit(
            out,
            "answered",
            call,
            t,
            queue=m.get("Queue"),
            agent=call.visit.agent,
            interface=call.visit.interface,
            wait_s=wait,
            channel=call.inbound,
            agent_channel=m.get("DestChannel"),
        )

    def _on_agent_complete(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        call.visit.completed_at = t
        call.visit.complete_reason = m.get("Reason")
        call.legs.complete(
            m.get("Queue"), t, LegEnd.TRANSFERRED if call.visit.complete_reason == "transfer" else LegEnd.COMPLETED, call.visit.held_since
        )

    def _on_abandon(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        call.visit.left = Outcome.TIMEOUT if call.ending.first_hangup is None else Outcome.ABANDONED
        call.visit.left_at = t

    def _on_varset(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        # The native ACD's call back pops the agent's screen once both its variables are in (Asterisk sets them last first).
        callback_ringing = m.get("Variable") in (CALLBACK_QUEUE_VAR, CALLBACK_AGENT_VAR) and (
            call.callback_queue is None or call.visit.agent is None
        )
        if m.get("Variable") == CALLBACK_QUEUE_VAR and call.callback_queue is None and m.get("Value"):
            call.callback_queue = m["Value"]
        elif m.get("Variable") == CALLBACK_REQUEST_VAR and m.get("Value") and call.visit.answered_at is None:
            call.visit.queue, call.visit.left, call.visit.left_at = call.visit.queue or m["Value"], Outcome.EXIT_KEY, t
        elif m.get("Variable") == DIAL_AGENT_VAR and call.visit.agent is None and m.get("Value") and m["Channel"] == call.root:
            call.visit.agent = m["Value"]
            self._agent_legs(call, call.root)
        elif m.get("Variable") == CALLBACK_AGENT_VAR and call.visit.agent is None and m.get("Value"):
            call.visit.agent = m["Value"]
        if callback_ringing and call.callback_queue is not None and call.visit.agent is not None:
            self._emit(
                out, "agent_ringing", call, t, queue=call.callback_queue, agent=call.visit.agent, interface=None, channel=m["Channel"]
            )
        if m.get("Variable") == "QUEUESTATUS" and m["Channel"] == call.inbound:
            call.visit.status = m.get("Value")
        if m.get("Variable") == "QUEUESTATUS" and m["Channel"] == call.inbound and call.visit.answered_at is None:
            outcome = _QUEUESTATUS_OUTCOME.get(m.get("Value", ""))
            if outcome:
                call.visit.left = outcome
                call.visit.left_at = call.visit.left_at or t
                last = call.legs.done[-1] if call.legs.done else None
                if call.legs.open is None and last is not None and last.answered_at is None and last.ended_by is LegEnd.ABANDONED:
                    last.ended_by = LegEnd(outcome)  # Queue() returned by itself: the caller did not hang up in it

    def _on_queue_leave(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        # app_queue sends QueueCallerLeave *before* AgentConnect, so a leave with
        # no known reason yet may still turn out answered: only the record says.
        if call.visit.left is None:
            call.visit.left_at = t
            if not call.visit.keyed_in_queue:
                return
            call.visit.left = Outcome.EXIT_KEY
        if call.visit.left is Outcome.ANSWERED:
            return
        wait = t - call.visit.enqueued_at if call.visit.enqueued_at is not None else None
        call.legs.close(t, LegEnd(call.visit.left), call.visit.held_since)
        self._emit(out, "queue_left", call, t, queue=m.get("Queue"), reason=call.visit.left, wait_s=wait)

    def _on_dial_begin(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        if m.get("Channel") not in (call.root, call.inbound):
            return
        if call.visit.queue is not None and call.visit.answered_at is None:
            self._agent_legs(call, m.get("DestChannel"))
        elif call.visit.queue is None and m.get("DestChannel") not in call.agent_channels:
            call.dialed_out = True
            number = _known(m.get("Exten"))
            if call.callback_queue is None and number and number.isdigit() and number != call.caller.number:
                # click-to-dial: the call is the agent's (their phone rang first), its number the one they dialled
                call.caller.dnid, call.caller.number = call.caller.number, number
                self._emit(out, "dialled", call, t, number=number)

    def _on_dial_end(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        """A call back, or the agent's own click-to-dial, is connected when the agent's leg, already answered, reaches the
        caller; a transfer that dials an agent's phone (not a queue) reaches that agent."""
        if m.get("DialStatus") == "ANSWER" and m.get("Channel") and m.get("DestChannel"):
            self._dialed_agent(call, m["Channel"], m["DestChannel"], t, out)
        if (
            (call.callback_queue is not None or call.dialed_out)
            and call.visit.agent is not None
            and call.visit.answered_at is None
            and m.get("Channel")
            and m.get("DestChannel")
            and m.get("DialStatus") == "ANSWER"
        ):
            call.visit.answered_at = t
            call.legs.answer(call.visit.agent, t, call.visit.queue, call.visit.held_since)
            self._agent_legs(call, m["Channel"])
            self._emit(
                out,
                "answered",
                call,
                t,
                queue=call.callback_queue,
                agent=call.visit.agent,
                interface=None,
                wait_s=None,
                channel=m["DestChannel"],
                agent_channel=m["Channel"],
            )
        elif (
            call.dialed_out
            and call.callback_queue is None
            and call.visit.agent is not None
            and call.visit.answered_at is None
            and m.get("Channel") in (call.root, call.inbound)
            and m.get("DialStatus") in ("BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL")
        ):  # the agent's click-to-dial did not reach the number: their screen says why (their phone hears it too)
            self._emit(out, "dial_failed", call, t, agent=call.visit.agent, number=call.caller.number, status=m["DialStatus"])

    def _dialed_agent(self, call: _Call, channel: str, dest: str, t: float, out: list[DomainEvent]) -> None:
        """A blind transfer's caller, or an attended transfer's consultation, answered at an agent's phone: that agent's leg
        (a blind transfer's agent talks to the caller at once: answered)."""
        open_leg = call.legs.open
        blind = open_leg is None and call.legs.transferred_at is not None and channel in (call.root, call.inbound)
        consulting = (
            open_leg is not None and open_leg.answered_at is not None and channel not in (call.root, call.inbound) and call.consult is None
        )
        if not (blind or consulting) or dest in call.agent_channels:
            return
        agent = agent_for(self.phones(), dest)
        if agent is None:
            return
        if blind:
            call.legs.answer(agent, t, None, call.visit.held_since)
            call.visit.agent = agent
            self._agent_legs(call, dest)
            self._emit(out, "answered", call, t, queue=None, agent=agent, interface=None, wait_s=None, channel=channel, agent_channel=dest)
        else:
            call.consult, call.consult_agents = _OpenLeg(None, agent=agent, answered_at=t), {c for c in (dest, local_partner(dest)) if c}

    def _on_spy(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        """A supervisor's listen/whisper/barge session is not a customer call."""
        call.spying = True

    def _on_hold(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        call.visit.held_since.setdefault(m["Channel"], t)
        self._emit(out, "hold", call, t, channel=m["Channel"])

    def _on_unhold(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        since = call.visit.held_since.pop(m["Channel"], None)
        if since is not None:
            if not self._consultation(call, since):
                call.visit.hold_s += t - since
                call.legs.unhold(since, t)
            call.consulted_at = None
        self._emit(out, "unhold", call, t, channel=m["Channel"])

    def _end_holds(self, call: _Call, t: float) -> None:
        """Every hold still running ends at `t` (a hang-up, a transfer); a consultation among them is no hold."""
        for since in call.visit.held_since.values():
            if not self._consultation(call, since):
                call.visit.hold_s += t - since
                call.legs.unhold(since, t)
        call.visit.held_since.clear()
        call.consulted_at = None

    @staticmethod
    def _consultation(call: _Call, since: float) -> bool:
        """Whether the hold from `since` was an attended transfer's consultation: the agent talking to the transfer's
        target, their talk and not the caller's hold (the caller hears music meanwhile)."""
        return call.consulted_at is not None and call.consulted_at >= since

    def _on_consult(self, call: _Call, m: Mapping[str, str], t: float) -> None:
        """The consultation of an attended transfer to a queue: who answers it takes the caller if the transfer completes."""
        event = m.get("Event")
        if event == "QueueCallerJoin":
            call.consult, call.consult_agents = _OpenLeg(m.get("Queue"), t, callid=m.get("Uniqueid")), set()
        elif event == "AgentConnect" and call.consult is not None:
            call.consult.agent, call.consult.answered_at = m.get("MemberName"), t
            dest = m.get("DestChannel")
            call.consult_agents = {c for c in (dest, local_partner(dest or "")) if c}
        elif event in ("AgentComplete", "QueueCallerAbandon"):
            call.consult = None

    def _on_transfer(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        if m.get("Result", "Success") != "Success":
            return
        kind = "blind" if m.get("Event") == "BlindTransfer" else "attended"
        call.ending.handed |= call.agent_channels
        call.ending.first_hangup = None
        self._end_holds(call, t)
        call.legs.transfer(LegEnd.TRANSFERRED_BLIND if kind == "blind" else LegEnd.TRANSFERRED_ATTENDED, t, call.visit.held_since)
        consult, call.consult = call.consult, None
        reached: dict[str, Any] = {}
        if kind == "attended" and consult is not None and consult.answered_at is not None:
            reached = {"agent": consult.agent, "agent_channel": next(iter(sorted(call.consult_agents)), None)}
            call.legs.open, call.legs.transferred_at = consult, None
            if consult.callid:
                call.adopted.add(consult.callid)
            call.agent_channels |= call.consult_agents
            call.visit.agent, call.visit.completed_at, call.visit.complete_reason = consult.agent, None, None
        target = m.get("Extension") or m.get("TransferTargetChannel") or m.get("SecondTransfererConnectedLineNum")
        self._emit(out, "transferred", call, t, how=kind, target=target, **reached)

    def _on_hangup_request(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        if m.get("Event") == "SoftHangupRequest" and m.get("Cause") == "4":  # AST_SOFTHANGUP_SHUTDOWN: core stop/restart now
            call.ending.shutdown = True
        if call.ending.first_hangup is None and m["Channel"] not in call.ending.handed:
            call.ending.first_hangup = (m["Channel"], m["Event"])

    def _on_hangup(self, call: _Call, m: Mapping[str, str], t: float, out: list[DomainEvent]) -> None:
        channel = m["Channel"]
        if call.ending.first_hangup is None and channel not in call.ending.handed:
            call.ending.first_hangup = (channel, "Hangup")
        if channel == call.inbound or (call.ending.hangup_cause is None and channel == call.root):
            call.ending.hangup_cause = _int(m.get("Cause"))
        self._end_holds(call, t)
        uniqueid = m["Uniqueid"]
        call.channels.pop(uniqueid, None)
        self._by_uniqueid.pop(uniqueid, None)
        if not call.partial:  # a call seen only in part (its start in a gap) is not followed: queue_log may recover it
            self._forget(uniqueid)
        if not call.channels:
            self._finish(call, t, out)

    def reconnected(self) -> None:
        """A new AMI session began: events of its first moments may end calls whose gap the coming resync will explain, so
        calls that end before it are kept (parked) and finished by it."""
        self.resync_due = True

    def _finish(self, call: _Call, t: float, out: list[DomainEvent]) -> None:
        if self.resync_due and not call.partial:
            call.parked_at = call.parked_at or t
            return
        del self.calls[call.linkedid]
        if call.partial:
            self.stats["partial"] += 1
            self._emit(out, "call_ended", call, t, partial=True)
            return
        record = self._record(call, t)
        self.stats["finished"] += 1
        out.append(DomainEvent("call_ended", call.linkedid, t, {"outcome": record.outcome, "hangup_by": record.hangup_by}, record))

    def _hangup_by(self, call: _Call) -> HangupBy:
        if call.ending.shutdown:
            return HangupBy.SYSTEM
        if call.visit.complete_reason in (HangupBy.CALLER, HangupBy.AGENT):
            return HangupBy(call.visit.complete_reason)
        if call.ending.first_hangup is None:
            return HangupBy.UNKNOWN if call.resynced else HangupBy.SYSTEM
        channel, kind = call.ending.first_hangup
        if channel in call.agent_channels:
            return HangupBy.AGENT
        if channel == call.root and channel != call.inbound:
            return HangupBy.CALLER
        if channel == call.inbound:
            return HangupBy.SYSTEM if kind == "SoftHangupRequest" else HangupBy.CALLER
        return HangupBy.SYSTEM

    def _outcome(self, call: _Call) -> Outcome:
        if call.callback_queue is not None and call.visit.agent is not None:
            return Outcome.CALLBACK
        if call.dialed_out and call.visit.queue is None:
            return Outcome.OUTBOUND
        if call.visit.answered_at is not None:
            return Outcome.ANSWERED
        if call.visit.left is not None and call.visit.left is not Outcome.ANSWERED:
            return call.visit.left
        if call.visit.queue is not None:
            return Outcome.LEFT_QUEUE if call.visit.left_at is not None else Outcome.ABANDONED
        if call.spying:
            return Outcome.SUPERVISION
        return Outcome.OUTBOUND if call.dialed_out else Outcome.IVR_ONLY

    def _record(self, call: _Call, t: float) -> CallRecord:
        outcome = self._outcome(call)
        legs = call.legs.finish(t, call.visit.left, call.visit.held_since)
        wait = None
        if call.visit.enqueued_at is not None:
            until = call.visit.answered_at if call.visit.answered_at is not None else (call.visit.left_at or t)
            wait = until - call.visit.enqueued_at
        talk = None
        if call.visit.answered_at is not None:
            talk = (call.visit.completed_at or t) - call.visit.answered_at - call.visit.hold_s
        queue, enqueued, answered, agent = call.visit.queue, call.visit.enqueued_at, call.visit.answered_at, call.visit.agent
        last = next((leg for leg in reversed(legs) if leg.queue is not None or leg.agent is not None), None)
        if last is not None:  # the call's own agent and times are its last leg's; its queue and wait, its last queue's
            queued = next((leg for leg in reversed(legs) if leg.queue is not None), last)
            queue, enqueued, answered, agent, wait, talk = (
                queued.queue,
                queued.enqueued_at,
                last.answered_at,
                last.agent,
                queued.wait_s,
                last.talk_s,
            )
        return CallRecord(
            linkedid=call.linkedid,
            caller_number=call.caller.number,
            caller_name=call.caller.name,
            dnid=call.caller.dnid,
            started_at=call.started_at,
            ivr_digits="".join(call.caller.digits),
            queue=queue,
            enqueued_at=enqueued,
            answered_at=answered,
            agent=agent,
            ended_at=t,
            outcome=outcome,
            wait_s=wait,
            talk_s=talk,
            hold_s=call.visit.hold_s,
            hangup_by=self._hangup_by(call),
            hangup_cause=call.ending.hangup_cause,
            transfers=sum(leg.ended_by in HANDED_ON for leg in legs),
            legs=legs,
            resynced=call.resynced,
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _duration(value: str | None) -> float:
    """Seconds in CoreShowChannel's Duration (HH:MM:SS)."""
    try:
        hours, minutes, seconds = (int(x) for x in (value or "").split(":"))
    except ValueError:
        return 0.0
    return hours * 3600.0 + minutes * 60.0 + seconds


def record_line(record: CallRecord) -> str:
    """One finished call as a JSON line."""
    return json.dumps(record.to_json(), ensure_ascii=False, sort_keys=False)
