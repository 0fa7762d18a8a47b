"""The data directory and the store's files, readable by their owner only.

The store holds the household's presence history (when the car is home, when the home uses power),
so the folder is made 0700 and the database files 0600 whatever the umask. A folder that already
exists with access for others is not changed (it may be a shared place such as a home folder):
homegrid says so once, and its own files in it stay 0600.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "private_umask", "tighten"]

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
_warned: set[Path] = set()


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Create files and folders owner-only inside the block (umask 077)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700; warn once when it exists open to others.

    Parameters
    ----------
    path : Path
        The data directory.
    """
    path = Path(path)
    if not path.is_dir():
        with private_umask():
            path.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and path.resolve() not in _warned:
        _warned.add(path.resolve())
        log.warning("data dir %s is open to other users (mode %04o): homegrid's files in it are owner-only, "
                    "but run 'chmod 700 %s' to hide the folder too", path, mode, path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty and 0600 if missing, so that SQLite (which gives its WAL and shared-memory files
    the database's mode) never makes it readable by others; tighten it and its companions if they are."""
    path = Path(path)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        tighten(p)
    return path


def tighten(path: Path) -> None:
    """Make an existing file 0600 when others may read it (a file written by an older homegrid)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            os.chmod(path, mode & 0o700 | FILE_MODE)
        except OSError as exc:  # not ours, or a read-only disk: reading it is still possible
            log.warning("%s is readable by others (mode %04o) and could not be changed: %s", path, mode, exc)
            return
        log.info("%s was readable by others (mode %04o): now %04o", path, mode, mode & 0o700 | FILE_MODE)
