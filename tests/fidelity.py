"""Comparing AMI event streams per channel, modulo ids and times (simulator vs real Asterisk)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pbx.codec import Message
from pbx.simulator import actions as sim_actions
from pbx.simulator.app_queue import QueueEngine
from pbx.simulator.core import Sim
from pbx.simulator.dialplan import load_dialplan, load_queues
from pbx.trace import actions_sent, connection_epoch, read_trace, replay_messages
from reports.cdr import CDR_COLUMNS, read_cdr

# Event fields whose values must agree; times (HoldTime, TalkTime) within a second.
KEY_FIELDS = (
    "ChannelStateDesc",
    "CallerIDNum",
    "Context",
    "Exten",
    "Priority",
    "Application",
    "AppData",
    "Queue",
    "Interface",
    "MemberName",
    "Position",
    "Count",
    "Cause",
    "Digit",
    "Direction",
    "DialStatus",
    "Reason",
    "Variable",
    "Value",
    "Status",
    "Paused",
    "PausedReason",
    "HoldTime",
    "TalkTime",
    "Result",
)
TIMED = {"HoldTime", "TalkTime"}
NOT_COMPARED = {"CEL", "Cdr", "DeviceStateChange", "SuccessfulAuth", "FullyBooted", "OriginateResponse", "RequestBadFormat"}
_LOCAL = re.compile(r"-[0-9a-f]{8};")
_IDS = re.compile(r"\b\d{9,10}\.\d+\b")
_TIMED_VAR = re.compile(r"(TIME|WAIT|HEARTBEAT)(_MS)?$")


def role(name: str) -> str:
    """A channel's name without the per-call counter: Local/1002@agents-00000001;1 -> Local/1002@agents;1."""
    return _LOCAL.sub(";", name)


def key(event: Mapping[str, str]) -> tuple:
    """The comparable part of one event."""
    values = []
    timed_var = event.get("Event") == "VarSet" and _TIMED_VAR.search(event.get("Variable", "")) and event.get("Value")
    for name in KEY_FIELDS:
        if name in event:
            value = _IDS.sub("<id>", _LOCAL.sub(";", event[name]))
            values.append((name, "~" if name in TIMED or (timed_var and name == "Value") else value))
    return (event["Event"], tuple(values))


def per_channel(
    events: Iterable[Mapping[str, str]], ignore: set[str] = frozenset(), ignore_vars: set[str] = frozenset()
) -> dict[str, list[tuple]]:
    """Every compared event, grouped by the role of the channel it is about."""
    out: dict[str, list[tuple]] = {}
    for event in events:
        name = event.get("Event")
        if not name or name in NOT_COMPARED or name in ignore or "ActionID" in event:
            continue
        if name == "VarSet" and event.get("Variable") in ignore_vars:
            continue
        channel = event.get("Channel") or event.get("LocalOneChannel") or event.get("DestChannel")
        who = role(channel) if channel else ("member " + event["Interface"] if "Interface" in event else "bridges")
        out.setdefault(who, []).append(key(event))
    return out


def timed_values(events: Iterable[Mapping[str, str]]) -> list[tuple[str, str, int]]:
    """(event, field, seconds) for every HoldTime/TalkTime, in order."""
    return [(e["Event"], f, int(e[f])) for e in events if "ActionID" not in e for f in sorted(TIMED) if f in e and e[f].isdigit()]


# Driving the simulator through a recorded scenario --------------------------------


@dataclass
class Run:
    """What the simulator did when given a recorded client's actions, beside what Asterisk did."""

    real_events: list[Message]
    sim_events: list[dict[str, str]]
    real_queue_log: list[str]
    sim_queue_log: list[str] = field(default_factory=list)
    real_cdr: list[dict[str, str]] = field(default_factory=list)
    sim_cdr: list[dict[str, str]] = field(default_factory=list)
    real_responses: dict[str, tuple[str, str]] = field(default_factory=dict)
    sim_responses: dict[str, tuple[str, str]] = field(default_factory=dict)


def drive(traces: Path, name: str) -> Run:
    """Replay a trace's actions into a simulator built from the trace's own asterisk-etc/ at the recorded times.

    The simulator starts as that Asterisk did in the ways the recording shows:
    same epoch, and the member who answered has the least recent last call
    (leastrecent picks by history the recording does not include).
    """
    path = traces / f"{name}.jsonl"
    epoch = connection_epoch(path)
    real = [m for _, m in replay_messages(path) if isinstance(m, Message)]
    run = Run([m for m in real if m.event], [], (traces / f"{name}.queue_log").read_text().splitlines())
    run.real_responses = {
        m["ActionID"]: (m["Response"], m.get("Message", "")) for m in real if m.response and not m.event and "ActionID" in m
    }
    run.real_cdr = read_cdr(traces / f"{name}.Master.csv", [])
    etc = traces / "asterisk-etc"
    sim = Sim(
        load_dialplan(etc / "extensions.conf"),
        start=epoch,
        emit=run.sim_events.append,
        queue_log=run.sim_queue_log.append,
        cdr=lambda row: run.sim_cdr.append(dict(zip(CDR_COLUMNS, map(str, row)))),
    )
    engine = QueueEngine(sim, load_queues(etc / "queues.conf"))
    answered = {line.split("|")[3] for line in run.real_queue_log if "|CONNECT|" in line}
    for queue in engine.queues.values():
        for member in queue.members:
            member.last_call = 0 if member.name in answered else int(epoch) - 60
    times = [r.t for r in read_trace(path) if r.dir == "out"]
    for t, action in zip(times, actions_sent(path)):
        sim.advance(epoch + t)
        if action.action in ("Login", "Logoff", "Ping"):
            continue
        if "Channel" in action:
            action["Channel"] = _same_channel(action["Channel"], run.real_events, run.sim_events)
        frames = sim_actions.handle(sim, action)
        run.sim_responses[action["ActionID"]] = (frames[0]["Response"], frames[0].get("Message", ""))
    sim.advance(epoch + times[-1] + 5)
    return run


def _same_channel(name: str, real: list[Message], simulated: list[dict[str, str]]) -> str:
    """The simulator's channel that plays the part `name` played in the recording."""
    real_names = [m["Channel"] for m in real if m.event == "Newchannel" and role(m["Channel"]) == role(name)]
    sim_names = [m["Channel"] for m in simulated if m.get("Event") == "Newchannel" and role(m["Channel"]) == role(name)]
    return sim_names[real_names.index(name)] if name in real_names and len(sim_names) > real_names.index(name) else name


def cdr_shape(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """CDR rows as (channel, dstchannel, dst, context, app, data, disposition, userfield, clid), channels by role, sorted:
    the order rows are written in follows Asterisk's threads."""
    fields = ("dst", "dcontext", "lastapp", "lastdata", "disposition", "userfield", "clid")
    return sorted((role(r["channel"]), role(r["dstchannel"]), *(r[f] for f in fields)) for r in rows)


def queue_log_shape(lines: list[str]) -> list[tuple[str, ...]]:
    """queue_log lines without the epoch and with ids masked."""
    return [tuple(_IDS.sub("<id>", part) for part in line.split("|")[1:]) for line in lines]
