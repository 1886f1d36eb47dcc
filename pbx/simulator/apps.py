"""Dialplan applications and AsyncAGI commands of the simulated Asterisk.

Each application is a generator run by `Sim._pbx`; timings follow the
recorded traces (Answer settles for 500 ms, SendDTMF sends a 100 ms digit
after 100 ms and returns 450 ms after it started, Background plays the
prompt's length while listening for digits).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import quote

from pbx.simulator.core import Channel, ChannelHungUp, Wait

if TYPE_CHECKING:
    from pbx.simulator.core import Sim


def register(sim: Sim) -> None:
    """Install the applications on a simulator."""
    apps = Apps(sim)
    for name, fn in (
        ("NoOp", apps.noop),
        ("Answer", apps.answer),
        ("Set", apps.set),
        ("Wait", apps.wait),
        ("Hangup", apps.hangup),
        ("BackGround", apps.background),
        ("WaitExten", apps.waitexten),
        ("Playback", apps.playback),
        ("Goto", apps.goto),
        ("GotoIf", apps.gotoif),
        ("SendDTMF", apps.senddtmf),
        ("AGI", apps.agi),
        ("MusicOnHold", apps.musiconhold),
        ("Queue", apps.queue),
        ("PatientWait", apps.patient_wait),
        ("Dial", apps.dial),
        ("ChanSpy", apps.chanspy),
        ("PhoneHold", apps.phone_hold),
        ("VoiceMail", apps.voicemail),
        ("ExecIf", apps.execif),
        ("PlayTones", apps.noop),
        ("Busy", apps.busy),
    ):
        sim.apps[name.lower()] = fn
        sim.app_names[name.lower()] = name


# What Dial() clears on the calling channel before it rings anyone.
DIAL_VARIABLES = (
    "DIALSTATUS",
    "DIALEDPEERNUMBER",
    "DIALEDPEERNAME",
    "ANSWEREDTIME",
    "ANSWEREDTIME_MS",
    "DIALEDTIME",
    "DIALEDTIME_MS",
    "RINGTIME",
    "RINGTIME_MS",
    "PROGRESSTIME",
    "PROGRESSTIME_MS",
)


_PLAYING = ("STREAM FILE", "GET DATA", "GET OPTION", "CONTROL STREAM", "SAY DIGITS", "SAY NUMBER", "SAY ALPHA")


def _split(data: str) -> list[str]:
    return [part.strip() for part in data.split(",")]


class Apps:
    """The applications, sharing the simulator they act on."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def noop(self, ch: Channel, data: str) -> Wait:
        return None
        yield

    def answer(self, ch: Channel, data: str) -> Wait:
        if ch.state != 6:
            self.sim.answer(ch)
            yield ("sleep", 0.5)

    def set(self, ch: Channel, data: str) -> Wait:
        name, _, value = data.partition("=")
        self.sim.write(ch, name.strip(), value)
        return None
        yield

    def wait(self, ch: Channel, data: str) -> Wait:
        yield ("sleep", float(data or 0))

    def patient_wait(self, ch: Channel, data: str) -> Wait:
        """Simulator only: a caller's patience. Give up after N s unless the call was answered; then stay until the far end hangs up."""
        yield ("sleep", float(data or 0))
        peer = ch.partner
        if peer is not None and peer.bridge is not None:
            yield ("block",)

    def phone_hold(self, ch: Channel, data: str) -> Wait:
        """Simulator only: the phone on this Local leg puts the call on hold for N s (Hold/Unhold on its line, music for the peer)."""
        seconds = float(data or 0)
        line = ch.partner or ch
        peer = next((c for c in line.bridge.channels if c is not line), None) if line.bridge else None
        if seconds <= 0 or peer is None:
            return None
        self.sim.chan_event("Hold", line, ("MusicClass", "default"))
        self.sim.chan_event("MusicOnHoldStart", peer, ("Class", "default"))
        yield ("sleep", seconds)
        if not line.hungup:
            self.sim.chan_event("Unhold", line)
        if not peer.hungup:
            self.sim.chan_event("MusicOnHoldStop", peer)
        return None

    def voicemail(self, ch: Channel, data: str) -> Wait:
        """VoiceMail(mailbox,u): the unavailable greeting, then the caller's message until they hang up (at most 3 minutes)."""
        yield ("sleep", self.sim.prompt_seconds("vm-unavail") or 0.0)
        try:
            yield ("sleep", 180.0)
        finally:
            ch.vars["VMSTATUS"] = "SUCCESS"
        self.sim.set_var(ch, "VMSTATUS", "SUCCESS")

    def busy(self, ch: Channel, data: str) -> Wait:
        """Busy(timeout): the line says busy to whoever dials it (Dial ends BUSY at once), then hangs up after the timeout."""
        line = ch.partner
        if line is not None and line.on_busy is not None:
            callback, line.on_busy = line.on_busy, None
            callback(line)
        yield ("sleep", float(data) if data.strip() else 3600.0)
        ch.vars["__cause"] = "17"
        return "hangup"

    def hangup(self, ch: Channel, data: str) -> Wait:
        if data.strip().isdigit():
            ch.vars["__cause"] = data.strip()
        return "hangup"
        yield

    def musiconhold(self, ch: Channel, data: str) -> Wait:
        parts = _split(data)
        seconds = float(parts[1]) if len(parts) > 1 and parts[1] else None
        if seconds is None:
            yield ("block",)
        else:
            yield ("sleep", seconds)

    def playback(self, ch: Channel, data: str) -> Wait:
        status = "SUCCESS"
        for name in _split(data)[0].split("&"):
            seconds = self.sim.prompt_seconds(name)
            if seconds is None:
                status = "FAILED"
                continue
            yield ("sleep", seconds)
        self.sim.set_var(ch, "PLAYBACKSTATUS", status)

    def _timeout(self, ch: Channel, kind: str, default: float) -> float:
        try:
            return float(ch.vars.get(f"TIMEOUT({kind})", default))
        except ValueError:
            return default

    def _collect(self, ch: Channel, digits: str) -> Wait:
        """After a first digit: wait for more while a longer extension could match, then go there."""
        plan = self.sim.dialplan
        while plan.can_match_more(ch.context, digits):
            more = yield ("digit", self._timeout(ch, "digit", 5.0))
            if more is None:
                break
            digits += more
        if plan.exists(ch.context, digits):
            self.sim.goto(ch, None, digits, 1)
            return None
        if plan.exists(ch.context, "i"):
            self.sim.set_var(ch, "INVALID_EXTEN", digits)
            self.sim.goto(ch, None, "i", 1)
            return None
        return "hangup"

    def background(self, ch: Channel, data: str) -> Wait:
        digit = None
        status = "SUCCESS"
        for name in _split(data)[0].split("&"):
            seconds = self.sim.prompt_seconds(name)
            if seconds is None:
                status = "FAILED"
                continue
            digit = yield ("digit", seconds)
            if digit is not None:
                break
        self.sim.set_var(ch, "BACKGROUNDSTATUS", status)
        if digit is None:
            return None
        return (yield from self._collect(ch, digit))

    def waitexten(self, ch: Channel, data: str) -> Wait:
        seconds = float(_split(data)[0] or self._timeout(ch, "response", 10.0))
        digit = yield ("digit", seconds)
        if digit is not None:
            return (yield from self._collect(ch, digit))
        if self.sim.dialplan.exists(ch.context, "t"):
            self.sim.goto(ch, None, "t", 1)
            return None
        return "hangup"

    def _target(self, ch: Channel, spec: str) -> tuple[str | None, str | None, int]:
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) == 1:
            label = self.sim.dialplan.label(ch.context, ch.exten, parts[0])
            return None, None, label if label is not None else int(parts[0])
        if len(parts) == 2:
            exten, prio = parts
            context = None
        else:
            context, exten, prio = parts[:3]
        ctx = context or ch.context
        label = self.sim.dialplan.label(ctx, exten, prio)
        return context, exten, label if label is not None else int(prio)

    def goto(self, ch: Channel, data: str) -> Wait:
        self.sim.goto(ch, *self._target(ch, data))
        return None
        yield

    def gotoif(self, ch: Channel, data: str) -> Wait:
        condition, _, branches = data.partition("?")
        when_true, _, when_false = branches.partition(":")
        chosen = when_true if condition.strip() not in ("", "0") else when_false
        if chosen.strip():
            self.sim.goto(ch, *self._target(ch, chosen.strip()))
        return None
        yield

    def execif(self, ch: Channel, data: str) -> Wait:
        """ExecIf(condition?App(args)): the application runs only when the condition holds."""
        condition, _, call = data.partition("?")
        name, _, args = call.partition("(")
        if condition.strip() in ("", "0") or name.strip().lower() not in self.sim.apps:
            return None
        yield from self.sim.apps[name.strip().lower()](ch, args[:-1] if args.endswith(")") else args)

    def senddtmf(self, ch: Channel, data: str) -> Wait:
        target = (
            ch.partner if ch.partner is not None else (next((c for c in ch.bridge.channels if c is not ch), None) if ch.bridge else None)
        )
        for digit in _split(data)[0]:
            yield ("sleep", 0.1)
            if target is not None and not target.hungup:
                self.sim.send_dtmf(target, digit)
            yield ("sleep", 0.35)

    def dial(self, ch: Channel, data: str) -> Wait:
        """Dial(Local/...&Local/...,timeout): ring, bridge the first to answer, continue when the callee leaves."""
        sim = self.sim
        parts = _split(data)
        timeout = float(parts[1]) if len(parts) > 1 and parts[1] else None
        legs: list[Channel] = []
        answered: list[Channel] = []
        started = sim.now

        def on_answer(leg: Channel) -> None:
            answered.append(leg)
            if ch.waiting == "block":
                sim.wake(ch, "answered")

        def on_gone(leg: Channel) -> None:
            if leg in legs and not answered and all(line.hungup for line in legs) and ch.waiting == "block":
                sim.wake(ch, "failed")

        busy: list[Channel] = []

        def all_busy() -> bool:
            return bool(busy) and all(line.hungup or line in busy for line in legs)

        def on_busy(leg: Channel) -> None:
            busy.append(leg)
            if not answered and all_busy() and ch.waiting == "block":
                sim.wake(ch, "busy")

        for name in DIAL_VARIABLES:
            sim.set_var(ch, name, "")
        for interface in parts[0].split("&"):
            local = interface.strip()
            exten, _, rest = local[len("Local/") :].partition("@")
            if not local.startswith("Local/") or not sim.dialplan.exists(rest.split("/")[0], exten):
                continue
            one, two, target = sim.call_local(ch, local, "AppDial")
            sim.event("DialBegin", "call", sim.fields(ch), sim.fields(one, "Dest"), ("DialString", target))
            sim.music_off(ch)  # a caller's music stops when Dial rings someone
            one.on_answer = on_answer
            one.on_busy = on_busy
            one.on_hangup.append(on_gone)
            legs.append(one)
            sim.start_pbx(two, two.context, two.exten, 1)
        if not legs:
            sim.set_var(ch, "DIALSTATUS", "CHANUNAVAIL")
            return None
        timer = sim.at(timeout, sim.wake, ch, "timeout") if timeout else None
        try:
            if not answered and not all_busy():
                yield ("block",)
        except ChannelHungUp:
            for leg in legs:
                if not leg.hungup:
                    sim.event("DialEnd", "call", sim.fields(ch), sim.fields(leg, "Dest"), ("DialStatus", "CANCEL"))
                    sim.hangup(leg)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        winner = answered[0] if answered else None
        if winner is not None:
            winner.exten = ""  # as Asterisk's events show the answered leg
            sim.chan_event(
                "Newexten",
                winner,
                ("Extension", winner.exten),
                ("Application", "AppDial"),
                ("AppData", "(Outgoing Line)"),
                privilege="dialplan",
            )
            sim.set_var(ch, "DIALEDPEERNAME", winner.name)
            sim.set_var(ch, "DIALEDPEERNUMBER", winner.vars.get("DIALEDPEERNUMBER", ""))
            sim.event("DialEnd", "call", sim.fields(ch), sim.fields(winner, "Dest"), ("DialStatus", "ANSWER"))
            sim.set_var(ch, "DIALSTATUS", "ANSWER")
            for name in ("ANSWEREDTIME", "DIALEDTIME"):
                sim.set_var(ch, name, str(int(sim.now - started)))
                sim.set_var(ch, name + "_MS", str(int((sim.now - started) * 1000)))
        for leg in legs:
            if leg is not winner and not leg.hungup:
                leg.on_answer = None
                status = "CANCEL" if winner else "BUSY" if leg in busy else "NOANSWER"
                sim.event("DialEnd", "call", sim.fields(ch), sim.fields(leg, "Dest"), ("DialStatus", status))
                leg.vars["__cause"] = "0"  # Dial hangs up the legs it gave up on with no cause set
                sim.hangup(leg)
        if winner is None:
            sim.set_var(ch, "DIALSTATUS", "BUSY" if busy else "NOANSWER")
            return None
        if winner.hungup:
            return None
        if ch.state != 6:
            sim.answer(ch)
        sim.bridge(winner, ch)
        try:
            while True:
                reason = yield ("block",)
                if reason == "bridge_ended":
                    sim.leave_bridge(ch)
                    sim.set_var(ch, "DIALSTATUS", "ANSWER")
                    return None
                if isinstance(reason, tuple) and reason[0] == "transfer":
                    sim.leave_bridge(ch)
                    sim.goto(ch, reason[1], reason[2], 1)
                    return None
        except ChannelHungUp:
            sim.leave_bridge(ch)
            sim.set_var(ch, "DIALSTATUS", "ANSWER")
            raise

    def chanspy(self, ch: Channel, data: str) -> Wait:
        """ChanSpy(prefix,options): listen (q), whisper (w) or barge (B) on the first live channel named with the prefix."""
        sim = self.sim
        parts = _split(data)
        prefix = parts[0]
        target = next((c for c in sim.channels.values() if c is not ch and prefix and c.name.startswith(prefix) and c.state == 6), None)
        if target is None:
            return None
        if ch.state != 6:
            sim.answer(ch)
        mode = (
            "barge"
            if "B" in (parts[1] if len(parts) > 1 else "")
            else "whisper"
            if "w" in (parts[1] if len(parts) > 1 else "")
            else "listen"
        )
        sim.set_var(ch, "SPY_MODE", mode)
        sim.event("ChanSpyStart", "call", sim.fields(ch, "Spyer"), sim.fields(target, "Spyee"))
        stop = lambda gone: sim.wake(ch, "spyee_gone") if ch.waiting == "block" else None  # noqa: E731
        target.on_hangup.append(stop)
        try:
            yield ("block",)
        finally:
            if stop in target.on_hangup:
                target.on_hangup.remove(stop)
            sim.event("ChanSpyStop", "call", sim.fields(ch, "Spyer"), sim.fields(target, "Spyee"))
        return None

    def queue(self, ch: Channel, data: str) -> Wait:
        return (yield from self.sim.queues.run(ch, data))

    # AsyncAGI ----------------------------------------------------------
    def agi(self, ch: Channel, data: str) -> Wait:
        if _split(data)[0] != "agi:async":
            self.sim.set_var(ch, "AGISTATUS", "FAILURE")
            return None
        env = _agi_env(ch)
        self.sim.chan_event("AsyncAGIStart", ch, ("Env", quote(env, safe="")), privilege="agi")
        ch.agi = deque()
        first = True
        try:
            while True:
                if not ch.agi:
                    yield ("block",)
                    continue
                yield ("sleep", 0.1 if first else 0.02)
                first = False
                command, command_id = ch.agi.popleft()
                if self.sim.drop_unread_digits:
                    ch.digits.clear()  # keyed while no command was reading: Asterisk's AGI loop reads and drops them
                stop = yield from self._agi_command(ch, command, command_id)
                if stop:
                    break
        except ChannelHungUp:
            ch.agi = None
            self.sim.music_off(ch)
            self.sim.chan_event("AsyncAGIEnd", ch, privilege="agi")
            self.sim.set_var(ch, "AGISTATUS", "HANGUP")
            if ch.vars.pop("__agi_hangup", None):
                self.sim.chan_event("SoftHangupRequest", ch, ("Cause", "16"))
            raise
        ch.agi = None
        self.sim.chan_event("AsyncAGIEnd", ch, privilege="agi")
        self.sim.set_var(ch, "AGISTATUS", "SUCCESS")
        context = ch.vars.pop("__agi_context", None)
        exten = ch.vars.pop("__agi_extension", None)
        priority = ch.vars.pop("__agi_priority", None)
        if context or exten or priority:
            target_context, target_exten = context or ch.context, exten or ch.exten
            label = self.sim.dialplan.label(target_context, target_exten, priority) if priority else None
            number = label if label is not None else int(priority) if priority and priority.isdigit() else 1
            self.sim.goto(ch, target_context, target_exten, number)
        return None

    def _agi_command(self, ch: Channel, command: str, command_id: str) -> Wait:
        exec_id = str(self.sim.rng.randrange(10**8, 2 * 10**9))
        self.sim.chan_event("AGIExecStart", ch, ("CommandId", exec_id), ("Command", command), privilege="agi")
        words = command.split()
        verb = " ".join(words[:2]).upper()
        if verb in _PLAYING or (verb == "EXEC" and len(words) > 2 and words[1].lower() in ("playback", "background")):
            self.sim.music_off(ch)  # a file played stops the music SET MUSIC started, found or not, and it stays off
        stop = False
        code, result, extra = 200, "0", ""
        streamed = verb in ("STREAM FILE", "GET DATA") and len(words) >= 3
        seconds = self.sim.prompt_seconds(words[2]) if streamed else None  # the prompt's length, None if there is no file
        if verb == "WAIT FOR" and len(words) >= 4 and words[2].upper() == "DIGIT":
            ms = int(words[3])
            digit = yield ("digit", None if ms < 0 else ms / 1000)
            result = str(ord(digit)) if digit else "0"
        elif streamed and seconds is None:
            result, extra = "-1", " endpos=0" if verb == "STREAM FILE" else ""  # Asterisk found no such file
        elif streamed and verb == "STREAM FILE":
            escape = words[3].strip('"') if len(words) > 3 else ""
            digit = yield ("digit", seconds)
            result = str(ord(digit)) if digit and digit in escape else "0"
            extra = " endpos=8000"
        elif streamed:  # GET DATA
            timeout = int(words[3]) / 1000 if len(words) > 3 else 5.0
            max_digits = int(words[4]) if len(words) > 4 else 1024
            digits = ""
            first = yield ("digit", seconds)
            pending = first
            timed_out = False
            while len(digits) < max_digits:
                if pending is None:
                    pending = yield ("digit", timeout)
                    if pending is None:
                        timed_out = True
                        break
                if pending == "#":
                    break
                digits += pending
                pending = None
            result = digits
            extra = " (timeout)" if timed_out else ""
        elif verb == "ANSWER":
            if ch.state != 6:
                self.sim.answer(ch)
        elif verb == "HANGUP":
            result = "1"
            ch.vars["__agi_hangup"] = "1"
            self.sim.request_hangup(ch, soft=True, cause=0, told=32)
        elif verb in ("SET MUSIC", "SET CONTEXT", "SET EXTENSION", "SET PRIORITY", "SET VARIABLE", "GET VARIABLE", "SAY DIGITS"):
            arg = " ".join(words[2:])
            if verb == "SET MUSIC" and self.sim.moh and arg.split()[:1] in (["on"], ["off"]):
                if arg.startswith("on"):
                    ch.vars["__moh"] = "1"
                    self.sim.chan_event("MusicOnHoldStart", ch, ("Class", (arg.split() + ["default"])[1]))
                else:
                    self.sim.music_off(ch)
            if verb in ("SET CONTEXT", "SET EXTENSION", "SET PRIORITY"):
                # Applied when the AGI ends: until then Asterisk's events still show the old place.
                ch.vars["__agi_" + words[1].lower()] = arg
            elif verb == "SET VARIABLE" and len(words) >= 4:
                self.sim.write(ch, words[2], " ".join(words[3:]).strip('"'))
                result = "1"
            elif verb == "GET VARIABLE" and len(words) >= 3:
                value = ch.vars.get(words[2])
                result, extra = ("1", f" ({value})") if value is not None else ("0", "")
            elif verb == "SAY DIGITS" and len(words) >= 3:
                yield ("sleep", 0.6 * len(words[2]))
        elif verb.startswith("EXEC") and len(words) >= 2:
            app = self.sim.apps.get(words[1].lower())
            if app is None:
                result = "-2"
            else:
                try:
                    outcome = yield from app(ch, " ".join(words[2:]).strip('"'))
                except ChannelHungUp:  # Asterisk still ends the command, answering -1
                    self.sim.chan_event(
                        "AGIExecEnd",
                        ch,
                        ("CommandId", exec_id),
                        ("Command", command),
                        ("ResultCode", "200"),
                        ("Result", "Unknown Result"),
                        privilege="agi",
                    )
                    self.sim.chan_event(
                        "AsyncAGIExec", ch, ("Result", quote("200 result=-1\n", safe="()")), ("CommandId", command_id), privilege="agi"
                    )
                    raise
                result = "-1" if outcome == "hangup" else "0"
        elif verb == "ASYNCAGI BREAK":
            stop = True
        else:
            code, result = 510, ""
        self.sim.chan_event(
            "AGIExecEnd",
            ch,
            ("CommandId", exec_id),
            ("Command", command),
            ("ResultCode", str(code)),
            ("Result", "Success" if code == 200 else "Failure"),
            privilege="agi",
        )
        text = f"{code} result={result}{extra}\n" if code == 200 else "510 Invalid or unknown command\n"
        self.sim.chan_event("AsyncAGIExec", ch, ("Result", quote(text, safe="()")), ("CommandId", command_id), privilege="agi")
        return stop


def _agi_env(ch: Channel) -> str:
    kind = ch.name.split("/", 1)[0]
    lines = [
        ("agi_request", "async"),
        ("agi_channel", ch.name),
        ("agi_language", ch.language),
        ("agi_type", kind),
        ("agi_uniqueid", ch.uniqueid),
        ("agi_version", "simulator"),
        ("agi_callerid", ch.cid_num),
        ("agi_calleridname", ch.cid_name),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", ch.vars.get("__dnid", "unknown")),
        ("agi_rdnis", "unknown"),
        ("agi_context", ch.context),
        ("agi_extension", ch.exten),
        ("agi_priority", str(ch.priority)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", "0"),
    ]
    return "".join(f"{k}: {v}\n" for k, v in lines) + "\n"


def queue_agi_command(ch: Channel, command: str, command_id: str, sim: Sim) -> bool:
    """Queue an AGI action's command on a channel in AsyncAGI; False when it is not in one."""
    if ch.agi is None:
        return False
    ch.agi.append((command, command_id))
    if ch.waiting == "block":
        sim.wake(ch, None)
    return True
