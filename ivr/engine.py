"""The IVR engine: runs flows for calls in AsyncAGI, sending each machine command over AMI.

For every AsyncAGIStart whose DNID or context a flow serves, a session task
feeds the pure `Machine` with what Asterisk answers (AsyncAGIExec) and sends
what it asks (AGI commands, MixMonitorMute). A hang-up or AsyncAGIEnd ends
the session at once, whatever it was waiting for. What the caller did (node
path, seconds per node, keyed data, masked where sensitive) is kept on the
call for reports and the screen pop. A prompt Asterisk does not have is logged
once per name (the machine goes on without it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from ivr.flow import Flow
from ivr.machine import Action, Agi, Ended, Machine, Record, Result, Sensitive, Started, State, parse_result
from kernel.exceptions import AMIError
from pbx.agi import agi_env, send_to_fallback
from pbx.client import AMIClient
from pbx.codec import Message
from pbx.tasks import Background
from pbx.tracker import event_time

log = logging.getLogger(__name__)
HANDED_OFF = ("acd", "callback")  # endings the ACD carries on: a caller held for the native ACD, a call back to queue


@dataclass
class Session:
    """One call in the IVR."""

    channel: str
    linkedid: str
    machine: Machine
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    records: list[Record] = field(default_factory=list)
    outcome: str | None = None
    answered_at: float | None = None
    number: str | None = None


class IVREngine:
    """Serves every flow on one AMI connection; `on_event` is called by the event loop for each AMI event."""

    def __init__(
        self,
        client: AMIClient,
        flows: Iterable[Flow],
        on_records: Callable[[str, list[Record]], None] | None = None,
        clock: Callable[[], float] | None = None,
        command_timeout: float = 60.0,
        on_handoff: Callable[[str, str, dict[str, Any]], None] | None = None,
        on_sensitive: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.client = client
        self.on_handoff = on_handoff
        self.on_sensitive = on_sensitive  # (linkedid, on): the tracker stores none of the digits keyed meanwhile
        self.machines = [(flow, Machine(flow)) for flow in flows]
        self.on_records = on_records
        self.clock = clock
        self.command_timeout = command_timeout
        self.sessions: dict[str, Session] = {}
        self.finished: list[Session] = []
        self.turnaround: list[float] = []  # seconds from an AGI answer to the next command sent, per command
        self.missing_prompts: set[str] = set()  # prompts the PBX lacks, each warned about once
        self._tasks = Background("IVR session")
        self._ids = 0

    def on_event(self, message: Message, arrival: float) -> None:
        """Start a session on AsyncAGIStart; end one on AsyncAGIEnd or Hangup."""
        name = message.get("Event")
        channel = message.get("Channel", "")
        if name == "AsyncAGIStart" and channel not in self.sessions:
            env = agi_env(message)
            machine = self._machine_for(env)
            if machine is None:
                return
            number = env.get("agi_callerid") or message.get("CallerIDNum")
            session = Session(channel, message.get("Linkedid", ""), machine, number=number)
            self.sessions[channel] = session
            started = Started(channel, number, self._now(message, arrival))
            self._tasks.spawn(self._run(session, started))
        elif name in ("AsyncAGIEnd", "Hangup") and channel in self.sessions:
            self.sessions[channel].ended.set()

    def _now(self, message: Message, arrival: float) -> float:
        return self.clock() if self.clock is not None else event_time(message, arrival)

    def _machine_for(self, env: dict[str, str]) -> Machine | None:
        dnid = env.get("agi_dnid") if env.get("agi_dnid") not in (None, "unknown") else None
        for flow, machine in self.machines:
            if flow.matches(dnid, env.get("agi_context")):
                return machine
        return None

    async def _run(self, session: Session, started: Started) -> None:
        state, commands = session.machine.step(State(), started)
        try:
            while True:
                state, result = await self._perform(session, state, commands)
                if result is None:
                    break
                state, commands = session.machine.step(state, result)
                if state.done is not None and not any(isinstance(c, Agi) for c in commands):
                    # The answer after the end can still tell that the last message was missing (a Record, nothing to send).
                    await self._perform(session, state, commands)
                    break
        except AMIError as exc:
            log.warning("IVR session on %s stopped: %s", session.channel, exc)
        except Exception:
            log.exception("IVR session on %s failed; the dialplan continues after AGI", session.channel)
        finally:
            session.outcome = state.done or "engine_error"
            self.sessions.pop(session.channel, None)
            self.finished.append(session)
            if self.on_records is not None and session.records:
                self.on_records(session.linkedid, session.records)
            if session.outcome in HANDED_OFF and self.on_handoff is not None:
                done = next(r.data for r in reversed(session.records) if r.kind == "done")
                self.on_handoff(session.channel, session.linkedid, {**done, "number": session.number})

    async def _perform(self, session: Session, state: State, commands: list[Any]) -> tuple[State, Result | None]:
        """Send what the machine asked, in order; return the answer to the last AGI command (None once the call ended)."""
        result: Result | None = None
        for command in commands:
            if isinstance(command, Record):
                self._keep(session, command)
            elif isinstance(command, Sensitive):
                if self.on_sensitive is not None:
                    self.on_sensitive(session.linkedid, command.on)
            elif isinstance(command, Action):
                await self._action(dict(command.fields))
            elif isinstance(command, Agi):
                if result is not None:
                    # The answer to an earlier command of this batch: the machine counts it (it waits for the last one).
                    state, more = session.machine.step(state, result)
                    for record in (c for c in more if isinstance(c, Record)):
                        self._keep(session, record)
                result = await self._agi(session, command.command)
                if result is None:
                    state, more = session.machine.step(state, Ended(self.clock() if self.clock else time.time()))
                    session.records.extend(c for c in more if isinstance(c, Record))
                    return state, None
        return state, result

    def _keep(self, session: Session, record: Record) -> None:
        """Keep a record on the call; a prompt the PBX lacks is also worth one warning per name for whoever installs prompts."""
        session.records.append(record)
        prompt = record.data.get("prompt", "") if record.kind == "missing_prompt" else ""
        if prompt and prompt not in self.missing_prompts:
            self.missing_prompts.add(prompt)
            log.warning(
                "prompt %s missing on the PBX (flow %s, node %s): install the prompts (see README, Prompts)",
                prompt,
                session.machine.flow.name,
                record.data.get("node"),
            )

    async def _action(self, fields: dict[str, str]) -> None:
        try:
            await self.client.send_action(fields, check=False)
        except AMIError as exc:
            log.warning("%s not sent: %s", fields.get("Action"), exc)

    async def _agi(self, session: Session, command: str) -> Result | None:
        if session.ended.is_set():
            return None  # the caller is gone: nothing more to send
        if session.answered_at is not None:
            self.turnaround.append(time.perf_counter() - session.answered_at)
            session.answered_at = None
        self._ids += 1
        send = asyncio.ensure_future(
            self.client.send_action(
                {"Action": "AGI", "Channel": session.channel, "Command": command, "CommandID": f"ivr-{self._ids}"},
                timeout=self.command_timeout,
                check=False,
            )
        )
        ended = asyncio.ensure_future(session.ended.wait())
        done, _ = await asyncio.wait({send, ended}, return_when=asyncio.FIRST_COMPLETED)
        if send not in done:
            send.add_done_callback(lambda future: future.cancelled() or future.exception())
            send.cancel()
            return None
        ended.cancel()
        try:
            replies = send.result()
        except AMIError as exc:
            log.warning("AGI %r on %s failed: %s", command, session.channel, exc)
            return None
        if not isinstance(replies, list) or replies[0].get("Response") != "Success":
            if session.ended.is_set():
                return None  # refused because the channel hung up or left AsyncAGI meanwhile: not an error
            return Result(0, "", (replies[0] if isinstance(replies, list) else replies).get("Message", "refused"), time.time())
        execution = next((m for m in replies if m.get("Event") == "AsyncAGIExec"), None)
        if execution is None:
            return None
        session.answered_at = execution.received or time.perf_counter()
        code, value, extra = parse_result(unquote(execution.get("Result", "")))
        return Result(code, value, extra, self.clock() if self.clock else event_time(execution, time.time()))

    async def beat(self) -> None:
        """Tell the dialplan the engine is alive: CALLCENTER_IVR_HEARTBEAT = Asterisk's own clock (from Ping), so clocks never disagree."""
        try:
            pong = await self.client.send_action({"Action": "Ping"})
            stamp = int(float(pong.get("Timestamp", time.time())))
        except (AMIError, ValueError) as exc:
            log.warning("IVR heartbeat not sent: %s", exc)
            return
        await self._action({"Action": "Setvar", "Variable": "CALLCENTER_IVR_HEARTBEAT", "Value": str(stamp)})

    async def heartbeat(self, every: float = 10.0) -> None:
        """Beat as soon as connected, then every `every` seconds while connected, until cancelled."""
        while True:
            await self.client.connected.wait()
            await self.beat()
            await asyncio.sleep(every)

    async def on_resync(self, channels: Iterable[Message]) -> None:
        """After a reconnect, calls left waiting in AsyncAGI with no session are sent to the dialplan's fallback."""
        for channel in channels:
            name = channel.get("Channel", "")
            if channel.get("Application") == "AGI" and name not in self.sessions:
                log.warning("%s was in the IVR when the connection dropped: sending it to the fallback", name)
                try:
                    await send_to_fallback(self.client, name)
                except AMIError as exc:
                    log.warning("%s not sent to the fallback: %s", name, exc)

    @staticmethod
    def timeline(records: list[Record], ended: float) -> list[tuple[str, float, dict]]:
        """Records as timeline entries for the call store (keyed data is already masked where sensitive)."""
        entries = []
        for record in records:
            data = {k: v for k, v in record.data.items() if k != "attached"}
            entries.append((f"ivr_{record.kind}", float(record.data.get("at", ended)), data))
        return entries

    async def stop(self) -> None:
        """End every session now (shutting down): their calls continue in the dialplan's fallback."""
        await self._tasks.cancel()

    async def drain(self) -> None:
        """Wait for every session in progress to end."""
        await self._tasks.wait()
