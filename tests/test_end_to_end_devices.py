"""A config pointing at a gateway, a car and a broker, end to end: sockets to store to MQTT.

The gateway is our simulated Powerwall over HTTPS driven through the real pypowerwall,
the car a Fleet API server on loopback answering with recorded replies through the real
tesla-fleet-api, the broker a real mosquitto.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from homegrid.api.serve import build_publisher
from homegrid.config import load_config
from homegrid.credentials import load_credentials
from homegrid.devices.powerwall.simulator import Simulator
from homegrid.glossary import EvChargingState, GridStatus
from homegrid.hub.devices import build_devices
from homegrid.hub.service import Hub
from tests.broker import Mosquitto, mosquitto_broker  # noqa: F401 (the session fixture "mosquitto")

from .conftest import SHARED_DATA
from .waiting import wait_for_async

VIN = "LRW3F7EK4NC700000"
LAT, LON = 36.1, -79.95


def _recorded(name: str) -> dict:
    return json.loads((SHARED_DATA / "tesla" / "home-assistant" / name).read_text())


class FleetOnLoopback:
    """The two Fleet API endpoints the car adapter reads, with the recorded replies made current:
    the car is online, parked at the site, charging at 7 kW."""

    def __init__(self) -> None:
        self.products = _recorded("teslemetry/products.json")
        self.products["response"][0]["state"] = "online"
        self.data = _recorded("teslemetry/vehicle_data.json")
        self.calls: list[str] = []

    async def start(self) -> str:
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/api/1/vehicles", self.vehicles)
        app.router.add_get("/api/1/vehicles/{vin}/vehicle_data", self.vehicle_data)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def vehicles(self, request):
        from aiohttp import web

        self.calls.append("vehicles")
        return web.json_response(self.products)

    async def vehicle_data(self, request):
        from aiohttp import web

        self.calls.append("vehicle_data")
        reply = copy.deepcopy(self.data)
        now_ms = int(time.time() * 1000)
        car = reply["response"]
        car["charge_state"].update(timestamp=now_ms, charging_state="Charging", charger_power=7,
                                   battery_level=64, minutes_to_full_charge=95)
        car["drive_state"].update(timestamp=now_ms, latitude=LAT + 0.0002, longitude=LON, native_latitude=LAT,
                                  native_longitude=LON, gps_as_of=now_ms // 1000)
        return web.json_response(reply)


class Listener:
    def __init__(self, broker: Mosquitto, *topics: str) -> None:
        self.messages: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{os.getpid()}")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        for topic in topics:
            self.client.subscribe(topic)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages[message.topic] = message.payload

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _feed_meter(broker: Mosquitto, stop: threading.Event) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="wall-connector")
    client.connect(broker.host, broker.port)
    client.loop_start()
    while not stop.wait(0.2):
        client.publish("wallconnector/vitals", json.dumps({"vitals": {"power_kw": 7.2}}))
    client.loop_stop()
    client.disconnect()


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_gateway_car_and_broker_end_to_end(tmp_path, mosquitto):
    async def scenario() -> tuple[Hub, list[str]]:
        fleet = FleetOnLoopback()
        url = await fleet.start()
        with Simulator() as sim:
            gw = sim.add_gateway(password="customer-pass", scenario="normal")
            config_path = _write(tmp_path / "homegrid.toml", f"""
[site]
name = "Test home"
latitude = {LAT}
longitude = {LON}
timezone = "America/New_York"

[powerwall]
host = "{gw.address}"
poll_interval_s = 0.5
timeout_s = 3

[tesla]
vin = "{VIN}"
server = "{url}"

[mqtt]
host = "{mosquitto.host}"
port = {mosquitto.port}
client_id = "homegrid-e2e"
[[mqtt.meters]]
topic = "wallconnector/vitals"
name = "ev_power"
path = "vitals.power_kw"
scale = 1000
""")
            _write(tmp_path / "credentials.toml", '[powerwall]\npassword = "customer-pass"\n'
                   '[tesla]\naccess_token = "car-token-e2e"\n')
            config = load_config(config_path)
            credentials = load_credentials(tmp_path / "credentials.toml")
            data_dir = tmp_path / "data"
            devices = build_devices(config, credentials, data_dir)
            hub = Hub(config, data_dir, devices=devices, publisher=build_publisher(config, credentials))
            listener = Listener(mosquitto, "homeassistant/#", "homegrid/#")
            stop_feed = threading.Event()
            feeder = threading.Thread(target=_feed_meter, args=(mosquitto, stop_feed), daemon=True)
            feeder.start()
            task = asyncio.create_task(hub.run_pollers())
            try:
                await wait_for_async(lambda: {"grid_power", "ev_soc", "ev_power"} <= set(hub.live()[1])
                                     and hub.pollers[0].health.polls >= 5, timeout=15, interval=0.25,
                                     what="the three devices' readings and five polls of the gateway")
            finally:
                hub.stop()
                await task
                stop_feed.set()
                feeder.join(5)
                for p in hub.pollers:
                    await p.device.close()
                hub.publisher.stop()
                await fleet.runner.cleanup()
            truth = gw.state()
        await wait_for_async(lambda: listener.messages.get("homegrid/test_home/availability") == b"offline",
                             timeout=10, interval=0.05, what="the clean stop's 'offline'")
        listener.stop()
        return hub, truth, listener.messages, fleet.calls

    hub, truth, messages, calls = asyncio.run(scenario())
    status = hub.status()
    names = [d["name"] for d in status["devices"]]
    assert names == ["powerwall", "tesla", "mqtt"]
    assert all(d["errors"] == 0 for d in status["devices"]), status["devices"]
    gateway = status["devices"][0]["status"]
    live = hub.live()[1]
    assert gateway["battery_soc_gateway_percent"] == pytest.approx(live["battery_soc_gateway"], abs=0.05)
    assert live["battery_soc"] == pytest.approx((live["battery_soc_gateway"] - 5) / 0.95)  # the Tesla app's scale
    assert gateway["operation_mode"] == "self_consumption"
    assert status["devices"][1]["status"]["car_state"] == "online"

    frame = hub.store.read_readings(0, 2**62)
    grid = frame.column("grid_power")
    assert (~__import__("numpy").isnan(grid)).sum() >= 5
    assert set(frame.column("grid_status")[~__import__("numpy").isnan(frame.column("grid_status"))]) == {
        float(GridStatus.CONNECTED)}
    counters = frame.column("solar_energy_exported")
    last_counter = counters[~__import__("numpy").isnan(counters)][-1]
    assert last_counter == pytest.approx(truth.values["solar_energy_exported"], abs=50)

    live = hub.live()[1]
    assert live["ev_soc"] == 64.0
    assert live["ev_at_home"] == 1.0
    assert live["ev_charging_state"] == float(EvChargingState.CHARGING)
    assert live["ev_power"] in (7000.0, 7200.0)
    assert "vehicle_data" in calls and "vehicles" in calls
    assert status["poll_to_store_ms"]["count"] > 0
    assert status["poll_to_store_ms"]["p95"] < 1000

    config = json.loads(messages["homeassistant/sensor/test_home/grid_power/config"])
    assert config["device_class"] == "power" and config["state_class"] == "measurement"
    state = json.loads(messages["homegrid/test_home/state"])
    assert "time" in state
    assert messages["homegrid/test_home/availability"] == b"offline"  # a clean stop says so
    hub.store.close()
