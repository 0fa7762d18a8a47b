"""Generic meters read from MQTT topics: Tasmota, Shelly, or anything that publishes numbers.

Each :class:`MeterTopic` maps one value on one topic to one glossary name::

    MqttMeter([
        MeterTopic("tele/grid/SENSOR", "grid_power", path="ENERGY.Power"),                # Tasmota [W]
        MeterTopic("tele/grid/SENSOR", "grid_energy_imported", path="ENERGY.Total", scale=1000),  # kWh -> Wh
        MeterTopic("shellies/pv/emeter/0/power", "solar_power"),                          # a bare number [W]
        MeterTopic("shelly-ev/status/em1:0", "ev_power", path="act_power"),               # Gen2 JSON
    ], MqttBroker("192.168.1.5"))

The meter keeps the newest value of each name and the time it arrived; a poll
returns the values that arrived since the previous poll, stamped with the newest
of their times, and never repeats an old value as if it were new. Messages the
broker replays from its retained store when we subscribe are old news and are
skipped, unless the mapping reads the time from the payload (``time_path``).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho

from homegrid.devices.base import Device, DeviceError
from homegrid.devices.mqtt import MqttBroker, MqttLink, check_topic
from homegrid.glossary import ALL_NAMES, Kind, quantity
from homegrid.readings import Reading
from homegrid.timezones import parse_iso_time

__all__ = ["MeterTopic", "MqttMeter", "read_value"]

_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no"}


class _Bad(ValueError):
    """One message that gave no value for one mapping."""


def _seconds(s: float) -> str:
    return f"{s:.0f}" if s >= 10 else f"{s:.1f}"


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass(frozen=True)
class MeterTopic:
    """One value on one MQTT topic, mapped to a glossary name.

    Parameters
    ----------
    topic : str
        The exact topic (no wildcards: several meters on one name would overwrite each other).
    name : str
        The glossary name the value becomes.
    path : str, optional
        Dotted path into a JSON payload, list items by index (``ENERGY.Power``,
        ``emeter.0.power``); None when the payload is the bare value.
    scale : float
        Multiplier into the glossary unit (1000 for kW -> W or kWh -> Wh, -1 to flip a sign).
        Status and flag quantities take no scale.
    time_path : str, optional
        Dotted path to the time of the value inside the payload: ISO 8601 with an offset,
        or seconds (or milliseconds) since the epoch. Without it the arrival time is used.
    """

    topic: str
    name: str
    path: str | None = None
    scale: float = 1.0
    time_path: str | None = None

    def __post_init__(self) -> None:
        check_topic(self.topic, "meter topic")
        if self.name not in ALL_NAMES:
            raise ValueError(f"meter topic {self.topic!r}: {self.name!r} is not a glossary name; "
                             f"known: {', '.join(ALL_NAMES)}")
        for label, path in (("path", self.path), ("time_path", self.time_path)):
            if path is not None and (not path or any(not part for part in path.split("."))):
                raise ValueError(f"meter topic {self.topic!r}: {label} {path!r} has an empty part")
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale) \
                or self.scale == 0:
            raise ValueError(f"meter topic {self.topic!r}: scale must be a finite non-zero number, got {self.scale!r}")
        q = quantity(self.name)
        if self.scale != 1 and (q.states is not None or q.kind is Kind.FLAG):
            raise ValueError(f"meter topic {self.topic!r}: {self.name} is a {q.kind.value}, it takes no scale")


def _walk(doc: Any, path: str) -> Any:
    node = doc
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                raise _Bad(f"no {path!r} in the payload ({part!r} missing)")
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError):
                raise _Bad(f"no {path!r} in the payload (no item {part!r} in a list of {len(node)})") from None
        else:
            raise _Bad(f"no {path!r} in the payload ({part!r} asked of {type(node).__name__} {_preview(repr(node))})")
    return node


def _convert(name: str, raw: Any, scale: float) -> float:
    """A raw payload value as a float in the glossary's unit."""
    q = quantity(name)
    if q.states is not None:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise _Bad(f"{name} expects a state name or code, got {_preview(repr(raw))}")
        try:
            return float(q.states.parse(raw if isinstance(raw, str) else _float(raw)))
        except ValueError as exc:
            raise _Bad(str(exc)) from None
    if q.kind is Kind.FLAG:
        if isinstance(raw, bool):
            return float(raw)
        text = str(raw).strip().lower() if isinstance(raw, (str, int, float)) else ""
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
        raise _Bad(f"{name} is a flag (on/off, true/false, 1/0), got {_preview(repr(raw))}")
    if isinstance(raw, bool):
        raise _Bad(f"not a number: {raw!r}")
    if isinstance(raw, str):
        try:
            raw = float(raw.strip())
        except ValueError:
            raise _Bad(f"not a number: {_preview(raw)}") from None
    if not isinstance(raw, (int, float)):
        raise _Bad(f"not a number: {type(raw).__name__} {_preview(repr(raw))}")
    value = _float(raw) * scale
    if not math.isfinite(value):
        raise _Bad(f"not a finite number: {_preview(repr(raw))}")
    return value


def _float(raw: int | float) -> float:
    """JSON integers have any size; one beyond a float's range is no reading."""
    try:
        return float(raw)
    except OverflowError:
        raise _Bad(f"not a finite number: {_preview(str(raw))}") from None


def _parse_time(raw: Any) -> datetime:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        stamp = _float(raw)
        seconds = stamp / 1000 if stamp > 1e11 else stamp  # 1e11 s is the year 5138: larger numbers are ms
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):  # NaN, or beyond the years datetime (or the OS) can hold
            raise _Bad(f"time {_preview(repr(raw))} is not a time in epoch seconds or milliseconds") from None
    if isinstance(raw, str):
        try:
            return parse_iso_time(raw).astimezone(UTC)
        except ValueError as exc:
            raise _Bad(f"time {exc}") from None
    raise _Bad(f"time {_preview(repr(raw))} is neither ISO 8601 nor epoch seconds")


class _Payload:
    """One message's payload, decoded once for every mapping of its topic."""

    def __init__(self, payload: bytes | bytearray) -> None:
        self.undecodable = False
        self.json_error: str | None = None
        self.text = ""
        self.doc: Any = None
        try:
            self.text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self.undecodable = True
            return
        try:
            self.doc = json.loads(self.text)
        except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
            self.json_error = f"not JSON ({getattr(exc, 'msg', exc)}): {_preview(self.text)}"
        except RecursionError:
            self.json_error = f"not JSON (nested too deeply): {_preview(self.text)}"

    def value(self, m: MeterTopic, arrived: datetime) -> tuple[float, datetime]:
        """The value of one mapping in the glossary's unit and its time; :class:`_Bad` saying why not."""
        if self.undecodable:
            raise _Bad("payload is not UTF-8 text")
        if m.path is None:
            raw = self.text.strip() if self.json_error else self.doc  # a bare value need not be JSON ("ON")
        elif self.json_error:
            raise _Bad(self.json_error)
        else:
            raw = _walk(self.doc, m.path)
        value = _convert(m.name, raw, m.scale)
        if m.time_path is None:
            return value, arrived
        try:
            if self.json_error:
                raise _Bad(self.json_error)
            return value, _parse_time(_walk(self.doc, m.time_path))
        except _Bad as exc:
            raise _Bad(f"{exc}; no value taken") from None


def read_value(m: MeterTopic, payload: bytes, arrived: datetime) -> tuple[float, datetime]:
    """One mapping's value and time from one message's payload, as the meter takes it.

    Parameters
    ----------
    m : MeterTopic
        The mapping.
    payload : bytes
        The message's payload.
    arrived : datetime
        When the message arrived (the value's time unless the mapping reads it from the payload).

    Returns
    -------
    tuple of (float, datetime)
        The value in the glossary's unit, finite, and its aware time.

    Raises
    ------
    ValueError
        The payload gives no value for this mapping; the message says why.
    """
    return _Payload(payload).value(m, arrived)


class MqttMeter(Device):
    """A meter whose values arrive on MQTT topics.

    Parameters
    ----------
    topics : iterable of MeterTopic
        The mapping; each glossary name at most once. Several names may share a topic.
    broker : MqttBroker, optional
        The broker and its settings (:func:`homegrid.hub.devices.mqtt_broker` builds them from the config and
        the credentials); default: ``MqttBroker()``, 127.0.0.1:1883 without credentials.
    name : str
        The device's name in the hub's health report.
    stale_after_s : float
        With no good value for this long, :meth:`poll` raises DeviceError [s]. Tasmota
        reports every 300 s by default (``TelePeriod``), hence the generous default.
    client_id : str, optional
        MQTT client id (default ``homegrid-meter-<random>``).
    qos : int
        Subscription QoS.
    clock : callable, optional
        The current aware time, for arrival times.

    Attributes
    ----------
    problems : dict
        ``{name: problem}`` seen since the previous poll (bad payloads, silent topics),
        refreshed by every poll, for the hub's health report.
    bad_messages : dict
        ``{name: count}`` of messages that gave no value, since start.
    received : int
        Messages handled on the mapped topics, since start.
    skipped_retained : int
        Retained copies skipped (see the module's description).
    """

    def __init__(
        self,
        topics: Iterable[MeterTopic],
        broker: MqttBroker | None = None,
        *,
        name: str = "mqtt",
        stale_after_s: float = 600.0,
        client_id: str | None = None,
        qos: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        mapping = list(topics)
        if not mapping:
            raise ValueError("an MQTT meter needs at least one topic")
        seen: dict[str, MeterTopic] = {}
        for m in mapping:
            if not isinstance(m, MeterTopic):
                raise ValueError(f"expected MeterTopic, got {m!r}")
            if m.name in seen:
                raise ValueError(f"{m.name} is mapped twice: from {seen[m.name].topic!r} and {m.topic!r}")
            seen[m.name] = m
        if not stale_after_s > 0:
            raise ValueError(f"stale_after_s must be positive, got {stale_after_s!r}")
        if qos not in (0, 1, 2):
            raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
        self.name = name
        self.topics: tuple[MeterTopic, ...] = tuple(mapping)
        self.stale_after_s = float(stale_after_s)
        self.qos = qos
        self.clock = clock or (lambda: datetime.now(UTC))
        self._by_topic: dict[str, list[MeterTopic]] = {}
        for m in mapping:
            self._by_topic.setdefault(m.topic, []).append(m)
        self.problems: dict[str, str] = {}
        self.bad_messages: dict[str, int] = {}
        self.skipped_retained = 0
        self.received = 0
        self._lock = threading.Lock()
        self._fresh: dict[str, tuple[float, datetime]] = {}  # arrived since the last poll
        self._pending: dict[str, tuple[int, str]] = {}  # problems since the last poll: count, last
        self._last_seen: dict[str, float] = {}  # monotonic arrival of each name's last good value
        self._started_at: float | None = None
        self.link = MqttLink(MqttBroker() if broker is None else broker, client_id, role=f"meter {name}",
                             on_connect=self._subscribe, on_message=self._receive)

    def __repr__(self) -> str:
        return f"MqttMeter({self.name!r}, {len(self.topics)} topics at {self.link.broker.address})"

    # --- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and subscribe in the background; returns at once. The first poll calls it.

        After :meth:`close` it does nothing: a closed meter stays closed.
        """
        if self._started_at is None:
            self._started_at = time.monotonic()
        self.link.start()

    def wait_ready(self, timeout: float) -> bool:
        """Block until connected and subscribed, or ``timeout`` [s] passed; True when ready."""
        return self.link.wait_ready(timeout)

    async def close(self) -> None:
        """Disconnect; waits for the network thread (about a second at most)."""
        await asyncio.to_thread(self.link.stop)

    def stop(self) -> None:
        """Disconnect, blocking (see :meth:`close`)."""
        self.link.stop()

    # --- network thread -----------------------------------------------------------------------

    def _subscribe(self, link: MqttLink) -> None:
        link.subscribe(self._by_topic, self.qos)

    def _problem(self, name: str, message: str) -> None:
        with self._lock:
            count, _ = self._pending.get(name, (0, ""))
            self._pending[name] = (count + 1, message)
            self.bad_messages[name] = self.bad_messages.get(name, 0) + 1

    def _receive(self, message: paho.MQTTMessage) -> None:
        mappings = self._by_topic.get(message.topic)
        if not mappings:
            return
        try:
            self._take(message, mappings)
        finally:
            with self._lock:
                self.received += 1

    def _take(self, message: paho.MQTTMessage, mappings: list[MeterTopic]) -> None:
        arrived = self.clock()
        if message.retain and all(m.time_path is None for m in mappings):
            self.skipped_retained += 1  # the broker's stored copy: we cannot tell how old it is
            return
        payload = _Payload(message.payload)
        for m in mappings:
            if message.retain and m.time_path is None:
                continue
            try:
                value, when = payload.value(m, arrived)
            except ValueError as exc:  # the payload gives no value: read_value says why
                self._problem(m.name, f"{m.topic}: {exc}")
                continue
            with self._lock:
                self._fresh[m.name] = (value, when)
                self._last_seen[m.name] = time.monotonic()

    # --- polling ------------------------------------------------------------------------------

    async def poll(self) -> Reading:
        """The values that arrived since the previous poll; never blocks.

        Returns an empty reading when nothing new arrived yet but the meter is not stale.

        Raises
        ------
        DeviceError
            No good value arrived for ``stale_after_s``.
        """
        self.start()
        now = time.monotonic()
        with self._lock:
            fresh, self._fresh = self._fresh, {}
            pending, self._pending = self._pending, {}
            last_seen = dict(self._last_seen)
        started = self._started_at if self._started_at is not None else now
        problems = {
            name: f"{count} bad message{'s' if count > 1 else ''} since the last poll; the last: {last}"
            for name, (count, last) in pending.items()
        }
        for m in self.topics:
            silent = now - last_seen.get(m.name, started)
            if silent > self.stale_after_s and m.name not in problems:
                problems[m.name] = f"{m.topic}: no value for {_seconds(silent)} s"
        self.problems = problems
        if fresh:
            when = max(t for _, t in fresh.values())
            return Reading(when, {name: v for name, (v, _) in fresh.items()})
        newest = max(last_seen.values(), default=started)
        silent = now - newest
        if silent > self.stale_after_s:
            where = "" if self.link.connected else f"; not connected to {self.link.broker.address}"
            if not self.link.connected and self.link.last_error:
                where += f" ({self.link.last_error})"
            raise DeviceError(f"no message for {_seconds(silent)} s{where}")
        return Reading(self.clock(), {})

    def status(self) -> dict[str, Any]:
        """The connection and message counts, for the hub's health report."""
        return {**self.link.status(), "received": self.received, "bad_messages": dict(self.bad_messages),
                "skipped_retained": self.skipped_retained}
