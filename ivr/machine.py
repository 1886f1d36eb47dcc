"""The IVR as a pure state machine: `step(flow, state, event) -> (state, commands)`.

Events are what Asterisk tells us (the call reached the IVR, an AGI command
finished, the caller hung up); commands are data an adapter sends over AMI
(`Agi` commands for the channel, `Action`s such as MixMonitorMute) or keeps
(`Record`s: node path, keyed data, the outcome). The machine never touches a
socket, a clock or a database: time comes in with each event.

Prompts are played with GET DATA, never STREAM FILE: Asterisk answers a
STREAM FILE of a missing file `200 result=-1 endpos=0` and then ends AsyncAGI
(the caller drops out of the IVR into the dialplan after AGI()), while GET DATA
answers a missing file `200 result=-1` and AsyncAGI goes on. The same
`result=-1` is what GET DATA answers when the caller hangs up, so the machine
goes on as if the prompt had played with no key pressed, and the next answer
tells which it was: any answer from Asterisk means the channel is still there
(a `missing_prompt` record), none (Ended) means the caller hung up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ivr.flow import Flow, Node, parse_hours
from ivr.validators import CHECKS, mask
from pbx.agi import handback, play
from pbx.tracker import CALLBACK_REQUEST_VAR

NO_FILE = '""'  # GET DATA's prompt argument when there is nothing to play (Asterisk reads the keys only)


@dataclass(frozen=True)
class Started:
    """A call entered AsyncAGI on a channel that this flow serves."""

    channel: str
    caller: str | None
    at: float


@dataclass(frozen=True)
class Result:
    """An AGI command finished: `200 result=49`, `200 result=1234 (timeout)`, `510 Invalid...`."""

    code: int
    value: str
    extra: str
    at: float


@dataclass(frozen=True)
class Ended:
    """The channel left AsyncAGI or hung up."""

    at: float


Event = Started | Result | Ended


@dataclass(frozen=True)
class Agi:
    """An AGI command to queue on the call's channel."""

    command: str


@dataclass(frozen=True)
class Action:
    """An AMI action to send (MixMonitorMute around sensitive input)."""

    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Record:
    """Something to keep: a node visited, an input, data attached for the agent, the final outcome."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Sensitive:
    """The caller starts (on) or has finished (off) keying digits the flow marks sensitive: none of them may be stored."""

    on: bool


Command = Agi | Action | Record | Sensitive


@dataclass(frozen=True)
class State:
    """Where a call is in its flow."""

    channel: str = ""
    node: str = ""
    phase: str = "new"
    attempt: int = 0
    buffer: str = ""
    language: str = ""
    pending: int = 0
    entered_at: float = 0.0
    path: tuple[tuple[str, float], ...] = ()
    inputs: tuple[tuple[str, str], ...] = ()
    attached: tuple[tuple[str, str], ...] = ()
    done: str | None = None
    prompt: str = ""  # the prompt the command waiting for its answer plays
    unheard: str = ""  # a prompt answered `result=-1`: missing if Asterisk answers again, else the caller hung up


def parse_result(text: str) -> tuple[int, str, str]:
    """`200 result=49 (timeout)` -> (200, '49', '(timeout)')."""
    match = re.match(r"\s*(\d{3})\s*(?:result=(\S*))?\s*(.*)", text or "")
    if not match:
        return 0, "", text or ""
    return int(match.group(1)), match.group(2) or "", match.group(3).strip()


class Machine:
    """Runs one flow: the same object serves every call (all per-call data is in `State`)."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        Step = Callable[[State, Node, list[Command]], tuple[State, list[Command]]]
        Answer = Callable[[State, Node, Result], tuple[State, list[Command]]]
        # What entering a node of each kind sends, and what an AGI answer means there ('set' and 'business_hours' are
        # entered in `_enter` itself; a 'queue' node leaves AsyncAGI and hears no more answers).
        self._starts: dict[str, Step] = {
            "play": self._start_play,
            "menu": self._ask,
            "language": self._ask,
            "collect": self._start_collect,
            "queue": self._start_queue,
            "hangup": self._start_hangup,
            "voicemail": self._start_hangup,
            "callback": self._start_hangup,
        }
        self._answers: dict[str, Answer] = {
            "play": self._on_play,
            "menu": self._on_menu,
            "language": self._on_menu,
            "collect": self._on_collect,
            "set": self._on_set,
            "hangup": self._on_hangup,
            "voicemail": self._on_hangup,
            "callback": self._on_hangup,
        }

    # entry ----------------------------------------------------------------
    def step(self, state: State, event: Event) -> tuple[State, list[Command]]:
        """Apply one event to a call; return its new state and what to send or keep."""
        if isinstance(event, Result) and event.code and state.unheard:
            # Asterisk answered a command after the prompt's `result=-1`: the caller was there, the file was not.
            heard: list[Command] = [Record("missing_prompt", {"node": state.node, "prompt": state.unheard, "at": event.at})]
            state = replace(state, unheard="")
        else:
            heard = []
        if state.done is not None:
            return state, heard
        if isinstance(event, Started):
            state = State(channel=event.channel, language=self.flow.default_language, entered_at=event.at)
            return self._enter(state, self.flow.start, event.at, [])
        if isinstance(event, Ended):
            if state.phase == "closing":
                return self._close(state, self.flow.nodes[state.node], [], send=False)
            return self._finish(state, "caller_hung_up", event.at, [])
        if state.pending > 1:
            return replace(state, pending=state.pending - 1), heard
        state = replace(state, pending=0)
        if event.code == 200 and event.value == "-1" and state.prompt:
            # A missing prompt or a hang-up: go on as if it had played with no key pressed; the next answer tells.
            state = replace(state, unheard=state.prompt)
        elif event.code != 200 or event.value == "-1":
            return self._finish(
                state,
                "caller_hung_up" if event.value == "-1" else "agi_error",
                event.at,
                heard + [Record("error", {"node": state.node, "code": event.code, "detail": event.extra})],
            )
        node = self.flow.nodes[state.node]
        state, commands = self._answers[node.kind](state, node, event)
        return state, heard + commands

    # moving between nodes -------------------------------------------------
    def _send(self, state: State, commands: list[Command], *agi: str, prompt: str = "") -> tuple[State, list[Command]]:
        return replace(state, pending=len(agi), prompt=prompt), commands + [Agi(c) for c in agi]

    def _get(self, state: State, commands: list[Command], prompt: str | None, timeout_ms: int, digits: int) -> tuple[State, list[Command]]:
        """GET DATA plays a prompt (any key cuts it) and reads keys; a missing file answers -1 without ending AsyncAGI, unlike STREAM FILE."""
        return self._send(state, commands, f"GET DATA {prompt or NO_FILE} {timeout_ms} {digits}", prompt=prompt or "")

    def _say(self, state: State, commands: list[Command], prompt: str) -> tuple[State, list[Command]]:
        """A prompt that asks for nothing: GET DATA for one key, waiting 1 ms after it (a key only cuts it short)."""
        return self._send(state, commands, play(prompt), prompt=prompt)

    def _enter(self, state: State, node_id: str, at: float, commands: list[Command]) -> tuple[State, list[Command]]:
        for _ in range(len(self.flow.nodes) + 1):
            node = self.flow.nodes[node_id]
            state = replace(state, node=node_id, phase="start", attempt=0, buffer="", path=state.path + ((node_id, at),))
            commands = commands + [Record("step", {"node": node_id, "kind": node.kind, "at": at})]
            if node.kind == "business_hours":
                node_id = self._hours(node, at)
                continue
            if node.kind == "set":
                values = [(str(k), str(v)) for k, v in node.spec["values"].items()]
                state = replace(state, attached=state.attached + tuple(values), phase="setting")
                commands += [Record("attach", dict(values))]
                return self._send(state, commands, *(f'SET VARIABLE {k} "{v}"' for k, v in values))
            return self._starts[node.kind](state, node, commands)
        raise RuntimeError("flow without a node that waits")

    def _finish(self, state: State, outcome: str, at: float, commands: list[Command], **extra: Any) -> tuple[State, list[Command]]:
        spans = [
            {"node": node, "seconds": round(((state.path[i + 1][1] if i + 1 < len(state.path) else at) - entered), 3)}
            for i, (node, entered) in enumerate(state.path)
        ]
        summary = {
            "outcome": outcome,
            "path": spans,
            "language": state.language,
            "inputs": dict(state.inputs),
            "attached": dict(state.attached),
            "seconds": round(at - state.entered_at, 3),
            **extra,
        }
        return replace(state, done=outcome, pending=0), commands + [Record("done", summary)]

    def _hours(self, node: Node, at: float) -> str:
        local = datetime.fromtimestamp(at, self.flow.timezone)
        if local.date() in self.flow.holidays:
            return str(node.spec.get("holiday", node.spec["else"]))
        for days, hours in node.spec["open"].items():
            weekdays, spans = parse_hours(str(days), str(hours))
            if local.weekday() in weekdays and any(a <= local.time() <= b for a, b in spans):
                return str(node.spec["then"])
        return str(node.spec["else"])

    def _prompt(self, state: State, node: Node, key: str = "prompt") -> str | None:
        return node.prompt(key, state.language)

    # play -----------------------------------------------------------------
    def _start_play(self, state: State, node: Node, commands: list[Command]) -> tuple[State, list[Command]]:
        return self._say(state, commands, str(self._prompt(state, node)))

    def _on_play(self, state: State, node: Node, event: Result) -> tuple[State, list[Command]]:
        return self._enter(state, node.spec["next"], event.at, [])

    # menu and language ----------------------------------------------------
    def _choices(self, node: Node) -> dict[str, str]:
        return {str(k): str(v) for k, v in (node.spec.get("options") or node.spec.get("choices") or {}).items()}

    def _ask(self, state: State, node: Node, commands: list[Command]) -> tuple[State, list[Command]]:
        prompt = self._prompt(state, node)
        timeout_ms = int(float(node.spec.get("timeout", 5)) * 1000)
        if prompt is None:
            return self._send(replace(state, phase="wait"), commands, f"WAIT FOR DIGIT {timeout_ms}")
        # The prompt, then the wait for the first key, in one command; one key: a longer option goes on with WAIT FOR DIGIT.
        return self._get(replace(state, phase="prompt"), commands, prompt, timeout_ms, 1)

    @staticmethod
    def _key(state: State, event: Result) -> str:
        """The key in an answer: GET DATA answers the key itself ('#' ends its input: nothing, and no '(timeout)'),
        WAIT FOR DIGIT its ASCII code (0: none)."""
        if state.phase == "prompt":
            return event.value[:1] or ("" if "(timeout)" in event.extra else "#")
        return chr(int(event.value)) if event.value.isdigit() and int(event.value) > 0 else ""

    def _on_menu(self, state: State, node: Node, event: Result) -> tuple[State, list[Command]]:
        timeout_ms = int(float(node.spec.get("timeout", 5)) * 1000)
        if state.phase == "notice":
            return self._ask(state, node, [])
        if state.unheard and state.phase == "prompt":
            # No menu to hear: the caller may still know it, so the keys are waited for as after the prompt.
            return self._send(replace(state, phase="wait"), [], f"WAIT FOR DIGIT {timeout_ms}")
        digit = self._key(state, event)
        choices = self._choices(node)
        if not digit and state.phase == "more" and state.buffer in choices:
            return self._chosen(state, node, choices[state.buffer], event.at, [])
        if not digit:
            return self._retry(state, node, "timeout", event.at)
        if digit == node.spec.get("repeat_key") and not state.buffer:
            return self._ask(state, node, [Record("dtmf", {"node": node.id, "digit": digit, "meaning": "repeat"})])
        typed = state.buffer + digit
        commands: list[Command] = [Record("dtmf", {"node": node.id, "digit": digit})]
        if typed in choices and not any(k != typed and k.startswith(typed) for k in choices):
            return self._chosen(state, node, choices[typed], event.at, commands)
        if any(k.startswith(typed) for k in choices):
            state, more = self._send(replace(state, phase="more", buffer=typed), commands, "WAIT FOR DIGIT 3000")
            return state, more
        return self._retry(replace(state, buffer=""), node, "invalid", event.at, commands)

    def _chosen(self, state: State, node: Node, target: str, at: float, commands: list[Command]) -> tuple[State, list[Command]]:
        if node.kind == "language":
            state = replace(state, language=target)
            return self._enter(state, node.spec["next"], at, commands + [Record("language", {"language": target})])
        return self._enter(state, target, at, commands)

    def _retry(self, state: State, node: Node, why: str, at: float, commands: list[Command] | None = None) -> tuple[State, list[Command]]:
        commands = (commands or []) + [Record("retry", {"node": node.id, "why": why, "attempt": state.attempt + 1})]
        retries = int(node.spec.get("retries", 3 if node.kind != "collect" else 2))
        if state.attempt + 1 > retries:
            if node.kind == "language":
                return self._enter(state, node.spec["next"], at, commands)
            return self._enter(state, node.spec["on_fail"], at, commands)
        state = replace(state, attempt=state.attempt + 1, buffer="")
        notice = self._prompt(state, node, f"{why}_prompt") or (self._prompt(state, node, "invalid_prompt") if why != "timeout" else None)
        if notice:
            return self._say(replace(state, phase="notice"), commands, notice)
        if node.kind == "collect":
            return self._start_collect(state, node, commands)
        return self._ask(state, node, commands)

    # collect --------------------------------------------------------------
    def _start_collect(self, state: State, node: Node, commands: list[Command]) -> tuple[State, list[Command]]:
        timeout_ms = int(float(node.spec.get("timeout", 5)) * 1000)
        if node.spec.get("sensitive"):
            commands = commands + [
                Sensitive(True),
                Action((("Action", "MixMonitorMute"), ("Channel", state.channel), ("Direction", "both"), ("State", "1"))),
            ]
        return self._get(replace(state, phase="collect"), commands, self._prompt(state, node), timeout_ms, int(node.spec["max_digits"]))

    def _on_collect(self, state: State, node: Node, event: Result) -> tuple[State, list[Command]]:
        if state.phase == "notice":
            return self._start_collect(state, node, [])
        if state.unheard:
            # No prompt to hear (the recording stays muted): the digits are read all the same.
            timeout_ms = int(float(node.spec.get("timeout", 5)) * 1000)
            return self._get(state, [], None, timeout_ms, int(node.spec["max_digits"]))
        sensitive = bool(node.spec.get("sensitive"))
        commands: list[Command] = []
        if sensitive:
            commands += [
                Sensitive(False),
                Action((("Action", "MixMonitorMute"), ("Channel", state.channel), ("Direction", "both"), ("State", "0"))),
            ]
        digits = event.value if event.value.isdigit() or event.value == "" else re.sub(r"\D", "", event.value)
        shown = mask(digits) if sensitive else digits
        if not digits:
            return self._retry(state, node, "timeout", event.at, commands)
        if not self._valid(node, digits):
            return self._retry(
                state, node, "invalid", event.at, commands + [Record("input", {"node": node.id, "valid": False, "value": shown})]
            )
        name = node.spec["store_as"]
        # A card number (Luhn) never reaches the agent's screen; a CPF does, to find the customer.
        attach = () if node.spec.get("validate") == "luhn" else ((name, digits),)
        state = replace(state, inputs=state.inputs + ((name, shown),), attached=state.attached + attach)
        commands += [Record("input", {"node": node.id, "name": name, "valid": True, "value": shown, "sensitive": sensitive})]
        return self._enter(state, node.spec["next"], event.at, commands)

    @staticmethod
    def _valid(node: Node, digits: str) -> bool:
        spec = node.spec
        if len(digits) < int(spec.get("min_digits", 1)) or len(digits) > int(spec["max_digits"]):
            return False
        check = spec.get("validate")
        if check == "regex":
            return re.fullmatch(str(spec["regex"]), digits) is not None
        if check in CHECKS:
            return CHECKS[check](digits)
        return True

    # set ------------------------------------------------------------------
    def _on_set(self, state: State, node: Node, event: Result) -> tuple[State, list[Command]]:
        return self._enter(state, node.spec["next"], event.at, [])

    # endings --------------------------------------------------------------
    def _start_queue(self, state: State, node: Node, commands: list[Command]) -> tuple[State, list[Command]]:
        spec = node.spec
        skills = [str(s) for s in spec.get("skills") or []]
        if spec.get("mode") == "native":
            # Our ACD takes the call over still in AsyncAGI: music while it waits, no dialplan hand-off.
            state, commands = self._send(replace(state, phase="leaving"), commands, f"SET MUSIC on {spec.get('music', 'default')}")
            return self._finish(
                state, "acd", state.path[-1][1], commands, queue=spec["queue"], priority=int(spec.get("priority", 0)), skills=skills
            )
        agi = []
        if "priority" in spec:
            agi.append(f"SET VARIABLE QUEUE_PRIO {int(spec['priority'])}")
        if spec.get("skills"):
            agi.append(f'SET VARIABLE IVR_SKILLS "{",".join(map(str, spec["skills"]))}"')
        agi += handback(spec.get("exten", spec["queue"]), spec.get("context"))
        state, commands = self._send(replace(state, phase="leaving"), commands, *agi)
        return self._finish(
            state,
            "queue",
            state.path[-1][1],
            commands,
            queue=spec["queue"],
            priority=int(spec.get("priority", 0)),
            skills=list(spec.get("skills") or []),
        )

    def _start_hangup(self, state: State, node: Node, commands: list[Command]) -> tuple[State, list[Command]]:
        prompt = self._prompt(state, node)
        if prompt:
            # The message first; what follows it is sent once it has played (or was found missing).
            return self._say(replace(state, phase="closing"), commands, prompt)
        return self._close(state, node, commands)

    def _on_hangup(self, state: State, node: Node, event: Result) -> tuple[State, list[Command]]:
        return self._close(state, node, [])

    def _close(self, state: State, node: Node, commands: list[Command], send: bool = True) -> tuple[State, list[Command]]:
        """An ending node's last commands and outcome (a caller who hangs up during its message still gets its outcome)."""
        extra: dict[str, Any] = {}
        if node.kind == "voicemail":
            agi, extra = [f"EXEC VoiceMail {node.spec['mailbox']},u", "HANGUP"], {"mailbox": node.spec["mailbox"]}
        elif node.kind == "callback":
            agi, extra = [f"SET VARIABLE {CALLBACK_REQUEST_VAR} {node.spec['queue']}", "HANGUP"], {"queue": node.spec["queue"]}
        else:
            agi = ["HANGUP"]
        if send:
            state, commands = self._send(replace(state, phase="leaving"), commands, *agi)
        return self._finish(state, node.kind, state.path[-1][1], commands, **extra)
