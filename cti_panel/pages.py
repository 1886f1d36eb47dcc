"""The panel's pages over HTTP, as blueprints: signing in and out, the agent's and the supervisor's screens, users'
administration, and the recordings (served only to those allowed, every access logged by the library)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, session, url_for

from cti_panel import i18n
from cti_panel.controls import Directory
from cti_panel.sockets import SocketRegistry
from cti_panel.users import LoginThrottle, Users
from kernel.exceptions import Refused
from kernel.values import ACW_REASON
from kernel.who import LANGS, Who
from recordings.library import Library
from recordings.vault import VaultError

log = logging.getLogger(__name__)
# The browser's libraries, installed from npm by make into .venv/npm/node_modules: name served -> (file there, type).
VENDOR = {
    "socket.io.min.js": ("socket.io-client/dist/socket.io.min.js", "text/javascript"),
    "pico.min.css": ("@picocss/pico/css/pico.min.css", "text/css"),
}
auth = Blueprint("auth", __name__)
screens = Blueprint("screens", __name__)
admin = Blueprint("admin", __name__)
recordings = Blueprint("recordings", __name__)
BLUEPRINTS = (auth, screens, admin, recordings)


@dataclass
class Panel:
    """What the pages and the sockets of one panel app share (kept in `app.extensions["cc_panel"]`)."""

    users: Users
    directory: Directory
    logins: LoginThrottle
    sockets: SocketRegistry
    library: Library | None
    vendor: Path
    trusted_proxies: frozenset[str] = frozenset()


def panel() -> Panel:
    return current_app.extensions["cc_panel"]  # type: ignore[no-any-return]


def client_address() -> str:
    """Who is on the other end: the peer, or behind a trusted proxy ([panel] trusted_proxies) the last address of
    X-Forwarded-For that is not one of them (from anyone else the header is the client's own word, and ignored)."""
    trusted = panel().trusted_proxies
    address = request.remote_addr or ""
    if address in trusted:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
        while hops and hops[-1] in trusted:
            hops.pop()
        if hops:
            address = hops[-1][:80]
    return address


def is_admin(me: Who) -> bool:
    return me.role == "admin"


def who(allowed: Callable[[Who], bool] = lambda me: True) -> Who:
    """The logged-in user (else to the login page), if their role may see this page (else 403)."""
    uid, epoch = session.get("uid"), session.get("epoch")
    current = panel().users.current(uid, epoch) if isinstance(uid, int) and isinstance(epoch, int) else None
    if current is None:
        session.clear()
        abort(redirect(url_for("auth.login")))
    if not allowed(current):
        abort(403)
    return current


def guest_words() -> dict[str, str]:
    return i18n.catalog(request.accept_languages.best_match(LANGS) or "en")


def page(template: str, me: Who, **extra: Any) -> str:
    words = i18n.catalog(me.lang)
    return render_template(template, me=me, t=words, words=words, langs=LANGS, directory=panel().directory, **extra)


@auth.get("/login")
def login() -> str:
    return render_template("login.html", t=guest_words(), error=None)


@auth.post("/login")
def login_post():  # type: ignore[no-untyped-def]
    name = request.form.get("login", "")[:80]
    words = guest_words()
    logins, address = panel().logins, client_address()
    if logins.blocked(name, address):
        log.warning("login rate limit hit for %r from %s", name, address)
        return render_template("login.html", t=words, error=words["too_many"]), 429
    me = panel().users.check(name, request.form.get("password", ""))
    if me is None:
        logins.failed(name, address)
        log.info("failed login for %r from %s", name, address)
        return render_template("login.html", t=words, error=words["bad_login"]), 401
    session.clear()
    session["uid"], session["epoch"] = me.user_id, me.epoch
    return redirect(url_for("screens.home"))


@auth.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    uid = session.get("uid")
    session.clear()
    if isinstance(uid, int):
        panel().users.end_sessions(uid)  # a copy of the cookie (another tab, a stolen one) is no good either
        panel().sockets.drop_user(uid)
    return redirect(url_for("auth.login"))


@auth.post("/me/lang")
def my_lang():  # type: ignore[no-untyped-def]
    me = who()
    lang = request.form.get("lang", "")
    if lang not in LANGS:
        abort(400, f"language: one of {', '.join(LANGS)}")
    panel().users.set_lang(me.login, lang)
    return redirect(url_for("screens.home"))


@screens.get("/")
def home():  # type: ignore[no-untyped-def]
    return redirect(url_for("screens.wallboard" if who().supervises else "screens.agent"))


@screens.get("/agent")
def agent() -> str:
    me = who(lambda me: me.role == "agent")
    directory = panel().directory
    return page("agent.html", me, colleagues=sorted(name for name in directory.agents() if name != me.agent), pause_reasons=pause_reasons())


def pause_reasons() -> list[str]:
    """The pause reasons a person may choose (not the engine's own pause for after-call work)."""
    return [r for r in panel().directory.pause_reasons if r != ACW_REASON]


@screens.get("/wallboard")
def wallboard() -> str:
    return page("wallboard.html", who(lambda me: me.supervises), pause_reasons=pause_reasons())


@screens.get("/vendor/<name>")
def vendor(name: str):  # type: ignore[no-untyped-def]
    if name not in VENDOR:
        abort(404)
    file, mimetype = VENDOR[name]
    path = panel().vendor / file
    if not path.is_file():
        abort(404, f"{file.split('/')[0]} is not installed: run make (it installs it with npm)")
    return send_file(path, mimetype=mimetype, max_age=3600)


@admin.get("/admin/users")
def admin_users() -> str:
    return page("users.html", who(is_admin), users=panel().users.list())


@admin.post("/admin/users/<login>/disabled")
def admin_disable(login: str):  # type: ignore[no-untyped-def]
    who(is_admin)
    disabled = request.form.get("disabled") == "1"
    try:
        panel().users.set_disabled(login, disabled)
    except Refused as exc:
        abort(404, str(exc))
    if disabled:
        panel().sockets.sweep()
    return redirect(url_for("admin.admin_users"))


@recordings.get("/recordings")
def listing() -> str:
    me = who()
    library = panel().library
    return page("recordings.html", me, rows=library.visible(me) if library else [])


@recordings.get("/recordings/<int:recording_id>/audio")
def recording_audio(recording_id: int):  # type: ignore[no-untyped-def]
    me = who()
    library = panel().library
    if library is None:
        abort(404)
    download = request.args.get("download") == "1"
    try:
        row, data = library.fetch(recording_id, me, client_address(), "download" if download else "play")
    except Refused:
        abort(403)
    except VaultError as exc:
        abort(409, str(exc))
    return send_file(
        io.BytesIO(data), mimetype="audio/wav", conditional=True, as_attachment=download, download_name=f"{row.linkedid}.wav", max_age=0
    )


@admin.get("/admin/recordings/access")
def recording_access() -> str:
    library = panel().library
    return page("access.html", who(is_admin), rows=library.access_log() if library else [])
