"""Panel users: roles, hashed passwords, the agent and phone an agent user is bound to; and rate limits.

Passwords are hashed with werkzeug's scrypt; a user row never leaves the
server with its hash. `RateLimit` is a token bucket shared by the login form
and each Socket.IO connection (Flask-Limiter covers HTTP routes only, and one
bucket class for both keeps the rule the same).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from kernel.config import AGENT_NAME, AGENT_NAME_RULE, QUEUE_NAME, QUEUE_NAME_RULE
from kernel.exceptions import Refused
from kernel.models import User
from kernel.who import LANGS, ROLES, Who

_LOGIN = re.compile(r"[a-z0-9_.-]{2,80}")
_INTERFACE = re.compile(r"[A-Za-z0-9_./@-]{3,200}")
_EXTENSION = re.compile(r"[0-9]{2,20}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MIN_PASSWORD = 8
# No one types more; hashing a megabyte on every login attempt would only be a cheap way to load the server.
MAX_PASSWORD = 1024
MAX_NAME = User.display_name.type.length
# A hash to check against when the login is unknown, so a wrong login takes as long as a wrong password.
_DUMMY = generate_password_hash("not a password")


def check_user_fields(
    login: str,
    role: str,
    lang: str,
    display_name: str,
    agent: str | None,
    interface: str | None,
    extension: str | None,
    queues: list[str],
) -> None:
    """Refuse a user that could not work: bad login, unknown role or language, an agent without a phone, a name, agent or
    queue the panel, the AMI or queue_log could not carry."""
    if not _LOGIN.fullmatch(login):
        raise Refused(f"login {login!r}: use 2-80 of a-z, 0-9, '_', '.', '-'")
    if role not in ROLES:
        raise Refused(f"role {role!r}: one of {', '.join(ROLES)}")
    if lang not in LANGS:
        raise Refused(f"language {lang!r}: one of {', '.join(LANGS)}")
    if role == "agent" and not (agent and interface):
        raise Refused(f"agent user {login!r} needs --agent and --interface (the ACD agent and the phone)")
    if interface is not None and not _INTERFACE.fullmatch(interface):
        raise Refused(f"interface {interface!r}: a channel like PJSIP/1001")
    if extension is not None and not _EXTENSION.fullmatch(extension):
        raise Refused(f"extension {extension!r}: digits only")
    if len(display_name) > MAX_NAME or _CONTROL.search(display_name):
        raise Refused(f"name {display_name[:40]!r}{'...' if len(display_name) > 40 else ''}: at most {MAX_NAME} characters, on one line")
    if agent is not None and not AGENT_NAME.fullmatch(agent):
        raise Refused(f"agent {agent!r}: {AGENT_NAME_RULE}")
    bad = [q for q in queues if not QUEUE_NAME.fullmatch(q)]
    if bad:
        raise Refused(f"queue {bad[0]!r}: {QUEUE_NAME_RULE}")


def _password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise Refused(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise Refused(f"password: at most {MAX_PASSWORD} characters")
    if _CONTROL.search(password):
        raise Refused("password: a control character (NUL, a tab, a line break...) that cannot be typed into the login form")
    return generate_password_hash(password)


class Users:
    """Create, list, change and check users in the database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def add(
        self,
        login: str,
        password: str,
        role: str,
        *,
        lang: str = "en",
        display_name: str = "",
        agent: str | None = None,
        interface: str | None = None,
        extension: str | None = None,
        queues: list[str] | None = None,
    ) -> Who:
        """A new user; refused if the login or agent is taken."""
        check_user_fields(login, role, lang, display_name, agent, interface, extension, list(queues or []))
        with self.sessions.begin() as s:
            if s.scalar(select(User.id).where(User.login == login)) is not None:
                raise Refused(f"login {login!r} is taken")
            if agent and s.scalar(select(User.id).where(User.agent == agent)) is not None:
                raise Refused(f"agent {agent!r} already has a user")
            user = User(
                login=login,
                password_hash=_password(password),
                role=role,
                lang=lang,
                display_name=display_name or login,
                agent=agent,
                interface=interface,
                extension=extension,
                queues=list(queues or []),
                disabled=False,
            )
            s.add(user)
            s.flush()
            return Who.of(user)

    def list(self) -> list[User]:
        """Every user, by login."""
        with self.sessions() as s:
            return list(s.scalars(select(User).order_by(User.login)))

    def passwd(self, login: str, password: str) -> None:
        """Set a new password: every session opened with the old one ends."""
        self._change(login, lambda u: setattr(u, "password_hash", _password(password)), end_sessions=True)

    def set_disabled(self, login: str, disabled: bool) -> None:
        """Disable (or enable again) a user: a disabled user cannot log in and their sessions and sockets end."""
        self._change(login, lambda u: setattr(u, "disabled", disabled), end_sessions=True)

    def set_role(self, login: str, role: str) -> None:
        """Give a user another role: their sessions end, so every right is checked again at the next login."""
        if role not in ROLES:
            raise Refused(f"role {role!r}: one of {', '.join(ROLES)}")
        self._change(login, lambda u: setattr(u, "role", role), end_sessions=True)

    def end_sessions(self, user_id: int) -> None:
        """End every session of the user, in every browser and process (logging out does)."""
        with self.sessions.begin() as s:
            user = s.get(User, user_id)
            if user is not None:
                _next_epoch(user)

    def set_lang(self, login: str, lang: str) -> None:
        """The panel's language for this user."""
        if lang not in LANGS:
            raise Refused(f"language {lang!r}: one of {', '.join(LANGS)}")
        self._change(login, lambda u: setattr(u, "lang", lang))

    def _change(self, login: str, change: Callable[[User], None], end_sessions: bool = False) -> None:
        with self.sessions.begin() as s:
            user = s.scalar(select(User).where(User.login == login))
            if user is None:
                raise Refused(f"no user {login!r}")
            change(user)
            if end_sessions:
                _next_epoch(user)

    def check(self, login: str, password: str) -> Who | None:
        """The user if the password is right and the account enabled, else None (same time either way, but for a password
        too long to be anyone's, refused before scrypt spends time on it)."""
        if len(password) > MAX_PASSWORD:
            return None
        with self.sessions() as s:
            user = s.scalar(select(User).where(User.login == login))
        if user is None:
            check_password_hash(_DUMMY, password)
            return None
        if not check_password_hash(user.password_hash, password) or user.disabled:
            return None
        return Who.of(user)

    def current(self, user_id: int, epoch: int) -> Who | None:
        """The user of a session begun in `epoch`, re-read so a change takes effect at once; None once the session has
        ended (logged out, new password or role, disabled, deleted)."""
        with self.sessions() as s:
            user = s.get(User, user_id)
        if user is None or user.disabled or (user.session_epoch or 0) != epoch:
            return None
        return Who.of(user)


def _next_epoch(user: User) -> None:
    """Move the user's session epoch on: every session begun before ends."""
    user.session_epoch = (user.session_epoch or 0) + 1


class RateLimit:
    """Token buckets by key: `rate` per second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, spend: bool = True) -> bool:
        """Take one token for `key` (or, with `spend` off, only look); False when its bucket is empty."""
        with self._lock:
            now = self.clock()
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0 if spend else tokens, now)
            return True


class LoginThrottle:
    """Failed logins, counted per account (guessing one password, from anywhere) and per address (one address trying
    many accounts). A correct login costs nothing, so a whole shift behind one proxy logs in at once; a refused one
    costs a token of both, and an empty bucket refuses even the right password until it refills."""

    def __init__(self, account: RateLimit, address: RateLimit) -> None:
        self.account, self.address = account, address

    def blocked(self, login: str, address: str) -> bool:
        """Whether this login from this address must wait."""
        return not (self.account.allow(login, spend=False) and self.address.allow(address, spend=False))

    def failed(self, login: str, address: str) -> None:
        """A wrong password (or unknown login) from this address."""
        self.account.allow(login)
        self.address.allow(address)
