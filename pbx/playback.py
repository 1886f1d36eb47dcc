"""An AMI server on 127.0.0.1 that plays recorded Asterisk traffic to real clients.

It answers the session's own actions the way Asterisk does (banner, Login,
Ping, CoreShowChannels, QueueStatus, Logoff, ``Response: Error`` for anything
else) and sends the events of recorded traces (../shared/ami-traces) with their
original spacing in time, scaled by `speed`. The recording client's responses
and list items are left out: they answered someone else's ActionIDs.

Uses: `callcenter playback` to run a customer's capture against `monitor`;
the tests' peer for the client (login, EventLists, reconnect, resync, bad
frames); the demo until the PBX simulator replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from pbx.codec import AMICodec, Message, encode
from pbx.trace import read_trace

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/13.0.0\r\n"
_LIST_EVENTS_KEEP = {"OriginateResponse"}


@dataclass(frozen=True, slots=True)
class Frame:
    """One recorded event and when, in seconds after the trace began, Asterisk sent it."""

    t: float
    message: Message


def recorded_events(path: str | Path) -> list[Frame]:
    """The events of a trace that any client would have received."""
    codec = AMICodec()
    frames: list[Frame] = []
    for read in read_trace(path):
        if read.dir != "in":
            continue
        for item in codec.feed(read.data.encode("utf-8")):
            if not isinstance(item, Message) or "Event" not in item:
                continue
            if "ActionID" in item and item["Event"] not in _LIST_EVENTS_KEEP:
                continue
            frames.append(Frame(read.t, item))
    return frames


@dataclass
class _Session:
    writer: asyncio.StreamWriter
    logged_in: bool = False


@dataclass
class PlaybackServer:
    """A scripted Asterisk manager: real sockets, recorded events, every action kept."""

    username: str
    secret: str = field(repr=False)
    speed: float = 1.0
    answer_pings: bool = True
    channels: list[dict[str, str]] = field(default_factory=list)
    queue_status: list[dict[str, str]] = field(default_factory=list)
    actions: list[Message] = field(default_factory=list)
    logins: int = 0

    def __post_init__(self) -> None:
        self._sessions: list[_Session] = []
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; return the port (an ephemeral one when `port` is 0)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Close every session and stop listening."""
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop(self) -> None:
        """Cut every client connection, as a network failure or an Asterisk restart would."""
        for session in self._sessions:
            session.writer.transport.abort()
        self._sessions.clear()

    @property
    def clients(self) -> int:
        """Logged-in sessions."""
        return sum(1 for s in self._sessions if s.logged_in)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are to every logged-in client (for malformed-input tests)."""
        for session in self._sessions:
            if session.logged_in:
                session.writer.write(data)

    def send_event(self, message: dict[str, str]) -> None:
        """Send one event to every logged-in client."""
        self.send_raw(encode(message))

    async def play(self, paths: Iterable[str | Path]) -> int:
        """Send the events of each trace in turn, spaced as recorded; return how many were sent."""
        sent = 0
        for path in paths:
            sent += await self.play_frames(recorded_events(path))
        return sent

    async def play_frames(self, frames: list[Frame]) -> int:
        """Send recorded events with their original spacing (scaled by `speed`)."""
        if not frames:
            return 0
        began = time.monotonic()
        first = frames[0].t
        for frame in frames:
            delay = (frame.t - first) / self.speed - (time.monotonic() - began)
            if delay > 0:
                await asyncio.sleep(delay)
            self.send_event(frame.message)
        for session in list(self._sessions):
            await session.writer.drain()
        return len(frames)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer)
        self._sessions.append(session)
        codec = AMICodec()
        writer.write(BANNER)
        try:
            while data := await reader.read(65536):
                for item in codec.feed(data):
                    if isinstance(item, Message) and "Action" in item:
                        self.actions.append(item)
                        if not self._answer(session, item):
                            writer.close()
                            return
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            writer.close()

    def _reply(self, session: _Session, action: Message, **headers: str) -> None:
        frame = {"Response": headers.pop("Response", "Success")}
        if "ActionID" in action:
            frame["ActionID"] = action["ActionID"]
        frame.update(headers)
        session.writer.write(encode(frame))

    def _event_list(self, session: _Session, action: Message, message: str, items: list[dict[str, str]], complete: str) -> None:
        self._reply(session, action, EventList="start", Message=message)
        ident = {"ActionID": action["ActionID"]} if "ActionID" in action else {}
        for item in items:
            session.writer.write(encode({**item, **ident}))
        session.writer.write(encode({"Event": complete, **ident, "EventList": "Complete", "ListItems": str(len(items))}))

    def _answer(self, session: _Session, action: Message) -> bool:
        name = action["Action"].lower()
        if name == "login":
            if action.get("Username") == self.username and action.get("Secret") == self.secret:
                session.logged_in = True
                self.logins += 1
                self._reply(session, action, Message="Authentication accepted")
                session.writer.write(encode({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}))
                return True
            self._reply(session, action, Response="Error", Message="Authentication failed")
            return False
        if not session.logged_in:
            self._reply(session, action, Response="Error", Message="Permission denied")
            return True
        if name == "ping":
            if self.answer_pings:
                self._reply(session, action, Ping="Pong", Timestamp=f"{time.time():.6f}")
        elif name == "logoff":
            self._reply(session, action, Response="Goodbye", Message="Thanks for all the fish.")
            return False
        elif name == "coreshowchannels":
            self._event_list(session, action, "Channels will follow", [{"Event": "CoreShowChannel", **c} for c in self.channels], "CoreShowChannelsComplete")
        elif name == "agi":
            self._reply(session, action, Message="Added AGI command to queue")
            self.send_event({"Event": "AsyncAGIExec", "Channel": action.get("Channel", ""), "CommandId": action.get("CommandID", ""), "Result": "200%20result%3D0%0A"})
        elif name == "queuestatus":
            self._event_list(session, action, "Queue status will follow", self.queue_status, "QueueStatusComplete")
        else:
            self._reply(session, action, Response="Error", Message="Invalid/unknown command: " + action["Action"] + ". Use Action: ListCommands to show available commands.")
        return True
