"""The panel's Socket.IO side: the default namespace, whose sockets are refused without a logged-in, enabled user, joined to
the rooms the session allows (an agent's own room, a supervisor's queues), and whose one event, ``request``, is checked
against the user's role (`cti_panel.controls.check`) before the engine gets it through the bus; and the registry that
closes a user's sockets when they log out or are disabled."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import Any, Protocol

from flask import request, session
from flask_socketio import SocketIO, disconnect, join_room

from cti_panel import i18n
from cti_panel.controls import Directory, check
from cti_panel.live import SUPERVISORS, agent_room, queue_room
from cti_panel.users import RateLimit, Users
from kernel.exceptions import Refused
from kernel.who import Who

log = logging.getLogger(__name__)


class Bus(Protocol):
    """Carries a checked request (as JSON-ready data) from the panel to the engine."""

    def submit(self, payload: dict[str, Any]) -> None: ...


def serve_sockets(socketio: SocketIO, users: Users, bus: Bus, directory: Directory, sockets: SocketRegistry) -> None:
    """Handle the three events of the default namespace: connect, disconnect, request (and no other: an unknown event
    gets no answer at all)."""

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        uid, epoch = session.get("uid"), session.get("epoch")
        me = users.current(uid, epoch) if isinstance(uid, int) and isinstance(epoch, int) else None
        if me is None:
            raise ConnectionRefusedError("log in first")
        sid: str = request.sid  # type: ignore[attr-defined]
        sockets.add(sid, me)
        if me.role == "agent" and me.agent:
            join_room(agent_room(me.agent))
        if me.supervises:
            join_room(SUPERVISORS)
            for queue in me.queues or directory.queues:
                join_room(queue_room(queue))
        bus.submit({"who": asdict(me), "name": "snapshot", "values": {}, "sid": sid, "id": 0})

    @socketio.on("disconnect")
    def on_disconnect(*_: Any) -> None:
        sockets.remove(request.sid)  # type: ignore[attr-defined]

    @socketio.on("request")
    def on_request(message: Any) -> dict[str, Any]:
        sid: str = request.sid  # type: ignore[attr-defined]
        me = sockets.current(sid)
        if me is None:
            disconnect()
            return {"ok": False, "error": "session ended"}
        if not sockets.limit.allow(sid):
            return {"ok": False, "error": i18n.message(me.lang, "too_fast", {}, "too many requests: slow down")}
        request_id = message.get("id") if isinstance(message, dict) else None
        try:
            checked = check(
                me,
                message.get("name") if isinstance(message, dict) else None,
                message.get("data") if isinstance(message, dict) else None,
                directory,
            )
        except Refused as exc:
            log.info("refused %s from %s: %s", str(message)[:120], me.login, exc)
            return {"ok": False, "error": i18n.message(me.lang, exc.key, exc.params, str(exc))}
        if not isinstance(request_id, int):
            request_id = 0
        bus.submit({"who": asdict(me), "name": checked.name, "values": checked.values, "sid": sid, "id": request_id})
        return {"ok": True, "queued": True}


class SocketRegistry:
    """Which user holds which socket, so a disabled or logged-out user's sockets are closed."""

    def __init__(self, users: Users, limit: RateLimit, every_s: float = 2.0) -> None:
        self.users, self.limit, self.every_s = users, limit, every_s
        self._who: dict[str, Who] = {}
        self._lock = threading.Lock()
        self._socketio: SocketIO | None = None

    def add(self, sid: str, who: Who) -> None:
        """A socket connected for this user."""
        with self._lock:
            self._who[sid] = who

    def remove(self, sid: str) -> None:
        """A socket went away."""
        with self._lock:
            self._who.pop(sid, None)

    def current(self, sid: str) -> Who | None:
        """The socket's user, re-read from the database (None once disabled or deleted)."""
        with self._lock:
            who = self._who.get(sid)
        return self.users.current(who.user_id, who.epoch) if who is not None else None

    def of_user(self, uid: int) -> list[str]:
        """The sockets a user holds now."""
        with self._lock:
            return [sid for sid, who in self._who.items() if who.user_id == uid]

    def drop_user(self, uid: int) -> None:
        """Close every socket of a user (logged out or disabled)."""
        for sid in self.of_user(uid):
            self._close(sid)

    def sweep(self) -> None:
        """Close the sockets whose session has ended (logged out, new password or role, disabled), here or in another
        process (`callcenter users ...`)."""
        with self._lock:
            held = dict(self._who)
        alive: dict[tuple[int, int], bool] = {}
        for sid, who in held.items():
            key = (who.user_id, who.epoch)
            if key not in alive:
                alive[key] = self.users.current(who.user_id, who.epoch) is not None
            if not alive[key]:
                self._close(sid)

    def start_sweeping(self, sio: SocketIO) -> None:
        """Sweep every few seconds, so `callcenter users disable` in another process takes effect too."""
        self._socketio = sio

        def loop() -> None:
            while True:
                time.sleep(self.every_s)
                try:
                    self.sweep()
                except Exception:  # noqa: BLE001 - a failed sweep (database down) must not stop the next one
                    log.exception("socket sweep failed")

        threading.Thread(target=loop, name="panel-sweep", daemon=True).start()

    def _close(self, sid: str) -> None:
        self.remove(sid)
        if self._socketio is not None:
            log.info("closing socket %s: user logged out or disabled", sid)
            self._socketio.server.disconnect(sid, namespace="/")
