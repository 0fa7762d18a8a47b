"""What the planner is asked and what it answers: the home's next hours as arrays, and the plan for them.

A :class:`Problem` holds, per step of the horizon, the household load and the solar expected [W] (the car left
out: it is planned as a flexible load of its own, :class:`CarNeed`), the import and export prices
[currency/kWh], the battery (:class:`BatterySpec`) with its state of charge now and its reserve floor per step
(storm mode raises it), and the grid's limits. The optimiser (:mod:`homegrid.planner.optimise`) answers a
:class:`Plan`: per step the battery's power (glossary sign: + discharge, - charge), the car's charging power,
the grid's power (+ import, - export), the state of charge at each step's end, the mode the devices are given
(:class:`Mode`), the plan's cost, and what had to be relaxed to find a plan at all.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from homegrid.tariffs.horizon import DemandTerm, TierBlocks

__all__ = ["BatterySpec", "CarMode", "CarNeed", "Mode", "Plan", "Problem", "fair_end_value", "stored_energy_value"]


class Mode(enum.StrEnum):
    """What the battery is told for a step; the local loop follows the real load within it."""

    SELF_POWERED = "self-powered"  # the sun's surplus charges, deficits discharge down to the reserve
    CHARGE = "charge"  # charge from the grid (and the sun) up to the plan's level
    HOLD = "hold"  # no discharge: the home draws from the grid (the sun may still charge)
    EXPORT = "export"  # discharge beyond the home's load, to the grid


class CarMode(enum.StrEnum):
    """How the car is charged (evcc's modes, and the planner's own)."""

    PLAN = "plan"  # cheapest energy that meets the target by the departure
    SOLAR = "solar"  # only from the sun's surplus
    MIN_SOLAR = "min+solar"  # at least the charger's minimum while plugged in, more from the surplus


@dataclass(frozen=True)
class BatterySpec:
    """The home battery as the planner models it.

    Parameters
    ----------
    capacity_wh : float
        Usable energy at 100 %. [Wh]
    max_charge_w, max_discharge_w : float
        Power limits. [W]
    charge_efficiency, discharge_efficiency : float
        Energy stored per energy taken in, and delivered per energy taken out (0-1]; the round trip is their
        product (90 % by default, split evenly).
    wear_cost_per_kwh : float
        Cost of each kWh passing through the battery (charge plus discharge). [currency/kWh]
    grid_charging : bool
        Whether the battery may charge from the grid (the owner or the utility may forbid it).
    export_from_battery : bool
        Whether the battery may discharge to the grid.
    """

    capacity_wh: float = 13_500.0
    max_charge_w: float = 5_000.0
    max_discharge_w: float = 5_000.0
    charge_efficiency: float = math.sqrt(0.9)
    discharge_efficiency: float = math.sqrt(0.9)
    wear_cost_per_kwh: float = 0.0
    grid_charging: bool = True
    export_from_battery: bool = True

    def __post_init__(self) -> None:
        for name in ("capacity_wh", "max_charge_w", "max_discharge_w", "wear_cost_per_kwh"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"battery.{name}: must be a finite number >= 0, got {value!r}")
        for name in ("charge_efficiency", "discharge_efficiency"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"battery.{name}: must be in (0, 1], got {value!r}")


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class CarNeed:
    """The car as a flexible load over the horizon.

    Parameters
    ----------
    plugged : numpy.ndarray of bool
        Whether the car is plugged in at home in each step.
    max_w, min_w : float
        The charger's power limits while charging. [W]
    energy_wh : float
        Energy the car still needs by ``deadline_step`` (its target level less its level now, over the charger's
        losses). [Wh]
    deadline_step : int
        The step by whose start the energy must be in (the departure); ``len(plugged)``: the horizon's end.
    mode : CarMode
    """

    plugged: np.ndarray
    max_w: float
    energy_wh: float
    deadline_step: int
    min_w: float = 0.0
    mode: CarMode = CarMode.PLAN


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class Problem:
    """One planning problem (see the module's docstring). Arrays have one value per step.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Step starts, UTC epoch ms. [ms]
    step_ms : int
        Step length. [ms]
    load_w, solar_w : numpy.ndarray
        Expected household load (the car excluded) and solar, averages over each step. [W]
    import_price, export_price : numpy.ndarray
        Price of a kWh imported and credit for a kWh exported in each step. [currency/kWh]
    battery : BatterySpec
    soc_percent : float
        The battery's state of charge now. [%]
    reserve_percent : numpy.ndarray
        The floor of the state of charge at each step's end (the backup reserve; storm mode raises it). [%]
    car : CarNeed or None
    import_limit_w, export_limit_w : float
        The grid connection's limits. [W]
    end_value_per_kwh : float or None
        What a kWh left in the battery at the horizon's end is worth [currency/kWh]; None: a fair value from the
        horizon's own prices, so the plan neither hoards nor dumps.
    demand_price_per_kw : float
        Charge on the horizon's peak import (a demand charge). [currency/kW]
    demand_peak_w : float
        The month's peak import so far (only import above it costs). [W]
    import_tiers : TierBlocks or None
        A tiered rate's blocks left in the billing month (:func:`homegrid.tariffs.horizon.horizon_charges`): each
        step's import is priced block by block instead of at ``import_price`` (which then holds each step's
        marginal price, for the end value and the yardstick). The blocks must rise in price (convex); None: no
        blocks.
    demand_terms : tuple of DemandTerm
        More demand charges, each on the peak of its own steps' import above its own peak so far (per-period
        demand, a billing month that starts within the horizon); beside ``demand_price_per_kw``, which is over
        every step.
    """

    t_ms: np.ndarray
    step_ms: int
    load_w: np.ndarray
    solar_w: np.ndarray
    import_price: np.ndarray
    export_price: np.ndarray
    battery: BatterySpec = field(default_factory=BatterySpec)
    soc_percent: float = 20.0
    reserve_percent: np.ndarray | float = 20.0
    car: CarNeed | None = None
    import_limit_w: float = math.inf
    export_limit_w: float = math.inf
    end_value_per_kwh: float | None = None
    demand_price_per_kw: float = 0.0
    demand_peak_w: float = 0.0
    import_tiers: TierBlocks | None = None
    demand_terms: tuple[DemandTerm, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.t_ms)
        for name in ("load_w", "solar_w", "import_price", "export_price"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (n,):
                raise ValueError(f"problem.{name}: expected {n} values, got shape {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"problem.{name}: {int((~np.isfinite(a)).sum())} values are not numbers")
            object.__setattr__(self, name, a)
        reserve = np.broadcast_to(np.asarray(self.reserve_percent, dtype=np.float64), (n,)).copy()
        object.__setattr__(self, "reserve_percent", reserve)
        if self.step_ms <= 0:
            raise ValueError(f"problem.step_ms: must be > 0, got {self.step_ms}")
        if self.car is not None and len(self.car.plugged) != n:
            raise ValueError(f"problem.car.plugged: expected {n} values, got {len(self.car.plugged)}")
        if self.import_tiers is not None and len(self.import_tiers.group) != n:
            raise ValueError(f"problem.import_tiers: expected {n} steps, got {len(self.import_tiers.group)}")
        for term in self.demand_terms:
            if len(term.steps) != n:
                raise ValueError(f"problem.demand_terms ({term.name}): expected {n} steps, got {len(term.steps)}")

    def demand_charges(self) -> tuple[DemandTerm, ...]:
        """Every demand charge with a price: ``demand_price_per_kw`` over every step (each step its own window),
        then :attr:`demand_terms`."""
        flat = DemandTerm(np.ones(len(self.t_ms), dtype=bool), self.demand_price_per_kw, self.demand_peak_w, "flat")
        return tuple(d for d in (flat, *self.demand_terms) if d.price_per_kw > 0 and np.any(d.steps))

    @property
    def hours(self) -> float:
        """One step's length. [h]"""
        return self.step_ms / 3_600_000


@dataclass
class Plan:
    """The optimiser's answer; arrays have one value per step.

    Attributes
    ----------
    battery_w : numpy.ndarray
        + discharge, - charge. [W]
    car_w : numpy.ndarray
        The car's charging. [W]
    grid_w : numpy.ndarray
        + import, - export. [W]
    soc_percent : numpy.ndarray
        State of charge at each step's end. [%]
    modes : list of Mode
    cost : float
        Import cost - export credit + wear + demand - the end value of the energy left. [currency]
    relaxed : list of str
        What could not be met and was relaxed to find a plan (empty when all was met), in words.
    solve_ms : float
        The solver's time. [ms]
    curtailed_w : numpy.ndarray
        Solar the plan throttles (more sun than the home, the battery and the grid can take, or exporting would
        cost money); empty when the optimiser did not say. [W]
    unserved_w : numpy.ndarray
        Household load the plan cannot serve within the grid's import limit, the sun and the battery (reported in
        ``relaxed``); empty when the optimiser did not say. [W]

    Per step, ``load - unserved + car = solar - curtailed + battery_w + grid_w``.
    """

    battery_w: np.ndarray
    car_w: np.ndarray
    grid_w: np.ndarray
    soc_percent: np.ndarray
    modes: list[Mode]
    cost: float
    relaxed: list[str] = field(default_factory=list)
    solve_ms: float = 0.0
    curtailed_w: np.ndarray = field(default_factory=lambda: np.zeros(0))
    unserved_w: np.ndarray = field(default_factory=lambda: np.zeros(0))


def fair_end_value(problem: Problem) -> float:
    """The value of a kWh left in the battery at the horizon's end when the problem gives none.

    Parameters
    ----------
    problem : Problem

    Returns
    -------
    float
        :func:`stored_energy_value` of the horizon's import prices, or the problem's own
        ``end_value_per_kwh`` (at least 0). [currency/kWh]
    """
    if problem.end_value_per_kwh is not None:
        return max(0.0, float(problem.end_value_per_kwh))
    return stored_energy_value(problem.import_price, problem.battery)


def stored_energy_value(import_price: np.ndarray, battery: BatterySpec) -> float:
    """What a kWh stored in the battery is worth when it is not used within the prices given: it will displace an
    import some later day, at a typical price (the median, so that a few spikes of a dynamic tariff do not
    inflate it), less what the discharge loses and wears. The optimiser's end of horizon and the backtest's end of
    period both use it (the optimiser's module says why it neither hoards nor dumps).

    Parameters
    ----------
    import_price : numpy.ndarray
        The prices of the steps the value stands for. [currency/kWh]
    battery : BatterySpec

    Returns
    -------
    float
        ``discharge_efficiency * (median(import_price) - wear_cost_per_kwh)``, at least 0; 0 without prices.
        [currency/kWh]
    """
    if len(import_price) == 0:
        return 0.0
    return max(0.0, battery.discharge_efficiency * (float(np.median(import_price)) - battery.wear_cost_per_kwh))
