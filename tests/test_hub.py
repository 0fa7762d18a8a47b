"""The hub's poll loop: device failures back off and recover, bad values are quarantined."""

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from homegrid.cli import main
from homegrid.config import Config
from homegrid.devices import Device, DeviceError
from homegrid.hub.service import Hub
from homegrid.hub.throttle import ThrottledWarning
from homegrid.readings import Reading, to_ms


class ScriptedDevice(Device):
    """Answers each poll from a script: a dict of values, or an exception to raise."""

    name = "scripted"

    def __init__(self, clock, script):
        self.clock = clock
        self.script = list(script)

    async def poll(self) -> Reading:
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        when = step.pop("_time", None) or self.clock()
        return Reading(when, step)


class Clock:
    def __init__(self):
        self.now = datetime(2025, 6, 1, 12, tzinfo=UTC)

    def __call__(self):
        return self.now

    def tick(self, seconds=5):
        self.now += timedelta(seconds=seconds)


def _hub(tmp_path, script):
    clock = Clock()
    hub = Hub(Config(), tmp_path, device=ScriptedDevice(clock, script), clock=clock)
    return hub, clock


def run(coro):
    return asyncio.run(coro)


def test_failures_back_off_then_recover_and_are_visible(tmp_path):
    hub, clock = _hub(tmp_path, [
        {"home_power": 1000.0, "grid_power": 1000.0},
        DeviceError("timeout"), DeviceError("HTTP 500"), TimeoutError("read timed out"),
        {"home_power": 1200.0, "grid_power": 1200.0},
    ])
    results = []
    backoffs = []
    for _ in range(5):
        results.append(run(hub.poll_once()))
        backoffs.append(hub.health.backoff_s)
        clock.tick()
    assert results == [True, False, False, False, True]
    assert backoffs[1] < backoffs[2] < backoffs[3] and backoffs[4] == 0
    status = hub.status()["device"]
    assert status["errors"] == 3 and status["consecutive_errors"] == 0
    assert "read timed out" in status["last_error"]
    assert hub.flush() == 2
    hub.store.close()


def test_nan_and_impossible_values_are_quarantined_not_stored(tmp_path):
    hub, _clock = _hub(tmp_path, [{"home_power": float("nan"), "grid_power": 500.0, "battery_soc": 180.0}])
    run(hub.poll_once())
    hub.flush()
    raw = hub.store.read_readings(0, 2**62)
    assert list(raw.columns) == ["grid_power"]
    count, items = hub.store.quarantined()
    assert count == 2 and {(q.field, q.value) for q in items} == {("home_power", "nan"), ("battery_soc", "180.0")}
    hub.store.close()


def test_a_value_refused_on_every_poll_is_warned_about_once_and_every_refusal_is_kept(tmp_path, caplog):
    hub, clock = _hub(tmp_path, [{"home_power": float("nan"), "grid_power": 500.0 + i} for i in range(50)])
    with caplog.at_level(logging.DEBUG, logger="homegrid"):
        for _ in range(50):
            run(hub.poll_once())
            clock.tick()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "quarantined" in r.getMessage()]
    assert len(warnings) == 1 and "home_power" in warnings[0].getMessage()
    held = [r for r in caplog.records if r.levelno == logging.DEBUG and "quarantined home_power" in r.getMessage()]
    assert len(held) == 49
    assert hub.store.quarantined(0)[0] == 50
    assert hub.flush() == 50
    hub.store.close()


def test_clock_jumps_are_quarantined(tmp_path):
    clock_probe = Clock()
    future = clock_probe.now + timedelta(days=3)
    past = clock_probe.now - timedelta(hours=1)
    hub, clock = _hub(tmp_path, [
        {"home_power": 1.0},
        {"home_power": 2.0, "_time": future},
        {"home_power": 3.0, "_time": past},
    ])
    for _ in range(3):
        run(hub.poll_once())
        clock.tick()
    hub.flush()
    assert hub.store.read_readings(0, 2**62).columns["home_power"].tolist() == [1.0]
    count, items = hub.store.quarantined()
    assert count == 2, "one row per reading refused for its time"
    assert {(q.field, q.value) for q in items} == {("reading", '{"home_power": 2.0}'),
                                                   ("reading", '{"home_power": 3.0}')}, "the values are kept"
    assert any("future" in q.reason for q in items) and any("went back" in q.reason for q in items)
    device = hub.status()["device"]
    assert device["refused"] == 2 and device["refusing_since"] == future.isoformat()
    hub.store.close()


def test_readings_are_accepted_again_once_the_clock_agrees(tmp_path, caplog):
    clock_probe = Clock()
    past = clock_probe.now - timedelta(hours=1)
    hub, clock = _hub(tmp_path, [{"home_power": 1.0}, *({"home_power": 2.0, "_time": past} for _ in range(3)),
                                 {"home_power": 4.0}])
    with caplog.at_level(logging.INFO, logger="homegrid"):
        for _ in range(5):
            run(hub.poll_once())
            clock.tick()
    hub.flush()
    assert hub.store.read_readings(0, 2**62).columns["home_power"].tolist() == [1.0, 4.0]
    device = hub.status()["device"]
    assert device["refused"] == 3 and device["refusing_since"] is None
    assert any("accepted again" in r.getMessage() and "3 refused" in r.getMessage() for r in caplog.records)
    hub.store.close()


@pytest.mark.parametrize("garbage", [ValueError("half JSON"), OSError("connection refused")])
def test_garbage_never_stops_the_hub(tmp_path, garbage):
    hub, _ = _hub(tmp_path, [garbage, {"home_power": 5.0}])
    assert run(hub.poll_once()) is False
    assert run(hub.poll_once()) is True
    hub.store.close()


def test_virtual_home_backfills_then_resumes_after_downtime(tmp_path):

    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=1.0))
    clock = Clock()
    hub = Hub(config, tmp_path, clock=clock)
    assert hub.backfill() == 1440
    for _ in range(3):
        clock.tick(5)
        assert run(hub.poll_once())
    hub.flush()
    before = hub.store.latest()
    hub.store.close()

    clock.tick(3 * 3600)  # the hub is down for three hours; the home is not
    hub2 = Hub(config, tmp_path, clock=clock)
    assert hub2.backfill() == 0
    assert run(hub2.poll_once())
    hub2.flush()
    after = hub2.store.latest()
    gap_wh = float(after.columns["home_energy_imported"][0] - before.columns["home_energy_imported"][0])
    assert gap_wh > 0
    first = hub2.store.read_readings(0, 2**62).columns["home_energy_imported"][0]
    whole = hub2.store.sum_rollup("minute", 0, 2**62)
    # the counters bridge the gap: everything the home counted is in the rollups
    assert whole["home"] == pytest.approx(float(after.columns["home_energy_imported"][0] - first), rel=1e-9)
    a, b = int(before.time_ms[0]), int(after.time_ms[0])
    gap = hub2.store.sum_rollup("minute", a - a % 60_000 + 60_000, b - b % 60_000)
    assert gap["home"] > 0.9 * gap_wh
    assert gap["covered_s"] == 0  # no power samples were invented for it
    hub2.store.close()


def test_virtual_home_resumes_battery_and_car_where_it_stopped(tmp_path):

    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=0.5))
    clock = Clock()
    hub = Hub(config, tmp_path, clock=clock)
    hub.backfill()
    clock.tick(5)
    assert run(hub.poll_once())
    hub.flush()
    before = hub.store.latest()
    hub.store.close()

    clock.tick(5)
    hub2 = Hub(config, tmp_path, clock=clock)
    assert run(hub2.poll_once())
    hub2.flush()
    after = hub2.store.latest()
    for name in ("battery_soc", "ev_soc"):
        assert float(after.columns[name][0]) == pytest.approx(float(before.columns[name][0]), abs=0.5), name
    hub2.store.close()


def test_a_failing_store_keeps_the_readings_for_the_next_flush(tmp_path):
    hub, clock = _hub(tmp_path, [{"home_power": 1.0}, {"home_power": 2.0}])
    run(hub.poll_once())
    real_ingest = hub.recorder.ingest

    def full_disk(frame):
        raise OSError("No space left on device")

    hub.recorder.ingest = full_disk
    assert hub.flush() == 0
    assert hub.status()["store_errors"] == 1
    clock.tick()
    run(hub.poll_once())
    hub.recorder.ingest = real_ingest
    assert hub.flush() == 2
    assert hub.store.read_readings(0, 2**62).columns["home_power"].tolist() == [1.0, 2.0]
    hub.store.close()


def test_a_held_back_warning_is_counted_in_the_next_one_after_the_period(caplog):
    now = [0.0]
    warn = ThrottledWarning(logging.getLogger("homegrid.test"), period_s=3600, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="homegrid"):
        assert warn.warn("k", "bad %s", "x") is True
        for _ in range(5):
            now[0] += 600
            assert warn.warn("k", "bad %s", "x") is False
        assert warn.warn("other", "bad %s", "y") is True, "each key has its own hour"
        now[0] += 600
        assert warn.warn("k", "bad %s", "x") is True
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["bad x", "bad y", "bad x (5 more like it since the last warning, logged at DEBUG)"]


def test_readings_stored_ahead_of_the_clock_can_be_moved_to_the_quarantine(tmp_path, monkeypatch, capsys):
    """A hub whose clock ran three days ahead stored readings there; with the clock right again it refuses
    every reading (they are not after the newest stored one) and says what to do; quarantine-future moves
    the stored ones aside, keeping their values, and readings are accepted again."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    right = Clock()
    ahead = Clock()
    ahead.tick(3 * 86_400)

    def hub_at(clock, n):
        return Hub(Config(), tmp_path, device=ScriptedDevice(clock, [
            {"home_power": 1000.0 + i, "grid_power": 1000.0 + i} for i in range(n)]), clock=clock)

    def poll(hub, clock, n):
        for _ in range(n):
            run(hub.poll_once())
            clock.tick()
        hub.flush()

    early = hub_at(ahead, 5)
    poll(early, ahead, 5)
    early.store.close()

    refused = hub_at(right, 2)
    poll(refused, right, 2)
    _, items = refused.store.quarantined()
    assert len(items) == 2 and all("homegrid quarantine-future" in q.reason for q in items)
    refused.store.close()

    after = right.now + timedelta(hours=1)
    assert main(["quarantine-future", "--after", after.isoformat(), "--data-dir", str(tmp_path)]) == 0
    assert "moved 5 readings" in capsys.readouterr().out

    fixed = hub_at(right, 3)
    poll(fixed, right, 3)
    stored = fixed.store.read_readings(0, 2**62)
    assert len(stored) == 3 and stored.time_ms.max() < to_ms(after)
    assert len(fixed.store.read_rollup("minute", to_ms(after), 2**62)) == 0
    count, items = fixed.store.quarantined()
    moved = [q for q in items if q.source == "store"]
    assert count == 7 and len(moved) == 5
    assert {json.loads(q.value)["home_power"] for q in moved} == {1000.0, 1001.0, 1002.0, 1003.0, 1004.0}
    fixed.store.close()


def test_a_device_failing_the_same_way_is_warned_about_once_an_hour(tmp_path, caplog):
    hub, clock = _hub(tmp_path, [DeviceError("HTTP 503")] * 6 + [DeviceError("timeout")])
    with caplog.at_level(logging.WARNING, logger="homegrid"):
        for _ in range(7):
            run(hub.poll_once())
            clock.tick()
    warned = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(warned) == 2 and "HTTP 503" in warned[0] and "timeout" in warned[1]
    assert hub.status()["device"]["errors"] == 7, "every failure is still counted"
    hub.store.close()
