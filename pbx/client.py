"""asyncio AMI client: login, actions, keepalive, reconnect and resync.

Built on panoramisk: its `AMIProtocol` is the transport protocol and its
`Action` correlates responses and EventLists with their ActionID. Four pieces
of panoramisk are replaced, each for a reason seen against real Asterisk:

- parsing (`data_received`) goes through our sans-IO `pbx.codec.AMICodec`
  (panoramisk drops non-UTF-8 bytes, buffers an endless frame without limit,
  and truncates ``Response: Follows`` output; see the codec's docstring and
  `benchmarks/ami_throughput.py` for the speed figures);
- writing (`send`) goes through `pbx.codec.encode`, which refuses CR/LF in a
  header (panoramisk writes values as given: AMI header injection);
- `Manager`'s connection lifecycle is replaced by `AMIClient.run`: panoramisk
  reconnects at a fixed delay without backoff, retries a refused login forever
  without reporting it, sends Ping without noticing a peer that never answers,
  and has no hook to rebuild state after a reconnect;
- an ``AGI`` action completes on the ``AsyncAGIExec`` event that Asterisk >= 12
  sends (panoramisk waits for the pre-12 ``SubEvent: Exec`` and never resolves);
- QueueAdd's 'Added interface to queue' is not taken for an AGI
  acknowledgement (panoramisk left the action waiting forever).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TextIO

from panoramisk import actions as pk_actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message as PkMessage

from kernel.config import AMISettings
from kernel.exceptions import ActionError, ActionTimeout, AMIConnectionError, AuthenticationError, ConfigError
from pbx.codec import AMICodec, Banner, FrameError, Message, encode

log = logging.getLogger(__name__)

EventHandler = Callable[[Message, float], None]
# Asterisk's answer to every action, Login too, from the moment a stop or restart is asked for until it is gone.
SHUTTING_DOWN = "Asterisk is shutting down"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Live state Asterisk reports right after a (re)connect."""

    channels: list[Message]
    queue_params: list[Message]
    queue_members: list[Message]
    queue_entries: list[Message]
    at: float


_DEFAULTS = AMISettings.model_fields


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Connection settings the client needs: the [ami] config section's, its defaults, the secret in clear."""

    host: str
    port: int
    username: str
    secret: str = field(repr=False)
    ping_interval: float = _DEFAULTS["ping_interval"].default
    ping_timeout: float = _DEFAULTS["ping_timeout"].default
    connect_timeout: float = _DEFAULTS["connect_timeout"].default
    reconnect_min: float = _DEFAULTS["reconnect_min"].default
    reconnect_max: float = _DEFAULTS["reconnect_max"].default
    max_frame_bytes: int = _DEFAULTS["max_frame_bytes"].default
    action_timeout: float = 10.0

    @classmethod
    def of(cls, ami: AMISettings) -> ClientOptions:
        """The options of an [ami] section (its secret is required)."""
        if ami.secret is None:
            raise ConfigError("[ami] secret is not set (CALLCENTER_AMI_SECRET)")
        connection = {f.name for f in fields(cls)} - {"secret"}  # not the files the engine reads beside AMI (queue_log, cdr)
        return cls(**ami.model_dump(include=connection), secret=ami.secret.get_secret_value())


class _Action(pk_actions.Action):
    """panoramisk's Action, knowing which answers are only the first of several.

    panoramisk takes any 'Added ... to queue' message for AsyncAGI's
    acknowledgement, so QueueAdd ('Added interface to queue', as in
    ../shared/ami-traces/member_management) never completed.
    """

    @property
    def multi(self) -> bool:
        if self.as_list is not None:
            return bool(self.as_list)
        first = self.responses[0]
        message = (first.get("Message") or "").lower()
        name = str(self.get("Action", "")).lower()
        return (
            first.get("EventList") == "start"
            or "will follow" in message
            or (name == "agi" and message == "added agi command to queue")
            or (name == "originate" and message.endswith("successfully queued") and str(self.get("Async", "")).lower() != "false")
        )


class _Protocol(AMIProtocol):
    """panoramisk's protocol with our codec for reading and our encoder for writing."""

    client: AMIClient

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.opened = time.monotonic()
        self.held: list[tuple[Message, float]] | None = None
        self.codec = AMICodec(self.client.options.max_frame_bytes)
        self.banner: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def send(self, data: Mapping[str, Any], as_list: bool | None = None, hold_after: bool = False) -> asyncio.Future[Any]:
        action = _Action(dict(data), as_list=as_list)
        action.hold_after = hold_after
        payload = encode(dict(action.items()))
        self.responses[action.id] = action
        if "CommandID" in data:
            self.responses[data["CommandID"]] = action
        self.transport.write(payload)
        self._record("out", payload)
        return action.future

    def _record(self, direction: str, data: bytes) -> None:
        if self.client.record is not None:
            line = {"t": round(time.monotonic() - self.opened, 6), "dir": direction, "data": data.decode("utf-8", "replace")}
            self.client.record.write(json.dumps(line) + "\n")

    def data_received(self, data: bytes) -> None:
        arrival = self.client.clock()
        received = time.perf_counter()
        self._record("in", data)
        for item in self.codec.feed(data):
            if isinstance(item, Message):
                item.received = received
                self._dispatch(item, arrival)
            elif isinstance(item, FrameError):
                self.client.frame_errors += 1
                log.warning("AMI frame skipped at byte %d: %s (%r)", item.offset, item.reason, item.excerpt[:60])
            elif isinstance(item, Banner) and not self.banner.done():
                self.banner.set_result(item.version)

    def _dispatch(self, message: Message, arrival: float) -> None:
        key = message.get("ActionID") or message.get("CommandId") or message.get("CommandID")
        action = self.responses.get(key) if key else None
        if action is None:
            if "Event" in message and self.held is not None:
                self.held.append((message, arrival))
            elif "Event" in message:
                self.client._deliver(message, arrival)
            else:
                log.debug("response to an action no longer awaited: %r", message)
            return
        wrapped = PkMessage(dict(message))
        wrapped.ours = message
        done = action.add_message(wrapped)
        if not done and message.get("Event") == "AsyncAGIExec" and not action.future.done():
            action.future.set_result(action.responses)
            done = True
        if done:
            for ref in (action.id, action.get("CommandID")):
                self.responses.pop(ref, None)
            if action.hold_after and self.held is None:
                self.held = []
            if action.get("Action") == "Login" and message.get("Response") == "Success" and self.client.on_session is not None:
                # told here, before the events that follow in the same read, which may already end calls of the gap
                self.client.on_session(self.client.sessions + 1)
        if message.get("Event") and message.get("Event") in ("OriginateResponse", "AsyncAGIExec"):
            self.client._deliver(message, arrival)

    def release(self) -> None:
        """Deliver the events held while a snapshot was being applied, in order, and stop holding."""
        held, self.held = self.held or [], None
        for message, arrival in held:
            self.client._deliver(message, arrival)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = AMIConnectionError(f"connection to {self.client.address} lost" + (f": {exc}" if exc else ""))
        for action in list(self.responses.values()):
            if not action.future.done():
                action.future.set_exception(error)
        self.responses.clear()
        if not self.lost.done():
            self.lost.set_result(None)


class AMIClient:
    """Keeps one logged-in AMI session alive and hands every event to `on_event`.

    `on_resync` gets a `Snapshot` after each login, so live state is rebuilt
    from what Asterisk says rather than guessed across a gap; `on_session` is
    told each login's number first (events may come before the snapshot). With `record`,
    every read and write is kept as a trace (the format of ../shared/ami-traces).
    """

    def __init__(
        self,
        options: ClientOptions,
        on_event: EventHandler,
        on_resync: Callable[[Snapshot], Awaitable[None] | None] | None = None,
        clock: Callable[[], float] = time.time,
        record: TextIO | None = None,
        on_session: Callable[[int], None] | None = None,
    ) -> None:
        self.options = options
        self.on_session = on_session
        self.record = record
        self.on_event = on_event
        self.on_resync = on_resync
        self.clock = clock
        self.connected = asyncio.Event()
        self.sessions = 0
        self.frame_errors = 0
        self.asterisk_version: str | None = None
        self._protocol: _Protocol | None = None
        self._closing = False
        self._expected: list[tuple[Callable[[Message], bool], asyncio.Future[Message]]] = []

    @property
    def address(self) -> str:
        """host:port of the manager interface."""
        return f"{self.options.host}:{self.options.port}"

    def expect(self, match: Callable[[Message], bool]) -> asyncio.Future[Message]:
        """The next event `match` accepts (ask before sending the action that causes it, so it cannot be missed; cancel the
        future when no longer waiting)."""
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._expected.append((match, future))
        return future

    def _deliver(self, message: Message, arrival: float) -> None:
        if self._expected:
            for match, future in self._expected:
                if not future.done() and match(message):
                    future.set_result(message)
            self._expected = [(match, future) for match, future in self._expected if not future.done()]
        if message.get("Event") == "Shutdown":
            log.warning("Asterisk is shutting down (%s); will reconnect", message.get("Shutdown", "?"))
        try:
            self.on_event(message, arrival)
        except Exception:
            log.exception("event handler failed on %s; event skipped", message.get("Event"))

    async def run(self, once: bool = False) -> None:
        """Connect, log in, resync and stay connected until `close()`; reconnect with backoff.

        A refused login raises `AuthenticationError` (retrying cannot fix it).
        With `once`, failing to set up the first session raises instead of retrying.
        """
        attempt = 0
        while not self._closing:
            try:
                protocol = await self._connect()
            except AMIConnectionError as exc:
                if once and self.sessions == 0:
                    raise
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("%s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            try:
                await self._login(protocol)
                attempt = 0
                self.sessions += 1
                self.connected.set()
                log.info("logged in to Asterisk %s at %s (session %d)", self.asterisk_version, self.address, self.sessions)
                await self._resync()
                await self._keepalive(protocol)
            except (AMIConnectionError, ActionTimeout) as exc:
                if once and self.sessions == 0:
                    raise
                log.warning("AMI session ended: %s", exc)
            finally:
                self.connected.clear()
                if not protocol.closed:
                    protocol.transport.abort()
                self._protocol = None
            if not self._closing:
                delay = self._backoff(attempt)
                attempt += 1
                log.info("reconnecting to %s in %.1f s", self.address, delay)
                await asyncio.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        base = min(self.options.reconnect_max, self.options.reconnect_min * (2 ** min(attempt, 16)))
        return base * random.uniform(0.5, 1.0)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()

        def factory() -> _Protocol:
            protocol = _Protocol()
            protocol.client = self
            return protocol

        try:
            async with asyncio.timeout(self.options.connect_timeout):
                _, protocol = await loop.create_connection(factory, self.options.host, self.options.port)
        except (OSError, TimeoutError) as exc:
            raise AMIConnectionError(f"cannot connect to AMI at {self.address}: {exc or 'timed out'}") from exc
        return protocol

    async def _login(self, protocol: _Protocol) -> None:
        try:
            async with asyncio.timeout(self.options.connect_timeout):
                self.asterisk_version = await asyncio.shield(protocol.banner)
        except TimeoutError as exc:
            raise AMIConnectionError(f"{self.address} sent no AMI banner: is it an Asterisk manager port?") from exc
        self._protocol = protocol
        reply = await self.send_action(
            {"Action": "Login", "Username": self.options.username, "Secret": self.options.secret, "Events": "on"}, check=False
        )
        if reply.get("Response") != "Success" and reply.get("Message") == SHUTTING_DOWN:
            raise AMIConnectionError(f"Asterisk at {self.address} is shutting down and refused the login; will retry")
        if reply.get("Response") != "Success":
            self._closing = True
            raise AuthenticationError(
                f"Asterisk at {self.address} refused login for user {self.options.username!r}: {reply.get('Message', 'no reason given')}"
            )

    async def _resync(self) -> None:
        # Events that arrive after the channel list is complete are newer than
        # the snapshot: they are held and delivered only once it is applied,
        # or the snapshot would undo them (a call seen starting would vanish).
        protocol = self._protocol
        assert protocol is not None
        started = self.clock()
        try:
            try:
                channels = await self.send_action({"Action": "CoreShowChannels"}, hold_after=True)
            except ActionError as exc:  # "Asterisk is shutting down": a restart began right after the login
                raise AMIConnectionError(f"Asterisk at {self.address} refused the resync: {exc.message}; will reconnect") from exc
            queues = await self.send_action({"Action": "QueueStatus"}, check=False)
            if not isinstance(queues, list):
                log.warning("QueueStatus refused (%s): queue state not resynced", queues.get("Message"))
                queues = []
            snapshot = Snapshot(
                channels=[m for m in channels if m.get("Event") == "CoreShowChannel"],
                queue_params=[m for m in queues if m.get("Event") == "QueueParams"],
                queue_members=[m for m in queues if m.get("Event") == "QueueMember"],
                queue_entries=[m for m in queues if m.get("Event") == "QueueEntry"],
                at=started,
            )
            log.info(
                "resynced: %d channels, %d queues, %d waiting callers",
                len(snapshot.channels),
                len(snapshot.queue_params),
                len(snapshot.queue_entries),
            )
            if self.on_resync is not None:
                result = self.on_resync(snapshot)
                if asyncio.iscoroutine(result):
                    await result
        finally:
            protocol.release()

    async def _keepalive(self, protocol: _Protocol) -> None:
        while not protocol.lost.done():
            done, _ = await asyncio.wait({protocol.lost}, timeout=self.options.ping_interval)
            if done:
                return
            try:
                # Any answer proves the link alive: while shutting down (`core restart now` briefly, `core restart gracefully`
                # for as long as calls last) Asterisk answers every action "Response: Error / Asterisk is shutting down" while
                # its events still come; it closes the socket when it goes.
                await self.send_action({"Action": "Ping"}, timeout=self.options.ping_timeout, check=False)
            except ActionTimeout as exc:
                raise AMIConnectionError(
                    f"no Pong from {self.address} within {self.options.ping_timeout} s; dropping the connection"
                ) from exc

    async def send_action(
        self,
        action: Mapping[str, Any],
        *,
        as_list: bool | None = None,
        timeout: float | None = None,
        check: bool = True,
        hold_after: bool = False,
    ) -> Any:
        """Send an action and wait for its response (a list of messages for an EventList).

        Raises `AMIConnectionError` when not connected, `ActionTimeout` when no
        answer comes in time, `ActionError` on ``Response: Error`` (if `check`).
        """
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise AMIConnectionError(f"not connected to AMI at {self.address}")
        future = protocol.send(action, as_list=as_list, hold_after=hold_after)
        # If the caller stops waiting (timeout, cancel), the answer may still fail later: retrieve it so it is not reported as lost.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        # asyncio.timeout, not wait_for: Python 3.11's wait_for hands back the answer (or its error) when it lands in the same
        # step as a cancel, and the cancel is lost (the engine's stop then hung on a guard loop that kept going).
        try:
            async with asyncio.timeout(timeout or self.options.action_timeout):
                result = await asyncio.shield(future)
        except TimeoutError as exc:
            raise ActionTimeout(
                f"{action.get('Action')}: no response from {self.address} within {timeout or self.options.action_timeout} s"
            ) from exc
        messages: list[Message] = [m.ours for m in (result if isinstance(result, list) else [result])]
        if check and messages and messages[0].get("Response") == "Error":
            raise ActionError(str(action.get("Action")), messages[0].get("Message", ""))
        return messages if isinstance(result, list) else messages[0]

    async def close(self) -> None:
        """Log off and stop reconnecting."""
        self._closing = True
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            try:
                await self.send_action({"Action": "Logoff"}, timeout=1.0, check=False)
            except (AMIConnectionError, ActionTimeout):
                pass
            protocol.transport.close()
