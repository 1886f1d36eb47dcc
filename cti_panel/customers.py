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
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kernel.exceptions import InputError
from kernel.models import Call, Customer, Wrapup

log = logging.getLogger(__name__)
FIELDS = ("number", "name", "company", "email", "notes")


def normalise(number: str | None) -> str:
    """A phone number as digits only, so '+55 (11) 9...' and '5511 9...' find the same customer."""
    return re.sub(r"\D", "", number or "")


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
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        try:
            missing = {"number", "name"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}; the header needs number,name")
            for row in reader:
                number, name = normalise(row.get("number")), (row.get("name") or "").strip()
                if len(number) < 3 or not name:
                    raise InputError(
                        f"{path}:{reader.line_num}: needs a phone number (digits) and a name, got {row.get('number')!r}, {name!r}"
                    )
                if any("\x00" in (value or "") for value in row.values() if isinstance(value, str)):
                    raise InputError(f"{path}:{reader.line_num}: a NUL byte in the row (no database stores one in text)")
                rows[number] = {k: (row.get(k) or "").strip() or None for k in FIELDS} | {"number": number, "name": name}
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}:{reader.line_num + 1}: not UTF-8 (save the file as UTF-8)") from exc
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
