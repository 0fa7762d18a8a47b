"""The simulated Powerwall gateway's physics and replies, without HTTP (served by :mod:`.simulator`).

The model (:class:`GatewayModel`) keeps the powers of a scenario (``normal``
(``day``), ``night``, ``export``, ``outage``), integrates them over the elapsed
time of its clock into the lifetime counters of each meter and into the state of
energy, and keeps a grid-fault log: an outage starts with a new fault entry
stamped with its own time, islands the site (``SystemIslandedActive``, site
power 0), and its end passes through ``SystemTransitionToGrid`` for
``transition_s`` before ``SystemGridConnected``. Its reply methods give the
bodies of the gateway's endpoints in the shapes of the real replies recorded in
``shared/data/powerwall`` (firmware 21.44; the templates are embedded here).
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from homegrid.devices.powerwall.replies import AGGREGATE_FIELDS, app_soc

__all__ = ["SCENARIOS", "WARNINGS", "GatewayModel", "GatewayState", "ManualClock", "Scenario"]


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

    def site_name(self) -> dict[str, Any]:
        return {"site_name": "Simulated Gateway", "timezone": "UTC"}

    def sitemaster(self) -> dict[str, Any]:
        return dict(_SITEMASTER)

    def auth_toggle_supported(self) -> dict[str, Any]:
        return {"toggle_auth_supported": True}
