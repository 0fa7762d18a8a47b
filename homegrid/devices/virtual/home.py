"""The virtual home: a simulated site that speaks the :class:`~homegrid.devices.Device` interface.

It is driven by real data: PVWatts on a typical-year weather file for solar
(:mod:`.solar`), a measured household's year for the load (:mod:`.load`), a
Powerwall-like battery (:mod:`.battery`), a commuting car (:mod:`.ev`) and a
seeded schedule of grid outages (:mod:`.outages`).

Time convention
---------------
The simulation advances in steps. A step starts at a row's time and lasts until
the next row's time (the last step of a call ends at the call's end time). A
row carries

- the counters and the battery's state of charge *at the row's time*, and
- the powers *averaged over the step that starts at the row's time*.

So ``counter[i + 1] == counter[i] + side(power[i]) * (t[i + 1] - t[i]) / 3600``
for every counter, where ``side`` is the positive part (``max(p, 0)``) or the
negative part (``max(-p, 0)``) as :data:`homegrid.glossary.ENERGY_CATEGORIES` says.
Solar and load are sampled at the step's start and held over it. A step that
overlaps an outage reports ``grid_status`` islanded, and its powers are the
time-weighted mix of its connected and islanded parts, so a blip shorter than
the step still shows. Every row balances: ``home = solar + battery + grid``.

:meth:`VirtualHome.poll` advances to the clock in steps of at most 5 s and
returns the instantaneous reading there: counters and state of charge at that
instant, and the powers of a step starting there (islanded only if that instant
is inside an outage). :meth:`VirtualHome.simulate` and ``poll`` share state, so
they can be mixed freely.

Counters do not start at 0: they start at the lifetime totals of a system
installed on 2020-01-01 (see :func:`lifetime_counters`), so a hub that restarts
with a fresh virtual home sees counters close to where they were.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np

from homegrid.config import Config
from homegrid.devices.base import BatteryFigures, Device
from homegrid.devices.control import (
    BatteryCommand,
    BatteryControl,
    CarCommand,
    CarSettings,
    PowerwallSettings,
    powerwall_settings,
)
from homegrid.devices.virtual import ev as ev_model
from homegrid.devices.virtual.battery import MODE_CODES, SELF_POWERED, BatterySpec, follow_mode, islanded, self_powered
from homegrid.devices.virtual.control import VIRTUAL_MODES, VirtualCarControl, VirtualControl
from homegrid.devices.virtual.faults import grid_faults
from homegrid.devices.virtual.load import load_power
from homegrid.devices.virtual.outages import in_outage, outage_overlap, outage_schedule
from homegrid.devices.virtual.solar import SolarProfile, solar_power, solar_profile
from homegrid.glossary import COUNTERS, EvChargingState, GridStatus
from homegrid.readings import GridEvidence, Reading, ReadingFrame, from_ms, to_ms
from homegrid.timezones import DAY_MS

__all__ = ["INSTALLED", "POLL_STEP_S", "VirtualHome", "lifetime_counters"]

#: The nominal installation date the lifetime counters count from.
INSTALLED = datetime(2020, 1, 1, tzinfo=UTC)
#: The longest step poll() takes when catching up with the clock. [s]
POLL_STEP_S = 5.0
START_BATTERY_PERCENT = 60.0
START_CAR_PERCENT = 70.0
_CHUNK = 16_384  # steps computed together (bounds temporary memory)
_YEAR_S = 365.25 * 86400.0
_CONNECTED = float(GridStatus.CONNECTED)
_ISLANDED = float(GridStatus.ISLANDED)
_EV_DISCONNECTED = float(EvChargingState.DISCONNECTED)
_EV_STOPPED = float(EvChargingState.STOPPED)
_EV_CHARGING = float(EvChargingState.CHARGING)
_EV_COMPLETE = float(EvChargingState.COMPLETE)
_EV_NO_POWER = float(EvChargingState.NO_POWER)
GRID_VOLTS, GRID_HZ = 240.0, 60.0  # North American split phase
FAULT_LOG_MS = DAY_MS
TOGGLE_LOOKBACK_MS = 366 * DAY_MS
_CAR = ("ev_soc", "ev_range", "ev_charge_limit", "ev_time_to_full", "ev_charging_state", "ev_at_home")

# Counter -> (power column, side): +1 positive part, -1 negative part.
_COUNTER_SOURCES: dict[str, tuple[str, int]] = {
    "solar_energy_exported": ("solar_power", 1),
    "home_energy_imported": ("home_power", 1),
    "grid_energy_imported": ("grid_power", 1),
    "grid_energy_exported": ("grid_power", -1),
    "battery_energy_imported": ("battery_power", -1),
    "battery_energy_exported": ("battery_power", 1),
}
_POWERS = ("solar_power", "home_power", "ev_power", "grid_power", "battery_power")


def lifetime_counters(config: Config, at: datetime) -> dict[str, float]:
    """Plausible lifetime counters of the configured system at an instant.

    Yearly totals are estimated from the configuration (solar from the cached
    profile, home from the load plus the car's commuting, 250 battery cycles a
    year at most, 30 % of solar exported) and balanced so that
    ``home = solar + battery out - battery in + grid in - grid out``; they are
    multiplied by the years since :data:`INSTALLED`.

    Parameters
    ----------
    config : homegrid.config.Config
    at : datetime
        An aware instant.

    Returns
    -------
    dict
        Glossary counter name -> value. [Wh]
    """
    v = config.virtual
    years = max(0.0, (at - INSTALLED).total_seconds() / _YEAR_S)
    solar = _profile(config).annual_kwh * 1000.0
    car_km = v.ev_commute_km * 261 + 52 / 3 * 250.0
    home = v.load_kwh_per_year * 1000.0 + car_km * v.ev_kwh_per_km * 1000.0 / ev_model.CHARGE_EFFICIENCY
    batt_in = min(250.0 * v.battery_kwh * 1000.0, 0.5 * solar)
    batt_out = batt_in * v.battery_round_trip
    grid_out = 0.3 * solar
    grid_in = home - solar - batt_out + batt_in + grid_out
    if grid_in < 0:
        grid_out -= grid_in
        grid_in = 0.0
    yearly = (solar, home, grid_in, grid_out, batt_in, batt_out)
    return {name: years * y for name, y in zip(COUNTERS, yearly, strict=True)}


def _profile(config: Config) -> SolarProfile:
    v, s = config.virtual, config.site
    return solar_profile(
        v.weather, float(s.latitude), float(s.longitude), float(v.solar_kw), float(v.tilt), float(v.azimuth)
    )


@dataclass
class _State:
    """What carries from one step to the next."""

    energy_wh: float  # battery
    car_wh: float  # car pack
    dark: bool  # the home went dark in the current outage


@dataclass(frozen=True)
class _Params:
    capacity_wh: float
    max_w: float
    eta: float
    reserve_wh: float
    restart_wh: float
    grid_charge_w: float
    pack_wh: float
    car_limit_wh: float
    car_min_wh: float
    charger_w: float
    mode: int = SELF_POWERED  # the planner's mode (battery.MODE_CODES)
    target_wh: float = 0.0  # CHARGE: the level to reach; HOLD: the level to keep [Wh]
    car_on: bool = True  # the car charges when plugged in (the planner may stop it)


def _run(
    dts: list[float],
    sol: list[float],
    ld: list[float],
    frac: list[float],
    codes: list[int],
    arriving: dict[int, float],
    state: _State,
    p: _Params,
) -> tuple[list[float], list[float], list[float], list[float], dict[int, tuple[float, float, float]]]:
    """The sequential battery and car dispatch over a run of steps.

    Returns per step the battery power [W], the car's power [W], the stored
    battery energy at the step's start [Wh], the car's stored energy at the step's
    start [Wh], and for steps touching an outage
    ``{index: (home_w, solar_w, grid_w)}``; ``state`` is advanced in place.
    """
    n = len(dts)
    bat = [0.0] * n
    car = [0.0] * n
    stored = [0.0] * n
    car_stored = [0.0] * n
    fixes: dict[int, tuple[float, float, float]] = {}
    cap, pmax, eta, reserve, restart = p.capacity_wh, p.max_w, p.eta, p.reserve_wh, p.restart_wh
    refill = p.grid_charge_w
    mode, target = p.mode, p.target_wh
    limit, charger = p.car_limit_wh - 1e-6, p.charger_w
    taper_from = p.pack_wh * ev_model.TAPER_START_PERCENT / 100.0
    taper_slope = (1.0 - ev_model.TAPER_FLOOR) / (p.pack_wh * (100.0 - ev_model.TAPER_START_PERCENT) / 100.0)
    k_car = ev_model.CHARGE_EFFICIENCY / 3600.0
    e, car_wh, dark = state.energy_wh, state.car_wh, state.dark
    for i in range(n):
        d = dts[i]
        s = sol[i]
        h = ld[i]
        f = frac[i]
        stored[i] = e
        car_stored[i] = car_wh
        code = codes[i]
        if code:
            w = 0.0
            if code == ev_model.ARRIVES:
                car_wh = max(car_wh - arriving[i] * 1000.0, p.car_min_wh)
        elif p.car_on and car_wh < limit and f < 1.0:
            w = charger if car_wh <= taper_from else charger * (1.0 - taper_slope * (car_wh - taper_from))
            need = (p.car_limit_wh - car_wh) / (k_car * d)
            if w > need:
                w = need
            car_wh += w * (1.0 - f) * d * k_car
        else:
            w = 0.0
        if f == 0.0:
            dark = False
            if mode == SELF_POWERED:
                b, e = self_powered(h + w - s, e, d, cap, pmax, eta, reserve, refill)
            else:
                b, e = follow_mode(mode, h + w - s, e, d, cap, pmax, eta, reserve, target, refill)
            bat[i] = b
            car[i] = w
            continue
        # The step touches an outage: its connected part first, then its islanded part.
        g = 1.0 - f
        bc = gc = 0.0
        if g > 0.0:
            dark = False
            bc, e = follow_mode(mode, h + w - s, e, g * d, cap, pmax, eta, reserve, target, refill)
            gc = h + w - s - bc
        hi, si, bi, e, dark = islanded(h, s, e, dark, f * d, cap, pmax, eta, restart)
        bat[i] = g * bc + f * bi
        car[i] = g * w
        fixes[i] = (g * (h + w) + f * hi, g * s + f * si, g * gc)
    state.energy_wh, state.car_wh, state.dark = e, car_wh, dark
    return bat, car, stored, car_stored, fixes


class VirtualHome(Device):
    """A simulated site producing glossary readings, counters included.

    Parameters
    ----------
    config : homegrid.config.Config
        ``config.site`` places the site; ``config.virtual`` sizes the system.
    clock : callable, optional
        Returns the current aware time; defaults to the system clock (UTC).
    start : datetime, optional
        Where the simulation starts; defaults to ``clock()``. The battery starts
        at 60 %, the car at 70 %, the counters at :func:`lifetime_counters`.
    """

    name = "virtual"

    def __init__(
        self, config: Config, clock: Callable[[], datetime] | None = None, start: datetime | None = None
    ) -> None:
        self._config = config
        self._clock = clock or (lambda: datetime.now(UTC))
        t0 = start if start is not None else self._clock()
        self._now_ms = to_ms(t0)
        v = config.virtual
        spec = BatterySpec.from_config(v.battery_kwh, v.battery_kw, v.battery_round_trip, v.backup_reserve_percent,
                                       v.battery_grid_charge_kw)
        pack = v.ev_pack_kwh * 1000.0
        self._params = _Params(
            capacity_wh=spec.capacity_wh,
            max_w=spec.max_w,
            eta=spec.eta,
            reserve_wh=spec.reserve_wh,
            restart_wh=spec.restart_wh,
            grid_charge_w=spec.grid_charge_w,
            pack_wh=pack,
            car_limit_wh=pack * v.ev_charge_limit_percent / 100.0,
            car_min_wh=pack * ev_model.MIN_SOC_PERCENT / 100.0,
            charger_w=v.ev_charger_kw * 1000.0,
        )
        self._profile = _profile(config)
        self._state = _State(
            energy_wh=spec.capacity_wh * START_BATTERY_PERCENT / 100.0,
            car_wh=pack * START_CAR_PERCENT / 100.0,
            dark=False,
        )
        self._mode = "self_consumption"
        self._command: BatteryCommand | None = None
        self._car_command: CarCommand | None = None
        lifetime = lifetime_counters(config, from_ms(self._now_ms))
        self._counters = [lifetime[name] for name in COUNTERS]

    # ------------------------------------------------------------------ public

    def restore(self, values: Mapping[str, float]) -> None:
        """Take up the battery charge and counters of a stored reading (a hub restarting).

        Parameters
        ----------
        values : mapping
            Glossary-named values; ``battery_soc`` [%], ``ev_soc`` [%] and the counters [Wh] are used.
        """
        soc = values.get("battery_soc")
        if soc is not None and math.isfinite(soc):
            self._state.energy_wh = self._params.capacity_wh * min(max(soc, 0.0), 100.0) / 100.0
        car = values.get("ev_soc")
        if car is not None and math.isfinite(car):
            self._state.car_wh = self._params.pack_wh * min(max(car, 0.0), 100.0) / 100.0
        for i, name in enumerate(COUNTERS):
            v = values.get(name)
            if v is not None and math.isfinite(v):
                self._counters[i] = float(v)

    @property
    def backup_reserve_percent(self) -> float:
        """The backup reserve [%] (the battery's own scale; it hides nothing)."""
        return float(self._config.virtual.backup_reserve_percent)

    @property
    def operation_mode(self) -> str:
        """``self_consumption`` or ``backup`` (:data:`~homegrid.devices.control.OPERATION_MODES`)."""
        return self._mode

    def set_battery(self, reserve_percent: float | None = None, mode: str | None = None) -> None:
        """Change the backup reserve [%] and/or the operation mode, from the next simulated step.

        Self-powered, the battery covers the home down to the reserve; backup-only, it is held
        full (the sun still fills it, the grid never does) and only carries the home through
        outages. Its readings report the reserve as set, in either mode.
        """
        if mode is not None and mode not in VIRTUAL_MODES:
            raise ValueError(f"operation mode {mode!r}: the virtual home takes {', '.join(VIRTUAL_MODES)}")
        v = self._config.virtual
        reserve = v.backup_reserve_percent if reserve_percent is None else float(reserve_percent)
        self._mode = mode or ("self_consumption" if self._mode == "autonomous" else self._mode)
        self._config = self._config.replace(virtual=v.replace(backup_reserve_percent=reserve))
        hold = 100.0 if self._mode == "backup" else reserve
        # a change by hand ends the planner's mode, as on a Powerwall whose settings the owner changed in the app
        self._command = None
        self._params = replace(self._params, reserve_wh=self._params.capacity_wh * hold / 100.0, mode=SELF_POWERED)

    def apply_command(self, command: BatteryCommand) -> PowerwallSettings:
        """Carry out one of the planner's modes from the next simulated step (:func:`battery.follow_mode`).

        The virtual gateway then reports the settings a Powerwall would be given
        (:func:`~homegrid.devices.control.powerwall_settings`): its reserve reading follows them.
        """
        settings = powerwall_settings(command)
        cap = self._params.capacity_wh
        target = command.target_percent if command.target_percent is not None else command.reserve_percent
        v = self._config.virtual
        self._config = self._config.replace(virtual=v.replace(backup_reserve_percent=settings.reserve_percent))
        self._mode = settings.operation_mode
        self._command = command
        self._params = replace(self._params, mode=MODE_CODES[command.mode], reserve_wh=cap * command.reserve_percent
                               / 100.0, target_wh=cap * target / 100.0)
        return settings

    @property
    def battery_settings(self) -> PowerwallSettings:
        """The virtual gateway's settings as a Powerwall would report them (grid charging and export rule only
        while a planner's mode is on; otherwise unknown)."""
        reserve = self.backup_reserve_percent
        if self._command is None:
            return PowerwallSettings(self._mode, reserve)
        s = powerwall_settings(self._command)
        return PowerwallSettings(self._mode, reserve, s.grid_charging, s.export_rule)

    def set_car(self, command: CarCommand) -> None:
        """The car's charging from the next simulated step: on or off, at ``amps`` (x 240 V, at most the charger's
        rating) and up to ``limit_percent`` (unchanged where None)."""
        v, p = self._config.virtual, self._params
        rating = v.ev_charger_kw * 1000.0
        charger = p.charger_w if command.amps is None else min(rating, command.amps * GRID_VOLTS)
        limit = p.car_limit_wh if command.limit_percent is None else p.pack_wh * command.limit_percent / 100.0
        self._car_command = command
        self._params = replace(p, car_on=command.charging, charger_w=charger, car_limit_wh=limit)

    @property
    def car_settings(self) -> CarSettings:
        """The car's charging switch, amps and limit as a car would report them."""
        p = self._params
        return CarSettings(p.car_on, round(p.charger_w / GRID_VOLTS), round(100.0 * p.car_limit_wh / p.pack_wh))

    def car_control(self) -> VirtualCarControl:
        """The virtual car's charging (:meth:`set_car`), as the planner drives it."""
        return VirtualCarControl(self)

    def battery_control(self) -> BatteryControl:
        """The virtual battery's reserve and mode (:meth:`set_battery`)."""
        return VirtualControl(self)

    def battery_figures(self) -> BatteryFigures:
        """Its state of charge counts usable energy only, down to 0 %; it loses the same share each way."""
        v = self._config.virtual
        return BatteryFigures(capacity_wh=v.battery_kwh * 1000.0, max_discharge_w=v.battery_kw * 1000.0,
                              efficiency=math.sqrt(v.battery_round_trip), hidden_percent=0.0)

    @property
    def now(self) -> datetime:
        """The simulation's current time (UTC)."""
        return from_ms(self._now_ms)

    @property
    def car(self) -> ev_model.CarState:
        """The car at the simulation's current time."""
        t = self._now_ms
        codes, _ = self._trip_codes(np.array([t, t + 1], dtype=np.int64))
        at_home = int(codes[0]) == ev_model.HOME
        s, e = self._outages_ms(t, t + 1)
        p = self._params
        charging = at_home and p.car_on and self._state.car_wh < p.car_limit_wh - 1e-6 and not in_outage(t, s, e)
        return ev_model.CarState(
            soc=100.0 * self._state.car_wh / p.pack_wh, plugged=at_home, at_home=at_home, charging=charging
        )

    def _faults_between(self, start_ms: int, end_ms: int) -> list[GridEvidence]:
        v = self._config.virtual
        return [GridEvidence(f.time_ms, "grid_fault", f.name, source=self.name, disturbance=f.kind, value=f.value,
                             unit=f.unit)
                for f in grid_faults(v.seed, v.outages_per_year, int(start_ms), int(end_ms), v.demo_outages)]

    def evidence_between(self, start_ms: int, end_ms: int) -> list[GridEvidence]:
        """What a gateway polled through ``[start_ms, end_ms)`` would have shown: its fault-log entries
        (outage starts and disturbances that did not island the home) and its island toggle times (each
        outage's start and end)."""
        s, e = self._outages_ms(int(start_ms), int(end_ms))
        edges = np.concatenate((s, e))
        edges = np.sort(edges[(edges >= start_ms) & (edges < end_ms)])
        toggles = [GridEvidence(int(t), "island_toggle", "last_toggle_timestamp", source=self.name)
                   for t in edges.tolist()]
        return sorted(self._faults_between(start_ms, end_ms) + toggles, key=lambda x: x.time_ms)

    def toggle_ms(self, t_ms: int) -> int | None:
        """The virtual gateway's island toggle time at an instant: the latest outage start or end at or
        before it (within a year), None when there is none. [ms]"""
        s, e = self._outages_ms(t_ms - TOGGLE_LOOKBACK_MS, t_ms + 1)
        edges = np.concatenate((s, e))
        edges = edges[edges <= t_ms]
        return int(edges.max()) if len(edges) else None

    def grid_evidence(self) -> list[GridEvidence]:
        """What a gateway shows at each poll: the fault log's entries of the last day and the island toggle
        time."""
        out = self._faults_between(self._now_ms - FAULT_LOG_MS, self._now_ms + 1)
        toggled = self.toggle_ms(self._now_ms)
        if toggled is not None:
            out.append(GridEvidence(toggled, "island_toggle", "last_toggle_timestamp", source=self.name))
        return out

    def outages(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The scheduled outages overlapping ``[start, end)``, unclipped, as UTC intervals."""
        s, e = self._outages_ms(to_ms(start), to_ms(end))
        return [(from_ms(a), from_ms(b)) for a, b in zip(s.tolist(), e.tolist(), strict=True)]

    async def poll(self) -> Reading:
        """Advance to ``clock()`` in steps of at most 5 s and read the site there.

        A clock behind the simulation does not rewind it: the reading is then at :attr:`now`.
        """
        target = to_ms(self._clock())
        elapsed = target - self._now_ms
        if elapsed > 0:
            n = math.ceil(elapsed / (POLL_STEP_S * 1000.0))
            edges = self._now_ms + np.round(np.arange(n + 1) * (elapsed / n)).astype(np.int64)
            for a in range(0, n, _CHUNK):
                self._advance(edges[a : a + _CHUNK + 1])
        return self._reading_now()

    def simulate(self, end: datetime, step_s: float = 60.0) -> ReadingFrame:
        """Advance to ``end`` at fixed steps and return one row per step.

        Parameters
        ----------
        end : datetime
            Aware end time; nothing happens if it is not after :attr:`now`.
        step_s : float
            Step length; the last step is shorter if the span is not a multiple. [s]

        Returns
        -------
        ReadingFrame
            Rows at ``now, now + step, ...`` (before ``end``) with every power,
            ``battery_soc``, ``grid_status`` and the six counters; see the module's
            time convention.
        """
        step_ms = round(step_s * 1000.0)
        if step_ms <= 0:
            raise ValueError(f"step_s must be at least 1 ms, got {step_s}")
        end_ms = to_ms(end)
        if end_ms <= self._now_ms:
            return ReadingFrame.empty()
        times = np.arange(self._now_ms, end_ms, step_ms, dtype=np.int64)
        n = len(times)
        names = (*_POWERS, "battery_soc", "battery_reserve", "battery_capacity", "grid_status", "grid_voltage",
                 "grid_frequency", *_CAR, *COUNTERS)
        out = {name: np.empty(n) for name in names}
        for a in range(0, n, _CHUNK):
            b = min(a + _CHUNK, n)
            edges = np.empty(b - a + 1, dtype=np.int64)
            edges[:-1] = times[a:b]
            edges[-1] = times[b] if b < n else end_ms
            cols = self._advance(edges)
            for name, col in cols.items():
                out[name][a:b] = col
        return ReadingFrame(times, out)

    # ---------------------------------------------------------------- internals

    def _outages_ms(self, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
        v = self._config.virtual
        return outage_schedule(v.seed, v.outages_per_year, start_ms, end_ms, v.demo_outages)

    def _trip_codes(self, edges: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
        v = self._config.virtual
        dep, arr, kwh = ev_model.trip_schedule(
            v.seed, self._config.site.timezone, v.ev_commute_km, v.ev_kwh_per_km, int(edges[0]), int(edges[-1])
        )
        return ev_model.step_trip_codes(edges, dep, arr, kwh)

    def _inputs(self, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = edges[:-1]
        v = self._config.virtual
        sol = solar_power(t, self._profile)
        ld = load_power(t, self._config.site.timezone, v.load_kwh_per_year)
        return sol, ld

    def _columns(
        self,
        edges: np.ndarray,
        sol: np.ndarray,
        ld: np.ndarray,
        frac: np.ndarray,
        codes: np.ndarray,
        arriving: dict[int, float],
        state: _State,
    ) -> dict[str, np.ndarray]:
        """Run the dispatch over steps and assemble power, SoC and status columns."""
        dts = (np.diff(edges) / 1000.0).tolist()
        bat_l, car_l, stored, car_stored, fixes = _run(
            dts, sol.tolist(), ld.tolist(), frac.tolist(), codes.tolist(), arriving, state, self._params
        )
        bat = np.array(bat_l)
        car = np.array(car_l)
        home = ld + car
        solar = sol.copy()
        grid = home - solar - bat
        if fixes:
            idx = np.fromiter(fixes.keys(), dtype=np.int64, count=len(fixes))
            vals = np.array(list(fixes.values()))
            home[idx], solar[idx], grid[idx] = vals[:, 0], vals[:, 1], vals[:, 2]
        soc = np.clip(np.array(stored) * (100.0 / self._params.capacity_wh), 0.0, 100.0)
        status = np.where(frac > 0.0, _ISLANDED, _CONNECTED)
        grid_up = frac == 0.0
        return {
            "grid_voltage": np.where(grid_up, GRID_VOLTS, 0.0),
            "grid_frequency": np.where(grid_up, GRID_HZ, 0.0),
            **self._car_columns(np.array(car_stored), car, codes, frac),
            "solar_power": solar,
            "home_power": home,
            "ev_power": car,
            "grid_power": grid,
            "battery_power": bat,
            "battery_soc": soc,
            "grid_status": status,
        }

    def _car_columns(
        self, car_wh: np.ndarray, car_w: np.ndarray, codes: np.ndarray, frac: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The car's own state per step, as a car adapter reports it."""
        p, v = self._params, self._config.virtual
        at_home = np.asarray(codes) == ev_model.HOME
        full = car_wh >= p.car_limit_wh - 1.0
        state = np.where(
            ~at_home, _EV_DISCONNECTED,
            np.where(car_w > 0.0, _EV_CHARGING, np.where(full, _EV_COMPLETE, np.where(frac > 0.0, _EV_NO_POWER,
                                                                                      _EV_STOPPED))),
        )
        rate = np.maximum(car_w, 1.0) * ev_model.CHARGE_EFFICIENCY
        to_full = np.where(car_w > 0.0, np.maximum(p.car_limit_wh - car_wh, 0.0) / rate * 3600.0, 0.0)
        n = len(car_wh)
        return {
            "ev_soc": car_wh * (100.0 / p.pack_wh),
            "ev_range": car_wh / 1000.0 / v.ev_kwh_per_km,
            "ev_charge_limit": np.full(n, 100.0 * p.car_limit_wh / p.pack_wh),
            "ev_time_to_full": to_full,
            "ev_charging_state": state,
            "ev_at_home": at_home.astype(np.float64),
            "battery_reserve": np.full(n, v.backup_reserve_percent),
            "battery_capacity": np.full(n, p.capacity_wh),
        }

    def _advance(self, edges: np.ndarray) -> dict[str, np.ndarray]:
        """Run the steps between ``edges`` (from :attr:`now`), commit the state, return all columns."""
        sol, ld = self._inputs(edges)
        s, e = self._outages_ms(int(edges[0]), int(edges[-1]))
        frac = outage_overlap(edges, s, e)
        codes, arriving = self._trip_codes(edges)
        cols = self._columns(edges, sol, ld, frac, codes, arriving, self._state)
        dt_h = np.diff(edges) / 3.6e6
        for j, name in enumerate(COUNTERS):
            power, side = _COUNTER_SOURCES[name]
            energy = np.maximum(side * cols[power], 0.0) * dt_h
            total = np.cumsum(energy)
            col = np.empty(len(energy))
            col[0] = self._counters[j]
            col[1:] = self._counters[j] + total[:-1]
            self._counters[j] += float(total[-1])
            cols[name] = col
        self._now_ms = int(edges[-1])
        return cols

    def _reading_now(self) -> Reading:
        """The instantaneous reading at :attr:`now`, without advancing."""
        t = self._now_ms
        edges = np.array([t, t + int(POLL_STEP_S * 1000)], dtype=np.int64)
        sol, ld = self._inputs(edges)
        s, e = self._outages_ms(t, t + 1)
        frac = np.array([1.0 if in_outage(t, s, e) else 0.0])
        codes, arriving = self._trip_codes(edges)
        peek = _State(self._state.energy_wh, self._state.car_wh, self._state.dark)
        cols = self._columns(edges, sol, ld, frac, codes, arriving, peek)
        values = {name: float(col[0]) for name, col in cols.items()}
        values.update(zip(COUNTERS, self._counters, strict=True))
        return Reading(from_ms(t), values)
