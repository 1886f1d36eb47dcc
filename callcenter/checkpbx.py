"""`callcenter check-pbx`: log in as the configured AMI user and say, line by line, what the engine needs and the PBX lacks.

Every line is ``ok      <what>``, ``MISSING <what>: <why and how to fix>`` or
``UNKNOWN <what>: <why it cannot be checked, what to make sure of>``; the
exit code is 1 when a line is MISSING, 0 otherwise (UNKNOWN does not fail).

Everything is asked harmlessly, as the configured (least-privilege) user:

- write classes (exact): one action whose privilege is that class, aimed at a
  channel or interface that cannot exist (``CallcenterCheckPbx/none``, a
  technology Asterisk does not have). Asterisk checks the privilege before the
  action runs, so "Permission denied" means the class is missing and any other
  answer ("No such channel", "Interface not found") proves it while doing
  nothing. ``reporting`` has no action of its own (CoreShowChannels is
  system,reporting): the line says whether CoreShowChannels, which the engine
  needs, is allowed.
- read classes: exact where an event of the class can be provoked without a
  call: ``system`` (Asterisk sends FullyBooted at login), ``dialplan`` (a
  VarSet for our own global ``CALLCENTER_CHECK_PBX``, set with Setvar), ``call``
  (the OriginateResponse of an asynchronous Originate to the missing channel
  technology: it fails at once, makes no channel and no CDR). ``agent``,
  ``dtmf`` and ``agi`` events need a live call; for them (and the others when
  their trigger is not allowed) the user's own ``manager.conf`` category is
  read with GetConfig (system or config write), which is the file on disk,
  not necessarily what is loaded; without GetConfig: UNKNOWN.
- timestampevents: the Timestamp header of the provoked events (else
  manager.conf [general] through GetConfig).
- modules: ModuleCheck (system write). Without it, a module whose AMI action
  Asterisk knows (app_queue, res_agi, app_mixmonitor: "Permission denied" is
  not "Invalid/unknown command") is still proven loaded; the rest are UNKNOWN.
- the attended-transfer code: Getvar of ``FEATUREMAP(atxfer)`` with no
  Channel (Asterisk evaluates it on a dummy channel: the running features.conf).
- dialplan: ShowDialPlan (config or reporting write) of each context and key
  extension (it matches patterns, so ``support`` finds ``_[a-z].``).
- prompts: every prompt a flow (and the native ACD) plays, in
  ``<astdatadir>/sounds/en/`` or ``<astdatadir>/sounds/`` (where Asterisk finds
  a prompt whatever the channel's language), in any sound format. ``STAT()``
  answers that exactly, but Asterisk blocks it for AMI (a "dangerous" function)
  unless ``live_dangerously = yes`` and func_env is loaded; otherwise, when
  Asterisk runs on this host (the AMI peer is this machine), the files are
  looked up on disk; otherwise UNKNOWN.
- queues: QueueSummary (no privilege needed) of each queue app_queue must have.

Why a plain blocking socket and not the `asterisk-ami` package: tried (0.1.7,
the current release, alpha, last released 2024-01) against the real Asterisk,
its reader thread dies on the first idle ``timeout`` seconds (the socket
timeout ends its loop; every later action answers None), its futures resolve
on the first response of an EventList and leave the list (ShowDialPlan,
QueueSummary, CoreShowChannels) to hand-written event listeners, it sends
values without refusing CR/LF (header injection), and it warns on Python 3.11
(``notifyAll``). A one-shot check needs none of its threads: a socket and our
sans-IO `pbx.codec` (which parses every AMI frame the engine sees) do it in a
few lines, synchronously.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from acd.native import acd_prompt
from ivr.flow import Flow
from kernel.config import Settings
from kernel.exceptions import ActionTimeout, AMIConnectionError, AuthenticationError
from pbx.codec import AMICodec, Banner, Message, encode

OK, MISSING, UNKNOWN = "ok", "MISSING", "UNKNOWN"
PROBE = "CallcenterCheckPbx/none"  # a channel of a technology Asterisk does not have: no action can touch anything
CHECK_VAR = "CALLCENTER_CHECK_PBX"  # our own global: Setvar of it provokes a VarSet
EVENT_WAIT_S = 1.5
DENIED = "Permission denied"
UNKNOWN_COMMAND = "Invalid/unknown command"
RELOAD = "then `manager reload`"

# class -> (what the engine sends with it, the harmless probe)
WRITE: dict[str, tuple[str, dict[str, str]]] = {
    "call": (
        "Hangup, Redirect, Atxfer, BlindTransfer, Setvar, MixMonitorMute",
        {"Action": "Redirect", "Channel": PROBE, "Context": "callcenter-check-pbx", "Exten": "s", "Priority": "1"},
    ),
    "originate": (
        "Originate: click-to-dial, call backs, ChanSpy for supervisors",
        {"Action": "Originate", "Channel": PROBE, "Application": "NoOp", "Async": "true"},
    ),
    "agent": ("QueueAdd, QueueRemove, QueuePause, QueuePenalty", {"Action": "QueuePause", "Interface": PROBE, "Paused": "false"}),
    "agi": ("AGI: drives the IVR and the native ACD", {"Action": "AGI", "Channel": PROBE, "Command": "NOOP"}),
    "reporting": ("CoreShowChannels: the resync after a reconnect", {"Action": "CoreShowChannels"}),
    "system": ("MixMonitor: recordings", {"Action": "MixMonitor", "Channel": PROBE, "File": "callcenter-check-pbx.wav"}),
}
READ: dict[str, str] = {
    "call": "Newchannel, Hangup, Dial*, Bridge*, Hold, transfers, OriginateResponse",
    "agent": "Queue*, Agent* of app_queue",
    "dtmf": "DTMFBegin/DTMFEnd: keys in the IVR and in queue",
    "agi": "AsyncAGIStart/Exec/End: the IVR",
    "system": "FullyBooted, Shutdown, Reload: an Asterisk restart",
    "dialplan": "VarSet: recording opt-out, QUEUESTATUS, call-back legs",
}
ALL_CLASSES = {
    "system",
    "call",
    "log",
    "verbose",
    "command",
    "agent",
    "user",
    "config",
    "dtmf",
    "reporting",
    "cdr",
    "dialplan",
    "originate",
    "agi",
    "cc",
    "aoc",
    "test",
    "security",
    "message",
}
MODULES: dict[str, str] = {  # contrib/asterisk/modules.conf
    "res_agi": "AsyncAGI: the IVR and the native ACD",
    "app_queue": "app_queue mode and the fallback queue",
    "app_dial": "Dial: agents' phones, call backs, transfers",
    "app_mixmonitor": "recordings",
    "res_mutestream": "the panel's hold (MUTEAUDIO)",
    "app_chanspy": "supervisors' listen, whisper, barge",
    "bridge_builtin_features": "the attended-transfer feature (Atxfer)",
    "res_musiconhold": "music while callers wait",
    "app_playback": "Playback",
    "func_timeout": "TIMEOUT(absolute): frees the callers of a silent engine",
    "func_global": "GLOBAL(): the IVR heartbeat",
    "func_channel": "CHANNEL()",
    "func_callerid": "CALLERID()",
    "func_logic": "IF() and the other logic functions",
    "pbx_config": "extensions.conf",
}
# a module whose AMI action Asterisk knows is loaded, even when the action itself is not allowed
MODULE_BY_ACTION = {"res_agi": "agi", "app_queue": "agent", "app_mixmonitor": "system"}
# Asterisk's sound file extensions (format_*.so): the first ones are tried first
SOUND_EXTS = (
    "wav",
    "gsm",
    "ulaw",
    "alaw",
    "sln",
    "sln16",
    "g722",
    "WAV",
    "wav16",
    "wav49",
    "ul",
    "mu",
    "pcm",
    "al",
    "alw",
    "raw",
    "g729",
    "ilbc",
    "siren7",
    "siren14",
    "g719",
    "ogg",
    "opus",
)
COMMON_EXTS = 7


@dataclass(frozen=True)
class Line:
    """One line of the report."""

    status: str
    what: str
    why: str = ""

    def __str__(self) -> str:
        return f"{self.status:<7} {self.what}" + (f": {self.why}" if self.why else "")


class Session:
    """One blocking AMI connection: actions pipelined and matched by ActionID, list events collected, a few events kept."""

    def __init__(self, host: str, port: int, timeout: float, max_frame: int, keep: Callable[[Message], bool]) -> None:
        self.address, self.timeout, self.keep = f"{host}:{port}", timeout, keep
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise AMIConnectionError(f"cannot reach the AMI at {self.address}: {exc.strerror or exc}") from exc
        self.codec = AMICodec(max_frame)
        self.banner: str | None = None
        self.responses: dict[str, Message] = {}
        self.lists: dict[str, list[Message]] = {}
        self.complete: set[str] = set()
        self.events: list[Message] = []
        self._ids = itertools.count(1)

    def same_host(self) -> bool:
        """Whether Asterisk answers from this machine (loopback, or our own address)."""
        try:
            peer, mine = self.sock.getpeername()[0], self.sock.getsockname()[0]
            return ipaddress.ip_address(peer).is_loopback or peer == mine
        except (OSError, ValueError):
            return False

    def send(self, fields: dict[str, str]) -> str:
        """Send one action; its ActionID."""
        action_id = f"check-{next(self._ids)}"
        try:
            self.sock.sendall(encode({**fields, "ActionID": action_id}))
        except OSError as exc:
            raise AMIConnectionError(f"the AMI connection to {self.address} failed: {exc.strerror or exc}") from exc
        return action_id

    def _pump(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        except OSError as exc:
            raise AMIConnectionError(f"the AMI connection to {self.address} failed: {exc.strerror or exc}") from exc
        if not data:
            raise AMIConnectionError(f"Asterisk at {self.address} closed the AMI connection")
        for item in self.codec.feed(data):
            if isinstance(item, Banner):
                self.banner = item.version
            elif isinstance(item, Message):
                self._take(item)

    def _take(self, message: Message) -> None:
        action_id = message.get("ActionID")
        if "Event" in message:
            if action_id is not None and action_id.startswith("check-"):
                self.lists.setdefault(action_id, []).append(message)
                if message.get("EventList", "").lower() == "complete":
                    self.complete.add(action_id)
            elif self.keep(message):
                self.events.append(message)
        elif "Response" in message and action_id is not None:
            self.responses[action_id] = message

    def until(self, done: Callable[[], bool], seconds: float) -> bool:
        """Read until `done()` or the time is up; whether it is done."""
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            self._pump(deadline)
        return done()

    def response(self, action_id: str) -> Message:
        """The response to an action sent, waiting for it (and, for a list, for its last event)."""
        if not self.until(lambda: action_id in self.responses, self.timeout):
            raise ActionTimeout(f"Asterisk at {self.address} did not answer within {self.timeout:g} s")
        reply = self.responses[action_id]
        if reply.get("EventList", "").lower() == "start" and not self.until(lambda: action_id in self.complete, self.timeout):
            raise ActionTimeout(f"Asterisk at {self.address} did not finish a list within {self.timeout:g} s")
        return reply

    def ask(self, fields: dict[str, str]) -> Message:
        """Send one action and wait for its answer."""
        return self.response(self.send(fields))

    def listed(self, reply: Message) -> list[Message]:
        """The events that came with an action's ActionID (a list's items, an OriginateResponse)."""
        return self.lists.get(reply.get("ActionID", ""), [])

    def ask_many(self, actions: Sequence[dict[str, str]]) -> list[Message]:
        """Send every action at once (pipelined), then collect the answers in order."""
        return [self.response(action_id) for action_id in [self.send(fields) for fields in actions]]

    def close(self) -> None:
        """Log off and close."""
        try:
            self.sock.settimeout(1.0)
            self.sock.sendall(encode({"Action": "Logoff", "ActionID": "check-logoff"}))
        except OSError:
            pass
        self.sock.close()


def _denied(reply: Message) -> bool:
    return reply.get("Response") == "Error" and reply.get("Message", "").startswith(DENIED)


def _unknown_command(reply: Message) -> bool:
    return reply.get("Response") == "Error" and reply.get("Message", "").startswith(UNKNOWN_COMMAND)


def _classes(text: str) -> set[str]:
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    return ALL_CLASSES if "all" in names else names


def _config_category(reply: Message, name: str) -> dict[str, str] | None:
    """GetConfig's answer for one category: key -> last value (None when the category is not there)."""
    if reply.get("Response") != "Success":
        return None
    numbers = {key.split("-")[1] for key, value in reply.items() if key.startswith("Category-") and value == name}
    if not numbers:
        return None
    values: dict[str, str] = {}
    for key, value in reply.items():
        parts = key.split("-")
        if parts[0] == "Line" and len(parts) == 3 and parts[1] in numbers and "=" in value:
            option, _, setting = value.partition("=")
            values[option.strip().lower()] = setting.strip()
    return values


class Check:
    """The whole check, on one session; `run()` returns the report's lines."""

    def __init__(self, settings: Settings, flows: Sequence[Flow]) -> None:
        self.settings, self.flows = settings, list(flows)
        self.token = f"{int(time.time())}-{os.getpid()}"
        self.user = settings.ami.username
        self.lines: list[Line] = []

    def _keep(self, message: Message) -> bool:
        event = message.get("Event")
        return event == "FullyBooted" or (event == "VarSet" and message.get("Variable") == CHECK_VAR and message.get("Value") == self.token)

    def run(self) -> list[Line]:
        ami = self.settings.ami
        assert ami.secret is not None
        session = Session(ami.host, ami.port, ami.connect_timeout, ami.max_frame_bytes, self._keep)
        try:
            reply = session.ask({"Action": "Login", "Username": ami.username, "Secret": ami.secret.get_secret_value(), "Events": "on"})
            if reply.get("Response") != "Success":
                raise AuthenticationError(
                    f"Asterisk at {session.address} refused login for user {ami.username!r}: {reply.get('Message', 'no reason given')}"
                )
            self.lines.append(Line(OK, f"login as {ami.username!r} at {session.address} (Asterisk Call Manager/{session.banner or '?'})"))
            self._check(session)
        finally:
            session.close()
        return self.lines

    # the checks, in the report's order -------------------------------------------------------
    def _check(self, s: Session) -> None:
        # Provoke the events first (they arrive while the rest is asked), then probe each write class.
        triggered = time.monotonic()
        setvar = s.ask({"Action": "Setvar", "Variable": CHECK_VAR, "Value": self.token})
        writes = dict(zip(WRITE, s.ask_many([probe for _, probe in WRITE.values()])))
        config = {name: s.ask({"Action": "GetConfig", "Filename": "manager.conf", "Category": name}) for name in (self.user, "general")}
        modules = self._modules(s, writes)
        atxfer = s.ask({"Action": "Getvar", "Variable": "FEATUREMAP(atxfer)"})
        dialplan, fallback_queue = self._dialplan(s)
        queues = self._queues(s, fallback_queue)
        prompts = self._prompts(s)

        # The events: whatever has not come yet gets what is left of EVENT_WAIT_S.
        def varset() -> Message | None:
            return next((e for e in s.events if e.get("Event") == "VarSet"), None)

        def originated() -> Message | None:
            return next((e for e in s.listed(writes["originate"]) if e.get("Event") == "OriginateResponse"), None)

        expect = [
            f
            for f, wanted in ((varset, setvar.get("Response") == "Success"), (originated, writes["originate"].get("Response") == "Success"))
            if wanted
        ]
        s.until(lambda: all(f() is not None for f in expect), max(0.0, triggered + EVENT_WAIT_S - time.monotonic()))
        self._writes(writes)
        self._reads(s, setvar, writes["originate"], varset(), originated(), config)
        self._timestamps(varset(), originated(), config["general"])
        self.lines += modules
        self._atxfer(atxfer)
        self.lines += dialplan + queues + prompts

    def _writes(self, writes: dict[str, Message]) -> None:
        for name, (uses, probe) in WRITE.items():
            reply, action = writes[name], probe["Action"]
            what = f"write {name} ({uses})"
            if name == "system" and not self.settings.recordings.enabled and _denied(reply):
                self.lines.append(Line(OK, f"write {name}", "not needed: [recordings] enabled = false"))
            elif _denied(reply):
                extra = " (or [recordings] enabled = false: nothing is recorded)" if name == "system" else ""
                self.lines.append(
                    Line(
                        MISSING,
                        what,
                        f"Asterisk answered {action} with {DENIED}: add {name} to write= of [{self.user}] in manager.conf, {RELOAD}{extra}",
                    )
                )
            elif _unknown_command(reply):
                self.lines.append(
                    Line(
                        UNKNOWN,
                        what,
                        f"Asterisk does not know {action} (its module is not loaded), so the class "
                        f"cannot be tried: make sure write= of [{self.user}] has {name}",
                    )
                )
            else:
                self.lines.append(Line(OK, what))

    def _reads(
        self,
        s: Session,
        setvar: Message,
        originate: Message,
        varset: Message | None,
        originated: Message | None,
        config: dict[str, Message],
    ) -> None:
        user = _config_category(config[self.user], self.user)
        on_disk = _classes(user["read"]) if user is not None and "read" in user else None
        for name, events in READ.items():
            what = f"read {name} ({events})"
            fix = f"add {name} to read= of [{self.user}] in manager.conf, {RELOAD}"
            proof: tuple[bool, str] | None = None
            if name == "system":
                proof = (any(e.get("Event") == "FullyBooted" for e in s.events), "no FullyBooted at login")
            elif name == "dialplan" and setvar.get("Response") == "Success":
                proof = (varset is not None, f"no VarSet came after Setvar of the global {CHECK_VAR}")
            elif name == "call" and originate.get("Response") == "Success":
                proof = (originated is not None, f"no OriginateResponse came after an Originate to {PROBE}")
            if proof is not None:
                self.lines.append(
                    Line(OK, what) if proof[0] else Line(MISSING, what, f"{proof[1]}: {fix} (and no eventfilter dropping them)")
                )
            elif on_disk is not None:
                how = "per manager.conf on disk: no event of this class comes without a call"
                self.lines.append(
                    Line(OK, what, how)
                    if name in on_disk
                    else Line(MISSING, what, f"{how}, and [{self.user}] has read = {user['read']}: {fix}")
                )  # type: ignore[index]
            else:
                self.lines.append(
                    Line(
                        UNKNOWN,
                        what,
                        f"cannot be checked over AMI (no event of this class comes without a call, and "
                        f"reading manager.conf needs the system or config write class): make sure read= "
                        f"of [{self.user}] in manager.conf has {name}",
                    )
                )

    def _timestamps(self, varset: Message | None, originated: Message | None, general: Message) -> None:
        what = "timestampevents = yes (events carry Timestamp: event times from Asterisk's clock)"
        fix = "set timestampevents = yes in [general] of manager.conf, then `manager reload` (or event times come from their arrival)"
        seen = [e for e in (varset, originated) if e is not None]
        if seen:
            self.lines.append(
                Line(OK, what) if all("Timestamp" in e for e in seen) else Line(MISSING, what, f"events come without Timestamp: {fix}")
            )
            return
        values = _config_category(general, "general")
        if values is not None:
            on = values.get("timestampevents", "no").lower() in ("yes", "true", "y", "t", "1", "on")
            self.lines.append(Line(OK, what, "per manager.conf on disk") if on else Line(MISSING, what, f"not set in manager.conf: {fix}"))
        else:
            self.lines.append(
                Line(
                    UNKNOWN, what, f"cannot be checked: no event could be provoked and manager.conf cannot be read: make sure of it ({fix})"
                )
            )

    def _modules(self, s: Session, writes: dict[str, Message]) -> list[Line]:
        """ModuleCheck of each module, or what the write probes' answers prove."""
        replies = dict(zip(MODULES, s.ask_many([{"Action": "ModuleCheck", "Module": name} for name in MODULES])))
        lines: list[Line] = []
        if any(_denied(reply) or _unknown_command(reply) for reply in replies.values()):
            proven = [m for m, cls in MODULE_BY_ACTION.items() if not _unknown_command(writes[cls])]
            absent = [m for m, cls in MODULE_BY_ACTION.items() if _unknown_command(writes[cls])]
            if proven:
                lines.append(Line(OK, f"modules loaded: {', '.join(proven)}", "their AMI actions are known"))
            for name in absent:
                lines.append(
                    Line(
                        MISSING,
                        f"module {name} ({MODULES[name]})",
                        f"Asterisk does not know its AMI actions: `module load {name}.so` and `load => {name}.so` in modules.conf",
                    )
                )
            rest = [m for m in MODULES if m not in MODULE_BY_ACTION]
            lines.append(
                Line(
                    UNKNOWN,
                    f"modules {', '.join(rest)}",
                    "cannot be checked over AMI: ModuleCheck needs the system write "
                    "class; make sure they are loaded (`module show like NAME`)",
                )
            )
            return lines
        present = [name for name in MODULES if replies[name].get("Response") == "Success"]
        if present:
            lines.append(Line(OK, f"modules loaded: {', '.join(present)}"))
        for name in MODULES:
            if name not in present:
                lines.append(
                    Line(
                        MISSING,
                        f"module {name} ({MODULES[name]})",
                        f"not loaded: `module load {name}.so`, and `load => {name}.so` in modules.conf",
                    )
                )
        return lines

    def _atxfer(self, reply: Message) -> None:
        what = "attended-transfer feature code (features.conf [featuremap] atxfer: the panel's attended transfer)"
        if _denied(reply):
            self.lines.append(
                Line(
                    UNKNOWN,
                    what,
                    "cannot be checked: Getvar needs the call or reporting write class; make sure "
                    "features.conf [featuremap] has atxfer = *2",
                )
            )
        elif reply.get("Value"):
            self.lines.append(Line(OK, f"{what}: {reply['Value']}"))
        else:
            self.lines.append(
                Line(
                    MISSING,
                    what,
                    'there is none, and AMI Atxfer answers "No attended transfer feature code found": '
                    "add atxfer = *2 to [featuremap] in features.conf (contrib/asterisk/features.conf), "
                    "then `module reload features`",
                )
            )

    # dialplan, queues, prompts -----------------------------------------------------------------
    def _app_queue_queues(self) -> dict[str, str]:
        """Queues app_queue must have: name -> who names it."""
        names: dict[str, str] = {}
        if self.settings.acd.mode == "app_queue":
            for name in self.settings.acd.queues:
                names.setdefault(name, "[acd.queues]")
        for flow in self.flows:
            for node in flow.nodes.values():
                if node.kind == "queue" and node.spec.get("mode") != "native":
                    names.setdefault(str(node.spec["queue"]), f"flow {flow.name!r}")
        return names

    def _needed_dialplan(self) -> dict[str, tuple[str, dict[str, str]]]:
        """context -> (what it is for, {extension: what it is for}); no extensions when only the context must be there."""
        panel = self.settings.panel
        need: dict[str, tuple[str, dict[str, str]]] = {}

        def context(name: str, why: str) -> dict[str, str]:
            return need.setdefault(str(name), (why, {}))[1]

        context("callcenter-inbound", "where your DIDs go: the IVR")
        context("callcenter-ivr", "the IVR over AsyncAGI").update(
            {"s": "callers enter the IVR", "T": "the engine went silent: default queue", "fallback": "the engine is away: default queue"}
        )
        for flow in self.flows:
            if flow.entry.get("context"):
                context(flow.entry["context"], f"flow {flow.name!r} entry").setdefault("fallback", "callers the engine lets go")
        queues = context(panel.queue_context, "[panel] queue_context: callers handed to app_queue, transfers to a queue")
        for name in self._app_queue_queues():
            queues.setdefault(name, f"callers handed to queue {name}")
        for flow in self.flows:
            for node in flow.nodes.values():
                where = node.spec.get("context") or flow.entry.get("context")
                if node.kind == "queue" and node.spec.get("mode") != "native" and where:
                    context(where, f"flow {flow.name!r} node {node.id!r}").setdefault(
                        str(node.spec.get("exten", node.spec["queue"])), f"flow {flow.name!r} node {node.id!r}"
                    )
        context("callcenter-callback", "call backs")
        if self.settings.acd.mode == "native":
            for name, queue in self.settings.acd.queues.items():
                context(queue.callback_context, f"[acd.queues.{name}] callback_context: call backs")
        context(panel.dial_context, "[panel] dial_context: click-to-dial")
        context(panel.transfer_context, "[panel] transfer_context: transfers").update(
            {"8001": "transfers to a queue", "8002": "transfers to an agent"}
        )
        return need

    def _dialplan(self, s: Session) -> tuple[list[Line], str | None]:
        """ShowDialPlan of each context and key extension: the lines, and the queue of [callcenter-ivr] fallback (when literal)."""
        need = self._needed_dialplan()
        asks: list[tuple[str, str | None]] = [(context, None) for context in need]
        asks += [(context, exten) for context, (_, extens) in need.items() for exten in extens]
        replies = dict(
            zip(asks, s.ask_many([{"Action": "ShowDialPlan", "Context": c, **({"Extension": e} if e else {})} for c, e in asks]))
        )
        lines: list[Line] = []
        for context, (why, extens) in need.items():
            what = f"dialplan [{context}]" + (f": {', '.join(extens)}" if extens else "")
            reply = replies[(context, None)]
            if _denied(reply):
                lines.append(
                    Line(
                        UNKNOWN,
                        what,
                        "cannot be checked: ShowDialPlan needs the reporting (or config) write class; "
                        "make sure contrib/asterisk/extensions.conf is included",
                    )
                )
                continue
            if reply.get("Response") != "Success":
                lines.append(
                    Line(
                        MISSING,
                        what,
                        f"Asterisk has no context [{context}] ({why}): include contrib/asterisk/extensions.conf "
                        "from extensions.conf, then `dialplan reload`",
                    )
                )
                continue
            missing = [e for e in extens if replies[(context, e)].get("Response") != "Success"]
            if missing:
                lines.append(
                    Line(
                        MISSING,
                        what,
                        f"[{context}] has no {', '.join(missing)} ({'; '.join(extens[e] for e in missing)}): "
                        "take them from contrib/asterisk/extensions.conf, then `dialplan reload`",
                    )
                )
            else:
                lines.append(Line(OK, what))
        steps = [
            e
            for e in s.listed(replies[("callcenter-ivr", "fallback")])
            if e.get("Event") == "ListDialplan" and e.get("Application", "").lower() == "queue"
        ]
        queue = steps[0].get("AppData", "").split(",")[0].strip() if steps else ""
        return lines, (queue if queue and "$" not in queue else None)

    def _queues(self, s: Session, fallback: str | None) -> list[Line]:
        names = self._app_queue_queues()
        if fallback:
            names.setdefault(fallback, "[callcenter-ivr] fallback")
        if not names:
            return []
        replies = s.ask_many([{"Action": "QueueSummary", "Queue": name} for name in names])
        lines = []
        for (name, where), reply in zip(names.items(), replies):
            what = f"queue {name} in app_queue ({where})"
            if _unknown_command(reply):
                lines.append(Line(MISSING, what, "app_queue is not loaded: `module load app_queue.so`"))
            elif any(e.get("Event") == "QueueSummary" and e.get("Queue") == name for e in s.listed(reply)):
                lines.append(Line(OK, what))
            else:
                lines.append(Line(MISSING, what, f"app_queue has no queue {name!r}: add [{name}] to queues.conf, then `queue reload all`"))
        return lines

    def _needed_prompts(self) -> dict[str, dict[str, list[str]]]:
        """who plays them ('flow main', 'native ACD') -> prompt -> where."""
        out: dict[str, dict[str, list[str]]] = {}
        for flow in self.flows:
            mine = out.setdefault(f"flow {flow.name!r}", {})
            for node in flow.nodes.values():
                for key in ("prompt", "invalid_prompt", "timeout_prompt"):
                    for language in flow.languages:
                        prompt = node.prompt(key, language)
                        if prompt:
                            where = mine.setdefault(str(prompt), [])
                            if node.id not in where:
                                where.append(node.id)
        if self.settings.acd.mode == "native":
            mine = out.setdefault("native ACD", {})
            languages = {language for flow in self.flows for language in flow.languages} or {""}
            for name, queue in self.settings.acd.queues.items():
                own = []
                if queue.announce_every_s > 0:
                    own += ["your-position", "expected-wait"]
                if queue.callback_key or queue.overflow == "callback":
                    own.append("callback-ok")
                wanted = list(dict.fromkeys(acd_prompt(p, language) for p in own for language in sorted(languages)))
                if queue.overflow == "message" and queue.overflow_target:
                    wanted.append(queue.overflow_target)
                for prompt in wanted:
                    mine.setdefault(prompt, []).append(f"queue {name}")
        return {who: prompts for who, prompts in out.items() if prompts}

    def _prompts(self, s: Session) -> list[Line]:
        needed = self._needed_prompts()
        if not needed:
            return []
        every = sorted({p for prompts in needed.values() for p in prompts})
        reply = s.ask({"Action": "Getvar", "Variable": "ASTDATADIR"})
        datadir = reply.get("Value", "") if reply.get("Response") == "Success" else ""
        found: dict[str, bool] | None = None
        how = ""
        if datadir:
            found = self._stat(s, datadir, every)
            how = "looked up with STAT() on the PBX"
            if found is None and s.same_host() and (Path(datadir) / "sounds").is_dir():
                found = {p: _on_disk(Path(datadir), p) for p in every}
                how = "looked up on this host's disk, where Asterisk runs"
        lines: list[Line] = []
        for who, prompts in needed.items():
            if found is None:
                why = (
                    "Getvar is not allowed (call or reporting write class)"
                    if not datadir
                    else "STAT() is blocked for AMI (Asterisk's live_dangerously = no) or func_env is not loaded, and Asterisk "
                    "is not on this host"
                )
                where = f"{datadir}/sounds/en/" if datadir else "Asterisk's sounds/en/ folder"
                lines.append(
                    Line(
                        UNKNOWN,
                        f"prompts of {who}",
                        f"cannot be checked: {why}; make sure these are in {where} (any format): {', '.join(sorted(prompts))}",
                    )
                )
                continue
            missing = sorted(p for p in prompts if not found.get(p))
            if not missing:
                lines.append(Line(OK, f"prompts of {who}: all {len(prompts)} found ({how})"))
                continue
            named = ", ".join(f"{p} ({' '.join(prompts[p])})" for p in missing)
            lines.append(
                Line(
                    MISSING,
                    f"prompts of {who}: {len(missing)} of {len(prompts)} missing",
                    f"no sound file (any format) in {datadir}/sounds/en/ or {datadir}/sounds/ ({how}) for {named}: "
                    f"install them there (e.g. the files of var/prompts/sounds/ into {datadir}/sounds/en/)",
                )
            )
        return lines

    def _stat(self, s: Session, datadir: str, prompts: list[str]) -> dict[str, bool] | None:
        """Which prompts exist, by STAT(e,...) on the PBX; None when STAT cannot be used over AMI."""
        if any(c in datadir for c in ",()$"):
            return None
        calibrate = s.ask({"Action": "Getvar", "Variable": f"STAT(d,{datadir}/sounds)"})
        if calibrate.get("Value") not in ("0", "1"):
            return None
        found = {p: False for p in prompts}
        for exts in (SOUND_EXTS[:COMMON_EXTS], SOUND_EXTS[COMMON_EXTS:]):
            paths = [
                (p, path) for p in prompts if not found[p] and not any(c in p for c in ",()$") for path in _candidates(datadir, p, exts)
            ]
            if not paths:
                break
            replies = s.ask_many([{"Action": "Getvar", "Variable": f"STAT(e,{path})"} for _, path in paths])
            for (prompt, _), reply in zip(paths, replies):
                if reply.get("Value") == "1":
                    found[prompt] = True
        return found


def _candidates(datadir: str, prompt: str, exts: Iterable[str]) -> list[str]:
    """Where Asterisk finds a prompt whatever the channel's language: sounds/en/ and sounds/ (an absolute name as it is)."""
    bases = [prompt] if prompt.startswith("/") else [f"{datadir}/sounds/en/{prompt}", f"{datadir}/sounds/{prompt}"]
    return [f"{base}.{ext}" for base in bases for ext in exts]


def _on_disk(datadir: Path, prompt: str) -> bool:
    return any(Path(path).is_file() for path in _candidates(str(datadir), prompt, SOUND_EXTS))


def check_pbx(settings: Settings, flows: Sequence[Flow], out: TextIO) -> int:
    """Print the report; 1 when something is MISSING, else 0. Connection and login failures raise (AMIError)."""
    lines = Check(settings, flows).run()
    for line in lines:
        print(line, file=out, flush=True)
    return 1 if any(line.status == MISSING for line in lines) else 0
