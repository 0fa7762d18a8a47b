"""Storm mode in the hub: an NWS alert raises the virtual home's reserve, the owner's switch (HTTP and
MQTT) overrides it, and it is all visible in the status."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from homegrid.api.mqtt import MqttPublisher
from homegrid.api.storm import add_storm_routes
from homegrid.config import Config, StormConfig
from homegrid.devices.mqtt import MqttBroker
from homegrid.hub.service import Hub
from tests.broker import Mosquitto, mosquitto_broker  # noqa: F401 (the session fixture "mosquitto")
from tests.conftest import behind_the_door
from tests.waiting import wait_for

ALERT = Path(__file__).parent / "fixtures" / "nws" / "zone_ORZ004_flood_watch_2019-12-20.json"
DURING = datetime(2019, 12, 20, 23, 0, tzinfo=UTC)  # the flood watch is in force


def _hub(tmp_path, publisher=None) -> Hub:
    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=0.1),
                            storm=StormConfig(enabled=True, source=str(ALERT), hold_h=0.0))
    return Hub(config, tmp_path, clock=lambda: DURING, publisher=publisher)


def _reserve(hub: Hub) -> float:
    return asyncio.run(hub.storm.control.backup_reserve())


def test_alert_raises_the_reserve_and_the_owner_switch_wins(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="homegrid")
    hub = _hub(tmp_path)
    assert _reserve(hub) == 20.0
    decision = asyncio.run(hub.storm.step())
    assert hub.storm.status["storm"] is True, decision
    assert _reserve(hub) == 100.0
    assert "reserve 20 % -> 100 % (storm mode)" in caplog.text  # the log says who changed it
    assert hub.status()["storm"]["storm"] is True

    app = FastAPI()
    add_storm_routes(app, hub.storm)
    client = behind_the_door(app, tmp_path / "owner")
    assert client.get("/api/v1/storm").json()["storm"] is True
    assert client.post("/api/v1/storm", json={"mode": "off"}).status_code == 200
    assert "storm switch: off (owner token)" in caplog.text
    asyncio.run(hub.storm.evaluate())
    assert hub.storm.status["storm"] is False
    assert _reserve(hub) == 20.0  # restored
    assert client.post("/api/v1/storm", json={"mode": "sideways"}).status_code == 422
    hub.store.close()


def test_storm_switch_over_mqtt(tmp_path, mosquitto, caplog):
    caplog.set_level(logging.INFO, logger="homegrid")
    publisher = MqttPublisher(MqttBroker(mosquitto.host, mosquitto.port), client_id="storm-test", node_id="storm_home")
    hub = _hub(tmp_path, publisher)
    publisher.start()
    assert publisher.wait_ready(10)
    sender = paho.Client(CallbackAPIVersion.VERSION2, client_id="ha")
    sender.connect(mosquitto.host, mosquitto.port)
    sender.loop_start()

    def switched_on() -> bool:
        if hub.storm.state.manual is True:
            return True
        # the command subscription is made just after connecting; repeating "ON" is harmless
        sender.publish("homegrid/storm_home/storm/set", "ON", qos=1).wait_for_publish(5)
        return False

    wait_for(switched_on, timeout=10, interval=0.2, what="the storm switch over MQTT never reached the hub")
    asyncio.run(hub.storm.evaluate())
    assert hub.storm.status["storm"] is True
    assert _reserve(hub) == 100.0
    assert "storm switch: on (MQTT)" in caplog.text
    sender.loop_stop()
    sender.disconnect()
    publisher.stop()
    hub.store.close()
