"""The simulated Asterisk core: a clock, channels, Local channel pairs, bridges and the dialplan runner.

Pure Python, no IO: `Sim.advance(t)` runs every timer due up to sim time `t`
and each AMI event goes to the `emit` callback as an ordered dict, with the
same names, fields and per-channel order as Asterisk (see
`pbx/simulator/__init__.py` for the known differences).

A channel runs its dialplan as a generator: an application yields what it
waits for (``("sleep", s)``, ``("digit", timeout)``, ``("block",)``) and is
resumed with the result; a hang-up is thrown into it as `ChannelHungUp`.
"""

from __future__ import annotations

import glob
import heapq
import random
import re
import wave
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pbx.simulator.dialplan import Dialplan
from pbx.simulator.recording import Recording

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
CAUSE_TXT = {16: "Normal Clearing", 17: "User busy", 19: "No user responding", 21: "Call Rejected", 0: "Unknown"}
PROMPT_SECONDS = 2.0

Wait = Generator[tuple, Any, Any]
_INHERITED = re.compile(r"_{1,2}[A-Z]")


def inherited(variables: dict[str, str]) -> dict[str, str]:
    """What a new channel inherits from the one that made it, as Asterisk does: `__X` for good, `_X` one level (as `X`)."""
    return {(name if name.startswith("__") else name[1:]): value for name, value in variables.items() if _INHERITED.match(name)}


class ChannelHungUp(Exception):
    """Thrown into a channel's dialplan when a hang-up was requested."""


class Redirected(ChannelHungUp):
    """Thrown into a channel's dialplan by Redirect: its application ends as on a hang-up, the channel goes on elsewhere."""

    def __init__(self, context: str, exten: str, priority: int) -> None:
        super().__init__(f"{context},{exten},{priority}")
        self.target = (context, exten, priority)


@dataclass(eq=False)
class Timer:
    """A scheduled callback; `cancel()` makes it a no-op."""

    when: float
    fn: Callable[..., None]
    args: tuple
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass(eq=False)
class Channel:
    """One channel, with the snapshot fields every channel event carries."""

    name: str
    uniqueid: str
    linkedid: str
    state: int = 0
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    context: str = "default"
    exten: str = "s"
    priority: int = 1
    language: str = "en"
    vars: dict[str, str] = field(default_factory=dict)
    partner: Channel | None = None
    bridge: Bridge | None = None
    task: Iterator | None = None
    timer: Timer | None = None
    waiting: str | None = None
    digits: list[str] = field(default_factory=list)
    hangup_requested: bool = False
    soft_requested: bool = False
    hungup: bool = False
    jumped: bool = False
    on_answer: Callable[[Channel], None] | None = None
    on_busy: Callable[[Channel], None] | None = None  # a Local ;1 whose ;2 runs Busy(): tells whoever dials it
    on_hangup: list[Callable[[Channel], None]] = field(default_factory=list)
    agi: Any = None
    created: float = 0.0
    app: str = ""
    appdata: str = ""
    atxfer: Any = None
    answered_at: float | None = None
    cdr_party: bool = False  # ran dialplan or was originated: it has a CDR row of its own (a dialed leg is a dstchannel)
    cdr_peer: str = ""


@dataclass(eq=False)
class Bridge:
    """A basic two-party bridge."""

    uniqueid: str
    channels: list[Channel] = field(default_factory=list)
    destroyed: bool = False
    holding: bool = False


class Sim:
    """A small, deterministic Asterisk: what Asterisk would emit on AMI, in sim time."""

    def __init__(
        self,
        dialplan: Dialplan,
        *,
        start: float,
        emit: Callable[[dict[str, str]], None],
        seed: int = 1,
        queue_log: Callable[[str], None] | None = None,
        cdr: Callable[[list[str | int]], None] | None = None,
    ) -> None:
        self.dialplan = dialplan
        self.now = start
        self.emit = emit
        self.queue_log_sink = queue_log
        self.cdr_sink = cdr
        self._cdrs = 0
        self.rng = random.Random(seed)
        self.sounds: list[Path] = []
        self.channels: dict[str, Channel] = {}
        self.apps: dict[str, Callable[[Channel, str], Wait]] = {}
        self.app_names: dict[str, str] = {}
        self.functions: dict[str, Callable[[Channel, str], str]] = {
            "CALLERID": lambda ch, args: ch.cid_num if args.strip().lower() in ("num", "number") else ch.cid_name,
            "GLOBAL": lambda ch, args: self.dialplan.globals.get(args.strip(), ""),
            "IF": lambda ch, args: _if(args),
            "RAND": lambda ch, args: (
                str(self.rng.randint(*(int(a) for a in args.split(",")))) if "," in args else str(self.rng.randint(0, 2**31 - 1))
            ),
        }
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = 0
        self._ids = 0
        self._locals = 0
        self.queues: Any = None
        self.recordings = Recorder(self)
        self.moh = False  # music-on-hold files installed: Asterisk tells MusicOnHoldStart/Stop around a queue's wait only then
        # Drop digits keyed while AsyncAGI waits for a command, as Asterisk does. Off by default: on a sped-up clock the
        # engine's own latency is multiplied, and callers' keys timed for a real-time engine would be lost.
        self.drop_unread_digits = False
        from pbx.simulator import apps

        apps.register(self)

    # clock -------------------------------------------------------------
    def at(self, delay: float, fn: Callable[..., None], *args: Any) -> Timer:
        """Run fn(*args) `delay` sim seconds from now."""
        timer = Timer(self.now + max(0.0, delay), fn, args)
        self._seq += 1
        heapq.heappush(self._timers, (timer.when, self._seq, timer))
        return timer

    def next_due(self) -> float | None:
        """Sim time of the next live timer, if any."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def advance(self, until: float) -> None:
        """Run every timer due up to `until`, then set the clock to it."""
        while True:
            due = self.next_due()
            if due is None or due > until:
                break
            _, _, timer = heapq.heappop(self._timers)
            self.now = max(self.now, timer.when)
            timer.fn(*timer.args)
        self.now = max(self.now, until)

    # ids ---------------------------------------------------------------
    def new_uniqueid(self) -> str:
        """Asterisk's Uniqueid: creation epoch and a global counter."""
        uid = f"{int(self.now)}.{self._ids}"
        self._ids += 1
        return uid

    def new_bridge_id(self) -> str:
        """A bridge id shaped like Asterisk's UUIDs (seeded, so runs repeat)."""
        return "-".join(f"{self.rng.getrandbits(bits):0{bits // 4}x}" for bits in (32, 16, 16, 16, 48))

    # events ------------------------------------------------------------
    def fields(self, ch: Channel, prefix: str = "") -> list[tuple[str, str]]:
        """The channel snapshot block, as Asterisk's ast_manager_build_channel_state_string writes it."""
        return [
            (prefix + "Channel", ch.name),
            (prefix + "ChannelState", str(ch.state)),
            (prefix + "ChannelStateDesc", STATE_DESC.get(ch.state, "Unknown")),
            (prefix + "CallerIDNum", ch.cid_num),
            (prefix + "CallerIDName", ch.cid_name),
            (prefix + "ConnectedLineNum", ch.conn_num),
            (prefix + "ConnectedLineName", ch.conn_name),
            (prefix + "Language", ch.language),
            (prefix + "AccountCode", ""),
            (prefix + "Context", ch.context),
            (prefix + "Exten", ch.exten),
            (prefix + "Priority", str(ch.priority)),
            (prefix + "Uniqueid", ch.uniqueid),
            (prefix + "Linkedid", ch.linkedid),
        ]

    def event(self, name: str, privilege: str, *parts: list[tuple[str, str]] | tuple[str, str]) -> None:
        """Emit one event: name, privilege, then header blocks or single headers in order."""
        out = {"Event": name, "Privilege": f"{privilege},all"}
        for part in parts:
            if isinstance(part, tuple):
                out[part[0]] = part[1]
            else:
                out.update(part)
        self.emit(out)

    def chan_event(self, name: str, ch: Channel, *extra: tuple[str, str], privilege: str = "call") -> None:
        """An event about one channel."""
        self.event(name, privilege, self.fields(ch), *extra)

    def queue_log(self, callid: str, queue: str, agent: str, event: str, *data: str) -> None:
        """Append one app_queue log line."""
        if self.queue_log_sink is not None:
            self.queue_log_sink("|".join([str(int(self.now)), callid, queue, agent, event, *data]))

    def cdr(self, ch: Channel) -> None:
        """The CDR row cdr_csv writes for a channel that hung up (its columns with newcdrcolumns on, times in UTC)."""
        if self.cdr_sink is None or not ch.cdr_party:
            return
        num = "" if ch.cid_num == "<unknown>" else ch.cid_num
        name = "" if ch.cid_name == "<unknown>" else ch.cid_name
        clid = f'"{name}" <{num}>' if num else name
        answered = ch.answered_at is not None
        row: list[str | int] = [
            "",
            num,
            ch.exten,
            ch.context,
            clid,
            ch.name,
            ch.cdr_peer,
            ch.app,
            ch.appdata,
            _cdr_time(ch.created),
            _cdr_time(ch.answered_at) if ch.answered_at is not None else "",
            _cdr_time(self.now),
            int(self.now - ch.created),
            int(self.now - ch.answered_at) if ch.answered_at is not None else 0,
            "ANSWERED" if answered else "NO ANSWER",
            "DOCUMENTATION",
            ch.uniqueid,
            ch.vars.get("CDR(userfield)", ""),
            "",
            ch.linkedid,
            self._cdrs,
        ]
        self._cdrs += 1
        self.cdr_sink(row)

    # channels ----------------------------------------------------------
    def new_channel(
        self, name: str, *, linkedid: str | None = None, state: int = 0, context: str = "default", exten: str = "s", emit: bool = True
    ) -> Channel:
        """Create a channel (Newchannel)."""
        uid = self.new_uniqueid()
        ch = Channel(name=name, uniqueid=uid, linkedid=linkedid or uid, state=state, context=context, exten=exten, created=self.now)
        self.channels[uid] = ch
        if emit:
            self.chan_event("Newchannel", ch)
        return ch

    def local_pair(self, exten: str, context: str, linkedid: str | None = None) -> tuple[Channel, Channel]:
        """A Local channel pair Local/exten@context-XXXXXXXX;1 and ;2 (Newchannel for both)."""
        base = f"Local/{exten}@{context}-{self._locals:08x}"
        self._locals += 1
        one = self.new_channel(base + ";1", linkedid=linkedid, state=0, context=context, exten=exten)
        two = self.new_channel(base + ";2", linkedid=one.linkedid, state=4, context=context, exten=exten)
        one.partner, two.partner = two, one
        return one, two

    def call_local(self, caller: Channel, interface: str, app: str) -> tuple[Channel, Channel, str]:
        """The outgoing Local leg an application (AppDial, AppQueue) creates to ring `interface`, up to DialBegin.

        Returns (;1, ;2, dial string); the caller then sends DialBegin and starts the ;2 half's dialplan.
        """
        target = interface[len("Local/") :] if interface.startswith("Local/") else interface
        exten, _, rest = target.partition("@")
        context = rest.split("/")[0]
        one, two = self.local_pair(exten, context, linkedid=caller.linkedid)
        for leg in (one, two):
            leg.vars.update(inherited(caller.vars))
        # Asterisk's Dial() names its outgoing ;1 leg after the calling channel's extension, number and Exten alike (app_queue
        # after the caller): seen on every Dial of the real-PBX tier.
        number = caller.exten if app == "AppDial" else caller.cid_num
        if app == "AppDial":
            one.exten = caller.exten
        one.cid_num, one.cid_name = number, caller.cid_name
        self.chan_event(
            "Newexten", one, ("Extension", one.exten), ("Application", app), ("AppData", "(Outgoing Line)"), privilege="dialplan"
        )
        self.set_callerid(one, number, caller.cid_name)
        self.set_var(one, "DIALEDPEERNUMBER", target)
        self.set_var(two, "DIALEDPEERNUMBER", target)
        self.set_callerid(two, caller.cid_num, caller.cid_name)
        self.set_connected(two, caller.cid_num, caller.cid_name)
        if app == "AppDial":
            self.set_connected(one, caller.cid_num, caller.cid_name)
        self.local_bridge(one, two)
        one.exten = caller.exten
        return one, two, target

    def local_bridge(self, one: Channel, two: Channel) -> None:
        """The LocalBridge event of a new pair."""
        self.event(
            "LocalBridge",
            "call",
            self.fields(one, "LocalOne"),
            self.fields(two, "LocalTwo"),
            ("Context", two.context),
            ("Exten", two.exten),
            ("LocalOptimization", "No"),
        )

    def set_callerid(self, ch: Channel, num: str, name: str) -> None:
        """Change caller ID (NewCallerid)."""
        ch.cid_num, ch.cid_name = num or "<unknown>", name or "<unknown>"
        self.chan_event("NewCallerid", ch, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)"))

    def set_connected(self, ch: Channel, num: str, name: str) -> None:
        """Change connected line (NewConnectedLine)."""
        ch.conn_num, ch.conn_name = num or "<unknown>", name or "<unknown>"
        self.chan_event("NewConnectedLine", ch)

    def set_var(self, ch: Channel, name: str, value: str) -> None:
        """Set a channel variable (VarSet)."""
        ch.vars[name] = value
        self.chan_event("VarSet", ch, ("Variable", name), ("Value", value), privilege="dialplan")

    def prompt_seconds(self, name: str) -> float | None:
        """How long a prompt plays: its file's length in one of `sounds` (Asterisk's sounds/<language> folders), None when
        none has it (Asterisk finds no file); with no `sounds`, every prompt exists and lasts 2 s."""
        match = re.fullmatch(r"silence/(\d+)", name.strip())
        if match:
            return float(match.group(1))
        if not self.sounds:
            return PROMPT_SECONDS
        for folder in self.sounds:
            for path in sorted(folder.glob(glob.escape(name.strip()) + ".*")):
                seconds = _sound_seconds(path)
                if seconds is not None:
                    return seconds
        return None

    def music_off(self, ch: Channel) -> None:
        """Music on hold that AGI's SET MUSIC started stops (SET MUSIC off, a Dial ringing someone, a hang-up)."""
        if ch.vars.pop("__moh", None):
            self.chan_event("MusicOnHoldStop", ch)

    def write(self, ch: Channel, name: str, value: str) -> None:
        """Set(), Setvar or AGI SET VARIABLE: a variable (VarSet), or a function such as TIMEOUT(absolute) (no event)."""
        if "(" in name:
            ch.vars[name] = value
        else:
            self.set_var(ch, name, value)

    def set_state(self, ch: Channel, state: int) -> None:
        """Change channel state (Newstate)."""
        if ch.state != state:
            ch.state = state
            if state == 6 and ch.answered_at is None:
                ch.answered_at = self.now
            self.chan_event("Newstate", ch)

    def answer(self, ch: Channel) -> None:
        """Answer a channel; a Local ;2 answers its ;1, which tells whoever dialed it."""
        if ch.state == 6 or ch.hungup:
            return
        self.set_state(ch, 6)
        partner = ch.partner
        if partner is not None and ch.name.endswith(";2") and partner.state != 6 and not partner.hungup:
            self.set_state(partner, 6)
            if partner.on_answer is not None:
                callback, partner.on_answer = partner.on_answer, None
                callback(partner)

    def send_dtmf(self, ch: Channel, digit: str) -> None:
        """A digit arriving on `ch` (DTMFBegin now, DTMFEnd 100 ms later)."""
        self.chan_event("DTMFBegin", ch, ("Digit", digit), ("Direction", "Received"), privilege="dtmf")
        self.at(0.1, self._dtmf_end, ch, digit)

    def _dtmf_end(self, ch: Channel, digit: str) -> None:
        if ch.hungup:
            return
        self.chan_event("DTMFEnd", ch, ("Digit", digit), ("DurationMs", "100"), ("Direction", "Received"), privilege="dtmf")
        ch.digits.append(digit)
        if ch.waiting == "digit":
            self.wake(ch, ch.digits.pop(0))

    # dialplan runner ---------------------------------------------------
    def start_pbx(self, ch: Channel, context: str, exten: str, priority: int = 1) -> None:
        """Start running the dialplan on a channel at context/exten/priority."""
        ch.context, ch.exten, ch.priority = context, exten, priority
        ch.cdr_party = True
        ch.task = self._pbx(ch)
        self._resume(ch, None)

    def _pbx(self, ch: Channel) -> Iterator:
        try:
            while not ch.hangup_requested:
                step = self.dialplan.step(ch.context, ch.exten, ch.priority)
                if step is None:
                    break
                data = self.substitute(ch, step.data)
                app_name = self.app_names.get(step.app.lower(), step.app)
                self.chan_event("Newexten", ch, ("Extension", ch.exten), ("Application", app_name), ("AppData", data), privilege="dialplan")
                app = self.apps.get(step.app.lower())
                ch.jumped = False
                ch.app, ch.appdata = app_name, data
                if app is None:
                    break
                result = yield from app(ch, data)
                if result == "hangup":
                    break
                if not ch.jumped:
                    ch.priority += 1
        except Redirected as redirect:
            ch.task = None
            self.at(0.0, self.start_pbx, ch, *redirect.target)
            return
        except ChannelHungUp:
            pass
        ch.task = None
        self.end_pbx(ch)

    def _resume(self, ch: Channel, value: Any, error: BaseException | None = None) -> None:
        if ch.task is None:
            return
        try:
            request = ch.task.throw(error) if error is not None else ch.task.send(value)
        except StopIteration:
            return
        kind = request[0]
        ch.waiting = kind
        if kind == "sleep":
            ch.timer = self.at(request[1], self.wake, ch, None)
        elif kind == "digit":
            if ch.digits:
                ch.timer = self.at(0.0, self.wake, ch, ch.digits.pop(0))
            elif request[1] is not None:
                ch.timer = self.at(request[1], self.wake, ch, None)

    def wake(self, ch: Channel, value: Any) -> None:
        """Resume a channel's waiting application with `value`."""
        if ch.timer is not None:
            ch.timer.cancel()
            ch.timer = None
        ch.waiting = None
        self._resume(ch, value)

    def redirect(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        """Send a channel elsewhere in the dialplan (AMI Redirect): its current application is ended first."""
        if ch.task is not None and ch.waiting is not None:
            if ch.timer is not None:
                ch.timer.cancel()
                ch.timer = None
            ch.waiting = None
            self._resume(ch, None, Redirected(context, exten, priority))
        else:
            if ch.bridge is not None:
                self.leave_bridge(ch)
            self.start_pbx(ch, context, exten, priority)

    def goto(self, ch: Channel, context: str | None, exten: str | None, priority: int) -> None:
        """Jump within the dialplan (the runner does not then step to the next priority)."""
        ch.context = context or ch.context
        ch.exten = exten or ch.exten
        ch.priority = priority
        ch.jumped = True

    def substitute(self, ch: Channel, text: str) -> str:
        """${VAR} and $[expr] substitution, enough for the dialplans we run."""

        def var(match: re.Match[str]) -> str:
            name, args = match.group(1), match.group(2)
            if args is not None:
                function = self.functions.get(name)
                return function(ch, args) if function is not None else ""
            builtin = {
                "EXTEN": ch.exten,
                "CONTEXT": ch.context,
                "PRIORITY": str(ch.priority),
                "CHANNEL": ch.name,
                "UNIQUEID": ch.uniqueid,
                "LINKEDID": ch.linkedid,
                "EPOCH": str(int(self.now)),
            }
            if name in builtin:
                return builtin[name]
            for stored in (name, "_" + name, "__" + name):
                if stored in ch.vars:
                    return ch.vars[stored]
            return self.dialplan.globals.get(name, "")

        # Innermost first, as Asterisk does: ${IF($["${W1}" = ""]?1:${W1})} is ${W1}, then $[...], then IF.
        for _ in range(8):
            done = _INNER_EXPR.sub(lambda m: _expr(m.group(1)), _INNER_VAR.sub(var, text))
            if done == text:
                break
            text = done
        return text

    # hang-up -----------------------------------------------------------
    def request_hangup(self, ch: Channel, soft: bool = False, cause: int = 16, told: int | None = None) -> None:
        """Ask a channel to hang up: HangupRequest (the far end went away, with the cause it `told`) or SoftHangupRequest
        (the system); `cause` is the one it then hangs up with."""
        if ch.hungup or ch.hangup_requested:
            return
        ch.hangup_requested = True
        ch.vars["__cause"] = str(cause)
        ch.soft_requested = ch.soft_requested or soft
        self.chan_event("SoftHangupRequest" if soft else "HangupRequest", ch, ("Cause", str(cause if told is None else told)))
        self.at(0.0, self._act_on_hangup, ch)

    def _act_on_hangup(self, ch: Channel) -> None:
        if ch.hungup:
            return
        if ch.task is not None:
            if ch.timer is not None:
                ch.timer.cancel()
                ch.timer = None
            ch.waiting = None
            self._resume(ch, None, ChannelHungUp())
        else:
            self.hangup(ch)

    def end_pbx(self, ch: Channel) -> None:
        """A channel's dialplan (or originated application) ended: SoftHangupRequest unless one was already raised, then hang up."""
        if not ch.soft_requested:
            ch.soft_requested = True
            self.chan_event("SoftHangupRequest", ch, ("Cause", "16"))  # the dialplan's end; the Hangup then tells the cause
        self.hangup(ch)

    def hangup(self, ch: Channel) -> None:
        """Destroy a channel (ast_hangup): leave its bridge, ask its Local partner to hang up, Hangup."""
        if ch.hungup:
            return
        ch.hangup_requested = True
        if ch.atxfer is not None:
            transfer, ch.atxfer = ch.atxfer, None
            transfer.transferer_gone()
            if ch.hungup:
                return
        if ch.bridge is not None:
            self.leave_bridge(ch)
        partner = ch.partner
        cause = int(ch.vars.get("__cause", "16"))
        if partner is not None and not partner.hungup and not partner.hangup_requested:
            # The Local partner is told the hung-up half's cause (0 for an AMI or AGI hang-up), and ends with it unless a bridge
            # of its own ends it normally (16).
            self.request_hangup(partner, cause=16 if partner.bridge is not None else cause, told=cause)
        ch.hungup = True
        self.chan_event("Hangup", ch, ("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown")))
        self.cdr(ch)
        self.channels.pop(ch.uniqueid, None)
        for callback in list(ch.on_hangup):
            callback(ch)

    # bridges -----------------------------------------------------------
    def _bridge_fields(self, bridge: Bridge) -> list[tuple[str, str]]:
        return [
            ("BridgeUniqueid", bridge.uniqueid),
            ("BridgeType", "basic"),
            ("BridgeTechnology", "simple_bridge"),
            ("BridgeCreator", "<unknown>"),
            ("BridgeName", "<unknown>"),
            ("BridgeNumChannels", str(len(bridge.channels))),
            ("BridgeVideoSourceMode", "none"),
        ]

    def bridge(self, a: Channel, b: Channel) -> Bridge:
        """Put two channels in a new basic bridge (BridgeCreate, BridgeEnter x2, BRIDGEPEER)."""
        bridge = Bridge(self.new_bridge_id())
        self.event("BridgeCreate", "call", self._bridge_fields(bridge))
        for ch in (a, b):
            bridge.channels.append(ch)
            ch.bridge = bridge
            self.event("BridgeEnter", "call", self._bridge_fields(bridge), self.fields(ch))
        self.set_var(a, "BRIDGEPEER", b.name)
        self.set_var(b, "BRIDGEPEER", a.name)
        _cdr_peers(a, b)
        return bridge

    def join_bridge(self, bridge: Bridge, ch: Channel) -> None:
        """Add a channel to an existing bridge (BridgeEnter, BRIDGEPEER both ways)."""
        bridge.channels.append(ch)
        ch.bridge = bridge
        self.event("BridgeEnter", "call", self._bridge_fields(bridge), self.fields(ch))
        for other in bridge.channels:
            if other is not ch:
                self.set_var(ch, "BRIDGEPEER", other.name)
                self.set_var(other, "BRIDGEPEER", ch.name)
                _cdr_peers(ch, other)

    def leave_bridge(self, ch: Channel) -> None:
        """Take a channel out of its bridge; a two-party bridge then ends for the other party too."""
        bridge = ch.bridge
        if bridge is None:
            return
        ch.bridge = None
        bridge.channels.remove(ch)
        self.set_var(ch, "BRIDGEPEER", "")
        self.event("BridgeLeave", "call", self._bridge_fields(bridge), self.fields(ch))
        if len(bridge.channels) == 1 and not bridge.holding:
            other = bridge.channels[0]
            if other.task is not None and other.waiting == "block":
                self.wake(other, "bridge_ended")
            elif other.task is None:
                self.hangup(other)
        if not bridge.channels and not bridge.destroyed:
            bridge.destroyed = True
            self.event("BridgeDestroy", "call", self._bridge_fields(bridge))


class Recorder:
    """The MixMonitors running on a simulator; a recording is written when stopped or when its channel hangs up."""

    def __init__(self, sim: Sim, folder: Path | None = None) -> None:
        self.sim = sim
        self.folder = folder or Path("var/recordings")
        self.active: dict[str, Recording] = {}
        self.written: list[Path] = []

    def start(self, ch: Channel, file: str) -> Path:
        """Begin recording a channel (a relative file name is under `folder`)."""
        path = Path(file) if Path(file).is_absolute() else self.folder / file
        self.active[ch.uniqueid] = Recording(path, self.sim.now)
        ch.on_hangup.append(lambda gone: self.stop(gone))
        return path

    def stop(self, ch: Channel) -> bool:
        """Finish and write a channel's recording; False if it had none."""
        recording = self.active.pop(ch.uniqueid, None)
        if recording is None:
            return False
        self.written.append(recording.write(self.sim.now))
        return True

    def mute(self, ch: Channel, on: bool) -> bool:
        """Mute or unmute a channel's recording; False if it has none."""
        recording = self.active.get(ch.uniqueid)
        if recording is None:
            return False
        recording.mute(on, self.sim.now)
        return True


_INNER_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?:\(([^$]*?)\))?\}")
_INNER_EXPR = re.compile(r"\$\[([^$\[\]]*)\]")


def _cdr_time(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cdr_peers(a: Channel, b: Channel) -> None:
    """The older of two bridged channels is party A of the CDR: the other is its dstchannel."""
    older, newer = sorted((a, b), key=lambda ch: int(ch.uniqueid.rpartition(".")[2]))
    older.cdr_peer = newer.name


def _if(args: str) -> str:
    """IF(condition?true:false)."""
    condition, _, branches = args.partition("?")
    when_true, _, when_false = branches.partition(":")
    return when_true if condition.strip() not in ("", "0") else when_false


def _sum(text: str) -> Any:
    """A number, or numbers joined by + and - (what dialplan expressions here need), else the text itself."""
    text = text.strip().strip('"')
    if re.fullmatch(r"-?\d+(\.\d+)?(\s*[-+]\s*-?\d+(\.\d+)?)*", text):
        total = 0.0
        for sign, number in re.findall(r"([-+]?)\s*(\d+(?:\.\d+)?)", text.replace(" ", "")):
            total += -float(number) if sign == "-" else float(number)
        return total
    return text


def _expr(expr: str) -> str:
    """$[...]: comparisons of sums and differences joined by | and & (lowest precedence, as in Asterisk), as a dialplan
    GotoIf uses them."""
    expr = expr.strip()
    for op, join in (("|", any), ("&", all)):
        if op in expr:
            return "1" if join(_expr(part) not in ("0", "") for part in expr.split(op)) else "0"
    for op in ("!=", ">=", "<=", "=", ">", "<"):
        if op in expr:
            left, right = (_sum(p) for p in expr.split(op, 1))
            if type(left) is not type(right):
                left, right = str(left), str(right)
            ok = {"=": left == right, "!=": left != right, ">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[
                op
            ]
            return "1" if ok else "0"
    value = _sum(expr)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return value or "0"


_BYTES_PER_SECOND = {".gsm": 1650, ".ulaw": 8000, ".alaw": 8000, ".sln": 16000, ".sln16": 32000, ".g722": 8000}


def _sound_seconds(path: Path) -> float | None:
    """A sound file's length, for the formats Asterisk plays (WAV by its header, raw formats by their byte rate)."""
    if path.suffix == ".wav":
        try:
            with wave.open(str(path)) as sound:
                return sound.getnframes() / sound.getframerate()
        except (wave.Error, EOFError, OSError):
            return PROMPT_SECONDS
    rate = _BYTES_PER_SECOND.get(path.suffix)
    return path.stat().st_size / rate if rate else None
