"""The SQLite store: round trips, merges, retention, quarantine."""

import numpy as np
import pytest

from homegrid.readings import ReadingFrame
from homegrid.store import Quarantined, SQLiteStore

from .conftest import steady_frame


def test_readings_round_trip_with_missing_values(store):
    f = ReadingFrame(
        np.array([1000, 2000, 3000]),
        {"solar_power": np.array([1.0, np.nan, 3.0]), "grid_status": np.array([1.0, 2.0, 1.0])},
    )
    store.write_readings(f)
    back = store.read_readings(0, 10_000)
    assert back.time_ms.tolist() == [1000, 2000, 3000]
    np.testing.assert_array_equal(back.columns["solar_power"], [1.0, np.nan, 3.0])
    assert "home_power" not in back.columns


def test_same_timestamp_merges_columns_from_two_sources(store):
    store.write_readings(ReadingFrame(np.array([5000]), {"solar_power": np.array([100.0])}))
    store.write_readings(ReadingFrame(np.array([5000]), {"home_power": np.array([300.0])}))
    store.write_readings(ReadingFrame(np.array([5000]), {"solar_power": np.array([120.0])}))
    back = store.read_readings(0, 10_000)
    assert back.columns["solar_power"][0] == 120.0
    assert back.columns["home_power"][0] == 300.0


@pytest.mark.parametrize("chunk_ms", [86_400_000, 1000, 1700])
def test_prune_keeps_the_anchor_row_before_the_cut(store, chunk_ms):
    store.write_readings(steady_frame(0, 10, step_ms=1000, home_energy_imported=5.0))
    assert store.prune_raw(0) == 0
    deleted = store.prune_raw(5500, chunk_ms=chunk_ms)
    assert deleted == 5
    assert store.read_readings(0, 100_000).time_ms.tolist() == [5000, 6000, 7000, 8000, 9000]


def test_failed_transaction_leaves_nothing(store):
    try:
        with store.transaction():
            store.write_readings(steady_frame(0, 3, home_power=1.0))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(store.read_readings(0, 10**9)) == 0


def test_quarantine_is_counted_and_kept(store):
    store.quarantine([Quarantined(1, "gw", "grid_power", "nan", "not finite")])
    count, items = store.quarantined()
    assert count == 1 and items[0].field == "grid_power"


def test_data_survives_reopen(tmp_path):
    s = SQLiteStore(tmp_path / "x.db")
    s.write_readings(steady_frame(0, 100, home_power=7.0))
    s.close()
    s2 = SQLiteStore(tmp_path / "x.db")
    assert len(s2.read_readings(0, 10**12)) == 100
    s2.close()


def test_a_file_from_before_the_car_quantities_gains_their_columns(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE readings (ts INTEGER PRIMARY KEY, solar_power REAL)")
    db.execute("INSERT INTO readings VALUES (1000, 5.0)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('columns', 'solar_power')")
    db.commit()
    db.close()
    store = SQLiteStore(path)
    store.write_readings(ReadingFrame(np.array([2000]), {"ev_soc": np.array([55.0])}))
    got = store.read_readings(0, 10_000)
    assert got.columns["solar_power"][0] == 5.0
    assert got.columns["ev_soc"][1] == 55.0
    store.close()


def test_evidence_is_kept_once_and_read_by_time(tmp_path):
    from homegrid.store import GridEvidence

    store = SQLiteStore(tmp_path / "s.db")
    a = GridEvidence(1000, "grid_fault", "PINV_a006_vfCheckUnderFrequency", source="powerwall")
    b = GridEvidence(500, "backup_event", "backup", duration_ms=38_773, intentional=False, source="cloud")
    assert store.write_evidence([a, b]) == 2
    assert store.write_evidence([a]) == 0  # the gateway repeats its log at every poll
    assert store.read_evidence(0, 2000) == [b, a]
    assert store.read_evidence(600, 2000) == [a]
    store.close()


def test_outage_events_replace_by_window_and_ongoing_overlaps_later(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.replace_outages(0, 10_000, [{"start_ms": 1000, "end_ms": 2000, "saved": True},
                                      {"start_ms": 5000, "end_ms": 5000, "saved": True},
                                      {"start_ms": 8000, "end_ms": None}])
    assert [e["start_ms"] for e in store.read_outages(0, 10_000)] == [1000, 5000, 8000]
    assert [e["start_ms"] for e in store.read_outages(1500, 1600)] == [1000]
    assert [e["start_ms"] for e in store.read_outages(50_000, 60_000)] == [8000]  # still going
    store.replace_outages(7000, 10_000, [{"start_ms": 8000, "end_ms": 9000}])
    assert store.read_outages(0, 10_000)[-1] == {"start_ms": 8000, "end_ms": 9000}
    assert store.read_outages(50_000, 60_000) == []
    store.close()


def test_a_frame_gives_back_the_readings_it_was_made_of():
    from datetime import UTC, datetime

    from homegrid.readings import Reading

    rows = [Reading(datetime(2025, 6, 1, 12, 0, s, 1000 * s, tzinfo=UTC), v)
            for s, v in ((0, {"home_power": 1.5}), (1, {"grid_power": -2.0, "home_power": 3.0}), (2, {}))]
    back = list(ReadingFrame.from_readings(rows).readings())
    assert back == rows


def test_the_stored_span_is_read_off_the_keys_ends_not_by_scanning(store, recorder):
    """``time_range`` and ``rollup_range`` answer every API request (spans are cut to the stored data): on a
    store of years they must cost a few b-tree steps, not a scan of every row (``MIN(ts), MAX(ts)`` in one
    SELECT scans; each in its own subquery does not)."""
    from .conftest import steady_frame

    recorder.ingest_bulk([steady_frame(1_750_000_000_000, 20_000, home_power=500.0, grid_power=500.0)])
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    reader = store._reader()
    reader.set_progress_handler(count, 100)  # called every 100 virtual machine instructions
    try:
        for step in ("minute", "hour", "day"):
            assert store.rollup_range(step) is not None
        assert store.time_range() is not None
    finally:
        reader.set_progress_handler(None, 0)
    assert steps[0] < 20, f"{steps[0] * 100} instructions for four spans of 20,000 rows"


def test_minutes_summed_into_buckets_equal_each_bucket_summed_alone(store):
    """``aggregate_minutes`` with buckets (the hour rollups) gives, bucket by bucket, exactly the one-row sum
    over that bucket: the same minutes added in the same order; a bucket with no minutes gives no row."""
    from homegrid.readings.rollup import ROLLUP_COLUMNS
    from homegrid.store.base import BucketTable

    rng = np.random.default_rng(7)
    t0, hour = 1_750_001_800_000, 3_600_000  # buckets at :30, as in a +05:30 zone
    starts = t0 + 60_000 * np.arange(6 * 60, dtype=np.int64)
    starts = starts[(starts < t0 + 2 * hour) | (starts >= t0 + 3 * hour)]  # the third hour holds nothing
    cols = {c: rng.uniform(0.0, 1000.0, len(starts)) / 3.0 for c in ROLLUP_COLUMNS}
    cols["soc_min"][::7] = np.nan
    store.write_rollup("minute", BucketTable(starts, cols))
    table = store.aggregate_minutes(t0 - hour, t0 + 7 * hour, hour)
    assert table.start_ms.tolist() == [t0 + k * hour for k in (0, 1, 3, 4, 5)]
    for i, b in enumerate(table.start_ms.tolist()):
        alone = store.aggregate_minutes(b, b + hour)
        for c in ROLLUP_COLUMNS:
            assert table.columns[c][i] == alone.columns[c][0] or (
                np.isnan(table.columns[c][i]) and np.isnan(alone.columns[c][0])), c
