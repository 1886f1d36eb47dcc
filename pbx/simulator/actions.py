"""AMI actions of the simulated Asterisk: one pure handler per action.

`handle(sim, action)` returns the frames to send back to the session that
asked (the response, then any list items); events go out through `sim.emit`
like every other event. Messages and errors use Asterisk's wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pbx.amiserver import Frames, event_list, reply, unknown
from pbx.codec import Message
from pbx.simulator.apps import queue_agi_command
from pbx.simulator.core import Channel, Sim
from pbx.simulator.transfer import AttendedTransfer

_CALLERID = re.compile(r'^\s*(?:"?([^"<]*?)"?\s*)?<([^>]*)>\s*$')


def parse_callerid(value: str) -> tuple[str, str]:
    """'"Name" <number>' or a bare number -> (number, name)."""
    match = _CALLERID.match(value or "")
    if match:
        return match.group(2).strip(), (match.group(1) or "").strip()
    return (value or "").strip(), ""


class ErrorResponse(Exception):
    """An action Asterisk would answer with Response: Error and this message."""


def _channel(sim: Sim, name: str) -> Channel | None:
    return next((c for c in sim.channels.values() if c.name == name), None)


def _need_channel(sim: Sim, action: Message, missing: str, header: str = "Channel") -> Channel:
    ch = _channel(sim, action.get(header, ""))
    if ch is None:
        raise ErrorResponse(missing)
    return ch


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def originate(sim: Sim, action: Message) -> Frames:
    """Originate a Local channel pair: the ;2 half runs the dialplan at the Local target, the ;1 half goes to Context/Exten (or Application)."""
    target = action.get("Channel", "")
    if not target:
        return [reply(action, "Error", Message="Channel not specified")]
    match = re.fullmatch(r"Local/([^@]+)@([^/]+)(/n)?", target)
    if not match:
        return [reply(action, "Error", Message="Originate failed: the simulator dials Local channels only")]
    if "Exten" not in action and "Application" not in action:
        return [reply(action, "Error", Message="Exten not specified")]
    exten, context = match.group(1), match.group(2)
    num, name = parse_callerid(action.get("CallerID", ""))
    action_id = action.get("ActionID")

    def respond(response: str, reason: str, leg: Channel | None = None) -> None:
        """OriginateResponse: on a failure Asterisk names the action's own Channel string and no uniqueid."""
        frame = {"Event": "OriginateResponse", "Privilege": "call,all"}
        if action_id is not None:
            frame["ActionID"] = action_id
        frame.update(
            {
                "Response": response,
                "Channel": leg.name if leg is not None else target,
                "Context": action.get("Context", ""),
                "Exten": action.get("Exten", ""),
                "Reason": reason,
                "Uniqueid": leg.uniqueid if leg is not None else "<unknown>",
                "CallerIDNum": num or "<unknown>",
                "CallerIDName": name or "<unknown>",
            }
        )
        sim.emit(frame)

    if not sim.dialplan.exists(context, exten):
        # Asterisk queues it, then fails it (Reason 0) at once: core_local finds no such extension/context.
        sim.at(0.0, respond, "Failure", "0")
        return [reply(action, Message="Originate successfully queued")]
    variables = [kv for value in action.getall("Variable") for kv in value.split(",") if "=" in kv]
    one, two = sim.local_pair(exten, context)
    one.cdr_party, one.app, one.appdata = True, "AppDial2", "(Outgoing Line)"
    sim.chan_event("Newexten", one, ("Extension", exten), ("Application", "AppDial2"), ("AppData", "(Outgoing Line)"), privilege="dialplan")
    for leg, order in ((one, variables[::-1]), (two, variables)):  # Asterisk sets them on ;1 last first, copies them to ;2 in order
        for kv in order:
            key, _, value = kv.partition("=")
            sim.set_var(leg, key.strip(), value)
        if num or name:
            sim.set_callerid(leg, num, name)
            sim.set_connected(leg, num, name)
    sim.local_bridge(one, two)
    sim.event("DialBegin", "call", sim.fields(one, "Dest"), ("DialString", f"{exten}@{context}"))
    timeout = float(action.get("Timeout", "30000") or 30000) / 1000

    def answered(leg: Channel) -> None:
        expiry.cancel()
        sim.event("DialEnd", "call", sim.fields(leg, "Dest"), ("DialStatus", "ANSWER"))
        respond("Success", "4", leg)
        if "Application" in action:
            leg.context, leg.exten = "default", "s"
            leg.app, leg.appdata = action["Application"], action.get("Data", "")
            app = sim.apps.get(action["Application"].lower())
            if app is not None:
                leg.task = _run_app(sim, leg, app, action.get("Data", ""))
                sim._resume(leg, None)
        else:
            sim.start_pbx(leg, action.get("Context", "default"), action.get("Exten", "s"), int(action.get("Priority", "1") or 1))

    def expired() -> None:
        """Rang out: Reason 3, no DialEnd, both halves end with 19 (no answer), as Asterisk 22 does."""
        one.on_answer = None
        respond("Failure", "3")
        one.vars["__cause"] = "19"
        sim.hangup(one)

    def refused(leg: Channel) -> None:
        """The phone hung up before answering (a Hangup(), a rejected call): Reason 0 at once; Dial's status from the cause."""
        if one.on_answer is None:
            return
        one.on_answer = None
        expiry.cancel()
        cause = leg.vars.get("__cause", "16")
        sim.event("DialEnd", "call", sim.fields(leg, "Dest"), ("DialStatus", {"17": "BUSY", "34": "CONGESTION"}.get(cause, "NOANSWER")))
        respond("Failure", "0")

    one.on_answer = answered
    one.on_hangup.append(refused)
    expiry = sim.at(timeout, expired)
    sim.start_pbx(two, context, exten, 1)
    return [reply(action, Message="Originate successfully queued")]


def _run_app(sim: Sim, ch: Channel, app: Callable, data: str):
    try:
        yield from app(ch, data)
    except Exception:
        pass
    ch.task = None
    sim.end_pbx(ch)


def hangup(sim: Sim, action: Message) -> Frames:
    """Hangup a channel by name: SoftHangupRequest, then Hangup with the given Cause (0, none set, as Asterisk, without one)."""
    ch = _need_channel(sim, action, "No such channel")
    cause = int(action.get("Cause", "0") or 0)
    sim.request_hangup(ch, soft=True, cause=cause, told=cause or 16)
    return [reply(action, Message="Channel Hungup")]


def setvar(sim: Sim, action: Message) -> Frames:
    """Setvar on a channel, or a global variable when no Channel is given."""
    ch = _channel(sim, action.get("Channel", ""))
    if "Variable" not in action:
        return [reply(action, "Error", Message="No variable specified")]
    if not action.get("Channel"):
        sim.dialplan.globals[action["Variable"]] = action.get("Value", "")
        sim.event(
            "VarSet",
            "dialplan",
            ("Channel", "none"),
            ("Uniqueid", "none"),
            ("Variable", action["Variable"]),
            ("Value", action.get("Value", "")),
        )
        return [reply(action, Message="Variable Set")]
    if ch is None:
        return [reply(action, "Error", Message="No such channel")]
    sim.write(ch, action["Variable"], action.get("Value", ""))
    return [reply(action, Message="Variable Set")]


def getvar(sim: Sim, action: Message) -> Frames:
    """Getvar from a channel (or a global)."""
    name = action.get("Variable", "")
    if not name:
        return [reply(action, "Error", Message="No variable specified")]
    ch = _channel(sim, action.get("Channel", "")) if action.get("Channel") else None
    if action.get("Channel") and ch is None:
        return [reply(action, "Error", Message="No such channel")]
    value = ch.vars.get(name, "") if ch is not None else sim.dialplan.globals.get(name, "")
    return [reply(action, Variable=name, Value=value)]


def redirect(sim: Sim, action: Message) -> Frames:
    """Redirect a channel to another dialplan place (leaving any bridge)."""
    ch = _need_channel(sim, action, "Channel specified does not exist")
    context, exten = action.get("Context", ch.context), action.get("Exten", "")
    if not sim.dialplan.exists(context, exten):
        return [reply(action, "Error", Message="Redirect failed, extension not found")]
    sim.redirect(ch, context, exten, int(action.get("Priority", "1") or 1))
    return [reply(action, Message="Redirect successful")]


def agi(sim: Sim, action: Message) -> Frames:
    """AGI: queue a command on a channel in AsyncAGI."""
    ch = _need_channel(sim, action, "Channel does not exist.")
    if not action.get("Command"):
        return [reply(action, "Error", Message="Command not specified")]
    if not queue_agi_command(ch, action["Command"], action.get("CommandID", ""), sim):
        return [reply(action, "Error", Message="Failed to add AGI command to queue")]
    return [reply(action, Message="Added AGI command to queue")]


def core_show_channels(sim: Sim, action: Message) -> Frames:
    """CoreShowChannels: one CoreShowChannel per live channel."""
    items = []
    for ch in sim.channels.values():
        items.append(
            {
                "Event": "CoreShowChannel",
                **dict(sim.fields(ch)),
                "Application": ch.app,
                "ApplicationData": ch.appdata,
                "Duration": _duration(sim.now - ch.created),
                "BridgeId": ch.bridge.uniqueid if ch.bridge else "",
            }
        )
    return event_list(action, "Channels will follow", items, "CoreShowChannelsComplete")


def _queue_call(fn: Callable[[], str], action: Message) -> Frames:
    try:
        return [reply(action, Message=fn())]
    except ValueError as exc:
        return [reply(action, "Error", Message=str(exc))]


def queue_add(sim: Sim, action: Message) -> Frames:
    """QueueAdd."""
    if not action.get("Queue") or not action.get("Interface"):
        return [reply(action, "Error", Message="'Queue' and 'Interface' not specified.")]
    return _queue_call(
        lambda: sim.queues.add(
            action["Queue"],
            action["Interface"],
            action.get("MemberName", ""),
            int(action.get("Penalty", "0") or 0),
            action.get("Paused", "false").lower() in ("1", "true", "yes"),
            action.get("StateInterface", ""),
        ),
        action,
    )


def queue_remove(sim: Sim, action: Message) -> Frames:
    """QueueRemove."""
    if not action.get("Queue") or not action.get("Interface"):
        return [reply(action, "Error", Message="Need 'Queue' and 'Interface' parameters.")]
    return _queue_call(lambda: sim.queues.remove(action["Queue"], action["Interface"]), action)


def queue_pause(sim: Sim, action: Message) -> Frames:
    """QueuePause."""
    if not action.get("Interface") or "Paused" not in action:
        return [reply(action, "Error", Message="Need 'Interface' and 'Paused' parameters.")]
    paused = action["Paused"].lower() in ("1", "true", "yes")
    return _queue_call(lambda: sim.queues.pause(action["Interface"], paused, action.get("Queue"), action.get("Reason", "")), action)


def queue_penalty(sim: Sim, action: Message) -> Frames:
    """QueuePenalty."""
    if not action.get("Interface") or not action.get("Penalty", "").lstrip("-").isdigit():
        return [reply(action, "Error", Message="Need 'Interface' and 'Penalty' parameters.")]
    return _queue_call(lambda: sim.queues.penalty(action["Interface"], int(action["Penalty"]), action.get("Queue")), action)


def queue_change_priority(sim: Sim, action: Message) -> Frames:
    """QueueChangePriorityCaller."""
    if not action.get("Queue") or not action.get("Caller") or not action.get("Priority", "").lstrip("-").isdigit():
        return [reply(action, "Error", Message="'Queue', 'Caller' and 'Priority' must be provided")]
    return _queue_call(lambda: sim.queues.change_priority(action["Queue"], action["Caller"], int(action["Priority"])), action)


def queue_status(sim: Sim, action: Message) -> Frames:
    """QueueStatus."""
    return event_list(action, "Queue status will follow", sim.queues.status_items(action.get("Queue")), "QueueStatusComplete")


def queue_summary(sim: Sim, action: Message) -> Frames:
    """QueueSummary."""
    return event_list(action, "Queue summary will follow", sim.queues.summary_items(), "QueueSummaryComplete")


def bridge(sim: Sim, action: Message) -> Frames:
    """Bridge two channels: each leaves what it was doing and they are bridged together."""
    one = _channel(sim, action.get("Channel1", ""))
    two = _channel(sim, action.get("Channel2", ""))
    if one is None or two is None:
        return [
            reply(
                action,
                "Error",
                Message=f"Channel1 does not exist: {action.get('Channel1', '')}"
                if one is None
                else f"Channel2 does not exist: {action.get('Channel2', '')}",
            )
        ]
    for ch in (one, two):
        _stop_dialplan(sim, ch)
    sim.bridge(one, two)
    return [reply(action, Message="Channels have been bridged")]


def _stop_dialplan(sim: Sim, ch: Channel) -> None:
    if ch.task is not None:
        ch.task.close()
        ch.task = None
    if ch.timer is not None:
        ch.timer.cancel()
    ch.waiting = None
    if ch.bridge is not None:
        sim.leave_bridge(ch)


def blind_transfer(sim: Sim, action: Message) -> Frames:
    """BlindTransfer: the transferer's bridged peer goes to Context/Exten; the transferer is hung up."""
    ch = _need_channel(sim, action, "No such channel")
    context, exten = action.get("Context", ch.context), action.get("Exten", "")
    if not exten or not sim.dialplan.exists(context, exten):
        return [reply(action, "Error", Message="Transfer failed: extension not found")]
    peer = next((c for c in ch.bridge.channels if c is not ch), None) if ch.bridge else None
    if peer is None:
        return [reply(action, "Error", Message="Transfer failed: channel is not bridged")]
    sim.event(
        "BlindTransfer",
        "call",
        ("Result", "Success"),
        sim.fields(ch, "Transferer"),
        sim.fields(peer, "Transferee"),
        ("BridgeUniqueid", ch.bridge.uniqueid),
        ("IsExternal", "No"),
        ("Context", context),
        ("Extension", exten),
    )
    if peer.task is not None and peer.waiting == "block":
        sim.wake(peer, ("transfer", context, exten))
    else:
        _stop_dialplan(sim, peer)
        sim.start_pbx(peer, context, exten, 1)
    return [reply(action, Message="Transfer succeeded")]


def atxfer(sim: Sim, action: Message) -> Frames:
    """Atxfer: consult the target with the peer on hold; the transfer completes when the transferer hangs up."""
    ch = _need_channel(sim, action, "No such channel")
    context, exten = action.get("Context", ch.context), action.get("Exten", "")
    if not exten or not sim.dialplan.exists(context, exten):
        return [reply(action, "Error", Message="Extension does not exist")]
    if ch.bridge is None or len(ch.bridge.channels) != 2 or ch.atxfer is not None:
        return [reply(action, "Error", Message="Atxfer failed: channel is not in a two-party bridge")]
    AttendedTransfer.start(sim, ch, context, exten)
    return [reply(action, Message="Atxfer successfully queued")]


def cancel_atxfer(sim: Sim, action: Message) -> Frames:
    """CancelAtxfer: the transferer gives up the consultation and is back with the peer, 250 ms later as on Asterisk (which
    queues the atxferabort code's DTMF on the channel, and so says queued whether or not a transfer is in progress)."""
    ch = _need_channel(sim, action, "No such channel")
    if ch.atxfer is not None:
        sim.at(0.25, ch.atxfer.cancel)
    return [reply(action, Message="CancelAtxfer successfully queued")]


def mixmonitor(sim: Sim, action: Message) -> Frames:
    """MixMonitor: start recording a channel to a WAV file."""
    ch = _need_channel(sim, action, "No such channel")
    if not action.get("File"):
        return [reply(action, "Error", Message="No file specified")]
    path = sim.recordings.start(ch, action["File"])
    sim.set_var(ch, "MIXMONITOR_FILENAME", str(path))
    sim.chan_event("MixMonitorStart", ch)
    return [reply(action, Message="MixMonitor started")]


def stop_mixmonitor(sim: Sim, action: Message) -> Frames:
    """StopMixMonitor: finish the channel's recording and write the file."""
    ch = _channel(sim, action.get("Channel", ""))
    if ch is None or not sim.recordings.stop(ch):
        return [reply(action, "Error", Message="Could not stop MixMonitor")]
    sim.chan_event("MixMonitorStop", ch)
    return [reply(action, Message="MixMonitor stopped")]


def mixmonitor_mute(sim: Sim, action: Message) -> Frames:
    """MixMonitorMute: silence (State 1) or resume (State 0) the recording, as for card numbers."""
    ch = _need_channel(sim, action, "No such channel")
    on = action.get("State", "1") in ("1", "true", "yes", "on")
    if not sim.recordings.mute(ch, on):
        return [reply(action, "Error", Message="Cannot set mute flag")]
    sim.chan_event("MixMonitorMute", ch, ("Direction", action.get("Direction", "both")), ("State", "1" if on else "0"))
    return [reply(action, Message="MixMonitorMute flag set" if on else "MixMonitorMute flag unset")]


HANDLERS: dict[str, Callable[[Sim, Message], Frames]] = {
    "bridge": bridge,
    "blindtransfer": blind_transfer,
    "atxfer": atxfer,
    "cancelatxfer": cancel_atxfer,
    "mixmonitor": mixmonitor,
    "stopmixmonitor": stop_mixmonitor,
    "mixmonitormute": mixmonitor_mute,
    "originate": originate,
    "hangup": hangup,
    "setvar": setvar,
    "getvar": getvar,
    "redirect": redirect,
    "agi": agi,
    "coreshowchannels": core_show_channels,
    "queueadd": queue_add,
    "queueremove": queue_remove,
    "queuepause": queue_pause,
    "queuepenalty": queue_penalty,
    "queuechangeprioritycaller": queue_change_priority,
    "queuestatus": queue_status,
    "queuesummary": queue_summary,
}


def handle(sim: Sim, action: Message) -> Frames:
    """Answer one action the way Asterisk would."""
    handler = HANDLERS.get(action.get("Action", "").lower())
    if handler is None:
        return [unknown(action)]
    try:
        return handler(sim, action)
    except ErrorResponse as refusal:
        return [reply(action, "Error", Message=str(refusal))]
