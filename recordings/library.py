"""The recordings index: adding rows, who may hear what (every access logged), legal holds and retention."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kernel.config import RecordingSettings
from kernel.db import utc
from kernel.exceptions import Refused
from kernel.models import Recording, RecordingAccess
from kernel.numbers import normalise
from kernel.who import Who
from recordings.policy import Kept, to_purge
from recordings.vault import Vault, VaultError

log = logging.getLogger(__name__)
SAME_ACCESS_S = 60  # requests of one recording by one user and address this close together are one access
MAX_ID = 2**31 - 1  # the ids' column is a 32-bit INTEGER on PostgreSQL


class Library:
    """Recordings as people find, hear and delete them."""

    def __init__(self, sessions: sessionmaker[Session], vault: Vault, settings: RecordingSettings) -> None:
        self.sessions, self.vault, self.settings = sessions, vault, settings

    def add(
        self,
        *,
        linkedid: str,
        queue: str | None,
        agent: str | None,
        caller_number: str | None,
        status: str,
        started: float,
        ended: float | None = None,
        key: str | None = None,
        duration_s: float | None = None,
        size: int | None = None,
        sha256: str | None = None,
        paused: list[list[float]] | None = None,
        note: str | None = None,
    ) -> int:
        """One index row; its id."""
        with self.sessions.begin() as s:
            row = Recording(
                linkedid=linkedid,
                queue=queue,
                agent=agent,
                caller_number=caller_number,
                status=status,
                key=key,
                started_at=utc(started),
                ended_at=utc(ended),
                duration_s=duration_s,
                size=size,
                sha256=sha256,
                encrypted=self.vault.encrypted and key is not None and status == "stored",
                paused=paused or [],
                legal_hold=False,
                note=note,
            )
            s.add(row)
            s.flush()
            return row.id

    def may_hear(self, who: Who, row: Recording) -> bool:
        """Supervisors and admins (within their queues, if they have a list); an agent their own calls where the queue allows."""
        if who.supervises:
            return not who.queues or row.queue in who.queues
        return who.role == "agent" and row.agent == who.agent and self.settings.policy(row.queue).agents_hear_own

    def visible(self, who: Who, limit: int = 200) -> list[Recording]:
        """The newest recordings this user may hear."""
        if not _possible(limit):  # the database takes no LIMIT past a 64-bit integer, and a negative one means none
            raise Refused(f"limit {limit}: from 1 to {MAX_ID}")
        with self.sessions() as s:
            rows = s.scalars(select(Recording).where(Recording.deleted_at.is_(None)).order_by(Recording.started_at.desc()).limit(limit * 5))
            return [r for r in rows if self.may_hear(who, r)][:limit]

    def fetch(self, recording_id: int, who: Who, remote_addr: str | None, action: str) -> tuple[Recording, bytes]:
        """The recording's audio for this user, or Refused; every attempt is logged, allowed or not."""
        if not _possible(recording_id):
            self._log(0, who, "denied", remote_addr, f"{action}: no recording {recording_id}"[:200])
            raise Refused(f"recording {recording_id}: not found or not yours to hear")
        with self.sessions() as s:
            row = s.get(Recording, recording_id)
        if row is None or row.deleted_at is not None or not self.may_hear(who, row):
            self._log(recording_id, who, "denied", remote_addr, action)
            raise Refused(f"recording {recording_id}: not found or not yours to hear")
        if row.status != "stored" or row.key is None:
            self._log(recording_id, who, "failed", remote_addr, f"{action}: {row.status}")
            raise VaultError(f"recording {recording_id} has no audio ({row.status}{': ' + row.note if row.note else ''})")
        try:
            data = self.vault.get(row.key)
        except VaultError as exc:
            self._log(recording_id, who, "failed", remote_addr, str(exc)[:200])
            log.error("recording %s: %s", recording_id, exc)
            raise
        if not self._same_access(recording_id, who, action, remote_addr):
            self._log(recording_id, who, action, remote_addr, None)
        return row, data

    def _same_access(self, recording_id: int, who: Who, action: str, remote_addr: str | None) -> bool:
        """Whether this is part of an access already logged: a browser plays a file in several ranged requests, within
        moments of each other, from the same user and address (one play, one line)."""
        since = datetime.now(UTC) - timedelta(seconds=SAME_ACCESS_S)
        with self.sessions() as s:
            return (
                s.scalar(
                    select(RecordingAccess.id)
                    .where(
                        RecordingAccess.recording_id == recording_id,
                        RecordingAccess.login == who.login,
                        RecordingAccess.action == action,
                        RecordingAccess.remote_addr == remote_addr,
                        RecordingAccess.at >= since,
                    )
                    .limit(1)
                )
                is not None
            )

    def _log(self, recording_id: int, who: Who, action: str, remote_addr: str | None, detail: str | None) -> None:
        with self.sessions.begin() as s:
            s.add(
                RecordingAccess(
                    recording_id=recording_id,
                    login=who.login,
                    action=action,
                    at=datetime.now(UTC),
                    remote_addr=remote_addr,
                    detail=detail,
                )
            )
        log.info("recording %s: %s by %s from %s", recording_id, action, who.login, remote_addr)

    def access_log(self, limit: int = 500) -> list[RecordingAccess]:
        """The newest accesses first."""
        with self.sessions() as s:
            return list(s.scalars(select(RecordingAccess).order_by(RecordingAccess.at.desc(), RecordingAccess.id.desc()).limit(limit)))

    def hold(self, recording_id: int, on: bool) -> None:
        """Put a recording on legal hold (retention and erasure leave it), or release it."""
        with self.sessions.begin() as s:
            row = s.get(Recording, recording_id) if _possible(recording_id) else None
            if row is None:
                raise Refused(f"no recording {recording_id}")
            row.legal_hold = on

    def purge(
        self, now: datetime, *, dry_run: bool = False, customer: str | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Delete what retention (or a customer's erasure request) says; (deleted, kept with why). With dry_run nothing changes."""
        if customer is not None and not normalise(customer):  # it would match every caller with no number
            raise Refused(f"customer {customer!r}: no digits in the number")
        with self.sessions() as s:
            rows = list(s.scalars(select(Recording).where(Recording.deleted_at.is_(None))))
        by_id = {r.id: r for r in rows}
        delete, kept = to_purge(
            [Kept(r.id, r.queue, r.caller_number, r.started_at, r.legal_hold) for r in rows], self.settings, now, customer
        )
        deleted: list[dict[str, Any]] = []
        for item in delete:
            row = by_id[item.id]
            deleted.append(
                {"id": row.id, "linkedid": row.linkedid, "queue": row.queue, "started_at": row.started_at.isoformat(), "key": row.key}
            )
            if dry_run:
                continue
            if row.key:
                self.vault.delete(row.key)
            with self.sessions.begin() as s:
                s.get(Recording, row.id).deleted_at = now
            log.info("recording %s (%s) deleted%s", row.id, row.linkedid, f" on request of {customer}" if customer else " by retention")
        return deleted, [{"id": k.id, "why": why} for k, why in kept]


def _possible(n: int) -> bool:
    """Whether a number fits the ids' 32-bit column: no row has an id past it, and the database refuses to compare with one."""
    return 0 < n <= MAX_ID
