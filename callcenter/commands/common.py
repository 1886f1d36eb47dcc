"""What the command groups share: the store the config names, a file that must exist, a coroutine run until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from kernel import config
from kernel.db import CallStore, open_store
from kernel.exceptions import InputError

TRACES_ENV = "CALLCENTER_TRACES"


def run_interruptible(main: Coroutine[Any, Any, None]) -> None:
    """Run until done or Ctrl-C; either way the coroutine's cleanup has run."""
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass


def must_exist(path: Path) -> None:
    """A file the command reads is there, or a clear error naming it (never a traceback)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")


def configured_store(args: argparse.Namespace) -> CallStore:
    """The database of the configuration the command was given."""
    return open_store(config.load(args.config).database.url)
