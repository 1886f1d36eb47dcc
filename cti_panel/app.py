"""The CTI panel: a Flask app factory with Flask-SocketIO.

HTTP serves the login form and the pages; everything live goes over Socket.IO.
A socket is refused without a logged-in, enabled user; the server puts it in
its rooms from the session (an agent's own room, a supervisor's queues);
browsers send one event, ``request``, which is checked against the user's role
(`cti_panel.controls.check`) and handed to the engine through a `Bus`. The
engine answers on the same socket (``reply``) through the notifier.
"""

from __future__ import annotations

import io
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, abort, redirect, render_template, request, send_file, session, url_for
from flask_socketio import SocketIO, disconnect, join_room
from flask_wtf.csrf import CSRFProtect

from cti_panel import i18n
from cti_panel.controls import Directory, check
from cti_panel.live import SUPERVISORS, agent_room, queue_room
from cti_panel.users import RateLimit, Users
from kernel.exceptions import Refused
from kernel.who import LANGS, Who
from recordings.library import Library
from recordings.vault import VaultError

log = logging.getLogger(__name__)
csrf = CSRFProtect()
SOCKET_IO_JS = "socket.io.min.js"


class Bus(Protocol):
    """Carries a checked request (as JSON-ready data) from the panel to the engine."""

    def submit(self, payload: dict[str, Any]) -> None: ...


def create_app(
    users: Users,
    bus: Bus,
    directory: Directory,
    *,
    secret_key: str,
    origins: list[str] | None = None,
    message_queue: str | None = None,
    secure_cookies: bool = False,
    vendor_dir: Path | None = None,
    login_rate: tuple[float, int] = (0.1, 5),
    socket_rate: tuple[float, int] = (5.0, 20),
    library: Library | None = None,
) -> Flask:
    """The panel for one process; several such processes share sockets' rooms through `message_queue` (Redis)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        SESSION_COOKIE_NAME="cc_session",
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf.init_app(app)
    socketio = SocketIO(
        app,
        async_mode="threading",
        cors_allowed_origins=origins or None,
        message_queue=message_queue,
        transports=["websocket"],
        manage_session=False,
    )
    logins = RateLimit(*login_rate)
    sockets = SocketRegistry(users, RateLimit(*socket_rate))
    app.extensions["cc_sockets"] = sockets
    vendor = vendor_dir or Path(__file__).resolve().parents[1] / ".venv" / "npm" / "node_modules" / "socket.io-client" / "dist"

    def who(allowed: Callable[[Who], bool] = lambda me: True) -> Who:
        """The logged-in user (else to the login page), if their role may see this page (else 403)."""
        uid = session.get("uid")
        current = users.current(uid) if isinstance(uid, int) else None
        if current is None:
            session.clear()
            abort(redirect(url_for("login")))
        if not allowed(current):
            abort(403)
        return current

    def guest_words() -> dict[str, str]:
        return i18n.catalog(request.accept_languages.best_match(LANGS) or "en")

    def page(template: str, me: Who, **extra: Any) -> str:
        words = i18n.catalog(me.lang)
        return render_template(template, me=me, t=words, words=words, langs=LANGS, directory=directory, **extra)

    @app.after_request
    def headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.get("/login")
    def login() -> str:
        return render_template("login.html", t=guest_words(), error=None)

    @app.post("/login")
    def login_post():  # type: ignore[no-untyped-def]
        name = request.form.get("login", "")[:80]
        words = guest_words()
        if not logins.allow(f"{request.remote_addr}|{name}") or not logins.allow(f"{request.remote_addr}"):
            log.warning("login rate limit hit for %r from %s", name, request.remote_addr)
            return render_template("login.html", t=words, error=words["too_many"]), 429
        me = users.check(name, request.form.get("password", ""))
        if me is None:
            log.info("failed login for %r from %s", name, request.remote_addr)
            return render_template("login.html", t=words, error=words["bad_login"]), 401
        session.clear()
        session["uid"] = me.user_id
        return redirect(url_for("home"))

    @app.post("/logout")
    def logout():  # type: ignore[no-untyped-def]
        uid = session.get("uid")
        session.clear()
        if isinstance(uid, int):
            sockets.drop_user(uid)
        return redirect(url_for("login"))

    @app.get("/")
    def home():  # type: ignore[no-untyped-def]
        return redirect(url_for("wallboard" if who().supervises else "agent"))

    @app.get("/agent")
    def agent() -> str:
        return page("agent.html", who(lambda me: me.role == "agent"))

    @app.get("/wallboard")
    def wallboard() -> str:
        return page("wallboard.html", who(lambda me: me.supervises))

    @app.get("/admin/users")
    def admin_users() -> str:
        return page("users.html", who(is_admin), users=users.list())

    @app.post("/admin/users/<login>/disabled")
    def admin_disable(login: str):  # type: ignore[no-untyped-def]
        who(is_admin)
        disabled = request.form.get("disabled") == "1"
        try:
            users.set_disabled(login, disabled)
        except Refused as exc:
            abort(404, str(exc))
        if disabled:
            sockets.sweep()
        return redirect(url_for("admin_users"))

    @app.post("/me/lang")
    def my_lang():  # type: ignore[no-untyped-def]
        me = who()
        lang = request.form.get("lang", "")
        if lang not in LANGS:
            abort(400, f"language: one of {', '.join(LANGS)}")
        users.set_lang(me.login, lang)
        return redirect(url_for("home"))

    @app.get("/recordings")
    def recordings() -> str:
        me = who()
        return page("recordings.html", me, rows=library.visible(me) if library else [])

    @app.get("/recordings/<int:recording_id>/audio")
    def recording_audio(recording_id: int):  # type: ignore[no-untyped-def]
        me = who()
        if library is None:
            abort(404)
        download = request.args.get("download") == "1"
        try:
            row, data = library.fetch(recording_id, me, request.remote_addr, "download" if download else "play")
        except Refused:
            abort(403)
        except VaultError as exc:
            abort(409, str(exc))
        return send_file(
            io.BytesIO(data), mimetype="audio/wav", conditional=True, as_attachment=download, download_name=f"{row.linkedid}.wav", max_age=0
        )

    @app.get("/admin/recordings/access")
    def recording_access() -> str:
        return page("access.html", who(is_admin), rows=library.access_log() if library else [])

    @app.get("/vendor/socket.io.min.js")
    def socket_io_js():  # type: ignore[no-untyped-def]
        path = vendor / SOCKET_IO_JS
        if not path.is_file():
            abort(404, "socket.io-client is not installed: run make (it installs it with npm)")
        return send_file(path, mimetype="text/javascript", max_age=3600)

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        uid = session.get("uid")
        me = users.current(uid) if isinstance(uid, int) else None
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
            return {"ok": False, "error": "too many requests: slow down"}
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
            return {"ok": False, "error": str(exc)}
        if not isinstance(request_id, int):
            request_id = 0
        bus.submit({"who": asdict(me), "name": checked.name, "values": checked.values, "sid": sid, "id": request_id})
        return {"ok": True, "queued": True}

    sockets.start_sweeping(socketio)
    return app


def is_admin(me: Who) -> bool:
    return me.role == "admin"


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
        return self.users.current(who.user_id) if who is not None else None

    def drop_user(self, uid: int) -> None:
        """Close every socket of a user (logged out or disabled)."""
        with self._lock:
            sids = [sid for sid, who in self._who.items() if who.user_id == uid]
        for sid in sids:
            self._close(sid)

    def sweep(self) -> None:
        """Close the sockets of users who are disabled now."""
        with self._lock:
            held = dict(self._who)
        alive: dict[int, bool] = {}
        for sid, who in held.items():
            if who.user_id not in alive:
                alive[who.user_id] = self.users.current(who.user_id) is not None
            if not alive[who.user_id]:
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


def new_secret() -> str:
    """A random secret key, for a demo run when none is configured."""
    return secrets.token_urlsafe(32)
