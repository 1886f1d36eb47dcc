"""Database access: engines, Alembic migrations and the store of finished calls."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, event, func, make_url, or_, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from kernel.exceptions import DatabaseError
from kernel.models import Call, CallEvent, CallLeg, Wrapup
from kernel.records import CallRecord, DomainEvent

MIGRATIONS = Path(__file__).with_name("migrations")


def open_store(url: str) -> CallStore:
    """The call store on the database at `url`, migrated to the newest schema."""
    engine = make_engine(url)
    migrate(engine)
    return CallStore(engine)


def make_engine(url: str) -> Engine:
    """An engine for `url`; a SQLite file's folder is created, and SQLite enforces foreign keys."""
    where = make_url(url)
    file = _sqlite_file(where)
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = "a file is in the way" if isinstance(exc, FileExistsError | NotADirectoryError) else exc.strerror
            raise DatabaseError(f"{file}: cannot make the database's folder {file.parent}: {why}") from exc
    try:
        engine = create_engine(where, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise DatabaseError(
            f"{where.render_as_string(hide_password=True)}: its driver ({exc.name}) is not installed: install it, or use "
            "sqlite:///FILE or postgresql+psycopg://..., whose drivers come with callcenter"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") else None


def _sqlite_pragmas(conn: Any, _: Any) -> None:
    """Foreign keys on; WAL with synchronous=NORMAL so the engine's many small commits (a call, an agent's state) do not each
    wait for a disk flush (benchmarks/screen_pop_latency.py: pop p99 184 ms -> 70 ms), and readers never block the writer."""
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")


def alembic_config(engine: Engine) -> Config:
    """Alembic configured from code, so no alembic.ini is needed at run time."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (default: the newest)."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except DBAPIError as exc:
        raise DatabaseError(_cannot_migrate(engine.url, exc)) from exc


def _cannot_migrate(url: URL, exc: DBAPIError) -> str:
    """Why the database would not open or migrate, in words a person can act on when SQLite's own are cryptic."""
    file, code = _sqlite_file(url), getattr(exc.orig, "sqlite_errorname", None)
    if file is not None and code == "SQLITE_NOTADB":
        return f"{file} is not a SQLite database"
    if file is not None and file.is_dir():
        return f"{file} is a folder, not a SQLite database"
    if file is not None and code in ("SQLITE_CANTOPEN", "SQLITE_READONLY") and not _writable(file):
        return f"{file}: read-only (SQLite must write the file and its folder, for its -wal and -shm files, even to read)"
    return f"cannot migrate {url.render_as_string(hide_password=True)}: {exc.orig}"


def _writable(file: Path) -> bool:
    """Whether SQLite can write the file (if it is there) and its folder (a read-only mount writes neither)."""
    return os.access(file.parent, os.W_OK) and (not file.exists() or os.access(file, os.W_OK))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision` ('base' removes every table)."""
    command.downgrade(alembic_config(engine), revision)


def utc(t: float | None) -> datetime | None:
    """Epoch seconds as the database keeps times (aware, UTC)."""
    return None if t is None else datetime.fromtimestamp(t, tz=UTC)


class CallStore:
    """Writes finished calls and their events; saving the same call twice adds nothing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def save(self, records: Iterable[CallRecord], events: Iterable[DomainEvent] = (), source: str = "ami") -> int:
        """Store records (skipping linkedids already stored) and events; return how many calls were new."""
        records = list(records)
        try:
            with self.sessions.begin() as session:
                known = self._stored(session, [r.linkedid for r in records])
                fresh = [r for r in records if r.linkedid not in known]
                session.add_all(self._row(r, source) for r in fresh)
                session.add_all(
                    CallEvent(linkedid=e.linkedid, at=utc(e.t), kind=e.kind, data=e.to_json()) for e in events if e.record is None
                )
                return len(fresh)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot store calls: {exc}") from exc

    def save_timeline(self, linkedid: str, entries: Iterable[tuple[str, float, dict]]) -> None:
        """Keep (kind, time, data) entries on a call's timeline (the IVR's steps and keyed data)."""
        try:
            with self.sessions.begin() as session:
                session.add_all(CallEvent(linkedid=linkedid, at=utc(t), kind=kind, data=data) for kind, t, data in entries)
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot store the timeline of {linkedid}: {exc}") from exc

    def save_wrapup(self, linkedid: str, agent: str, disposition: str, notes: str, at: float, *, seen_live: bool) -> bool:
        """An agent's disposition of a call they worked, replacing their earlier one; False if they did not work it (unless
        the panel saw them on it live, the stored call must have their leg)."""
        try:
            with self.sessions.begin() as session:
                if (
                    not seen_live
                    and session.scalar(
                        select(Call.id).where(Call.linkedid == linkedid, or_(Call.agent == agent, Call.legs.any(CallLeg.agent == agent)))
                    )
                    is None
                ):
                    return False
                row = session.scalar(select(Wrapup).where(Wrapup.linkedid == linkedid, Wrapup.agent == agent))
                if row is None:
                    row = Wrapup(linkedid=linkedid, agent=agent)
                    session.add(row)
                row.disposition, row.notes, row.saved_at = disposition, notes, utc(at)
                return True
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot store the wrap-up of {linkedid}: {exc}") from exc

    @staticmethod
    def _row(r: CallRecord, source: str) -> Call:
        return Call(
            linkedid=r.linkedid,
            source=source,
            caller_number=r.caller_number,
            caller_name=r.caller_name,
            dnid=r.dnid,
            started_at=utc(r.started_at),
            ivr_digits=r.ivr_digits,
            queue=r.queue,
            enqueued_at=utc(r.enqueued_at),
            answered_at=utc(r.answered_at),
            agent=r.agent,
            ended_at=utc(r.ended_at),
            outcome=r.outcome,
            wait_s=r.wait_s,
            talk_s=r.talk_s,
            hold_s=r.hold_s,
            hangup_by=r.hangup_by,
            hangup_cause=r.hangup_cause,
            transfers=r.transfers,
            resynced=r.resynced,
            legs=[
                CallLeg(
                    n=n,
                    queue=leg.queue,
                    agent=leg.agent,
                    enqueued_at=utc(leg.enqueued_at),
                    answered_at=utc(leg.answered_at),
                    ended_at=utc(leg.ended_at),
                    wait_s=leg.wait_s,
                    talk_s=leg.talk_s,
                    hold_s=leg.hold_s,
                    ended_by=leg.ended_by,
                    callid=leg.callid,
                )
                for n, leg in enumerate(r.legs)
            ],
        )

    def stored(self, linkedids: Iterable[str]) -> set[str]:
        """Which of these calls are stored already."""
        with self.sessions() as session:
            return self._stored(session, list(linkedids))

    @staticmethod
    def _stored(session: Session, linkedids: list[str]) -> set[str]:
        return set(session.scalars(select(Call.linkedid).where(Call.linkedid.in_(linkedids)))) if linkedids else set()

    def legs_holding(self, callids: Iterable[str]) -> list[tuple[str, str | None, datetime | None, str]]:
        """The stored legs that carry these queue_log call ids, as (callid, queue, enqueued_at, source of their call):
        what tells a queue_log visit the store already has."""
        wanted = list(set(callids))
        rows: list[tuple[str, str | None, datetime | None, str]] = []
        try:
            with self.sessions() as s:
                for start in range(0, len(wanted), 500):
                    query = select(CallLeg.callid, CallLeg.queue, CallLeg.enqueued_at, Call.source).join(Call)
                    rows += [tuple(row) for row in s.execute(query.where(CallLeg.callid.in_(wanted[start : start + 500])))]  # type: ignore[misc]
        except SQLAlchemyError as exc:
            raise DatabaseError(f"cannot read stored calls: {exc}") from exc
        return rows

    def last_end(self) -> float | None:
        """When the newest stored call ended (where an engine that was down starts looking for the calls it missed)."""
        with self.sessions() as s:
            newest = s.scalar(select(func.max(Call.ended_at)))
        return newest.replace(tzinfo=UTC).timestamp() if newest is not None else None

    def count(self) -> int:
        """How many calls are stored."""
        with self.sessions() as s:
            return s.scalar(select(func.count(Call.id))) or 0

    def calls(self) -> list[Call]:
        """Every stored call, oldest first."""
        with self.sessions() as s:
            return list(s.scalars(select(Call).order_by(Call.started_at, Call.id)))
