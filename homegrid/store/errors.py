"""What a storage error means for the owner: a full disk, a read-only one, a damaged file.

The commands print these as one line (no traceback) and exit 1; the hub logs them.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from homegrid.store.integrity import CORRUPT_MESSAGES

__all__ = ["StorageProblem", "describe"]

_FULL = ("database or disk is full",)
_READ_ONLY = ("attempt to write a readonly database", "unable to open database file", "readonly database")


@dataclass(frozen=True)
class StorageProblem:
    """A one-line explanation (``message``) and its kind: ``full``, ``read-only`` or ``corrupt``."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def describe(exc: BaseException, data_dir: Path | str) -> StorageProblem | None:
    """Explain a storage error in the owner's terms, or None when it is not one (a bug: let it show).

    Parameters
    ----------
    exc : BaseException
        What was raised (``sqlite3.Error`` or ``OSError``, possibly wrapped as the cause of another).
    data_dir : Path or str
        The data directory, named in the explanation.
    """
    found: BaseException | None = exc
    while found is not None and not isinstance(found, (sqlite3.Error, OSError)):
        found = found.__cause__ or found.__context__
    if found is None:
        return None
    exc = found
    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    where = getattr(exc, "filename", None) or data_dir  # an OSError names its file (an export's output)
    if code in (errno.ENOSPC, errno.EDQUOT) or any(m in text for m in _FULL):
        return StorageProblem("full", f"the disk holding {where} is full ({exc}): free some space "
                              f"(df -h {where}) and run it again; what was committed before is kept")
    if isinstance(exc, sqlite3.DatabaseError) and any(m in text for m in CORRUPT_MESSAGES):
        return StorageProblem("corrupt", f"the store in {data_dir} is damaged ({exc}): "
                              "run 'homegrid check' for the recovery steps")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or (
            isinstance(exc, sqlite3.OperationalError) and any(m in text for m in _READ_ONLY)):
        return StorageProblem("read-only", f"cannot use {where} ({exc}): the disk is read-only or the "
                              f"folder is not this user's; check 'ls -ld {where}' and the mount, "
                              "or give another --data-dir")
    return None
