"""The server side of Asterisk's manager protocol, shared by the playback server and the simulator.

Banner, Login (plain, or MD5 through Challenge), Events on/off, Ping, Logoff,
``Response: Error`` with Asterisk's wording for what a subclass does not
handle, and events broadcast to the logged-in sessions that want them. Every
action received is kept in `actions`, so tests can assert what a client sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pbx.codec import AMICodec, FrameError, Message, encode

BANNER = b"Asterisk Call Manager/13.0.0\r\n"
Frames = list[dict[str, str]]


def reply(action: Mapping[str, str], response: str = "Success", **headers: str) -> dict[str, str]:
    """A response frame carrying the action's ActionID."""
    frame = {"Response": response}
    if "ActionID" in action:
        frame["ActionID"] = action["ActionID"]
    frame.update(headers)
    return frame


def unknown(action: Mapping[str, str]) -> dict[str, str]:
    """Asterisk's answer to an action it does not know."""
    return reply(
        action,
        "Error",
        Message=f"Invalid/unknown command: {action.get('Action', '')}. Use Action: ListCommands to show available commands.",
    )


def event_list(action: Mapping[str, str], message: str, items: list[dict[str, str]], complete: str) -> Frames:
    """An EventList: the start response, the items tagged with the ActionID, then the Complete event."""
    ident = {"ActionID": action["ActionID"]} if "ActionID" in action else {}
    frames = [reply(action, EventList="start", Message=message)]
    frames += [{**item, **ident} for item in items]
    frames.append({"Event": complete, **ident, "EventList": "Complete", "ListItems": str(len(items))})
    return frames


@dataclass(eq=False)
class Session:
    """One connected client."""

    writer: asyncio.StreamWriter
    logged_in: bool = False
    events: bool = True
    challenge: str | None = None


@dataclass
class AMIServer:
    """A manager interface on 127.0.0.1; subclasses answer the actions beyond login and keepalive."""

    username: str
    secret: str = field(repr=False)
    answer_pings: bool = True
    actions: list[Message] = field(default_factory=list)
    logins: int = 0

    def __post_init__(self) -> None:
        self._sessions: list[Session] = []
        self._serving: set[asyncio.Task[None]] = set()  # one per connection, awaited by stop()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; return the port (an ephemeral one when `port` is 0)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        """Close every session and stop listening, once each connection's task has ended (a task still running when the
        loop closes is cancelled, and Python 3.11's streams then log a CancelledError traceback)."""
        self.drop()
        if self._server is not None:
            self._server.close()
        await asyncio.gather(*self._serving, return_exceptions=True)
        if self._server is not None:
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
        """Write bytes as they are to every logged-in client that takes events."""
        for session in self._sessions:
            if session.logged_in and session.events:
                session.writer.write(data)

    def send_event(self, message: Mapping[str, str]) -> None:
        """Send one event to every logged-in client that takes events."""
        self.send_raw(encode(message))

    async def drain(self) -> None:
        """Wait until what was written has gone to the sockets."""
        for session in list(self._sessions):
            try:
                await session.writer.drain()
            except ConnectionError:
                pass

    def now(self) -> float:
        """The server's clock, as Ping's Timestamp reports it."""
        return time.time()

    def handle(self, action: Message) -> Frames:
        """Answer an action beyond login and keepalive (subclasses override)."""
        return [unknown(action)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        session = Session(writer)
        self._sessions.append(session)
        codec = AMICodec()
        writer.write(BANNER)
        try:
            while data := await reader.read(65536):
                for item in codec.feed(data):
                    if isinstance(item, FrameError):
                        writer.write(encode({"Response": "Error", "Message": "Missing action in request"}))
                    elif isinstance(item, Message) and "Action" in item:
                        self.actions.append(item)
                        frames, keep = self._answer(session, item)
                        for frame in frames:
                            writer.write(encode(frame))
                        if not keep:
                            await writer.drain()
                            return
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            writer.close()
            self._serving.discard(task)

    def _answer(self, session: Session, action: Message) -> tuple[Frames, bool]:
        name = action["Action"].lower()
        if name == "challenge":
            session.challenge = f"{secrets.randbelow(10**9):09d}"
            return [reply(action, Challenge=session.challenge)], True
        if name == "login":
            if self._authenticated(session, action):
                session.logged_in = True
                session.events = action.get("Events", "on").lower() not in ("off", "no", "0")
                self.logins += 1
                return [
                    reply(action, Message="Authentication accepted"),
                    {"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "1", "LastReload": "1", "Status": "Fully Booted"},
                ], True
            return [reply(action, "Error", Message="Authentication failed")], False
        if name == "logoff":
            return [reply(action, "Goodbye", Message="Thanks for all the fish.")], False
        if not session.logged_in:
            return [reply(action, "Error", Message="Permission denied")], True
        if name == "ping":
            return ([reply(action, Ping="Pong", Timestamp=f"{self.now():.6f}")] if self.answer_pings else []), True
        if name == "events":
            session.events = action.get("EventMask", "on").lower() not in ("off", "no", "0")
            return [reply(action, Events="On" if session.events else "Off")], True
        return self.handle(action), True

    def _authenticated(self, session: Session, action: Message) -> bool:
        if action.get("Username") != self.username:
            return False
        if action.get("AuthType", "").lower() == "md5":
            if session.challenge is None:
                return False
            expected = hashlib.md5((session.challenge + self.secret).encode()).hexdigest()
            return secrets.compare_digest(action.get("Key", ""), expected)
        return secrets.compare_digest(action.get("Secret", ""), self.secret)
