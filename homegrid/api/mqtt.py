"""homegrid's live quantities out to an MQTT broker, announced to Home Assistant.

Topics (``<prefix>`` is ``topic_prefix``, ``<node>`` the ``node_id``)::

    <prefix>/<node>/state          one JSON object per reading, retained:
                                   {"time": "2025-06-01T16:00:00+00:00", "solar_power": 5210.3,
                                    "grid_status": "connected", "ev_at_home": 1, ...}
    <prefix>/<node>/availability   "online" / "offline", retained; "offline" is also the Last Will
    <prefix>/<node>/device/<device>/availability
                                   "online" while the device is live, "offline" while it is stale or
                                   offline (homegrid.hub.liveness), retained
    <discovery>/sensor/<node>/<name>/config          Home Assistant discovery, retained, one per
    <discovery>/binary_sensor/<node>/<name>/config   quantity (flags are binary sensors)

A reading carries only the quantities it measured; the value templates leave a
sensor's state as it was when its quantity is missing from a message. A quantity
whose device is known (:meth:`MqttPublisher.device_states`) is available while the
hub is online *and* its device is live (``availability_mode: all``), as Home
Assistant's own integrations mark a device's entities ``unavailable``.

Everything is driven by the glossary: the Home Assistant device and state class
follow a quantity's kind and unit, so a new glossary quantity needs no change here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any

import paho.mqtt.client as paho

from homegrid import __version__
from homegrid.devices.mqtt import MqttBroker, MqttLink, Will, check_topic
from homegrid.glossary import ALL_NAMES, QUANTITIES, Kind, Quantity, quantity
from homegrid.readings import Reading

__all__ = ["MqttPublisher", "discovery_config", "state_payload"]

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"

#: Home Assistant device class by unit, for gauges and counters.
DEVICE_CLASS_BY_UNIT = {"W": "power", "kW": "power", "Wh": "energy", "kWh": "energy", "km": "distance",
                        "s": "duration", "V": "voltage", "Hz": "frequency"}
#: Energy that is a gauge (what a battery holds) is ``energy_storage``: HA's ``energy`` must be a total.
GAUGE_DEVICE_CLASS_BY_UNIT = {**DEVICE_CLASS_BY_UNIT, "Wh": "energy_storage", "kWh": "energy_storage"}
#: Decimals sent, by unit: W to 0.1, Wh to 1, % to 0.1; other units to 0.001.
DECIMALS_BY_UNIT = {"W": 1, "Wh": 0, "%": 1, "km": 1, "s": 0, "V": 1, "Hz": 3}
_WORDS = {"ev": "EV", "soc": "SoC"}
_NODE_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def label(name: str) -> str:
    """A glossary name as an entity name: ``ev_soc`` -> ``EV SoC``, ``grid_power`` -> ``Grid power``."""
    words = [_WORDS.get(w, w) for w in name.split("_")]
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def rounded(q: Quantity, value: float) -> float | int:
    """A value rounded for display by its unit (see :data:`DECIMALS_BY_UNIT`)."""
    decimals = DECIMALS_BY_UNIT.get(q.unit, 3)
    if decimals == 0:
        return round(value)
    return round(value, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def state_payload(reading: Reading) -> dict[str, Any]:
    """The JSON object published for one reading.

    Numbers are rounded by unit, status codes become their lower-case names, flags
    0 or 1; values that are not finite, and status codes that name no state, are left out.
    """
    out: dict[str, Any] = {"time": reading.time.astimezone(UTC).isoformat()}
    for name in ALL_NAMES:
        if name not in reading.values:
            continue
        value = reading.values[name]
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(v):
            continue
        q = quantity(name)
        if q.states is not None:
            try:
                out[name] = q.states(int(v)).name.lower()
            except ValueError:
                log.debug("MQTT publisher: %s code %r names no state; left out", name, value)
        elif q.kind is Kind.FLAG:
            out[name] = 1 if v else 0
        else:
            out[name] = rounded(q, v)
    return out


def discovery_config(
    q: Quantity,
    *,
    node_id: str,
    state_topic: str,
    availability_topic: str,
    device: dict[str, Any],
    device_availability_topic: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The Home Assistant component and discovery config of one quantity.

    ``device_availability_topic``: the availability of the device that measures it, when known; the
    entity is then available only while both the hub and that device are.

    Returns
    -------
    component : str
        ``sensor`` or ``binary_sensor``.
    config : dict
        The discovery payload.
    """
    config: dict[str, Any] = {
        "name": label(q.name),
        "unique_id": f"homegrid_{node_id}_{q.name}",
        "state_topic": state_topic,
        "availability_topic": availability_topic,
        "payload_available": ONLINE,
        "payload_not_available": OFFLINE,
        "device": device,
        "origin": {"name": "homegrid", "sw_version": __version__},
    }
    if device_availability_topic is not None:
        del config["availability_topic"], config["payload_available"], config["payload_not_available"]
        config["availability"] = [
            {"topic": t, "payload_available": ONLINE, "payload_not_available": OFFLINE}
            for t in (availability_topic, device_availability_topic)]
        config["availability_mode"] = "all"
    # A message without this quantity renders "": Home Assistant ignores an empty state
    # for numeric sensors and binary sensors; an enum keeps its current state instead.
    missing_keeps = "''"
    component = "sensor"
    if q.states is not None:
        config["device_class"] = "enum"
        config["options"] = [s.name.lower() for s in q.states]
        missing_keeps = "this.state"
    elif q.kind is Kind.FLAG:
        component = "binary_sensor"
        config["payload_on"] = "1"
        config["payload_off"] = "0"
        if q.name.endswith("_at_home"):
            config["device_class"] = "presence"
    else:
        if q.unit:
            config["unit_of_measurement"] = q.unit
        if q.kind is Kind.PERCENT and q.name.endswith("_soc"):
            config["device_class"] = "battery"
        elif q.kind is Kind.GAUGE and q.unit in GAUGE_DEVICE_CLASS_BY_UNIT:
            config["device_class"] = GAUGE_DEVICE_CLASS_BY_UNIT[q.unit]
        elif q.unit in DEVICE_CLASS_BY_UNIT and q.kind in (Kind.POWER, Kind.COUNTER):
            config["device_class"] = DEVICE_CLASS_BY_UNIT[q.unit]
        if q.kind is Kind.COUNTER:
            config["state_class"] = "total_increasing"
        elif q.kind in (Kind.POWER, Kind.PERCENT, Kind.GAUGE):
            config["state_class"] = "measurement"
    config["value_template"] = f"{{{{ value_json.{q.name} | default({missing_keeps}) }}}}"
    return component, config


def _prefix(value: str, what: str) -> str:
    check_topic(value, what)
    if value.startswith("/") or value.endswith("/"):
        raise ValueError(f"{what} {value!r} must not start or end with '/'")
    return value


class MqttPublisher:
    """Publishes each reading to an MQTT broker, with Home Assistant discovery and availability.

    The hub calls :meth:`start` once (the first :meth:`publish` does it otherwise),
    :meth:`publish` with each new reading (from the event loop: it never blocks), and
    :meth:`stop` (blocking, about a second at most) or ``await`` :meth:`close` when it
    shuts down. Broker trouble never raises: the client reconnects in the background,
    and readings published while it is away are dropped (they are live values; the next
    reading supersedes them).

    Parameters
    ----------
    broker : MqttBroker, optional
        The broker and its settings (:func:`homegrid.hub.devices.mqtt_broker` builds them from the config and
        the credentials); default: ``MqttBroker()``, 127.0.0.1:1883 without credentials.
    client_id : str, optional
        MQTT client id (default ``homegrid-publisher-<random>``).
    topic_prefix : str
        First level of the state and availability topics.
    discovery_prefix : str
        Home Assistant's discovery prefix.
    node_id : str
        This site's id in topics and unique ids (letters, digits, ``_``, ``-``).
    device_name : str
        The Home Assistant device's name (entity ids follow it: ``sensor.homegrid_solar_power``).
    names : iterable of str, optional
        Quantities announced on every connect. None (the default) announces each quantity
        when it first appears in a reading; quantities outside ``names`` are announced the same way.
    retain_state : bool
        Retain the state message, so a subscriber sees the newest reading at once.
    discovery : bool
        Publish Home Assistant discovery configs.
    """

    def __init__(
        self,
        broker: MqttBroker | None = None,
        *,
        client_id: str | None = None,
        topic_prefix: str = "homegrid",
        discovery_prefix: str = "homeassistant",
        node_id: str = "home",
        device_name: str = "homegrid",
        names: Iterable[str] | None = None,
        retain_state: bool = True,
        discovery: bool = True,
    ) -> None:
        if not _NODE_ID.match(node_id or ""):
            raise ValueError(f"node_id {node_id!r} may hold only letters, digits, '_' and '-'")
        self.topic_prefix = _prefix(topic_prefix, "topic_prefix")
        self.discovery_prefix = _prefix(discovery_prefix, "discovery_prefix")
        self.node_id = node_id
        self.device_name = device_name
        self.retain_state = retain_state
        self.discovery = discovery
        self._lock = threading.Lock()
        self._names: list[str] = []
        for name in names or ():
            quantity(name)  # KeyError naming the choices
            if name not in self._names:
                self._names.append(name)
        self.state_topic = f"{self.topic_prefix}/{node_id}/state"
        #: commands: topic -> callback(payload), subscribed at every connect (storm mode's switch ...)
        self.commands: dict[str, Callable[[bytes], None]] = {}
        self._switches: dict[str, dict[str, Any]] = {}
        self.availability_topic = f"{self.topic_prefix}/{node_id}/availability"
        self._owner: dict[str, str] = {}  # quantity -> the device that measures it
        self._device_online: dict[str, bool] = {}  # device -> live, as last published
        self.published = 0
        self.dropped = 0
        self.device = {
            "identifiers": [f"homegrid_{node_id}"],
            "name": device_name,
            "manufacturer": "homegrid",
            "model": "homegrid hub",
            "sw_version": __version__,
        }
        self.link = MqttLink(
            MqttBroker() if broker is None else broker, client_id, role="publisher", on_connect=self._connected,
            on_message=self._receive, will=Will(self.availability_topic, OFFLINE, qos=1, retain=True),
        )

    def __repr__(self) -> str:
        return f"MqttPublisher({self.state_topic!r} at {self.link.broker.address})"

    # --- what is published --------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The quantities announced so far (or on the next connect)."""
        with self._lock:
            return tuple(self._names)

    def discovery_topic(self, name: str) -> str:
        """The discovery config topic of one quantity."""
        component, _ = self._config(quantity(name))
        return f"{self.discovery_prefix}/{component}/{self.node_id}/{name}/config"

    def _config(self, q: Quantity) -> tuple[str, dict[str, Any]]:
        with self._lock:
            owner = self._owner.get(q.name)
        return discovery_config(q, node_id=self.node_id, state_topic=self.state_topic,
                                availability_topic=self.availability_topic, device=self.device,
                                device_availability_topic=None if owner is None else self.device_topic(owner))

    def device_topic(self, device: str) -> str:
        """The availability topic of one device."""
        return f"{self.topic_prefix}/{self.node_id}/device/{device}/availability"

    def device_states(self, devices: Iterable[dict[str, Any]]) -> None:
        """Each device's ``name``, ``state`` and ``quantities`` (``Hub.live()``): its availability is published
        when it changes (``online`` while ``live``), and a quantity that gets a device is announced again with
        that device's availability. Never blocks."""
        changed: list[str] = []
        flips: list[tuple[str, bool]] = []
        with self._lock:
            for d in devices:
                name = str(d["name"])
                if not _NODE_ID.match(name):
                    continue
                for q in d.get("quantities") or ():
                    if q in ALL_NAMES and self._owner.get(q) != name:
                        self._owner[q] = name
                        changed.append(q)
                online = d.get("state") == "live"
                if self._device_online.get(name) != online:
                    self._device_online[name] = online
                    flips.append((name, online))
            announced = [q for q in changed if q in self._names]
        if self.link.closed:
            return
        self.link.start()
        for name, online in flips:
            self.link.publish(self.device_topic(name), ONLINE if online else OFFLINE, qos=1, retain=True)
        if announced and self.discovery:
            self._announce(announced)

    def discovery_messages(self, names: Iterable[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        """``(topic, config)`` of each announced quantity (or of ``names``), in glossary order."""
        wanted = set(self.names if names is None else names)
        out = []
        for q in QUANTITIES:
            if q.name in wanted:
                component, config = self._config(q)
                out.append((f"{self.discovery_prefix}/{component}/{self.node_id}/{q.name}/config", config))
        return out

    # --- life cycle ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while connected to the broker."""
        return self.link.connected

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout`` [s] passed (for tests and the command line)."""
        return self.link.wait_connected(timeout)

    def wait_ready(self, timeout: float) -> bool:
        """Block until connected with our subscriptions (Home Assistant's status, command topics)
        acknowledged by the broker, or ``timeout`` [s] passed."""
        return self.link.wait_ready(timeout)

    def start(self) -> None:
        """Connect in the background; returns at once. Announcements follow every (re)connect."""
        self.link.start()

    def stop(self) -> None:
        """Say "offline", disconnect cleanly and end the network thread (blocks about a second at most)."""
        self.link.stop(before_disconnect=self._goodbye)

    async def close(self) -> None:
        """:meth:`stop` off the event loop."""
        await asyncio.to_thread(self.stop)

    def status(self) -> dict[str, Any]:
        """Connection state and counts for the hub's health report (no credentials)."""
        return {**self.link.status(), "state_topic": self.state_topic, "published": self.published,
                "dropped": self.dropped}

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, reading: Reading) -> bool:
        """Send one reading's state; never blocks.

        Returns False when it was dropped (not connected, stopped, or nothing to send).
        """
        if self.link.closed:
            self.dropped += 1
            return False
        self.link.start()  # once; returns at once
        payload = state_payload(reading)
        new = []
        with self._lock:
            for name in payload:
                if name != "time" and name not in self._names:
                    self._names.append(name)
                    new.append(name)
        if new and self.discovery:
            self._announce(new)
        if len(payload) == 1:
            return False
        if self.link.publish(self.state_topic, json.dumps(payload, separators=(",", ":")), qos=0,
                             retain=self.retain_state):
            self.published += 1
            return True
        self.dropped += 1
        return False

    def publish_event(self, kind: str, payload: dict[str, Any]) -> bool:
        """Send an event (``outage_started``, ``outage_ended`` ...) as JSON to ``<prefix>/<node>/event/<kind>``,
        at least once (QoS 1), not retained; False when not connected."""
        if self.link.closed:
            return False
        self.link.start()
        topic = f"{self.topic_prefix}/{self.node_id}/event/{kind}"
        return bool(self.link.publish(topic, json.dumps(payload, separators=(",", ":")), qos=1, retain=False))

    def _announce(self, names: Iterable[str] | None = None) -> None:
        for topic, config in self.discovery_messages(names):
            self.link.publish(topic, json.dumps(config, separators=(",", ":")), qos=1, retain=True)

    def add_switch(self, object_id: str, name: str, on_command: Callable[[bytes], None]) -> str:
        """A command topic ``<prefix>/<node>/<object_id>/set`` (announced to Home Assistant as a switch with
        state topic ``<prefix>/<node>/<object_id>/state``); returns the state topic to publish ``ON``/``OFF`` to."""
        base = f"{self.topic_prefix}/{self.node_id}/{object_id}"
        self.commands[f"{base}/set"] = on_command
        self._switches[object_id] = {
            "name": name, "unique_id": f"homegrid_{self.node_id}_{object_id}", "command_topic": f"{base}/set",
            "state_topic": f"{base}/state", "availability_topic": self.availability_topic, "device": self.device,
        }
        if self.link.connected:
            self._connected(self.link)
        return f"{base}/state"

    def publish_text(self, topic: str, text: str, retain: bool = True) -> bool:
        """Send a plain text payload (a switch's state)."""
        if self.link.closed:
            return False
        self.link.start()
        return bool(self.link.publish(topic, text, qos=1, retain=retain))

    def _connected(self, link: MqttLink) -> None:
        if self.commands:
            link.subscribe(list(self.commands), qos=1)
        for object_id, config in self._switches.items():
            topic = f"{self.discovery_prefix}/switch/{self.node_id}/{object_id}/config"
            link.publish(topic, json.dumps(config, separators=(",", ":")), qos=1, retain=True)
        with self._lock:
            devices = dict(self._device_online)
        for name, online in devices.items():
            link.publish(self.device_topic(name), ONLINE if online else OFFLINE, qos=1, retain=True)
        if self.discovery:
            self._announce()
            link.subscribe([f"{self.discovery_prefix}/status"], qos=1)
        link.publish(self.availability_topic, ONLINE, qos=1, retain=True)

    def _receive(self, message: paho.MQTTMessage) -> None:
        command = self.commands.get(message.topic)
        if command is not None:
            try:
                command(bytes(message.payload))  # paho types it bytes | bytearray; it hands over bytes
            except Exception as exc:  # a bad command must not kill the network thread
                log.warning("MQTT command on %s failed: %s", message.topic, exc)
            return
        # Home Assistant's birth message: it may have lost what it knew; announce again.
        if message.topic == f"{self.discovery_prefix}/status" and message.payload == ONLINE.encode():
            log.info("MQTT publisher: Home Assistant came online; announcing again")
            self._announce()
            self.link.publish(self.availability_topic, ONLINE, qos=1, retain=True)

    def _goodbye(self) -> None:
        info = self.link.client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
        try:
            info.wait_for_publish(timeout=1.0)
        except (RuntimeError, ValueError) as exc:
            log.debug("MQTT publisher: 'offline' not confirmed: %s", exc)
