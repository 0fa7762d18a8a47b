"""The recorder keeps minute, hour and local-day rollups in step with raw readings."""

import zoneinfo
from datetime import UTC, date, datetime

import numpy as np
import pytest

from homegrid.hub.queries import Queries
from homegrid.hub.recorder import Recorder
from homegrid.readings import ReadingFrame, to_ms
from homegrid.readings.model import InvalidReading, validate_value
from homegrid.timezones import local_day_bounds

from .conftest import NEW_YORK, steady_frame

H = 3_600_000


def _ms(*args) -> int:
    return to_ms(datetime(*args, tzinfo=UTC))


def test_minutes_hours_and_days_agree(recorder, store):
    start = _ms(2025, 6, 1, 4)  # local midnight in New York (EDT)
    recorder.ingest_bulk([steady_frame(start, 2 * 1440 + 1, solar_power=600, home_power=1200, grid_power=600)])
    minutes = store.sum_rollup("minute", 0, 2**62)
    hours = store.sum_rollup("hour", 0, 2**62)
    days = store.sum_rollup("day", 0, 2**62)
    for key in ("solar", "home", "grid_import", "solar_to_home", "grid_to_home"):
        assert minutes[key] == pytest.approx(hours[key]) == pytest.approx(days[key])
    assert days["home"] == pytest.approx(1200 * 48)
    assert days["solar_to_home"] == pytest.approx(600 * 48)
    assert days["rows"] == 2
    assert days["unaccounted"] == pytest.approx(0, abs=1e-6)


def test_daylight_saving_days_have_23_and_25_hours(recorder, store):
    for day, hours in ((date(2025, 3, 9), 23), (date(2025, 11, 2), 25)):
        a, b = local_day_bounds(day, NEW_YORK)
        assert (b - a) == hours * H
        recorder.ingest_bulk([steady_frame(a - H, (b - a) // 60_000 + 121, home_power=1000, grid_power=1000)])
        rows, labels = store.read_days(a, b)
        assert labels == [day.isoformat()]
        assert rows.columns["home"][0] == pytest.approx(1000 * hours)


def test_counters_bridge_a_gap_the_hub_was_down_for(recorder, store):
    start = _ms(2025, 6, 1, 12)
    # 10 minutes of polling, 3 hours down, 10 more minutes; the house drew 1 kW throughout
    before = steady_frame(start, 11, home_power=1000)
    before.columns["home_energy_imported"] = 50_000 + np.arange(11) * 1000 / 60
    after_start = start + 10 * 60_000 + 3 * H
    after = steady_frame(after_start, 11, home_power=1000)
    after.columns["home_energy_imported"] = 50_000 + (after_start - start) / H * 1000 + np.arange(11) * 1000 / 60
    recorder.ingest(before)
    recorder.ingest(after)
    total = store.sum_rollup("minute", 0, 2**62)
    expected = (after.columns["home_energy_imported"][-1] - 50_000)
    assert total["home"] == pytest.approx(expected, rel=1e-9)
    assert total["home"] == pytest.approx(1000 * (3 + 20 / 60), rel=1e-9)
    # power alone does not guess across the gap: only the 20 polled minutes are covered
    assert total["covered_s"] == pytest.approx(20 * 60)


def test_power_only_gap_is_not_bridged(recorder, store):
    start = _ms(2025, 6, 1, 12)
    recorder.ingest(steady_frame(start, 11, home_power=1000))
    recorder.ingest(steady_frame(start + 2 * H, 11, home_power=1000))
    total = store.sum_rollup("minute", 0, 2**62)
    assert total["home"] == pytest.approx(1000 * 20 / 60)


def test_counter_reset_is_detected_and_energy_kept(recorder, store):
    start = _ms(2025, 6, 1, 12)
    f = steady_frame(start, 6)
    f.columns["grid_energy_imported"] = np.array([9000.0, 9100, 9200, 50, 150, 250])
    recorder.ingest(f)
    total = store.sum_rollup("minute", 0, 2**62)
    assert total["grid_import"] == pytest.approx(200 + 50 + 200)
    assert recorder.counter_resets >= 1


def test_live_ingest_one_reading_at_a_time_matches_bulk(tmp_path):
    from homegrid.store import SQLiteStore

    start = _ms(2025, 6, 1, 12)
    t = start + np.arange(200, dtype=np.int64) * 5_000
    p = 1000 + 500 * np.sin(np.arange(200) / 10)
    frame = ReadingFrame(t, {"home_power": p, "grid_power": p})
    bulk = Recorder(SQLiteStore(tmp_path / "a.db"), NEW_YORK)
    bulk.ingest_bulk([frame])
    live = Recorder(SQLiteStore(tmp_path / "b.db"), NEW_YORK)
    for i in range(200):
        live.ingest(ReadingFrame(t[i : i + 1], {"home_power": p[i : i + 1], "grid_power": p[i : i + 1]}))
    a = bulk.store.read_rollup("minute", 0, 2**62)
    b = live.store.read_rollup("minute", 0, 2**62)
    np.testing.assert_allclose(a.columns["home"], b.columns["home"], rtol=1e-12)
    assert bulk.store.sum_rollup("day", 0, 2**62)["home"] == pytest.approx(
        live.store.sum_rollup("day", 0, 2**62)["home"]
    )


def test_changing_the_time_zone_rebuilds_local_days(store):
    rec = Recorder(store, NEW_YORK)
    start = _ms(2025, 6, 1, 0)
    rec.ingest_bulk([steady_frame(start, 3 * 1440, home_power=1000, grid_power=1000)])
    _, labels_ny = store.read_days(0, 2**62)
    Recorder(store, zoneinfo.ZoneInfo("Asia/Tokyo"))
    table, labels = store.read_days(0, 2**62)
    assert labels != labels_ny
    a, _b = local_day_bounds(date(2025, 6, 2), zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert int(table.start_ms[labels.index("2025-06-02")]) == a
    assert table.columns["home"].sum() == pytest.approx(1000 * (3 * 24 - 1 / 60))


def test_report_for_local_dates(recorder, store):
    a, _ = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    recorder.ingest_bulk([steady_frame(a, 3 * 1440 + 1, solar_power=500, home_power=2000, grid_power=1500,
                                       ev_power=1000)])
    rep = Queries(store, NEW_YORK).report(date(2025, 6, 1), date(2025, 6, 2))
    assert rep["days_with_data"] == 2
    assert rep["energy_wh"]["home"] == pytest.approx(2000 * 48)
    assert rep["self_powered_percent"] == pytest.approx(25.0)
    assert rep["ev_sources_wh"]["solar"] == pytest.approx(250 * 48)
    assert rep["ev_sources_wh"]["grid"] == pytest.approx(750 * 48)


def test_hours_follow_half_hour_zones(store):
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    rec = Recorder(store, kolkata)
    a, _ = local_day_bounds(date(2025, 6, 1), kolkata)
    rec.ingest_bulk([steady_frame(a, 1441, home_power=1000, grid_power=1000)])
    hours = store.read_rollup("hour", 0, 2**62)
    covered = hours.columns["covered_s"] > 0
    assert covered.sum() == 24
    assert int(hours.start_ms[0]) == a  # local midnight, 18:30 UTC
    np.testing.assert_allclose(hours.columns["home"][covered], 1000)


def test_counter_events_are_counted_once_across_live_rebuilds(recorder, store):
    start = _ms(2025, 6, 1, 12)
    values = [1000.0, 1001, 1002, 1003 + 5e6, 1004, 1005, 10.0, 11, 12, 13, 14, 15, 16, 17, 18]  # a jump, a reset
    for i, v in enumerate(values):
        recorder.ingest(ReadingFrame(np.array([start + i * 5000]), {"grid_energy_imported": np.array([v])}))
    assert recorder.counter_resets == 1
    assert recorder.counter_quarantined == 1
    count, items = store.quarantined()
    assert count == 1 and items[0].field == "grid_energy_imported" and "impossible jump" in items[0].reason
    # the jump counts nothing; the reset's new value is counted from zero
    assert store.sum_rollup("minute", 0, 2**62)["grid_import"] == pytest.approx(5 + 18)


@pytest.mark.parametrize("chunk", [97, 1000, 5000])
def test_bulk_in_memory_accounting_equals_accounting_from_the_database(tmp_path, chunk):
    from homegrid.store import SQLiteStore

    rng = np.random.default_rng(chunk)
    n = 12_000
    t = _ms(2025, 6, 1) + np.cumsum(rng.integers(1_000, 20_000, n))
    t[6000:] += 2 * H  # a gap longer than max_gap in the middle
    p = 1000 + 800 * np.sin(np.arange(n) / 300) + rng.normal(0, 50, n)
    counter = 5e6 + np.cumsum(np.clip(p, 0, None) * 10 / 3600)
    counter[rng.random(n) < 0.7] = np.nan  # sparse counter samples
    counter[9000:] -= 4.9e6  # a reset
    frame = ReadingFrame(t, {"home_power": p, "grid_power": p - 300, "solar_power": np.full(n, 300.0),
                             "home_energy_imported": counter})
    bulk = Recorder(SQLiteStore(tmp_path / "bulk.db"), NEW_YORK)
    bulk.ingest_bulk(frame.between(int(t[i]), int(t[min(i + chunk, n - 1)]) + (i + chunk >= n))
                     for i in range(0, n, chunk))
    ref_store = SQLiteStore(tmp_path / "ref.db")
    ref_store.write_readings(frame)
    ref = Recorder(ref_store, NEW_YORK)
    ref.rebuild(int(t[0]), int(t[-1]))
    a = bulk.store.read_rollup("minute", 0, 2**62)
    b = ref_store.read_rollup("minute", 0, 2**62)
    assert a.start_ms.tolist() == b.start_ms.tolist()
    for col in ("home", "grid_import", "solar_to_home", "covered_s"):
        np.testing.assert_allclose(a.columns[col], b.columns[col], rtol=1e-9, atol=1e-9, err_msg=col)
    days = bulk.store.sum_rollup("day", 0, 2**62)
    assert days["home"] == pytest.approx(ref_store.sum_rollup("day", 0, 2**62)["home"])


def test_time_zone_change_rebuilds_days_from_minutes_after_raw_is_pruned(store):
    rec = Recorder(store, NEW_YORK)
    start = _ms(2025, 6, 1, 0)
    rec.ingest_bulk([steady_frame(start, 3 * 1440, home_power=1000, grid_power=1000)])
    rec.prune(retention_days=1, now_ms=start + 3 * 86_400_000)
    assert store.time_range()[0] > start + 86_400_000  # the first day's raw readings are gone
    Recorder(store, zoneinfo.ZoneInfo("Asia/Tokyo"))
    table, _ = store.read_days(0, 2**62)
    assert table.columns["home"].sum() == pytest.approx(1000 * (3 * 24 - 1 / 60))


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [("ev_charging_state", "charging", 4.0), ("ev_charging_state", "No_Power", 6.0), ("ev_charging_state", 5, 5.0),
     ("ev_at_home", True, 1.0), ("ev_at_home", 0, 0.0), ("grid_status", "islanded", 2.0)],
)
def test_status_and_flag_values(name, raw, expected):
    assert validate_value(name, raw) == expected


@pytest.mark.parametrize(("name", "raw"), [("ev_charging_state", 9), ("ev_charging_state", "parked"),
                                           ("ev_at_home", 0.5), ("ev_at_home", "yes"), ("grid_status", 7)])
def test_bad_status_and_flag_values_are_refused(name, raw):
    with pytest.raises(InvalidReading, match=name):
        validate_value(name, raw)


def test_minute_edges_equal_union_and_membership():
    """The rollup writer's bucket edges: what ``np.union1d`` and ``np.isin`` give, for runs with gaps."""
    from homegrid.energy.minutes import minute_edges as _minute_edges

    rng = np.random.default_rng(3)
    minute = 60_000
    for _ in range(50):
        runs, t = [], int(rng.integers(0, 10**6)) * minute
        for _ in range(int(rng.integers(1, 6))):
            n = int(rng.integers(1, 30))
            runs.append(t + minute * np.arange(n, dtype=np.int64))
            t += (n + int(rng.integers(0, 4))) * minute  # 0: the next run touches this one
        starts = np.concatenate(runs)
        edges, real = _minute_edges(starts)
        np.testing.assert_array_equal(edges, np.union1d(starts, starts + minute))
        np.testing.assert_array_equal(real, np.isin(edges[:-1], starts))
