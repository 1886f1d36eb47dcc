"""Native mode: our own ACD routes callers held in AsyncAGI, dialling agents with EXEC Dial.

The IVR hands a caller over still in AsyncAGI (a queue node with
`mode: native`); here the caller hears music while the `ACD` machine decides.
Pressing the queue's callback key (or an overflow to "callback") keeps the
caller's place and hangs up; when the turn comes, an Originate rings the
agent, then the caller. What happened to each call (joined, ringing,
connected, left and why) is told to the tracker, so records and the wallboard
say the same as they do for app_queue.
A Ring becomes ``EXEC Dial(interface,timeout)`` on the caller's channel: the
DialEnd event says whether the agent answered (Answered / RingNoAnswer), and
the EXEC finishing means the agent's call is over (CallEnded), after which the
caller is hung up. A caller who hangs up while waiting is an abandon.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from acd.machine import (
    ACD,
    Abandoned,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentUnpause,
    Announce,
    Answered,
    BusyElsewhere,
    CallbackRequested,
    CallEnded,
    CallerArrived,
    CallerLeft,
    Command,
    Connected,
    MoveCaller,
    Overflow,
    Ring,
    RingNoAnswer,
    SetPriority,
    Tick,
    WrapupSaved,
)
from kernel.exceptions import AMIError, Refused
from kernel.values import Outcome
from pbx.agi import guard, handback, play
from pbx.client import AMIClient
from pbx.codec import Message
from pbx.tasks import Background
from pbx.tracker import CALLBACK_AGENT_VAR, CALLBACK_QUEUE_VAR, agent_for

log = logging.getLogger(__name__)


def acd_prompt(name: str, language: str = "") -> str:
    """The native ACD's own prompt in the caller's language (contrib/prompts: `cc/NAME` in Portuguese, `cc/NAME-en`)."""
    return f"cc/{name}-en" if language.startswith("en") else f"cc/{name}"


@dataclass
class Held:
    """A caller held in AsyncAGI for the ACD."""

    channel: str
    linkedid: str
    queue: str
    music: str
    dialing: dict[str, str] = field(default_factory=dict)
    lane: asyncio.Task | None = None
    number: str = ""
    callback: bool = False
    agent_channel: str | None = None
    on_line: bool = True  # a caller to be called back may still hear the call-back message before we hang up
    language: str = ""  # the one the caller chose in the IVR: the ACD's announcements are in it


class NativeACD:
    """Runs the `ACD` machine on live calls; `on_event` sees every AMI event, `tick()` runs once a second."""

    def __init__(
        self,
        client: AMIClient,
        acd: ACD,
        on_commands: Callable[[list[Command]], None] | None = None,
        clock: Callable[[], float] = time.time,
        on_call: Callable[..., None] | None = None,
    ) -> None:
        self.client = client
        self.acd = acd
        self.on_commands = on_commands
        self.on_call = on_call
        self.linkedids: dict[str, str] = {}
        self.last_call: dict[str, tuple[str, str]] = {}  # agent -> (linkedid, caller channel) of the last call routed to them
        self.clock = clock
        self.held: dict[str, Held] = {}
        self._gone: dict[str, None] = {}
        self._ids = 0
        self._tasks = Background("ACD lane")
        self._cut: weakref.WeakSet[asyncio.Task] = weakref.WeakSet()  # lanes a newer batch replaced
        self.guard_s = 30.0  # the dialplan's guard, re-armed when a caller goes back to waiting (the engine sets it)

    # what happens ---------------------------------------------------------------
    def handoff(
        self,
        channel: str,
        linkedid: str,
        queue: str,
        priority: int = 0,
        skills: dict[str, int] | None = None,
        data: dict[str, str] | None = None,
        language: str = "",
    ) -> None:
        """A caller arrives from the IVR, still in AsyncAGI (music already on), with what it keyed in for the screen pop and
        the language it chose."""
        music = self.acd.queues[queue].music_class if queue in self.acd.queues else "default"
        self.held[channel] = Held(channel, linkedid, queue, music, language=language)
        self.linkedids[channel] = linkedid
        self._arrive(channel, queue, priority, tuple((skills or {}).items()), tuple((data or {}).items()))

    def call_back_later(self, channel: str, linkedid: str, queue: str, number: str, data: dict[str, str] | None = None) -> None:
        """The IVR's call-back key: the caller has hung up and keeps a place in the queue; the turn comes as an Originate."""
        if queue not in self.acd.queues:
            raise Refused(f"no call back: {queue!r} is not a queue of the native ACD")
        self.held[channel] = Held(channel, linkedid, queue, self.acd.queues[queue].music_class, number=number, callback=True, on_line=False)
        self.linkedids[channel] = linkedid
        self._arrive(channel, queue, data=tuple((data or {}).items()), callback=True)

    def _arrive(
        self,
        channel: str,
        queue: str,
        priority: int = 0,
        skills: tuple[tuple[str, int], ...] = (),
        data: tuple[tuple[str, str], ...] = (),
        callback: bool = False,
    ) -> None:
        """A caller joins a queue; one turned away by its maximum length never joined it (as app_queue's FULL)."""
        commands = self.acd.step(CallerArrived(channel, queue, self.clock(), priority, skills, data, callback))
        if not callback and not any(isinstance(c, Overflow) and c.why is Outcome.FULL for c in commands):
            self._tell("joined", channel, queue=queue)
        self._apply(commands)

    def login(self, agent: str, interface: str, queues: list[str], skills: dict[str, int] | None = None, *, wraps_up: bool = False) -> None:
        """An agent logs in with a phone interface (`wraps_up`: from the panel, where they save dispositions)."""
        self._apply(self.acd.step(AgentLogin(agent, interface, frozenset(queues), self.clock(), tuple((skills or {}).items()), wraps_up)))

    def logout(self, agent: str) -> None:
        """An agent logs out."""
        self._apply(self.acd.step(AgentLogout(agent, self.clock())))

    def pause(self, agent: str, reason: str) -> None:
        """An agent pauses with a reason."""
        self._apply(self.acd.step(AgentPause(agent, reason, self.clock())))

    def unpause(self, agent: str) -> None:
        """An agent is back."""
        self._apply(self.acd.step(AgentUnpause(agent, self.clock())))

    def wrapup_saved(self, agent: str, linkedid: str) -> None:
        """The agent saved a disposition: told to the ACD if it is for the last call it gave them (the only one whose
        after-call work a save can end)."""
        last = self.last_call.get(agent)
        if last is not None and last[0] == linkedid:
            self._apply(self.acd.step(WrapupSaved(agent, last[1], self.clock())))

    def busy_elsewhere(self, agent: str, busy: bool) -> None:
        """The agent is on a call the ACD did not give them (or it ended): no caller is offered to them meanwhile."""
        self._apply(self.acd.step(BusyElsewhere(agent, busy, self.clock())))

    def must_save(self, agent: str) -> bool:
        """Whether the agent owes a disposition before taking calls again (after-call work that lasts until it is saved, even
        if they paused meanwhile)."""
        state = self.acd.agents.get(agent)
        return state is not None and state.wrap_needs_save

    def move_caller(self, channel: str, queue: str) -> None:
        """Supervisor: a waiting caller goes to another queue."""
        if channel in self.held and queue in self.acd.queues and channel not in self.acd.connected:
            self.held[channel].queue = queue
            self._tell("left", channel, reason=Outcome.MOVED)
            self._tell("joined", channel, queue=queue)
            self._apply(self.acd.step(MoveCaller(channel, queue, self.clock())))

    def set_priority(self, channel: str, priority: int) -> None:
        """Supervisor: a waiting caller's priority changes."""
        self._apply(self.acd.step(SetPriority(channel, priority, self.clock())))

    def on_resync(self, channels: list[Message]) -> None:
        """After a reconnect: callers who hung up during the gap leave the ACD (the rest are still held in AsyncAGI)."""
        alive = {m.get("Channel") for m in channels}
        for held in list(self.held.values()):
            if held.channel not in alive and (held.on_line or not held.callback):
                self.on_event(Message([("Event", "Hangup"), ("Channel", held.channel)]), self.clock())

    def tick(self) -> None:
        """Time passes: wrap-ups end, rings time out, overflow and announcements are due."""
        self._apply(self.acd.step(Tick(self.clock())))

    def on_event(self, message: Message, arrival: float) -> None:
        """DialEnd on a held caller says whether the agent answered; a hang-up while waiting is an abandon."""
        name = message.get("Event")
        held = self.held.get(message.get("Channel", ""))
        if held is None:
            self._callback_leg_event(name, message)
            return
        held.number = held.number or message.get("CallerIDNum", "")
        settings = self.acd.queues.get(held.queue)
        if (
            name == "DTMFEnd"
            and settings is not None
            and settings.callback_key
            and message.get("Digit") == settings.callback_key
            and not held.dialing
            and not held.callback
        ):
            self._apply(self.acd.step(CallbackRequested(held.channel, self.clock())))
            self._tell("left", held.channel, reason=Outcome.EXIT_KEY)
            self._to_callback(held)
            return
        if name == "DialEnd" and held.dialing:
            agent = agent_for(held.dialing, message.get("DestChannel", ""))
            if agent is None:
                return
            if message.get("DialStatus") == "ANSWER":
                held.agent_channel = message.get("DestChannel")
                self._apply(self.acd.step(Answered(agent, held.channel, self.clock())))
            elif message.get("DialStatus") in ("NOANSWER", "BUSY", "CONGESTION", "CHANUNAVAIL", "CANCEL"):
                held.dialing = {k: v for k, v in held.dialing.items() if v != agent}
                if message.get("DialStatus") != "CANCEL":
                    self._apply(self.acd.step(RingNoAnswer(agent, held.channel, self.clock())))
        elif name == "Hangup" and held.callback:
            held.on_line = False
        elif name == "Hangup":
            self.held.pop(held.channel, None)
            agent = self.acd.connected.get(held.channel)
            self._apply(self.acd.step(CallerLeft(held.channel, self.clock())))
            if agent is not None:
                self._apply(self.acd.step(CallEnded(agent, self.clock())))
            self.linkedids.pop(held.channel, None)

    # what to do -----------------------------------------------------------------
    def _tell(self, kind: str, channel: str, **data: object) -> None:
        linkedid = self.linkedids.get(channel)
        if self.on_call is not None and linkedid:
            self.on_call(kind, linkedid, self.clock(), **data)

    def _apply(self, commands: list[Command]) -> None:
        if self.on_commands is not None and commands:
            self.on_commands(commands)
        for command in commands:
            if isinstance(command, Connected):
                agent = self.acd.agents.get(command.agent)
                held = self.held.get(command.caller)
                if command.caller in self.linkedids:
                    self.last_call[command.agent] = (self.linkedids[command.caller], command.caller)
                self._tell(
                    "connected",
                    command.caller,
                    agent=command.agent,
                    interface=agent.interface if agent else None,
                    agent_channel=held.agent_channel if held else None,
                )
            elif isinstance(command, Abandoned):
                self._tell("left", command.caller, reason=Outcome.ABANDONED)
                self.linkedids.pop(command.caller, None)
        rings: dict[str, list[Ring]] = {}
        for command in commands:
            if isinstance(command, Ring) and command.caller in self.held:
                rings.setdefault(command.caller, []).append(command)
        for caller, batch in rings.items():
            held = self.held[caller]
            held.dialing = {ring.interface: ring.agent for ring in batch}
            for ring in batch:
                self._tell("ringing", caller, agent=ring.agent, interface=ring.interface)
            self._lane(held, self._call_back(held, batch[0]) if held.callback else self._dial(held, batch))
        for command in commands:
            if isinstance(command, Ring):
                continue
            if isinstance(command, Overflow) and command.caller in self.held:
                self._overflow(self.held[command.caller], command)
            elif isinstance(command, Announce) and command.caller in self.held:
                held = self.held[command.caller]
                minutes = max(1, round(command.expected_wait_s / 60))
                self._lane(
                    held,
                    self._agi(
                        held.channel,
                        play(acd_prompt("your-position", held.language)),
                        f'SAY DIGITS {command.position} ""',
                        play(acd_prompt("expected-wait", held.language)),
                        f'SAY DIGITS {minutes} ""',
                        f"SET MUSIC on {held.music}",
                    ),
                )

    def _overflow(self, held: Held, command: Overflow) -> None:
        """Where a caller goes after the queue's maximum wait or length: a call back, another queue, voicemail, a message,
        the dialplan."""
        self._tell("left", held.channel, reason=command.why)
        if command.kind == "callback":
            self._to_callback(held)
            return
        if command.kind == "queue" and command.target in self.acd.queues:
            held.queue = command.target
            self._arrive(held.channel, command.target, command.priority, command.skills, command.data)
            return
        self.held.pop(held.channel, None)
        self.linkedids.pop(held.channel, None)
        if command.kind == "voicemail":
            steps = [f"EXEC VoiceMail {command.target},u", "HANGUP"]
        elif command.kind == "message":
            steps = [play(command.target), "HANGUP"]
        elif command.kind == "hangup":
            steps = ["HANGUP"]
        else:
            steps = handback(command.target or "fallback")
        self._lane(held, self._agi(held.channel, "SET MUSIC off", *steps))

    def _to_callback(self, held: Held) -> None:
        """The caller keeps the place and hangs up; the turn comes as an Originate (`_call_back`)."""
        held.callback = True
        self._lane(held, self._agi(held.channel, "SET MUSIC off", play(acd_prompt("callback-ok", held.language)), "HANGUP"))

    def _lane(self, held: Held, coroutine) -> None:
        """One caller's AGI commands go one batch at a time: a new batch (a ring, an overflow) cuts what was still to say.

        The cut batch is cancelled and also marked: before Python 3.12, a cancel that meets an answer arriving at the same
        moment is lost in wait_for, and the old batch would go on sending between the new one's commands (seen under load:
        an announcement's SET MUSIC on after the call back's HANGUP)."""
        if held.lane is not None and not held.lane.done() and not held.dialing:
            self._cut.add(held.lane)
            held.lane.cancel()
        held.lane = self._tasks.spawn(coroutine)

    async def _send(self, channel: str, command: str, timeout: float = 3600.0) -> Message | None:
        self._ids += 1
        try:
            replies = await self.client.send_action(
                {"Action": "AGI", "Channel": channel, "Command": command, "CommandID": f"acd-{self._ids}"}, timeout=timeout, check=False
            )
        except AMIError as exc:
            log.warning("AGI %r on %s: %s", command, channel, exc)
            return None
        return next((m for m in replies if m.get("Event") == "AsyncAGIExec"), None) if isinstance(replies, list) else None

    async def _guard(self, channel: str, seconds: float) -> None:
        """Arm (or, with 0, clear: the caller is about to talk) the dialplan's guard against a silent engine."""
        try:
            await self.client.send_action(guard(channel, seconds), check=False)
        except AMIError as exc:
            log.warning("guard of %s not set: %s", channel, exc)

    async def _agi(self, channel: str, *commands: str) -> None:
        for command in commands:
            if asyncio.current_task() in self._cut:
                return
            await self._send(channel, command)

    async def _dial(self, held: Held, batch: list[Ring]) -> None:
        """One EXEC Dial for every agent rung at once (ring-all rings several); it returns when nobody answered, or when the call is over."""
        timeout = int(max(ring.timeout_s for ring in batch))
        targets = "&".join(ring.interface for ring in batch)
        await self._guard(held.channel, 0)
        result = await self._send(held.channel, f"EXEC Dial {targets},{timeout}")
        if held.channel not in self.held:
            return
        agent = self.acd.connected.get(held.channel)
        if agent is not None:
            self.held.pop(held.channel, None)
            self._apply(self.acd.step(CallEnded(agent, self.clock())))
            await self._agi(held.channel, "HANGUP")
            return
        for waiting in list(held.dialing.values()):
            self._apply(self.acd.step(RingNoAnswer(waiting, held.channel, self.clock())))
        held.dialing = {}
        if result is not None:
            await self._guard(held.channel, self.guard_s)
            await self._agi(held.channel, f"SET MUSIC on {held.music}")

    async def _call_back(self, held: Held, ring: Ring) -> None:
        """The caller's turn came after they asked to be called back: ring the agent, then the caller, by Originate."""
        settings = self.acd.queues[held.queue]
        try:
            replies = await self.client.send_action(
                {
                    "Action": "Originate",
                    "Channel": ring.interface,
                    "Context": settings.callback_context,
                    "Exten": held.number,
                    "Priority": "1",
                    "CallerID": f"<{held.number}>",
                    "Async": "true",
                    "Timeout": str(int(ring.timeout_s * 1000)),
                    "Variable": f"{CALLBACK_QUEUE_VAR}={held.queue},{CALLBACK_AGENT_VAR}={ring.agent}",
                },
                timeout=ring.timeout_s + 30,
                check=False,
            )
        except AMIError as exc:
            log.warning("callback to %s not placed: %s", held.number, exc)
            replies = []
        outcome = next((m for m in replies if m.get("Event") == "OriginateResponse"), None) if isinstance(replies, list) else None
        held.dialing = {}
        if outcome is not None and outcome.get("Response") == "Success":
            held.agent_channel = outcome.get("Channel")
            self._apply(self.acd.step(Answered(ring.agent, held.channel, self.clock())))
            if held.agent_channel in self._gone:
                self._callback_leg_event("Hangup", Message([("Channel", held.agent_channel)]))
        else:
            self._apply(self.acd.step(RingNoAnswer(ring.agent, held.channel, self.clock())))

    def _callback_leg_event(self, name: str | None, message: Message) -> None:
        if name != "Hangup":
            return
        self._gone[message.get("Channel", "")] = None
        while len(self._gone) > 1000:
            del self._gone[next(iter(self._gone))]
        for held in list(self.held.values()):
            if held.callback and held.agent_channel == message.get("Channel"):
                self.held.pop(held.channel, None)
                agent = self.acd.connected.get(held.channel)
                if agent is not None:
                    self._apply(self.acd.step(CallEnded(agent, self.clock())))
                self.linkedids.pop(held.channel, None)

    def waiting(self) -> list[str]:
        """Callers held in AsyncAGI: not being rung, not talking, not yet hung up (a call back's caller hears its message first)."""
        return [h.channel for h in self.held.values() if not h.dialing and h.on_line and h.channel not in self.acd.connected]

    async def stop(self) -> None:
        """Cancel what is in flight (shutting down)."""
        await self._tasks.cancel()
