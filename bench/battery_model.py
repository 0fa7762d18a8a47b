"""The one battery model of the planner bench (issue 14): the physics every policy's plan is replayed through.

Plain Python and numpy only, so that both the bench (the project's venv) and the emhass driver
(``bench/emhass/run_emhass.py``, emhass's own venv, another numpy) import the same file.

Signs as homegrid's glossary: battery power + discharge / - charge [W], measured on the AC side; grid
+ import / - export [W]; ``grid = home - solar - battery``. The round trip is split evenly between
charge and discharge (``eta_c = eta_d = sqrt(round_trip)``); the stored energy stays in
``[reserve * capacity, capacity]`` and the power within ``power_w`` both ways.

Execution modes (what a household battery accepts between re-plans; the policy picks one per step):

- ``self``: self-consumption, the battery follows the real load: surplus solar charges it, a deficit
  discharges it down to the reserve (Tesla's Self-Powered, the inverter's default);
- ``hold``: no discharge; surplus solar still charges it;
- ``charge``: charge from the grid (and the sun) up to a target energy, at the power that reaches it
  within the step, at least the solar surplus;
- ``export``: discharge at least the given power (to the grid if the home needs less), at least the deficit;
- ``setpoint``: the given power as it is, whatever the real load does (clipped by the limits only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SELF, HOLD, CHARGE, EXPORT, SETPOINT = "self", "hold", "charge", "export", "setpoint"


@dataclass(frozen=True)
class Battery:
    """A battery: usable window, power limit and efficiencies.

    Parameters
    ----------
    capacity_wh : float
        Nominal energy. [Wh]
    power_w : float
        Charge and discharge limit, AC side. [W]
    reserve_percent : float
        The floor the battery never goes below. [%]
    round_trip_percent : float
        Round-trip efficiency, split evenly between charge and discharge. [%]
    """

    capacity_wh: float = 13_500.0
    power_w: float = 5_000.0
    reserve_percent: float = 20.0
    round_trip_percent: float = 90.0

    @property
    def eta(self) -> float:
        """One-way efficiency (charge or discharge). [1]"""
        return math.sqrt(self.round_trip_percent / 100.0)

    @property
    def e_min(self) -> float:
        """The reserve's energy. [Wh]"""
        return self.capacity_wh * self.reserve_percent / 100.0

    @property
    def e_max(self) -> float:
        """Full. [Wh]"""
        return self.capacity_wh

    def clip(self, e_wh: float, p_w: float, dt_h: float) -> tuple[float, float]:
        """Carry out a requested power for one step within the limits.

        Parameters
        ----------
        e_wh : float
            Stored energy at the step's start. [Wh]
        p_w : float
            Requested power, + discharge / - charge. [W]
        dt_h : float
            The step. [h]

        Returns
        -------
        tuple of (float, float)
            The power carried out [W] and the stored energy at the step's end [Wh].
        """
        eta = self.eta
        if p_w >= 0.0:
            p = min(p_w, self.power_w, max(0.0, (e_wh - self.e_min) * eta / dt_h))
            return p, max(self.e_min, e_wh - p / eta * dt_h)
        p = min(-p_w, self.power_w, max(0.0, (self.e_max - e_wh) / (eta * dt_h)))
        return -p, min(self.e_max, e_wh + p * eta * dt_h)

    def request(self, mode: str, net_w: float, e_wh: float, dt_h: float, value: float = 0.0) -> float:
        """The power a mode asks for in one step, before the limits.

        Parameters
        ----------
        mode : str
            ``self``, ``hold``, ``charge``, ``export`` or ``setpoint``.
        net_w : float
            The real home load less solar in the step (+ deficit, - surplus). [W]
        e_wh : float
            Stored energy at the step's start. [Wh]
        dt_h : float
            The step. [h]
        value : float
            ``charge``: the target energy [Wh]; ``export`` and ``setpoint``: the power [W].

        Returns
        -------
        float
            Requested power, + discharge / - charge. [W]
        """
        if mode == SELF:
            return net_w
        if mode == HOLD:
            return min(net_w, 0.0)
        if mode == CHARGE:
            need = max(0.0, value - e_wh) / (self.eta * dt_h)
            return -max(need, -min(net_w, 0.0))
        if mode == EXPORT:
            return max(value, net_w)
        if mode == SETPOINT:
            return value
        raise ValueError(f"unknown mode {mode!r}")


@dataclass
class Replay:
    """What carrying out a policy did, step by step."""

    battery_w: np.ndarray  # + discharge [W]
    grid_w: np.ndarray  # + import [W]
    energy_wh: np.ndarray  # stored energy at each step's end [Wh]


def replay_modes(battery: Battery, home_w: np.ndarray, solar_w: np.ndarray, dt_h: float,
                 modes: list[str], values: np.ndarray, e0_wh: float) -> Replay:
    """Replay per-step modes through the battery with the real load and solar.

    Parameters
    ----------
    battery : Battery
        The battery.
    home_w, solar_w : numpy.ndarray
        Real home load and solar per step. [W]
    dt_h : float
        The step. [h]
    modes : list of str
        One mode a step.
    values : numpy.ndarray
        Each step's mode value (see :meth:`Battery.request`).
    e0_wh : float
        Stored energy at the start. [Wh]

    Returns
    -------
    Replay
        Battery and grid power and stored energy per step.
    """
    n = len(home_w)
    bat = np.zeros(n)
    energy = np.zeros(n)
    e = e0_wh
    for i in range(n):
        net = float(home_w[i] - solar_w[i])
        p, e = battery.clip(e, battery.request(modes[i], net, e, dt_h, float(values[i])), dt_h)
        bat[i] = p
        energy[i] = e
    return Replay(bat, np.asarray(home_w, dtype=float) - solar_w - bat, energy)


def self_consumption(battery: Battery, home_w: np.ndarray, solar_w: np.ndarray, dt_h: float,
                     e0_wh: float | None = None) -> Replay:
    """Plain self-consumption (Tesla's Self-Powered) over the whole series; starts at the reserve by default."""
    n = len(home_w)
    return replay_modes(battery, home_w, solar_w, dt_h, [SELF] * n, np.zeros(n),
                        battery.e_min if e0_wh is None else e0_wh)


def bill(grid_w: np.ndarray, import_price: np.ndarray, export_price: np.ndarray, dt_h: float) -> float:
    """The bill of a grid series at per-step prices: import cost less export credit. [currency]"""
    g = np.asarray(grid_w, dtype=float)
    return float(np.sum(np.maximum(g, 0.0) * import_price - np.maximum(-g, 0.0) * export_price) * dt_h / 1000.0)


def cycles(battery_w: np.ndarray, battery: Battery, dt_h: float) -> float:
    """Full cycles: energy discharged (AC) over the nominal capacity. [1]"""
    return float(np.sum(np.maximum(battery_w, 0.0)) * dt_h / battery.capacity_wh)
