"""AMI actions of the simulated Asterisk: one pure handler per action.

`handle(sim, action)` returns the frames to send back to the session that
asked (the response, then any list items); events go out through `sim.emit`
like every other event. Messages and errors use Asterisk's wording.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

from pbx.codec import Message
from pbx.simulator.apps import queue_agi_command
from pbx.simulator.core import Channel, Sim

Frames = list[dict[str, str]]
_CALLERID = re.compile(r'^\s*(?:"?([^"<]*?)"?\s*)?<([^>]*)>\s*$')


def parse_callerid(value: str) -> tuple[str, str]:
    """'"Name" <number>' or a bare number -> (number, name)."""
    match = _CALLERID.match(value or "")
    if match:
        return match.group(2).strip(), (match.group(1) or "").strip()
    return (value or "").strip(), ""


def ok(action: Mapping[str, str], message: str | None = None, **extra: str) -> dict[str, str]:
    """A Response: Success frame for `action`."""
    frame = {"Response": "Success"}
    if "ActionID" in action:
        frame["ActionID"] = action["ActionID"]
    if message is not None:
        frame["Message"] = message
    frame.update(extra)
    return frame


def error(action: Mapping[str, str], message: str) -> dict[str, str]:
    """A Response: Error frame for `action`."""
    frame = {"Response": "Error"}
    if "ActionID" in action:
        frame["ActionID"] = action["ActionID"]
    frame["Message"] = message
    return frame


def event_list(action: Mapping[str, str], message: str, items: list[dict[str, str]], complete: str) -> Frames:
    """An EventList: start response, the items tagged with the ActionID, the Complete event."""
    ident = {"ActionID": action["ActionID"]} if "ActionID" in action else {}
    frames = [ok(action, EventList="start", Message=message)]
    frames += [{**item, **ident} for item in items]
    frames.append({"Event": complete, **ident, "EventList": "Complete", "ListItems": str(len(items))})
    return frames


def _channel(sim: Sim, name: str) -> Channel | None:
    return next((c for c in sim.channels.values() if c.name == name), None)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def originate(sim: Sim, action: Message) -> Frames:
    """Originate a Local channel pair: the ;2 half runs the dialplan at the Local target, the ;1 half goes to Context/Exten (or Application)."""
    target = action.get("Channel", "")
    if not target:
        return [error(action, "Channel not specified")]
    match = re.fullmatch(r"Local/([^@]+)@([^/]+)(/n)?", target)
    if not match:
        return [error(action, "Originate failed: the simulator dials Local channels only")]
    if "Exten" not in action and "Application" not in action:
        return [error(action, "Exten not specified")]
    exten, context = match.group(1), match.group(2)
    if not sim.dialplan.exists(context, exten):
        return [error(action, "Originate failed")]
    num, name = parse_callerid(action.get("CallerID", ""))
    variables = [kv for value in action.getall("Variable") for kv in value.split(",") if "=" in kv]
    one, two = sim.local_pair(exten, context)
    sim.chan_event("Newexten", one, ("Extension", exten), ("Application", "AppDial2"), ("AppData", "(Outgoing Line)"), privilege="dialplan")
    for leg in (one, two):
        for kv in variables:
            key, _, value = kv.partition("=")
            sim.set_var(leg, key.strip(), value)
        if num or name:
            sim.set_callerid(leg, num, name)
            sim.set_connected(leg, num, name)
    sim.local_bridge(one, two)
    sim.event("DialBegin", "call", sim.fields(one, "Dest"), ("DialString", f"{exten}@{context}"))
    action_id = action.get("ActionID")
    timeout = float(action.get("Timeout", "30000") or 30000) / 1000

    def respond(response: str, reason: str) -> None:
        frame = {"Event": "OriginateResponse", "Privilege": "call,all"}
        if action_id is not None:
            frame["ActionID"] = action_id
        frame.update({"Response": response, "Channel": one.name, "Context": action.get("Context", ""),
                      "Exten": action.get("Exten", ""), "Reason": reason, "Uniqueid": one.uniqueid,
                      "CallerIDNum": one.cid_num, "CallerIDName": one.cid_name})
        sim.emit(frame)

    def answered(leg: Channel) -> None:
        expiry.cancel()
        sim.event("DialEnd", "call", sim.fields(leg, "Dest"), ("DialStatus", "ANSWER"))
        respond("Success", "4")
        if "Application" in action:
            leg.context, leg.exten = "default", "s"
            app = sim.apps.get(action["Application"].lower())
            if app is not None:
                leg.task = _run_app(sim, leg, app, action.get("Data", ""))
                sim._resume(leg, None)
        else:
            sim.start_pbx(leg, action.get("Context", "default"), action.get("Exten", "s"), int(action.get("Priority", "1") or 1))

    def expired() -> None:
        one.on_answer = None
        sim.event("DialEnd", "call", sim.fields(one, "Dest"), ("DialStatus", "NOANSWER"))
        respond("Failure", "3")
        sim.hangup(one)

    one.on_answer = answered
    expiry = sim.at(timeout, expired)
    sim.start_pbx(two, context, exten, 1)
    return [ok(action, "Originate successfully queued")]


def _run_app(sim: Sim, ch: Channel, app: Callable, data: str):
    try:
        yield from app(ch, data)
    except Exception:
        pass
    ch.task = None
    sim._end_pbx(ch)


def hangup(sim: Sim, action: Message) -> Frames:
    """Hangup a channel by name (SoftHangupRequest with the given Cause)."""
    ch = _channel(sim, action.get("Channel", ""))
    if ch is None:
        return [error(action, "No such channel")]
    sim.request_hangup(ch, soft=True, cause=int(action.get("Cause", "16") or 16))
    return [ok(action, "Channel Hungup")]


def setvar(sim: Sim, action: Message) -> Frames:
    """Setvar on a channel."""
    ch = _channel(sim, action.get("Channel", ""))
    if "Variable" not in action:
        return [error(action, "No variable specified")]
    if ch is None:
        return [error(action, "No such channel")]
    sim.set_var(ch, action["Variable"], action.get("Value", ""))
    return [ok(action, "Variable Set")]


def getvar(sim: Sim, action: Message) -> Frames:
    """Getvar from a channel (or a global)."""
    name = action.get("Variable", "")
    if not name:
        return [error(action, "No variable specified")]
    ch = _channel(sim, action.get("Channel", "")) if action.get("Channel") else None
    if action.get("Channel") and ch is None:
        return [error(action, "No such channel")]
    value = ch.vars.get(name, "") if ch is not None else sim.dialplan.globals.get(name, "")
    return [ok(action, None, Variable=name, Value=value)]


def redirect(sim: Sim, action: Message) -> Frames:
    """Redirect a channel to another dialplan place (leaving any bridge)."""
    ch = _channel(sim, action.get("Channel", ""))
    if ch is None:
        return [error(action, "Channel specified does not exist")]
    context, exten = action.get("Context", ch.context), action.get("Exten", "")
    if not sim.dialplan.exists(context, exten):
        return [error(action, "Redirect failed, extension not found")]
    if ch.task is not None:
        ch.task.close()
        ch.task = None
    if ch.timer is not None:
        ch.timer.cancel()
    ch.waiting = None
    if ch.bridge is not None:
        sim.leave_bridge(ch)
    sim.start_pbx(ch, context, exten, int(action.get("Priority", "1") or 1))
    return [ok(action, "Redirect successful")]


def agi(sim: Sim, action: Message) -> Frames:
    """AGI: queue a command on a channel in AsyncAGI."""
    ch = _channel(sim, action.get("Channel", ""))
    if ch is None:
        return [error(action, "Channel does not exist.")]
    if not action.get("Command"):
        return [error(action, "Command not specified")]
    if not queue_agi_command(ch, action["Command"], action.get("CommandID", ""), sim):
        return [error(action, "Failed to add AGI command to queue")]
    return [ok(action, "Added AGI command to queue")]


def core_show_channels(sim: Sim, action: Message) -> Frames:
    """CoreShowChannels: one CoreShowChannel per live channel."""
    items = []
    for ch in sim.channels.values():
        items.append({"Event": "CoreShowChannel", **dict(sim.fields(ch)), "Application": ch.app, "ApplicationData": ch.appdata,
                      "Duration": _duration(sim.now - ch.created), "BridgeId": ch.bridge.uniqueid if ch.bridge else ""})
    return event_list(action, "Channels will follow", items, "CoreShowChannelsComplete")


def _queue_call(fn: Callable[[], str], action: Message) -> Frames:
    try:
        return [ok(action, fn())]
    except ValueError as exc:
        return [error(action, str(exc))]


def queue_add(sim: Sim, action: Message) -> Frames:
    """QueueAdd."""
    if not action.get("Queue") or not action.get("Interface"):
        return [error(action, "'Queue' and 'Interface' not specified.")]
    return _queue_call(lambda: sim.queues.add(action["Queue"], action["Interface"], action.get("MemberName", ""),
                                             int(action.get("Penalty", "0") or 0), action.get("Paused", "false").lower() in ("1", "true", "yes"),
                                             action.get("StateInterface", "")), action)


def queue_remove(sim: Sim, action: Message) -> Frames:
    """QueueRemove."""
    if not action.get("Queue") or not action.get("Interface"):
        return [error(action, "Need 'Queue' and 'Interface' parameters.")]
    return _queue_call(lambda: sim.queues.remove(action["Queue"], action["Interface"]), action)


def queue_pause(sim: Sim, action: Message) -> Frames:
    """QueuePause."""
    if not action.get("Interface") or "Paused" not in action:
        return [error(action, "Need 'Interface' and 'Paused' parameters.")]
    paused = action["Paused"].lower() in ("1", "true", "yes")
    return _queue_call(lambda: sim.queues.pause(action["Interface"], paused, action.get("Queue"), action.get("Reason", "")), action)


def queue_penalty(sim: Sim, action: Message) -> Frames:
    """QueuePenalty."""
    if not action.get("Interface") or not action.get("Penalty", "").lstrip("-").isdigit():
        return [error(action, "Need 'Interface' and 'Penalty' parameters.")]
    return _queue_call(lambda: sim.queues.penalty(action["Interface"], int(action["Penalty"]), action.get("Queue")), action)


def queue_status(sim: Sim, action: Message) -> Frames:
    """QueueStatus."""
    return event_list(action, "Queue status will follow", sim.queues.status_items(action.get("Queue")), "QueueStatusComplete")


def queue_summary(sim: Sim, action: Message) -> Frames:
    """QueueSummary."""
    return event_list(action, "Queue summary will follow", sim.queues.summary_items(), "QueueSummaryComplete")


HANDLERS: dict[str, Callable[[Sim, Message], Frames]] = {
    "originate": originate, "hangup": hangup, "setvar": setvar, "getvar": getvar, "redirect": redirect, "agi": agi,
    "coreshowchannels": core_show_channels, "queueadd": queue_add, "queueremove": queue_remove,
    "queuepause": queue_pause, "queuepenalty": queue_penalty, "queuestatus": queue_status, "queuesummary": queue_summary,
}


def handle(sim: Sim, action: Message) -> Frames:
    """Answer one action the way Asterisk would."""
    handler = HANDLERS.get(action.get("Action", "").lower())
    if handler is None:
        return [error(action, f"Invalid/unknown command: {action.get('Action', '')}. Use Action: ListCommands to show available commands.")]
    return handler(sim, action)
