"""The planner running live: every ``[planner] step_min`` a plan for the next ``horizon_h`` is made afresh from the
state now (model predictive control) and handed to the executor (:mod:`homegrid.planner.execute`).

Each step :class:`PlanningService` builds a :class:`~homegrid.planner.problem.Problem` on a grid of ``step_min``
steps whose first starts at the step now is in:

- **load and solar**: forecast from the store's minute rollups of the last ``history_days``, summed into buckets of
  the step (:func:`homegrid.forecast.forecast_load`, :func:`homegrid.forecast.forecast_solar`). The household load
  is ``home - ev``: the car's charging is left out, it is planned as a flexible load of its own. The solar forecast
  follows the cached weather forecast (``[planner] weather``) when it covers the horizon, else the clear sky scaled
  by the recent days (:func:`homegrid.hub.weather_cache.solar_forecast`; a note says which);
- **prices**: the site's tariff (:class:`~homegrid.hub.tariff_file.SiteTariff`, the owner's upload or the
  config's, with its dynamic prices) per step start (:func:`homegrid.tariffs.meters.import_price`,
  :func:`~homegrid.tariffs.meters.export_price`). A dynamic series that does not reach the horizon's end is
  carried on with its last known price (said in :attr:`PlanningService.notes`). A tiered rate's blocks left in
  the billing month and its demand charges above the month's peak so far come from the store's rollups of the
  month so far (:func:`homegrid.hub.plan_prices.month_charges`);
- **the battery**: ``[planner] battery_kwh`` and ``battery_kw`` when set, else the device's figures
  (``battery_figures()``: capacity and power), else the ``battery_capacity`` reading, else 13.5 kWh and 5 kW;
  the round trip from ``round_trip_percent``, split evenly. Its level is the newest ``battery_soc``; the floor
  is the ``battery_reserve`` reading (20 % when none), raised to storm mode's reserve while storm mode is on. Once
  the executor has sent a command the floor is that command's (:attr:`Executor.floor_percent`): the device's
  reserve then shows the planner's own setting (a charge's target, a hold's level), which read back as the floor
  would keep the battery from ever discharging below it;
- **the car** (when the newest readings have ``ev_at_home = 1``, ``ev_soc`` and ``ev_charge_limit``, and its
  ``ev_charging_state`` is not ``disconnected``): plugged in
  from now until the next ``car_departure`` (local time), then away for the rest of the horizon; it needs
  ``(limit - level) x pack`` over a 90 % charger efficiency by the departure; the pack is ``car_pack_kwh``, else
  the virtual car's ``ev_pack_kwh``, else 75 kWh; the charger's limits are ``car_min_amps`` and ``car_max_amps``
  at ``car_volts``. Simple on purpose: a car that is plugged in is assumed to stay until the departure.

The plan is solved by :func:`homegrid.planner.optimise.plan` in a worker thread, kept in memory with its problem
(:attr:`PlanningService.last`), and the executor follows its first step (:meth:`Executor.run` calls
:meth:`PlanningService.next_plan` every step). A step that fails is logged and counted (:attr:`errors`, shown in
the hub's status) and never stops the hub: the devices keep their last mode.

The forecasts' errors on the same history (:func:`homegrid.forecast.forecast_errors`, MAE and RMSE at 1, 6 and
24 h) are computed at most once a local day, on demand (:meth:`PlanningService.forecast_errors`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from homegrid.config import Config, PlannerConfig
from homegrid.forecast import ForecastErrors, forecast_errors, forecast_load
from homegrid.glossary import EvChargingState
from homegrid.hub.plan_prices import month_charges
from homegrid.hub.tariff_file import SiteTariff
from homegrid.hub.weather_cache import CachedWeather, SolarSource, solar_forecast
from homegrid.planner.baseline import end_value, grid_cost, self_powered
from homegrid.planner.execute import battery_command, car_command
from homegrid.planner.problem import BatterySpec, CarNeed, Plan, Problem
from homegrid.readings import from_ms, to_ms
from homegrid.store import SQLiteStore
from homegrid.tariffs.meters import export_price, import_price
from homegrid.timezones import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    local_date,
    local_day_bounds,
    local_isoformat,
    wall_to_utc_ms,
)

__all__ = ["CAR_CHARGE_EFFICIENCY", "Followed", "Made", "PlanningService", "battery_spec", "history",
           "next_departure_ms"]

log = logging.getLogger(__name__)

#: the car charger's efficiency: energy into the pack per energy drawn
CAR_CHARGE_EFFICIENCY = 0.9
#: the battery's figures when neither the config nor the device says
DEFAULT_BATTERY_WH, DEFAULT_BATTERY_W = 13_500.0, 5_000.0
DEFAULT_CAR_PACK_WH = 75_000.0
DEFAULT_RESERVE_PERCENT = 20.0
#: how far back the forecasts' errors are replayed [days]
ERROR_DAYS = 28


@dataclass
class Made:
    """One plan and what it was made from."""

    problem: Problem
    plan: Plan
    made_at_ms: int
    self_powered: Plan
    notes: list[str] = field(default_factory=list)
    build_ms: float = 0.0  # reading the store and forecasting [ms]


@dataclass(frozen=True)
class Followed:
    """What the plan made at a step's start said for that step (the one the executor carried out)."""

    t_ms: int  # the step's start [ms]
    mode: str
    soc_start_percent: float  # the level when the plan was made [%]
    soc_percent: float  # planned at the step's end [%]
    battery_w: float  # planned mean over the step [W]


def history(store: SQLiteStore, start_ms: int, end_ms: int, step_ms: int) -> tuple[np.ndarray, np.ndarray,
                                                                                      np.ndarray]:
    """The household load (the car left out) and solar per bucket of ``step_ms`` from the minute rollups.

    Returns
    -------
    tuple of numpy.ndarray
        Bucket starts [ms], mean household load ``home - ev`` [W] and mean solar [W]; NaN where no minute of the
        bucket had data.
    """
    table = store.aggregate_minutes(start_ms, end_ms, step_ms)
    t = np.asarray(table.start_ms, dtype=np.int64)
    cols = table.columns
    covered = np.asarray(cols.get("covered_s", np.zeros(len(t))), dtype=np.float64)
    hours = covered / 3600.0
    with np.errstate(invalid="ignore", divide="ignore"):
        home = np.where(hours > 0, np.nan_to_num(cols["home"]) / hours, np.nan)
        ev = np.where(hours > 0, np.nan_to_num(cols["ev"]) / hours, 0.0)
        solar = np.where(hours > 0, np.nan_to_num(cols["solar"]) / hours, np.nan)
    load = np.clip(home - np.nan_to_num(ev), 0.0, None)
    return t, load, solar


def next_departure_ms(now_ms: int, departure: str, timezone: str) -> int:
    """The next instant after ``now_ms`` at the local time ``departure`` (``HH:MM``). [ms]"""
    from zoneinfo import ZoneInfo

    hh, mm = (int(x) for x in departure.split(":"))
    day = local_date(now_ms, ZoneInfo(timezone))
    for extra in range(3):
        wall = (day.toordinal() + extra - date(1970, 1, 1).toordinal()) * DAY_MS + (hh * 60 + mm) * MINUTE_MS
        t = int(wall_to_utc_ms(np.array([wall], dtype=np.int64), timezone)[0])
        if t > now_ms:
            return t
    raise AssertionError("unreachable: a departure within three days")


def battery_spec(planner: PlannerConfig, figures: Any, values: Mapping[str, float]) -> BatterySpec:
    """The home battery as the planner sees it (the module's notes say where each figure comes from).

    Parameters
    ----------
    planner : PlannerConfig
        ``battery_kwh``, ``battery_kw`` (0: not set), ``round_trip_percent`` and ``wear_cost_per_kwh``.
    figures : BatteryFigures or None
        The device's own figures (``capacity_wh``, ``max_discharge_w``), or None.
    values : mapping of str to float
        The newest readings (``battery_capacity`` [Wh] is read).
    """
    capacity = planner.battery_kwh * 1000.0
    if capacity <= 0:
        capacity = float(getattr(figures, "capacity_wh", 0.0) or 0.0)
    if capacity <= 0:
        capacity = float(values.get("battery_capacity") or 0.0)
    if capacity <= 0 or not math.isfinite(capacity):
        capacity = DEFAULT_BATTERY_WH
    power = planner.battery_kw * 1000.0
    if power <= 0:
        power = float(getattr(figures, "max_discharge_w", 0.0) or 0.0)
    if power <= 0 or not math.isfinite(power):
        power = DEFAULT_BATTERY_W
    eff = math.sqrt(planner.round_trip_percent / 100.0)
    return BatterySpec(capacity_wh=capacity, max_charge_w=power, max_discharge_w=power,
                       charge_efficiency=eff, discharge_efficiency=eff, wear_cost_per_kwh=planner.wear_cost_per_kwh)


class PlanningService:
    """Makes the plans the executor follows (see the module's notes).

    Parameters
    ----------
    config : Config
    store : SQLiteStore
        The hub's store (its minute rollups).
    tariff : SiteTariff
        The site's tariff.
    live : callable
        The hub's ``live()``: ``(time, values, times, devices)``.
    clock : callable
        The time now (aware).
    figures : callable, optional
        The battery device's :class:`~homegrid.devices.base.BatteryFigures`, or None.
    storm : callable, optional
        Storm mode's status (``StormWatch.status``), or None.
    executor : object, optional
        The :class:`~homegrid.planner.execute.Executor` the plans go to (its ``run`` loop).
    weather : callable, optional
        The cached weather forecast (:meth:`~homegrid.hub.weather_cache.WeatherCacheTask.current`), or None.
    """

    def __init__(self, config: Config, store: SQLiteStore, tariff: SiteTariff,
                 live: Callable[[], tuple[Any, ...]], clock: Callable[[], datetime], *,
                 figures: Callable[[], Any] | None = None, storm: Callable[[], dict[str, Any] | None] | None = None,
                 executor: Any = None, weather: Callable[[], CachedWeather | None] | None = None) -> None:
        self.config = config
        self.store = store
        self.tariff = tariff
        self.live = live
        self.clock = clock
        self.figures = figures
        self.storm = storm
        self.executor = executor
        self.weather = weather
        #: what the last problem's solar forecast was made from
        self.solar_source: SolarSource | None = None
        pl = config.planner
        self.step_ms = int(pl.step_min) * MINUTE_MS
        self.steps = max(1, round(pl.horizon_h * HOUR_MS / self.step_ms))
        self.last: Made | None = None
        self.plans = 0
        self.errors = 0
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self._errors_cache: tuple[tuple[date, int], ForecastErrors | None, str | None] | None = None
        self._errors_lock = threading.Lock()
        #: each step's first plan step as planned (:meth:`carried_out` sets them beside the readings), two days' worth
        self.followed: deque[Followed] = deque(maxlen=max(1, 2 * DAY_MS // self.step_ms))

    # -- the problem ----------------------------------------------------------------------------------------------

    def _battery(self, values: dict[str, float]) -> BatterySpec:
        return battery_spec(self.config.planner, self.figures() if self.figures is not None else None, values)

    def _reserve(self, values: dict[str, float], notes: list[str]) -> float:
        reserve = values.get("battery_reserve")
        sent = getattr(self.executor, "floor_percent", None)
        if sent is not None:  # the device's reserve shows the executor's last command, not the owner's floor
            if reserve is not None and abs(float(reserve) - sent) > 0.5:
                notes.append(f"the floor is the owner's reserve, {sent:.0f} % (the battery's reserve, "
                             f"{reserve:.0f} %, is the planner's own setting)")
            reserve = sent
        floor = DEFAULT_RESERVE_PERCENT if reserve is None or not math.isfinite(reserve) else float(reserve)
        status = self.storm() if self.storm is not None else None
        if status and status.get("storm"):
            raised = float(status.get("reserve_percent") or 0.0)
            if raised > floor:
                notes.append(f"storm mode raises the reserve to {raised:.0f} %")
                floor = raised
        return min(100.0, max(0.0, floor))

    def _car(self, values: dict[str, float], t_ms: np.ndarray, now_ms: int, notes: list[str]) -> CarNeed | None:
        pl = self.config.planner
        at_home, level, limit = values.get("ev_at_home"), values.get("ev_soc"), values.get("ev_charge_limit")
        if at_home is None or level is None or limit is None or at_home < 0.5:
            return None
        state = values.get("ev_charging_state")
        if state is not None and math.isfinite(state) and int(state) == EvChargingState.DISCONNECTED:
            notes.append("the car is at home but not plugged in")
            return None
        pack = pl.car_pack_kwh * 1000.0
        if pack <= 0:
            pack = self.config.virtual.ev_pack_kwh * 1000.0 if self.config.powerwall is None and \
                self.config.tesla is None else DEFAULT_CAR_PACK_WH
        depart = next_departure_ms(now_ms, pl.car_departure, self.config.site.timezone)
        plugged = t_ms < depart
        deadline = int(np.searchsorted(t_ms, depart, side="left"))
        need = max(0.0, float(limit) - float(level)) / 100.0 * pack / CAR_CHARGE_EFFICIENCY
        notes.append(f"the car: {level:.0f} % now, {limit:.0f} % by {from_ms(depart).isoformat()} "
                     f"({need:.0f} Wh from the charger)")
        return CarNeed(plugged=plugged, max_w=pl.car_max_amps * pl.car_volts, min_w=pl.car_min_amps * pl.car_volts,
                       energy_wh=need, deadline_step=min(deadline, len(t_ms)))

    def _prices(self, t_ms: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        tariff = self.tariff.current()
        if tariff is None:
            raise LookupError("no tariff is set: the planner needs the site's prices (the Tariffs section)")
        tz = self.config.site.timezone
        out = []
        for name, fn in (("import", import_price), ("export", export_price)):
            prices = np.asarray(fn(tariff, t_ms, tz), dtype=np.float64)
            known = np.isfinite(prices)
            if not known.any():
                raise LookupError(f"the tariff has no {name} price for the next {len(t_ms)} steps")
            if not known.all():  # a dynamic series that ends (or starts) inside the horizon: carry the edge on
                idx = np.where(known, np.arange(len(prices)), 0)
                np.maximum.accumulate(idx, out=idx)
                first = int(np.argmax(known))
                idx[:first] = first
                notes.append(f"{int((~known).sum())} steps have no {name} price: the last known one is assumed")
                prices = prices[idx]
            out.append(prices)
        return out[0], out[1]

    def build(self, now_ms: int, values: dict[str, float] | None = None) -> tuple[Problem, list[str]]:
        """The problem for the horizon whose first step holds ``now_ms``, and notes on the assumptions made
        (``values``: the newest readings, as ``live()`` gives them; None: asked now).

        Raises
        ------
        LookupError
            No tariff, no prices, or the battery's level is not known.
        """
        notes: list[str] = []
        pl, site = self.config.planner, self.config.site
        t0 = now_ms - now_ms % self.step_ms
        t_ms = t0 + self.step_ms * np.arange(self.steps, dtype=np.int64)
        values = dict(self.live()[1]) if values is None else values
        soc = values.get("battery_soc")
        if soc is None or not math.isfinite(soc):
            raise LookupError("the battery's level (battery_soc) is not known yet")
        hist_t, load, solar = history(self.store, t0 - pl.history_days * DAY_MS, t0, self.step_ms)
        if hist_t.size == 0 or not np.isfinite(load).any():
            raise LookupError("no history in the store to forecast from yet")
        load_f = forecast_load(hist_t, load, t_ms, self.step_ms, site.timezone, now_ms=t0)
        solar_f, solar_source = solar_forecast(hist_t, solar, t_ms, self.step_ms, site, t0,
                                               None if self.weather is None else self.weather())
        notes.append(solar_source.note)
        imp, exp = self._prices(t_ms, notes)
        month = month_charges(self.store, self.tariff.current(), t_ms, self.step_ms, site.timezone, imp, exp, notes)
        problem = Problem(t_ms=t_ms, step_ms=self.step_ms, load_w=load_f, solar_w=solar_f,
                          import_price=month.import_price, export_price=month.export_price,
                          import_tiers=month.import_tiers, demand_price_per_kw=month.demand_price_per_kw,
                          demand_peak_w=month.demand_peak_w, demand_terms=month.demand_terms,
                          battery=self._battery(values),
                          soc_percent=min(100.0, max(0.0, float(soc))), reserve_percent=self._reserve(values, notes),
                          car=self._car(values, t_ms, now_ms, notes))
        self.solar_source = solar_source
        return problem, notes

    # -- the loop ------------------------------------------------------------------------------------------------

    def make(self, values: dict[str, float] | None = None) -> Made:
        """Build, solve and keep one plan now (blocking: the hub runs it in a worker thread, with ``values`` the
        newest readings taken on the hub's loop; None: asked here)."""
        now_ms = to_ms(self.clock())
        started = time.perf_counter()
        problem, notes = self.build(now_ms, values)
        build_ms = (time.perf_counter() - started) * 1000.0
        from homegrid.planner.optimise import plan as solve  # HiGHS: loaded when the planner first plans

        made = Made(problem, solve(problem), now_ms, self_powered(problem), notes, build_ms)
        self.last = made
        self.plans += 1
        self._remember(made)
        log.info("planner: plan %d made (%d steps, solved in %.0f ms, forecasts in %.0f ms; cost %.2f against "
                 "%.2f self-powered)%s", self.plans, len(problem.t_ms), made.plan.solve_ms, build_ms,
                 made.plan.cost, made.self_powered.cost,
                 "; relaxed: " + "; ".join(made.plan.relaxed) if made.plan.relaxed else "")
        return made

    def _remember(self, made: Made) -> None:
        p, plan = made.problem, made.plan
        if not len(p.t_ms) or not plan.modes:
            return
        step = Followed(int(p.t_ms[0]), plan.modes[0].value, float(p.soc_percent), float(plan.soc_percent[0]),
                        float(plan.battery_w[0]))
        if self.followed and self.followed[-1].t_ms == step.t_ms:  # planned again within the step: the newest holds
            self.followed.pop()
        self.followed.append(step)

    async def next_plan(self) -> tuple[Problem, Plan] | None:
        """A fresh plan for the executor (its ``next_plan``), or None when none could be made (logged, counted)."""
        try:
            values = dict(self.live()[1])  # read on the loop that updates them, solved in a thread
            made = await asyncio.to_thread(self.make, values)
        except Exception as exc:  # no tariff, no history yet, a solver's fault: never the hub's end
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LookupError) else str(exc)
            self.last_error_at = self.clock().astimezone(UTC).isoformat()
            log.log(logging.WARNING if isinstance(exc, LookupError) else logging.ERROR,
                    "planner: no plan this step: %s", self.last_error, exc_info=not isinstance(exc, LookupError))
            return None
        self.last_error = None
        return made.problem, made.plan

    async def run(self, stop: asyncio.Event) -> None:
        """Plan and follow every step until ``stop`` (the executor's loop, fed by :meth:`next_plan`)."""
        if self.executor is None:
            while not stop.is_set():
                await self.next_plan()
                now_ms = to_ms(self.clock())
                try:
                    await asyncio.wait_for(stop.wait(), (self.step_ms - now_ms % self.step_ms) / 1000.0)
                except TimeoutError:
                    pass
            return
        await self.executor.run(stop, self.next_plan, self.step_ms / 1000.0)

    # -- reporting -----------------------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The service's health for the hub's status."""
        last = self.last
        return {"plans": self.plans, "errors": self.errors, "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "last_plan_at": None if last is None else from_ms(last.made_at_ms).isoformat(),
                "solve_ms": None if last is None else round(last.plan.solve_ms, 1),
                "step_min": self.config.planner.step_min, "horizon_h": self.config.planner.horizon_h}

    def forecast_errors(self) -> tuple[ForecastErrors | None, str | None]:
        """The forecasts' MAE and RMSE at 1, 6 and 24 h over the last :data:`ERROR_DAYS` days of history, worked out
        at most once a local day (and step); ``(None, why)`` when there is too little history."""
        from zoneinfo import ZoneInfo

        now_ms = to_ms(self.clock())
        key = (local_date(now_ms, ZoneInfo(self.config.site.timezone)), self.step_ms)
        with self._errors_lock:
            if self._errors_cache is not None and self._errors_cache[0] == key:
                return self._errors_cache[1], self._errors_cache[2]
            site = self.config.site
            t0 = now_ms - now_ms % self.step_ms
            t, load, solar = history(self.store, t0 - ERROR_DAYS * DAY_MS, t0, self.step_ms)
            result: ForecastErrors | None = None
            why: str | None = None
            try:
                if t.size < 2 or t[-1] - t[0] < 8 * DAY_MS:
                    raise ValueError("less than 8 days of history: the errors are replayed after a week's warm-up")
                result = forecast_errors(t, load, solar, timezone=site.timezone, latitude=site.latitude,
                                         longitude=site.longitude)
            except ValueError as exc:
                why = str(exc)
            self._errors_cache = (key, result, why)
            return result, why

    def describe(self) -> dict[str, Any] | None:
        """The last plan for ``GET /api/v1/plan`` (JSON-ready), or None before the first plan."""
        made = self.last
        if made is None:
            return None
        p, plan, base = made.problem, made.plan, made.self_powered
        tz = self.config.site.timezone
        times = local_isoformat(p.t_ms, tz)
        reserve = np.asarray(p.reserve_percent)
        steps = [
            {"time": times[i], "time_ms": int(p.t_ms[i]), "mode": plan.modes[i].value,
             "battery_w": _r(plan.battery_w[i]), "soc_percent": _r(plan.soc_percent[i], 2),
             "grid_w": _r(plan.grid_w[i]), "car_w": _r(plan.car_w[i]) if len(plan.car_w) else 0.0,
             "load_w": _r(p.load_w[i]), "solar_w": _r(p.solar_w[i]),
             "import_price": _r(p.import_price[i], 5), "export_price": _r(p.export_price[i], 5),
             "reserve_percent": _r(reserve[i], 2), "self_powered_soc_percent": _r(base.soc_percent[i], 2)}
            for i in range(len(p.t_ms))
        ]
        plan_grid, base_grid = grid_cost(p, plan), grid_cost(p, base)
        plan_end, base_end = end_value(p, plan), end_value(p, base)
        return {
            "made_at": from_ms(made.made_at_ms).isoformat(),
            "step_min": p.step_ms // MINUTE_MS,
            "horizon_h": len(p.t_ms) * p.step_ms / HOUR_MS,
            "soc_now_percent": p.soc_percent,
            "battery": {"capacity_wh": p.battery.capacity_wh, "max_charge_w": p.battery.max_charge_w,
                        "max_discharge_w": p.battery.max_discharge_w,
                        "round_trip": round(p.battery.charge_efficiency * p.battery.discharge_efficiency, 4)},
            "car": None if p.car is None else {"energy_wh": round(p.car.energy_wh, 1),
                                               "deadline": times[p.car.deadline_step]
                                               if p.car.deadline_step < len(times) else None,
                                               "max_w": p.car.max_w, "min_w": p.car.min_w},
            "cost": {"plan": round(plan_grid, 4), "self_powered": round(base_grid, 4),
                     "plan_end_value": round(plan_end, 4), "self_powered_end_value": round(base_end, 4),
                     "saving": round((base_grid - base_end) - (plan_grid - plan_end), 4),
                     "currency": _currency(self.tariff)},
            "next": self._next(p, plan),
            "relaxed": list(plan.relaxed),
            "notes": list(made.notes),
            "solve_ms": round(plan.solve_ms, 2),
            "build_ms": round(made.build_ms, 2),
            "steps": steps,
        }


    def carried_out(self) -> dict[str, Any]:
        """What was done today (the site's local day) for ``GET /api/v1/plan``: the executor's commands with their
        reasons, and per step planned since midnight (since the hub started, at most), the mode and level planned
        beside the battery's measured level at the step's end and its mean power (``battery_soc``,
        ``battery_power``; the step under way: so far), and ``done_mode``: the mode of the battery command in force
        at the step's end (the executor may carry out another mode than the plan's, e.g. self-powered where a
        hold would not pay; None before any command)."""
        site = self.config.site
        now_ms = to_ms(self.clock())
        midnight, next_midnight = local_day_bounds(local_date(now_ms, site.tz), site.tz)
        today = [f for f in self.followed if f.t_ms >= midnight]
        steps: list[dict[str, Any]] = []
        if today:
            frame = self.store.read_readings(today[0].t_ms, now_ms + 1, ["battery_soc", "battery_power"])
            t = np.asarray(frame.time_ms, dtype=np.int64)
            soc = frame.columns.get("battery_soc", np.full(t.size, np.nan))
            power = frame.columns.get("battery_power", np.full(t.size, np.nan))
            times = local_isoformat(np.array([f.t_ms for f in today], dtype=np.int64), site.timezone)
            ex_records = [] if self.executor is None else list(self.executor.records)
            given = [(r.time_ms, r.mode) for r in ex_records
                     if r.device == "battery" and r.outcome in ("sent", "dry run") and r.mode]
            given_t = np.array([g[0] for g in given], dtype=np.int64)
            for f, when in zip(today, times, strict=True):
                k = int(np.searchsorted(given_t, f.t_ms + self.step_ms)) - 1
                a, b = np.searchsorted(t, [f.t_ms, f.t_ms + self.step_ms])
                levels = soc[a:b][np.isfinite(soc[a:b])]
                watts = power[a:b][np.isfinite(power[a:b])]
                steps.append({"time": when, "time_ms": f.t_ms, "mode": f.mode,
                              "done_mode": given[k][1] if k >= 0 else None,
                              "planned_soc_percent": _r(f.soc_percent, 2),
                              "measured_soc_percent": _r(levels[-1], 2) if levels.size else None,
                              "planned_battery_w": _r(f.battery_w), "measured_battery_w":
                                  _r(watts.mean()) if watts.size else None,
                              "under_way": f.t_ms + self.step_ms > now_ms})
        ex = self.executor
        status = {} if ex is None else ex.status
        return {"day_start_ms": midnight, "day_end_ms": next_midnight, "step_min": self.step_ms // MINUTE_MS,
                "acting": status.get("acting", False), "dry_run": status.get("dry_run", False),
                "standby": status.get("standby"), "owner_override": status.get("owner_override"),
                "commands": status.get("commands", []), "steps": steps}

    @staticmethod
    def _next(problem: Problem, plan: Plan) -> dict[str, Any]:
        """What the plan does now and why, in the executor's words."""
        command, reason = battery_command(problem, plan, 0)
        car = car_command(problem, plan, 0)
        return {"mode": plan.modes[0].value if plan.modes else None, "battery": command.describe(),
                "battery_reason": reason, "car": None if car is None else car[0].describe(),
                "car_reason": None if car is None else car[1]}


def _r(x: float, digits: int = 1) -> float | None:
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


def _currency(tariff: SiteTariff) -> str | None:
    t = tariff.current()
    return None if t is None else t.currency
