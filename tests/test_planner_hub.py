"""The planner's executor in the hub: built from ``[planner]``, driving the virtual home and its car, standing
aside while storm mode holds the reserve, its commands and the owner's hand-back over HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from fastapi import FastAPI
from paho.mqtt.enums import CallbackAPIVersion

from homegrid.api.mqtt import MqttPublisher
from homegrid.api.planner import add_planner_routes
from homegrid.config import Config, PlannerConfig, StormConfig
from homegrid.devices.mqtt import MqttBroker
from homegrid.hub.service import Hub
from homegrid.planner.problem import Mode, Plan, Problem
from homegrid.readings import to_ms
from tests.broker import mosquitto_broker  # noqa: F401 (the session fixture "mosquitto")
from tests.conftest import behind_the_door
from tests.waiting import wait_for

ALERT = Path(__file__).parent / "fixtures" / "nws" / "zone_ORZ004_flood_watch_2019-12-20.json"
DURING = datetime(2019, 12, 20, 23, 0, tzinfo=UTC)  # the flood watch is in force
STEP = 15 * 60_000


def _hub(tmp_path: Path, publisher: MqttPublisher | None = None, **planner: object) -> Hub:
    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=0.1),
                            storm=StormConfig(enabled=True, source=str(ALERT), hold_h=0.0),
                            planner=PlannerConfig(enabled=True, **planner))
    return Hub(config, tmp_path, clock=lambda: DURING, publisher=publisher)


def _plan(modes: list[Mode]) -> tuple[Problem, Plan]:
    """A plan of ``modes`` at 0.12 and one step more, discharging at a peak of 0.40 (the charge pays for it)."""
    modes = [*modes, Mode.SELF_POWERED]
    n = len(modes)
    t = to_ms(DURING) + STEP * np.arange(n, dtype=np.int64)
    buy = np.full(n, 0.12)
    buy[-1] = 0.40
    problem = Problem(t_ms=t, step_ms=STEP, load_w=np.full(n, 800.0), solar_w=np.zeros(n),
                      import_price=buy, export_price=np.full(n, 0.04), soc_percent=60.0)
    plan = Plan(battery_w=np.array([800.0 if m is Mode.SELF_POWERED else 0.0 for m in modes]), car_w=np.zeros(n),
                grid_w=np.zeros(n), soc_percent=np.full(n, 90.0), modes=modes, cost=0.0)
    return problem, plan


def test_the_hub_builds_the_executor_and_it_yields_to_storm_mode_and_the_owner(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="homegrid")
    hub = _hub(tmp_path)
    try:
        ex = hub.executor
        assert ex is not None and ex.battery is hub.control and ex.car is not None
        problem, plan = _plan([Mode.CHARGE, Mode.CHARGE])
        asyncio.run(hub.storm.step())
        assert hub.storm.status["storm"] is True
        out = asyncio.run(ex.follow(problem, plan, 0))
        assert out[0].outcome.startswith("standby: storm mode on (Flood Watch")
        assert asyncio.run(hub.control.backup_reserve()) == 100.0  # storm mode's, untouched
        hub.storm.switch("off", by="test")
        asyncio.run(hub.storm.evaluate())
        out = asyncio.run(ex.follow(problem, plan, 1))
        assert (out[0].device, out[0].outcome) == ("battery", "sent")
        assert asyncio.run(hub.control.settings()) == (90.0, "autonomous")
        assert "planner: battery sent: charge to 90 %" in caplog.text
        assert hub.status()["planner"]["battery_command"] == "charge to 90 % (reserve floor 20 %)"

        app = FastAPI()
        add_planner_routes(app, ex)
        client = behind_the_door(app, tmp_path / "owner")
        seen = client.get("/api/v1/planner/commands").json()
        assert seen["enabled"] and seen["acting"] and seen["commands"][-1]["outcome"] == "sent"
        asyncio.run(ex.follow(problem, plan, 1))  # settled
        asyncio.run(hub.control.set_backup_reserve(35.0))  # the owner, by hand
        asyncio.run(ex.follow(problem, plan, 1))
        seen = client.get("/api/v1/planner/commands").json()
        assert not seen["acting"] and "backup reserve 35 %" in seen["owner_override"]["battery"]
        back = client.post("/api/v1/planner/hand-back", json={}).json()
        assert back["owner_override"]["battery"] is None
        assert back["commands"][-1]["reason"] == "by owner token"
    finally:
        hub.store.close()


def test_without_the_planner_the_routes_say_so(tmp_path):
    app = FastAPI()
    add_planner_routes(app, None)
    client = behind_the_door(app, tmp_path)
    assert client.get("/api/v1/planner/commands").json() == {"enabled": False}
    assert client.post("/api/v1/planner/hand-back", json={}).status_code == 409
    off = Config().replace(planner=PlannerConfig(enabled=False))  # on by default only on the virtual home
    assert Hub(off, tmp_path / "hub", clock=lambda: DURING).executor is None


def test_commands_are_published_on_mqtt(tmp_path, mosquitto):
    publisher = MqttPublisher(MqttBroker(mosquitto.host, mosquitto.port), client_id="planner-test",
                              node_id="planner_home")
    hub = _hub(tmp_path, publisher, dry_run=True)
    got: list[dict[str, object]] = []
    subscribed = threading.Event()
    listener = paho.Client(CallbackAPIVersion.VERSION2, client_id="ha-planner")
    listener.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.connect(mosquitto.host, mosquitto.port)
    listener.subscribe("homegrid/planner_home/event/planner_command", qos=1)
    listener.loop_start()
    try:
        publisher.start()
        assert publisher.wait_ready(10) and subscribed.wait(10)
        problem, plan = _plan([Mode.EXPORT])
        problem = replace(problem, export_price=np.full(2, 0.50))  # a spike: selling beats the 0.40 peak after it
        out = asyncio.run(hub.executor.follow(problem, plan, 0))
        assert [r.outcome for r in out] == ["dry run"]
        wait_for(lambda: bool(got), timeout=10, interval=0.1, what="no planner_command on MQTT")
        assert got[0]["command"] == "export (reserve floor 20 %)" and got[0]["outcome"] == "dry run"
        assert got[0]["time"] == "2019-12-20T23:00:00Z" and "export from the battery" in str(got[0]["reason"])
    finally:
        listener.loop_stop()
        listener.disconnect()
        publisher.stop()
        hub.store.close()
