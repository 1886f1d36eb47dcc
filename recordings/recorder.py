"""The engine's side of recordings: MixMonitor when the agent answers, pauses, and the file indexed when the call ends.

Fed on the engine's loop: `on_call` takes the tracker's domain events,
`on_ami` the raw AMI events (a caller's opt-out set by the IVR, MixMonitorMute
sent by anyone). The finished file is read from the spool folder Asterisk
writes to, checked (a WAV, its length), hashed, stored in the vault
(encrypted when configured) and removed from the spool.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel.config import RecordingSettings
from kernel.exceptions import AMIError, InputError, Refused
from kernel.records import DomainEvent
from recordings.library import Library
from recordings.policy import file_key, should_record
from recordings.wav import duration

log = logging.getLogger(__name__)
OPT_OUT_VARIABLE = "RECORDING_OPT_OUT"


@dataclass
class Active:
    """A recording in progress."""

    linkedid: str
    channel: str
    key: str
    started: float
    queue: str | None
    agent: str | None
    number: str | None
    paused: list[list[float]] = field(default_factory=list)
    held_s: float = 0.0  # the panel's hold so far: MUTEAUDIO drops the channel's frames both ways, so the file holds none of it
    held_since: float | None = None

    def offset(self, t: float) -> float:
        """Where time `t` of the call falls in the file (the held spans are not in it)."""
        held = self.held_s + (t - self.held_since if self.held_since is not None else 0.0)
        return round(t - self.started - held, 3)


class Recorder:
    """Starts, pauses and finishes recordings as calls go."""

    def __init__(
        self,
        settings: RecordingSettings,
        spool: Path,
        library: Library,
        send: Callable[[dict[str, str]], Awaitable[Any]],
        spawn: Callable[[Coroutine[Any, Any, Any]], object],
        clock: Callable[[], float],
        wait_for_file_s: float = 5.0,
        on_change: Callable[[str, str], None] = lambda linkedid, state: None,
    ) -> None:
        self.settings, self.spool, self.library, self.send, self.spawn, self.clock = settings, spool.resolve(), library, send, spawn, clock
        self.on_change = on_change  # a call's recording is now on, paused, off, or unavailable (the agent's buttons follow)
        self.wait_for_file_s = wait_for_file_s
        self.active: dict[str, Active] = {}
        self.opted_out: set[str] = set()
        self.numbers: dict[str, str | None] = {}
        self.indexing: set[str] = set()  # calls ended whose file is not yet in the index

    def on_ami(self, m: Mapping[str, str]) -> None:
        """The IVR's opt-out variable, and MixMonitorMute events (pauses not sent by us, e.g. an IVR's card capture mid-call)."""
        name, linkedid = m.get("Event"), m.get("Linkedid", "")
        if name == "VarSet" and m.get("Variable") == OPT_OUT_VARIABLE and m.get("Value") in ("1", "yes", "true"):
            self.opted_out.add(linkedid)
        elif name == "MixMonitorMute" and linkedid in self.active:
            self._span(self.active[linkedid], m.get("State") == "1")

    def on_call(self, e: DomainEvent) -> None:
        """Start at the answer (by policy and consent), finish at the end."""
        if e.kind == "call_started":
            self.numbers[e.linkedid] = e.data.get("caller_number")
        elif e.kind == "answered" and e.linkedid not in self.active and e.data.get("channel"):
            record, why = should_record(self.settings, e.data.get("queue"), e.linkedid, e.linkedid in self.opted_out)
            self.on_change(e.linkedid, "off" if record or why in ("on_demand", "not_sampled") else "unavailable")
            if record:
                self.spawn(self.start(e.linkedid, e.data["channel"], e.data.get("queue"), e.data.get("agent")))
            elif why == "opted_out":
                self.library.add(
                    linkedid=e.linkedid,
                    queue=e.data.get("queue"),
                    agent=e.data.get("agent"),
                    caller_number=self.numbers.get(e.linkedid),
                    status="opted_out",
                    started=e.t,
                    note="the caller asked not to be recorded",
                )
        elif e.kind in ("hold", "unhold") and e.data.get("channel") == "panel" and e.linkedid in self.active:  # not a phone's MOH hold
            active = self.active[e.linkedid]
            if e.kind == "hold" and active.held_since is None:
                active.held_since = e.t
            elif e.kind == "unhold" and active.held_since is not None:
                active.held_s, active.held_since = active.held_s + e.t - active.held_since, None
        elif e.kind == "call_ended":
            self.opted_out.discard(e.linkedid)
            self.numbers.pop(e.linkedid, None)
            active = self.active.pop(e.linkedid, None)
            if active is not None:
                self.indexing.add(e.linkedid)
                self.spawn(self.finish(active, e.t))

    async def start(self, linkedid: str, channel: str, queue: str | None, agent: str | None) -> str | None:
        """MixMonitor on the caller's channel (both sides of the call), into the spool under date/queue/linkedid; why not, if refused."""
        now = self.clock()
        key = file_key(now, queue, linkedid)
        active = self.active[linkedid] = Active(linkedid, channel, key, now, queue, agent, self.numbers.get(linkedid))
        try:
            await self.send({"Action": "MixMonitor", "Channel": channel, "File": str(self.spool / key), "Options": "b"})
        except AMIError as exc:
            self.active.pop(linkedid, None)
            log.error("recording of %s not started: %s", linkedid, exc)
            self.library.add(
                linkedid=linkedid,
                queue=queue,
                agent=agent,
                caller_number=active.number,
                status="failed",
                started=now,
                note=f"Asterisk did not start MixMonitor: {exc}",
            )
            self.on_change(linkedid, "off")
            return str(exc)
        self.on_change(linkedid, "on")
        return None

    async def request(self, linkedid: str | None, agent: str, op: str, channel: str | None = None, queue: str | None = None) -> None:
        """The agent's buttons: start (on-demand queues), pause, resume."""
        if linkedid is None:
            raise Refused("no call in progress", "no_call")
        if op == "start":
            if linkedid in self.active:
                raise Refused("this call is already being recorded", "already_recording")
            if linkedid in self.opted_out or not self.settings.enabled:
                if linkedid in self.opted_out:
                    raise Refused("this caller asked not to be recorded", "opted_out")
                raise Refused("recordings are off", "recordings_off")
            refused = await self.start(linkedid, channel or "", queue, agent)
            if refused:
                raise Refused(f"the recording did not start: {refused}", "recording_refused", why=str(refused))
            return
        active = self.active.get(linkedid)
        if active is None:
            raise Refused("this call is not being recorded", "not_recording")
        await self.send(
            {"Action": "MixMonitorMute", "Channel": active.channel, "Direction": "both", "State": "1" if op == "pause" else "0"}
        )
        self._span(active, op == "pause")

    def _span(self, active: Active, on: bool) -> None:
        self.on_change(active.linkedid, "paused" if on else "on")
        at = active.offset(self.clock())
        if on and not (active.paused and len(active.paused[-1]) == 1):
            active.paused.append([at])
        elif not on and active.paused and len(active.paused[-1]) == 1:
            active.paused[-1].append(at)

    @property
    def idle(self) -> bool:
        """Nothing being recorded and nothing left to index: every recording so far is in the index."""
        return not self.active and not self.indexing

    async def finish(self, active: Active, ended: float) -> None:
        """Index the finished file: stored (hashed, in the vault), or missing, or corrupt, each said in the index and the log."""
        self.indexing.add(active.linkedid)
        try:
            await self._index(active, ended)
        finally:
            self.indexing.discard(active.linkedid)

    async def _index(self, active: Active, ended: float) -> None:
        if active.paused and len(active.paused[-1]) == 1:
            active.paused[-1].append(active.offset(ended))
        path = self.spool / active.key
        fields = dict(
            linkedid=active.linkedid,
            queue=active.queue,
            agent=active.agent,
            caller_number=active.number,
            started=active.started,
            ended=ended,
            paused=active.paused,
        )
        for _ in range(int(self.wait_for_file_s / 0.1)):
            if path.exists():
                break
            await asyncio.sleep(0.1)
        if not path.exists():
            log.error("recording of %s: %s was not written", active.linkedid, path)
            self.library.add(status="missing", note=f"no file at {path}", **fields)
            return
        data = await asyncio.to_thread(path.read_bytes)
        try:
            seconds = duration(data, str(path))
        except InputError as exc:
            log.error("recording of %s: %s", active.linkedid, exc)
            self.library.add(status="corrupt", key=None, size=len(data), sha256=hashlib.sha256(data).hexdigest(), note=str(exc), **fields)
            return
        if seconds == 0:
            log.error("recording of %s: %s holds no audio", active.linkedid, path)
            self.library.add(
                status="empty", size=len(data), note="Asterisk wrote a file with no audio (no sound reached the call's channel)", **fields
            )
            path.unlink(missing_ok=True)
            return
        await asyncio.to_thread(self.library.vault.put, active.key, data)
        self.library.add(
            status="stored", key=active.key, duration_s=round(seconds, 3), size=len(data), sha256=hashlib.sha256(data).hexdigest(), **fields
        )
        path.unlink(missing_ok=True)
