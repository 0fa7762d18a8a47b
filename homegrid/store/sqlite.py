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
    merge_runs,
)
from homegrid.store.base import STEPS, GridEvidence, MinuteAccountant, Quarantined, Store
from homegrid.store.files import private_dir, private_file
from homegrid.store.kept_rollups import KeptRollups
from homegrid.store.sealed import SCHEMA as SEALED_SCHEMA
from homegrid.store.sealed import Columns, DayBlocks, merge_rows
from homegrid.timezones import DAY_MS, MINUTE_MS

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = "1"
#: a sealed day with at most this many raw readings (1.5 a minute) keeps no minute rollups: they would only
#: repeat its readings, and are accounted again from them when read
MINUTE_CADENCE_ROWS = 2160
_SUM_CHUNK_MS = 7 * DAY_MS  # minutes of sealed days summed into buckets at once
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
    minutes : MinuteAccountant, optional
        Accounts minute rollups from raw readings. With it, a sealed day of minute readings keeps no minute
        rollups (they are accounted again when read); without it, every minute rollup is kept.

    Notes
    -----
    Readings and minute rollups arrive in write-ahead tables (``readings``, ``rollup_minute``: rows, cheap to
    upsert every second); :meth:`seal` moves whole UTC days of them into compressed column blocks
    (:mod:`homegrid.store.sealed`), each day in one transaction. Reads merge both. Hours and days stay rows.
    """

    def __init__(self, path: str | Path, synchronous: str = "FULL", minutes: MinuteAccountant | None = None) -> None:
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
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # a new file only; an older one switches at reclaim()
        self._db.executescript(_schema() + SEALED_SCHEMA)
        self._add_new_columns()
        self._minutes = minutes
        self._raw = DayBlocks("raw_block")
        self._sealed_minutes = DayBlocks("minute_block")
        self._kept = {step: KeptRollups(_ROLLUP_TABLE[step]) for step in ("hour", "day")}
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

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """One consistent view for a read of several statements (a day sealed between them is seen once)."""
        db = self._reader()
        if db is self._db or db.in_transaction:
            yield db
            return
        db.execute("BEGIN")
        try:
            with self._raw.memo(), self._sealed_minutes.memo():  # a block read twice in one view is decoded once
                yield db
        finally:
            db.execute("COMMIT")

    # sealing ------------------------------------------------------------------------------

    def sealed_before(self) -> int | None:
        value = self.get_meta("sealed_before")
        return None if value is None else int(value)

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def _changed_sealed(self) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES ('generation', '1') "
                         "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def seal(self, before_ms: int) -> int:
        """Seal the UTC days before ``before_ms``: each day's readings and minute rollups leave the write-ahead
        tables for compressed blocks in one transaction of its own (the hub's writes go on between them; a kill
        leaves every day either sealed or not). Returns the days sealed."""
        cut = before_ms // DAY_MS * DAY_MS
        done = self.sealed_before()
        if done is not None and cut <= done:
            return 0
        sealed = 0
        while True:
            with self.transaction():
                row = self._db.execute("SELECT MIN(t) FROM (SELECT MIN(ts) AS t FROM readings UNION ALL "
                                       "SELECT MIN(ts) FROM rollup_minute)").fetchone()
                day = None if row[0] is None else int(row[0]) // DAY_MS * DAY_MS
                if day is None or day >= cut:
                    self.set_meta("sealed_before", str(cut))
                    break
                self._seal_day(day)
                self.set_meta("sealed_before", str(max(day + DAY_MS, done or 0)))
                sealed += 1
        if sealed:
            self.reclaim()
        return sealed

    def reclaim(self) -> None:
        """Give the pages sealing freed back to the file system once they are a quarter of the file (a store
        written by an older homegrid, its rows now in blocks, shrinks from hundreds of MB to a few)."""
        with self._lock:
            pages, free = (self._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count"))
            if free < max(256, pages // 4):
                return
            if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
                self._db.execute("PRAGMA incremental_vacuum")
            else:  # switching an older file to incremental vacuum takes one full VACUUM
                self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
                self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _seal_day(self, day: int) -> None:
        names = self._columns()
        rows = self._db.execute(f"SELECT ts, {', '.join(names)} FROM readings WHERE ts >= ? AND ts < ? ORDER BY ts",
                                (day, day + DAY_MS)).fetchall() if names else []
        if rows:
            frame = self._frame(rows, names)
            self._raw.merge(self._db, (frame.time_ms, frame.columns))
        minutes = self._db.execute(f"SELECT ts, {', '.join(ROLLUP_COLUMNS)} FROM rollup_minute WHERE ts >= ? AND "
                                   "ts < ? ORDER BY ts", (day, day + DAY_MS)).fetchall()
        if minutes:
            table = self._table_from_rows(minutes)
            self._keep_minutes(day, (table.start_ms, table.columns))
        self._db.execute("DELETE FROM readings WHERE ts >= ? AND ts < ?", (day, day + DAY_MS))
        self._db.execute("DELETE FROM rollup_minute WHERE ts >= ? AND ts < ?", (day, day + DAY_MS))

    def _derives_minutes(self, day: int) -> bool:
        """Whether a sealed day's minute rollups are accounted from its readings when read (kept none)."""
        if self._minutes is None or self._sealed_minutes.count(self._reader(), day):
            return False
        return 0 < self._raw.count(self._reader(), day) <= MINUTE_CADENCE_ROWS

    def _keep_minutes(self, day: int, rows: Columns) -> None:
        """Minute rollups of a sealed day: dropped when they only repeat its readings, else merged into its block
        (a day that held none so far starts from those its readings give, so that none is lost)."""
        readings = self._raw.count(self._db, day)
        if self._minutes is not None and readings and not self._sealed_minutes.count(self._db, day):
            if readings <= MINUTE_CADENCE_ROWS:
                return
            derived = self._derive(day, day + DAY_MS)
            rows = merge_rows((derived.start_ms, derived.columns), rows, replace=True)
        self._sealed_minutes.merge(self._db, rows, replace=True)

    def _derive(self, start_ms: int, end_ms: int, names: Sequence[str] = ROLLUP_COLUMNS) -> BucketTable:
        """Minute rollups (the columns ``names``) of ``[start_ms, end_ms)`` accounted from the raw readings."""
        assert self._minutes is not None
        span = self.time_range()
        if span is None:
            return BucketTable(np.empty(0, dtype=np.int64), {c: np.empty(0) for c in names})
        # the recorder accounts from the first reading's minute to the last one's (its span's margins stay empty)
        start_ms = max(start_ms, span[0] // MINUTE_MS * MINUTE_MS)
        end_ms = max(start_ms, min(end_ms, span[1] // MINUTE_MS * MINUTE_MS + MINUTE_MS))
        margin = self._minutes.margin_ms
        raw = self.read_readings(start_ms - margin, end_ms + margin)
        outer = self.neighbours(start_ms - margin, end_ms + margin)
        table = self._minutes(ReadingFrame.concat([raw, outer]).sorted(), start_ms, end_ms, names)
        return BucketTable(table.start_ms, {c: table.columns[c] for c in names})

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
        with self.transaction():
            cut = self.sealed_before()
            if cut is not None and int(frame.time_ms.min()) < cut:
                late = frame.time_ms < cut  # into sealed days: merged into their blocks
                self._raw.merge(self._db, (frame.time_ms[late], {c: frame.columns[c][late] for c in names}))
                self._changed_sealed()
                frame = frame.take(~late)
            if len(frame):
                cols = [frame.time_ms.tolist()] + [frame.columns[c].tolist() for c in names]  # NaN is stored as NULL
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
        with self._snapshot() as db:
            sealed = self._raw.read(db, start_ms, end_ms, names)
            rows = db.execute(f"SELECT {', '.join(('ts', *names))} FROM readings WHERE ts >= ? AND ts < ? "
                              "ORDER BY ts", (start_ms, end_ms)).fetchall()
        return self._with_sealed(sealed, self._frame(rows, names))

    @staticmethod
    def _with_sealed(sealed: Columns, table: ReadingFrame) -> ReadingFrame:
        """Sealed rows and write-ahead rows as one frame (a time in both: the write-ahead row's values win)."""
        t, cols = sealed
        if len(t) == 0:
            return table
        if len(table):
            t, cols = merge_rows((t, cols), (table.time_ms, table.columns))
        return ReadingFrame(t, {n: c for n, c in cols.items() if not np.isnan(c).all()})

    def has_readings(self, start_ms: int, end_ms: int) -> bool:
        sql = "SELECT EXISTS (SELECT 1 FROM readings WHERE ts >= ? AND ts < ?)"
        with self._snapshot() as db:
            if db.execute(sql, (start_ms, end_ms)).fetchone()[0]:
                return True
            for day in self._raw.days(db, start_ms, end_ms):
                t = self._raw.read(db, max(start_ms, day), min(end_ms, day + DAY_MS), ())[0]
                if len(t):
                    return True
        return False

    def readings_at(self, times_ms: np.ndarray) -> ReadingFrame:
        t = np.asarray(times_ms, dtype=np.int64)
        names = self._columns()
        if len(t) == 0 or not names or not self.has_readings(int(t[0]), int(t[-1]) + 1):
            return ReadingFrame.empty()
        with self._snapshot() as db:
            if self._raw.days(db, int(t[0]), int(t[-1]) + 1):
                return super().readings_at(t)  # runs of nearby times, read from the blocks a run at a time
            rows = []
            for a in range(0, len(t), 500):  # one index lookup per time, 500 bound at once
                part = t[a : a + 500].tolist()
                rows += db.execute(f"SELECT ts, {', '.join(names)} FROM readings WHERE ts IN "
                                   f"({', '.join('?' * len(part))}) ORDER BY ts", part).fetchall()
        return self._frame(rows, names)

    def neighbours(self, start_ms: int, end_ms: int) -> ReadingFrame:
        out: dict[int, dict[str, float]] = {}
        names = self._columns()
        with self._snapshot() as db:
            cut = self.sealed_before()
            first, last = db.execute("SELECT (SELECT MIN(ts) FROM readings), (SELECT MAX(ts) FROM readings)").fetchone()
            before: dict[str, tuple[int, float]] = {}
            after: dict[str, tuple[int, float]] = {}
            # sealed samples are all older than the write-ahead table's (a reading before the cut goes into its
            # block): before the span, a table sample is the nearer; after it, a sealed one (before the cut)
            if cut is not None and end_ms < cut:
                after.update(self._raw.edges(db, names, end_ms, before=False))
            for name in names:
                if first is not None and first < start_ms:
                    row = db.execute(f"SELECT ts, {name} FROM readings WHERE ts < ? AND {name} IS NOT NULL "
                                     "ORDER BY ts DESC LIMIT 1", (start_ms,)).fetchone()
                    if row is not None:
                        before[name] = (row[0], row[1])
                if last is not None and last >= end_ms and name not in after:
                    row = db.execute(f"SELECT ts, {name} FROM readings WHERE ts >= ? AND {name} IS NOT NULL "
                                     "ORDER BY ts LIMIT 1", (end_ms,)).fetchone()
                    if row is not None:
                        after[name] = (row[0], row[1])
            if cut is not None:
                missing = [n for n in names if n not in before]
                if missing:
                    before.update(self._raw.edges(db, missing, start_ms, before=True))
        for side in (before, after):
            for name, (t, v) in side.items():
                out.setdefault(int(t), {})[name] = v
        times = sorted(out)
        found = [n for n in RAW_COLUMNS if any(n in out[t] for t in times)]
        return ReadingFrame(
            np.array(times, dtype=np.int64),
            {n: np.array([out[t].get(n, np.nan) for t in times]) for n in found},
        )

    def latest(self) -> ReadingFrame:
        names = self._columns()
        if not names:
            return ReadingFrame.empty()
        with self._snapshot() as db:
            row = db.execute(f"SELECT ts, {', '.join(names)} FROM readings ORDER BY ts DESC LIMIT 1").fetchone()
            sealed = self._raw.time_range(db)
            if sealed is not None and (row is None or sealed[1] >= row[0]):
                return self.read_readings(sealed[1], sealed[1] + 1)  # nothing newer is in the write-ahead table
        return self._frame([row] if row else [], names)

    def time_range(self) -> tuple[int, int] | None:
        with self._snapshot() as db:
            row = db.execute("SELECT (SELECT MIN(ts) FROM readings), (SELECT MAX(ts) FROM readings)").fetchone()
            spans = [s for s in (self._raw.time_range(db), None if row[0] is None else (row[0], row[1])) if s]
        if not spans:
            return None
        return int(min(s[0] for s in spans)), int(max(s[1] for s in spans))

    def delete_readings(self, start_ms: int, end_ms: int) -> int:
        with self.transaction():
            sealed = self._raw.delete(self._db, start_ms, end_ms)
            if sealed:
                self._changed_sealed()
            return sealed + self._db.execute("DELETE FROM readings WHERE ts >= ? AND ts < ?",
                                             (start_ms, end_ms)).rowcount

    def prune_raw(self, before_ms: int, chunk_ms: int = DAY_MS) -> int:
        """Delete raw readings older than ``before_ms`` but the newest of them (counters bridge from it).

        A chunk of ``chunk_ms`` [ms] per transaction, so that the hub's writes go on between them; then the
        page cache the deletes filled is given back (a year pruned at once would keep tens of MB). A sealed day
        whose minute rollups were accounted from its readings keeps them as a block first.
        """
        with self._lock:
            oldest, anchor = self._db.execute(  # one subquery each: both in one would scan every row
                "SELECT (SELECT MIN(ts) FROM readings WHERE ts < ?), (SELECT MAX(ts) FROM readings WHERE ts < ?)",
                (before_ms, before_ms)).fetchone()
            sealed = self._raw.time_range(self._db)
        if sealed is not None and sealed[0] < before_ms:
            around = self.neighbours(before_ms, before_ms).time_ms
            older = [int(t) for t in around[around < before_ms]] + ([int(anchor)] if anchor is not None else [])
            anchor = max(older) if older else None
            oldest = sealed[0] if oldest is None else min(oldest, sealed[0])
        if anchor is None or oldest == anchor:
            return 0
        deleted = 0
        for cut in range(oldest + chunk_ms, anchor + chunk_ms, chunk_ms):
            with self.transaction():
                end = min(cut, anchor)
                for day in self._raw.days(self._db, oldest, end):
                    if self._derives_minutes(day):
                        derived = self._derive(day, day + DAY_MS)
                        self._sealed_minutes.merge(self._db, (derived.start_ms, derived.columns))
                sealed_rows = self._raw.delete(self._db, oldest, end)
                if sealed_rows:
                    self._changed_sealed()
                deleted += sealed_rows + self._db.execute("DELETE FROM readings WHERE ts < ?", (end,)).rowcount
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
        with self._snapshot() as db:
            # two subqueries: SQLite reads a lone MIN or MAX of the key off the b-tree's end, both in one scan all
            row = db.execute(f"SELECT (SELECT MIN(ts) FROM {name}), (SELECT MAX(ts) FROM {name})").fetchone()
            spans = [] if row is None or row[0] is None else [(int(row[0]), int(row[1]))]
            if step == "minute":
                spans += [s for s in (self._sealed_minutes.time_range(db), self._raw.time_range(db)) if s]
        if not spans:
            return None
        # a day whose minutes are accounted from its readings: the minutes of its first and last reading
        return min(s[0] for s in spans) // MINUTE_MS * MINUTE_MS, max(s[1] for s in spans) // MINUTE_MS * MINUTE_MS

    def write_rollup(self, step: str, table: BucketTable, dates: list[str] | None = None) -> None:
        name = self._table(step)
        if len(table) == 0:
            return
        with self.transaction():
            if step != "minute":
                self._touch_kept(step, int(table.start_ms.min()))
            if step == "minute":
                cut = self.sealed_before()
                if cut is not None and int(table.start_ms[0]) < cut:
                    sealed = table.start_ms < cut
                    days = table.start_ms[sealed] // DAY_MS * DAY_MS
                    for day in np.unique(days).tolist():
                        pick = np.flatnonzero(sealed)[days == day]
                        self._keep_minutes(day, (table.start_ms[pick], {c: table.columns[c][pick]
                                                                        for c in ROLLUP_COLUMNS}))
                    table = BucketTable(table.start_ms[~sealed], {c: v[~sealed] for c, v in table.columns.items()})
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
            self._db.executemany(sql, zip(*cols, strict=True))

    def _touch_kept(self, step: str, first_ms: int) -> None:
        """A write of hour or day rows from ``first_ms`` on: one reaching rows a reader may hold in memory (a
        correction, a new time zone) raises the generation, as a change of sealed readings does."""
        cut = self.sealed_before()
        if cut is not None and first_ms < self._kept[step].limit(cut):
            self._changed_sealed()

    def delete_rollup(self, step: str, start_ms: int, end_ms: int) -> None:
        """Delete rollup rows (a sealed day's minutes accounted from its readings go with its readings only)."""
        with self.transaction():
            self._db.execute(f"DELETE FROM {self._table(step)} WHERE ts >= ? AND ts < ?", (start_ms, end_ms))
            if step != "minute":
                self._touch_kept(step, start_ms)
            if step == "minute" and self._sealed_minutes.delete(self._db, start_ms, end_ms):
                self._changed_sealed()

    def read_rollup(
        self, step: str, start_ms: int, end_ms: int, columns: Sequence[str] | None = None
    ) -> BucketTable:
        names = ROLLUP_COLUMNS if columns is None else tuple(columns)
        unknown = sorted(set(names) - set(ROLLUP_COLUMNS))
        if unknown:
            raise ValueError(f"not rollup columns: {', '.join(unknown)}")
        with self._snapshot() as db:
            if step != "minute":
                self._table(step)  # refuses a step that is not one
                return self._rollup_rows(db, step, start_ms, end_ms, names, kept=columns is not None)[0]
            sql = f"SELECT ts, {', '.join(names)} FROM rollup_minute WHERE ts >= ? AND ts < ? ORDER BY ts"
            table = self._table_from_rows(db.execute(sql, (start_ms, end_ms)).fetchall(), names)
            sealed = self._sealed_minute_rows(db, start_ms, end_ms, names)
        if len(sealed[0]) == 0:
            return table
        t, cols = merge_rows(sealed, (table.start_ms, table.columns), replace=True) if len(table) else sealed
        return BucketTable(t, cols)

    def _rollup_rows(self, db: sqlite3.Connection, step: str, start_ms: int, end_ms: int, names: Sequence[str],
                     kept: bool) -> tuple[BucketTable, list[str]]:
        """Hour or day rollups in ``[start_ms, end_ms)`` and, for days, their local dates. With ``kept`` (a read
        naming its columns, outside a write), the sealed rows come from their copy in memory
        (:mod:`homegrid.store.kept_rollups`)."""
        dated = step == "day"
        sql = (f"SELECT ts, {', '.join(names)}{', date' if dated else ''} FROM {_ROLLUP_TABLE[step]} "
               "WHERE ts >= ? AND ts < ? ORDER BY ts")
        copy = self._kept[step]
        meta = {} if not kept or db is self._db else dict(
            db.execute("SELECT key, value FROM meta WHERE key IN ('sealed_before', 'generation')"))
        cut = meta.get("sealed_before")
        if cut is None or start_ms >= copy.limit(int(cut)):
            rows = db.execute(sql, (start_ms, end_ms)).fetchall()
            if not dated:
                return self._table_from_rows(rows, names), []
            return self._table_from_rows([r[:-1] for r in rows], names), [r[-1] for r in rows]
        held, limit = copy.read(db, start_ms, end_ms, names, int(meta.get("generation") or 0), int(cut))
        table, dates = BucketTable(held.start_ms, held.columns), held.dates or []
        if end_ms <= limit:
            return table, dates
        rest, rest_dates = self._rollup_rows(db, step, limit, end_ms, names, kept=False)
        if len(rest) == 0:
            return table, dates
        return (BucketTable(np.concatenate([table.start_ms, rest.start_ms]),
                            {n: np.concatenate([table.columns[n], rest.columns[n]]) for n in names}),
                dates + rest_dates)

    def _sealed_minute_rows(self, db: sqlite3.Connection, start_ms: int, end_ms: int, names: Sequence[str]) -> Columns:
        """The minute rollups of sealed days in ``[start_ms, end_ms)``: kept in blocks or accounted from readings."""
        kept = self._sealed_minutes.read(db, start_ms, end_ms, names)
        if self._minutes is None:
            return kept
        derived = [d for d in self._raw.days(db, start_ms, end_ms) if self._derives_minutes(d)]
        if not derived:
            return kept
        parts = [kept] if len(kept[0]) else []
        runs = np.split(np.array(derived), np.flatnonzero(np.diff(derived) != DAY_MS) + 1)
        for run in runs:  # consecutive days in one pass (at most a month: it holds every minute in memory)
            for first in range(0, len(run), 31):
                days = run[first : first + 31]
                table = self._derive(max(start_ms, int(days[0])), min(end_ms, int(days[-1]) + DAY_MS), names)
                parts.append((table.start_ms, {n: table.columns[n] for n in names}))
        t = np.concatenate([p[0] for p in parts])
        order = np.argsort(t, kind="stable")
        return t[order], {n: np.concatenate([p[1][n] for p in parts])[order] for n in names}

    def read_days(self, start_ms: int, end_ms: int,
                  columns: Sequence[str] | None = None) -> tuple[BucketTable, list[str]]:
        """Day rollups (only ``columns`` when given) and their local dates."""
        names = ROLLUP_COLUMNS if columns is None else tuple(columns)
        unknown = sorted(set(names) - set(ROLLUP_COLUMNS))
        if unknown:
            raise ValueError(f"not rollup columns: {', '.join(unknown)}")
        with self._snapshot() as db:
            return self._rollup_rows(db, "day", start_ms, end_ms, names, kept=columns is not None)

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
        cut = self.sealed_before()
        if cut is not None and start_ms < cut:  # sealed minutes are not rows SQL can sum
            return self._sum_minutes(start_ms, end_ms, bucket_ms)
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

    def _sum_minutes(self, start_ms: int, end_ms: int, bucket_ms: int | None) -> BucketTable:
        """:meth:`aggregate_minutes` in numpy, about a week of minutes at a time (a chunk holds whole buckets), so
        that months of minutes accounted from sealed readings never sit in memory at once."""
        size = max(1, _SUM_CHUNK_MS // bucket_ms) * bucket_ms if bucket_ms else _SUM_CHUNK_MS
        parts = []
        for c0 in range(start_ms, end_ms, size):
            minutes = self.read_rollup("minute", c0, min(c0 + size, end_ms))
            if len(minutes) == 0:
                continue
            step = bucket_ms or end_ms - start_ms
            bucket = (minutes.start_ms - start_ms) // step
            first = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
            parts.append(BucketTable(start_ms + bucket[first] * step, merge_runs(minutes, first).columns))
        if not parts:
            return BucketTable(np.empty(0, dtype=np.int64), {c: np.empty(0) for c in ROLLUP_COLUMNS})
        table = BucketTable(np.concatenate([p.start_ms for p in parts]),
                            {c: np.concatenate([p.columns[c] for p in parts]) for c in ROLLUP_COLUMNS})
        return table if bucket_ms else merge_runs(table, np.zeros(1, dtype=np.int64))

    def sum_rollup(self, step: str, start_ms: int, end_ms: int) -> dict[str, float]:
        cut = self.sealed_before()
        if step == "minute" and cut is not None and start_ms < cut:
            minutes = self.read_rollup("minute", start_ms, end_ms)
            busy = np.zeros(len(minutes), dtype=bool)
            for name in ("covered_s", "home", "solar", "grid_import", "grid_export"):
                busy |= minutes.columns[name] > 0
            total = merge_runs(minutes, np.zeros(1, dtype=np.int64)).columns if len(minutes) else {}
            return {"rows": float(busy.sum()), **{name: float(total[name][0]) if total else float("nan")
                                                  for name in ROLLUP_COLUMNS}}
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
