"""Sealed hours and days held in memory as columns (issue 15): a read naming its columns gives what SQLite gives,
for any span, and a change of sealed data (a late reading, a new time zone, another process's correction) is seen
by the next read."""

import zoneinfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.energy.minutes import MinuteAccounting
from homegrid.hub.recorder import Recorder
from homegrid.readings import ReadingFrame
from homegrid.store import SQLiteStore
from homegrid.store.kept_rollups import KeptRollups
from homegrid.timezones import DAY_MS, HOUR_MS, MINUTE_MS

TZ = zoneinfo.ZoneInfo("America/Denver")
T0 = 1_750_032_000_000  # 2025-06-16 00:00 UTC
BARS = ("solar", "home", "grid_import", "grid_export")


def _home(days: float, start: int = T0) -> ReadingFrame:
    t = start + np.arange(int(days * DAY_MS / 60_000), dtype=np.int64) * 60_000
    phase = (t % DAY_MS) / DAY_MS * 2 * np.pi
    solar = np.clip(4000 * np.sin(phase - np.pi / 3), 0, None)
    home = 800 + 300 * np.cos(phase * 3) + (t // 60_000 % 7) * 11.0
    return ReadingFrame(t, {"solar_power": solar, "home_power": home, "grid_power": home - solar})


def _store(path) -> SQLiteStore:
    return SQLiteStore(path, synchronous="OFF", minutes=MinuteAccounting(300.0))


def _same_hours(store: SQLiteStore, a: int, b: int, names=BARS) -> None:
    kept, rows = store.read_rollup("hour", a, b, names), store.read_rollup("hour", a, b)  # None: SQLite's rows
    assert np.array_equal(kept.start_ms, rows.start_ms)
    for n in names:
        assert np.array_equal(kept.columns[n], rows.columns[n], equal_nan=True), n
    (kd, kl), (rd, rl) = store.read_days(a, b, names), store.read_days(a, b)
    assert kl == rl and np.array_equal(kd.start_ms, rd.start_ms)
    for n in names:
        assert np.array_equal(kd.columns[n], rd.columns[n], equal_nan=True), n


@pytest.fixture(scope="module")
def sealed_store(tmp_path_factory):
    store = _store(tmp_path_factory.mktemp("kept") / "hg.db")
    Recorder(store, TZ).ingest_bulk([_home(12)])
    store.seal(T0 + 9 * DAY_MS)
    return store


@settings(max_examples=60, deadline=None)
@given(start=st.integers(-2 * DAY_MS, 13 * DAY_MS), length=st.integers(1, 14 * DAY_MS),
       names=st.lists(st.sampled_from(BARS), min_size=1, max_size=4, unique=True))
def test_any_span_reads_the_same_as_sqlite(sealed_store, start, length, names):
    """Spans before, across and after the kept rows' limit, with columns asked for in any order and at any time
    (a column first asked for is read for every kept row)."""
    _same_hours(sealed_store, T0 + start, T0 + start + length, tuple(names))


def test_rows_are_kept_only_where_no_live_write_reaches(sealed_store):
    kept = sealed_store._kept["hour"]
    sealed_store.read_rollup("hour", T0, T0 + 12 * DAY_MS, BARS)
    copy = kept._copy
    assert copy is not None and copy.limit == T0 + 9 * DAY_MS - HOUR_MS
    assert int(copy.start_ms[-1]) == T0 + 9 * DAY_MS - 2 * HOUR_MS
    assert sealed_store._kept["day"].limit(T0 + 9 * DAY_MS) == T0 + 7 * DAY_MS
    with pytest.raises(ValueError, match="no kept copy"):
        KeptRollups("rollup_minute")


def test_a_late_reading_in_a_sealed_day_is_read_at_once(tmp_path):
    store = _store(tmp_path / "hg.db")
    rec = Recorder(store, TZ)
    rec.ingest_bulk([_home(5)])
    store.seal(T0 + 4 * DAY_MS)
    hour = T0 + DAY_MS + 5 * HOUR_MS
    before = store.read_rollup("hour", hour, hour + HOUR_MS, ("home",)).columns["home"][0]
    gen = store.generation()
    rec.ingest(ReadingFrame(np.array([hour + 30 * MINUTE_MS + 30_000]), {"home_power": np.array([90_000.0])}))
    assert store.generation() > gen
    after = store.read_rollup("hour", hour, hour + HOUR_MS, ("home",)).columns["home"][0]
    assert after > before + 500
    _same_hours(store, T0 - DAY_MS, T0 + 6 * DAY_MS)


def test_sealing_on_grows_the_copy(tmp_path):
    store = _store(tmp_path / "hg.db")
    rec = Recorder(store, TZ)
    rec.ingest_bulk([_home(6)])
    store.seal(T0 + 2 * DAY_MS)
    _same_hours(store, T0, T0 + 7 * DAY_MS)
    held = len(store._kept["hour"]._copy.start_ms)
    store.seal(T0 + 5 * DAY_MS)
    _same_hours(store, T0, T0 + 7 * DAY_MS)
    assert len(store._kept["hour"]._copy.start_ms) == held + 3 * 24


def test_a_new_time_zone_is_read_at_once(tmp_path):
    store = _store(tmp_path / "hg.db")
    Recorder(store, TZ).ingest_bulk([_home(5)])
    store.seal(T0 + 5 * DAY_MS)
    _same_hours(store, 0, 2**62)
    Recorder(store, zoneinfo.ZoneInfo("Asia/Kolkata"))  # hours and days rebuilt on the new clock
    hours = store.read_rollup("hour", 0, 2**62, BARS)
    assert set((hours.start_ms % HOUR_MS).tolist()) == {30 * MINUTE_MS}
    _same_hours(store, 0, 2**62)


def test_another_process_s_correction_is_read_at_once(tmp_path):
    """The copy belongs to one process; a correction written through another connection raises the generation
    in the file, which the next read sees."""
    path = tmp_path / "hg.db"
    reader = _store(path)
    Recorder(reader, TZ).ingest_bulk([_home(5)])
    reader.seal(T0 + 5 * DAY_MS)
    first = reader.read_rollup("hour", T0, T0 + DAY_MS, ("home",))
    writer = _store(path)
    rec = Recorder(writer, TZ)
    rec.quarantine_after(T0 + 12 * HOUR_MS, "a test's correction")
    writer.close()
    again = reader.read_rollup("hour", T0, T0 + DAY_MS, ("home",))
    assert len(again) == 12 < len(first)
    _same_hours(reader, 0, 2**62)


def test_a_read_inside_a_write_sees_the_write(tmp_path):
    """Inside a transaction the writer's own uncommitted rows are read (never kept: they may roll back)."""
    store = _store(tmp_path / "hg.db")
    Recorder(store, TZ).ingest_bulk([_home(5)])
    store.seal(T0 + 5 * DAY_MS)
    store.read_rollup("hour", T0, T0 + 5 * DAY_MS, ("home",))
    with pytest.raises(RuntimeError), store.transaction():
        store.delete_rollup("hour", T0, T0 + DAY_MS)
        assert len(store.read_rollup("hour", T0, T0 + DAY_MS, ("home",))) == 0
        raise RuntimeError("roll back")
    assert len(store.read_rollup("hour", T0, T0 + DAY_MS, ("home",))) == 24
    _same_hours(store, 0, 2**62)


def test_rows_that_changed_without_a_new_generation_are_read_again_whole():
    """A defence, not a path the store takes (its writes there raise the generation): when a column first asked
    for finds other rows than the copy holds, the copy is read again whole rather than given misaligned columns."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE rollup_hour (ts INTEGER PRIMARY KEY, solar REAL, home REAL)")
    db.executemany("INSERT INTO rollup_hour VALUES (?, ?, ?)", [(T0 + k * HOUR_MS, k, 10.0 * k) for k in (0, 1, 3)])
    kept, sealed = KeptRollups("rollup_hour"), T0 + 10 * HOUR_MS
    rows, limit = kept.read(db, T0, sealed, ["solar"], generation=1, sealed_before=sealed)
    assert rows.start_ms.tolist() == [T0, T0 + HOUR_MS, T0 + 3 * HOUR_MS] and limit == sealed - HOUR_MS
    db.execute("INSERT INTO rollup_hour VALUES (?, ?, ?)", (T0 + 2 * HOUR_MS, 2.0, 20.0))  # no new generation
    rows, _ = kept.read(db, T0, sealed, ["home", "solar"], generation=1, sealed_before=sealed)
    assert rows.start_ms.tolist() == [T0 + k * HOUR_MS for k in range(4)]
    assert rows.columns["solar"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert rows.columns["home"].tolist() == [0.0, 10.0, 20.0, 30.0]
