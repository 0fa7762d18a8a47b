"""Backup time: how long the stored energy would carry the home if the grid went down now.

The model steps through an expected load and an expected solar output (one
value per step) from a stored energy:

- while solar covers the load, the surplus charges the battery (times the
  one-way ``efficiency``), up to ``capacity_wh`` and ``max_charge_w``; the rest
  is curtailed, as a gateway does when islanded;
- while it does not, the battery supplies the deficit, at most
  ``max_discharge_w`` (load beyond the rating is shed, as the virtual home
  does; a real gateway may trip instead), drawing ``deficit / efficiency``
  from storage;
- the home is carried until the energy above ``floor_wh`` is used up (within a
  step, at the moment it runs out, the load and solar being constant over the
  step). A battery already at its floor carries nothing, even in sunshine: a
  Powerwall that islands below its floor shuts down and waits for solar.

Durations are capped at ``horizon_s`` (a week by default): a result equal to
the horizon means "at least that long", shown as "more than 7 days".

:func:`backup_estimate` gives a range from three load and solar assumptions,
and :func:`vendor_figure_s` the plain "energy remaining / current load" figure
for comparison with the vendor's app. Which energy counts and which load is
expected during an outage (the car, the backup reserve, the hidden bottom of a
Powerwall) is decided by the caller; :mod:`homegrid.hub.backup` documents the
choices it makes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "BLEND_S",
    "HORIZON_S",
    "BackupEstimate",
    "backup_duration",
    "backup_estimate",
    "format_duration",
    "vendor_figure_s",
]

#: Durations are computed up to a week. [s]
HORIZON_S = 7 * 86_400.0
#: How long the recent load is blended into the expected load by default. [s]
BLEND_S = 3 * 3600.0
_S_PER_H = 3600.0


def _series(values: ArrayLike, n: int, name: str) -> list[float]:
    """Per-step values as a list of n floats, repeated cyclically when shorter; checked finite and >= 0."""
    a = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d array or a number")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite (fill gaps before estimating)")
    if np.any(a < 0):
        raise ValueError(f"{name} must be >= 0")
    return np.resize(a, n).tolist()


def _limit(value: float | None, name: str) -> float:
    if value is None:
        return math.inf
    if not value > 0:
        raise ValueError(f"{name} must be > 0 or None, got {value!r}")
    return float(value)


def backup_duration(
    stored_wh: float,
    load_w: ArrayLike,
    solar_w: ArrayLike,
    step_s: float,
    *,
    floor_wh: float = 0.0,
    capacity_wh: float | None = None,
    max_discharge_w: float | None = None,
    max_charge_w: float | None = None,
    efficiency: float = 1.0,
    horizon_s: float = HORIZON_S,
) -> float:
    """How long the stored energy carries the expected load, solar helping [s].

    Parameters
    ----------
    stored_wh : float
        Energy stored now. [Wh]
    load_w : array or float
        Expected load of each step from now, >= 0; a shorter series repeats
        (a day's profile starting now repeats every day). [W]
    solar_w : array or float
        Expected solar output of each step from now, >= 0; repeats likewise. [W]
    step_s : float
        Length of a step, > 0. [s]
    floor_wh : float, optional
        Stored energy at which the battery stops carrying the home. [Wh]
    capacity_wh : float, optional
        Stored energy when full: solar surplus recharges up to it. None: no limit. [Wh]
    max_discharge_w : float, optional
        The battery's continuous rating: load beyond it (after solar) is shed,
        not served. None: no limit. [W]
    max_charge_w : float, optional
        The most the surplus can charge at. None: no limit. [W]
    efficiency : float, optional
        One-way efficiency in (0, 1]: serving ``E`` Wh takes ``E / efficiency``
        from storage, a surplus of ``E`` Wh stores ``E * efficiency``. [-]
    horizon_s : float, optional
        Stop looking after this long. [s]

    Returns
    -------
    float
        Seconds until the energy above ``floor_wh`` is used up, at most
        ``horizon_s`` (equal to it: the home is carried at least that long). [s]
    """
    if not step_s > 0 or not math.isfinite(step_s):
        raise ValueError(f"step_s must be > 0, got {step_s!r}")
    if not horizon_s > 0 or not math.isfinite(horizon_s):
        raise ValueError(f"horizon_s must be > 0, got {horizon_s!r}")
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency must be within (0, 1], got {efficiency!r}")
    if not math.isfinite(stored_wh) or not math.isfinite(floor_wh):
        raise ValueError("stored_wh and floor_wh must be finite")
    cap = math.inf if capacity_wh is None else float(capacity_wh)
    out_max = _limit(max_discharge_w, "max_discharge_w")
    in_max = _limit(max_charge_w, "max_charge_w")
    n = math.ceil(horizon_s / step_s)
    load = _series(load_w, n, "load_w")
    solar = _series(solar_w, n, "solar_w")

    e = float(stored_wh)
    if e <= floor_wh:
        return 0.0
    h = step_s / _S_PER_H  # step length [h]
    for k in range(n):
        net = load[k] - solar[k]
        if net > 0.0:
            need = (net if net < out_max else out_max) * h / efficiency  # drawn from storage this step [Wh]
            avail = e - floor_wh
            if need >= avail:
                return min(k * step_s + step_s * (avail / need), horizon_s)
            e -= need
        elif net < 0.0 and e < cap:
            surplus = -net if -net < in_max else in_max
            e = min(e + surplus * h * efficiency, cap)
    return horizon_s


@dataclass(frozen=True)
class BackupEstimate:
    """A range of backup durations [s]: ``low_s <= central_s <= high_s <= horizon_s``."""

    low_s: float
    central_s: float
    high_s: float
    horizon_s: float

    def as_dict(self) -> dict[str, float]:
        return {"low_s": self.low_s, "central_s": self.central_s, "high_s": self.high_s}


def backup_estimate(
    stored_wh: float,
    step_s: float,
    *,
    typical_load_w: ArrayLike,
    heavy_load_w: ArrayLike,
    light_load_w: ArrayLike,
    typical_solar_w: ArrayLike,
    recent_load_w: float | None = None,
    blend_s: float = BLEND_S,
    floor_wh: float = 0.0,
    capacity_wh: float | None = None,
    max_discharge_w: float | None = None,
    max_charge_w: float | None = None,
    efficiency: float = 1.0,
    horizon_s: float = HORIZON_S,
) -> BackupEstimate:
    """Backup duration under a pessimistic, a central and a light assumption [s].

    All series hold one value per step from now (a shorter series repeats).

    - **central**: the typical load for each time of day, blended with the
      recent load, whose weight falls linearly from 1 now to 0 after
      ``blend_s``; typical solar.
    - **low** (pessimistic): the heavy load (e.g. the 90th percentile for each
      time of day), or the recent load if higher during the first ``blend_s``,
      and never below the central load; no solar.
    - **high**: the light load (e.g. the 10th percentile), never above the
      central load; typical solar.

    Since more load never lengthens and more solar never shortens the
    duration, ``low_s <= central_s <= high_s``.

    Parameters
    ----------
    stored_wh : float
        Energy stored now. [Wh]
    step_s : float
        Length of a step. [s]
    typical_load_w, heavy_load_w, light_load_w : array
        Expected load per step: typical (mean), heavy and light. [W]
    typical_solar_w : array
        Expected solar output per step. [W]
    recent_load_w : float, optional
        The load of the last hour; None: not known (central = typical). [W]
    blend_s : float, optional
        How long the recent load weighs in the central and low loads. [s]
    floor_wh, capacity_wh, max_discharge_w, max_charge_w, efficiency, horizon_s
        As in :func:`backup_duration`. [Wh], [Wh], [W], [W], [-], [s]

    Returns
    -------
    BackupEstimate
    """
    n = math.ceil(horizon_s / step_s)
    typical = np.asarray(_series(typical_load_w, n, "typical_load_w"))
    heavy = np.maximum(np.asarray(_series(heavy_load_w, n, "heavy_load_w")), typical)
    light = np.asarray(_series(light_load_w, n, "light_load_w"))
    central = typical
    if recent_load_w is not None:
        if not (math.isfinite(recent_load_w) and recent_load_w >= 0):
            raise ValueError(f"recent_load_w must be finite and >= 0, got {recent_load_w!r}")
        t = np.arange(n) * step_s
        w = np.clip(1.0 - t / blend_s, 0.0, 1.0) if blend_s > 0 else np.zeros(n)
        central = w * recent_load_w + (1.0 - w) * typical
        heavy = np.where(w > 0, np.maximum(heavy, recent_load_w), heavy)
    heavy = np.maximum(heavy, central)
    light = np.minimum(light, central)

    def duration(load_w: ArrayLike, solar_w: ArrayLike) -> float:
        return backup_duration(stored_wh, load_w, solar_w, step_s, floor_wh=floor_wh, capacity_wh=capacity_wh,
                               max_discharge_w=max_discharge_w, max_charge_w=max_charge_w, efficiency=efficiency,
                               horizon_s=horizon_s)

    return BackupEstimate(
        low_s=duration(heavy, 0.0),
        central_s=duration(central, typical_solar_w),
        high_s=duration(light, typical_solar_w),
        horizon_s=horizon_s,
    )


def vendor_figure_s(stored_wh: float | None, load_w: float | None) -> float | None:
    """The plain backup figure: energy remaining / current load [s].

    This is how pypowerwall estimates the Tesla app's "backup time remaining"
    from a local gateway (``nominalEnergyRemainingWh`` over the ``LOAD`` meter's
    power): the whole stored energy, the hidden bottom of the pack included,
    at the load of this instant, car included, without solar. Tesla does not
    document how its own app computes the figure (its cloud returns
    ``time_remaining_hours`` from ``/energy_sites/{id}/backup_time_remaining``).

    Parameters
    ----------
    stored_wh : float or None
        Energy stored now. [Wh]
    load_w : float or None
        Home load now. [W]

    Returns
    -------
    float or None
        Seconds, or None when either is unknown or the load is not positive. [s]
    """
    if stored_wh is None or load_w is None or not math.isfinite(stored_wh) or not math.isfinite(load_w):
        return None
    if load_w <= 0:
        return None
    return max(0.0, stored_wh) / load_w * _S_PER_H


def format_duration(seconds: float | None, horizon_s: float = HORIZON_S) -> str | None:
    """Hours and minutes, ``"H:MM"`` (hours may pass 24), or ``"more than N days"`` at the horizon.

    Parameters
    ----------
    seconds : float or None
        A duration; None gives None. [s]
    horizon_s : float, optional
        The cap the duration was computed to. [s]
    """
    if seconds is None or not math.isfinite(seconds):
        return None
    if seconds >= horizon_s:
        days = horizon_s / 86_400.0
        if days == int(days):
            return f"more than {int(days)} day{'s' if days != 1 else ''}"
        return f"more than {format_duration(horizon_s, math.inf)}"
    minutes = int(max(0.0, seconds) // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"
