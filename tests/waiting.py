"""Waiting on a condition, never on the clock: poll until it holds, or fail naming what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def _poll(check: Callable[[], T], end: float, seconds: float, what: str) -> T | None:
    """`check()` when it holds; None while there is time left; a failure naming `what` once the time is up."""
    value = check()
    if value:
        return value
    if time.monotonic() >= end:
        raise AssertionError(f"{what}: not met within {seconds:g} s")
    return None


def until(check: Callable[[], T], seconds: float = 15.0, what: str = "condition") -> T:
    """Wait for `check()` to be truthy, and return it."""
    end = time.monotonic() + seconds
    while (value := _poll(check, end, seconds, what)) is None:
        time.sleep(0.05)
    return value


async def eventually(check: Callable[[], T], seconds: float = 10.0, what: str = "condition") -> T:
    """In a test's event loop: wait for `check()` to be truthy, and return it."""
    end = time.monotonic() + seconds
    while (value := _poll(check, end, seconds, what)) is None:
        await asyncio.sleep(0.01)
    return value
