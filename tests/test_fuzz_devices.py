"""Fuzz of the device reply parsers: recorded real replies with arbitrary JSON values put anywhere in them.

Whatever a gateway, the Tesla API or an MQTT meter sends, a parser returns a valid result (finite numbers,
known states) or raises its clear error (``ReplyError``, ``DeviceError``, ``ValueError``); never a
``TypeError``, ``OverflowError`` or ``KeyError`` that would be a bug in the hub. ``HOMEGRID_FUZZ_EXAMPLES``
sets the number of cases per test (default 300, a few seconds, the same cases at every run so that CI is
not flaky; more are drawn at random: the benchmark runs 100,000).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homegrid.devices import DeviceError
from homegrid.devices.mqtt.meter import MeterTopic, read_value
from homegrid.devices.powerwall import PowerwallGateway
from homegrid.devices.powerwall.replies import (
    AGGREGATE_FIELDS,
    GridFault,
    Operation,
    parse_aggregates,
    parse_capacity,
    parse_grid_faults,
    parse_grid_status,
    parse_operation,
    parse_soe,
)
from homegrid.devices.tesla import TeslaVehicle
from homegrid.devices.tesla.replies import (
    VEHICLE_FIELDS,
    VehicleData,
    VehicleState,
    parse_vehicle_data,
    parse_vehicle_state,
)
from homegrid.glossary import GridStatus

from .conftest import SHARED_DATA
from .test_tesla_vehicle import HOME, VEHICLE_DATA, VEHICLE_STATES

EXAMPLES = int(os.environ.get("HOMEGRID_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 300,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

PW = SHARED_DATA / "powerwall"
TESLA = SHARED_DATA / "tesla" / "home-assistant"

#: Values a JSON decoder can hand over (Python's json reads NaN, Infinity and integers of any size); the edge
#: cases are a branch of their own so that they come up often.
EDGES = st.sampled_from([10**400, -(10**400), 2**63, -1, 0, 1e308, -1e308, math.nan, math.inf, -math.inf, "", "NaN",
                         "1e999", "SystemGridConnected", "Charging", "online", [], {}, [[]], {"": None}])
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
JSON = EDGES | LEAVES | st.recursive(LEAVES | EDGES, lambda inner: st.lists(inner, max_size=3)
                                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


def _paths(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document, the root included."""
    out = [here]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*here, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*here, i))
    return out


def _put(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@st.composite
def mutated(draw: st.DrawFn, original: Any, keys: frozenset[str] = frozenset()) -> Any:
    """The document with one to three places replaced by an arbitrary JSON value (or a key deleted).

    Half the places are drawn among those named by ``keys`` (the vendor fields the parser reads), so that a
    long reply's few read fields are hit as often as its many ignored ones.
    """
    doc = copy.deepcopy(original)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        read = [p for p in paths if p and p[-1] in keys]
        path = draw(st.sampled_from(read if read and draw(st.booleans()) else paths))
        doc = _put(doc, path, copy.deepcopy(draw(JSON)), draw(st.booleans()))  # never change the strategy's own
    return doc


def _load(path: Path) -> Any:
    text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _finite(values: dict[str, float]) -> None:
    for name, v in values.items():
        assert isinstance(v, float) and math.isfinite(v), (name, v)


# -- Powerwall gateway ---------------------------------------------------------------------------------------------

def _check_aggregates(r: Any) -> None:
    assert r and isinstance(r, dict)
    _finite(r)


def _check_number(r: Any) -> None:
    assert isinstance(r, float) and math.isfinite(r)


def _check_operation(r: Any) -> None:
    assert isinstance(r, Operation) and isinstance(r.mode, str) and math.isfinite(r.backup_reserve_percent)


def _check_faults(r: Any) -> None:
    assert isinstance(r, list)
    for f in r:
        assert isinstance(f, GridFault) and isinstance(f.time_ms, int) and isinstance(f.name, str)
        datetime.fromtimestamp(f.time_ms / 1000, UTC)  # the adapter's status shows it


#: File-name key -> parser and the check of its result (the first key in a file's name wins).
POWERWALL: dict[str, tuple[Callable[[Any], Any], Callable[[Any], None]]] = {
    "aggregates": (parse_aggregates, _check_aggregates),
    "soe": (parse_soe, _check_number),
    "grid_status": (parse_grid_status, lambda r: isinstance(r, GridStatus) or pytest.fail(repr(r))),
    "grid_faults": (parse_grid_faults, _check_faults),
    "operation": (parse_operation, _check_operation),
    "system_status": (parse_capacity, _check_number),
}


def _powerwall_parser(path: Path) -> str:
    return next(k for k in POWERWALL if k in path.name)


POWERWALL_KEYS = frozenset({f.meter for f in AGGREGATE_FIELDS} | {f.field for f in AGGREGATE_FIELDS} | {
    "percentage", "grid_status", "real_mode", "backup_reserve_percent", "timestamp", "alert_name", "decoded_alert",
    "alert_is_fault", "nominal_full_pack_energy"})
POWERWALL_REPLIES = sorted(
    (p for p in PW.rglob("*.json") if "openapi" not in p.parts and ".post." not in p.name
     and any(k in p.name for k in POWERWALL)),
    key=str,
)


def test_every_powerwall_endpoint_has_recorded_replies_to_fuzz():
    assert {_powerwall_parser(p) for p in POWERWALL_REPLIES} == set(POWERWALL)


@FUZZ
@given(st.data())
def test_powerwall_parsers_return_valid_values_or_a_clear_error(data):
    path = data.draw(st.sampled_from(POWERWALL_REPLIES), label="recording")
    parse, check = POWERWALL[_powerwall_parser(path)]
    reply = data.draw(mutated(_load(path), POWERWALL_KEYS), label="reply")
    try:
        result = parse(reply)
    except ValueError as exc:  # ReplyError
        assert str(exc).startswith("/api/")
        return
    check(result)


class _Replies:
    """A gateway client answering each endpoint from a dict (the adapter's transport seam)."""

    def __init__(self, replies: dict[str, Any]) -> None:
        self.replies = replies

    def poll(self, api: str) -> Any:
        return self.replies.get(api)


RUNNING = PW / "powerwall2" / "samples" / "21.44-foogod" / "running"
ENDPOINT_FILES = {
    "/api/meters/aggregates": "meters.aggregates.json",
    "/api/system_status/soe": "system_status.soe.json",
    "/api/system_status/grid_status": "system_status.grid_status.json",
    "/api/operation": "operation.json",
    "/api/system_status/grid_faults": "system_status.grid_faults.json",
    "/api/system_status": "system_status.json",
}


@FUZZ
@given(st.data())
def test_powerwall_adapter_gives_a_reading_or_a_device_error(data):
    replies = {api: _load(RUNNING / name) for api, name in ENDPOINT_FILES.items()}
    api = data.draw(st.sampled_from(sorted(replies)), label="endpoint")
    replies[api] = data.draw(mutated(replies[api], POWERWALL_KEYS), label="reply")
    gateway = PowerwallGateway(_Replies(replies))
    try:
        reading = gateway.read()
    except DeviceError:
        return
    _finite(reading.values)
    gateway.status  # noqa: B018 - what the hub's health shows must be buildable too
    gateway.grid_evidence()


# -- Tesla vehicle -------------------------------------------------------------------------------------------------

VEHICLE_REPLIES = sorted(set(VEHICLE_DATA) | set(VEHICLE_STATES))
TESLA_KEYS = frozenset({f.section for f in VEHICLE_FIELDS} | {f.field for f in VEHICLE_FIELDS} | {
    "response", "drive_state", "charging_state", "latitude", "longitude", "shift_state", "timestamp", "state",
    "status", "vin", "results", "last_state", "error"})


def _check_vehicle(data: VehicleData) -> None:
    assert isinstance(data, VehicleData)
    _finite(data.values)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.problems.items())
    assert data.timestamp_ms is None or isinstance(data.timestamp_ms, int)
    assert data.distance_m is None or math.isfinite(data.distance_m)


@FUZZ
@given(st.data())
def test_tesla_parsers_return_valid_values_or_a_clear_error(data):
    rel = data.draw(st.sampled_from(VEHICLE_REPLIES), label="recording")
    reply = data.draw(mutated(json.loads((TESLA / rel).read_text()), TESLA_KEYS), label="reply")
    try:
        _check_vehicle(parse_vehicle_data(reply, HOME))
    except ValueError as exc:  # ReplyError
        assert str(exc).startswith("vehicle_data: ")
    try:
        assert isinstance(parse_vehicle_state(reply), VehicleState)
    except ValueError as exc:
        assert str(exc).startswith("vehicle list: ")


class _Car:
    """A vehicle client whose car is online and answers ``vehicle_data`` with the given reply."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    async def state(self) -> str:
        return "online"

    async def vehicle_data(self) -> Any:
        return self.reply


@FUZZ
@given(st.data())
def test_tesla_adapter_gives_a_reading_or_a_device_error(data):
    rel = data.draw(st.sampled_from(sorted(VEHICLE_DATA)), label="recording")
    reply = data.draw(mutated(VEHICLE_DATA[rel][0](json.loads((TESLA / rel).read_text())), TESLA_KEYS), label="reply")
    car = TeslaVehicle(_Car(reply), home=HOME)  # type: ignore[arg-type]
    try:
        reading = asyncio.run(car.poll())
    except DeviceError:
        return
    _finite(reading.values)
    car.status  # noqa: B018 - what the hub's health shows must be buildable too


# -- MQTT meters ---------------------------------------------------------------------------------------------------

#: Payloads in the shapes the meters publish (Tasmota ``tele/.../SENSOR``, Shelly Gen2 ``em1`` status, a bare
#: number) with the mappings that read them; shapes as in the vendors' documentation.
TASMOTA = {"Time": "2025-06-01T12:00:00", "ENERGY": {"TotalStartTime": "2024-01-01T00:00:00", "Total": 1234.567,
                                                      "Yesterday": 3.2, "Today": 1.1, "Period": 12, "Power": 850,
                                                      "ApparentPower": 900, "ReactivePower": 300, "Factor": 0.94,
                                                      "Voltage": 231, "Current": 3.9}}
SHELLY = {"id": 0, "current": 4.029, "voltage": 236.1, "act_power": 951.2, "aprt_power": 951.9, "pf": 1,
          "freq": 50, "calibration": "factory", "ts": 1717243200.25}
MQTT_CASES: list[tuple[Any, MeterTopic]] = [
    (TASMOTA, MeterTopic("tele/grid/SENSOR", "grid_power", path="ENERGY.Power")),
    (TASMOTA, MeterTopic("tele/grid/SENSOR", "grid_energy_imported", path="ENERGY.Total", scale=1000)),
    (TASMOTA, MeterTopic("tele/grid/SENSOR", "grid_power", path="ENERGY.Power", time_path="Time")),
    (SHELLY, MeterTopic("shelly/status/em1:0", "ev_power", path="act_power", time_path="ts")),
    (SHELLY, MeterTopic("shelly/status/em1:0", "grid_voltage", path="voltage")),
    ({"state": "islanded", "on": "ON", "list": [{"w": 5}]}, MeterTopic("x/state", "grid_status", path="state")),
    ({"state": "islanded", "on": "ON", "list": [{"w": 5}]}, MeterTopic("x/state", "ev_at_home", path="on")),
    ({"state": "islanded", "on": "ON", "list": [{"w": 5}]}, MeterTopic("x/state", "solar_power", path="list.0.w")),
    (1234.5, MeterTopic("shellies/pv/emeter/0/power", "solar_power")),
]

MQTT_KEYS = frozenset({"ENERGY", "Power", "Total", "Time", "act_power", "ts", "voltage", "state", "on", "list", "w"})


@FUZZ
@given(st.data())
def test_mqtt_payloads_give_a_value_or_a_clear_error(data):
    doc, mapping = data.draw(st.sampled_from(MQTT_CASES), label="case")
    payload = json.dumps(data.draw(mutated(doc, MQTT_KEYS), label="payload")).encode()
    arrived = datetime(2025, 6, 1, 12, tzinfo=UTC)
    try:
        value, when = read_value(mapping, payload, arrived)
    except ValueError as exc:
        assert str(exc)
        return
    assert isinstance(value, float) and math.isfinite(value)
    assert when.tzinfo is not None


@FUZZ
@given(st.binary(max_size=64) | st.sampled_from([b"[" * 100_000, b'{"ENERGY": ' * 50_000, b"1" * 5000]))
def test_mqtt_raw_bytes_give_a_value_or_a_clear_error(payload):
    mapping = MeterTopic("tele/grid/SENSOR", "grid_power", path="ENERGY.Power", time_path="Time")
    for m in (mapping, MeterTopic("p", "solar_power"), MeterTopic("p", "grid_status")):
        try:
            value, _ = read_value(m, payload, datetime(2025, 6, 1, 12, tzinfo=UTC))
        except ValueError:
            continue
        assert math.isfinite(value)

