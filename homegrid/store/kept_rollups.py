"""The sealed rows of an hour or day rollup table held in memory as columns (:class:`KeptRollups`).

A month of hours asked for through SQLite comes back as 700 tuples of Python floats, which costs more than
everything else the reply does; rows that can no longer change are read once and sliced after that. A row is
kept once its whole bin lies before the store's sealed time less the longest bin (an hour, or two days for a
local day), so no write of the live hub reaches it: only a late reading or a correction does, and those raise
the store's generation, which empties the copy. Columns are read when first asked for (the web app's bar
charts ask for 7 of the 25); the copy grows as the sealed time moves on, by the rows between its old and new
limit. At 10 years of hours 7 columns take 5.6 MB.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from homegrid.timezones import DAY_MS, HOUR_MS

__all__ = ["KeptRollups", "KeptRows"]

#: the longest bin of each table [ms]: a row is kept once it starts this long before the sealed time (a local
#: day is 23 to 25 hours; two days leave room for the rare zone that moved its clock by a whole day)
_LONGEST_MS = {"rollup_hour": HOUR_MS, "rollup_day": 2 * DAY_MS}


@dataclass
class KeptRows:
    """Rows in time order: starts [ms UTC], float64 columns, and the local dates of day rows."""

    start_ms: np.ndarray
    columns: dict[str, np.ndarray]
    dates: list[str] | None = None


@dataclass
class _Copy:
    generation: int
    limit: int  # the rows before this start [ms] are held
    start_ms: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    dates: list[str] = field(default_factory=list)


class KeptRollups:
    """The sealed rows of one rollup table (``rollup_hour`` or ``rollup_day``), kept as columns.

    Parameters
    ----------
    table : str
        ``rollup_hour`` or ``rollup_day`` (whose rows carry their local ``date``).
    """

    def __init__(self, table: str) -> None:
        if table not in _LONGEST_MS:
            raise ValueError(f"no kept copy of {table}")
        self.table = table
        self._dated = table == "rollup_day"
        self._copy: _Copy | None = None
        self._lock = threading.Lock()

    def limit(self, sealed_before: int) -> int:
        """Rows starting before this [ms] are kept for a store sealed before ``sealed_before``."""
        return sealed_before - _LONGEST_MS[self.table]

    def read(self, db: sqlite3.Connection, start_ms: int, end_ms: int, names: Sequence[str], generation: int,
             sealed_before: int) -> tuple[KeptRows, int]:
        """The kept rows in ``[start_ms, end_ms)`` (columns ``names``) and where the kept rows end [ms]: the rows
        from there on are the caller's to read. ``db`` is a read snapshot whose ``generation`` and sealed time
        these are."""
        limit = self.limit(sealed_before)
        with self._lock:
            copy = self._copy
            if copy is None or copy.generation != generation or limit < copy.limit:
                copy = self._copy = _Copy(generation, limit)
                self._load(db, copy, names, None, limit)
            else:
                missing = [n for n in names if n not in copy.columns]
                if missing:
                    self._load(db, copy, missing, None, copy.limit)
                if limit > copy.limit:
                    self._load(db, copy, list(copy.columns), copy.limit, limit)
                    copy.limit = limit
            i, j = np.searchsorted(copy.start_ms, (start_ms, min(end_ms, copy.limit)))
            rows = KeptRows(copy.start_ms[i:j], {n: copy.columns[n][i:j] for n in names},
                            copy.dates[i:j] if self._dated else None)
            return rows, copy.limit

    def _load(self, db: sqlite3.Connection, copy: _Copy, names: Sequence[str], after: int | None,
              before: int) -> None:
        """Read columns ``names`` of the rows in ``[after, before)`` (from the first row when None): new columns
        of the rows held (``after`` None), or the rows past the old limit appended to every column."""
        head = ["ts", *(["date"] if self._dated else []), *names]
        where = "ts < ?" if after is None else "ts >= ? AND ts < ?"
        args = (before,) if after is None else (after, before)
        rows = db.execute(f"SELECT {', '.join(head)} FROM {self.table} WHERE {where} ORDER BY ts", args).fetchall()
        width = len(head) - len(names)
        values = (np.array([r[width:] for r in rows], dtype=np.float64).reshape(len(rows), len(names))
                  if names else np.empty((len(rows), 0)))
        starts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        if after is None and copy.columns:
            if not np.array_equal(starts, copy.start_ms):  # rows changed without a new generation: read all again
                fresh = _Copy(copy.generation, before)
                self._load(db, fresh, [*copy.columns, *names], None, before)
                copy.start_ms, copy.columns, copy.dates = fresh.start_ms, fresh.columns, fresh.dates
                return
            copy.columns.update({n: values[:, k].copy() for k, n in enumerate(names)})
            return
        copy.start_ms = np.concatenate([copy.start_ms, starts])
        for k, n in enumerate(names):
            copy.columns[n] = np.concatenate([copy.columns.get(n, np.empty(0)), values[:, k]])
        if self._dated:
            copy.dates = copy.dates + [r[1] for r in rows]
