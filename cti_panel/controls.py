"""What panel users may ask the engine to do, checked, then turned into AMI actions.

Every request arrives as (who, name, data): `who` comes from the server-side
session, `data` from a browser and is trusted for nothing. `check` is pure:
it refuses a role that may not ask, a malformed field or a target that does
not exist, and returns a `Request` with clean values. Numbers are E.164
digits only and go into fixed dialplan contexts from the configuration; no
channel, context, application or data from a browser ever reaches an
Originate, Redirect or transfer (the CVE-2024-42365 class of AMI injection).
`Controls` carries a checked request out over AMI and the ACD. Hold mutes the
caller both ways with MUTEAUDIO (set through Setvar, so the AMI user needs no
`system` privilege) and keeps the call in its bridge: moving the caller out
(Redirect, Park) would end app_queue's accounting of the call at that moment.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from acd.machine import StateChange
from cti_panel.live import LiveBoard, LiveCall
from kernel.exceptions import ActionError, Refused
from kernel.who import Who
from pbx.codec import Message
from pbx.tracker import DIAL_AGENT_VAR

log = logging.getLogger(__name__)
NUMBER = re.compile(r"\+?[0-9]{2,15}")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
SPY_OPTIONS = {"listen": "qE", "whisper": "qwE", "barge": "qBE"}
MAX_NOTES = 4000
# The numeric doors of contrib/asterisk's [callcenter-transfer]: the queue, or the agent's phone, named in TRANSFER_VARIABLE.
QUEUE_DOOR, AGENT_DOOR, TRANSFER_VARIABLE = "8001", "8002", "CALLCENTER_XFER"
BACK_VARIABLE = "CALLCENTER_XFER_BACK"  # a blind transfer nobody answers: the queue the caller waits in again
RING_VARIABLE = "CALLCENTER_XFER_RING"  # how long the agent a call is transferred to is rung (seconds)

AGENT, SUPERVISOR = ("agent",), ("supervisor", "admin")
# An agent in one of these states is not offered a transfer (the PBX would ring their phone whatever they are doing).
BUSY_STATES = ("ringing", "on_call", "wrap_up", "paused")
# OriginateResponse's Reason (the control frame that ended the originated channel's dialling), as Asterisk 22 gives it
# for a Local phone: 3 rang out, 5 Busy(), 8 Congestion(); 0 a phone that hung up before answering, or no such extension.
UNREACHABLE = ("phone_unreachable", "your phone ({phone}) did not take the call: it rejected it or cannot be reached")
ORIGINATE_FAILURES = {
    "0": UNREACHABLE,
    "3": ("phone_no_answer", "your phone ({phone}) did not answer"),
    "5": ("phone_busy", "your phone ({phone}) is busy"),
    "8": UNREACHABLE,
}


@dataclass(frozen=True)
class Directory:
    """What the server knows to check requests against: the call center's own configuration."""

    queues: tuple[str, ...]
    pause_reasons: tuple[str, ...]
    dispositions: tuple[str, ...]
    agents: Callable[[], dict[str, tuple[str, str | None, tuple[str, ...]]]] = dict
    dial_context: str = "callcenter-outbound"
    transfer_context: str = "callcenter-transfer"
    queue_context: str = "callcenter-queues"
    dial_ring_s: float = 30.0
    confirm_s: float = 10.0  # how long the PBX has to confirm an action by its events
    transfer_ring_s: float = 30.0
    timezone: str = "UTC"  # the center's: times on the screens are its local times


@dataclass(frozen=True)
class Request:
    """A checked request: what to do, by whom, with clean values."""

    who: Who
    name: str
    values: dict[str, Any]


def _text(data: dict[str, Any], key: str, limit: int = 80) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise Refused(f"{key}: expected text of at most {limit} characters")
    return value


def _choice(data: dict[str, Any], key: str, allowed: tuple[str, ...] | dict[str, Any]) -> str:
    value = _text(data, key)
    if value not in allowed:
        raise Refused(f"{key} {value!r}: one of {', '.join(allowed)}")
    return value


def _number(data: dict[str, Any], key: str = "number") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not NUMBER.fullmatch(value):
        raise Refused(f"{key}: digits only (E.164, an optional leading +, at most 15 digits)", "digits_only", field=key)
    return value.lstrip("+")


def _agent(data: dict[str, Any], directory: Directory, who: Who | None = None) -> tuple[str, str, str | None]:
    """A known agent (interface, extension); for a supervisor with a list of queues, only an agent working in one of them."""
    value = _text(data, "agent")
    known = directory.agents().get(value)
    if known is None:
        raise Refused(f"agent {value!r}: no such agent", "no_such_agent", agent=value)
    interface, extension, queues = known
    if who is not None and who.queues and queues and not set(queues) & set(who.queues):
        raise Refused(f"agent {value!r} works in none of the queues you supervise", "not_your_agent", agent=value)
    return value, interface, extension


def _no_fields(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    return {}


def _call_id(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    """The call the agent's screen acts on: an action meant for a call that has ended never reaches the next one."""
    return {"linkedid": _text(data, "linkedid", 64)}


def _parse_state(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    values: dict[str, Any] = {"state": _choice(data, "state", ("available", "pause", "logout"))}
    if values["state"] == "pause":
        values["reason"] = _choice(data, "reason", directory.pause_reasons)
    return values


def _parse_dial(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    return {"number": _number(data)}


def _parse_record(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    return {"op": _choice(data, "op", ("start", "pause", "resume")), **_call_id(data, who, directory)}


def _parse_transfer(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    values: dict[str, Any] = {"how": _choice(data, "how", ("blind", "attended")), **_call_id(data, who, directory)}
    kind = values["kind"] = _choice(data, "kind", ("agent", "queue", "number"))
    values["context"] = directory.transfer_context
    if kind == "agent":
        agent, interface, _ = _agent(data, directory)
        values["exten"], values["target"], values["label"] = AGENT_DOOR, interface, agent
    elif kind == "queue":
        values["exten"] = QUEUE_DOOR
        values["target"] = values["label"] = _choice(data, "queue", directory.queues)
    else:
        values["exten"], values["target"] = _number(data), ""
        values["label"] = values["exten"]
    return values


def _parse_wrapup(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    values: dict[str, Any] = {**_call_id(data, who, directory), "disposition": _choice(data, "disposition", directory.dispositions)}
    notes = data.get("notes", "")
    if not isinstance(notes, str) or len(notes) > MAX_NOTES:
        raise Refused(f"notes: text of at most {MAX_NOTES} characters")
    return {**values, "notes": notes}


def _parse_spy(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    if not who.interface:
        raise Refused("spy: this supervisor has no phone to listen on", "no_phone")
    agent, interface, _ = _agent(data, directory, who)
    return {"agent": agent, "interface": interface, "mode": _choice(data, "mode", SPY_OPTIONS)}


def _parse_force(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    agent, interface, _ = _agent(data, directory, who)
    values: dict[str, Any] = {"agent": agent, "interface": interface, "action": _choice(data, "action", ("pause", "logout"))}
    if values["action"] == "pause":
        values["reason"] = _choice(data, "reason", directory.pause_reasons)
    return values


def _parse_move(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    return {"linkedid": _text(data, "linkedid", 64), "queue": _choice(data, "queue", directory.queues)}


def _parse_priority(data: dict[str, Any], who: Who, directory: Directory) -> dict[str, Any]:
    linkedid = _text(data, "linkedid", 64)
    priority = data.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 10:
        raise Refused("priority: a whole number from 0 to 10")
    return {"linkedid": linkedid, "priority": priority}


@dataclass(frozen=True)
class Rule:
    """Who may ask for a request, whether it needs the user's own agent and phone, and how its fields are read."""

    roles: tuple[str, ...]
    needs_phone: bool
    parse: Callable[[dict[str, Any], Who, Directory], dict[str, Any]]


# Every request the panel takes: the one table `check` reads, and `Controls` carries out by the same names.
RULES: dict[str, Rule] = {
    "state": Rule(AGENT, True, _parse_state),
    "dial": Rule(AGENT, True, _parse_dial),
    "record": Rule(AGENT, True, _parse_record),
    "hangup": Rule(AGENT, True, _call_id),
    "hold": Rule(AGENT, True, _call_id),
    "unhold": Rule(AGENT, True, _call_id),
    "transfer": Rule(AGENT, True, _parse_transfer),
    "complete": Rule(AGENT, True, _call_id),
    "cancel": Rule(AGENT, True, _call_id),
    "wrapup": Rule(AGENT, False, _parse_wrapup),
    "refresh": Rule(AGENT, False, _no_fields),
    "spy": Rule(SUPERVISOR, False, _parse_spy),
    "force": Rule(SUPERVISOR, False, _parse_force),
    "move": Rule(SUPERVISOR, False, _parse_move),
    "priority": Rule(SUPERVISOR, False, _parse_priority),
}


def check(who: Who, name: Any, data: Any, directory: Directory) -> Request:
    """A browser's request, refused unless this user's role may ask it and every field is well formed."""
    rule = RULES.get(name) if isinstance(name, str) else None
    if rule is None:
        raise Refused(f"unknown request {str(name)[:40]!r}")
    if who.role not in rule.roles:
        raise Refused(f"{name}: not allowed for the {who.role} role")
    if not isinstance(data, dict):
        raise Refused(f"{name}: expected an object")
    if rule.needs_phone and not (who.agent and who.interface):
        raise Refused(f"{name}: this user has no agent or phone")
    return Request(who, name, rule.parse(data, who, directory))


def phone_side(channel: str) -> str:
    """The channel a phone's own hang-up ends: a Local member's `;2` half (app_queue counts a hang-up of the `;1` half,
    the one in its bridge, as the caller's: COMPLETECALLER, seen on Asterisk 22); any other channel as it is."""
    return channel[:-2] + ";2" if channel.startswith("Local/") and channel.endswith(";1") else channel


def spy_prefix(interface: str) -> str:
    """What ChanSpy waits for on an idle agent's phone: its channels' names, not the interface (`Local/1001@phones/n` has an
    option no channel name carries; `PJSIP/1001` alone would also match `PJSIP/10010-...`, another phone)."""
    if interface.startswith("Local/"):
        interface = interface.split("/")[0] + "/" + interface.split("/")[1]
    return interface + "-"


class AgentDesk(Protocol):
    """Agents' state in whichever ACD runs the queues (app_queue or native)."""

    async def login(self, agent: str, interface: str, queues: list[str]) -> None: ...

    async def logout(self, agent: str, interface: str, queues: list[str]) -> None: ...

    async def pause(self, agent: str, interface: str, reason: str) -> None: ...

    async def unpause(self, agent: str, interface: str) -> None: ...

    async def move(self, call: LiveCall, queue: str) -> None: ...

    async def priority(self, call: LiveCall, priority: int) -> None: ...

    async def call_back(self, channel: str, linkedid: str, queue: str, number: str, data: Mapping[str, str]) -> None: ...

    async def direct_call(self, agent: str, linkedid: str) -> None: ...

    async def answered(self, agent: str, linkedid: str, queue: str) -> None: ...

    async def after_call(self, agent: str, linkedid: str, queue: str | None, at: float) -> None: ...

    async def wrapup_saved(self, agent: str, linkedid: str, at: float) -> None: ...

    async def tick(self, at: float) -> None: ...

    def on_state(self, change: StateChange) -> None: ...

    def must_save(self, agent: str) -> bool: ...


class Controls:
    """Carries out checked requests: AMI actions for calls, the desk for agent states, the store for wrap-ups."""

    def __init__(
        self,
        send: Callable[..., Awaitable[Any]],
        board: LiveBoard,
        desk: AgentDesk,
        directory: Directory,
        wrapup: Callable[[str, str, str, str], bool],
        on_hold: Callable[[str, bool], None],
        record: Callable[[LiveCall, Who, str], Awaitable[None]] | None = None,
        expect: Callable[[Callable[[Message], bool]], asyncio.Future[Message]] | None = None,
    ) -> None:
        self.send, self.board, self.desk, self.directory, self.wrapup, self.on_hold = send, board, desk, directory, wrapup, on_hold
        self.record, self.expect = record, expect
        self._consults: dict[str, str] = {}  # linkedid -> the agent's leg consulting someone (an attended transfer begun)
        self._run: dict[str, Callable[..., Awaitable[dict[str, Any] | None]]] = {
            "state": self._state,
            "dial": self._dial,
            "record": self._record,
            "hangup": self._hangup,
            "hold": self._hold,
            "unhold": self._unhold,
            "transfer": self._transfer,
            "complete": self._complete,
            "cancel": self._cancel,
            "wrapup": self._wrapup,
            "refresh": self._refresh,
            "spy": self._spy,
            "force": self._force,
            "move": self._move,
            "priority": self._priority,
        }

    async def run(self, request: Request) -> dict[str, Any]:
        """Do it; the answer the browser gets back."""
        return await self._run[request.name](request.who, **request.values) or {"ok": True}

    def _agent_queues(self, who: Who) -> list[str]:
        return list(who.queues) or list(self.directory.queues)

    def _my_call(self, who: Who, linkedid: str) -> LiveCall:
        call = self.board.call_of(who.agent or "")
        if call is None or not call.channel:
            raise Refused("no call in progress", "no_call")
        if call.linkedid != linkedid:
            current = call.number or call.linkedid
            raise Refused(f"call {linkedid!r} is no longer yours (you are on {current})", "not_yours", call=linkedid, current=current)
        return call

    def _agent_leg(self, who: Who, linkedid: str, what: str) -> tuple[LiveCall, str]:
        """The agent's call and their own leg of it."""
        call = self._my_call(who, linkedid)
        if not call.agent_channel:
            raise Refused(f"{what}: the agent's leg of this call is not known yet", "leg_unknown")
        return call, call.agent_channel

    def _waiting(self, who: Who, linkedid: str, *queues: str) -> LiveCall:
        call = self.board.find_waiting(linkedid)
        if call is None:
            raise Refused(f"caller {linkedid!r} is not waiting in a queue", "not_waiting")
        outside = [q for q in (call.queue or "", *queues) if who.queues and q not in who.queues]
        if outside:
            raise Refused(f"queue {outside[0]!r} is not one you supervise", "not_your_queue", queue=outside[0])
        return call

    async def _state(self, who: Who, state: str, reason: str | None = None) -> None:
        assert who.agent and who.interface
        if state == "logout":
            await self.desk.logout(who.agent, who.interface, self._agent_queues(who))
            return
        row = self.board.agents.get(who.agent)
        if state == "available" and row is not None and row.state in ("ringing", "on_call"):
            raise Refused("you are on a call: you will be available when it ends", "on_a_call")
        if state == "available" and self.desk.must_save(who.agent):
            raise Refused("save the wrap-up of your last call first: this queue's after-call work lasts until it is saved", "save_first")
        await self.desk.login(who.agent, who.interface, self._agent_queues(who))
        if state == "pause":
            await self.desk.pause(who.agent, who.interface, reason or "")
        else:
            await self.desk.unpause(who.agent, who.interface)

    async def _dial(self, who: Who, number: str) -> dict[str, Any]:
        """Click-to-dial: the agent's phone rings first; done only once it answered (Asterisk's OriginateResponse), then the
        number is dialled from it; a phone that does not answer, is busy or cannot be reached is said so."""
        phone = who.interface or ""
        try:
            replies = await self.send(
                {
                    "Action": "Originate",
                    "Channel": phone,
                    "Context": self.directory.dial_context,
                    "Exten": number,
                    "Priority": "1",
                    "CallerID": f"<{who.extension or ''}>",
                    "Async": "true",
                    "Timeout": str(int(self.directory.dial_ring_s * 1000)),
                    "Variable": f"{DIAL_AGENT_VAR}={who.agent}",
                },
                timeout=self.directory.dial_ring_s + 15,
            )
        except ActionError as exc:
            log.warning("click-to-dial from %s: %s", phone, exc)
            raise Refused(UNREACHABLE[1].format(phone=phone), UNREACHABLE[0], phone=phone) from exc
        outcome = next((m for m in replies if m.get("Event") == "OriginateResponse"), None) if isinstance(replies, list) else None
        if outcome is None or outcome.get("Response") != "Success":
            key, english = ORIGINATE_FAILURES.get(outcome.get("Reason", "") if outcome else "", UNREACHABLE)
            raise Refused(english.format(phone=phone), key, phone=phone)
        return {"ok": True, "say": ("calling", {"number": number})}

    async def _record(self, who: Who, op: str, linkedid: str) -> None:
        if self.record is None:
            raise Refused("recordings are off", "recordings_off")
        await self.record(self._my_call(who, linkedid), who, op)

    async def _hangup(self, who: Who, linkedid: str) -> None:
        """The agent hangs up their own phone (so Asterisk, its queue_log and the record say the agent ended the call)."""
        call = self._my_call(who, linkedid)
        await self.send({"Action": "Hangup", "Channel": phone_side(call.agent_channel) if call.agent_channel else call.channel or ""})

    async def _hold(self, who: Who, linkedid: str, held: bool = True) -> None:
        call = self._my_call(who, linkedid)
        if call.consulting:
            raise Refused("the caller is already on hold while you consult: complete or cancel the transfer", "held_by_consultation")
        await self.send({"Action": "Setvar", "Channel": call.channel or "", "Variable": "MUTEAUDIO(all)", "Value": "on" if held else "off"})
        self.on_hold(call.linkedid, held)

    async def _unhold(self, who: Who, linkedid: str) -> None:
        await self._hold(who, linkedid, held=False)

    async def _transfer(
        self, who: Who, how: str, linkedid: str, kind: str, context: str, exten: str, target: str, label: str
    ) -> dict[str, Any]:
        """Both legs carry where the call goes (inherited by the consultation leg of an attended transfer), then the
        PBX transfers to a numeric door of `callcenter-transfer` (Atxfer dials its target as DTMF)."""
        call, leg = self._agent_leg(who, linkedid, "transfer")
        busy = self.board.agents.get(label) if kind == "agent" else None
        if busy is not None and busy.state in BUSY_STATES:
            raise Refused(f"agent {label} cannot take it now ({busy.state})", "agent_busy", agent=label, state=busy.state)
        ring = {RING_VARIABLE: str(round(self.directory.transfer_ring_s))} if kind == "agent" else {}
        for channel in (leg, call.channel or ""):
            for name, value in {TRANSFER_VARIABLE: target, **ring}.items():
                await self.send({"Action": "Setvar", "Channel": channel, "Variable": f"__{name}", "Value": value})
        if how == "blind":
            if call.queue and call.queue in self.directory.queues:
                await self.send({"Action": "Setvar", "Channel": call.channel or "", "Variable": f"__{BACK_VARIABLE}", "Value": call.queue})
            await self.send({"Action": "BlindTransfer", "Channel": leg, "Context": context, "Exten": exten})
            return {"ok": True, "say": ("transferred", {})}
        # Atxfer keys the door's digits into the agent's channel: the consultation has begun when its channel exists (an abort
        # or a hang-up keyed before that would mix with the digits).
        door = f"Local/{exten}@{context}-"
        await self._confirmed(
            {"Action": "Atxfer", "Channel": leg, "Context": context, "Exten": exten},
            lambda m: m.get("Event") == "Newchannel" and m.get("Channel", "").startswith(door) and m.get("Linkedid") == linkedid,
            Refused(f"the PBX did not start the consultation with {label}", "no_consultation_started", target=label),
        )
        self._consults = {k: v for k, v in self._consults.items() if k in self.board.calls} | {linkedid: leg}
        return {"ok": True, "say": ("consulting", {"target": label})}

    async def _complete(self, who: Who, linkedid: str) -> dict[str, Any]:
        """The agent leaves an attended transfer: hanging up their own leg hands the caller to the consulted party; done
        when Asterisk says the transfer happened (its AttendedTransfer event)."""
        leg = self._consulting(who, linkedid, "complete")
        event = await self._confirmed(
            {"Action": "Hangup", "Channel": phone_side(leg)},
            lambda m: m.get("Event") == "AttendedTransfer" and m.get("OrigTransfererChannel") == leg,
            Refused("no transfer: the PBX did not hand the caller over (no consultation in progress?)", "no_transfer"),
        )
        self._consults.pop(linkedid, None)
        if event is not None and event.get("Result") != "Success":
            raise Refused(f"the transfer failed: {event.get('Result')}", "transfer_failed", why=event.get("Result", ""))
        return {"ok": True, "say": ("transferred", {})}

    async def _cancel(self, who: Who, linkedid: str) -> dict[str, Any]:
        """The agent gives up an attended transfer (CancelAtxfer); done when their leg is back with the caller, off hold
        (Asterisk queues the abort code whether or not a transfer is in progress, so its answer proves nothing)."""
        leg = self._consulting(who, linkedid, "cancel")
        await self._confirmed(
            {"Action": "CancelAtxfer", "Channel": leg},
            lambda m: m.get("Event") == "Unhold" and m.get("Channel") == leg,
            Refused("cancel: the PBX did not bring you back to the caller", "not_back"),
        )
        self._consults.pop(linkedid, None)
        return {"ok": True, "say": ("back_with_caller", {})}

    def _consulting(self, who: Who, linkedid: str, what: str) -> str:
        """The agent's leg, if they are consulting someone (Asterisk holds the caller during an Atxfer's consultation):
        hanging up a leg that is not consulting would end the call, not transfer it."""
        call, leg = self._agent_leg(who, linkedid, what)
        if self._consults.get(linkedid) != leg or not call.consulting:
            raise Refused(f"{what}: no consultation in progress (start an attended transfer first)", "no_consultation")
        return leg

    async def _confirmed(self, action: dict[str, str], proof: Callable[[Message], bool], otherwise: Refused) -> Message | None:
        """Send an action and wait for the event that proves it happened (`otherwise` if none comes in time)."""
        done = self.expect(proof) if self.expect else None
        try:
            await self.send(action)
            if done is None:
                return None
            async with asyncio.timeout(self.directory.confirm_s):
                return await done
        except TimeoutError as exc:
            raise otherwise from exc
        finally:
            if done is not None:
                done.cancel()

    async def _wrapup(self, who: Who, linkedid: str, disposition: str, notes: str) -> None:
        if not self.wrapup(linkedid, who.agent or "", disposition, notes):
            raise Refused(f"call {linkedid!r}: not one of your calls", "not_your_call", call=linkedid)

    async def _refresh(self, who: Who) -> dict[str, Any]:
        """The agent's screen as it would be on reconnecting (colleagues' states for the transfer picker)."""
        return {"view": self.board.agent_view(who.agent or "")}

    async def _spy(self, who: Who, agent: str, interface: str, mode: str) -> None:
        call = self.board.call_of(agent)
        target = call.agent_channel if call is not None and call.agent_channel else spy_prefix(interface)
        await self.send(
            {
                "Action": "Originate",
                "Channel": who.interface or "",
                "Application": "ChanSpy",
                "Data": f"{target},{SPY_OPTIONS[mode]}",
                "CallerID": f"<{who.extension or ''}>",
                "Async": "true",
            }
        )

    async def _force(self, who: Who, agent: str, interface: str, action: str, reason: str | None = None) -> None:
        if action == "logout":
            await self.desk.logout(agent, interface, list(self.directory.queues))
        else:
            await self.desk.pause(agent, interface, reason or "")

    async def _move(self, who: Who, linkedid: str, queue: str) -> None:
        await self.desk.move(self._waiting(who, linkedid, queue), queue)

    async def _priority(self, who: Who, linkedid: str, priority: int) -> None:
        await self.desk.priority(self._waiting(who, linkedid), priority)
