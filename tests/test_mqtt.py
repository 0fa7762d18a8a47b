"""MQTT out (the publisher with Home Assistant discovery) and in (meters), against a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from homegrid.api.mqtt import MqttPublisher, discovery_config, label, state_payload
from homegrid.devices import DeviceError
from homegrid.devices.mqtt import MeterTopic, MqttBroker, MqttMeter
from homegrid.glossary import ALL_NAMES, QUANTITIES, Kind, Quantity, quantity
from homegrid.readings import Reading
from tests.broker import Mosquitto, free_port, mosquitto_broker  # noqa: F401 (the session fixture "mosquitto")
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2}  # reconnect quickly in tests
WAIT = 5.0  # the longest any event may take [s]; tests pass in a fraction of it


def unique(prefix: str) -> str:
    """A name no other test uses, so retained messages of one test never reach another."""
    return f"{prefix}{secrets.token_hex(3)}"


_BROKER_FIELDS = ("username", "password", "keepalive_s", "reconnect_min_s", "reconnect_max_s", "connect_timeout_s")


def at(m: Mosquitto, kw: dict[str, object]) -> dict[str, object]:
    """Keyword arguments that point a publisher or a meter at a broker: the broker's settings in ``kw`` go to
    its :class:`MqttBroker`, the rest stay."""
    settings = {k: kw.pop(k) for k in _BROKER_FIELDS if k in kw}
    return {"broker": MqttBroker(m.host, m.port, **{**FAST, **settings}), **kw}  # type: ignore[arg-type]


class Subscriber:
    """A raw paho client that records every message on its topics."""

    def __init__(self, m: Mosquitto, *topics: str) -> None:
        self.messages: list[paho.MQTTMessage] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=unique("test-sub-"))
        c.on_connect = lambda client, *_: client.subscribe([(t, 1) for t in topics])
        c.on_subscribe = lambda *_: self._subscribed.set()
        c.on_message = self._add
        c.connect(m.host, m.port)
        c.loop_start()
        self.client = c
        assert self._subscribed.wait(WAIT), "the test subscriber could not subscribe"

    def _add(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(message)
            self._cond.notify_all()

    def wait_for(self, check: Callable[[list[paho.MQTTMessage]], bool], what: str,
                 timeout: float = WAIT) -> list[paho.MQTTMessage]:
        with self._cond:
            if not self._cond.wait_for(lambda: check(self.messages), timeout):
                seen = [(m.topic, m.payload[:80]) for m in self.messages]
                raise AssertionError(f"timed out waiting for {what}; got {seen}")
            return list(self.messages)

    def on(self, topic: str) -> list[paho.MQTTMessage]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_payload(self, topic: str, payload: bytes, timeout: float = WAIT) -> paho.MQTTMessage:
        msgs = self.wait_for(lambda ms: any(m.topic == topic and m.payload == payload for m in ms),
                             f"{payload!r} on {topic}", timeout)
        return [m for m in msgs if m.topic == topic and m.payload == payload][-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def teardown() -> Iterator[list[Callable[[], object]]]:
    """Things to stop after the test, pass or fail, newest first."""
    todo: list[Callable[[], object]] = []
    yield todo
    for stop in reversed(todo):
        stop()


@pytest.fixture
def subscribe(mosquitto: Mosquitto, teardown: list) -> Callable[..., Subscriber]:
    def make(*topics: str, broker: Mosquitto | None = None) -> Subscriber:
        s = Subscriber(broker or mosquitto, *topics)
        teardown.append(s.close)
        return s
    return make


def publisher(m: Mosquitto, teardown: list, **kw: object) -> MqttPublisher:
    kw.setdefault("topic_prefix", unique("hg"))
    kw.setdefault("discovery_prefix", unique("ha"))
    p = MqttPublisher(**at(m, kw))  # type: ignore[arg-type]
    teardown.append(p.stop)
    return p


def send(m: Mosquitto, messages: list[tuple[str, str | bytes]], retain: bool = False) -> None:
    """Publish raw messages with QoS 1, in order, and wait until the broker has them all."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=unique("test-pub-"))
    c.connect(m.host, m.port)
    c.loop_start()
    try:
        infos = [c.publish(topic, payload, qos=1, retain=retain) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(WAIT)
    finally:
        c.disconnect()
        c.loop_stop()


def poll(meter: MqttMeter) -> Reading:
    return asyncio.run(meter.poll())


def sent_to(meter: MqttMeter, m: Mosquitto, messages: list[tuple[str, str | bytes]], retain: bool = False) -> None:
    """Send messages and wait until the meter has handled every one of them."""
    target = meter.received + len(messages)
    send(m, messages, retain)
    wait_for(lambda: meter.received >= target, timeout=WAIT, interval=0.005,
             what=lambda: f"the meter handled {meter.received} of {target} messages")


# --- the publisher: Home Assistant discovery -----------------------------------------------------

#: What Home Assistant must be told, by glossary kind: component, device class, state class, unit.
#: None means the key is absent. (A percentage that is a state of charge is a battery level.)
BY_KIND = {
    Kind.POWER: ("sensor", "power", "measurement", "W"),
    Kind.COUNTER: ("sensor", "energy", "total_increasing", "Wh"),
    Kind.PERCENT: ("sensor", None, "measurement", "%"),
    Kind.STATUS: ("sensor", "enum", None, None),
    Kind.FLAG: ("binary_sensor", None, None, None),
}
BY_UNIT_OF_GAUGE = {"km": "distance", "s": "duration", "Wh": "energy_storage", "V": "voltage", "Hz": "frequency"}


def expected_entity(q: Quantity) -> tuple[str, str | None, str | None, str | None]:
    if q.kind is Kind.GAUGE:
        return "sensor", BY_UNIT_OF_GAUGE.get(q.unit), "measurement", q.unit or None
    component, device_class, state_class, unit = BY_KIND[q.kind]
    if q.kind is Kind.PERCENT and q.name.endswith("_soc"):
        device_class = "battery"
    if q.kind is Kind.FLAG and q.name.endswith("_at_home"):
        device_class = "presence"
    return component, device_class, state_class, unit


def test_discovery_announces_every_quantity_retained_with_the_right_classes(mosquitto, teardown, subscribe):
    p = publisher(mosquitto, teardown, names=ALL_NAMES, node_id="site1", device_name="My home")

    def complete(ms: list[paho.MQTTMessage]) -> bool:
        return (sum(m.topic.endswith("/config") for m in ms) == len(QUANTITIES)
                and any(m.topic == p.availability_topic for m in ms))

    live = subscribe(f"{p.discovery_prefix}/#", f"{p.topic_prefix}/#")
    p.start()
    live.wait_for(complete, "every discovery config")
    # a subscriber that comes afterwards gets what the broker retained
    sub = subscribe(f"{p.discovery_prefix}/#", f"{p.topic_prefix}/#")
    msgs = sub.wait_for(complete, "every retained discovery config")
    configs = {m.topic: m for m in msgs if m.topic.endswith("/config")}
    assert all(m.retain for m in msgs), "discovery configs and availability must be retained"
    assert sub.on(p.availability_topic)[-1].payload == b"online"

    devices = []
    for q in QUANTITIES:
        component, device_class, state_class, unit = expected_entity(q)
        topic = f"{p.discovery_prefix}/{component}/site1/{q.name}/config"
        assert topic in configs, f"no {component} config for {q.name}"
        c = json.loads(configs[topic].payload)
        assert c.get("device_class") == device_class, q.name
        assert c.get("state_class") == state_class, q.name
        assert c.get("unit_of_measurement") == unit, q.name
        assert c["unique_id"] == f"homegrid_site1_{q.name}"
        assert c["state_topic"] == p.state_topic == f"{p.topic_prefix}/site1/state"
        assert c["availability_topic"] == p.availability_topic == f"{p.topic_prefix}/site1/availability"
        assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
        assert f"value_json.{q.name} " in c["value_template"]
        if q.states is not None:
            assert c["options"] == [s.name.lower() for s in q.states]
        devices.append(c["device"])
    assert devices[0] == {"identifiers": ["homegrid_site1"], "name": "My home", "manufacturer": "homegrid",
                          "model": "homegrid hub", "sw_version": devices[0]["sw_version"]}
    assert all(d == devices[0] for d in devices), "every entity belongs to the one device"

    # spelled out for the quantities Home Assistant's energy dashboard and cards depend on
    def cfg(component: str, name: str) -> dict:
        return json.loads(configs[f"{p.discovery_prefix}/{component}/site1/{name}/config"].payload)

    assert cfg("sensor", "grid_energy_imported")["state_class"] == "total_increasing"
    assert cfg("sensor", "battery_soc")["device_class"] == "battery"
    assert cfg("sensor", "ev_soc")["device_class"] == "battery"
    assert "device_class" not in cfg("sensor", "battery_reserve")
    assert cfg("sensor", "ev_range")["unit_of_measurement"] == "km"
    assert cfg("sensor", "ev_time_to_full")["device_class"] == "duration"
    assert cfg("sensor", "grid_status")["options"] == ["unknown", "connected", "islanded", "transition"]
    assert "charging" in cfg("sensor", "ev_charging_state")["options"]
    home = cfg("binary_sensor", "ev_at_home")
    assert (home["payload_on"], home["payload_off"]) == ("1", "0")
    assert cfg("sensor", "solar_power")["name"] == "Solar power"


def test_a_new_kind_of_quantity_needs_no_code():
    """discovery_config reads only the Quantity: a quantity the glossary does not have yet works."""
    q = Quantity("outdoor_temperature", "°C", Kind.GAUGE, "made up for the test")
    component, c = discovery_config(q, node_id="n", state_topic="s", availability_topic="a", device={})
    assert component == "sensor"
    assert c["unit_of_measurement"] == "°C" and c["state_class"] == "measurement"
    assert "device_class" not in c
    assert label("ev_time_to_full") == "EV time to full"


def test_state_message_carries_the_reading_and_new_quantities_are_announced(mosquitto, teardown, subscribe):
    p = publisher(mosquitto, teardown)  # names=None: announce what the readings carry
    sub = subscribe(f"{p.discovery_prefix}/#", f"{p.topic_prefix}/#")
    p.start()
    assert p.wait_connected(WAIT)
    t = datetime(2025, 6, 1, 16, 0, 0, 250_000, tzinfo=UTC)
    reading = Reading(t, {
        "solar_power": 5210.349, "grid_power": -0.04, "battery_soc": 64.25, "grid_energy_imported": 12345.6,
        "grid_status": 2.0, "ev_charging_state": 4.0, "ev_at_home": 1.0, "ev_range": 312.44,
        "ev_time_to_full": 3599.6, "home_power": float("nan"),
    })
    assert p.publish(reading) is True
    state = sub.wait_for(lambda ms: any(m.topic == p.state_topic for m in ms), "the state")
    msg = next(m for m in state if m.topic == p.state_topic)
    assert json.loads(msg.payload) == {
        "time": "2025-06-01T16:00:00.250000+00:00",
        "solar_power": 5210.3, "grid_power": 0.0, "battery_soc": 64.2, "grid_energy_imported": 12346,
        "grid_status": "islanded", "ev_charging_state": "charging", "ev_at_home": 1, "ev_range": 312.4,
        "ev_time_to_full": 3600,
    }
    assert msg.retain is False  # a live message to an existing subscriber; the broker keeps the retained copy
    announced = {m.topic.split("/")[-2] for m in sub.messages if m.topic.endswith("/config")}
    assert announced == set(json.loads(msg.payload)) - {"time"}, "home_power was NaN: not announced"
    assert p.status()["published"] == 1

    late = subscribe(p.state_topic)  # a newcomer gets the newest reading at once
    assert json.loads(late.wait_for(lambda ms: ms, "the retained state")[0].payload)["grid_status"] == "islanded"


def test_state_payload_rounds_by_unit_and_leaves_out_what_is_not_a_state():
    r = Reading(datetime(2025, 1, 1, tzinfo=UTC), {"home_power": 1.26, "solar_energy_exported": 99.5,
                                                    "grid_status": 9.0, "ev_soc": 80.04})
    assert state_payload(r) == {"time": "2025-01-01T00:00:00+00:00", "home_power": 1.3,
                                "solar_energy_exported": 100, "ev_soc": 80.0}


def test_availability_goes_offline_by_last_will_when_the_hub_dies(mosquitto, teardown, subscribe):
    prefix = unique("hg")
    sub = subscribe(f"{prefix}/lwt/availability")
    code = (
        "import time\n"
        "from homegrid.api.mqtt import MqttPublisher\n"
        "from homegrid.devices.mqtt import MqttBroker\n"
        f"p = MqttPublisher(MqttBroker({mosquitto.host!r}, {mosquitto.port}), topic_prefix={prefix!r},"
        " node_id='lwt', discovery=False)\n"
        "p.start()\n"
        "assert p.wait_connected(10)\n"
        "time.sleep(60)\n"  # on purpose: alive and connected until the test kills it
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    teardown.append(proc.wait)
    teardown.append(proc.kill)
    online = sub.wait_payload(f"{prefix}/lwt/availability", b"online", timeout=15)  # includes the start-up
    proc.kill()  # no DISCONNECT: the broker must publish the Last Will
    proc.wait(WAIT)
    offline = sub.wait_payload(f"{prefix}/lwt/availability", b"offline")
    assert sub.messages.index(offline) > sub.messages.index(online)


def test_stop_says_offline_and_returns_quickly(mosquitto, teardown, subscribe):
    p = publisher(mosquitto, teardown, discovery=False)
    sub = subscribe(p.availability_topic)
    p.start()
    sub.wait_payload(p.availability_topic, b"online")
    started = time.monotonic()
    p.stop()
    assert time.monotonic() - started < 1.5
    sub.wait_payload(p.availability_topic, b"offline")
    assert not p.connected
    assert p.publish(Reading(datetime.now(UTC), {"solar_power": 1.0})) is False
    p.start()
    assert not p.wait_connected(0.2), "a stopped publisher stays stopped"


def test_the_first_publish_starts_the_publisher_and_home_assistant_birth_reannounces(mosquitto, teardown, subscribe):
    p = publisher(mosquitto, teardown, names=["grid_power"])
    config = p.discovery_topic("grid_power")
    sub = subscribe(config, p.state_topic, p.availability_topic)
    reading = Reading(datetime.now(UTC), {"grid_power": 12.0})
    assert not p.connected
    first = p.publish(reading)  # starts the connection; dropped unless the broker answered first
    assert p.wait_connected(WAIT)
    assert p.publish(reading) is True
    sent = 1 + first  # the first one too when the broker had answered: both are waited for before counting
    sub.wait_for(lambda ms: len(sub.on(config)) >= 1 and len(sub.on(p.state_topic)) == sent, "config and state")
    # connected is not subscribed: the birth message must reach the broker after our subscription
    assert p.wait_ready(WAIT)
    # the connect's announcements end with "online": once it is here, none is still in flight to be counted
    sub.wait_payload(p.availability_topic, b"online")
    configs, states = len(sub.on(config)), len(sub.on(p.state_topic))
    send(mosquitto, [(f"{p.discovery_prefix}/status", "online")])  # Home Assistant restarted
    sub.wait_for(lambda ms: len(sub.on(config)) == configs + 1, "the config again")
    assert len(sub.on(p.state_topic)) == states, "a birth message re-announces; it sends no state"


def test_publisher_survives_a_broker_restart(tmp_path, teardown):
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    teardown.append(broker.stop)
    p = publisher(broker, teardown, names=["solar_power"])
    p.start()
    assert p.wait_connected(WAIT)

    broker.stop()
    wait_for(lambda: not p.connected, timeout=WAIT, interval=0.01,
             what="the publisher did not notice the broker going away")
    started = time.monotonic()
    assert p.publish(Reading(datetime.now(UTC), {"solar_power": 111.0})) is False  # dropped, not queued
    assert time.monotonic() - started < 0.1, "publish must not block while the broker is away"
    assert p.status()["dropped"] == 1

    broker.start()  # same port, and no retained messages: they were not persisted
    assert p.wait_connected(WAIT), f"no reconnect; {p.status()}"
    sub = Subscriber(broker, f"{p.discovery_prefix}/#", f"{p.topic_prefix}/#")
    teardown.append(sub.close)
    sub.wait_for(lambda ms: any(m.topic == p.discovery_topic("solar_power") for m in ms)
                 and any(m.topic == p.availability_topic and m.payload == b"online" for m in ms),
                 "the announcements after the reconnect")
    assert p.publish(Reading(datetime.now(UTC), {"solar_power": 222.0})) is True
    sub.wait_for(lambda ms: any(m.topic == p.state_topic for m in ms), "the state after the reconnect")
    states = [json.loads(m.payload)["solar_power"] for m in sub.on(p.state_topic)]
    assert states == [222.0], "the reading from while the broker was away must not be sent late"
    s = p.status()
    assert (s["connects"], s["disconnects"], s["connected"]) == (2, 1, True)


def test_credentials_are_used_and_never_shown(tmp_path, teardown, caplog):
    caplog.set_level(logging.DEBUG)
    broker = Mosquitto(tmp_path / "broker", users={"hub": "right-horse-battery"})
    broker.start()
    teardown.append(broker.stop)
    assert "wrong-staple-42" not in repr(MqttBroker(username="hub", password="wrong-staple-42"))
    p = publisher(broker, teardown, username="hub", password="wrong-staple-42", discovery=False)
    p.start()
    wait_for(lambda: p.status()["last_error"] is not None, timeout=WAIT, interval=0.01, what="the broker's refusal")
    assert not p.connected
    assert "refused" in p.status()["last_error"]
    p.stop()

    good = publisher(broker, teardown, username="hub", password="right-horse-battery", discovery=False)
    good.start()
    assert good.wait_connected(WAIT)
    good.stop()
    assert "wrong-staple-42" not in caplog.text and "right-horse-battery" not in caplog.text
    assert "refused" in caplog.text


# --- meters read from MQTT -----------------------------------------------------------------------

def meter(m: Mosquitto, teardown: list, topics: list[MeterTopic], **kw: object) -> MqttMeter:
    mt = MqttMeter(topics, **at(m, kw))  # type: ignore[arg-type]
    teardown.append(mt.stop)
    return mt


def tasmota(power: float, total_kwh: float, time: str = "2025-06-01T12:00:00") -> str:
    return json.dumps({"Time": time, "ENERGY": {"TotalStartTime": "2024-01-01T00:00:00", "Total": total_kwh,
                                                "Yesterday": 3.1, "Today": 1.2, "Power": power, "Voltage": 231}})


def test_meter_reads_tasmota_shelly_and_bare_values_into_glossary_units(mosquitto, teardown):
    base = unique("m")
    mt = meter(mosquitto, teardown, [
        MeterTopic(f"{base}/tele/grid/SENSOR", "grid_power", path="ENERGY.Power"),
        MeterTopic(f"{base}/tele/grid/SENSOR", "grid_energy_imported", path="ENERGY.Total", scale=1000),
        MeterTopic(f"{base}/pv/power_kw", "solar_power", scale=1000),
        MeterTopic(f"{base}/shelly/status", "home_power", path="emeters.1.power"),
        MeterTopic(f"{base}/gateway/grid", "grid_status"),
        MeterTopic(f"{base}/car/home", "ev_at_home"),
    ])
    first = poll(mt)  # starts the meter: nothing yet, and not stale
    assert first.values == {}
    assert mt.wait_ready(WAIT)
    before = datetime.now(UTC)
    sent_to(mt, mosquitto, [
        (f"{base}/tele/grid/SENSOR", tasmota(-1520, 1234.5678)),
        (f"{base}/pv/power_kw", "4.25"),
        (f"{base}/shelly/status", json.dumps({"emeters": [{"power": 1.0}, {"power": 730.5, "total": 9}]})),
        (f"{base}/gateway/grid", "Islanded"),
        (f"{base}/car/home", "ON"),
    ])
    r = poll(mt)
    after = datetime.now(UTC)
    assert r.values == {"grid_power": -1520.0, "grid_energy_imported": pytest.approx(1234567.8),
                        "solar_power": 4250.0, "home_power": 730.5, "grid_status": 2.0, "ev_at_home": 1.0}
    assert before <= r.time <= after, "stamped with the (newest) arrival time"
    assert mt.problems == {}

    assert poll(mt).values == {}, "a value is reported once"
    sent_to(mt, mosquitto, [(f"{base}/pv/power_kw", "0.5"), (f"{base}/pv/power_kw", "0.6")])
    assert poll(mt).values == {"solar_power": pytest.approx(600.0)}, "the newest value since the last poll"


def test_meter_counts_bad_payloads_as_problems_and_keeps_going(mosquitto, teardown):
    base = unique("m")
    mt = meter(mosquitto, teardown, [
        MeterTopic(f"{base}/SENSOR", "grid_power", path="ENERGY.Power"),
        MeterTopic(f"{base}/soc", "battery_soc"),
        MeterTopic(f"{base}/grid", "grid_status"),
        MeterTopic(f"{base}/pv", "solar_power"),
    ])
    mt.start()
    assert mt.wait_ready(WAIT)
    sent_to(mt, mosquitto, [
        (f"{base}/SENSOR", "{not json"),
        (f"{base}/SENSOR", json.dumps({"ENERGY": {"Total": 1}})),
        (f"{base}/SENSOR", json.dumps({"ENERGY": {"Power": "lots"}})),
        (f"{base}/SENSOR", json.dumps({"ENERGY": [1, 2]})),
        (f"{base}/soc", "12,5"),
        (f"{base}/soc", b"\xff\xfe"),
        (f"{base}/soc", "NaN"),
        (f"{base}/grid", "exploded"),
        (f"{base}/pv", "812"),
    ])
    assert poll(mt).values == {"solar_power": 812.0}, "the good value still comes through"
    assert mt.bad_messages == {"grid_power": 4, "battery_soc": 3, "grid_status": 1}
    assert set(mt.problems) == {"grid_power", "battery_soc", "grid_status"}
    assert mt.problems["grid_power"].startswith("4 bad messages since the last poll; the last: ")
    assert "not a finite number" in mt.problems["battery_soc"]
    assert "unknown grid_status 'exploded'" in mt.problems["grid_status"]

    for payload, why in [("{not json", "not JSON"), (json.dumps({"ENERGY": {"Total": 1}}), "'Power' missing"),
                         (json.dumps({"ENERGY": {"Power": "lots"}}), "not a number: 'lots'"),
                         (json.dumps({"ENERGY": [1, 2]}), "no item 'Power' in a list of 2")]:
        sent_to(mt, mosquitto, [(f"{base}/SENSOR", payload)])
        assert poll(mt).values == {}
        assert mt.problems == {"grid_power": f"1 bad message since the last poll; the last: {base}/SENSOR: "
                                             + mt.problems["grid_power"].split(f"{base}/SENSOR: ", 1)[1]}
        assert why in mt.problems["grid_power"], (payload, mt.problems)

    assert poll(mt).values == {} and mt.problems == {}, "problems are those since the previous poll"


def test_meter_raises_when_nothing_arrives_and_never_repeats_old_values(mosquitto, teardown):
    base = unique("m")
    mt = meter(mosquitto, teardown, [MeterTopic(f"{base}/p", "home_power"), MeterTopic(f"{base}/q", "ev_power")],
               stale_after_s=0.3)
    mt.start()
    assert mt.wait_ready(WAIT)
    sent_to(mt, mosquitto, [(f"{base}/p", "100")])
    arrived = time.monotonic()
    assert poll(mt).values == {"home_power": 100.0}
    assert poll(mt).values == {}, "young enough, but already reported"
    time.sleep(max(0.0, arrived + 0.35 - time.monotonic()))  # on purpose: the silence under test, past 0.3 s
    with pytest.raises(DeviceError, match=r"^no message for 0\.\d s$"):
        poll(mt)
    assert "no value for" in mt.problems["ev_power"] and "no value for" in mt.problems["home_power"]
    sent_to(mt, mosquitto, [(f"{base}/p", "101")])
    assert poll(mt).values == {"home_power": 101.0}


def test_meter_without_a_broker_fails_its_polls_without_hanging(teardown):
    port = free_port()  # nobody listens there
    mt = MqttMeter([MeterTopic("x/p", "home_power")], MqttBroker("127.0.0.1", port, **FAST),  # type: ignore[arg-type]
                   stale_after_s=0.2)
    teardown.append(mt.stop)
    assert poll(mt).values == {}
    time.sleep(0.25)  # on purpose: nothing can arrive, and the meter must call that stale after 0.2 s
    started = time.monotonic()
    with pytest.raises(DeviceError, match=rf"no message for 0\.\d s; not connected to 127\.0\.0\.1:{port} "
                                          r"\(.*cannot connect"):
        poll(mt)
    asyncio.run(mt.close())
    assert time.monotonic() - started < 2.0


def test_meter_skips_retained_replays_unless_the_payload_has_its_time(mosquitto, teardown):
    base = unique("m")
    send(mosquitto, [(f"{base}/old", "5"),
                     (f"{base}/SENSOR", tasmota(42, 1.0, time="2025-06-01T12:00:00-04:00"))], retain=True)
    mt = meter(mosquitto, teardown, [
        MeterTopic(f"{base}/old", "home_power"),
        MeterTopic(f"{base}/SENSOR", "grid_power", path="ENERGY.Power", time_path="Time"),
    ])
    mt.start()
    assert mt.wait_ready(WAIT)
    wait_for(lambda: mt.received >= 2, timeout=WAIT, interval=0.005, what="the retained messages did not arrive")
    r = poll(mt)
    assert r.values == {"grid_power": 42.0}, "the retained value of unknown age is skipped"
    assert r.time == datetime(2025, 6, 1, 16, 0, tzinfo=UTC)
    assert mt.skipped_retained == 1

    sent_to(mt, mosquitto, [(f"{base}/SENSOR", json.dumps({"Time": 1748793600.5, "ENERGY": {"Power": 43}}))])
    r = poll(mt)
    assert (r.values, r.time) == ({"grid_power": 43.0}, datetime(2025, 6, 1, 16, 0, 0, 500_000, tzinfo=UTC))

    sent_to(mt, mosquitto, [(f"{base}/SENSOR", json.dumps({"Time": "2025-06-01T12:00:01", "ENERGY": {"Power": 44}})),
                            (f"{base}/old", "6")])
    r = poll(mt)
    assert r.values == {"home_power": 6.0}, "a value whose time cannot be read is not taken"
    assert "has no UTC offset" in mt.problems["grid_power"]


def test_meter_mapping_is_checked_when_built():
    with pytest.raises(ValueError, match="'grid_powr' is not a glossary name"):
        MeterTopic("a/b", "grid_powr")
    with pytest.raises(ValueError, match="wildcard"):
        MeterTopic("tele/+/SENSOR", "grid_power")
    with pytest.raises(ValueError, match="empty part"):
        MeterTopic("a/b", "grid_power", path="ENERGY..Power")
    with pytest.raises(ValueError, match="no scale"):
        MeterTopic("a/b", "grid_status", scale=2)
    with pytest.raises(ValueError, match="finite non-zero"):
        MeterTopic("a/b", "grid_power", scale=0)
    with pytest.raises(ValueError, match="grid_power is mapped twice"):
        MqttMeter([MeterTopic("a/b", "grid_power"), MeterTopic("a/c", "grid_power")])
    with pytest.raises(ValueError, match="at least one topic"):
        MqttMeter([])
    assert quantity("ev_at_home").kind is Kind.FLAG


def test_publisher_settings_are_checked():
    with pytest.raises(ValueError, match="node_id"):
        MqttPublisher(node_id="my site")
    with pytest.raises(ValueError, match="wildcard"):
        MqttPublisher(topic_prefix="homegrid/#")
    with pytest.raises(ValueError, match="must not start or end"):
        MqttPublisher(discovery_prefix="homeassistant/")
    with pytest.raises(KeyError, match="not a glossary name"):
        MqttPublisher(names=["sun"])
    with pytest.raises(ValueError, match="password given without a username"):
        MqttPublisher(MqttBroker(password="x"))
