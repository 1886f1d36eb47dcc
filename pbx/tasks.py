"""Background tasks an owner keeps until they finish, each failure logged.

asyncio keeps only weak references to tasks, so one nobody holds can vanish
mid-run, and one that fails with nobody awaiting it loses its traceback.
`asyncio.TaskGroup` is not the tool: one failure there cancels the rest (one
caller's broken session would end every call).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """The tasks of one owner (the engine, the IVR, the native ACD)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
        """Run a coroutine on the running loop, kept until done."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", self.what, exc_info=task.exception())

    async def cancel(self) -> None:
        """Cancel every task and wait until they are gone (shutting down)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def wait(self) -> None:
        """Wait until every task, including those started meanwhile, has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
