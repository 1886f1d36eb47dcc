"""app_queue for the simulator: queues, members, the Queue() application and its AMI actions.

Events and queue_log lines follow app_queue (names, fields, order per channel);
the strategies ringall, leastrecent, fewestcalls, random, rrmemory and linear
are honoured, with penalties (lowest available first), ring timeout, retry,
wrap-up time and pause with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pbx.simulator.core import Channel, ChannelHungUp, Timer, Wait
from pbx.simulator.dialplan import QueueConf

if TYPE_CHECKING:
    from pbx.simulator.core import Sim

NOT_INUSE, INUSE, INVALID, RINGING = 1, 2, 4, 6


def _seconds(since: float, now: float) -> int:
    """Whole seconds between two times as app_queue counts them (time_t differences)."""
    return int(now) - int(since)


@dataclass(eq=False)
class Member:
    """One queue member (static from queues.conf, or dynamic from QueueAdd)."""

    queue: str
    interface: str
    name: str
    state_interface: str
    penalty: int = 0
    membership: str = "static"
    paused: bool = False
    reason: str = ""
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    wrapup_until: float = 0.0


@dataclass(eq=False)
class Caller:
    """A channel waiting in a queue."""

    ch: Channel
    queue: str
    joined_at: float
    original_position: int
    ringing: list[tuple[Member, Channel, Channel, Timer]] = field(default_factory=list)
    connected: Member | None = None
    connected_at: float = 0.0
    ring_started: float = 0.0
    retry: Timer | None = None
    last_member: str = "NONE"
    music: bool = False
    transferred: bool = False
    priority: int = 0


@dataclass(eq=False)
class QueueState:
    """A queue's settings, members, waiting callers and counters."""

    conf: QueueConf
    members: list[Member] = field(default_factory=list)
    callers: list[Caller] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    holdtime: float = 0.0
    talktime: float = 0.0
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0
    rr_next: int = 0


class QueueEngine:
    """Every queue of the simulated PBX; one per `Sim`."""

    def __init__(self, sim: Sim, confs: dict[str, QueueConf]) -> None:
        self.sim = sim
        self.queues: dict[str, QueueState] = {}
        self.busy: set[str] = set()
        self.ringing: set[str] = set()
        for name, conf in confs.items():
            state = QueueState(conf)
            for m in conf.members:
                state.members.append(Member(name, m.interface, m.name, m.state_interface, m.penalty, login_time=int(sim.now)))
            self.queues[name] = state
        sim.queues = self

    # member state ------------------------------------------------------
    def device_status(self, member: Member) -> int:
        """Device state as QueueMemberStatus reports it."""
        if member.interface in self.busy:
            return INUSE
        if member.interface.startswith("Local/"):
            exten, _, rest = member.interface[len("Local/") :].partition("@")
            if not self.sim.dialplan.exists(rest.split("/")[0], exten):
                return INVALID
        return NOT_INUSE

    def member_fields(self, member: Member, ringinuse: bool = True) -> list[tuple[str, str]]:
        """The member block shared by QueueMember* events."""
        out = [
            ("Queue", member.queue),
            ("MemberName", member.name),
            ("Interface", member.interface),
            ("StateInterface", member.state_interface),
            ("Membership", member.membership),
            ("Penalty", str(member.penalty)),
            ("CallsTaken", str(member.calls_taken)),
            ("LastCall", str(member.last_call)),
            ("LastPause", str(member.last_pause)),
            ("LoginTime", str(member.login_time)),
            ("InCall", "1" if member.interface in self.busy else "0"),
            ("Status", str(self.device_status(member))),
            ("Paused", "1" if member.paused else "0"),
            ("PausedReason", member.reason),
        ]
        if ringinuse:
            out.append(("Ringinuse", "0" if member.membership == "static" else "1"))
        out.append(("Wrapuptime", "0"))
        return out

    def _member_event(self, name: str, member: Member) -> None:
        self.sim.event(name, "agent", self.member_fields(member))

    def _available(self, member: Member) -> bool:
        return (
            not member.paused
            and member.interface not in self.busy
            and member.interface not in self.ringing
            and self.sim.now >= member.wrapup_until
            and self.device_status(member) != INVALID
        )

    # the Queue() application -------------------------------------------
    def run(self, ch: Channel, data: str) -> Wait:
        """Queue(name,options,URL,announce,timeout): wait, ring members, bridge, report."""
        args = [a.strip() for a in data.split(",")]
        queue = self.queues.get(args[0])
        timeout = float(args[4]) if len(args) > 4 and args[4] else None
        for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS"):
            self.sim.set_var(ch, name, "")
        if queue is None:
            self.sim.set_var(ch, "QUEUESTATUS", "UNKNOWN")
            return None
        if queue.conf.maxlen and len(queue.callers) >= queue.conf.maxlen:
            self.sim.set_var(ch, "QUEUESTATUS", "FULL")
            self.sim.queue_log(ch.uniqueid, queue.conf.name, "NONE", "FULL")
            return None
        started = self.sim.now
        caller = Caller(ch, queue.conf.name, started, len(queue.callers) + 1)
        queue.callers.append(caller)
        self.sim.chan_event(
            "QueueCallerJoin",
            ch,
            ("Queue", queue.conf.name),
            ("Position", str(caller.original_position)),
            ("Count", str(len(queue.callers))),
            privilege="agent",
        )
        if self.sim.moh:
            caller.music = True
            self.sim.chan_event("MusicOnHoldStart", ch, ("Class", "default"))
        self.sim.queue_log(ch.uniqueid, queue.conf.name, "NONE", "ENTERQUEUE", "", ch.cid_num, str(caller.original_position))
        timer = self.sim.at(timeout, self.sim.wake, ch, "timeout") if timeout else None
        self.sim.at(0.0, self.dispatch, queue)
        try:
            while True:
                reason = yield ("block",)
                if reason == "timeout" and caller.connected is None:
                    self._leave_unanswered(queue, caller, "EXITWITHTIMEOUT")
                    self.sim.set_var(ch, "QUEUESTATUS", "TIMEOUT")
                    return None
                if reason == "bridge_ended" and caller.connected is not None:
                    self._finish_bridged(queue, caller, "agent")
                    return "hangup"
                if reason == "bridge_ended" and caller.transferred:
                    self.sim.leave_bridge(ch)
                    return "hangup"
                if isinstance(reason, tuple) and reason[0] == "attended" and caller.connected is not None:
                    held, talked = _seconds(caller.joined_at, caller.connected_at), _seconds(caller.connected_at, self.sim.now)
                    self._complete(queue, caller, "transfer")
                    caller.transferred = True
                    self.sim.queue_log(
                        ch.uniqueid,
                        queue.conf.name,
                        caller.last_member,
                        "ATTENDEDTRANSFER",
                        "BRIDGE",
                        reason[2],
                        str(held),
                        str(talked),
                        str(caller.original_position),
                    )
                if isinstance(reason, tuple) and reason[0] == "transfer" and caller.connected is not None:
                    _, context, exten = reason
                    held, talked = _seconds(caller.joined_at, caller.connected_at), _seconds(caller.connected_at, self.sim.now)
                    self._finish_bridged(queue, caller, "transfer")
                    self.sim.queue_log(
                        ch.uniqueid,
                        queue.conf.name,
                        caller.last_member,
                        "BLINDTRANSFER",
                        exten,
                        context,
                        str(held),
                        str(talked),
                        str(caller.original_position),
                    )
                    self.sim.goto(ch, context, exten, 1)
                    return None
        except ChannelHungUp:
            if caller.connected is not None:
                self._finish_bridged(queue, caller, "caller")
            elif caller.transferred:
                self.sim.leave_bridge(ch)
            else:
                self._leave_unanswered(queue, caller, "ABANDON")
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _finish_bridged(self, queue: QueueState, caller: Caller, reason: str) -> None:
        connected_at = caller.connected_at
        self._complete(queue, caller, reason)
        self.sim.leave_bridge(caller.ch)
        now = self.sim.now
        for name, value in (
            ("ANSWEREDTIME", str(int(now - connected_at))),
            ("ANSWEREDTIME_MS", str(int((now - connected_at) * 1000))),
            ("DIALEDTIME", str(int(now - caller.ch.created))),
            ("DIALEDTIME_MS", str(int((now - caller.ch.created) * 1000))),
        ):
            self.sim.set_var(caller.ch, name, value)

    def _position(self, queue: QueueState, caller: Caller) -> int:
        return queue.callers.index(caller) + 1 if caller in queue.callers else 1

    def _leave_unanswered(self, queue: QueueState, caller: Caller, how: str) -> None:
        """Abandon (caller hung up) or timeout, with app_queue's events, variables and log line, in its order."""
        self._cancel_ringing(caller)
        sim, ch = self.sim, caller.ch
        position = self._position(queue, caller)
        waited = _seconds(caller.joined_at, sim.now)
        exact, alive = sim.now - caller.joined_at, sim.now - ch.created
        timing = [
            ("QUEUEWAIT", str(waited)),
            ("QUEUEWAIT_MS", str(int(exact * 1000))),
            ("DIALEDTIME", str(int(alive))),
            ("DIALEDTIME_MS", str(int(alive * 1000))),
            ("ANSWEREDTIME", "0"),
            ("ANSWEREDTIME_MS", "0"),
        ]
        if how == "ABANDON":
            for name, value in timing:
                sim.set_var(ch, name, value)
        sim.set_var(ch, "ABANDONED", "TRUE")
        sim.chan_event(
            "QueueCallerAbandon",
            ch,
            ("Queue", queue.conf.name),
            ("Position", str(position)),
            ("OriginalPosition", str(caller.original_position)),
            ("HoldTime", str(waited)),
            privilege="agent",
        )
        if how != "ABANDON":
            for name, value in timing:
                sim.set_var(ch, name, value)
        self._remove_caller(queue, caller)
        sim.set_var(ch, "QUEUEPOSITION", str(position))
        queue.abandoned += 1
        if waited <= queue.conf.servicelevel:
            queue.abandoned_in_sl += 1
        sim.queue_log(ch.uniqueid, queue.conf.name, "NONE", how, str(position), str(caller.original_position), str(waited))

    def _remove_caller(self, queue: QueueState, caller: Caller) -> None:
        if caller.music:
            caller.music = False
            self.sim.chan_event("MusicOnHoldStop", caller.ch)
        position = self._position(queue, caller)
        if caller in queue.callers:
            queue.callers.remove(caller)
        if caller.retry is not None:
            caller.retry.cancel()
        self.sim.chan_event(
            "QueueCallerLeave",
            caller.ch,
            ("Queue", queue.conf.name),
            ("Position", str(position)),
            ("Count", str(len(queue.callers))),
            privilege="agent",
        )

    # ringing members ---------------------------------------------------
    def dispatch(self, queue: QueueState) -> None:
        """Ring members for waiting callers, in queue order, as the strategy picks them."""
        for caller in list(queue.callers):
            if caller.ringing or caller.connected is not None or caller.ch.hangup_requested:
                continue
            if caller.retry is not None and not caller.retry.cancelled and caller.retry.when > self.sim.now:
                continue
            chosen = self._choose(queue)
            if not chosen:
                return
            caller.ring_started = self.sim.now
            for member in chosen:
                self._ring(queue, caller, member)

    def _choose(self, queue: QueueState) -> list[Member]:
        free = [m for m in queue.members if self._available(m)]
        if not free:
            return []
        best = min(m.penalty for m in free)
        free = [m for m in free if m.penalty == best]
        strategy = queue.conf.strategy
        if strategy == "ringall":
            return free
        if strategy == "leastrecent":
            return [min(free, key=lambda m: m.last_call)]
        if strategy == "fewestcalls":
            return [min(free, key=lambda m: m.calls_taken)]
        if strategy == "random":
            return [self.sim.rng.choice(free)]
        if strategy in ("rrmemory", "roundrobin", "rrordered"):
            order = queue.members[queue.rr_next :] + queue.members[: queue.rr_next]
            pick = next(m for m in order if m in free)
            queue.rr_next = (queue.members.index(pick) + 1) % len(queue.members)
            return [pick]
        return [free[0]]

    def _agent_event(
        self, name: str, queue: QueueState, caller: Caller, member: Member, one: Channel | None, *extra: tuple[str, str]
    ) -> None:
        """One of app_queue's Agent* events: the caller, the member's leg (Dest*, when there is one), queue and member."""
        dest = self.sim.fields(one, "Dest") if one is not None else []
        self.sim.event(
            name,
            "agent",
            self.sim.fields(caller.ch),
            dest,
            ("Queue", queue.conf.name),
            ("Interface", member.interface),
            ("MemberName", member.name),
            *extra,
        )

    def _ring(self, queue: QueueState, caller: Caller, member: Member) -> None:
        sim = self.sim
        one, two, target = sim.call_local(caller.ch, member.interface, "AppQueue")
        self._agent_event("AgentCalled", queue, caller, member, one)
        sim.event("DialBegin", "call", sim.fields(caller.ch), sim.fields(one, "Dest"), ("DialString", target))
        timer = sim.at(queue.conf.timeout, self._no_answer, queue, caller, member, one)
        caller.ringing.append((member, one, two, timer))
        self.ringing.add(member.interface)
        one.on_answer = lambda leg: self._answered(queue, caller, member, leg)
        sim.start_pbx(two, two.context, two.exten, 1)

    def _drop_leg(self, caller: Caller, entry: tuple[Member, Channel, Channel, Timer], status: str) -> None:
        member, one, _, timer = entry
        timer.cancel()
        self.ringing.discard(member.interface)
        caller.ringing.remove(entry)
        one.on_answer = None
        self.sim.event("DialEnd", "call", self.sim.fields(caller.ch), self.sim.fields(one, "Dest"), ("DialStatus", status))
        self.sim.hangup(one)

    def _cancel_ringing(self, caller: Caller) -> None:
        for entry in list(caller.ringing):
            self._drop_leg(caller, entry, "CANCEL")
            self.sim.queue_log(
                caller.ch.uniqueid, caller.queue, entry[0].name, "RINGCANCELED", str(int((self.sim.now - caller.ring_started) * 1000))
            )

    def _no_answer(self, queue: QueueState, caller: Caller, member: Member, one: Channel) -> None:
        entry = next((e for e in caller.ringing if e[1] is one), None)
        if entry is None:
            return
        ring_ms = int((self.sim.now - caller.ring_started) * 1000)
        self._agent_event("AgentRingNoAnswer", queue, caller, member, one, ("RingTime", str(ring_ms)))
        self._drop_leg(caller, entry, "NOANSWER")
        self.sim.queue_log(caller.ch.uniqueid, queue.conf.name, member.name, "RINGNOANSWER", str(ring_ms))
        if not caller.ringing:
            caller.retry = self.sim.at(queue.conf.retry, self.dispatch, queue)

    def _answered(self, queue: QueueState, caller: Caller, member: Member, one: Channel) -> None:
        sim = self.sim
        entry = next(e for e in caller.ringing if e[1] is one)
        entry[3].cancel()
        caller.ringing.remove(entry)
        self.ringing.discard(member.interface)
        for other in list(caller.ringing):
            self._drop_leg(caller, other, "CANCEL")
        sim.chan_event(
            "Newexten", one, ("Extension", one.exten), ("Application", "AppQueue"), ("AppData", "(Outgoing Line)"), privilege="dialplan"
        )
        sim.set_connected(one, caller.ch.cid_num, caller.ch.cid_name)
        self.busy.add(member.interface)
        self._status_change(member)
        sim.event("DialEnd", "call", sim.fields(caller.ch), sim.fields(one, "Dest"), ("DialStatus", "ANSWER"))
        waited = _seconds(caller.joined_at, sim.now)
        position = self._position(queue, caller)
        self._remove_caller(queue, caller)
        for name, value in (
            ("QUEUEPOSITION", str(position)),
            ("QUEUEWAIT", str(waited)),
            ("QUEUEWAIT_MS", str(int((sim.now - caller.joined_at) * 1000))),
        ):
            sim.set_var(caller.ch, name, value)
        ring_s = _seconds(caller.ring_started, sim.now)
        self._agent_event("AgentConnect", queue, caller, member, one, ("HoldTime", str(waited)), ("RingTime", str(ring_s)))
        sim.queue_log(caller.ch.uniqueid, queue.conf.name, member.name, "CONNECT", str(waited), one.uniqueid, str(ring_s))
        caller.connected, caller.connected_at = member, sim.now
        queue.holdtime += waited
        if waited <= queue.conf.servicelevel:
            queue.completed_in_sl += 1
        sim.answer(caller.ch)  # a caller still ringing (a call back waiting as a Local channel) is answered by the connect
        sim.bridge(one, caller.ch)

    def _complete(self, queue: QueueState, caller: Caller, reason: str) -> None:
        member = caller.connected
        assert member is not None
        sim = self.sim
        one = next((c for c in (caller.ch.bridge.channels if caller.ch.bridge else []) if c is not caller.ch), None)
        waited = _seconds(caller.joined_at, caller.connected_at)
        talk = _seconds(caller.connected_at, sim.now)
        self._agent_event(
            "AgentComplete", queue, caller, member, one, ("HoldTime", str(waited)), ("TalkTime", str(talk)), ("Reason", reason)
        )
        caller.last_member = member.name
        if reason != "transfer":
            sim.queue_log(
                caller.ch.uniqueid,
                queue.conf.name,
                member.name,
                "COMPLETECALLER" if reason == "caller" else "COMPLETEAGENT",
                str(waited),
                str(talk),
                str(caller.original_position),
            )
        queue.completed += 1
        queue.talktime += talk
        member.calls_taken += 1
        member.last_call = int(sim.now)
        member.wrapup_until = sim.now + queue.conf.wrapuptime
        caller.connected = None
        self.busy.discard(member.interface)
        sim.at(0.0, self._status_change, member)
        sim.at(queue.conf.wrapuptime, self._dispatch_all)

    def _status_change(self, member: Member) -> None:
        for queue in self.queues.values():
            for m in queue.members:
                if m.interface == member.interface:
                    self.sim.event("QueueMemberStatus", "agent", self.member_fields(m))

    def _dispatch_all(self) -> None:
        for queue in self.queues.values():
            self.dispatch(queue)

    # AMI actions -------------------------------------------------------
    def add(self, queue_name: str, interface: str, name: str, penalty: int, paused: bool, state_interface: str) -> str:
        """QueueAdd: the response message, or raise ValueError with Asterisk's error text."""
        queue = self.queues.get(queue_name)
        if queue is None:
            raise ValueError("Unable to add interface: No such queue")
        if any(m.interface == interface for m in queue.members):
            raise ValueError("Unable to add interface: Already there")
        member = Member(
            queue_name,
            interface,
            name or interface,
            state_interface or interface,
            penalty,
            "dynamic",
            paused=paused,
            login_time=int(self.sim.now),
        )
        queue.members.append(member)
        self._member_event("QueueMemberAdded", member)
        self.sim.queue_log("MANAGER", queue_name, member.name, "ADDMEMBER", "")
        self.sim.at(0.0, self.dispatch, queue)
        return "Added interface to queue"

    def remove(self, queue_name: str, interface: str) -> str:
        """QueueRemove."""
        queue = self.queues.get(queue_name)
        if queue is None:
            raise ValueError("Unable to remove interface from queue: No such queue")
        member = next((m for m in queue.members if m.interface == interface), None)
        if member is None:
            raise ValueError("Unable to remove interface: Not there")
        queue.members.remove(member)
        self._member_event("QueueMemberRemoved", member)
        self.sim.queue_log("MANAGER", queue_name, member.name, "REMOVEMEMBER", "")
        return "Removed interface from queue"

    def pause(self, interface: str, paused: bool, queue_name: str | None, reason: str) -> str:
        """QueuePause, in one queue or (no Queue header) in all of them."""
        members = [m for q in self.queues.values() if queue_name in (None, "", q.conf.name) for m in q.members if m.interface == interface]
        if not members:
            raise ValueError("Interface not found")
        if not queue_name:
            self.sim.queue_log("NONE", "NONE", members[0].name, "PAUSEALL" if paused else "UNPAUSEALL", reason)
        for member in members:
            member.paused, member.reason = paused, reason if paused else ""
            if paused:
                member.last_pause = int(self.sim.now)
            self._member_event("QueueMemberPause", member)
            self.sim.queue_log("NONE", member.queue, member.name, "PAUSE" if paused else "UNPAUSE", reason)
        if not paused:
            self.sim.at(0.0, self._dispatch_all)
        return "Interface paused successfully" if paused else "Interface unpaused successfully"

    def penalty(self, interface: str, penalty: int, queue_name: str | None) -> str:
        """QueuePenalty."""
        members = [m for q in self.queues.values() if queue_name in (None, "", q.conf.name) for m in q.members if m.interface == interface]
        if not members:
            raise ValueError("Invalid interface, queuename or penalty")
        for member in members:
            member.penalty = penalty
            self._member_event("QueueMemberPenalty", member)
            self.sim.queue_log("NONE", member.queue, member.interface, "PENALTY", str(penalty))
        return "Interface penalty set successfully"

    def change_priority(self, queue_name: str, channel: str, priority: int) -> str:
        """QueueChangePriorityCaller: a waiting caller moves ahead of every caller with a lower priority."""
        queue = self.queues.get(queue_name)
        if queue is None:
            raise ValueError(f"Unable to change priority caller on queue '{queue_name}': No such queue")
        caller = next((c for c in queue.callers if c.ch.name == channel), None)
        if caller is None:
            raise ValueError(f"Unable to change priority caller on queue '{queue_name}': Not there")
        caller.priority = priority
        queue.callers.remove(caller)
        index = next((i for i, c in enumerate(queue.callers) if c.priority < priority), len(queue.callers))
        queue.callers.insert(index, caller)
        return "Priority change for caller on queue"

    def status_items(self, queue_name: str | None = None) -> list[dict[str, str]]:
        """QueueStatus list items: QueueParams, QueueMember and QueueEntry per queue."""
        items: list[dict[str, str]] = []
        for queue in self.queues.values():
            if queue_name and queue.conf.name != queue_name:
                continue
            done = queue.completed or 0
            sl = 100.0 * queue.completed_in_sl / done if done else 0.0
            total = done + queue.abandoned
            sl2 = 100.0 * (queue.completed_in_sl + queue.abandoned_in_sl) / total if total else 0.0
            items.append(
                {
                    "Event": "QueueParams",
                    "Queue": queue.conf.name,
                    "Max": str(queue.conf.maxlen),
                    "Strategy": queue.conf.strategy,
                    "Calls": str(len(queue.callers)),
                    "Holdtime": str(int(queue.holdtime / done) if done else 0),
                    "TalkTime": str(int(queue.talktime / done) if done else 0),
                    "Completed": str(done),
                    "Abandoned": str(queue.abandoned),
                    "ServiceLevel": str(queue.conf.servicelevel),
                    "ServicelevelPerf": f"{sl:.1f}",
                    "ServicelevelPerf2": f"{sl2:.1f}",
                    "Weight": "0",
                }
            )
            for m in queue.members:
                fields = dict(self.member_fields(m, ringinuse=False))
                fields["Name"] = fields.pop("MemberName")
                fields["Location"] = fields.pop("Interface")
                items.append({"Event": "QueueMember", "Queue": queue.conf.name, **{k: v for k, v in fields.items() if k != "Queue"}})
            for position, caller in enumerate(queue.callers, 1):
                ch = caller.ch
                items.append(
                    {
                        "Event": "QueueEntry",
                        "Queue": queue.conf.name,
                        "Position": str(position),
                        "Channel": ch.name,
                        "Uniqueid": ch.uniqueid,
                        "CallerIDNum": ch.cid_num,
                        "CallerIDName": ch.cid_name,
                        "ConnectedLineNum": ch.conn_num,
                        "ConnectedLineName": ch.conn_name,
                        "Wait": str(int(self.sim.now - caller.joined_at)),
                        "Priority": str(caller.priority),
                    }
                )
        return items

    def summary_items(self) -> list[dict[str, str]]:
        """QueueSummary list items."""
        items = []
        for queue in self.queues.values():
            logged = len(queue.members)
            available = sum(1 for m in queue.members if self._available(m))
            longest = max((self.sim.now - c.joined_at for c in queue.callers), default=0)
            done = queue.completed
            items.append(
                {
                    "Event": "QueueSummary",
                    "Queue": queue.conf.name,
                    "LoggedIn": str(logged),
                    "Available": str(available),
                    "Callers": str(len(queue.callers)),
                    "HoldTime": str(int(queue.holdtime / done) if done else 0),
                    "TalkTime": str(int(queue.talktime / done) if done else 0),
                    "LongestHoldTime": str(int(longest)),
                }
            )
        return items
