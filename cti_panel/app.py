"""The CTI panel: a Flask app factory with Flask-SocketIO.

HTTP serves the login form and the pages (`cti_panel.pages`, blueprints); everything live goes over Socket.IO
(`cti_panel.sockets`). The engine answers on the same socket (``reply``) through the notifier.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

from cti_panel.controls import Directory
from cti_panel.pages import BLUEPRINTS, Panel
from cti_panel.sockets import Bus, SocketRegistry, serve_sockets
from cti_panel.users import LoginThrottle, RateLimit, Users
from recordings.library import Library

csrf = CSRFProtect()


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
    login_rate: tuple[float, int] = (1 / 60, 5),
    address_rate: tuple[float, int] = (0.5, 30),
    socket_rate: tuple[float, int] = (5.0, 20),
    library: Library | None = None,
    trusted_proxies: Iterable[str] = (),
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
    sockets = SocketRegistry(users, RateLimit(*socket_rate))
    vendor = vendor_dir or Path(__file__).resolve().parents[1] / ".venv" / "npm" / "node_modules"
    logins = LoginThrottle(RateLimit(*login_rate), RateLimit(*address_rate))
    app.extensions["cc_panel"] = Panel(users, directory, logins, sockets, library, vendor, frozenset(trusted_proxies))
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.after_request(_headers)
    zone = ZoneInfo(directory.timezone)
    app.jinja_env.filters["local"] = lambda at, fmt="%Y-%m-%d %H:%M": local_time(at, zone, fmt)
    serve_sockets(socketio, users, bus, directory, sockets)
    sockets.start_sweeping(socketio)
    return app


def _headers(response):  # type: ignore[no-untyped-def]
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def local_time(at: datetime | None, zone: ZoneInfo, fmt: str) -> str:
    """A stored time (UTC; naive ones are UTC too) as the center's local time."""
    if at is None:
        return ""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone).strftime(fmt)


def new_secret() -> str:
    """A random secret key, for a demo run when none is configured."""
    return secrets.token_urlsafe(32)
