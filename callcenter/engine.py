"""The engine: one AMI connection driving the tracker, the IVR, the ACD and the panel's live board.

Everything here runs on one asyncio loop and is the only code that changes
live state. The panel (other threads, or other processes through Redis)
reaches it only by `submit`ting checked requests; the engine answers and
pushes updates through the notifier.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select

from acd.app_queue import AgentRegistry, AppQueueACD
from acd.machine import ACD, StateChange
from acd.model import QueueSettings
from acd.native import NativeACD
from callcenter.monitor import Monitor
from cti_panel import i18n
from cti_panel.controls import Controls, Directory, Request
from cti_panel.customers import HttpLookup, Lookup, TableLookup, last_calls
from cti_panel.desk import AppQueueDesk, NativeDesk
from cti_panel.live import LiveBoard, LiveCall, Note
from cti_panel.notifier import Notifier
from ivr.engine import IVREngine
from ivr.flow import Flow
from kernel import config
from kernel.db import CallStore
from kernel.exceptions import AMIError, CallCenterError, Refused
from kernel.models import User
from kernel.records import DomainEvent
from kernel.who import Who
from pbx.agi import guard, send_to_fallback
from pbx.client import AMIClient, ClientOptions, Snapshot
from pbx.codec import Message
from pbx.tasks import Background
from pbx.tracker import CallTracker, event_time
from recordings.library import Library
from recordings.recorder import Recorder
from recordings.vault import open_vault
from reports.queue_log import AgentChange
from reports.store import save_agent_changes

log = logging.getLogger(__name__)
REQUESTS_CHANNEL = "callcenter:requests"


def directory(settings: config.Settings, store: CallStore) -> Directory:
    """What requests are checked against: configured queues, reasons and dispositions; agents from the users table."""
    configured = {a.name: (a.interface, None, tuple(a.queues)) for a in settings.acd.agents}

    def agents() -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
        with store.sessions() as s:
            rows = s.execute(
                select(User.agent, User.interface, User.extension, User.queues).where(User.agent.is_not(None), User.disabled.is_(False))
            )
            return configured | {
                agent: (interface or configured.get(agent, ("", None, ()))[0], extension, tuple(queues or ()))
                for agent, interface, extension, queues in rows
            }

    p = settings.panel
    return Directory(
        tuple(settings.acd.queues),
        tuple(settings.acd.pause_reasons),
        tuple(p.dispositions),
        agents,
        p.dial_context,
        p.transfer_context,
        p.queue_context,
        p.dial_ring_s,
        transfer_ring_s=p.transfer_ring_s,
        timezone=p.timezone,
    )


class Engine:
    """The call center's engine on one AMI connection."""

    def __init__(
        self,
        settings: config.Settings,
        store: CallStore,
        flows: list[Flow],
        notifier: Notifier,
        *,
        options: ClientOptions | None = None,
        out: TextIO | None = sys.stdout,
        as_json: bool = False,
        clock: Callable[[], float] = time.time,
        pace: float = 1.0,
    ) -> None:
        self.settings, self.store, self.notifier, self.clock = settings, store, notifier, clock
        self._tasks = Background("engine task")
        self.board = LiveBoard(
            {**{q: s.service_level_s for q, s in settings.acd.queues.items()}, **settings.panel.service_level_s},
            settings.panel.timezone,
            pace,
        )
        self.monitor = Monitor(
            CallTracker(self._phones),
            store,
            out,
            as_json=as_json,
            listeners=[self._on_call_events],
            queue_log=settings.ami.queue_log,
            cdr=settings.ami.cdr,
        )
        self.registry = AgentRegistry()
        self.client = AMIClient(
            options or ClientOptions.of(settings.ami), self._on_event, self._on_resync, clock=clock, on_session=self.monitor.on_session
        )
        self.native = self._native() if settings.acd.mode == "native" else None
        self.ivr = IVREngine(
            self.client,
            flows,
            on_records=self._ivr_records,
            on_handoff=self._handoff,
            on_sensitive=lambda linkedid, on: self.monitor.on_acd("sensitive", linkedid, clock(), on=on),
        )
        skills = {a.name: a.skills for a in settings.acd.agents}
        queue_skills = {name: q.skill for name, q in settings.acd.queues.items() if q.skill}
        wrapups = {name: (q.wrapup_s, q.wrapup_until_saved) for name, q in settings.acd.queues.items()}
        self.desk: NativeDesk | AppQueueDesk = (
            NativeDesk(self.native, skills)
            if self.native
            else AppQueueDesk(AppQueueACD(self.client, queue_skills, settings.panel.queue_context), skills, wrapups, self.registry.members)
        )
        desk = self.desk
        if self.native is not None:
            for agent in settings.acd.agents:
                self.native.login(agent.name, agent.interface, agent.queues, agent.skills)
        self.directory = directory(settings, store)
        self.recorder: Recorder | None = None
        self.library: Library | None = None
        self.library = recordings_library(settings, store)
        if self.library is not None:
            self.recorder = Recorder(
                settings.recordings,
                Path(settings.paths.recordings),
                self.library,
                self._send,
                self._tasks.spawn,
                clock,
                on_change=lambda linkedid, state: self.notifier.send(self.board.recording(linkedid, state)),
            )
        else:
            self.board.recording_default = "unavailable"
        self.controls = Controls(
            self._send,
            self.board,
            desk,
            self.directory,
            self._wrapup,
            lambda linkedid, held: self.monitor.on_acd("hold" if held else "unhold", linkedid, self.clock()),
            self._record if self.recorder else None,
            self.client.expect,
        )
        table = TableLookup(store.sessions)
        self.lookup: Lookup = HttpLookup(settings.panel.crm_url, settings.panel.crm_timeout_s, table) if settings.panel.crm_url else table
        self.loop: asyncio.AbstractEventLoop | None = None

    # wiring ----------------------------------------------------------------------
    def _phones(self) -> dict[str, str]:
        """Where each logged-in agent's phone is (interface -> agent): app_queue's members and the native ACD's agents."""
        phones = {m.interface: m.name for m in self.registry.members.values() if m.interface}
        if self.native is not None:
            phones |= {a.interface: a.name for a in self.native.acd.agents.values() if a.interface}
        return phones

    def _native(self) -> NativeACD:
        acd = self.settings.acd
        queues = {name: QueueSettings(name, **q.model_dump(exclude={"skill"})) for name, q in acd.queues.items()}
        native = NativeACD(
            self.client,
            ACD(queues, pause_reasons=tuple(acd.pause_reasons)),
            on_commands=self._on_acd_commands,
            clock=self.clock,
            on_call=self.monitor.on_acd,
        )
        return native

    def _ivr_records(self, linkedid: str, records: list[Any]) -> None:
        """The IVR's steps go on the call's timeline (a caller's recording opt-out reaches the recorder as its VarSet)."""
        self.store.save_timeline(linkedid, IVREngine.timeline(records, self.clock()))

    def _handoff(self, channel: str, linkedid: str, done: dict[str, Any]) -> None:
        """The IVR's caller for the native ACD, or a call back the caller asked for (in whichever ACD runs the queue)."""
        if done["outcome"] == "callback":
            self._tasks.spawn(self._call_back(channel, linkedid, done))
            return
        assert self.native is not None
        self.native.handoff(
            channel,
            linkedid,
            done["queue"],
            done["priority"],
            {skill: 1 for skill in done.get("skills", [])},
            done.get("attached"),
            done.get("language", ""),
        )

    async def _call_back(self, channel: str, linkedid: str, done: dict[str, Any]) -> None:
        number, queue = done.get("number") or "", done["queue"]
        if not number.isdigit():
            log.error("call back in %s not queued: the caller's number %r cannot be dialled", queue, number)
            return
        try:
            await self.desk.call_back(channel, linkedid, queue, number, done.get("attached") or {})
        except CallCenterError as exc:
            log.error("call back to %s in %s not queued: %s", number, queue, exc)
            return
        log.info("call back to %s queued in %s", number, queue)

    def _on_acd_commands(self, commands: list[Any]) -> None:
        self._agent_states([c for c in commands if isinstance(c, StateChange)])

    def _agent_states(self, changes: list[StateChange]) -> None:
        if not changes:
            return
        save_agent_changes(self.store, [AgentChange(int(c.at), c.agent, None, c.state.value, c.reason) for c in changes])
        for change in changes:
            self.desk.on_state(change)
            self.notifier.send(self.board.on_agent(change))

    async def _record(self, call: LiveCall, who: Who, op: str) -> None:
        assert self.recorder is not None
        await self.recorder.request(call.linkedid, who.agent or "", op, call.channel, call.queue)

    def _on_call_events(self, events: list[DomainEvent]) -> None:
        for event in events:
            if self.recorder is not None:
                self.recorder.on_call(event)
            notes = self.board.on_call(event)
            reached = event.data.get("agent") if event.kind in ("answered", "transferred") and not event.data.get("queue") else None
            if reached:
                self._tasks.spawn(self.desk.direct_call(reached, event.linkedid))
            elif event.kind == "answered" and event.data.get("agent") and event.data.get("queue"):
                self._tasks.spawn(self.desk.answered(event.data["agent"], event.linkedid, event.data["queue"]))
            for ended in (n.payload for n in notes if n.event == "ended"):
                self._tasks.spawn(self.desk.after_call(ended["agent"], ended["linkedid"], ended["queue"], event.t))
            pops = [n for n in notes if n.event == "pop"]
            self.notifier.send([n for n in notes if n.event != "pop"])
            for pop in pops:
                self._tasks.spawn(self._pop(pop))

    async def _pop(self, note: Note) -> None:
        """The screen pop, with the customer record and the number's last calls (looked up off the loop: a CRM may be slow)."""
        number = note.payload.get("number") or ""
        customer, history = await asyncio.to_thread(lambda: (self.lookup.find(number), last_calls(self.store.sessions, number)))
        self.notifier.send([Note(note.room, "pop", {**note.payload, "customer": customer, "last_calls": history})])

    def _on_event(self, message: Message, arrival: float) -> None:
        self.monitor.on_event(message, arrival)
        if self.recorder is not None:
            self.recorder.on_ami(message)
        self._agent_states(self.registry.feed(message, event_time(message, arrival)))
        self.ivr.on_event(message, arrival)
        if self.native is not None:
            self.native.on_event(message, arrival)

    async def _on_resync(self, snapshot: Snapshot) -> None:
        await self.monitor.on_resync(snapshot)
        self._agent_states(self.registry.resync(snapshot.queue_members, snapshot.at))
        await self.ivr.on_resync(snapshot.channels)
        if self.native is not None:
            self.native.on_resync(snapshot.channels)

    async def _send(self, action: dict[str, str], **options: Any) -> Any:
        return await self.client.send_action(action, **options)

    def _wrapup(self, linkedid: str, agent: str, disposition: str, notes: str) -> bool:
        """The agent's disposition of a call they are on, worked today, or whose stored legs name them."""
        current = self.board.call_of(agent)
        live = self.board.has_worked(agent, linkedid) or (current is not None and current.linkedid == linkedid)
        saved = self.store.save_wrapup(linkedid, agent, disposition, notes, self.clock(), seen_live=live)
        if saved:
            self.board.wrapped_up(agent, linkedid)
            if live and linkedid in (self.board.last_part.get(agent), current.linkedid if current else None):
                self._tasks.spawn(self.desk.wrapup_saved(agent, linkedid, self.clock()))
        return saved

    # requests from the panel -----------------------------------------------------------
    def submit(self, payload: dict[str, Any]) -> None:
        """From any thread: a checked request for the engine's loop."""
        if self.loop is None:
            raise RuntimeError("the engine is not running")
        self.loop.call_soon_threadsafe(self.on_request, payload)

    def on_request(self, payload: dict[str, Any]) -> None:
        """On the loop: a request the panel checked (`name`, `values`, `who`), answered on its socket."""
        self._tasks.spawn(self._answer(payload))

    async def _answer(self, payload: dict[str, Any]) -> None:
        who = Who(**{**payload["who"], "queues": tuple(payload["who"].get("queues") or ())})
        sid = payload["sid"]
        if payload["name"] == "snapshot":
            view = self.board.snapshot(list(who.queues) or None) if who.supervises else self.board.agent_view(who.agent or "")
            self.notifier.to_socket(sid, "snapshot", view)
            return
        try:
            result = await self.controls.run(Request(who, payload["name"], payload["values"]))
            said = result.pop("say", None)
            reply = {"id": payload.get("id", 0), "ok": True, **result}
            if said is not None:
                reply["message"] = i18n.message(who.lang, said[0], said[1], said[0])
        except Refused as exc:
            reply = {"id": payload.get("id", 0), "ok": False, "error": i18n.message(who.lang, exc.key, exc.params, str(exc))}
        except AMIError as exc:
            log.warning("%s by %s failed: %s", payload["name"], who.login, exc)
            reply = {
                "id": payload.get("id", 0),
                "ok": False,
                "error": i18n.message(who.lang, "pbx_refused", {"why": str(exc)}, f"the PBX refused: {exc}"),
            }
        self.notifier.to_socket(sid, "reply", reply)

    async def listen_redis(self, url: str) -> None:
        """Requests from panel workers in other processes, over Redis pub/sub."""
        import redis.asyncio as redis

        connection = redis.from_url(url)
        pubsub = connection.pubsub()
        await pubsub.subscribe(REQUESTS_CHANNEL)
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    self.on_request(json.loads(message["data"]))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("unreadable panel request on Redis: %s", exc)
        finally:
            await pubsub.aclose()
            await connection.aclose()

    # running -------------------------------------------------------------------------
    async def run(self, heartbeat_every: float = 10.0, tick_every: float = 1.0, once: bool = False, purge_every: float = 3600.0) -> None:
        """Connect and serve until cancelled (or, with `once`, until the connection drops)."""
        self.loop = asyncio.get_running_loop()
        background = [asyncio.create_task(self.ivr.heartbeat(heartbeat_every)), asyncio.create_task(self._ticking(tick_every))]
        if self.library is not None:
            background.append(asyncio.create_task(self._purging(purge_every)))
        if self.settings.panel.message_queue:
            background.append(asyncio.create_task(self.listen_redis(self.settings.panel.message_queue)))
        guard_s = 3 * heartbeat_every
        if self.native is not None:
            self.native.guard_s = guard_s
        background.append(asyncio.create_task(self._guarding(heartbeat_every, guard_s)))
        client = asyncio.create_task(self.client.run(once=once))
        try:
            await asyncio.shield(client)
        except asyncio.CancelledError:
            await self._release_callers()
            raise
        finally:
            client.cancel()
            await asyncio.gather(client, return_exceptions=True)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.ivr.stop()
            if self.native is not None:
                await self.native.stop()
            await self._tasks.cancel()
            await self.client.close()

    def _held(self) -> list[str]:
        """Callers waiting in AsyncAGI for the engine: in the IVR, or queued in the native ACD (not ringing, talking or gone)."""
        held = list(self.ivr.sessions)
        if self.native is not None:
            held += self.native.waiting()
        return held

    async def _guarding(self, every: float, seconds: float) -> None:
        """Push back the dialplan's guard on every caller held in AsyncAGI, every `every` seconds, to `seconds`: if the engine
        dies they reach the fallback then (contrib/asterisk/extensions.conf, T)."""
        while True:
            await self.client.connected.wait()
            for channel in self._held():
                try:
                    await self.client.send_action(guard(channel, seconds), check=False, timeout=5.0)
                except AMIError as exc:
                    log.warning("guard of %s not pushed back: %s", channel, exc)
            await asyncio.sleep(every)

    async def _release_callers(self) -> None:
        """Stopping: every caller held in AsyncAGI goes to the dialplan's fallback now, not when the guard fires."""
        held = self._held() if self.client.connected.is_set() else []
        if held:
            log.warning("stopping: %d caller(s) held in AsyncAGI go to the fallback", len(held))
        for outcome in await asyncio.gather(*(send_to_fallback(self.client, c) for c in held), return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning("a caller was not sent to the fallback: %s", outcome)

    async def _purging(self, every: float) -> None:
        """Retention, scheduled: what `callcenter recordings purge` does, every `every` seconds."""
        assert self.library is not None
        while True:
            try:
                deleted, _ = await asyncio.to_thread(self.library.purge, datetime.now(UTC))
                if deleted:
                    log.info("retention deleted %d recording(s)", len(deleted))
            except Exception:  # noqa: BLE001 - a failed purge (storage down) is logged and tried again next time
                log.exception("recordings purge failed")
            await asyncio.sleep(every)

    async def _ticking(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            if self.client.connected.is_set():
                if self.native is not None:
                    self.native.tick()
                    self.notifier.send(self.board.callbacks(self.native.acd.callbacks_waiting()))
                self.notifier.send(self.board.tick(self.clock()))
                await self.desk.tick(self.clock())


def recordings_library(settings: config.Settings, store: CallStore) -> Library | None:
    """The recordings index and vault (under data_dir/vault unless in S3), or None with recordings off."""
    if not settings.recordings.enabled:
        return None
    return Library(store.sessions, open_vault(settings.recordings, Path(settings.paths.data_dir) / "vault"), settings.recordings)


class RedisBus:
    """Panel side of the Redis path: requests published for the engine's `listen_redis`."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)

    def submit(self, payload: dict[str, Any]) -> None:
        """Publish one request."""
        self.redis.publish(REQUESTS_CHANNEL, json.dumps(payload))
