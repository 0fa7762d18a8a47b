"""Pollers that cannot die silently: any exception in a poll is a failed poll, a task that ends is started
again, and after a failure the next poll comes within a minute."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from homegrid.config import Config
from homegrid.devices import Device, DeviceError
from homegrid.devices.powerwall import PowerwallGateway
from homegrid.devices.tesla import TeslaVehicle
from homegrid.glossary import GridStatus
from homegrid.hub.poller import MAX_BACKOFF_S, DevicePoller, next_due
from homegrid.hub.service import Hub
from homegrid.hub.supervisor import Supervisor
from homegrid.readings import Reading

from .test_powerwall_replies import SAMPLES, RecordedGateway
from .waiting import wait_for_async

RUNNING = SAMPLES / "21.44-foogod" / "running"
BUGS = [TypeError("unhashable type: 'list'"), KeyError("grid_status"),
        AttributeError("'NoneType' object has no attribute 'get'"), ZeroDivisionError("division by zero")]


class Replay(RecordedGateway):
    """The recorded gateway, with some replies of some polls replaced (poll number -> {endpoint: reply})."""

    def __init__(self, replaced: dict[int, dict[str, Any]]) -> None:
        super().__init__(RUNNING)
        self.replaced = replaced
        self.polls = 0

    def poll(self, api: str) -> Any:
        if api == "/api/meters/aggregates":  # the first request of every poll
            self.polls += 1
        return self.replaced.get(self.polls, {}).get(api, super().poll(api))


class Scripted(Device):
    """Each poll the next step of a script: a reading's values, or an exception to raise; then good readings."""

    name = "scripted"

    def __init__(self, script: list[dict[str, float] | BaseException] | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.script = list(script or [])
        self.clock = clock or (lambda: datetime.now(UTC))
        self.polls = 0

    async def poll(self) -> Reading:
        self.polls += 1
        step = self.script.pop(0) if self.script else {"home_power": 1000.0 + self.polls}
        if isinstance(step, BaseException):
            raise step
        return Reading(self.clock(), step)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _hub(tmp_path, device: Device, interval_s: float = 5.0, clock: Callable[[], datetime] | None = None) -> Hub:
    return Hub(Config(), tmp_path, devices=[(device, interval_s)], clock=clock)


async def _run_until(hub: Hub, done: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Run the hub's tasks (as ``serve`` does, without HTTP) until ``done()`` or the timeout, then stop it."""
    task = asyncio.create_task(hub.run_pollers())
    try:
        await wait_for_async(done, timeout=timeout_s, interval=0.01)
    finally:
        hub.stop()
        await asyncio.wait_for(task, 10.0)


# -- the reply of issue 10: {"grid_status": []} -------------------------------------------------------------------

def test_grid_status_list_then_valid_replies_polling_goes_on(tmp_path, caplog):
    client = Replay({2: {"/api/system_status/grid_status": {"grid_status": []}}})
    hub = _hub(tmp_path, PowerwallGateway(client), interval_s=0.02)
    health = hub.health
    with caplog.at_level(logging.WARNING, logger="homegrid"):
        asyncio.run(_run_until(hub, lambda: health.polls >= 6))
    assert health.polls >= 6 and health.errors == 0, "the bad reply is a partial poll, not the end of polling"
    assert health.partial_polls == 1 and health.extra["partial"] == {}
    stored = hub.store.read_readings(0, 2**62)
    assert len(stored) == health.polls, "every poll was recorded, those after the bad reply too"
    status = stored.column("grid_status").tolist()
    assert math.isnan(status[1]) and all(s == GridStatus.CONNECTED for i, s in enumerate(status) if i != 1)
    logged = [r.getMessage() for r in caplog.records if "grid_status" in r.getMessage()]
    assert len(logged) == 1 and "grid_status is []" in logged[0] and "powerwall" in logged[0]
    hub.store.close()


def test_a_parser_bug_on_a_malformed_reply_is_a_failed_poll_counted_and_logged(tmp_path, caplog, monkeypatch):
    """Both layers: were a parser to raise a TypeError again, the poll fails, the hub says so and goes on."""
    import homegrid.devices.powerwall.adapter as adapter

    def old_parser(reply: Any) -> Any:  # what replies.parse_grid_status did before issue 10
        value = reply.get("grid_status")
        if value not in {"SystemGridConnected": 1}:
            raise ValueError(value)
        return GridStatus.CONNECTED

    monkeypatch.setattr(adapter, "parse_grid_status", old_parser)
    client = Replay({2: {"/api/system_status/grid_status": {"grid_status": []}}})
    hub = _hub(tmp_path, PowerwallGateway(client), interval_s=0.02)
    with caplog.at_level(logging.WARNING, logger="homegrid"):
        asyncio.run(_run_until(hub, lambda: hub.health.polls >= 5))
    h = hub.health
    assert h.errors == 1 and h.consecutive_errors == 0 and h.last_ok is not None
    assert "TypeError: unhashable type: 'list'" in h.last_error
    assert len(hub.store.read_readings(0, 2**62)) == h.polls - 1
    errors = [r for r in caplog.records if "TypeError" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is not None, "an unexpected exception is logged with its traceback"
    hub.store.close()


# -- any exception in a poll --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bug", BUGS, ids=lambda e: type(e).__name__)
def test_a_poll_raising_anything_is_a_failed_poll_and_polling_goes_on(tmp_path, caplog, bug):
    clock = Clock()
    device = Scripted([{"home_power": 1.0}, bug, {"home_power": 2.0}, bug, {"home_power": 3.0}], clock)
    hub = _hub(tmp_path, device, clock=clock)
    results = []
    with caplog.at_level(logging.WARNING, logger="homegrid"):
        for _ in range(5):
            results.append(asyncio.run(hub.poll_once()))
            clock.advance(hub.health.backoff_s or 5.0)
    assert results == [True, False, True, False, True]
    h = hub.status()["device"]
    assert h["errors"] == 2 and h["consecutive_errors"] == 0 and h["polls"] == 5
    assert h["last_error"].endswith(f"{type(bug).__name__}: {bug}")
    assert len(h["gaps"]) == 2
    logged = [r for r in caplog.records if type(bug).__name__ in r.getMessage()]
    assert len(logged) == 1, "the same failure again within the hour is not logged again"
    assert logged[0].exc_info is not None and logged[0].exc_info[1] is bug
    assert hub.flush() == 3
    hub.store.close()


@pytest.mark.parametrize("bug", BUGS, ids=lambda e: type(e).__name__)
def test_a_device_raising_anything_keeps_being_polled_by_the_running_hub(tmp_path, bug):
    device = Scripted([bug] * 3 + [{"home_power": 1.0}, bug, bug])
    hub = _hub(tmp_path, device, interval_s=0.01)
    asyncio.run(_run_until(hub, lambda: device.polls >= 10))
    assert device.polls >= 10 and hub.health.errors == 5
    # a loaded machine may wake the 10 ms loop late, and its catch-up poll may fall in the same millisecond as the
    # one before: that reading is not after the stored one, and is quarantined (counted), not lost
    quarantined = hub.store.quarantined()[0]
    assert quarantined <= 2
    assert len(hub.store.read_readings(0, 2**62)) + quarantined == device.polls - 5
    assert hub.health.restarts == 0, "the poll task itself never died"
    hub.store.close()


def test_a_failing_sink_or_evidence_callback_does_not_stop_the_poller(caplog):
    clock = Clock()
    offered: list[Reading] = []
    taken: list[Reading] = []

    def sink(reading: Reading, started: float) -> None:
        offered.append(reading)
        if len(offered) == 1:
            raise RuntimeError("store buffer is gone")
        taken.append(reading)

    device = Scripted(clock=clock)
    device.grid_evidence = lambda: [1]  # type: ignore[attr-defined]
    poller = DevicePoller(device, 5.0, sink, lambda *a: None, clock)
    poller.on_evidence = lambda items: 1 / 0
    with caplog.at_level(logging.WARNING, logger="homegrid"):
        results = []
        for _ in range(3):
            results.append(asyncio.run(poller.poll_once()))
            clock.advance(5.0)
    assert results == [True, True, True], "the device answered every time"
    h = poller.health
    assert h.errors == 0 and h.hub_errors == 3 and "ZeroDivisionError" in h.last_hub_error
    assert len(taken) == 2
    hub_lines = [r for r in caplog.records if "the hub failed to take" in r.getMessage()]
    assert {type(r.exc_info[1]) for r in hub_lines} == {RuntimeError, ZeroDivisionError}


# -- the supervisor -----------------------------------------------------------------------------------------------

def test_a_poll_task_that_ends_or_crashes_is_restarted_and_health_says_so(tmp_path, caplog):
    device = Scripted()
    hub = _hub(tmp_path, device, interval_s=0.01)
    hub.supervisor.first_delay_s = 0.01
    poller = hub.pollers[0]
    real_run = poller.run
    runs: list[int] = []

    async def flaky_run(stopping: asyncio.Event) -> None:
        runs.append(1)
        if len(runs) == 1:
            return  # ends though the hub runs
        if len(runs) == 2:
            await poller.poll_once()
            raise RuntimeError("poll loop bug")
        await real_run(stopping)

    poller.run = flaky_run  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="homegrid"):
        asyncio.run(_run_until(hub, lambda: device.polls >= 5))
    health = hub.status()["devices"][0]
    assert len(runs) == 3 and device.polls >= 5
    assert health["restarts"] == 2 and "RuntimeError: poll loop bug" in health["last_crash"]
    lines = [r for r in caplog.records if r.levelno == logging.ERROR and "poller 0 (scripted)" in r.getMessage()]
    assert len(lines) == 2 and "ended" in lines[0].getMessage() and lines[1].exc_info is not None
    assert len(hub.store.read_readings(0, 2**62)) == device.polls
    hub.store.close()


def test_the_flush_loop_is_restarted_and_readings_still_reach_the_store_while_running(tmp_path):
    device = Scripted()
    hub = _hub(tmp_path, device, interval_s=0.01)
    hub.supervisor.first_delay_s = 0.01
    real_loop = hub._flush_loop
    calls: list[int] = []

    async def flaky_loop() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("flush loop bug")
        await real_loop()

    hub._flush_loop = flaky_loop  # type: ignore[method-assign]
    asyncio.run(_run_until(hub, lambda: len(hub.store.read_readings(0, 2**62)) >= 3))
    assert len(calls) == 2
    tasks = hub.status()["tasks"]
    assert tasks["flush"]["restarts"] == 1 and "OSError: flush loop bug" in tasks["flush"]["last_crash"]
    assert tasks["prune"]["restarts"] == 0
    hub.store.close()


def test_a_crash_loop_waits_longer_and_longer_and_does_not_spin():
    async def scenario() -> tuple[list[float], int]:
        stopping = asyncio.Event()
        sv = Supervisor(stopping, lambda: datetime.now(UTC), first_delay_s=0.02, max_delay_s=0.08)
        calls: list[float] = []

        async def crash() -> None:
            calls.append(time.monotonic())
            raise ValueError("always")

        task = sv.start("crasher", crash)
        await wait_for_async(lambda: len(calls) >= 6, timeout=5.0, interval=0.005, what="six restarts")
        stopping.set()
        await asyncio.wait_for(task, 1.0)
        return calls, sv.records["crasher"].restarts

    calls, restarts = asyncio.run(scenario())
    gaps = [b - a for a, b in pairwise(calls)]
    assert len(calls) == 6 and restarts == 6
    for gap, pause in zip(gaps, [0.02, 0.04, 0.08, 0.08, 0.08], strict=True):
        assert gap >= pause * 0.9, "each restart waits its pause: doubling, then capped; never a spin"


def test_a_task_ending_because_the_hub_stops_is_not_restarted():
    async def scenario() -> int:
        stopping = asyncio.Event()
        sv = Supervisor(stopping, lambda: datetime.now(UTC), first_delay_s=0.01)

        running = asyncio.Event()

        async def until_stopped() -> None:
            running.set()
            await stopping.wait()

        task = sv.start("loop", until_stopped)
        await asyncio.wait_for(running.wait(), 5.0)
        stopping.set()
        await asyncio.wait_for(task, 1.0)
        return sv.records["loop"].restarts

    assert asyncio.run(scenario()) == 0


# -- the pace ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("due", "started", "now", "want"), [
    (0.0, 0.0, 0.2, 5.0),  # on time
    (0.0, 3.0, 3.2, 5.0),  # woke 3 s late: the next poll keeps the pace, the lateness does not add up
    (0.0, 7.0, 7.1, 10.0),  # woke 7 s late: the next slot, not a second poll at once
    (0.0, 23.0, 23.1, 25.0),  # a machine suspended for four steps
    (0.0, 0.0, 6.0, 6.0),  # a poll that took longer than a step: at once
    (0.0, 4.0, 9.5, 9.5),  # one that took 5.5 s, itself more than a step
])
def test_the_next_poll_keeps_the_pace_and_never_comes_twice_in_a_row_after_a_late_wake_up(due, started, now, want):
    assert next_due(due, started, now, 5.0) == pytest.approx(want)


def test_the_pace_after_a_late_wake_up_is_on_the_slots_and_after_now():
    for late in [0.0, 0.5, 4.99, 5.0, 5.01, 12.0, 3600.0]:
        now = 100.0 + late + 0.05  # the poll took 50 ms
        got = next_due(100.0, 100.0 + late, now, 5.0)
        assert now < got <= now + 5.0  # the first slot after it ended
        assert (got - 100.0) / 5.0 == pytest.approx(round((got - 100.0) / 5.0))


# -- the back-off cap ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("interval_s", [1.0, 5.0, 30.0])
def test_the_back_off_never_exceeds_a_minute_for_a_lan_device(interval_s):
    clock = Clock()
    poller = DevicePoller(Scripted([DeviceError("gone")] * 30, clock), interval_s, lambda *a: None,
                          lambda *a: None, clock)
    waits = []
    for _ in range(30):
        assert asyncio.run(poller.poll_once()) is False
        waits.append(poller.health.backoff_s)
    assert MAX_BACKOFF_S == 60.0
    assert max(waits) == 60.0 and waits == sorted(waits)


def test_a_device_polled_less_often_than_the_cap_keeps_its_pace_and_the_car_may_wait_longer():
    clock = Clock()
    slow = DevicePoller(Scripted([DeviceError("gone")] * 3, clock), 120.0, lambda *a: None, lambda *a: None, clock)
    asyncio.run(slow.poll_once())
    assert slow.health.backoff_s == 120.0, "never retried faster than its own pace"

    class Gone:
        async def state(self) -> str:
            raise DeviceError("HTTP 503")

    car = DevicePoller(TeslaVehicle(Gone(), clock=clock), 5.0, lambda *a: None, lambda *a: None, clock)  # type: ignore[arg-type]
    for _ in range(12):
        asyncio.run(car.poll_once())
    assert car.health.backoff_s == 300.0 == TeslaVehicle.max_backoff_s


def test_after_a_long_failure_the_device_is_polled_within_a_minute_of_its_return(tmp_path):
    """Polled as the hub's loop does (each poll one back-off after the last); the device is gone for an hour."""
    clock = Clock()
    start = clock()
    back_at = start + timedelta(hours=1, seconds=7)

    class Gateway(Device):
        name = "gateway"

        async def poll(self) -> Reading:
            if clock() < back_at:
                raise DeviceError("connection refused")
            return Reading(clock(), {"home_power": 500.0})

    poller = DevicePoller(Gateway(), 5.0, lambda *a: None, lambda *a: None, clock)
    times = []
    while True:
        times.append(clock())
        if asyncio.run(poller.poll_once()):
            break
        clock.advance(poller.health.backoff_s)
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    assert max(gaps) == 60.0
    assert timedelta(0) <= times[-1] - back_at <= timedelta(seconds=60)
    assert len(times) < 3600 / 60 + 10, "far fewer polls than at the normal pace (720)"


def test_a_device_trial_reports_a_parser_bug_instead_of_crashing_the_command():
    from homegrid.hub.devices import try_devices

    trials = try_devices([Scripted([TypeError("unhashable type: 'list'")]), Scripted([DeviceError("HTTP 502")])])
    assert [t.ok for t in trials] == [False, False]
    assert trials[0].error == "TypeError: unhashable type: 'list'" and trials[1].error == "HTTP 502"


@pytest.mark.parametrize("payload", [b'{"P": 5, "T": 1e300}', b'{"P": 5, "T": -1e13}', b'{"P": 5, "T": NaN}',
                                     b'{"P": 1' + b"0" * 400 + b', "T": 1}', b"[" * 50_000])
def test_an_mqtt_message_the_meter_cannot_read_is_a_counted_problem_not_an_exception(payload):
    import paho.mqtt.client as paho

    from homegrid.devices.mqtt.meter import MeterTopic, MqttMeter

    meter = MqttMeter([MeterTopic("m/SENSOR", "grid_power", path="P", time_path="T")])
    message = paho.MQTTMessage(topic=b"m/SENSOR")
    message.payload = payload
    meter._receive(message)  # on the network thread, whose exceptions would be logged with a traceback per message
    assert meter.bad_messages == {"grid_power": 1} and meter.received == 1
