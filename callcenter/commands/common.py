"""What the command groups share: the store the config names, a file that must exist, a coroutine run until stopped."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from kernel import config
from kernel.db import CallStore, open_store
from kernel.exceptions import InputError

TRACES_ENV = "CALLCENTER_TRACES"


def run_interruptible(main: Coroutine[Any, Any, None]) -> None:
    """Run until done, Ctrl-C or SIGTERM (how systemctl and docker stop a service); each way the coroutine's cleanup
    has run (the engine hands its IVR callers to the fallback queue, the monitor logs off) and the exit code is 0."""

    async def until_stopped() -> None:
        task = asyncio.ensure_future(main)
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        except (ValueError, RuntimeError):  # not the main thread: Ctrl-C only
            pass
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise

    try:
        asyncio.run(until_stopped())
    except KeyboardInterrupt:
        pass


def must_exist(path: Path) -> None:
    """A file the command reads is there, or a clear error naming it (never a traceback)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file (a folder?)")


def configured_store(args: argparse.Namespace) -> CallStore:
    """The database of the configuration the command was given."""
    return open_store(config.load(args.config).database.url)
