"""Waiting on a condition, never on the clock: poll until it holds, or fail naming what was awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], T], seconds: float = 15.0, what: str = "condition") -> T:
    """Wait for `check()` to be truthy, and return it."""
    end = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"{what}: not met within {seconds:g} s")
        time.sleep(0.05)


async def eventually(check: Callable[[], T], seconds: float = 10.0, what: str = "condition") -> T:
    """In a test's event loop: wait for `check()` to be truthy, and return it."""
    end = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"{what}: not met within {seconds:g} s")
        await asyncio.sleep(0.01)
