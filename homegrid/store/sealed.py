"""Sealed days in SQLite: a table of column blocks (:mod:`homegrid.store.columns`), one row per UTC day.

A block holds every row of its day; a write into a sealed day decodes the block, merges the new rows in (a time
already kept keeps the values the new row does not carry, as the write-ahead table's upsert does) and writes the
block again, in the caller's transaction. For the raw readings a side table keeps each column's first and last
sample of each day, so that the sample before or after a time is found without decoding the days between.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from homegrid.store.columns import TIME, Block, decode, encode
from homegrid.timezones import DAY_MS

__all__ = ["SCHEMA", "Columns", "DayBlocks", "merge_rows"]

#: rows: times [ms UTC] and float64 columns of the same length
Columns = tuple[np.ndarray, dict[str, np.ndarray]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS raw_block (
  day INTEGER PRIMARY KEY, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, rows INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS raw_edge (
  name TEXT NOT NULL, day INTEGER NOT NULL, first_ts INTEGER NOT NULL, first_value REAL NOT NULL,
  last_ts INTEGER NOT NULL, last_value REAL NOT NULL, PRIMARY KEY (name, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute_block (
  day INTEGER PRIMARY KEY, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, rows INTEGER NOT NULL,
  data BLOB NOT NULL
);
"""


def merge_rows(old: Columns, new: Columns, replace: bool = False) -> Columns:
    """Rows of ``old`` and ``new`` by time; at a time in both, each column takes the new value unless it is NaN
    (``replace``: the new row replaces the old one whole)."""
    t_old, c_old = old
    t_new, c_new = new
    t = np.union1d(t_old, t_new)
    i_old = np.searchsorted(t, t_old)
    i_new = np.searchsorted(t, t_new)
    cols = {}
    for name in dict.fromkeys([*c_old, *c_new]):
        col = np.full(len(t), np.nan)
        if name in c_old:
            col[i_old] = c_old[name]
        if name in c_new:
            fresh = c_new[name]
            keep = np.ones(len(fresh), dtype=bool) if replace else ~np.isnan(fresh)
            col[i_new[keep]] = fresh[keep]
        elif replace:
            col[i_new] = np.nan
        cols[name] = col
    return t, cols


def _cut(rows: Columns, keep: np.ndarray) -> Columns:
    t, cols = rows
    return t[keep], {n: c[keep] for n, c in cols.items()}


class DayBlocks:
    """The sealed days of one table (``raw_block`` with its edges, or ``minute_block``).

    Parameters
    ----------
    table : str
        ``raw_block`` or ``minute_block``.
    """

    def __init__(self, table: str) -> None:
        if table not in ("raw_block", "minute_block"):
            raise ValueError(f"no such block table: {table}")
        self.table = table
        self._edges = table == "raw_block"
        self._local = threading.local()

    @contextmanager
    def memo(self) -> Iterator[None]:
        """Within this block (one thread's read-only view), a day's block and its columns are decoded once."""
        self._local.memo = {}
        try:
            yield
        finally:
            self._local.memo = None

    # reading ------------------------------------------------------------------------------

    def days(self, db: sqlite3.Connection, start_ms: int, end_ms: int) -> list[int]:
        """The sealed days holding a row in ``[start_ms, end_ms)``, by time."""
        sql = f"SELECT day FROM {self.table} WHERE day > ? AND day < ? AND last_ts >= ? AND first_ts < ? ORDER BY day"
        return [r[0] for r in db.execute(sql, (start_ms - DAY_MS, end_ms, start_ms, end_ms))]

    def block(self, db: sqlite3.Connection, day: int) -> Block | None:
        memo: dict[int, Block | None] | None = getattr(self._local, "memo", None)
        if memo is not None and day in memo:
            return memo[day]
        row = db.execute(f"SELECT data FROM {self.table} WHERE day = ?", (day,)).fetchone()
        blk = None if row is None else decode(row[0])
        if memo is not None:
            memo[day] = blk
        return blk

    def read(self, db: sqlite3.Connection, start_ms: int, end_ms: int,
             names: Sequence[str] | None = None) -> Columns:
        """The rows in ``[start_ms, end_ms)`` (only ``names`` when given; a name a block lacks is all NaN)."""
        times, parts = [], []
        for day in self.days(db, start_ms, end_ms):
            blk = self.block(db, day)
            assert blk is not None
            t = blk.column(TIME)
            a, b = np.searchsorted(t, [start_ms, end_ms])
            if a == b:
                continue
            times.append(t[a:b])
            wanted = blk.names if names is None else [n for n in names if n in blk.index]
            parts.append({n: blk.column(n)[a:b] for n in wanted})
        return _concat(times, parts, names)

    def count(self, db: sqlite3.Connection, day: int) -> int:
        row = db.execute(f"SELECT rows FROM {self.table} WHERE day = ?", (day,)).fetchone()
        return 0 if row is None else int(row[0])

    def time_range(self, db: sqlite3.Connection) -> tuple[int, int] | None:
        row = db.execute(f"SELECT (SELECT first_ts FROM {self.table} ORDER BY day LIMIT 1), "
                         f"(SELECT last_ts FROM {self.table} ORDER BY day DESC LIMIT 1)").fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def edges(self, db: sqlite3.Connection, names: Sequence[str], at_ms: int,
              before: bool) -> dict[str, tuple[int, float]]:
        """Each raw column's last sample before ``at_ms`` (``before``) or first at or after it: name -> (time,
        value), for the columns that have one. The day holding ``at_ms`` is decoded once; the days beyond it are
        looked up in the edge table."""
        day = at_ms // DAY_MS * DAY_MS
        out: dict[str, tuple[int, float]] = {}
        blk = self.block(db, day)
        if blk is not None:
            t = blk.column(TIME)
            cut = int(np.searchsorted(t, at_ms))  # the rows before it are before at_ms
            for name in names:
                if name not in blk.index:
                    continue
                v = blk.column(name)
                i = cut - 1 if before else cut  # the nearest row, most often the sample itself
                if not 0 <= i < len(v) or np.isnan(v[i]):
                    pick = np.flatnonzero(~np.isnan(v[:cut] if before else v[cut:]))
                    if not len(pick):
                        continue
                    i = int(pick[-1]) if before else cut + int(pick[0])
                out[name] = (int(t[i]), float(v[i]))
        sql = ("SELECT last_ts, last_value FROM raw_edge WHERE name = ? AND day < ? ORDER BY day DESC LIMIT 1"
               if before else
               "SELECT first_ts, first_value FROM raw_edge WHERE name = ? AND day > ? ORDER BY day LIMIT 1")
        for name in names:
            if name not in out:
                row = db.execute(sql, (name, day)).fetchone()
                if row is not None:
                    out[name] = (int(row[0]), float(row[1]))
        return out

    # writing ------------------------------------------------------------------------------

    def merge(self, db: sqlite3.Connection, rows: Columns, replace: bool = False) -> None:
        """Merge rows into their sealed days (new days are sealed from these rows alone; ``replace``: a new row
        replaces a kept one at its time whole, as a rollup row does)."""
        t, _ = rows
        if len(t) == 0:
            return
        days = t // DAY_MS * DAY_MS
        for day in np.unique(days).tolist():
            part = _cut(rows, days == day)
            blk = self.block(db, day)
            if blk is not None:
                part = merge_rows((blk.column(TIME), blk.columns()), part, replace)
            self._put(db, day, part)

    def delete(self, db: sqlite3.Connection, start_ms: int, end_ms: int) -> int:
        """Remove the rows in ``[start_ms, end_ms)``; returns how many."""
        removed = 0
        for day in self.days(db, start_ms, end_ms):
            blk = self.block(db, day)
            assert blk is not None
            t = blk.column(TIME)
            keep = (t < start_ms) | (t >= end_ms)
            removed += int((~keep).sum())
            self._put(db, day, _cut((t, blk.columns()), keep))
        return removed

    def _put(self, db: sqlite3.Connection, day: int, rows: Columns) -> None:
        t, cols = rows
        db.execute(f"DELETE FROM {self.table} WHERE day = ?", (day,))
        if self._edges:
            db.execute("DELETE FROM raw_edge WHERE day = ?", (day,))
        if len(t) == 0:
            return
        db.execute(f"INSERT INTO {self.table} (day, first_ts, last_ts, rows, data) VALUES (?, ?, ?, ?, ?)",
                   (day, int(t[0]), int(t[-1]), len(t), encode(t, cols)))
        if self._edges:
            edges: list[tuple[Any, ...]] = []
            for name, col in cols.items():
                has = np.flatnonzero(~np.isnan(col))
                if len(has):
                    i, j = int(has[0]), int(has[-1])
                    edges.append((name, day, int(t[i]), float(col[i]), int(t[j]), float(col[j])))
            db.executemany("INSERT INTO raw_edge (name, day, first_ts, first_value, last_ts, last_value) "
                           "VALUES (?, ?, ?, ?, ?, ?)", edges)


def _concat(times: list[np.ndarray], parts: list[dict[str, np.ndarray]], names: Sequence[str] | None) -> Columns:
    if not times:
        return np.empty(0, dtype=np.int64), {n: np.empty(0) for n in names or ()}
    t = np.concatenate(times)
    wanted = list(dict.fromkeys(n for p in parts for n in p)) if names is None else list(names)
    cols = {n: np.concatenate([p.get(n, np.full(len(tt), np.nan)) for p, tt in zip(parts, times, strict=True)])
            for n in wanted}
    return t, cols
