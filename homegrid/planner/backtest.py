"""The backtest: a past period's readings replayed under a policy (:mod:`homegrid.planner.simulate`), billed with a
tariff, side by side with the home without its battery and with perfect foresight.

The readings (a :class:`~homegrid.readings.ReadingFrame` with at least ``home_power`` and ``solar_power``;
``ev_power`` optional) are brought to the step as each step's average power: the samples are integrated
trapezoidally (:func:`homegrid.energy.integrate.energy_per_bucket`, samples further apart than ``max_gap_s`` not
bridged) and divided by the time they cover; the steps run from the first reading's step to the last's. A step
the samples do not cover at all is filled by linear interpolation between its neighbours and counted
(``filled_steps``). ``home_power`` includes the car (the glossary), so the household load is
``home_power - ev_power``. Where the readings have ``ev_charging_state``, the car's plug-in windows are the steps
it was plugged in at home (``ev_at_home`` not 0); else the runs of charging extended by ``ev_extend_h``
(:func:`~homegrid.planner.simulate.car_windows`).

Each step is priced with the tariff's marginal prices at its start (:func:`homegrid.tariffs.meters.import_price`
and :func:`~homegrid.tariffs.meters.export_price`), which is what the policies see; the replay's grid flows are
billed exactly (:func:`homegrid.tariffs.bill.price_bill`, tiers, demand and fixed charges included). The battery
starts at its reserve; what it holds above that at the end is worth :func:`~homegrid.planner.simulate.fair_end_value`
per kWh, and ``net`` is the bill less that value: the figure the policies are compared on.

The share of the perfect-foresight saving is ``(net without battery - net) / (net without battery - net of
perfect)`` (the issue's budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from homegrid.energy.integrate import coverage_per_bucket, energy_per_bucket
from homegrid.forecast import LoadForecaster, SolarForecaster
from homegrid.glossary import EvChargingState
from homegrid.planner.problem import BatterySpec
from homegrid.planner.simulate import (
    Outcome,
    Period,
    car_windows,
    fair_end_value,
    percentile,
)
from homegrid.readings.model import ReadingFrame
from homegrid.tariffs.bill import Bill, Metered, price_bill
from homegrid.tariffs.meters import export_price, import_price
from homegrid.tariffs.model import Tariff
from homegrid.timezones import DAY_MS, HOUR_MS, MINUTE_MS, local_isoformat

__all__ = ["BacktestError", "SiteForecast", "battery_spec", "bill_outcome", "period_from_readings", "summary"]


class BacktestError(ValueError):
    """Data or settings the backtest cannot run on; the message says which."""


def battery_spec(capacity_kwh: float = 13.5, power_kw: float = 5.0, round_trip: float = 0.9) -> BatterySpec:
    """The battery of the backtest: its round trip split evenly between charge and discharge.

    Parameters
    ----------
    capacity_kwh : float
        Usable energy. [kWh]
    power_kw : float
        Charge and discharge limit. [kW]
    round_trip : float
        Energy out per energy in, (0, 1]; a percentage (> 1) is read as one.
    """
    if round_trip > 1:
        round_trip /= 100
    if not 0 < round_trip <= 1:
        raise BacktestError(f"--round-trip: must be in (0, 1] (or a percentage), got {round_trip}")
    eff = math.sqrt(round_trip)
    try:
        return BatterySpec(capacity_wh=capacity_kwh * 1000, max_charge_w=power_kw * 1000,
                           max_discharge_w=power_kw * 1000, charge_efficiency=eff, discharge_efficiency=eff)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None


@dataclass(frozen=True)
class Prepared:
    """A period ready to replay, and what was done to the data to get it."""

    period: Period
    filled_steps: dict[str, int]


def _average_per_step(t_ms: np.ndarray, values: np.ndarray, edges: np.ndarray, max_gap_s: float) -> tuple[
        np.ndarray, int]:
    """Each step's average power, gaps filled by interpolation [W], and how many steps were filled."""
    energy = energy_per_bucket(t_ms, values, edges, max_gap_s)
    covered = coverage_per_bucket(t_ms, values, edges, max_gap_s)
    ok = covered > 0
    avg = np.where(ok, energy * 3600 / np.where(ok, covered, 1.0), np.nan)
    if not ok.any():
        return np.zeros(len(avg)), len(avg)
    idx = np.arange(len(avg))
    filled = np.interp(idx, idx[ok], avg[ok])
    return filled, int((~ok).sum())


def period_from_readings(frame: ReadingFrame, tariff: Tariff, timezone: str, *, step_ms: int = 15 * MINUTE_MS,
                         reserve_percent: float = 20.0, ev_extend_h: float = 4.0,
                         max_gap_s: float | None = None) -> Prepared:
    """The period to replay from readings, priced per step with ``tariff``.

    Parameters
    ----------
    frame : ReadingFrame
        At least ``home_power`` and ``solar_power``; ``ev_power`` optional. [W]
    tariff : Tariff
    timezone : str
        The site's IANA zone.
    step_ms : int
        The replay's step; it must divide an hour or be whole hours. [ms]
    reserve_percent : float
        The backup reserve. [%]
    ev_extend_h : float
        How long the car stays plugged in after a run of charging (:func:`~homegrid.planner.simulate.car_windows`). [h]
    max_gap_s : float or None
        Samples further apart are not bridged; None: three times the data's usual spacing, at least the step. [s]

    Raises
    ------
    BacktestError
        A column missing, too few readings, a step that does not fit an hour, prices missing for a step.
    """
    if step_ms <= 0 or (HOUR_MS % step_ms and step_ms % HOUR_MS):
        raise BacktestError(f"--step-min: the step must divide an hour or be whole hours, got {step_ms / MINUTE_MS:g}")
    for name in ("home_power", "solar_power"):
        if name not in frame.columns or not np.isfinite(frame.columns[name]).any():
            raise BacktestError(f"the data has no {name} readings; the backtest needs home_power and solar_power")
    t = frame.time_ms
    if len(t) < 2:
        raise BacktestError("the data has fewer than two readings")
    spacing = float(np.median(np.diff(t))) / 1000
    gap = max_gap_s if max_gap_s is not None else max(3 * spacing, step_ms / 1000)
    first = -(-int(t[0]) // step_ms) * step_ms
    last = -(-int(t[-1]) // step_ms) * step_ms  # the step holding the last reading is in, averaged over its cover
    if last <= first:
        raise BacktestError("the data spans less than one step")
    edges = np.arange(first, last + 1, step_ms, dtype=np.int64)
    steps = edges[:-1]
    filled: dict[str, int] = {}
    home, filled["home_power"] = _average_per_step(t, frame.columns["home_power"], edges, gap)
    solar, filled["solar_power"] = _average_per_step(t, frame.columns["solar_power"], edges, gap)
    if "ev_power" in frame.columns and np.isfinite(frame.columns["ev_power"]).any():
        ev, filled["ev_power"] = _average_per_step(t, frame.columns["ev_power"], edges, gap)
    else:
        ev = np.zeros(len(steps))
    ev = np.clip(ev, 0.0, None)
    ev[ev < 1.0] = 0.0  # integration crumbs are no charging
    load = np.clip(home - ev, 0.0, None)
    buy, sell = import_price(tariff, steps, timezone), export_price(tariff, steps, timezone)
    for name, p in (("import", buy), ("export", sell)):
        if not np.isfinite(p).all():
            at = local_isoformat(steps[np.flatnonzero(~np.isfinite(p))[:1]], timezone)[0]
            raise BacktestError(f"the tariff has no {name} price for {int((~np.isfinite(p)).sum())} steps (the "
                                f"first at {at}): the prices must cover the data's span")
    windows = car_windows(ev, step_ms, extend_steps=round(ev_extend_h * HOUR_MS / step_ms),
                          merge_gap_steps=max(round(HOUR_MS / step_ms), 1), plugged=_plugged(frame, edges, gap))
    period = Period(steps, step_ms, load, np.clip(solar, 0.0, None), ev, buy, sell, timezone, windows,
                    float(ev.max()) if len(ev) else 0.0, reserve_percent)
    return Prepared(period, filled)


#: the charger's states in which the car is plugged in (glossary.EvChargingState)
_PLUGGED_STATES = (EvChargingState.STOPPED, EvChargingState.STARTING, EvChargingState.CHARGING,
                   EvChargingState.COMPLETE, EvChargingState.NO_POWER)


def _plugged(frame: ReadingFrame, edges: np.ndarray, max_gap_s: float) -> np.ndarray | None:
    """Whether the car is plugged in at home in each step, where the readings have ``ev_charging_state``: a
    state holds from its reading until the next (at most ``max_gap_s``), the car is plugged in a step when any
    state in it says so, and not at home where ``ev_at_home`` is 0. None without such readings."""
    state = frame.columns.get("ev_charging_state")
    if state is None or not np.isfinite(state).any():
        return None
    known = np.isfinite(state)
    t = frame.time_ms[known]
    yes = np.isin(state[known], [int(s) for s in _PLUGGED_STATES]) & (frame.column("ev_at_home")[known] != 0)
    n = len(edges) - 1
    plugged = np.zeros(n, dtype=bool)
    step = np.searchsorted(edges, t, side="right") - 1
    inside = (step >= 0) & (step < n)
    np.logical_or.at(plugged, step[inside], yes[inside])
    last = np.searchsorted(t, edges[:-1], side="right") - 1  # the state holding at each step's start
    held = (last >= 0) & ((edges[:-1] - t[np.clip(last, 0, None)]) <= max_gap_s * 1000)
    plugged |= held & yes[np.clip(last, 0, None)]
    return plugged


def bill_outcome(outcome: Outcome, period: Period, tariff: Tariff) -> Bill:
    """The exact bill of a replay's grid flows under ``tariff``."""
    metered = Metered(period.t_ms, period.step_ms, outcome.import_wh, outcome.export_wh)
    return price_bill(tariff, metered, period.timezone, int(period.t_ms[0]), int(period.t_ms[-1]) + period.step_ms)


def summary(outcome: Outcome, period: Period, spec: BatterySpec, tariff: Tariff) -> dict[str, Any]:
    """A replay's figures: its bill [currency], the end value [currency], grid import and export [Wh], cycles,
    the car's windows met, solve and decision times [ms]."""
    bill = bill_outcome(outcome, period, tariff)
    end_wh = float(outcome.soc_wh[-1]) if len(outcome.soc_wh) else outcome.soc_start_wh
    end_value = (end_wh - outcome.soc_start_wh) / 1000 * fair_end_value(period, spec)
    solve = outcome.solve_ms or outcome.decide_ms.tolist()
    return {
        "policy": outcome.policy,
        "bill": round(bill.total, 4),
        "currency": bill.currency,
        "end_value": round(end_value, 4),
        "net": round(bill.total - end_value, 4),
        "grid_import_wh": round(float(outcome.import_wh.sum())),
        "grid_export_wh": round(float(outcome.export_wh.sum())),
        "battery_cycles": round(outcome.cycles(spec), 3),
        "battery_end_percent": round(end_wh / spec.capacity_wh * 100, 2) if spec.capacity_wh else 0.0,
        "car": {
            "windows": len(outcome.car_met),
            "met": int(sum(outcome.car_met)),
            "target_met": all(outcome.car_met),
            "short_wh": round(outcome.car_short_wh),
            "energy_wh": round(float(outcome.car_w.sum() * outcome.hours)),
        },
        "plans": len(outcome.solve_ms),
        "solve_ms": {"p50": round(percentile(solve, 50), 3), "p99": round(percentile(solve, 99), 3),
                     "max": round(max(solve, default=0.0), 3)},
        "relaxed": sorted(set(outcome.relaxed))[:20],
    }


class SiteForecast:
    """The site's own forecasts (:mod:`homegrid.forecast`) as ``mpc`` asks for them, fed the replay's past steps as
    they pass (each call observes only the steps before the horizon, which the caller guarantees).

    Parameters
    ----------
    timezone : str
        The site's IANA zone.
    latitude, longitude : float
        The site. [degrees]
    step_ms : int
        The replay's step. [ms]

    Notes
    -----
    The load forecast is :class:`~homegrid.forecast.LoadForecaster` (local time-of-day profiles blended with the
    recent days and the last hour), the solar :class:`~homegrid.forecast.SolarForecaster` (clear sky scaled by the
    array's measured response and the recent clearness: no weather forecast in a backtest). Their profiles are at
    the step (15 minutes at least, a divisor of a day; else 30 minutes).
    """

    def __init__(self, timezone: str, latitude: float, longitude: float, step_ms: int) -> None:
        slot = step_ms if step_ms >= 15 * MINUTE_MS and DAY_MS % step_ms == 0 else 30 * MINUTE_MS
        self.load = LoadForecaster(timezone, slot_ms=slot)
        self.solar = SolarForecaster(latitude, longitude, slot_ms=slot)
        self.step_ms = step_ms
        self.seen = 0

    def __call__(self, load_w: np.ndarray, solar_w: np.ndarray, t_hist: np.ndarray,
                 t_ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(t_hist)
        if n > self.seen:
            self.load.observe(t_hist[self.seen:n], load_w[self.seen:n])
            self.solar.observe(t_hist[self.seen:n], solar_w[self.seen:n])
            self.seen = n
        now = int(t_ahead[0])
        load = np.nan_to_num(self.load.forecast(now, t_ahead, self.step_ms), nan=0.0)
        solar = np.nan_to_num(self.solar.forecast(now, t_ahead, self.step_ms), nan=0.0)
        return np.clip(load, 0.0, None), np.clip(solar, 0.0, None)
