"""The battery and the car replayed step by step over a past period, under a policy that knows only what it may.

The physics (:func:`battery_step`)
    Each step the battery is asked for a power (glossary sign: + discharge, - charge) and gives what its limits
    allow: the power limits of :class:`~homegrid.planner.problem.BatterySpec`, the room above the reserve floor
    (discharge) or below 100 % (charge). Charging ``c`` watts for ``h`` hours stores ``c * h * charge_efficiency``;
    discharging ``d`` watts takes ``d * h / discharge_efficiency`` out of the store. The grid takes the rest of
    each step's balance: ``grid = load + car - (solar - curtailed) - battery`` (+ import, - export), so energy is
    conserved by construction. Solar may be curtailed where a command says so (``perfect`` as its plan does;
    ``mpc`` cuts the export in a step its plan curtails, as an inverter's export limit does).

The local loop (:func:`follow`)
    A policy gives each step a :class:`Command`: a :class:`~homegrid.planner.problem.Mode` and a level, which
    the local loop carries out against the step's *real* load and solar, as the devices do between re-plans:

    - ``self-powered``: the battery takes the home's net load (load + car - solar): the sun's surplus charges,
      deficits discharge down to the reserve (or to the command's level, where it gives one);
    - ``charge``: below the level, charge at the power limit (the sun's surplus first, the grid for the rest; only
      the surplus where grid charging is not allowed) up to it; at or above it, self-powered no lower than it;
    - ``hold``: self-powered no lower than the level (the level when the hold began; the state of charge now
      without one): no discharge below it, the sun's surplus still charges, the grid never does;
    - ``export``: discharge at the power limit down to the level (the reserve without one) whatever the load, what
      the home does not use going to the grid; there, self-powered (self-powered throughout where export from the
      battery is not allowed).

    These are the modes as the live executor sends them (:func:`homegrid.planner.execute.battery_command`: a
    charge's level is the plan's level at the end of its run of charge steps, a hold's the level when it began)
    and as the virtual home carries them out (:func:`homegrid.devices.virtual.battery.follow_mode`).

    A command may instead carry a raw battery set-point (``battery_w``): ``perfect`` replays the optimum so, as it
    knows the real load; ``mpc`` never does (a plan replayed as set-points against a load it did not foresee
    exports what the home did not use and imports what it did: the issue's 3 %).

The car (:func:`car_windows`)
    The data's ``ev_power`` is the car's charging as it happened. A plug-in window is a run of steps with
    charging (``ev_power > 0``; runs less than ``merge_gap_steps`` apart are one window, as a car paused by its
    charger is still plugged in) extended forward by ``extend_steps`` (the time the car is assumed to stay
    plugged after it finished charging; the data does not say) but never into the next run, nor past the data.
    Where the data has the plug-in state (``plugged``, e.g. from ``ev_charging_state``), the windows are its
    runs instead. Each window's energy is what the car took in it as it happened; a policy that reschedules the
    car must deliver it by the window's end. ``self-consumption`` and ``time-based`` charge the car as it
    happened; ``perfect`` and ``mpc`` move it within its window, and the local loop raises the car's power
    whenever less would miss the window's energy at the charger's top power.

The policies, each a function of what it may know
    - :func:`self_consumption`: nothing but the step (Tesla's Self-Powered default);
    - :func:`time_based`: the prices of the day (a tariff is known in advance) and the past load: discharge
      only in the day's peak steps, hold otherwise, optionally grid-charge in the cheapest steps to cover the
      last peak's deficit again (Tesla's Time-Based Control, simply);
    - :func:`perfect`: the whole period's real load and solar, solved once by the optimiser (the ceiling);
    - :func:`mpc`: re-plans every step from forecasts made only from the data before the step, and carries out
      the plan's first step as a mode through the local loop.

The optimiser and the forecasts come in as functions (``solve``, ``forecast``), so this module holds no solver
and reads nothing: the caller wires :func:`homegrid.planner.optimise.plan` and the site's forecasts in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from homegrid.forecast.load import persistence_forecast as persistence
from homegrid.planner.execute import battery_command
from homegrid.planner.problem import BatterySpec, CarNeed, Mode, Plan, Problem, stored_energy_value
from homegrid.timezones import local_calendar

__all__ = [
    "Command",
    "Forecast",
    "Outcome",
    "Period",
    "Policy",
    "Window",
    "battery_step",
    "car_windows",
    "fair_end_value",
    "follow",
    "mpc",
    "no_battery",
    "peak_and_cheap",
    "percentile",
    "perfect",
    "perfect_forecast",
    "persistence_forecast",
    "self_consumption",
    "simulate",
    "time_based",
]

_EPS_W = 1e-6


# ----------------------------------------------------------------------------- the data replayed


@dataclass(frozen=True)
class Window:
    """A plug-in window of the car: steps ``start`` to ``end`` (excluded) and the energy due by its end.

    Attributes
    ----------
    start, end : int
        First step and the step after the last. [step]
    energy_wh : float
        What the car took in the window as it happened. [Wh]
    """

    start: int
    end: int
    energy_wh: float


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class Period:
    """The period replayed, one value per step.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Step starts, UTC epoch ms, rising by ``step_ms``. [ms]
    step_ms : int
        Step length. [ms]
    load_w : numpy.ndarray
        The household's load without the car, average over each step. [W]
    solar_w : numpy.ndarray
        Solar, average over each step. [W]
    ev_w : numpy.ndarray
        The car's charging as it happened. [W]
    import_price, export_price : numpy.ndarray
        What a kWh imported costs and a kWh exported earns in each step. [currency/kWh]
    timezone : str
        The site's IANA zone (local days for ``time-based``).
    windows : tuple of Window
        The car's plug-in windows (:func:`car_windows`).
    car_max_w : float
        The charger's top power. [W]
    reserve_percent : float
        The backup reserve: the battery's floor. [%]
    """

    t_ms: np.ndarray
    step_ms: int
    load_w: np.ndarray
    solar_w: np.ndarray
    ev_w: np.ndarray
    import_price: np.ndarray
    export_price: np.ndarray
    timezone: str = "UTC"
    windows: tuple[Window, ...] = ()
    car_max_w: float = 0.0
    reserve_percent: float = 20.0

    def __post_init__(self) -> None:
        n = len(self.t_ms)
        object.__setattr__(self, "t_ms", np.asarray(self.t_ms, dtype=np.int64))
        for name in ("load_w", "solar_w", "ev_w", "import_price", "export_price"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.shape != (n,):
                raise ValueError(f"period.{name}: expected {n} values, got shape {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"period.{name}: {int((~np.isfinite(a)).sum())} values are not numbers")
            object.__setattr__(self, name, a)
        if (self.load_w < 0).any() or (self.solar_w < 0).any() or (self.ev_w < 0).any():
            raise ValueError("period: load, solar and the car's power must be >= 0")
        if self.step_ms <= 0:
            raise ValueError(f"period.step_ms: must be > 0, got {self.step_ms}")
        if n > 1 and (np.diff(self.t_ms) != self.step_ms).any():
            raise ValueError("period.t_ms: steps must follow each other by step_ms")
        if not 0 <= self.reserve_percent <= 100:
            raise ValueError(f"period.reserve_percent: must be in [0, 100], got {self.reserve_percent}")

    def __len__(self) -> int:
        return len(self.t_ms)

    @property
    def hours(self) -> float:
        """One step's length. [h]"""
        return self.step_ms / 3_600_000


def car_windows(ev_w: np.ndarray, step_ms: int, *, extend_steps: int = 0, merge_gap_steps: int = 0,
                plugged: np.ndarray | None = None) -> tuple[Window, ...]:
    """The car's plug-in windows (the module's docstring says how they are found).

    Parameters
    ----------
    ev_w : numpy.ndarray
        The car's charging per step, as it happened. [W]
    step_ms : int
        Step length. [ms]
    extend_steps : int
        How many steps the car stays plugged after a run of charging ends (capped by the next run). [step]
    merge_gap_steps : int
        Runs of charging at most this many idle steps apart are one window. [step]
    plugged : numpy.ndarray of bool or None
        The plug-in state per step where the data has it; its runs are then the windows (charging outside
        them, which the data should not have, is a window of its own run).

    Returns
    -------
    tuple of Window
    """
    ev = np.asarray(ev_w, dtype=np.float64)
    n = len(ev)
    hours = step_ms / 3_600_000
    charging = ev > 0
    if plugged is not None:
        mask = np.asarray(plugged, dtype=bool) | charging
        runs = _runs(mask)
    else:
        runs = _runs(charging)
        merged: list[tuple[int, int]] = []
        for a, b in runs:
            if merged and a - merged[-1][1] <= merge_gap_steps:
                merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        runs = [(a, min(b + extend_steps, merged[k + 1][0] if k + 1 < len(merged) else n))
                for k, (a, b) in enumerate(merged)]
    return tuple(Window(a, b, float(ev[a:b].sum() * hours)) for a, b in runs if ev[a:b].sum() > 0)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The runs of True in ``mask`` as ``(start, end)`` with ``end`` excluded."""
    m = np.concatenate(([False], np.asarray(mask, dtype=bool), [False])).astype(np.int8)
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


# ----------------------------------------------------------------------------- physics and the local loop


def battery_step(spec: BatterySpec, soc_wh: float, want_w: float, hours: float,
                 floor_wh: float) -> tuple[float, float]:
    """What the battery gives when asked for ``want_w`` for one step, and its energy at the step's end.

    Parameters
    ----------
    spec : BatterySpec
    soc_wh : float
        Stored energy at the step's start. [Wh]
    want_w : float
        The power asked for: + discharge, - charge. [W]
    hours : float
        The step's length. [h]
    floor_wh : float
        The least stored energy a discharge may leave (the reserve); a battery below it may charge but not
        discharge. [Wh]

    Returns
    -------
    battery_w : float
        + discharge, - charge, within the power limits and the room above the floor and below the capacity. [W]
    soc_wh : float
        Stored energy at the step's end. [Wh]
    """
    if want_w > 0:
        room = max(soc_wh - floor_wh, 0.0)
        w = min(want_w, spec.max_discharge_w, room * spec.discharge_efficiency / hours)
        return w, soc_wh - w * hours / spec.discharge_efficiency
    if want_w < 0:
        room = max(spec.capacity_wh - soc_wh, 0.0)
        c = min(-want_w, spec.max_charge_w, room / (spec.charge_efficiency * hours))
        return -c, min(soc_wh + c * hours * spec.charge_efficiency, spec.capacity_wh)
    return 0.0, soc_wh


@dataclass(frozen=True)
class Command:
    """What a policy tells the devices for one step.

    Attributes
    ----------
    mode : Mode
    level_percent : float or None
        ``charge``: up to this level; ``export``: down to it; ``self-powered``: discharge no lower than it. None:
        100 % (charge), the reserve (export, self-powered). [%]
    battery_w : float or None
        A raw set-point (+ discharge, - charge) instead of the mode's local loop; only ``perfect`` gives one. [W]
    car_w : float or None
        The car's charging this step; None: as it happened. [W]
    curtail_w : float or None
        Solar to curtail this step (``perfect`` carries out the plan's; capped at the solar) [W]; None: none.
    no_export : bool
        Curtail the solar the home, the car and the battery cannot take rather than export it (``mpc``, where the
        plan curtails: the export price is negative).
    """

    mode: Mode = Mode.SELF_POWERED
    level_percent: float | None = None
    battery_w: float | None = None
    car_w: float | None = None
    curtail_w: float | None = None
    no_export: bool = False


def follow(spec: BatterySpec, command: Command, net_w: float, soc_wh: float, hours: float,
           floor_wh: float) -> float:
    """The battery power the local loop asks for in one step, from the command and the real net load.

    Parameters
    ----------
    spec : BatterySpec
    command : Command
    net_w : float
        The home's real net load: load + car - solar (+ the home needs power, - the sun has a surplus). [W]
    soc_wh : float
        Stored energy at the step's start. [Wh]
    hours : float
        The step's length. [h]
    floor_wh : float
        The reserve. [Wh]

    Returns
    -------
    float
        The power asked of the battery (+ discharge, - charge) before :func:`battery_step`'s limits. [W]
    """
    if command.battery_w is not None:
        return command.battery_w
    cap = spec.capacity_wh
    level_wh = None if command.level_percent is None else command.level_percent / 100 * cap

    def self_powered(low_wh: float) -> float:
        if net_w <= 0:
            return net_w  # the surplus charges
        return min(net_w, max(soc_wh - low_wh, 0.0) * spec.discharge_efficiency / hours)

    mode = command.mode
    if mode is Mode.CHARGE:
        top = cap if level_wh is None else min(level_wh, cap)
        if soc_wh < top - 1e-9:
            room_w = (top - soc_wh) / (spec.charge_efficiency * hours)
            if spec.grid_charging:
                return -min(spec.max_charge_w, room_w)  # the sun's surplus first, the grid for the rest
            return -min(max(-net_w, 0.0), room_w)
        return self_powered(max(top, floor_wh))
    if mode is Mode.HOLD:
        return self_powered(max(soc_wh if level_wh is None else level_wh, floor_wh))
    if mode is Mode.EXPORT and spec.export_from_battery:
        low = floor_wh if level_wh is None else max(level_wh, floor_wh)
        if soc_wh > low + 1e-9:
            return min(spec.max_discharge_w, (soc_wh - low) * spec.discharge_efficiency / hours)
        return self_powered(floor_wh)
    return self_powered(floor_wh if level_wh is None else max(level_wh, floor_wh))


# ----------------------------------------------------------------------------- policies


@dataclass
class Policy:
    """A policy: its name and ``decide(i, soc_wh)``, the command for step ``i`` given the stored energy then
    [Wh]; ``decide`` may read the period's data before step ``i`` only (and the prices, known in advance).

    Attributes
    ----------
    name : str
    decide : callable
    after : callable or None
        Told ``(i, car_w)``, what the car took in step ``i`` once the local loop has set it. [W]
    solve_ms : list of float
        The solver's time of each plan made. [ms]
    relaxed : list of str
        What the plans relaxed.
    exact : bool
        False where ``perfect`` could not solve the period as one problem (see :func:`perfect`).
    """

    name: str
    decide: Callable[[int, float], Command]
    after: Callable[[int, float], None] | None = None
    solve_ms: list[float] = field(default_factory=list)
    relaxed: list[str] = field(default_factory=list)
    exact: bool = True

    def __call__(self, i: int, soc_wh: float) -> Command:
        return self.decide(i, soc_wh)


def _delivered_counter(period: Period) -> tuple[np.ndarray, Callable[[int, float], None]]:
    """Per window, the energy the car has taken so far [Wh], and the hook that counts it."""
    delivered = np.zeros(len(period.windows))
    window_of = _window_of(period)

    def count(i: int, car_w: float) -> None:
        if window_of[i] >= 0:
            delivered[window_of[i]] += car_w * period.hours

    return delivered, count


def _window_of(period: Period) -> np.ndarray:
    """Each step's window's index, -1 outside the windows."""
    window_of = np.full(len(period), -1)
    for k, w in enumerate(period.windows):
        window_of[w.start:w.end] = k
    return window_of


def self_consumption() -> Policy:
    """Tesla's Self-Powered default: the sun's surplus charges, deficits discharge down to the reserve; the car
    charges as it happened."""
    return Policy("self-consumption", lambda i, soc_wh: Command(Mode.SELF_POWERED))


def no_battery() -> Policy:
    """The home without its battery (simulate it with a zero-capacity :class:`BatterySpec`): the baseline of the
    share of the saving."""
    return Policy("no-battery", lambda i, soc_wh: Command(Mode.HOLD))


def time_based(period: Period, spec: BatterySpec, *, grid_charge: bool = False) -> Policy:
    """Tesla's Time-Based Control, simply: discharge (self-powered) only in the day's peak steps, hold otherwise
    (the sun's surplus still charges), and with ``grid_charge`` charge from the grid in the day's cheapest steps
    up to the reserve plus what the last peak drew from the battery's side (the net load of the last peak that is
    wholly past, over the discharge efficiency), capped at 100 %.

    A local day's peak steps are those priced above the midpoint of its cheapest and dearest import price, its
    cheapest those at its cheapest price; a day with one price has no peak and no cheap steps and is run
    self-powered throughout (there is nothing to shift). The car charges as it happened.

    Parameters
    ----------
    period : Period
        Its prices (known in advance) and, for ``grid_charge``, its past load.
    spec : BatterySpec
    grid_charge : bool
        Charge from the grid in the cheapest steps (where ``spec.grid_charging`` allows it).
    """
    peak, cheap = peak_and_cheap(period.import_price, period.t_ms, period.timezone)
    flat = ~peak & ~cheap
    net = period.load_w + period.ev_w - period.solar_w
    starts = np.flatnonzero(np.diff(np.concatenate(([0], peak.astype(np.int8)))) == 1)
    ends = np.flatnonzero(np.diff(np.concatenate((peak.astype(np.int8), [0]))) == -1) + 1  # exclusive
    floor_wh = period.reserve_percent / 100 * spec.capacity_wh

    def level_for(i: int) -> float:
        done = np.flatnonzero(ends <= i)  # peaks wholly before step i: what the policy may know
        if not len(done):
            return 100.0
        a, b = int(starts[done[-1]]), int(ends[done[-1]])
        deficit_wh = float(np.clip(net[a:b], 0.0, None).sum() * period.hours)
        return min(100.0, (floor_wh + deficit_wh / spec.discharge_efficiency) / spec.capacity_wh * 100)

    def decide(i: int, soc_wh: float) -> Command:
        if peak[i] or flat[i]:
            return Command(Mode.SELF_POWERED)
        if cheap[i] and grid_charge and spec.grid_charging and spec.capacity_wh > 0:
            level = level_for(i)
            if soc_wh < level / 100 * spec.capacity_wh - 1e-6:
                return Command(Mode.CHARGE, level)
        return Command(Mode.HOLD)

    return Policy("time-based" + ("+grid" if grid_charge else ""), decide)


def peak_and_cheap(import_price: np.ndarray, t_ms: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Each step's place in its local day's prices: peak (above the midpoint of the day's cheapest and dearest
    import price) and cheap (at the day's cheapest); both False on a day with one price.

    Parameters
    ----------
    import_price : numpy.ndarray
        Per step. [currency/kWh]
    t_ms : numpy.ndarray
        Step starts, UTC epoch ms. [ms]
    timezone : str
        The site's IANA zone.

    Returns
    -------
    peak, cheap : numpy.ndarray of bool
    """
    price = np.asarray(import_price, dtype=np.float64)
    _, _, _, day = local_calendar(np.asarray(t_ms, dtype=np.int64), timezone)
    _, inverse = np.unique(day, return_inverse=True)
    lo = np.full(inverse.max() + 1 if len(inverse) else 0, np.inf)
    hi = np.full_like(lo, -np.inf)
    np.minimum.at(lo, inverse, price)
    np.maximum.at(hi, inverse, price)
    low, high = lo[inverse], hi[inverse]
    spread = high - low > 1e-9
    return spread & (price > (low + high) / 2), spread & (price <= low + 1e-9)


#: ``forecast(history_load_w, history_solar_w, t_ms_history, t_ms_horizon) -> (load_w, solar_w)``: the expected
#: household load (the car left out) and solar over the horizon's steps, from the data before it only. [W]
Forecast = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

#: ``solve(problem) -> plan``: the optimiser (:func:`homegrid.planner.optimise.plan`).
Solve = Callable[[Problem], Plan]


def persistence_forecast(load_w: np.ndarray, solar_w: np.ndarray, t_hist: np.ndarray,
                         t_ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The simplest honest forecast, as :data:`Forecast`: each step of the horizon as the same time a day earlier
    (two, three ... days earlier for a horizon beyond a day; :func:`homegrid.forecast.load.persistence_forecast`,
    emhass's ``naive``); a step with no such reading takes the history's mean.

    Parameters
    ----------
    load_w, solar_w : numpy.ndarray
        The history, one value per step before the horizon. [W]
    t_hist, t_ahead : numpy.ndarray
        The history's and the horizon's step starts, UTC epoch ms, on one grid. [ms]

    Returns
    -------
    load_w, solar_w : numpy.ndarray
        One value per step of the horizon. [W]
    """
    out = []
    for hist in (load_w, solar_w):
        ahead = persistence(t_hist, hist, t_ahead)
        known = np.asarray(hist, dtype=np.float64)
        known = known[np.isfinite(known)]
        out.append(np.where(np.isnan(ahead), float(np.mean(known)) if len(known) else 0.0, ahead))
    return out[0], out[1]


def perfect_forecast(period: Period) -> Forecast:
    """A diagnostic :data:`Forecast`, not a policy's: the period's real load and solar over each horizon (mpc
    with it measures what the execution and the rolling horizon lose, the forecasts' errors apart).

    Parameters
    ----------
    period : Period
        The period replayed; the horizons asked for must be its steps.
    """

    def forecast(load_w: np.ndarray, solar_w: np.ndarray, t_hist: np.ndarray,
                 t_ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = (np.asarray(t_ahead, dtype=np.int64) - int(period.t_ms[0])) // period.step_ms
        return period.load_w[at].copy(), period.solar_w[at].copy()

    return forecast


def _car_need(period: Period, window: Window, first: int, last: int, delivered_wh: float) -> CarNeed:
    """The car's need over steps ``first`` to ``last`` (excluded) while plugged in ``window``."""
    n = last - first
    plugged = np.zeros(n, dtype=bool)
    plugged[max(window.start - first, 0):max(min(window.end, last) - first, 0)] = True
    return CarNeed(plugged=plugged, max_w=period.car_max_w, energy_wh=max(window.energy_wh - delivered_wh, 0.0),
                   deadline_step=min(window.end, last) - first)


def fair_end_value(period: Period, spec: BatterySpec) -> float:
    """What a kWh stored at the period's end is worth: :func:`~homegrid.planner.problem.stored_energy_value` of
    the period's import prices, as the optimiser values a horizon's end. [currency/kWh]"""
    return stored_energy_value(period.import_price, spec)


def perfect(period: Period, spec: BatterySpec, solve: Solve, *, soc_percent: float | None = None,
            horizon_steps: int | None = None) -> Policy:
    """The optimum with perfect knowledge: the optimiser over the period's real load, solar and car, replayed
    as set-points (right here, as the load is the one planned for). The end is valued at :func:`fair_end_value`.

    With at most one plug-in window of the car, one problem covers the whole period: a true optimum.
    :class:`~homegrid.planner.problem.Problem` has room for one car need, so with several windows (or a
    ``horizon_steps`` given) the period is solved in a rolling way with perfect knowledge: problems of
    ``horizon_steps`` (default two days) each carried out for their first half or until the next window starts,
    the car's need being the first window not yet over and later windows' charging as it happened (a fixed load
    beyond what is carried out): near the optimum, no longer provably it (:attr:`Policy.exact` False).

    Parameters
    ----------
    period : Period
    spec : BatterySpec
    solve : callable
        The optimiser.
    soc_percent : float or None
        The battery's level at the start; None: the reserve. [%]
    horizon_steps : int or None
        Force the rolling solve with this horizon. [step]
    """
    n = len(period)
    start = period.reserve_percent if soc_percent is None else soc_percent
    end_value = fair_end_value(period, spec)
    policy = Policy("perfect", lambda i, soc_wh: Command())
    if horizon_steps is None and len(period.windows) <= 1:
        car = _car_need(period, period.windows[0], 0, n, 0.0) if period.windows else None
        problem = Problem(period.t_ms, period.step_ms, period.load_w, period.solar_w, period.import_price,
                          period.export_price, spec, start, period.reserve_percent, car, end_value_per_kwh=end_value)
        plan = solve(problem)
        policy.solve_ms.append(plan.solve_ms)
        policy.relaxed.extend(plan.relaxed)
        modes = plan.modes or [Mode.SELF_POWERED] * n
        cut = _curtailed(plan, n)
        policy.decide = lambda i, soc_wh: Command(modes[i], battery_w=float(plan.battery_w[i]),
                                                  car_w=float(plan.car_w[i]), curtail_w=float(cut[i]))
        return policy
    horizon = horizon_steps or max(round(2 * 86_400_000 / period.step_ms), 2)
    commit = max(horizon // 2, 1)
    battery_all, car_all, cut_all = np.zeros(n), np.zeros(n), np.zeros(n)
    modes_all = [Mode.SELF_POWERED] * n
    delivered, policy.after = _delivered_counter(period)
    policy.exact = False
    next_plan = [0]

    def decide(i: int, soc_wh: float) -> Command:
        if i >= next_plan[0]:
            last = min(i + horizon, n)
            active = next((k for k, w in enumerate(period.windows) if w.end > i), None)
            ev_fixed = period.ev_w[i:last].copy()
            car = None
            if active is not None and period.windows[active].start < last:
                w = period.windows[active]
                car = _car_need(period, w, i, last, float(delivered[active]))
                ev_fixed[max(w.start - i, 0):max(min(w.end, last) - i, 0)] = 0.0
            problem = Problem(period.t_ms[i:last], period.step_ms, period.load_w[i:last] + ev_fixed,
                              period.solar_w[i:last], period.import_price[i:last], period.export_price[i:last],
                              spec, _percent(soc_wh, spec), period.reserve_percent, car, end_value_per_kwh=end_value)
            plan = solve(problem)
            policy.solve_ms.append(plan.solve_ms)
            policy.relaxed.extend(plan.relaxed)
            # carried out until the next window starts at most: each window is the plan's car need from its start
            later = [w.start for w in period.windows if w.start > i]
            m = max(min(commit, last - i, (later[0] - i) if later else n), 1)
            battery_all[i:i + m] = plan.battery_w[:m]
            car_all[i:i + m] = plan.car_w[:m] + ev_fixed[:m]
            cut_all[i:i + m] = _curtailed(plan, last - i)[:m]
            if plan.modes:
                modes_all[i:i + m] = plan.modes[:m]
            next_plan[0] = i + m
        return Command(modes_all[i], battery_w=float(battery_all[i]), car_w=float(car_all[i]),
                       curtail_w=float(cut_all[i]))

    policy.decide = decide
    return policy


def _curtailed(plan: Plan, n: int) -> np.ndarray:
    """The plan's solar curtailment per step [W]; zeros where the plan has none."""
    cut = np.asarray(plan.curtailed_w, dtype=np.float64)
    return cut if cut.shape == (n,) else np.zeros(n)


def _percent(soc_wh: float, spec: BatterySpec) -> float:
    """Stored energy as a state of charge. [%]"""
    return min(max(soc_wh / spec.capacity_wh * 100, 0.0), 100.0) if spec.capacity_wh > 0 else 0.0


def mpc(period: Period, spec: BatterySpec, solve: Solve, forecast: Forecast = persistence_forecast, *,
        horizon_steps: int | None = None, every_steps: int = 1, keep_plan_level: bool = False) -> Policy:
    """homegrid's planner as it runs live: every ``every_steps`` steps, forecasts of the load and the solar
    from the data before the step only, a plan over ``horizon_steps`` (default a day and a half; the horizon's
    end valued by the optimiser's own fair price), and the plan's step carried out as the executor's command
    (:func:`homegrid.planner.execute.battery_command`: its mode, a charge's level at the end of its run, a hold's
    level when it began) through the local loop (:func:`follow`), which follows the real load. The car's need is
    known once it is plugged in (its window's energy and end, as the owner would set them); windows ahead are not
    known, and the car's charging is no part of the load forecast.

    Parameters
    ----------
    period : Period
    spec : BatterySpec
    solve : callable
        The optimiser.
    forecast : callable
        See :data:`Forecast`.
    horizon_steps : int or None
        The plan's length. [step]
    every_steps : int
        Re-plan this often; between re-plans the plan's later steps are carried out the same way. [step]
    keep_plan_level : bool
        In a ``self-powered`` step, discharge no lower than the plan's level at the step's end (a load above the
        forecast is then imported, the energy kept for the steps the plan meant it for); False: down to the
        reserve, as the battery's own self-powered mode does. Measured on 20 days of the emhass home (from
        2024-04-28) at 30 min with persistence forecasts and tests/backtest_peer.py's LP as the optimiser: False
        captured 97 % (wide rate) and 90 % (HP/HC) of the perfect saving, True 60 % and 55 %: the plan's levels
        are only as good as the forecast.
    """
    n = len(period)
    horizon = horizon_steps or max(round(1.5 * 86_400_000 / period.step_ms), 2)
    policy = Policy("mpc", lambda i, soc_wh: Command())
    delivered, policy.after = _delivered_counter(period)
    window_of = _window_of(period)
    held: list[tuple[int, Problem, Plan]] = []
    last_sent: list[Command] = []

    def decide(i: int, soc_wh: float) -> Command:
        if not held or i - held[-1][0] >= every_steps or i - held[-1][0] >= len(held[-1][2].battery_w):
            last = min(i + horizon, n)
            load_f, solar_f = forecast(period.load_w[:i], period.solar_w[:i], period.t_ms[:i], period.t_ms[i:last])
            k = int(window_of[i])
            car = _car_need(period, period.windows[k], i, last, float(delivered[k])) if k >= 0 else None
            problem = Problem(period.t_ms[i:last], period.step_ms, np.clip(load_f, 0.0, None),
                              np.clip(solar_f, 0.0, None), period.import_price[i:last], period.export_price[i:last],
                              spec, _percent(soc_wh, spec), period.reserve_percent, car)
            plan = solve(problem)
            policy.solve_ms.append(plan.solve_ms)
            policy.relaxed.extend(plan.relaxed)
            held[:] = [(i, problem, plan)]
        at, problem, plan = held[-1]
        j = i - at
        car_w = float(plan.car_w[j]) if window_of[i] >= 0 else 0.0
        if not plan.modes:
            plan.modes = [Mode.SELF_POWERED] * len(plan.battery_w)
        was = last_sent[-1] if last_sent else None
        holding = was.level_percent if was is not None and was.mode is Mode.HOLD else _percent(soc_wh, spec)
        sent, _ = battery_command(problem, plan, j, hold_percent=holding)
        mode = Mode(sent.mode)
        level = sent.target_percent
        if mode is Mode.SELF_POWERED and keep_plan_level:
            level = float(plan.soc_percent[j])
        command = Command(mode, level, car_w=car_w, no_export=bool(_curtailed(plan, len(plan.battery_w))[j] > 0))
        last_sent[:] = [command]
        return command

    policy.decide = decide
    return policy


# ----------------------------------------------------------------------------- the replay


@dataclass
class Outcome:
    """A policy's replay, one value per step.

    Attributes
    ----------
    policy : str
    battery_w : numpy.ndarray
        + discharge, - charge. [W]
    car_w : numpy.ndarray
        The car's charging. [W]
    grid_w : numpy.ndarray
        + import, - export. [W]
    soc_wh : numpy.ndarray
        Stored energy at each step's end. [Wh]
    soc_start_wh : float
        Stored energy at the start. [Wh]
    modes : list of Mode
        The mode of each step's command.
    decide_ms : numpy.ndarray
        Each step's decision time, the solver's included. [ms]
    solve_ms : list of float
        The solver's own time of each plan. [ms]
    relaxed : list of str
        What the plans relaxed.
    car_met : list of bool
        Per plug-in window: the energy due was delivered by its end (within 1 Wh).
    car_short_wh : float
        Energy the car did not get by its windows' ends. [Wh]
    curtailed_w : numpy.ndarray
        Solar curtailed. [W]
    """

    policy: str
    hours: float
    battery_w: np.ndarray
    car_w: np.ndarray
    grid_w: np.ndarray
    soc_wh: np.ndarray
    soc_start_wh: float
    modes: list[Mode]
    decide_ms: np.ndarray
    solve_ms: list[float]
    relaxed: list[str]
    car_met: list[bool]
    car_short_wh: float
    curtailed_w: np.ndarray

    @property
    def import_wh(self) -> np.ndarray:
        """Grid import per step. [Wh]"""
        imported: np.ndarray = np.clip(self.grid_w, 0.0, None) * self.hours
        return imported

    @property
    def export_wh(self) -> np.ndarray:
        """Grid export per step. [Wh]"""
        exported: np.ndarray = np.clip(-self.grid_w, 0.0, None) * self.hours
        return exported

    def cycles(self, spec: BatterySpec) -> float:
        """Full equivalent cycles: the energy the battery delivered over its capacity."""
        if spec.capacity_wh <= 0:
            return 0.0
        return float(np.clip(self.battery_w, 0.0, None).sum() * self.hours / spec.capacity_wh)


def simulate(period: Period, spec: BatterySpec, policy: Policy, *, soc_percent: float | None = None,
             reschedule_car: bool | None = None) -> Outcome:
    """Replay ``period`` under ``policy`` (the module's docstring says how).

    Parameters
    ----------
    period : Period
    spec : BatterySpec
    policy : Policy
    soc_percent : float or None
        The battery's level at the start; None: the reserve. [%]
    reschedule_car : bool or None
        Whether the policy's car commands move the car within its windows; None: when the command carries a
        car power.

    Returns
    -------
    Outcome
    """
    n, h = len(period), period.hours
    cap = spec.capacity_wh
    floor_wh = period.reserve_percent / 100 * cap
    soc = (period.reserve_percent if soc_percent is None else soc_percent) / 100 * cap
    soc_start = soc
    battery = np.zeros(n)
    car = np.zeros(n)
    soc_end = np.zeros(n)
    curtailed = np.zeros(n)
    decide_ms = np.zeros(n)
    modes: list[Mode] = []
    window_of = _window_of(period)
    remaining = np.array([w.energy_wh for w in period.windows], dtype=np.float64)
    for i in range(n):
        t0 = time.perf_counter()
        command = policy(i, soc)
        decide_ms[i] = (time.perf_counter() - t0) * 1000
        modes.append(command.mode)
        k = int(window_of[i])
        moves = command.car_w is not None if reschedule_car is None else reschedule_car
        if not moves:
            car_w = float(period.ev_w[i])
        elif k < 0:
            car_w = 0.0
        else:
            w = period.windows[k]
            left_after = (w.end - i - 1) * period.car_max_w * h  # what the charger can still give after this step
            must = max(remaining[k] - left_after, 0.0) / h
            asked = 0.0 if command.car_w is None else command.car_w
            car_w = min(max(asked, must), period.car_max_w, remaining[k] / h)
            car_w = max(car_w, 0.0)
        if k >= 0:
            remaining[k] = max(remaining[k] - car_w * h, 0.0)
        car[i] = car_w
        if policy.after is not None:
            policy.after(i, car_w)
        solar = float(period.solar_w[i])
        if command.curtail_w is not None:
            curtailed[i] = min(max(command.curtail_w, 0.0), solar)
        net = float(period.load_w[i] + car_w) - (solar - curtailed[i])
        want = follow(spec, command, net, soc, h, floor_wh)
        battery[i], soc = battery_step(spec, soc, want, h, floor_wh)
        if command.no_export and net - battery[i] < 0:
            curtailed[i] += min(battery[i] - net, solar - curtailed[i])
        soc_end[i] = soc
    grid = period.load_w + car - (period.solar_w - curtailed) - battery
    grid[np.abs(grid) < _EPS_W] = 0.0
    met = [bool(r <= 1.0) for r in remaining]
    return Outcome(policy.name, h, battery, car, grid, soc_end, soc_start, modes, decide_ms, list(policy.solve_ms),
                   list(policy.relaxed), met, float(np.clip(remaining, 0.0, None).sum()), curtailed)


def percentile(values: list[float] | np.ndarray, q: float) -> float:
    """The ``q``-th percentile of ``values`` (0 when there are none)."""
    a = np.asarray(values, dtype=np.float64)
    return float(np.percentile(a, q)) if len(a) else 0.0

