"""The CTI panel as a WSGI app, for running panel workers under gunicorn in production.

One worker per process, many threads (Flask-SocketIO's threading mode holds a
thread per open WebSocket), several processes behind a proxy, all reaching the
engine through Redis:

    CALLCENTER_CONFIG=/etc/callcenter.toml gunicorn -w 1 --threads 200 -b 127.0.0.1:8101 'callcenter.wsgi:create()'
"""

from __future__ import annotations

from flask import Flask

from callcenter.engine import Engine, RedisBus, directory, recordings_library
from cti_panel.app import Bus, create_app, new_secret
from cti_panel.controls import Directory
from cti_panel.server import PanelServer
from cti_panel.users import Users
from kernel import config
from kernel.db import CallStore, open_store
from kernel.exceptions import ConfigError
from recordings.library import Library


def panel_app(settings: config.Settings, store: CallStore, bus: Bus, known: Directory, library: Library | None) -> Flask:
    """The panel configured from [panel], its requests sent on `bus` (the engine itself, or Redis)."""
    p = settings.panel
    secret = p.secret_key.get_secret_value() if p.secret_key else new_secret()
    return create_app(
        Users(store.sessions),
        bus,
        known,
        secret_key=secret,
        origins=p.origins,
        message_queue=p.message_queue,
        secure_cookies=p.secure_cookies,
        library=library,
        trusted_proxies=p.trusted_proxies,
    )


def serve_panel(engine: Engine, port: int | None = None) -> PanelServer:
    """The panel in the engine's process: requests go straight to the engine, its notifier feeds the sockets."""
    app = panel_app(engine.settings, engine.store, engine, engine.directory, engine.library)
    engine.notifier.init_app(app.extensions["socketio"])
    p = engine.settings.panel
    return PanelServer(app, p.host, p.port if port is None else port).start()


def worker_app(settings: config.Settings) -> Flask:
    """One panel worker of several: sockets and requests go through Redis to the engine (run with [panel] enabled = false)."""
    if not settings.panel.message_queue:
        raise ConfigError(f"{settings.source}: panel.message_queue: set a redis:// URL; a panel worker reaches the engine through it")
    store = open_store(settings.database.url)
    return panel_app(
        settings, store, RedisBus(settings.panel.message_queue), directory(settings, store), recordings_library(settings, store)
    )


def create() -> Flask:
    """gunicorn's app factory: the configuration from CALLCENTER_CONFIG (or ./callcenter.toml), a shared secret_key required."""
    return worker_app(config.load(require=("panel",)))
