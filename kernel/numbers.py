"""Phone numbers as every package compares them: the customers table, caller IDs and a recording's caller."""

from __future__ import annotations

import re

_NOT_DIGIT = re.compile(r"[^0-9]")


def normalise(number: str | None) -> str:
    """A phone number as its ASCII digits, so '+55 (11) 9...' and '5511 9...' are one number, as a caller ID (ASCII) is."""
    return _NOT_DIGIT.sub("", number or "")
