"""One writer per data directory: a lock file naming the process that holds it.

``homegrid serve`` and every command that writes the store (simulate, import, quarantine-future)
take ``homegrid.lock`` in the data directory with ``flock``; a second one on the same folder
stops at once, naming the holder's pid and command. The kernel releases the lock when its
process ends, however it ends, so a lock file left by a killed hub never blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from homegrid.store.files import FILE_MODE, private_dir

__all__ = ["LOCK_NAME", "DataDirBusy", "DataDirLock"]

LOCK_NAME = "homegrid.lock"


class DataDirBusy(RuntimeError):
    """Another homegrid process holds the data directory; the message names it."""


class DataDirLock:
    """The data directory's lock, held from :meth:`acquire` until :meth:`release` (or the process ends).

    Parameters
    ----------
    data_dir : Path
        The data directory (created 0700 if missing).
    command : str
        What this process is, written into the lock file for the next one to read (``homegrid serve``).
    """

    def __init__(self, data_dir: Path, command: str) -> None:
        self.path = private_dir(Path(data_dir)) / LOCK_NAME
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock or raise :class:`DataDirBusy` at once (never waits)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip()
            os.close(fd)
            pid, _, command = holder.partition(" ")
            who = f"{command or 'homegrid'} (pid {pid})" if pid.isdigit() else "another homegrid process"
            raise DataDirBusy(f"{who} is using the data dir {self.path.parent}: stop it first, "
                              "or give this command another --data-dir") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {self.command}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the next process in (the file stays; its content is rewritten by the next holder)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
