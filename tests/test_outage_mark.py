"""The outage detection high-water mark: owed detection is never dropped, and the mark never passes it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from homegrid.hub.outages import CHECKED_KEY
from homegrid.readings import to_ms
from tests.conftest import steady_frame
from tests.test_outage_tracking import CONNECTED, ISLANDED, Clock, Gateway, Heard, _hub


def _poll(hub, clock, gateway, status) -> None:
    gateway.status = status
    clock.now += timedelta(seconds=5)
    asyncio.run(hub.poll_once())
    hub.flush()


def test_a_blip_whose_detection_was_throttled_is_detected_when_the_grid_is_already_back(tmp_path):
    clock, heard = Clock(), Heard()
    gateway = Gateway(clock)
    hub = _hub(tmp_path, clock, gateway, heard)
    hub.prepare()
    for _ in range(12):
        _poll(hub, clock, gateway, CONNECTED)
    hub._outages_checked = time.monotonic()  # a detection just ran: the next one waits a few seconds
    _poll(hub, clock, gateway, ISLANDED)
    blip = to_ms(clock.now)
    for _ in range(3):
        _poll(hub, clock, gateway, CONNECTED)
    assert hub.outages.checked_ms < blip, "the mark must not pass readings detection still owes"
    hub._outages_checked = 0.0  # the few seconds have passed; the grid has been fine since the blip
    _poll(hub, clock, gateway, CONNECTED)
    [event] = hub.outages.report(0, 2**62)["events"]
    assert event["start_ms"] <= blip < event["end_ms"]
    assert hub.outages.checked_ms == to_ms(clock.now)
    assert [k for k, _ in heard.events] == ["outage_ended"]
    hub.store.close()


def test_importing_older_history_moves_the_mark_back_until_its_detection_is_stored(recorder, store):
    from homegrid.hub.outages import OutageTracker

    tracker = OutageTracker(store, recorder.tz, 30_000, 0)
    t0 = 1_750_000_000_000
    recorder.ingest_bulk([steady_frame(t0 + 86_400_000, 60, home_power=1000.0, grid_status=1.0)])
    tracker.rebuild(t0 + 86_400_000, t0 + 86_400_000 + 3_600_000)
    assert tracker.checked_ms == t0 + 86_400_000 + 3_600_000 - 1

    recorder.ingest_bulk([steady_frame(t0, 60, home_power=1000.0, grid_status=2.0)])  # a day earlier, islanded
    assert store.get_meta(CHECKED_KEY) == str(t0 - 1)  # committed with the readings: a kill here is resumed
    assert tracker.resume() == 1
    assert [e["start_ms"] for e in tracker.report(0, 2**62)["events"]] == [t0]
    assert tracker.checked_ms == t0 + 86_400_000 + 59 * 60_000


def test_a_rebuild_day_that_starts_in_a_gap_inside_an_outage_does_not_store_its_second_half_again(recorder, store):
    """Rebuilt a day at a time, an outage from one day into the next with the hub down across midnight is one
    event, as the whole store holds it: the second day's window, starting in the gap, reads back to the outage's
    first part instead of taking what follows the gap for an outage of its own."""
    from homegrid.energy.outages import detect_outages
    from homegrid.hub.outages import OutageTracker

    day = 86_400_000
    t0 = 1_750_000_000_000
    step = 10_000
    before = steady_frame(t0 + 20 * 3_600_000, (4 * 3_600_000 - 600_000) // step, step, grid_status=ISLANDED,
                          home_power=800.0)
    after = steady_frame(t0 + day + 1_200_000, (2 * 3_600_000 - 1_200_000) // step, step, grid_status=ISLANDED,
                         home_power=800.0)
    back = steady_frame(t0 + day + 2 * 3_600_000, 360, step, grid_status=CONNECTED, home_power=800.0)
    recorder.ingest_bulk([before, after, back])
    tracker = OutageTracker(store, recorder.tz, 30_000, 0)
    tracker.rebuild(t0, t0 + 2 * day)
    stored = tracker.report(0, 2**62)["events"]
    frame = store.read_readings(0, 2**62)
    [whole] = detect_outages(frame.time_ms, frame.column("grid_status"), max_gap_ms=30_000, merge_gap_ms=0)
    assert [(e["start_ms"], e["end_ms"]) for e in stored] == [(whole.start_ms, whole.end_ms)]
    assert "hub_down_during" in stored[0]["evidence"]
