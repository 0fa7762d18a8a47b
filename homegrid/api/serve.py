"""What ``homegrid serve`` puts in front of a hub: its HTTP app and its MQTT publisher.

The hub (:class:`homegrid.hub.service.Hub`) publishes through its own :class:`~homegrid.hub.service.Publisher`
protocol and serves whatever ASGI app it is handed; both are built here, one layer above it.
"""

from __future__ import annotations

from fastapi import FastAPI

from homegrid.api.app import create_app
from homegrid.api.mqtt import MqttPublisher
from homegrid.api.plan import add_plan_routes
from homegrid.api.planner import add_planner_routes
from homegrid.api.security import install_security, policy_for
from homegrid.api.settings import add_settings_routes
from homegrid.api.storm import add_storm_routes
from homegrid.config import Config
from homegrid.credentials import Credentials
from homegrid.hub.devices import mqtt_broker
from homegrid.hub.service import Hub
from homegrid.owner import OwnerKey

__all__ = ["build_app", "build_publisher"]


def build_app(hub: Hub, host: str) -> FastAPI:
    """The hub's HTTP API and web app, behind the owner's door as the hub listens on ``host``."""
    app = create_app(hub.queries, health=hub.status, live=hub.live, outages=hub.outages.report, backup=hub.backup,
                     tariff=hub.tariff, planner_saving=hub.planner_saving, clock=hub.clock)
    app.state.units = hub.config.site.unit_system
    add_storm_routes(app, hub.storm)
    add_settings_routes(app, hub.control, hub.storm)
    add_planner_routes(app, hub.executor, hub.planning)
    add_plan_routes(app, hub.planning)
    install_security(app, policy_for(hub.config.server, OwnerKey(hub.data_dir), host))
    return app


def build_publisher(config: Config, credentials: Credentials) -> MqttPublisher | None:
    """The MQTT publisher when ``[mqtt] publish`` is on, else None."""
    if config.mqtt is None or not config.mqtt.publish:
        return None
    m = config.mqtt
    return MqttPublisher(
        mqtt_broker(config, credentials), client_id=m.client_id, topic_prefix=m.topic_prefix,
        discovery_prefix=m.discovery_prefix, node_id=_node_id(config.site.name),
    )


def _node_id(name: str) -> str:
    slug = "".join(c if c.isascii() and c.isalnum() else "_" for c in name.lower()).strip("_")
    return slug or "home"
