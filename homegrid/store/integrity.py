"""Is the database file sound? ``PRAGMA quick_check`` at start, ``integrity_check`` on request.

``quick_check`` reads every page and checks the b-trees' structure (not that indexes match their
tables): on a year of minute readings it takes a fraction of a second (README), so ``serve`` and the
writing commands run it before they open the store, and a damaged file stops them with the steps
below instead of a traceback, or a hub that fails every write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["CORRUPT_MESSAGES", "check_database", "recovery_steps"]

#: SQLite's words for a damaged file (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``).
CORRUPT_MESSAGES = ("malformed", "file is not a database", "file is encrypted", "database corrupt")
MAX_PROBLEMS = 20


def check_database(path: Path, full: bool = False) -> list[str]:
    """The problems SQLite finds in a database file; empty when it is sound or does not exist yet.

    Parameters
    ----------
    path : Path
        The database file (``homegrid.db``). Opened read-only: the file is never changed.
    full : bool
        ``PRAGMA integrity_check`` (also compares every index with its table; slower) instead of
        ``PRAGMA quick_check``.

    Returns
    -------
    list of str
        SQLite's own lines (at most ``MAX_PROBLEMS``), or the error that stopped the check.
    """
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return []
    pragma = "integrity_check" if full else "quick_check"
    try:
        # read-only, but not immutable: a running hub's WAL is part of what is checked
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        rows = db.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        db.close()
    lines = [str(r[0]) for r in rows]
    return [] if lines == ["ok"] else lines


def recovery_steps(path: Path) -> str:
    """What the owner does about a damaged store, as printed under the problem."""
    path = Path(path)
    return (
        "To recover:\n"
        "  1. stop the hub (and any homegrid command using this data dir)\n"
        f"  2. keep a copy of the damaged files: cp -a {path.parent} {path.parent}.damaged\n"
        f"  3. salvage what SQLite can read: sqlite3 {path} \".recover\" | sqlite3 {path.parent}/recovered.db\n"
        "     (where .recover stops at once with \"sql error\", as SQLite 3.40's does on this schema:\n"
        f"     sqlite3 {path} .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | "
        f"sqlite3 {path.parent}/recovered.db)\n"
        f"     then move {path.name}, {path.name}-wal and {path.name}-shm aside, rename recovered.db {path.name}\n"
        "     and run 'homegrid check --full'\n"
        "  4. or restore the data dir from a backup, or start a new one and re-import an export\n"
        "     (homegrid import FILE) or the device's history"
    )
