"""The embedded store: one SQLite file in WAL mode.

Durability: every write is a transaction; with ``synchronous=FULL`` (the live
hub's setting) a committed transaction survives a power cut, and WAL mode
never leaves a corrupt file after ``kill -9``. The hub commits at least once
a second, so at most the last unflushed second is lost. Bulk writers
(``simulate``, ``import``) use ``synchronous=NORMAL``: still crash-safe, and a
power cut can only lose the newest transactions, never corrupt older ones.

Readers on other threads get their own connections, so the API never blocks
the recorder (WAL lets readers and one writer run together).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from homegrid.readings import ReadingFrame
from homegrid.readings.rollup import (
    MAX_COLUMNS,
    MIN_COLUMNS,
    RAW_COLUMNS,
    ROLLUP_COLUMNS,
    SUM_COLUMNS,
    BucketTable,
)
from homegrid.store.base import STEPS, GridEvidence, Quarantined, Store
from homegrid.store.files import private_dir, private_file
from homegrid.timezones import DAY_MS

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = "1"
_ROLLUP_TABLE = {"minute": "rollup_minute", "hour": "rollup_hour", "day": "rollup_day"}


def _schema() -> str:
    raw = ",\n  ".join(f"{c} REAL" for c in RAW_COLUMNS)
    roll = ",\n  ".join(f"{c} REAL" for c in ROLLUP_COLUMNS)
    return f"""
CREATE TABLE IF NOT EXISTS readings (
  ts INTEGER PRIMARY KEY,
  {raw}
);
CREATE TABLE IF NOT EXISTS rollup_minute (ts INTEGER PRIMARY KEY, {roll});
CREATE TABLE IF NOT EXISTS rollup_hour (ts INTEGER PRIMARY KEY, {roll});
CREATE TABLE IF NOT EXISTS rollup_day (ts INTEGER PRIMARY KEY, date TEXT NOT NULL, {roll});
CREATE TABLE IF NOT EXISTS quarantine (
  id INTEGER PRIMARY KEY, ts INTEGER, source TEXT, field TEXT, value TEXT, reason TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS grid_evidence (
  ts INTEGER NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
  duration_ms INTEGER, intentional INTEGER,
  PRIMARY KEY (ts, source, kind, name)
);
CREATE TABLE IF NOT EXISTS outages (start_ms INTEGER PRIMARY KEY, end_ms INTEGER, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS disturbances (
  ts INTEGER NOT NULL, source TEXT NOT NULL, name TEXT NOT NULL, event TEXT NOT NULL,
  PRIMARY KEY (ts, source, name)
);
"""

#: Columns of ``grid_evidence`` added after its first version (a fault entry's kind and magnitude).
_EVIDENCE_EXTRA = (("disturbance", "TEXT"), ("value", "REAL"), ("unit", "TEXT"))


def _trim_heap() -> None:
    """Return free heap memory to the system where the C library can (glibc's ``malloc_trim``).

    SQLite hands its freed cache pages back to malloc, but glibc keeps them in the process while other
    allocations sit above them, so a hub's resident size would stay at its high-water mark for good.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


class SQLiteStore(Store):
    """Raw readings and rollups in one SQLite database file.

    Parameters
    ----------
    path : Path
        The database file; its folder is created 0700 and the file 0600 (see :mod:`homegrid.store.files`).
    synchronous : str
        ``FULL`` (live hub: committed means on disk) or ``NORMAL`` (bulk writes).
    """

    def __init__(self, path: str | Path, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        private_file(private_dir(self.path.parent) / self.path.name)
        if synchronous not in ("FULL", "NORMAL", "OFF"):
            raise ValueError(f"synchronous must be FULL, NORMAL or OFF, not {synchronous!r}")
        self._synchronous = synchronous
        self._lock = threading.RLock()
        self._local = threading.local()
        self._depth = 0
        self._owner: int | None = None
        self._db = self._connect()
        self._db.executescript(_schema())
        self._add_new_columns()
        if self.get_meta("schema_version") is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'columns'").fetchone()
        self._present: set[str] = set() if row is None or not row[0] else set(row[0].split(","))

    def _add_new_columns(self) -> None:
        """A file written by an older homegrid gains the glossary's newer quantities as empty columns."""
        with self.transaction():
            for table, wanted in (("readings", RAW_COLUMNS), *((t, ROLLUP_COLUMNS) for t in _ROLLUP_TABLE.values())):
                have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for column in wanted:
                    if column not in have:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} REAL")
            have = {row[1] for row in self._db.execute("PRAGMA table_info(grid_evidence)")}
            for column, kind in _EVIDENCE_EXTRA:
                if column not in have:
                    self._db.execute(f"ALTER TABLE grid_evidence ADD COLUMN {column} {kind}")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA cache_size=-65536")
        return db

    def _reader(self) -> sqlite3.Connection:
        if self._owner == threading.get_ident():
            return self._db  # inside our own transaction: see our own writes
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
                self._owner = threading.get_ident()
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if outer:
                    self._owner = None
                    if self._db.in_transaction:  # SQLite rolls back by itself on a full disk
                        self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._owner = None
                self._db.execute("COMMIT")

    # raw readings -------------------------------------------------------------------------

    @staticmethod
    def _upsert(names: tuple[str, ...]) -> str:
        # binding only the columns a frame carries is 3x faster than binding NULLs for the rest;
        # an existing row keeps the values the new one does not carry
        updates = ", ".join(f"{c} = COALESCE(excluded.{c}, {c})" for c in names)
        return (
            f"INSERT INTO readings (ts, {', '.join(names)}) VALUES ({', '.join('?' * (len(names) + 1))}) "
            f"ON CONFLICT(ts) DO UPDATE SET {updates}"
        )

    def write_readings(self, frame: ReadingFrame) -> int:
        n = len(frame)
        names = tuple(c for c in RAW_COLUMNS if c in frame.columns)
        if n == 0 or not names:
            return 0
        cols = [frame.time_ms.tolist()] + [frame.columns[c].tolist() for c in names]  # NaN is stored as NULL
        with self.transaction():
            self._db.executemany(self._upsert(names), zip(*cols, strict=True))
            if not self._present.issuperset(names):
                self._present.update(self._columns(), names)
                self._db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('columns', ?)",
                    (",".join(c for c in RAW_COLUMNS if c in self._present),),
                )
        return n

    def _columns(self) -> tuple[str, ...]:
        """Raw columns ever written (by this process or another one sharing the file)."""
        row = self._reader().execute("SELECT value FROM meta WHERE key = 'columns'").fetchone()
        present = set(row[0].split(",")) if row and row[0] else set()
        return tuple(c for c in RAW_COLUMNS if c in present)

    @staticmethod
    def _frame(rows: list[tuple[Any, ...]], names: tuple[str, ...]) -> ReadingFrame:
        if not rows:
            return ReadingFrame.empty()
        arr = np.array(rows, dtype=np.float64)
        cols = {}
        for j, name in enumerate(names, start=1):
            col = arr[:, j]
            if not np.isnan(col).all():
                cols[name] = col
        return ReadingFrame(arr[:, 0].astype(np.int64), cols)

    def written_columns(self) -> tuple[str, ...]:
        return self._columns()

    def read_readings(self, start_ms: int, end_ms: int, columns: Sequence[str] | None = None) -> ReadingFrame:
        names = self._columns()
        if not names:
            return ReadingFrame.empty()
        if columns is not None:
            unknown = set(columns) - set(RAW_COLUMNS)
            if unknown:
                raise ValueError(f"not raw columns: {', '.join(sorted(unknown))}")
            names = tuple(c for c in names if c in columns)
        rows = self._reader().execute(
            f"SELECT {', '.join(('ts', *names))} FROM readings WHERE ts >= ? AND ts < ? ORDER BY ts", (start_ms, end_ms)
        ).fetchall()
        return self._frame(rows, names)

    def has_readings(self, start_ms: int, end_ms: int) -> bool:
        sql = "SELECT EXISTS (SELECT 1 FROM readings WHERE ts >= ? AND ts < ?)"
        return bool(self._reader().execute(sql, (start_ms, end_ms)).fetchone()[0])

    def readings_at(self, times_ms: np.ndarray) -> ReadingFrame:
        t = np.asarray(times_ms, dtype=np.int64)
        names = self._columns()
        if len(t) == 0 or not names or not self.has_readings(int(t[0]), int(t[-1]) + 1):
            return ReadingFrame.empty()
        db, rows = self._reader(), []
        for a in range(0, len(t), 500):  # one index lookup per time, 500 bound at once
            part = t[a : a + 500].tolist()
            rows += db.execute(f"SELECT ts, {', '.join(names)} FROM readings WHERE ts IN "
                               f"({', '.join('?' * len(part))}) ORDER BY ts", part).fetchall()
        return self._frame(rows, names)

    def neighbours(self, start_ms: int, end_ms: int) -> ReadingFrame:
        db = self._reader()
        out: dict[int, dict[str, float]] = {}
        for name in self._columns():
            for sql, arg in (
                (f"SELECT ts, {name} FROM readings WHERE ts < ? AND {name} IS NOT NULL "
                 "ORDER BY ts DESC LIMIT 1", start_ms),
                (f"SELECT ts, {name} FROM readings WHERE ts >= ? AND {name} IS NOT NULL "
                 "ORDER BY ts LIMIT 1", end_ms),
            ):
                row = db.execute(sql, (arg,)).fetchone()
                if row is not None:
                    out.setdefault(row[0], {})[name] = row[1]
        times = sorted(out)
        names = [n for n in RAW_COLUMNS if any(n in out[t] for t in times)]
        return ReadingFrame(
            np.array(times, dtype=np.int64),
            {n: np.array([out[t].get(n, np.nan) for t in times]) for n in names},
        )

    def latest(self) -> ReadingFrame:
        names = self._columns()
        if not names:
            return ReadingFrame.empty()
        row = self._reader().execute(
            f"SELECT ts, {', '.join(names)} FROM readings ORDER BY ts DESC LIMIT 1"
        ).fetchone()
        return self._frame([row] if row else [], names)

    def time_range(self) -> tuple[int, int] | None:
        row = self._reader().execute("SELECT (SELECT MIN(ts) FROM readings), (SELECT MAX(ts) FROM readings)").fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])

    def delete_readings(self, start_ms: int, end_ms: int) -> int:
        with self.transaction():
            return self._db.execute("DELETE FROM readings WHERE ts >= ? AND ts < ?", (start_ms, end_ms)).rowcount

    def prune_raw(self, before_ms: int, chunk_ms: int = DAY_MS) -> int:
        """Delete raw readings older than ``before_ms`` but the newest of them (counters bridge from it).

        A chunk of ``chunk_ms`` [ms] per transaction, so that the hub's writes go on between them; then the
        page cache the deletes filled is given back (a year pruned at once would keep tens of MB).
        """
        with self._lock:
            oldest, anchor = self._db.execute(  # one subquery each: both in one would scan every row
                "SELECT (SELECT MIN(ts) FROM readings WHERE ts < ?), (SELECT MAX(ts) FROM readings WHERE ts < ?)",
                (before_ms, before_ms)).fetchone()
        if anchor is None or oldest == anchor:
            return 0
        deleted = 0
        for cut in range(oldest + chunk_ms, anchor + chunk_ms, chunk_ms):
            with self.transaction():
                deleted += self._db.execute("DELETE FROM readings WHERE ts < ?", (min(cut, anchor),)).rowcount
        self.release_memory()
        return deleted

    def release_memory(self) -> None:
        """Give the writer's page cache back (``PRAGMA shrink_memory``; it refills as needed) and the freed
        heap to the system."""
        with self._lock:
            self._db.execute("PRAGMA shrink_memory")
        _trim_heap()

    # rollups ------------------------------------------------------------------------------

    @staticmethod
    def _table(step: str) -> str:
        if step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}, not {step!r}")
        return _ROLLUP_TABLE[step]

    def rollup_range(self, step: str) -> tuple[int, int] | None:
        name = self._table(step)
        # two subqueries: SQLite reads a lone MIN or MAX of the key off the b-tree's end, both in one scan all rows
        row = self._reader().execute(f"SELECT (SELECT MIN(ts) FROM {name}), (SELECT MAX(ts) FROM {name})").fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])

    def write_rollup(self, step: str, table: BucketTable, dates: list[str] | None = None) -> None:
        name = self._table(step)
        if len(table) == 0:
            return
        cols = [table.start_ms.tolist()]
        head = ["ts"]
        if step == "day":
            if dates is None or len(dates) != len(table):
                raise ValueError("day rollups need one local date per row")
            cols.append(list(dates))
            head.append("date")
        for c in ROLLUP_COLUMNS:
            cols.append(table.columns[c].tolist())
            head.append(c)
        sql = f"INSERT OR REPLACE INTO {name} ({', '.join(head)}) VALUES ({', '.join('?' * len(head))})"
        with self.transaction():
            self._db.executemany(sql, zip(*cols, strict=True))

    def delete_rollup(self, step: str, start_ms: int, end_ms: int) -> None:
        with self.transaction():
            self._db.execute(f"DELETE FROM {self._table(step)} WHERE ts >= ? AND ts < ?", (start_ms, end_ms))

    def read_rollup(
        self, step: str, start_ms: int, end_ms: int, columns: Sequence[str] | None = None
    ) -> BucketTable:
        names = ROLLUP_COLUMNS if columns is None else tuple(columns)
        unknown = sorted(set(names) - set(ROLLUP_COLUMNS))
        if unknown:
            raise ValueError(f"not rollup columns: {', '.join(unknown)}")
        sql = f"SELECT ts, {', '.join(names)} FROM {self._table(step)} WHERE ts >= ? AND ts < ? ORDER BY ts"
        rows = self._reader().execute(sql, (start_ms, end_ms)).fetchall()
        return self._table_from_rows(rows, names)

    def read_days(self, start_ms: int, end_ms: int) -> tuple[BucketTable, list[str]]:
        """Day rollups and their local dates."""
        sql = (
            f"SELECT ts, {', '.join(ROLLUP_COLUMNS)}, date FROM rollup_day "
            "WHERE ts >= ? AND ts < ? ORDER BY ts"
        )
        rows = self._reader().execute(sql, (start_ms, end_ms)).fetchall()
        return self._table_from_rows([r[:-1] for r in rows]), [r[-1] for r in rows]

    @staticmethod
    def _table_from_rows(rows: list[tuple[Any, ...]], names: Sequence[str] = ROLLUP_COLUMNS) -> BucketTable:
        if not rows:
            return BucketTable(np.empty(0, dtype=np.int64), {c: np.empty(0) for c in names})
        arr = np.array(rows, dtype=np.float64)
        cols = {c: arr[:, j] for j, c in enumerate(names, start=1)}
        return BucketTable(arr[:, 0].astype(np.int64), cols)

    @staticmethod
    def _aggregates(table: str = "") -> str:
        return ", ".join(
            [f"SUM({table}{c})" for c in SUM_COLUMNS]
            + [f"MIN({table}{c})" for c in MIN_COLUMNS]
            + [f"MAX({table}{c})" for c in MAX_COLUMNS]
        )

    def aggregate_minutes(self, start_ms: int, end_ms: int, bucket_ms: int | None = None) -> BucketTable:
        if bucket_ms is None:
            sql = (
                f"SELECT ?, {self._aggregates()} FROM rollup_minute WHERE ts >= ? AND ts < ? "
                "HAVING COUNT(*) > 0"
            )
            rows = self._reader().execute(sql, (start_ms, start_ms, end_ms)).fetchall()
        else:
            # each bucket's minutes by a range search from a table of bucket starts, in time order: half the
            # time of GROUP BY over an expression of ts, which copies every minute row into a sorter first
            # (bench/RESULTS.md, issue 12); the sums add the same minutes in the same order
            db = self._reader()
            db.execute("CREATE TEMP TABLE IF NOT EXISTS bucket_start (b INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM temp.bucket_start")
            db.executemany("INSERT INTO temp.bucket_start (b) VALUES (?)",
                           ((b,) for b in range(start_ms, end_ms, bucket_ms)))
            sql = (
                f"SELECT k.b, {self._aggregates('m.')} FROM temp.bucket_start k JOIN rollup_minute m "
                "ON m.ts >= k.b AND m.ts < k.b + ? AND m.ts < ? GROUP BY k.b ORDER BY k.b"
            )
            rows = db.execute(sql, (bucket_ms, end_ms)).fetchall()
        return self._table_from_rows(rows)

    def sum_rollup(self, step: str, start_ms: int, end_ms: int) -> dict[str, float]:
        with_data = "SUM(covered_s > 0 OR home > 0 OR solar > 0 OR grid_import > 0 OR grid_export > 0)"
        sql = f"SELECT {with_data}, {self._aggregates()} FROM {self._table(step)} WHERE ts >= ? AND ts < ?"
        row = self._reader().execute(sql, (start_ms, end_ms)).fetchone()
        out = {"rows": float(row[0] or 0)}
        for c, v in zip(ROLLUP_COLUMNS, row[1:], strict=True):
            out[c] = float("nan") if v is None else float(v)
        return out

    # quarantine and meta ------------------------------------------------------------------

    def quarantine(self, items: list[Quarantined]) -> None:
        if not items:
            return
        with self.transaction():
            self._db.executemany(
                "INSERT INTO quarantine (ts, source, field, value, reason) VALUES (?, ?, ?, ?, ?)",
                [(q.time_ms, q.source, q.field, q.value, q.reason) for q in items],
            )

    def quarantined(self, limit: int = 100) -> tuple[int, list[Quarantined]]:
        db = self._reader()
        count = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        rows = db.execute(
            "SELECT ts, source, field, value, reason FROM quarantine ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return int(count), [Quarantined(*r) for r in rows]

    def write_evidence(self, items: list[GridEvidence]) -> int:
        if not items:
            return 0
        with self.transaction():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO grid_evidence (ts, source, kind, name, duration_ms, intentional, disturbance, "
                "value, unit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(e.time_ms, e.source, e.kind, e.name, e.duration_ms,
                  None if e.intentional is None else int(e.intentional), e.disturbance or None, e.value,
                  e.unit or None) for e in items],
            )
            new = self._db.total_changes - before
            described = [e for e in items if e.disturbance or e.value is not None]
            if described:  # an entry kept by an older homegrid, without its kind and magnitude, gains them
                self._db.executemany(
                    "UPDATE grid_evidence SET disturbance = ?, value = ?, unit = ? WHERE ts = ? AND source = ? "
                    "AND kind = ? AND name = ? AND disturbance IS NULL AND value IS NULL",
                    [(e.disturbance or None, e.value, e.unit or None, e.time_ms, e.source, e.kind, e.name)
                     for e in described],
                )
            return new

    def read_evidence(self, start_ms: int, end_ms: int) -> list[GridEvidence]:
        rows = self._reader().execute(
            "SELECT ts, source, kind, name, duration_ms, intentional, disturbance, value, unit FROM grid_evidence "
            "WHERE ts >= ? AND ts < ? ORDER BY ts", (start_ms, end_ms),
        ).fetchall()
        return [GridEvidence(t, k, n, d, None if i is None else bool(i), source=s, disturbance=w or "", value=v,
                             unit=u or "") for t, s, k, n, d, i, w, v, u in rows]

    def replace_outages(self, start_ms: int, end_ms: int, events: list[dict[str, Any]]) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM outages WHERE start_ms >= ? AND start_ms < ?", (start_ms, end_ms))
            self._db.executemany(
                "INSERT OR REPLACE INTO outages (start_ms, end_ms, event) VALUES (?, ?, ?)",
                [(int(e["start_ms"]), None if e.get("end_ms") is None else int(e["end_ms"]), json.dumps(e))
                 for e in events],
            )

    def read_outages(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT event FROM outages WHERE start_ms < ? AND (end_ms IS NULL OR end_ms > ? OR "
            "(end_ms = start_ms AND start_ms >= ?)) ORDER BY start_ms", (end_ms, start_ms, start_ms),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def replace_disturbances(self, start_ms: int, end_ms: int, items: list[dict[str, Any]]) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM disturbances WHERE ts >= ? AND ts < ?", (start_ms, end_ms))
            self._db.executemany(
                "INSERT OR REPLACE INTO disturbances (ts, source, name, event) VALUES (?, ?, ?, ?)",
                [(int(d["time_ms"]), str(d.get("source", "")), str(d["name"]), json.dumps(d)) for d in items],
            )

    def read_disturbances(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        rows = self._reader().execute(
            "SELECT event FROM disturbances WHERE ts >= ? AND ts < ? ORDER BY ts", (start_ms, end_ms),
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def get_meta(self, key: str) -> str | None:
        row = self._reader().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (after bulk writes)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
        with self._lock:
            try:
                self._db.execute("PRAGMA optimize")
            except sqlite3.OperationalError:
                pass  # the query planner's statistics are a nicety: a full disk must not fail a shutdown for them
            finally:
                self._db.close()
