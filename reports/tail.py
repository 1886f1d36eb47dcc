"""A log file Asterisk appends to (queue_log, Master.csv), followed as it grows."""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class FileTail:
    """Each `lines()` gives the whole lines written since the last one; a rotated or truncated file is read again from
    its start (`restarted` says so), a missing one is empty (Asterisk may not have made it yet), and one that cannot be
    read is a warning: the engine then goes on with what AMI alone tells."""

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self.offset = 0
        self.inode: int | None = None
        self.restarted = False

    def lines(self) -> list[str]:
        """The new whole lines (a line Asterisk is still writing comes next time)."""
        self.restarted = False
        try:
            stat = self.path.stat()
            if stat.st_ino != self.inode or stat.st_size < self.offset:
                self.inode, self.offset, self.restarted = stat.st_ino, 0, True
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        except OSError as exc:  # a folder, no permission
            log.warning("cannot read %s %s: %s", self.what, self.path, exc.strerror or exc)
            return []
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        return whole.decode("utf-8", errors="replace").splitlines()
