"""Live truth: each device's state (live / stale / offline) and last_seen in /api/v1/live and the stream,
and the Powerwall's level on the Tesla app's scale from recorded gateway replies."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.config import Config, ConfigError, ServerConfig
from homegrid.devices import Device, DeviceError
from homegrid.devices.powerwall import PowerwallGateway
from homegrid.devices.powerwall.control import app_to_gateway, gateway_to_app
from homegrid.devices.powerwall.replies import app_soc, gateway_soc, parse_operation, parse_soe
from homegrid.glossary import quantity
from homegrid.hub.liveness import OFFLINE_AFTER_S, DeviceState, device_state, is_stale
from homegrid.hub.service import Hub
from homegrid.readings import Reading
from tests.broker import mosquitto_broker  # noqa: F401 (the session fixture "mosquitto")

from .test_mqtt import subscribe, teardown  # noqa: F401 (fixtures)
from .test_powerwall_replies import FIRMWARES, PW, SAMPLES, RecordedGateway

T0 = datetime(2025, 6, 1, 12, tzinfo=UTC)
MS = 1000


# --- the rule ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("interval_s", "age_s", "state"), [
    (5.0, 0.0, "live"),
    (5.0, 15.0, "live"),  # three 5 s intervals: not older than that yet
    (5.0, 15.001, "stale"),
    (1.0, 14.9, "live"),  # older than three 1 s polls but not 15 s old: a busy loop's jitter
    (1.0, 15.0, "stale"),
    (60.0, 179.0, "live"),
    (60.0, 180.5, "stale"),
])
def test_stale_after_three_intervals_and_at_least_15_s(interval_s, age_s, state):
    now = 1_750_000_000_000
    assert device_state(now, now - round(age_s * MS), None, interval_s).value == state


def test_offline_after_failing_for_the_threshold():
    now = 1_750_000_000_000
    seen = now - 400 * MS
    assert device_state(now, seen, now - 299_999, 5.0) is DeviceState.STALE
    assert device_state(now, seen, now - 300_000, 5.0) is DeviceState.OFFLINE
    assert device_state(now, seen, now - 10_000, 5.0, offline_after_s=10.0) is DeviceState.OFFLINE
    assert device_state(now, None, None, 5.0) is DeviceState.STALE  # nothing read yet: nothing to vouch for
    assert OFFLINE_AFTER_S == 300.0 and ServerConfig().offline_after_s == 300.0
    with pytest.raises(ConfigError, match="offline_after_s"):
        ServerConfig(offline_after_s=0)


@given(st.floats(0.1, 3600), st.floats(0, 1e6), st.floats(0, 1e6))
def test_state_follows_age_and_failure_monotonically(interval_s, age_s, older_s):
    """An older reading is never fresher; a longer failure is never less offline."""
    now = 10**13
    rank = {DeviceState.LIVE: 0, DeviceState.STALE: 1, DeviceState.OFFLINE: 2}
    a = device_state(now, now - int(age_s * MS), None, interval_s)
    b = device_state(now, now - int((age_s + older_s) * MS), None, interval_s)
    assert rank[a] <= rank[b]
    assert (a is DeviceState.STALE) == is_stale(int(age_s * MS) / MS, interval_s)
    assert device_state(now, now, now - int((age_s + older_s) * MS), interval_s) is (
        DeviceState.OFFLINE if int((age_s + older_s) * MS) >= OFFLINE_AFTER_S * MS else DeviceState.LIVE)


# --- through the hub and the API -------------------------------------------------------------------------------

class Switchable(Device):
    """Answers while ``up``; raises a DeviceError otherwise."""

    name = "gateway"

    def __init__(self, clock):
        self.clock, self.up = clock, True

    async def poll(self) -> Reading:
        if not self.up:
            raise DeviceError("connection refused")
        return Reading(self.clock(), {"home_power": 800.0, "grid_power": 800.0, "battery_soc": 50.0})


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def tick(self, seconds):
        self.now += timedelta(seconds=seconds)


def _hub(tmp_path, offline_after_s: float = 300.0):
    clock = Clock()
    config = Config(server=ServerConfig(poll_interval_s=5.0, offline_after_s=offline_after_s))
    device = Switchable(clock)
    hub = Hub(config, tmp_path, device=device, clock=clock)
    return hub, device, clock


def _api(hub: Hub) -> TestClient:
    return TestClient(create_app(hub.queries, health=hub.status, live=hub.live, clock=hub.clock))


def test_a_device_that_stops_answering_goes_stale_then_offline(tmp_path):
    hub, device, clock = _hub(tmp_path)
    api = _api(hub)
    asyncio.run(hub.poll_once())
    body = api.get("/api/v1/live").json()
    [gw] = body["devices"]
    assert gw["name"] == "gateway" and gw["state"] == "live" and gw["last_seen"] == T0.isoformat()
    assert set(gw["quantities"]) == {"home_power", "grid_power", "battery_soc"}
    assert body["health"]["device"]["state"] == "live"

    device.up = False
    for _ in range(3):  # 15 s of failed polls: three intervals, not older than them yet
        clock.tick(5)
        asyncio.run(hub.poll_once())
    assert api.get("/api/v1/live").json()["devices"][0]["state"] == "live"
    clock.tick(1)
    body = api.get("/api/v1/live").json()
    assert body["devices"][0]["state"] == "stale" and body["devices"][0]["last_seen"] == T0.isoformat()
    assert body["values"]["home_power"] == 800.0  # the old figures stay, marked by their device's state
    assert body["devices"][0]["failing_since"] == T0.isoformat()

    clock.now = T0 + timedelta(seconds=299)
    asyncio.run(hub.poll_once())
    assert api.get("/api/v1/live").json()["devices"][0]["state"] == "stale"
    clock.now = T0 + timedelta(seconds=300)
    assert api.get("/api/v1/live").json()["devices"][0]["state"] == "offline"

    device.up = True  # back: live at once
    asyncio.run(hub.poll_once())
    gw = api.get("/api/v1/live").json()["devices"][0]
    assert gw["state"] == "live" and gw["last_seen"] == clock.now.isoformat()
    hub.store.close()


def test_a_partial_last_reading_does_not_take_back_what_the_device_measures(tmp_path, monkeypatch):
    """A gateway that went away mid-poll answered only part of it: its stale state still covers every quantity it
    has measured, so the app greys the battery's level too, not only the powers of the last partial reading."""
    hub, device, clock = _hub(tmp_path)
    asyncio.run(hub.poll_once())

    async def partial(self):
        return Reading(self.clock(), {"home_power": 700.0})

    with monkeypatch.context() as m:
        m.setattr(Switchable, "poll", partial)
        clock.tick(5)
        asyncio.run(hub.poll_once())
    [gw] = hub.live()[3]
    assert gw["quantities"] == ["battery_soc", "grid_power", "home_power"]
    device.up = False
    clock.tick(20)
    [gw] = hub.live()[3]
    assert gw["state"] == "stale" and set(gw["quantities"]) >= {"battery_soc", "grid_power"}
    hub.store.close()


def test_now_is_the_hub_s_time_that_the_states_are_judged_at(tmp_path):
    """"last seen … ago" counts from the live body's ``now``: the hub's clock, as the devices' states are, not the
    machine's (they are the same in a running hub; a hub on another clock, as in these tests, keeps them in step)."""
    from homegrid.api.serve import build_app

    hub, _, clock = _hub(tmp_path)
    asyncio.run(hub.poll_once())
    clock.tick(20)
    body = _api(hub).get("/api/v1/live").json()
    assert body["now"] == clock.now.isoformat() and body["devices"][0]["state"] == "stale"
    assert build_app(hub, "127.0.0.1").state.api.now() == clock.now
    hub.store.close()


def test_the_offline_threshold_is_a_setting(tmp_path):
    hub, device, clock = _hub(tmp_path, offline_after_s=20.0)
    asyncio.run(hub.poll_once())
    device.up = False
    clock.tick(5)
    asyncio.run(hub.poll_once())
    clock.tick(15)
    assert hub.live()[3][0]["state"] == "offline"
    hub.store.close()


def test_the_stream_pushes_a_state_change_without_a_new_reading(tmp_path):
    hub, device, clock = _hub(tmp_path)
    api = _api(hub)
    asyncio.run(hub.poll_once())

    def one_event() -> dict:
        with api.stream("GET", "/api/v1/stream", params={"max_events": 1}) as s:
            return json.loads("".join(s.iter_text()).split("data: ", 1)[1])

    first = one_event()
    assert first["devices"][0]["state"] == "live"
    device.up = False
    clock.tick(30)
    asyncio.run(hub.poll_once())
    event = one_event()  # the reading is the same; the event is new because the state changed
    assert event["time"] == first["time"] and event["devices"][0]["state"] == "stale"
    assert event["devices"] == api.get("/api/v1/live").json()["devices"]
    hub.store.close()


def test_live_without_a_hub_has_no_devices(tmp_path):
    from homegrid.hub.queries import Queries
    from homegrid.store import SQLiteStore

    store = SQLiteStore(tmp_path / "db")
    body = TestClient(create_app(Queries(store, Config().site.tz))).get("/api/v1/live").json()
    assert body["devices"] == [] and body["time"] is None and "now" in body
    store.close()


# --- the Powerwall's level on the Tesla app's scale -----------------------------------------------------------

def test_the_scale_rule_is_pypowerwalls_level_clamped():
    # pypowerwall 0.22 Powerwall.level(scale=True): (level / 0.95) - (5 / 0.95)
    for gateway in (5.0, 23.98, 29.00611403384047, 52.5, 100.0):
        assert app_soc(gateway) == pytest.approx((gateway / 0.95) - (5 / 0.95))
        assert gateway_soc(app_soc(gateway)) == pytest.approx(gateway)
    assert app_soc(23.98) == pytest.approx(19.98, abs=0.005)  # the 23.98 % is the app's 20 %
    assert app_soc(2.0) == 0.0 and app_soc(101.0) == 100.0  # clamped
    assert gateway_to_app is app_soc and app_to_gateway is gateway_soc  # one rule, reused
    assert quantity("battery_soc_gateway").unit == "%" and "0.95" in quantity("battery_soc").description


@pytest.mark.parametrize("firmware", FIRMWARES)
def test_recorded_replies_give_the_app_scale(firmware):
    folder = SAMPLES / firmware / "running"
    gateway = parse_soe(json.loads((folder / "system_status.soe.json").read_text()))
    reserve = parse_operation(json.loads((folder / "operation.json").read_text())).backup_reserve_percent
    reading = asyncio.run(PowerwallGateway(RecordedGateway(folder)).poll())
    v = reading.values
    assert v["battery_soc_gateway"] == gateway
    assert v["battery_soc"] == pytest.approx((gateway - 5) / 0.95)
    assert v["battery_soc"] < v["battery_soc_gateway"]  # below 100 % the app shows less than the gateway
    assert v["battery_reserve"] == pytest.approx(max(0.0, (reserve - 5) / 0.95))


# --- the Now view's summary: today's and lifetime energy, the battery's health -----------------------------------

def test_recorded_system_status_gives_capacity_and_rating():
    from homegrid.devices.powerwall.replies import RATED_FULL_PACK_WH, parse_capacity, parse_rated_capacity

    one = json.loads((SAMPLES / "21.44-foogod" / "running" / "system_status.json").read_text())
    assert parse_capacity(one) == 14061 and parse_rated_capacity(one) == pytest.approx(13_500 / 0.95)
    # two packs in the total and a third block the total leaves out (no energy_charged): health compares like with like
    three = json.loads((PW / "tesla_powerwall" / "fixtures" / "system_status.json").read_text())
    assert parse_capacity(three) == 28078 and parse_rated_capacity(three) == pytest.approx(2 * RATED_FULL_PACK_WH)
    assert parse_rated_capacity({"nominal_full_pack_energy": 14000}) is None


def test_summary_has_today_lifetime_and_battery_health(tmp_path):
    from homegrid.api.summary import battery_health

    hub, _, clock = _hub(tmp_path)
    clock.now = datetime.now(UTC).replace(microsecond=0)
    asyncio.run(hub.poll_once())
    clock.tick(60)
    asyncio.run(hub.poll_once())
    hub.flush()
    body = _api(hub).get("/api/v1/summary").json()
    today = datetime.now(hub.config.site.tz).date().isoformat()
    assert body["today"]["from"] == body["today"]["to"] == today
    report = _api(hub).get("/api/v1/report", params={"from": today, "to": today}).json()
    assert body["today"]["energy_wh"] == report["energy_wh"]  # the report's accounting
    assert body["today"]["energy_wh"]["home"] == pytest.approx(800.0 / 60, rel=0.01)  # 800 W for a minute
    assert body["lifetime"]["since"] <= today
    assert body["lifetime"]["energy_wh"]["home"] >= body["today"]["energy_wh"]["home"]
    assert body["battery"] is None  # this device reports no capacity
    health = battery_health({"battery_capacity": 13_500.0, "battery_capacity_rated": 14_210.5},
                            {"battery_capacity": "2025-06-01T12:00:00+00:00"})
    assert health == {"capacity_wh": 13_500.0, "rated_wh": 14_210.5, "health_percent": 95.0,
                      "read": "2025-06-01T12:00:00+00:00"}
    hub.store.close()


# --- MQTT: availability per device ----------------------------------------------------------------------------

def test_discovery_follows_the_device_that_measures_a_quantity():
    from homegrid.api.mqtt import discovery_config

    _, plain = discovery_config(quantity("grid_power"), node_id="home", state_topic="s", availability_topic="hub",
                                device={})
    assert plain["availability_topic"] == "hub" and "availability" not in plain
    _, config = discovery_config(quantity("grid_power"), node_id="home", state_topic="s", availability_topic="hub",
                                 device={}, device_availability_topic="hub/device/powerwall/availability")
    assert "availability_topic" not in config and config["availability_mode"] == "all"
    assert [a["topic"] for a in config["availability"]] == ["hub", "hub/device/powerwall/availability"]
    assert all(a["payload_available"] == "online" and a["payload_not_available"] == "offline"
               for a in config["availability"])


def test_each_devices_availability_goes_to_mqtt_and_home_assistant(mosquitto, teardown, subscribe):  # noqa: F811
    from .test_mqtt import WAIT, publisher

    p = publisher(mosquitto, teardown, names=["grid_power", "ev_soc"])
    sub = subscribe(f"{p.discovery_prefix}/#", f"{p.topic_prefix}/#")
    p.start()
    assert p.wait_connected(WAIT)
    powerwall = {"name": "powerwall", "state": "live", "quantities": ["grid_power", "battery_soc"]}
    car = {"name": "tesla", "state": "stale", "quantities": ["ev_soc"]}
    p.device_states([powerwall, car])
    sub.wait_payload(p.device_topic("powerwall"), b"online")
    sub.wait_payload(p.device_topic("tesla"), b"offline")  # its figures are old: unavailable to Home Assistant
    topic = p.discovery_topic("grid_power")
    sub.wait_for(lambda ms: any(m.topic == topic and b"availability_mode" in m.payload for m in ms),
                 "grid_power announced again with its device's availability")
    config = json.loads([m for m in sub.on(topic) if b"availability_mode" in m.payload][-1].payload)
    assert [a["topic"] for a in config["availability"]] == [p.availability_topic, p.device_topic("powerwall")]

    before = len(sub.on(p.device_topic("powerwall")))
    p.device_states([powerwall, car])  # nothing changed: nothing sent
    p.device_states([{**powerwall, "state": "offline"}, car])
    sub.wait_payload(p.device_topic("powerwall"), b"offline")
    assert len(sub.on(p.device_topic("powerwall"))) == before + 1
    late = subscribe(p.device_topic("powerwall"))  # retained: a newcomer learns it at once
    assert late.wait_for(lambda ms: ms, "the retained availability")[0].payload == b"offline"


# --- a device that reads less often than the hub asks (the car) -------------------------------------------------

def test_a_car_read_once_a_minute_is_not_stale_between_reads(tmp_path):
    from homegrid.devices.tesla import TeslaVehicle
    from homegrid.devices.tesla.adapter import Mode, PollPolicy

    car = TeslaVehicle(object(), policy=PollPolicy())  # type: ignore[arg-type]
    assert car.poll_interval_s == 60.0  # online or asleep: a reading (or the list's state) once a minute
    car.mode = Mode.SUSPENDED
    assert car.poll_interval_s == PollPolicy().suspend_s  # left alone to fall asleep: no reading for 20 min

    class EveryMinute(Switchable):
        poll_interval_s = 60.0

    clock = Clock()
    hub = Hub(Config(), tmp_path, devices=[(EveryMinute(clock), 5.0)], clock=clock)
    asyncio.run(hub.poll_once())
    clock.tick(180)  # three of its minutes: still live
    [d] = hub.live()[3]
    assert d["state"] == "live" and d["interval_s"] == 60.0
    clock.tick(1)
    assert hub.live()[3][0]["state"] == "stale"
    hub.store.close()
