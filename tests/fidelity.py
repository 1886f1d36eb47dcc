"""Comparing AMI event streams per channel, modulo ids and times (simulator vs real Asterisk)."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

# Event fields whose values must agree; times (HoldTime, TalkTime) within a second.
KEY_FIELDS = ("ChannelStateDesc", "CallerIDNum", "Context", "Exten", "Priority", "Application", "AppData", "Queue",
              "Interface", "MemberName", "Position", "Count", "Cause", "Digit", "Direction", "DialStatus", "Reason",
              "Variable", "Value", "Status", "Paused", "PausedReason", "HoldTime", "TalkTime", "Result")
TIMED = {"HoldTime", "TalkTime"}
NOT_COMPARED = {"CEL", "Cdr", "DeviceStateChange", "SuccessfulAuth", "FullyBooted", "OriginateResponse", "RequestBadFormat"}
_LOCAL = re.compile(r"-[0-9a-f]{8};")
_IDS = re.compile(r"\b\d{9,10}\.\d+\b")
_TIMED_VAR = re.compile(r"(TIME|WAIT)(_MS)?$")


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


def per_channel(events: Iterable[Mapping[str, str]], ignore: set[str] = frozenset(), ignore_vars: set[str] = frozenset()) -> dict[str, list[tuple]]:
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
    return [(e["Event"], f, int(e[f])) for e in events for f in sorted(TIMED) if f in e and e[f].isdigit()]
