"""A fake Tesla Powerwall gateway: the local HTTPS API on loopback, for tests and benchmarks.

Real ``pypowerwall`` logs in to it (``POST /api/login/Basic``, cookie or bearer
token) and reads the endpoints homegrid polls, in the shapes of the real
gateway replies recorded in ``shared/data/powerwall`` (firmware 21.44; the
templates are embedded here, nothing is read from disk):

``/api/meters/aggregates``, ``/api/system_status/soe``,
``/api/system_status/grid_status``, ``/api/operation``,
``/api/system_status/grid_faults``, ``/api/system_status``, and ``/api/status``,
``/api/site_info/site_name``, ``/api/sitemaster``, ``/api/logout``.

The model (:class:`GatewayModel`) keeps the powers of a scenario (``normal``
(``day``), ``night``, ``export``, ``outage``), integrates them over the elapsed
time of its clock into the lifetime counters of each meter and into the state of
energy, and keeps a grid-fault log: an outage starts with a new fault entry
stamped with its own time, islands the site (``SystemIslandedActive``, site
power 0), and its end passes through ``SystemTransitionToGrid`` for
``transition_s`` before ``SystemGridConnected``.

Fault switches (:data:`FAULTS`) are set at run time, for every endpoint or for
one: ``timeout`` holds the request for ``hold_s``, ``http500`` answers 500,
``garbage`` a non-JSON HTML page, ``truncated`` the first half of the JSON body
(labelled JSON), ``shape_change`` an aggregates reply of a firmware that renamed
``instant_power`` and dropped the site counters, ``gone`` stops listening
(connection refused; open connections are cut) until cleared with
:meth:`SimulatedGateway.back`, which listens again on the same port and, like a
rebooted gateway, forgets the login sessions.

All gateways of a :class:`Simulator` share one event loop in one background
thread and one self-signed certificate made at start, so hundreds fit in one
process. From synchronous code::

    with Simulator() as sim:
        gw = sim.add_gateway(password="secret")
        ...  # https://{gw.address}/api/meters/aggregates
        gw.set_scenario("outage")
        gw.set_fault("http500", "/api/system_status/grid_faults")

Benchmarks run ``python -m homegrid.devices.powerwall.simulator --count 200
--base-port 20000``; it prints one ``HOST:PORT`` a line and runs until killed.
Each gateway also answers ``GET /_sim/state`` (the true state and counters),
``POST /_sim/scenario`` (``{"scenario": "outage"}``), ``POST /_sim/blip``
(``{"seconds": 2}``: islanded between two polls), ``POST /_sim/warning``
(``{"kind": "over_voltage", "value": 131}``: a logged warning, the site stays on
the grid) and ``POST /_sim/fault``
(``{"fault": "gone", "endpoint": null, "on": true, "for_s": 10}``) without login.

``/api/system_status`` carries ``last_toggle_timestamp``: the time the site last
left or rejoined the grid (an outage's start, its reconnection after the
transition, both edges of a blip), consistent with the grid status.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import ipaddress
import json
import math
import secrets
import signal
import ssl
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from homegrid.devices.powerwall.replies import AGGREGATE_FIELDS, app_soc

__all__ = [
    "ENDPOINTS",
    "FAULTS",
    "SCENARIOS",
    "GatewayModel",
    "GatewayState",
    "ManualClock",
    "Scenario",
    "SimulatedGateway",
    "Simulator",
    "main",
    "running",
]

#: Fault switches; each may be set for all endpoints or for one.
FAULTS: tuple[str, ...] = ("timeout", "http500", "garbage", "truncated", "shape_change", "gone")

#: Endpoints homegrid reads (the first is required, the others optional).
ENDPOINTS: tuple[str, ...] = (
    "/api/meters/aggregates",
    "/api/system_status/soe",
    "/api/system_status/grid_status",
    "/api/operation",
    "/api/system_status/grid_faults",
    "/api/system_status",
)

_PUBLIC = frozenset({"/api/status", "/api/login/Basic", "/api/auth/toggle/supported"})


@dataclass(frozen=True)
class Scenario:
    """Nominal powers of a scenario [W]; ``battery`` is + discharge / - charge, ignored while islanded."""

    solar: float
    load: float
    battery: float
    islanded: bool = False


SCENARIOS: dict[str, Scenario] = {
    # a day with solar: the battery takes most of the surplus, the grid a little import
    "normal": Scenario(solar=2400.0, load=1900.0, battery=-550.0),
    "night": Scenario(solar=0.0, load=900.0, battery=850.0),
    # a full battery at noon: the surplus goes to the grid (grid_power < 0)
    "export": Scenario(solar=5200.0, load=800.0, battery=0.0),
    # the grid is lost: the battery balances the home against the solar
    "outage": Scenario(solar=600.0, load=1400.0, battery=0.0, islanded=True),
}
SCENARIOS["day"] = SCENARIOS["normal"]

#: Lifetime counters at start [Wh], from the real 21.44 recording (meter, field).
_START_COUNTERS: dict[tuple[str, str], float] = {
    ("site", "energy_exported"): 348463.5610710742,
    ("site", "energy_imported"): 752045.9551097859,
    ("battery", "energy_exported"): 567740.0,
    ("battery", "energy_imported"): 642500.0,
    ("load", "energy_exported"): 0.0,
    ("load", "energy_imported"): 1595342.4463185878,
    ("solar", "energy_exported"): 1269175.54256601,
    ("solar", "energy_imported"): 2655.4902861339488,
}

_NEVER = "0001-01-01T00:00:00Z"
#: One meter of ``/api/meters/aggregates`` as firmware 21.44 sends it.
_METER_TEMPLATE: dict[str, Any] = {
    "last_communication_time": _NEVER, "instant_power": 0, "instant_reactive_power": 0,
    "instant_apparent_power": 0, "frequency": 0, "energy_exported": 0, "energy_imported": 0,
    "instant_average_voltage": 0, "instant_average_current": 0, "i_a_current": 0, "i_b_current": 0,
    "i_c_current": 0, "last_phase_voltage_communication_time": _NEVER,
    "last_phase_power_communication_time": _NEVER, "last_phase_energy_communication_time": _NEVER,
    "timeout": 1500000000, "num_meters_aggregated": 1, "instant_total_current": 0,
}
#: (voltage [V], frequency [Hz], reactive power [var]) of each meter, as recorded.
_METER_ELECTRICAL: dict[str, tuple[float, float, float]] = {
    "site": (213.65712736765886, 0.0, -329.0),
    "battery": (246.8, 60.007000000000005, 30.0),
    "load": (213.65712736765886, 0.0, -318.75),
    "solar": (212.17622392718746, 0.0, -14.0),
}
_STATUS = {
    "din": "1232100-00-E--TG000000000SIM", "start_time": "", "up_time_seconds": "", "is_new": False,
    "version": "21.44 223a56cd", "git_hash": "223a56cd575b7b19bad7e12a4ebad0eb52d1f50a", "commission_count": 11,
    "device_type": "teg", "sync_type": "v2.1", "leader": "", "followers": None, "cellular_disabled": False,
}
_SITEMASTER = {"status": "StatusUp", "running": True, "connected_to_tesla": True, "power_supply_mode": False,
               "can_reboot": "Yes"}
#: The alert a grid loss leaves in ``/api/system_status/grid_faults`` (modelled on the recorded entry).
_OUTAGE_ALERT = "PINV_a006_vfCheckUnderFrequency"
#: Warnings the gateway logs while the site stays on the grid: (alert name, detail field, unit, default value).
#: The a004 / a006 / a007 names and fields are the recorded ones; the over-voltage one is modelled on them.
WARNINGS: dict[str, tuple[str, str, str, float]] = {
    "under_voltage": ("PINV_a004_vfCheckUnderVoltage", "PINV_a004_uv_amplitude", "Vrms", 106.0),
    "over_voltage": ("PINV_a005_vfCheckOverVoltage", "PINV_a005_ov_amplitude", "Vrms", 131.0),
    "under_frequency": ("PINV_a006_vfCheckUnderFrequency", "PINV_a006_frequency", "Hz", 59.4),
    "over_frequency": ("PINV_a007_vfCheckOverFrequency", "PINV_a007_frequency", "Hz", 60.6),
}


class ManualClock:
    """A clock that moves only when told: ``clock()`` gives epoch seconds [s]."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` [s]; return the new time [s]."""
        with self._lock:
            self.now += seconds
            return self.now


@dataclass(frozen=True)
class GatewayState:
    """What the simulated gateway truly is at ``time`` (epoch [s]), in glossary names."""

    time: float
    scenario: str
    grid_status: str  # the vendor's name, e.g. SystemIslandedActive
    solar_power: float  # [W]
    home_power: float  # [W]
    grid_power: float  # [W] + import / - export
    battery_power: float  # [W] + discharge / - charge
    soe: float  # [%] the gateway's scale
    counters: dict[str, float]  # lifetime counters [Wh] by glossary name
    faults: tuple[dict[str, Any], ...] = field(default=())  # the grid-fault log, vendor shape

    @property
    def values(self) -> dict[str, float]:
        """Powers [W], counters [Wh], ``battery_soc`` (the Tesla app's scale) and ``battery_soc_gateway``
        (``soe``) [%] by glossary name."""
        return {"solar_power": self.solar_power, "home_power": self.home_power, "grid_power": self.grid_power,
                "battery_power": self.battery_power, "battery_soc": app_soc(self.soe),
                "battery_soc_gateway": self.soe, **self.counters}


@dataclass(frozen=True)
class _Powers:
    solar: float
    load: float
    battery: float
    site: float


class GatewayModel:
    """The gateway's physics: scenario powers, counters integrated over time, state of energy, grid faults.

    Parameters
    ----------
    scenario : str
        One of :data:`SCENARIOS`.
    clock : callable, optional
        Epoch seconds [s]; ``time.time`` by default (a :class:`ManualClock` in tests).
    soe : float
        State of energy at start [%] (gateway scale).
    capacity_wh : float
        Usable battery energy [Wh].
    reserve_percent : float
        Backup reserve [%]: on grid, the battery stops discharging there.
    transition_s : float
        How long ``SystemTransitionToGrid`` lasts after an outage [s].
    wobble_w : float
        Amplitude of a 5-minute sine on the load [W] (0: constant powers).
    """

    def __init__(self, scenario: str = "normal", *, clock: Callable[[], float] | None = None, soe: float = 50.0,
                 capacity_wh: float = 13500.0, reserve_percent: float = 20.0, transition_s: float = 2.0,
                 wobble_w: float = 0.0) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
        self.clock = clock or time.time
        self.capacity_wh = float(capacity_wh)
        self.reserve_percent = float(reserve_percent)
        self.mode = "self_consumption"  # /api/operation's real_mode (reported; the dispatch is self-powered)
        self.transition_s = float(transition_s)
        self.wobble_w = float(wobble_w)
        self._lock = threading.RLock()
        self._scenario = scenario
        self._soe = float(soe)
        self._energy = dict(_START_COUNTERS)
        self._faults: list[dict[str, Any]] = []
        self._t = self.clock()
        self._started = self._t
        self._outage_end: float | None = None
        self._blip: tuple[float, float] | None = None  # an islanding shorter than a poll: [from, to) [s]
        self._toggles: list[float] = [self._t - 30 * 86_400.0]  # when the site left or rejoined the grid [s]
        if SCENARIOS[scenario].islanded:
            self._add_fault(self._t)
            self._toggles.append(self._t)

    # -- state changes ------------------------------------------------------------------------------

    @property
    def scenario(self) -> str:
        return self._scenario

    def set_scenario(self, name: str) -> None:
        """Switch scenario now; entering ``outage`` logs a grid fault, leaving it starts the transition."""
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
        with self._lock:
            now = self._advance()
            was, will = SCENARIOS[self._scenario].islanded, SCENARIOS[name].islanded
            if will and not was:
                self._add_fault(now)
                self._outage_end = None
                self._toggles.append(now)
            elif was and not will:
                self._outage_end = now
                self._toggles.append(now + self.transition_s)  # it rejoins the grid after the transition
            self._scenario = name

    def blip(self, seconds: float) -> None:
        """Island the site now for ``seconds`` [s] (shorter than a poll, say): a fault entry, and the island
        toggle time moves twice; a poll before and one after both see the grid connected."""
        if not 0 < seconds <= 60:
            raise ValueError(f"a blip lasts more than 0 and at most 60 s, not {seconds}")
        with self._lock:
            now = self._advance()
            self._add_fault(now)
            self._blip = (now, now + float(seconds))
            self._toggles += [now, now + float(seconds)]

    def add_warning(self, kind: str, value: float | None = None) -> None:
        """Log a grid warning that does not island the site (one of :data:`WARNINGS`), at the clock's time."""
        if kind not in WARNINGS:
            raise ValueError(f"unknown warning {kind!r}; expected one of {', '.join(WARNINGS)}")
        name, field_name, unit, default = WARNINGS[kind]
        with self._lock:
            now = self._advance()
            self._add_fault(now, name, [{"name": field_name, "value": default if value is None else float(value),
                                         "units": unit}], is_fault=False)

    def toggle_time(self) -> float:
        """When the site last left or rejoined the grid, as the gateway's ``last_toggle_timestamp`` says [s]."""
        now = self.clock()
        return max(t for t in self._toggles if t <= now)

    def _add_fault(self, now: float, name: str = _OUTAGE_ALERT, values: list[dict[str, Any]] | None = None,
                   is_fault: bool = True) -> None:
        stamp = int(now * 1000)
        if values is None:
            values = [{"name": "PINV_a006_frequency", "value": 57.207, "units": "Hz"}]
        detail = [{"name": "PINV_alertID", "value": name},
                  {"name": "PINV_alertType", "value": "Fault" if is_fault else "Warning"}, *values]
        self._faults.append({
            "timestamp": stamp, "alert_name": name, "alert_is_fault": is_fault,
            "decoded_alert": json.dumps(detail, separators=(",", ":")), "alert_raw": 432406325129904128,
            "git_hash": "14f7c1769ec307", "site_uid": "sim", "ecu_type": "TEPINV",
            "ecu_package_part_number": "1081100-10-Y", "ecu_package_serial_number": "SIM00000000001",
        })

    # -- physics --------------------------------------------------------------------------------------

    def _islanded(self, t: float) -> bool:
        if SCENARIOS[self._scenario].islanded:
            return True
        if self._blip is not None and self._blip[0] <= t < self._blip[1]:
            return True
        return self._outage_end is not None and t < self._outage_end + self.transition_s

    def _powers(self, t: float) -> _Powers:
        sc = SCENARIOS[self._scenario]
        load = sc.load + (self.wobble_w * math.sin(2 * math.pi * (t - self._started) / 300.0) if self.wobble_w else 0.0)
        load = max(0.0, load)
        solar = sc.solar
        full, empty = self._soe >= 100.0, self._soe <= (0.0 if self._islanded(t) else self.reserve_percent)
        if self._islanded(t):
            battery = load - solar
            if battery > 0 and empty:  # nothing left: the home goes dark down to what the sun gives
                battery, load = 0.0, solar
            elif battery < 0 and full:  # nowhere to put the surplus: the inverters curtail
                battery, solar = 0.0, load
            return _Powers(solar, load, battery, 0.0)
        battery = sc.battery
        if (battery > 0 and empty) or (battery < 0 and full):
            battery = 0.0
        return _Powers(solar, load, battery, load - solar - battery)

    def _advance(self) -> float:
        """Integrate counters and state of energy from the last step to now; return now [s]."""
        now = self.clock()
        t = self._t
        while t < now:
            dt = now - t
            if self.wobble_w:
                dt = min(dt, 1.0)
            if self._outage_end is not None and t < self._outage_end + self.transition_s:
                dt = min(dt, self._outage_end + self.transition_s - t)
            if self._blip is not None and t < self._blip[1]:
                dt = min(dt, self._blip[1] - t)
            p = self._powers(t + dt / 2 if self.wobble_w else t)
            rate = -p.battery / self.capacity_wh * 100.0 / 3600.0  # [%/s]
            limit = None
            if rate > 0:
                limit = 100.0
            elif rate < 0:
                limit = 0.0 if self._islanded(t) else self.reserve_percent
            hit = False
            if limit is not None and (limit - self._soe) / rate < dt:
                dt, hit = max(0.0, (limit - self._soe) / rate), True
            h = dt / 3600.0
            e = self._energy
            e["site", "energy_imported"] += max(p.site, 0.0) * h
            e["site", "energy_exported"] += max(-p.site, 0.0) * h
            e["battery", "energy_exported"] += max(p.battery, 0.0) * h
            e["battery", "energy_imported"] += max(-p.battery, 0.0) * h
            e["solar", "energy_exported"] += max(p.solar, 0.0) * h
            e["load", "energy_imported"] += max(p.load, 0.0) * h
            self._soe = limit if hit and limit is not None else self._soe + rate * dt
            t += dt
        if self._outage_end is not None and now >= self._outage_end + self.transition_s:
            self._outage_end = None
        self._t = max(self._t, now)
        return now

    # -- readings -------------------------------------------------------------------------------------

    def grid_status(self) -> str:
        """The vendor grid status now."""
        with self._lock:
            now = self._advance()
            if SCENARIOS[self._scenario].islanded:
                return "SystemIslandedActive"
            if self._islanded(now):
                return "SystemTransitionToGrid"
            return "SystemGridConnected"

    def state(self) -> GatewayState:
        """The true state now, in glossary names."""
        with self._lock:
            now = self._advance()
            p = self._powers(now)
            counters = {f.name: self._energy[f.meter, f.field] for f in AGGREGATE_FIELDS
                        if (f.meter, f.field) in self._energy}
            return GatewayState(now, self._scenario, self.grid_status(), p.solar, p.load, p.site, p.battery,
                                self._soe, counters, tuple(copy.deepcopy(self._faults)))

    def aggregates(self) -> dict[str, Any]:
        """The ``/api/meters/aggregates`` reply now."""
        with self._lock:
            now = self._advance()
            p = self._powers(now)
            islanded = self._islanded(now)
            stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")
            out: dict[str, Any] = {}
            for meter, power in (("site", p.site), ("battery", p.battery), ("load", p.load), ("solar", p.solar)):
                m = dict(_METER_TEMPLATE)
                volts, hz, var = _METER_ELECTRICAL[meter]
                if meter == "site" and islanded:
                    volts, var = 0.0, 0.0
                amps = abs(power) / volts if volts else 0.0
                m.update({
                    "last_communication_time": stamp, "instant_power": power, "instant_reactive_power": var,
                    "instant_apparent_power": math.hypot(power, var), "frequency": hz,
                    "energy_exported": self._energy[meter, "energy_exported"],
                    "energy_imported": self._energy[meter, "energy_imported"],
                    "instant_average_voltage": volts, "instant_average_current": amps, "instant_total_current": amps,
                })
                if meter == "load":
                    del m["num_meters_aggregated"]  # as recorded: the load meter has none
                if meter == "site":
                    m["num_meters_aggregated"] = 2
                out[meter] = m
            return out

    def soe(self) -> dict[str, Any]:
        """The ``/api/system_status/soe`` reply now."""
        with self._lock:
            self._advance()
            return {"percentage": self._soe}

    def grid_status_reply(self) -> dict[str, Any]:
        status = self.grid_status()
        return {"grid_status": status, "grid_services_active": status != "SystemGridConnected"}

    def operation(self) -> dict[str, Any]:
        return {"real_mode": self.mode, "backup_reserve_percent": self.reserve_percent,
                "freq_shift_load_shed_soe": 75, "freq_shift_load_shed_delta_f": -0.32}

    def grid_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            return copy.deepcopy(self._faults)

    def system_status(self) -> dict[str, Any]:
        """The ``/api/system_status`` reply now (the fields homegrid reads, in the recorded shape)."""
        with self._lock:
            now = self._advance()
            toggled = datetime.fromtimestamp(self.toggle_time(), UTC).astimezone(timezone(timedelta(hours=-7)))
            return {
                "nominal_full_pack_energy": self.capacity_wh,
                "nominal_energy_remaining": self.capacity_wh * self._soe / 100.0,
                "battery_blocks": [{"PackagePartNumber": "3012170-05-B", "nominal_full_pack_energy": self.capacity_wh,
                                    "nominal_energy_remaining": self.capacity_wh * self._soe / 100.0,
                                    "energy_charged": 0, "energy_discharged": 0}],
                "system_island_state": "SystemIslandedActive" if self._islanded(now) else "SystemGridConnected",
                "grid_faults": copy.deepcopy(self._faults),
                "last_toggle_timestamp": toggled.isoformat(timespec="microseconds"),
            }

    def status(self) -> dict[str, Any]:
        now = self.clock()
        up = max(0.0, now - self._started)
        return {**_STATUS, "start_time": datetime.fromtimestamp(self._started, UTC).strftime("%Y-%m-%d %H:%M:%S %z"),
                "up_time_seconds": f"{int(up // 3600)}h{int(up % 3600 // 60)}m{up % 60:.6f}s"}


# -- HTTP ---------------------------------------------------------------------------------------------------

_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 500: "Internal Server Error", 502: "Bad Gateway"}


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    cookies: list[str] = field(default_factory=list)
    close: bool = False

    def encode(self) -> bytes:
        head = [f"HTTP/1.1 {self.status} {_REASONS.get(self.status, 'Error')}",
                "Cache-Control: no-cache, no-store", f"Content-Length: {len(self.body)}",
                f"Date: {datetime.now(UTC).strftime('%a, %d %b %Y %H:%M:%S GMT')}"]
        if self.body:
            head.append(f"Content-Type: {self.content_type}")
        head += [f"Set-Cookie: {c}" for c in self.cookies]
        head.append("Connection: close" if self.close else "Connection: keep-alive")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + self.body


def _json(obj: Any, status: int = 200) -> _Response:
    return _Response(status, json.dumps(obj).encode())


def _error(status: int, error: str, message: str) -> _Response:
    return _json({"code": status, "error": error, "message": message}, status)


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError(f"bad request line {line[:80]!r}")
    method, target, _ = parts
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length") or 0)
    body = await reader.readexactly(n) if n > 0 else b""
    url = urlsplit(target)
    return _Request(method.upper(), url.path, parse_qs(url.query), headers, body)


class SimulatedGateway:
    """One fake gateway listening on ``host:port``; control it from any thread.

    Made by :meth:`Simulator.add_gateway`. :attr:`requests` counts the requests
    of each path (a ``collections.Counter``).
    """

    def __init__(self, sim: Simulator, model: GatewayModel, host: str, port: int, password: str,
                 hold_s: float) -> None:
        self._sim = sim
        self.model = model
        self.host = host
        self.port = port
        self.password = password
        self.hold_s = hold_s
        self.requests: Counter[str] = Counter()
        self.logins = 0
        self._lock = threading.Lock()
        self._faults: dict[str | None, set[str]] = {}
        self._sessions: set[str] = set()
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def address(self) -> str:
        """``HOST:PORT``, as pypowerwall takes it."""
        return f"{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    # -- control ----------------------------------------------------------------------------------------

    def set_scenario(self, name: str) -> None:
        """Switch to one of :data:`SCENARIOS` now."""
        self.model.set_scenario(name)

    def state(self) -> GatewayState:
        """The true state now: powers, state of energy, counters, grid status and fault log."""
        return self.model.state()

    def set_fault(self, fault: str, endpoint: str | None = None, *, for_s: float | None = None) -> None:
        """Switch a fault on, for every endpoint (``endpoint=None``) or one path; ``for_s`` [s] ends it later.

        ``gone`` is always for the whole gateway.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
        if fault == "gone":
            self._sim._call(self._stop_listening())
        else:
            with self._lock:
                self._faults.setdefault(endpoint, set()).add(fault)
        if for_s is not None:
            self._sim._call_later(for_s, lambda: self.clear_fault(fault, endpoint))

    def clear_fault(self, fault: str | None = None, endpoint: str | None = None) -> None:
        """Switch a fault off (``fault=None``: every fault of that endpoint; both None: all, ``gone`` too)."""
        if fault == "gone" or (fault is None and endpoint is None):
            self._sim._call(self._start_listening())
        with self._lock:
            if fault is None and endpoint is None:
                self._faults.clear()
            elif fault is None:
                self._faults.pop(endpoint, None)
            else:
                self._faults.get(endpoint, set()).discard(fault)

    def faults(self) -> dict[str | None, set[str]]:
        """The faults switched on, by endpoint (None: every endpoint); ``gone`` under None."""
        with self._lock:
            out = {k: set(v) for k, v in self._faults.items() if v}
        if not self.listening:
            out.setdefault(None, set()).add("gone")
        return out

    def gone(self) -> None:
        """Stop listening and cut the open connections (the gateway is off)."""
        self.set_fault("gone")

    def back(self) -> None:
        """Listen again on the same port, with the login sessions forgotten (a rebooted gateway)."""
        self.clear_fault("gone")

    def expire_sessions(self) -> None:
        """Forget every login session: the next request of each client gets 401."""
        with self._lock:
            self._sessions.clear()

    # -- serving -----------------------------------------------------------------------------------------

    async def _start_listening(self) -> None:
        if self._server is not None:
            return
        with self._lock:
            self._sessions.clear()  # a gateway coming back has rebooted
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self._sim._ssl,
                                                  reuse_address=True, backlog=128)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task, writer in list(self._conns.items()):
            writer.transport.abort()
            task.cancel()
        tasks = list(self._conns)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns[task] = writer
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                response = await self._handle(request)
                writer.write(response.encode())
                await writer.drain()
                if response.close or request.headers.get("connection", "").lower() == "close":
                    break
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or spoke nonsense: drop the connection
        except asyncio.CancelledError:
            pass  # the gateway stopped: end quietly (3.11's stream callback logs a cancelled task)
        finally:
            self._conns.pop(task, None)
            writer.transport.abort()

    def _active(self, path: str) -> set[str]:
        with self._lock:
            return set(self._faults.get(None, ())) | set(self._faults.get(path, ()))

    def _authorised(self, request: _Request) -> bool:
        token = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        for part in request.headers.get("cookie", "").split(";"):
            k, _, v = part.strip().partition("=")
            if k == "AuthCookie":
                token = v
        with self._lock:
            return token is not None and token in self._sessions

    async def _handle(self, request: _Request) -> _Response:
        self.requests[request.path] += 1
        if request.path.startswith("/_sim/"):
            return self._control(request)
        faults = self._active(request.path)
        if "timeout" in faults:
            await asyncio.sleep(self.hold_s)
        if "http500" in faults:
            return _error(500, "internal error", "Simulated gateway fault")
        response = self._route(request)
        if response.status != 200 or not response.body:
            return response
        if "shape_change" in faults and request.path == "/api/meters/aggregates":
            reply = json.loads(response.body)
            for meter in reply.values():
                meter["real_power"] = meter.pop("instant_power")
            for key in ("energy_imported", "energy_exported"):
                reply["site"].pop(key)
            response.body = json.dumps(reply).encode()
        if "truncated" in faults:
            response.body = response.body[: len(response.body) // 2]
        if "garbage" in faults:
            response.body = b"<html><body><h1>Gateway busy</h1><p>\xff\xfe try again</p></body></html>"
            response.content_type = "text/html"
        return response

    def _route(self, request: _Request) -> _Response:
        path, model = request.path, self.model
        if path == "/api/login/Basic":
            return self._login(request) if request.method == "POST" else _error(405, "method", "POST only")
        if path not in _PUBLIC and not self._authorised(request):
            return _error(401, "token contains an invalid number of segments", "Invalid bearer token")
        if request.method != "GET":
            return _error(405, "method", "GET only")
        replies: dict[str, Callable[[], Any]] = {
            "/api/meters/aggregates": model.aggregates,
            "/api/system_status/soe": model.soe,
            "/api/system_status/grid_status": model.grid_status_reply,
            "/api/operation": model.operation,
            "/api/system_status/grid_faults": model.grid_faults,
            "/api/status": model.status,
            "/api/system_status": model.system_status,
            "/api/site_info/site_name": lambda: {"site_name": "Simulated Gateway", "timezone": "UTC"},
            "/api/sitemaster": lambda: _SITEMASTER,
            "/api/auth/toggle/supported": lambda: {"toggle_auth_supported": True},
        }
        if path == "/api/logout":
            return _Response(204)
        make = replies.get(path)
        if make is None:
            return _error(404, "not found", f"no such endpoint {path}")
        return _json(make())

    def _login(self, request: _Request) -> _Response:
        if "json" in request.headers.get("content-type", ""):
            try:
                form = json.loads(request.body or b"{}")
            except json.JSONDecodeError:
                return _error(400, "bad request", "Malformed JSON")
            password = str(form.get("password", ""))
        else:
            password = parse_qs(request.body.decode("utf-8", "replace")).get("password", [""])[0]
        if not secrets.compare_digest(password.encode(), self.password.encode()):
            return _error(401, "bad credentials", "Login Error")
        token = base64.b64encode(secrets.token_bytes(48)).decode()
        with self._lock:
            self._sessions.add(token)
            self.logins += 1
        record = base64.urlsafe_b64encode(b'{"email":"","firstname":"Tesla","lastname":"Energy"}').decode()
        now = datetime.fromtimestamp(self.model.clock(), UTC).isoformat()
        body = {"email": "", "firstname": "Tesla", "lastname": "Energy", "roles": ["Home_Owner"], "token": token,
                "provider": "Basic", "loginTime": now}
        response = _json(body)
        response.cookies = [f"AuthCookie={token}; Path=/", f"UserRecord={record}; Path=/"]
        return response

    def _control(self, request: _Request) -> _Response:
        try:
            if request.path == "/_sim/state" and request.method == "GET":
                s = self.state()
                return _json({"time": s.time, "scenario": s.scenario, "grid_status": s.grid_status,
                              "values": s.values, "faults": list(s.faults),
                              "switches": {str(k): sorted(v) for k, v in self.faults().items()}})
            body = json.loads(request.body or b"{}")
            if request.path == "/_sim/scenario" and request.method == "POST":
                self.set_scenario(str(body["scenario"]))
                return _json({"scenario": self.model.scenario})
            if request.path == "/_sim/blip" and request.method == "POST":
                self.model.blip(float(body.get("seconds", 2.0)))
                return _json({"toggle_time": self.model.toggle_time()})
            if request.path == "/_sim/warning" and request.method == "POST":
                value = body.get("value")
                self.model.add_warning(str(body["kind"]), None if value is None else float(value))
                return _json({"faults": len(self.model.grid_faults())})
            if request.path == "/_sim/fault" and request.method == "POST":
                fault, endpoint, for_s = body.get("fault"), body.get("endpoint"), body.get("for_s")
                if body.get("on", True):
                    self.set_fault(str(fault), endpoint, for_s=for_s)
                else:
                    self.clear_fault(fault, endpoint)
                return _json({"switches": {str(k): sorted(v) for k, v in self.faults().items()}})
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, "bad request", str(exc))
        return _error(404, "not found", f"no such control {request.path}")


def _self_signed(host: str) -> tuple[bytes, bytes]:
    """A fresh self-signed certificate and its key, PEM (an EC P-256 key: fast to make)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "powerwall")])
    alt: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName("powerwall")]
    with contextlib.suppress(ValueError):
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)  # its own trust anchor
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


class Simulator:
    """Many simulated gateways on one event loop in one background thread.

    Parameters
    ----------
    host : str
        The loopback address the gateways listen on.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.gateways: list[SimulatedGateway] = []
        self.cert_pem = b""
        self._ssl: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Simulator:
        """Make the certificate and start the loop thread; return self."""
        if self._loop is not None:
            return self
        self.cert_pem, key_pem = _self_signed(self.host)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory(prefix="homegrid-pwsim-") as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(self.cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(key_pem)
            ctx.load_cert_chain(cert, key)
        self._ssl = ctx
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="powerwall-simulator", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    def stop(self) -> None:
        """Close every gateway and stop the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            for gw in self.gateways:
                await gw._stop_listening()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_gateway(self, port: int = 0, *, password: str = "simulated", scenario: str = "normal",
                    clock: Callable[[], float] | None = None, hold_s: float = 30.0, soe: float = 50.0,
                    transition_s: float = 2.0, wobble_w: float = 0.0, listening: bool = True) -> SimulatedGateway:
        """Start one more gateway.

        Parameters
        ----------
        port : int
            TCP port (0: any free port; the chosen one stays the gateway's for ``back``).
        password : str
            The customer password the login accepts.
        scenario, clock, soe, transition_s, wobble_w
            As for :class:`GatewayModel`.
        hold_s : float
            How long the ``timeout`` fault holds a request [s].
        listening : bool
            False: start ``gone`` (nothing listens until :meth:`SimulatedGateway.back`); a free port is
            reserved by listening once.
        """
        self.start()
        model = GatewayModel(scenario, clock=clock, soe=soe, transition_s=transition_s, wobble_w=wobble_w)
        gw = SimulatedGateway(self, model, self.host, port, password, hold_s)
        self._call(gw._start_listening())
        if not listening:
            self._call(gw._stop_listening())
        self.gateways.append(gw)
        return gw

    def add_gateways(self, count: int, base_port: int = 0, **kwargs: Any) -> list[SimulatedGateway]:
        """Start ``count`` gateways on ``base_port``, ``base_port + 1`` ... (any free ports when 0)."""
        return [self.add_gateway(base_port + i if base_port else 0, **kwargs) for i in range(count)]

    # -- loop plumbing -----------------------------------------------------------------------------------

    def _in_loop(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a coroutine on the loop: wait for it from other threads, schedule it from the loop's own."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the simulator is not running")
        if self._in_loop():
            self._loop.create_task(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _call_later(self, delay: float, fn: Callable[[], None]) -> None:
        if self._loop is None:
            raise RuntimeError("the simulator is not running")
        self._loop.call_soon_threadsafe(self._loop.call_later, delay, fn)


@contextlib.contextmanager
def running(count: int = 1, base_port: int = 0, **kwargs: Any) -> Iterator[list[SimulatedGateway]]:
    """Run ``count`` gateways for the duration of a ``with`` block (keyword arguments as for ``add_gateway``)."""
    with Simulator() as sim:
        yield sim.add_gateways(count, base_port, **kwargs)


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m homegrid.devices.powerwall.simulator``: run gateways until killed."""
    p = argparse.ArgumentParser(prog="python -m homegrid.devices.powerwall.simulator",
                                description="Fake Tesla Powerwall gateways (local HTTPS API) on loopback.")
    p.add_argument("--count", type=int, default=1, help="how many gateways (default 1)")
    p.add_argument("--base-port", type=int, default=0, help="first port; the others follow (default: any free)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--password", default="simulated", help="the customer password (default 'simulated')")
    p.add_argument("--scenario", default="normal",
                   help=f"scenario, or a comma-separated list given to the gateways in turn ({', '.join(SCENARIOS)})")
    p.add_argument("--wobble", type=float, default=50.0, help="load wobble amplitude [W] (default 50)")
    p.add_argument("--transition", type=float, default=2.0, help="SystemTransitionToGrid duration [s] (default 2)")
    args = p.parse_args(list(argv) if argv is not None else None)
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if args.count < 1 or not scenarios or bad:
        p.error(f"need --count >= 1 and scenarios among {', '.join(SCENARIOS)}" + (f" (got {bad})" if bad else ""))
    sim = Simulator(args.host).start()
    try:
        for i in range(args.count):
            port = args.base_port + i if args.base_port else 0
            try:
                gw = sim.add_gateway(port, password=args.password, scenario=scenarios[i % len(scenarios)],
                                     wobble_w=args.wobble, transition_s=args.transition)
            except OSError as exc:
                print(f"cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
                return 2
            print(gw.address, flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(3600):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
