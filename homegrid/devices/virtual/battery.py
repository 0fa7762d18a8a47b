"""The virtual home's battery: a Powerwall-like store in self-powered mode.

``battery_kwh`` usable, ``battery_kw`` continuous either way, and the round-trip
efficiency split evenly: ``sqrt(battery_round_trip)`` on the way in and on the
way out. Battery power is measured at its AC terminals (+ discharge, - charge);
the stored energy changes by ``charge * eta`` or ``discharge / eta``.

While the grid is up the battery covers the site's deficit (home, car included,
minus solar) and absorbs its surplus, but never discharges below the backup
reserve. Below the reserve (after an outage drew it down, or when the reserve
was raised: storm mode, backup-only mode) it refills up to the reserve from the
grid at ``grid_charge_w``, faster where a solar surplus allows, as a Powerwall
"prioritizes charging above your reserve percentage" (Tesla's Backup Reserve
page; about 1.8 kW per Powerwall from the grid). While the grid is down the
reserve is what carries the home, down to 0 %:

- surplus solar charges the battery; what it cannot take is curtailed;
- a deficit beyond the battery's rating sheds load (the home gets solar plus
  the rating); when the battery runs empty the home goes dark and stays dark
  until solar has brought the battery back to :data:`RESTART_PERCENT`, or the
  grid returns.

These are scalar functions of one step: the dispatch is sequential, and plain
floats keep a year of 1-minute steps fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CHARGE", "EXPORT", "HOLD", "MODE_CODES", "RESTART_PERCENT", "SELF_POWERED", "BatterySpec", "follow_mode",
           "islanded", "self_powered"]

RESTART_PERCENT = 5.0
#: The planner's modes (:data:`homegrid.devices.control.COMMAND_MODES`) as the step function's codes.
SELF_POWERED, CHARGE, HOLD, EXPORT = 0, 1, 2, 3
MODE_CODES: dict[str, int] = {"self-powered": SELF_POWERED, "charge": CHARGE, "hold": HOLD, "export": EXPORT}


@dataclass(frozen=True)
class BatterySpec:
    """Battery parameters in the units the step functions use."""

    capacity_wh: float  # usable [Wh]
    max_w: float  # continuous, either way [W]
    eta: float  # one-way efficiency [-]
    reserve_wh: float  # backup reserve [Wh]
    grid_charge_w: float = 0.0  # from the grid while below the reserve [W]

    @classmethod
    def from_config(cls, kwh: float, kw: float, round_trip: float, reserve_percent: float,
                    grid_charge_kw: float = 0.0) -> BatterySpec:
        cap = kwh * 1000.0
        return cls(cap, kw * 1000.0, math.sqrt(round_trip), cap * reserve_percent / 100.0, grid_charge_kw * 1000.0)

    @property
    def restart_wh(self) -> float:
        """Stored energy at which a battery that ran empty in an outage powers the home again. [Wh]"""
        return self.capacity_wh * RESTART_PERCENT / 100.0


def self_powered(
    net_w: float, energy_wh: float, dt_s: float, capacity_wh: float, max_w: float, eta: float, reserve_wh: float,
    grid_charge_w: float = 0.0,
) -> tuple[float, float]:
    """One grid-connected step in self-powered mode.

    Parameters
    ----------
    net_w : float
        Site deficit, home (car included) minus solar; negative for a surplus. [W]
    energy_wh : float
        Stored energy at the step's start. [Wh]
    dt_s : float
        Step length, > 0. [s]
    capacity_wh, max_w, eta, reserve_wh : float
        See :class:`BatterySpec`. [Wh], [W], [-], [Wh]
    grid_charge_w : float, optional
        Charging from the grid while below the reserve, up to it. [W]

    Returns
    -------
    battery_w : float
        + discharge, - charge. [W]
    energy_wh : float
        Stored energy at the step's end. [Wh]
    """
    if energy_wh < reserve_wh and grid_charge_w > 0.0:
        surplus = -net_w if net_w < 0.0 else 0.0
        c = grid_charge_w if grid_charge_w > surplus else surplus
        if c > max_w:
            c = max_w
        # the grid only refills the reserve; above it, only a solar surplus charges
        top = reserve_wh if surplus < c else capacity_wh
        lim = (top - energy_wh) * 3600.0 / (eta * dt_s)
        if c >= lim:
            return -lim, top
        return -c, energy_wh + c * dt_s * eta / 3600.0
    if net_w > 0.0:
        avail = energy_wh - reserve_wh
        if avail <= 0.0:
            return 0.0, energy_wh
        lim = avail * eta * 3600.0 / dt_s
        b = net_w if net_w < max_w else max_w
        if b >= lim:
            return lim, reserve_wh
        return b, energy_wh - b * dt_s / (3600.0 * eta)
    if net_w < 0.0:
        room = capacity_wh - energy_wh
        if room <= 0.0:
            return 0.0, energy_wh
        lim = room * 3600.0 / (eta * dt_s)
        c = -net_w if -net_w < max_w else max_w
        if c >= lim:
            return -lim, capacity_wh
        return -c, energy_wh + c * dt_s * eta / 3600.0
    return 0.0, energy_wh


def follow_mode(
    mode: int, net_w: float, energy_wh: float, dt_s: float, capacity_wh: float, max_w: float, eta: float,
    reserve_wh: float, target_wh: float, grid_charge_w: float = 0.0,
) -> tuple[float, float]:
    """One grid-connected step in one of the planner's modes, following the real load.

    - :data:`SELF_POWERED`: :func:`self_powered` down to the reserve;
    - :data:`CHARGE`: below ``target_wh``, charge at ``max_w`` (from the sun's surplus first, the grid for the
      rest) up to it; at or above it, hold there (the surplus may still charge, nothing is discharged below it);
    - :data:`HOLD`: no discharge below ``target_wh`` (the level when the hold began) nor the reserve; a surplus
      of sun still charges; the grid never does;
    - :data:`EXPORT`: discharge at ``max_w`` down to ``target_wh`` (at least the reserve) whatever the load (what
      the home does not use goes to the grid); there, self-powered no lower.

    Parameters
    ----------
    mode : int
        :data:`SELF_POWERED`, :data:`CHARGE`, :data:`HOLD` or :data:`EXPORT`.
    net_w, energy_wh, dt_s, capacity_wh, max_w, eta, reserve_wh, grid_charge_w
        As for :func:`self_powered`. [W], [Wh], [s], [Wh], [W], [-], [Wh], [W]
    target_wh : float
        CHARGE: the level to charge to; HOLD: the level to hold; EXPORT: the level to export down to. [Wh]

    Returns
    -------
    battery_w : float
        + discharge, - charge. [W]
    energy_wh : float
        Stored energy at the step's end. [Wh]
    """
    if mode == CHARGE:
        top = min(target_wh, capacity_wh)
        if energy_wh < top:
            lim = (top - energy_wh) * 3600.0 / (eta * dt_s)
            c = max_w if max_w < lim else lim
            return -c, (top if c >= lim else energy_wh + c * dt_s * eta / 3600.0)
        return self_powered(net_w, energy_wh, dt_s, capacity_wh, max_w, eta, max(top, reserve_wh))
    if mode == HOLD:
        return self_powered(net_w, energy_wh, dt_s, capacity_wh, max_w, eta, max(target_wh, reserve_wh))
    if mode == EXPORT:
        low = max(target_wh, reserve_wh)
        avail = energy_wh - low
        if avail > 0.0:
            lim = avail * eta * 3600.0 / dt_s
            b = max_w if max_w < lim else lim
            return b, (low if b >= lim else energy_wh - b * dt_s / (3600.0 * eta))
        return self_powered(net_w, energy_wh, dt_s, capacity_wh, max_w, eta, low, grid_charge_w)
    return self_powered(net_w, energy_wh, dt_s, capacity_wh, max_w, eta, reserve_wh, grid_charge_w)


def islanded(
    load_w: float,
    solar_w: float,
    energy_wh: float,
    dark: bool,
    dt_s: float,
    capacity_wh: float,
    max_w: float,
    eta: float,
    restart_wh: float,
) -> tuple[float, float, float, float, bool]:
    """One step with the grid down: the battery forms the home's grid.

    Parameters
    ----------
    load_w : float
        What the home would draw (the car charger is off in an outage). [W]
    solar_w : float
        What the array could deliver. [W]
    energy_wh : float
        Stored energy at the step's start. [Wh]
    dark : bool
        The battery ran empty earlier in this outage and has not restarted.
    dt_s : float
        Step length, > 0. [s]
    capacity_wh, max_w, eta, restart_wh : float
        See :class:`BatterySpec`. [Wh], [W], [-], [Wh]

    Returns
    -------
    home_w : float
        Load served, ``solar + battery``. [W]
    solar_w : float
        Solar used, after curtailment. [W]
    battery_w : float
        + discharge, - charge. [W]
    energy_wh : float
        Stored energy at the step's end. [Wh]
    dark : bool
        Whether the home is dark at the step's end.
    """
    room = capacity_wh - energy_wh
    charge_lim = room * 3600.0 / (eta * dt_s) if room > 0.0 else 0.0
    if charge_lim > max_w:
        charge_lim = max_w
    if dark:
        c = solar_w if solar_w < charge_lim else charge_lim
        energy_wh = energy_wh + c * dt_s * eta / 3600.0
        return 0.0, c, -c, energy_wh, energy_wh < restart_wh
    net = load_w - solar_w
    if net <= 0.0:
        c = -net if -net < charge_lim else charge_lim
        energy_wh = min(energy_wh + c * dt_s * eta / 3600.0, capacity_wh)
        return load_w, load_w + c, -c, energy_wh, False
    lim = energy_wh * eta * 3600.0 / dt_s if energy_wh > 0.0 else 0.0
    if net <= max_w and net < lim:
        return load_w, solar_w, net, energy_wh - net * dt_s / (3600.0 * eta), False
    if lim > max_w:  # overload: shed what the battery cannot carry
        return solar_w + max_w, solar_w, max_w, energy_wh - max_w * dt_s / (3600.0 * eta), False
    # The battery runs empty during this step: the home is served part of it, then dark.
    return solar_w + lim, solar_w, lim, 0.0, True
