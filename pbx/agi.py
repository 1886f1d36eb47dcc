"""AGI commands that give a call held in AsyncAGI back to the dialplan, in one place for the IVR, the native ACD and the engine.

A call in AsyncAGI carries an absolute timeout (contrib/asterisk's guard, pushed
back by the engine while it lives): it is cleared before the call leaves
AsyncAGI for anything that may last (a queue, an agent, another context).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import unquote

GUARD = "TIMEOUT(absolute)"
GUARD_OFF = f"SET VARIABLE {GUARD} 0"


def play(prompt: str) -> str:
    """A prompt that asks for nothing, as GET DATA (one key cuts it): STREAM FILE of a missing file ends AsyncAGI on Asterisk,
    GET DATA answers `result=-1` and the call stays held (see ivr.machine)."""
    return f"GET DATA {prompt} 1 1"


def agi_env(message: Mapping[str, str]) -> dict[str, str]:
    """AsyncAGIStart's Env (URL-encoded 'key: value' lines) as a dict."""
    env = {}
    for line in unquote(message.get("Env", "")).splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            env[key] = value
    return env


def handback(exten: str, context: str | None = None, guard_off: bool = True) -> list[str]:
    """Leave AsyncAGI for `exten` (in `context`, or the call's current one), the guard off unless the target clears it."""
    return [
        *([GUARD_OFF] if guard_off else []),
        *([f"SET CONTEXT {context}"] if context else []),
        f"SET EXTENSION {exten}",
        "SET PRIORITY 1",
        "ASYNCAGI BREAK",
    ]


# Every call held in AsyncAGI is in [callcenter-ivr] (the IVR's entry; the native ACD holds them there), whose fallback
# extension clears the guard itself.
FALLBACK = handback("fallback", guard_off=False)
_ids = itertools.count(1)  # CommandID: the client matches an AGI action to its AsyncAGIExec by it


class _Sender(Protocol):
    async def send_action(self, action: dict[str, str], *, check: bool = ..., timeout: float | None = ...) -> Any: ...


async def send_to_fallback(client: _Sender, channel: str) -> None:
    """A call left in AsyncAGI with nobody driving it goes to [callcenter-ivr] fallback now (raises the client's AMIError)."""
    for command in FALLBACK:
        await client.send_action(
            {"Action": "AGI", "Channel": channel, "Command": command, "CommandID": f"fallback-{next(_ids)}"}, check=False, timeout=5.0
        )


def guard(channel: str, seconds: float) -> dict[str, str]:
    """The Setvar that arms a held call's guard for `seconds` (0 clears it)."""
    return {"Action": "Setvar", "Channel": channel, "Variable": GUARD, "Value": str(int(seconds))}
