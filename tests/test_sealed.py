"""Sealed days (issue 15): compressed column blocks give back every value bit for bit, and a store reads the same
before and after sealing: readings, minute rollups (kept or accounted again from the readings), hours, neighbours;
late readings, deletions and pruning of sealed days keep working."""

import zoneinfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from homegrid.energy.minutes import MinuteAccounting
from homegrid.hub.recorder import SEAL_AFTER_MS, Recorder
from homegrid.readings import ReadingFrame
from homegrid.store import SQLiteStore
from homegrid.store.columns import TIME, decode, encode
from homegrid.store.sealed import merge_rows
from homegrid.timezones import DAY_MS, HOUR_MS, MINUTE_MS

TZ = zoneinfo.ZoneInfo("America/Denver")
T0 = 1_750_032_000_000  # 2025-06-16 00:00 UTC


# ---------------------------------------------------------------- the column codec

@settings(max_examples=200, deadline=None)
@given(bits=hnp.arrays(np.int64, st.integers(0, 300)), times=st.lists(st.integers(-2**62, 2**62), max_size=300))
def test_blocks_give_back_every_bit_pattern(bits, times):
    """Any float64 (NaN payloads, infinities, -0.0, subnormals) and any int64 time come back bit for bit."""
    n = min(len(bits), len(times))
    t = np.array(times[:n], dtype=np.int64)
    values = bits[:n].view(np.float64)
    blk = decode(encode(t, {"home_power": values, "solar_power": values[::-1].copy()}))
    assert blk.rows == n
    assert np.array_equal(blk.column(TIME), t)
    if n and not np.isnan(values).all():
        assert np.array_equal(blk.column("home_power").view(np.int64), bits[:n])
        assert np.array_equal(blk.column("solar_power").view(np.int64), bits[:n][::-1])


def test_block_leaves_out_an_empty_column_and_reads_it_as_nan():
    t = np.arange(5, dtype=np.int64) * MINUTE_MS
    blk = decode(encode(t, {"home_power": np.full(5, np.nan), "grid_power": np.arange(5.0)}))
    assert blk.names == ("grid_power",)
    assert np.isnan(blk.column("home_power")).all()


def test_a_damaged_block_is_refused():
    data = encode(np.arange(3, dtype=np.int64), {"grid_power": np.arange(3.0)})
    with pytest.raises(ValueError, match="not a homegrid column block"):
        decode(b"XXXX" + data[4:])
    with pytest.raises(ValueError, match="damaged column block"):
        decode(data[:-3]).column("grid_power")


def test_merge_keeps_old_values_the_new_row_lacks_unless_replacing():
    old = (np.array([1, 2]), {"a": np.array([1.0, 2.0]), "b": np.array([10.0, 20.0])})
    new = (np.array([2, 3]), {"a": np.array([np.nan, 3.0])})
    t, cols = merge_rows(old, new)
    assert t.tolist() == [1, 2, 3]
    assert cols["a"].tolist()[:2] == [1.0, 2.0] and cols["a"][2] == 3.0
    assert cols["b"][1] == 20.0 and np.isnan(cols["b"][2])
    t, cols = merge_rows(old, new, replace=True)
    assert np.isnan(cols["a"][1]) and np.isnan(cols["b"][1])  # the new row replaced the old one whole


# ---------------------------------------------------------------- a store before and after sealing

def _home(days: float, step_s: int = 60, start: int = T0) -> ReadingFrame:
    t = start + np.arange(int(days * DAY_MS / (step_s * 1000)), dtype=np.int64) * step_s * 1000
    phase = (t % DAY_MS) / DAY_MS * 2 * np.pi
    solar = np.clip(4000 * np.sin(phase - np.pi / 3), 0, None)
    home = 800 + 300 * np.cos(phase * 3) + (t // 60_000 % 7) * 11.0
    grid = home - solar
    return ReadingFrame(t, {
        "solar_power": solar, "home_power": home, "grid_power": grid, "battery_power": np.zeros(len(t)),
        "battery_soc": 50 + 20 * np.sin(phase),
        "grid_energy_imported": 1e6 + np.cumsum(np.clip(grid, 0, None)) * step_s / 3600,
    })


def _store(tmp_path, name="hg.db", minutes=True) -> SQLiteStore:
    return SQLiteStore(tmp_path / name, synchronous="OFF", minutes=MinuteAccounting(300.0) if minutes else None)


def _views(store: SQLiteStore, a: int, b: int) -> dict:
    mid = a + DAY_MS + 7 * HOUR_MS + 12_345
    return {
        "raw": store.read_readings(a, b),
        "cols": store.read_readings(a, b, ["home_power"]),
        "minute": store.read_rollup("minute", a, b),
        "hour": store.read_rollup("hour", a, b),
        "agg": store.aggregate_minutes(a, b, HOUR_MS),
        "total": store.aggregate_minutes(a, b),
        "around": store.neighbours(mid, mid + 5 * HOUR_MS),
        "at": store.readings_at(np.array([a + 60_000, mid // 60_000 * 60_000, b - 60_000], dtype=np.int64)),
        "latest": store.latest(),
        "range": (store.time_range(), store.rollup_range("minute")),
        "has": (store.has_readings(mid, mid + 60_000), store.has_readings(b + 1, b + 10**6)),
    }


def _same(x, y, rel=0.0):
    if isinstance(x, tuple):
        assert x == y
        return
    tx = x.time_ms if hasattr(x, "time_ms") else x.start_ms
    ty = y.time_ms if hasattr(y, "time_ms") else y.start_ms
    assert np.array_equal(tx, ty)
    assert set(x.columns) == set(y.columns)
    for name, col in x.columns.items():
        np.testing.assert_allclose(y.columns[name], col, rtol=rel, atol=0, equal_nan=True, err_msg=name)


@pytest.mark.parametrize(("step_s", "minutes", "kept_blocks"), [(60, True, 0), (5, True, 3), (60, False, 3)])
def test_sealing_changes_no_answer(tmp_path, step_s, minutes, kept_blocks):
    """Minute readings keep no minute rollups once sealed (they are accounted again, equal to 1e-12); 5-second
    readings, or a store without the accounting, keep theirs as blocks."""
    store = _store(tmp_path, minutes=minutes)
    Recorder(store, TZ).ingest_bulk([_home(4, step_s)])
    a, b = T0 - DAY_MS, T0 + 5 * DAY_MS
    before = _views(store, a, b)
    assert store.seal(T0 + 3 * DAY_MS) == 3
    assert store.sealed_before() == T0 + 3 * DAY_MS
    assert store._db.execute("SELECT COUNT(*) FROM readings WHERE ts < ?", (T0 + 3 * DAY_MS,)).fetchone()[0] == 0
    assert store._db.execute("SELECT COUNT(*) FROM minute_block").fetchone()[0] == kept_blocks
    after = _views(store, a, b)
    for key in before:
        _same(before[key], after[key], rel=1e-12 if key in ("minute", "agg", "total") else 0.0)
    assert store.seal(T0 + 3 * DAY_MS) == 0  # already sealed


def test_a_late_reading_merges_into_its_sealed_day_and_raises_the_generation(tmp_path):
    store = _store(tmp_path)
    rec = Recorder(store, TZ)
    rec.ingest_bulk([_home(3)])
    store.seal(T0 + 2 * DAY_MS)
    gen = store.generation()
    t = T0 + DAY_MS + 90 * MINUTE_MS + 30_000  # between two stored minutes of a sealed day
    m0 = t // MINUTE_MS * MINUTE_MS
    home_before = store.read_rollup("minute", m0, m0 + MINUTE_MS).columns["home"][0]
    rec.ingest(ReadingFrame(np.array([t]), {"home_power": np.array([5000.0]), "ev_power": np.array([7000.0])}))
    assert store.generation() > gen
    got = store.read_readings(t - MINUTE_MS, t + MINUTE_MS)
    assert got.time_ms.tolist() == [t - 30_000, t, t + 30_000]
    assert got.columns["home_power"][1] == 5000.0 and got.columns["ev_power"][1] == 7000.0
    assert np.isnan(got.columns["ev_power"][0])
    assert store._db.execute("SELECT COUNT(*) FROM readings WHERE ts = ?", (t,)).fetchone()[0] == 0
    # the minute it falls in is accounted with it
    assert store.read_rollup("minute", m0, m0 + MINUTE_MS).columns["home"][0] > home_before + 30
    # an existing value is replaced, one the new reading lacks is kept
    store.write_readings(ReadingFrame(np.array([t]), {"home_power": np.array([4000.0])}))
    again = store.read_readings(t, t + 1)
    assert again.columns["home_power"][0] == 4000.0 and again.columns["ev_power"][0] == 7000.0


def test_neighbours_reach_across_sealed_days_without_readings(tmp_path):
    store = _store(tmp_path)
    store.write_readings(_home(1))
    store.write_readings(_home(1, start=T0 + 10 * DAY_MS))
    store.seal(T0 + 20 * DAY_MS)
    around = store.neighbours(T0 + 3 * DAY_MS, T0 + 4 * DAY_MS)
    assert around.time_ms.tolist() == [T0 + DAY_MS - MINUTE_MS, T0 + 10 * DAY_MS]
    assert not store.has_readings(T0 + 2 * DAY_MS, T0 + 9 * DAY_MS)
    assert store.has_readings(T0 + 10 * DAY_MS, T0 + 10 * DAY_MS + 1)


@settings(max_examples=25, deadline=None)
@given(holes=st.lists(st.floats(0.0, 0.95), min_size=3, max_size=3), seed=st.integers(0, 2**32 - 1),
       spans=st.lists(st.tuples(st.integers(0, 3 * DAY_MS), st.integers(1, DAY_MS)), min_size=1, max_size=6))
def test_neighbours_of_sparse_columns_are_the_same_sealed(tmp_path_factory, holes, seed, spans):
    """Columns missing from many readings (the nearest row often lacks them): each column's nearest sample on each
    side is the one the write-ahead table gives."""
    rng = np.random.default_rng(seed)
    t = T0 + np.sort(rng.choice(3 * DAY_MS // 1000, 600, replace=False)).astype(np.int64) * 1000
    cols = {}
    for name, hole in zip(("home_power", "grid_power", "battery_soc"), holes, strict=True):
        col = rng.uniform(0, 5000, len(t))
        col[rng.random(len(t)) < hole] = np.nan
        cols[name] = col
    folder = tmp_path_factory.mktemp("sparse")
    plain, sealed = _store(folder, "plain.db"), _store(folder, "sealed.db")
    for store in (plain, sealed):
        store.write_readings(ReadingFrame(t, cols))
    sealed.seal(T0 + 3 * DAY_MS)
    for start, length in spans:
        a = T0 - HOUR_MS + start
        _same(plain.neighbours(a, a + length), sealed.neighbours(a, a + length))


def test_deleting_and_pruning_sealed_days(tmp_path):
    store = _store(tmp_path)
    rec = Recorder(store, TZ)
    rec.ingest_bulk([_home(4)])
    store.seal(T0 + 4 * DAY_MS)
    minutes = store.read_rollup("minute", T0, T0 + DAY_MS)
    assert store.delete_readings(T0 + 2 * DAY_MS, T0 + 2 * DAY_MS + HOUR_MS) == 60
    assert not store.has_readings(T0 + 2 * DAY_MS, T0 + 2 * DAY_MS + HOUR_MS)
    # pruning keeps the minutes the readings gave (as a block now), and the newest reading before the cut
    deleted = store.prune_raw(T0 + DAY_MS + 12 * HOUR_MS)
    assert deleted == 1440 + 12 * 60 - 1
    assert store.time_range()[0] == T0 + DAY_MS + 12 * HOUR_MS - MINUTE_MS
    _same(minutes, store.read_rollup("minute", T0, T0 + DAY_MS), rel=1e-12)
    assert store._db.execute("SELECT COUNT(*) FROM minute_block").fetchone()[0] == 2


def test_recorder_seals_ended_days_but_never_past_the_newest_reading(tmp_path):
    store = _store(tmp_path)
    rec = Recorder(store, TZ)
    rec.ingest_bulk([_home(2.5)])
    assert rec.seal(T0 + 30 * DAY_MS) == 2  # a clock far ahead: sealed up to the day of the newest reading only
    assert store.sealed_before() == T0 + 2 * DAY_MS
    store2 = _store(tmp_path, "b.db")
    rec2 = Recorder(store2, TZ)
    rec2.ingest_bulk([_home(2.5)])
    assert rec2.seal(T0 + 2 * DAY_MS + SEAL_AFTER_MS - 1) == 1  # the second day ended less than SEAL_AFTER ago
    assert rec2.prune(None, T0 + 100 * DAY_MS) == 0  # no retention: kept forever


def test_a_time_zone_change_rebuilds_hours_and_days_of_sealed_days(tmp_path):
    """Hours follow the local clock and days are summed from hours: both are rebuilt, from sealed minutes."""
    from datetime import date

    from homegrid.timezones import local_day_bounds

    store = _store(tmp_path)
    Recorder(store, TZ).ingest_bulk([_home(3)])
    store.seal(T0 + 3 * DAY_MS)
    total = store.sum_rollup("day", 0, 2**62)["home"]
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    Recorder(store, kolkata)
    hours = store.read_rollup("hour", 0, 2**62)
    assert set((hours.start_ms % HOUR_MS).tolist()) == {30 * MINUTE_MS}
    days, labels = store.read_days(0, 2**62)
    assert labels == ["2025-06-16", "2025-06-17", "2025-06-18", "2025-06-19"]
    assert days.start_ms.tolist() == [local_day_bounds(date.fromisoformat(d), kolkata)[0] for d in labels]
    assert days.columns["home"].sum() == pytest.approx(total, rel=1e-12)


def _gappy(days: float) -> ReadingFrame:
    """The home with readings missing for 6, 12 and 20 minutes in each day: gaps bridged or not by max_gap_s."""
    f = _home(days)
    minute = (f.time_ms % DAY_MS) // MINUTE_MS
    keep = ~(((minute >= 300) & (minute < 306)) | ((minute >= 700) & (minute < 712))
             | ((minute >= 1000) & (minute < 1020)))
    return ReadingFrame(f.time_ms[keep], {n: c[keep] for n, c in f.columns.items()})


@pytest.mark.parametrize(("before", "after"), [(300.0, 900.0), (900.0, 300.0)])
def test_a_new_max_gap_accounts_the_history_again_as_a_store_written_with_it(tmp_path, before, after):
    """Sealed days and the write-ahead table alike: the hours, days and minutes after the change are those of a
    store that had the new setting from the start (a longer gap bridges more minutes, a shorter one fewer)."""
    def opened(name: str, gap: float) -> tuple[SQLiteStore, Recorder]:
        store = SQLiteStore(tmp_path / name, synchronous="OFF", minutes=MinuteAccounting(gap))
        return store, Recorder(store, TZ, max_gap_s=gap)

    changed, rec = opened("changed.db", before)
    rec.ingest_bulk([_gappy(3.5)])
    changed.seal(T0 + 2 * DAY_MS)  # two sealed days, the rest in the write-ahead table
    assert changed.get_meta("max_gap_s") == repr(before)
    covered_before = changed.sum_rollup("day", 0, 2**62)["covered_s"]
    changed.close()
    changed, _ = opened("changed.db", after)
    assert changed.get_meta("max_gap_s") == repr(after)
    fresh, rec = opened("fresh.db", after)
    rec.ingest_bulk([_gappy(3.5)])
    fresh.seal(T0 + 2 * DAY_MS)
    for step in ("minute", "hour"):
        a, b = changed.read_rollup(step, 0, 2**62), fresh.read_rollup(step, 0, 2**62)
        assert a.start_ms.tolist() == b.start_ms.tolist(), step
        for name in ("home", "solar", "grid_import", "covered_s"):
            assert np.allclose(a.columns[name], b.columns[name], rtol=1e-12, atol=1e-9, equal_nan=True), (step, name)
    (da, la), (db, lb) = changed.read_days(0, 2**62), fresh.read_days(0, 2**62)
    assert la == lb and np.allclose(da.columns["home"], db.columns["home"], rtol=1e-12)
    covered = changed.sum_rollup("day", 0, 2**62)["covered_s"]
    assert covered == pytest.approx(fresh.sum_rollup("day", 0, 2**62)["covered_s"])
    # the 6- and 12-minute gaps are bridged at 900 s, not at 300 s (the 20-minute one at neither)
    assert (covered > covered_before) == (after > before) and covered != covered_before


def test_sealing_gives_the_freed_pages_back(tmp_path):
    """Rows moved into blocks free most of the file's pages: they go back to the file system."""
    store = _store(tmp_path)
    Recorder(store, TZ).ingest_bulk([_home(10)])
    store.checkpoint()
    before = (tmp_path / "hg.db").stat().st_size
    store.seal(T0 + 10 * DAY_MS)
    store.checkpoint()
    after = (tmp_path / "hg.db").stat().st_size
    assert after < before / 3
    assert store._db.execute("PRAGMA freelist_count").fetchone()[0] < 256
