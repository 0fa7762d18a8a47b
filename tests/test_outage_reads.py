"""What outage detection reads back from the store: the columns it needs, over the rows it needs, with the
same events as detection over every column of every row."""

from __future__ import annotations

import numpy as np
import pytest

from homegrid.energy.outages import detect_grid_events, outage_figures
from homegrid.glossary import GridStatus
from homegrid.hub.outages import DETECTION_COLUMNS, HeldReadings, OutageTracker
from homegrid.readings import GridEvidence, ReadingFrame

T0 = 1_750_000_000_000
DAY = 86_400_000
STEP = 10_000


def _day_of_powers(with_grid: bool) -> ReadingFrame:
    """Two days at 10 s with powers that change every row, two outages (one across midnight with the hub
    down in it), and one still going at the last reading."""
    n = 2 * DAY // STEP
    t = T0 + np.arange(n, dtype=np.int64) * STEP
    rng = np.random.default_rng(12)
    status = np.full(n, float(GridStatus.CONNECTED))
    for a, b in ((3_000, 3_090), (8_600, 8_700), (n - 40, n)):
        status[a:b] = float(GridStatus.ISLANDED)
    cols = {
        "home_power": rng.uniform(200.0, 3000.0, n),
        "solar_power": rng.uniform(0.0, 2000.0, n),
        "battery_power": rng.uniform(-1000.0, 3000.0, n),
        "battery_soc": np.linspace(80.0, 5.0, n),
    }
    if with_grid:
        cols["grid_status"] = status
        cols["grid_voltage"] = np.where(status == GridStatus.ISLANDED, 0.0, 240.0)
    keep = np.ones(n, dtype=bool)
    keep[8_630:8_660] = False  # the hub was down inside the outage across midnight
    return ReadingFrame(t[keep], {k: v[keep] for k, v in cols.items()})


def test_read_readings_takes_columns_and_keeps_every_row(store):
    frame = _day_of_powers(with_grid=True)
    store.write_readings(frame)
    some = store.read_readings(T0, T0 + DAY, columns=["grid_status", "battery_soc"])
    whole = store.read_readings(T0, T0 + DAY)
    assert sorted(some.columns) == ["battery_soc", "grid_status"]
    np.testing.assert_array_equal(some.time_ms, whole.time_ms)
    np.testing.assert_array_equal(some.column("battery_soc"), whole.column("battery_soc"))
    times = store.read_readings(T0, T0 + DAY, columns=["ev_power"])  # never written: the times alone
    np.testing.assert_array_equal(times.time_ms, whole.time_ms)
    assert times.columns == {}
    with pytest.raises(ValueError, match="not raw columns: nonsense"):
        store.read_readings(T0, T0 + DAY, columns=["grid_status", "nonsense"])
    assert "grid_status" in store.written_columns() and "ev_power" not in store.written_columns()


def test_rebuilt_events_equal_detection_and_figures_over_every_column(recorder, store):
    frame = _day_of_powers(with_grid=True)
    recorder.ingest_bulk([frame])
    tracker = OutageTracker(store, recorder.tz, 30_000, 60_000)
    assert tracker.rebuild(T0, T0 + 2 * DAY) == 3
    stored = tracker.report(0, 2**62)["events"]

    found = detect_grid_events(frame.time_ms, frame.column("grid_status"), frame.column("grid_voltage"),
                               max_gap_ms=30_000, merge_gap_ms=60_000).outages
    assert len(found) == 3 and found[-1].end_ms is None
    for event, outage in zip(stored, found, strict=True):
        assert event["start_ms"] == outage.start_ms and event["end_ms"] == outage.end_ms
        for key, value in outage_figures(outage, frame).items():
            assert event[key] == pytest.approx(value, abs=1e-9), key
    assert stored[0]["samples"] > 0 and stored[0]["battery_wh"] > 0


def test_powers_alone_read_no_rows_and_evidence_still_makes_its_event(recorder, store, monkeypatch):
    frame = _day_of_powers(with_grid=False)
    recorder.ingest_bulk([frame])
    tracker = OutageTracker(store, recorder.tz, 30_000, 60_000)
    reads: list[tuple] = []
    real = store.read_readings
    monkeypatch.setattr(store, "read_readings", lambda *a, **k: reads.append((a, k)) or real(*a, **k))
    assert tracker.rebuild(T0, T0 + 2 * DAY) == 0
    assert reads == [], "an import with no grid columns and no evidence has nothing to detect"

    start = T0 + 5 * 3_600_000
    store.write_evidence([GridEvidence(start, "backup_event", "outage", duration_ms=600_000, intentional=False)])
    assert tracker.rebuild(T0, T0 + 2 * DAY) == 1
    [event] = tracker.report(0, 2**62)["events"]
    assert (event["start_ms"], event["end_ms"]) == (start, start + 600_000)
    assert event["samples"] == 60 and event["saved"] is True  # the figures come from the powers around it
    assert all(k.get("columns") is not None for _, k in reads)


def test_held_readings_give_the_events_of_reading_back(recorder, store, monkeypatch):
    """``rebuild(held=...)`` (what ``homegrid simulate`` passes) finds what reading back finds, with stored
    readings on both sides of the held span and an outage across each of its edges."""
    frame = _day_of_powers(with_grid=True)
    recorder.ingest_bulk([frame])
    # held: the middle of the two days, edges inside the outages at rows 3,000 and 8,600
    a, b = int(frame.time_ms[3_050]), int(frame.time_ms[8_610])
    mid = frame.between(a, b)
    held = HeldReadings(a, b, ReadingFrame(mid.time_ms, {c: mid.columns[c] for c in DETECTION_COLUMNS}))
    store.write_evidence([GridEvidence(T0 + DAY // 2, "grid_fault", "FREQ_HIGH")])  # a disturbance inside
    before = OutageTracker(store, recorder.tz, 30_000, 60_000)
    assert before.rebuild(T0, T0 + 2 * DAY) == 3
    expected = (before.report(0, 2**62)["events"], store.read_disturbances(0, 2**62))
    assert len(expected[1]) == 1

    reads: list[tuple[int, int]] = []
    real = store.read_readings

    def spy(start_ms, end_ms, columns=None):
        if columns is not None and "grid_status" in columns:
            reads.append((start_ms, end_ms))
        return real(start_ms, end_ms, columns=columns)

    monkeypatch.setattr(store, "read_readings", spy)
    after = OutageTracker(store, recorder.tz, 30_000, 60_000)
    assert after.rebuild(T0, T0 + 2 * DAY, held) == 3
    assert (after.report(0, 2**62)["events"], store.read_disturbances(0, 2**62)) == expected
    assert reads and all(e <= a or s >= b for s, e in reads)  # the held span was never read back
