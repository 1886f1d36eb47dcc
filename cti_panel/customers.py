"""Who is calling: the customer record for a number, and their last calls, for the screen pop.

The built-in lookup reads the customers table (filled from CSV); a CRM can be
asked over HTTP with a URL template (``https://crm.example/api?phone={number}``)
and a timeout, falling back to the table when it is slow, down or answers
nonsense, so a pop is never held up by the CRM.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import String, select
from sqlalchemy.orm import Session, sessionmaker

from kernel.exceptions import InputError
from kernel.models import Call, Customer, Wrapup
from kernel.numbers import normalise

log = logging.getLogger(__name__)
FIELDS = ("number", "name", "company", "email", "notes")
_LENGTHS = {c.name: c.type.length for c in Customer.__table__.columns if isinstance(c.type, String) and c.type.length}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")


class Lookup(Protocol):
    """Finds a customer record by caller number."""

    def find(self, number: str) -> dict[str, Any] | None: ...


class TableLookup:
    """The built-in customers table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def find(self, number: str) -> dict[str, Any] | None:
        """The customer whose number matches, digits only."""
        digits = normalise(number)
        if not digits:
            return None
        with self.sessions() as s:
            row = s.scalar(select(Customer).where(Customer.number == digits))
        return {k: getattr(row, k) for k in FIELDS} | {"source": "table"} if row else None


class HttpLookup:
    """A CRM asked over HTTP GET; its JSON object is the record. On any failure, the fallback answers."""

    def __init__(self, template: str, timeout_s: float, fallback: Lookup | None) -> None:
        if "{number}" not in template:
            raise InputError(f"CRM URL template {template!r}: put {{number}} where the caller's number goes")
        self.template, self.timeout_s, self.fallback = template, timeout_s, fallback

    def find(self, number: str) -> dict[str, Any] | None:
        """The CRM's record, or the fallback's when the CRM fails or has none."""
        url = self.template.replace("{number}", quote(normalise(number)))
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                data = json.loads(response.read(1 << 20))
            if isinstance(data, dict) and data:
                return {**{str(k): v for k, v in data.items()}, "source": "crm"}
        except (OSError, urllib.error.URLError, ValueError) as exc:
            log.warning("CRM lookup failed (%s); using the fallback", type(exc).__name__)
        return self.fallback.find(number) if self.fallback is not None else None


def last_calls(sessions: sessionmaker[Session], number: str, limit: int = 5) -> list[dict[str, Any]]:
    """This number's last calls with every agent's disposition of each, newest first."""
    with sessions() as s:
        calls = list(
            s.scalars(select(Call).where(Call.caller_number.in_({number, normalise(number)})).order_by(Call.started_at.desc()).limit(limit))
        )
        wrapups: dict[str, list[dict[str, str]]] = {}
        for w in s.scalars(select(Wrapup).where(Wrapup.linkedid.in_([c.linkedid for c in calls])).order_by(Wrapup.saved_at)):
            wrapups.setdefault(w.linkedid, []).append({"agent": w.agent, "disposition": w.disposition, "notes": w.notes})
        return [
            {
                "linkedid": c.linkedid,
                "at": c.started_at.isoformat(),
                "queue": c.queue,
                "agent": c.agent,
                "outcome": c.outcome,
                "wrapups": wrapups.get(c.linkedid, []),
            }
            for c in calls
        ]


def import_csv(sessions: sessionmaker[Session], path: Path) -> tuple[int, int]:
    """Load customers from a CSV with a header (number,name[,company,email,notes]); (added, updated). A bad row stops the import with its line, storing nothing."""
    rows: dict[str, dict[str, str | None]] = {}
    lines: dict[str, int] = {}
    # A byte that is not UTF-8 becomes a surrogate found in its own row: the decoder reads ahead, so its error has no line.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        reader = csv.reader(f, strict=True)
        try:
            header = _header(path, next(reader, []))
            for fields in reader:
                where = f"{path}:{reader.line_num}"
                if len(fields) > len(header):
                    raise InputError(f"{where}: {len(fields)} fields, the header has {len(header)} ({','.join(header)})")
                if not fields:
                    continue
                number, customer = _customer(where, dict(zip(header, fields)))
                if number in lines:
                    raise InputError(f"{where}: number {number} again (first on line {lines[number]})")
                rows[number], lines[number] = customer, reader.line_num
        except csv.Error as exc:
            raise InputError(f"{path}:{reader.line_num}: not a CSV row: {exc}") from exc
    with sessions.begin() as s:
        known = {c.number: c for c in s.scalars(select(Customer).where(Customer.number.in_(rows)))}
        for number, data in rows.items():
            if number in known:
                for k, v in data.items():
                    setattr(known[number], k, v)
            else:
                s.add(Customer(**data))
    return len(rows) - len(known), len(known)


def _header(path: Path, fields: list[str]) -> list[str]:
    """The header's columns: number and name among them, each known and named once (a second one would silently win)."""
    _storable(f"{path}:1", fields)
    names = [name.strip() for name in fields]
    missing = {"number", "name"} - set(names)
    if missing:
        raise InputError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}; the header needs number,name")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"{path}:1: column(s) {', '.join(twice)} more than once")
    unknown = [name for name in names if name not in FIELDS]
    if unknown:
        raise InputError(f"{path}:1: unknown column(s) {', '.join(map(repr, unknown))}; the columns are {','.join(FIELDS)}")
    return names


def _customer(where: str, row: dict[str, str]) -> tuple[str, dict[str, str | None]]:
    """A row's (number, customer), or the first thing wrong with it: what the columns hold and a caller ID can match."""
    values = {k: row.get(k, "").strip() for k in FIELDS}
    _storable(where, values.values())
    number = normalise(values["number"])
    if _OTHER_DIGIT.search(values["number"]):
        raise InputError(f"{where}: number {values['number']!r}: digits 0-9 only (a caller ID has no others)")
    if len(number) < 3 or not values["name"]:
        raise InputError(f"{where}: needs a phone number (digits) and a name, got {row.get('number')!r}, {values['name']!r}")
    for k, limit in _LENGTHS.items():
        length = len(number if k == "number" else values[k])
        if length > limit:
            raise InputError(f"{where}: {k}: {length} characters, at most {limit}")
    if values["email"] and not _EMAIL.fullmatch(values["email"]):
        raise InputError(f"{where}: email {values['email']!r}: not an email address")
    return number, {k: v or None for k, v in values.items()} | {"number": number}


def _storable(where: str, values: Iterable[str]) -> None:
    """Text a database keeps: no NUL, and UTF-8 (a byte that is not was decoded to a surrogate)."""
    for value in values:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{where}: not UTF-8 (save the file as UTF-8)") from exc
        if "\x00" in value:
            raise InputError(f"{where}: a NUL byte in the row (no database stores one in text)")
