"""Backup time left: how long the battery would carry the home if the grid went down now.

:func:`backup_report` gathers what :func:`homegrid.energy.backup.backup_estimate`
needs from the store and the live values, and shapes the answer for the API.

Choices, and why
----------------
Energy. In an outage the backup reserve is not a floor: it is the share kept
*for* outages, and once islanded a Powerwall discharges below it (Tesla,
"Backup Reserve": "During an outage, your Backup Reserve becomes available ...
your Powerwall may discharge below your set reserve percentage"). So the energy
that can carry the home is the whole stored energy, the gateway's state of charge x
``battery_capacity``, less the bottom of the pack the gateway keeps to itself:
``battery_soc`` is on the Tesla app's scale, which hides the gateway's bottom 5 %
(app 0 % = gateway 5 %, see ``HIDDEN_RESERVE_PERCENT``), so the pack's level is
``hidden + battery_soc x (1 - hidden)``. Tesla's page says an
outage that begins with less than 5 % stored leaves the home dark while the
Powerwall waits for solar, without saying on which scale; an installer's guide
speaks of standby below 10 %. The floor is taken at the app's 0 %:
``hidden_percent`` (5 %) of the capacity by default (a parameter); pass 0
for a battery whose state of charge already counts only usable energy (the
virtual home's battery runs down to 0 %). ``battery_capacity`` is read live
where the device reports it, else ``capacity_wh`` from the configuration.
The stored energy is taken as what the home can get (``efficiency`` 1): Tesla
quotes a Powerwall's 13.5 kWh as usable energy. Pass the one-way efficiency
when the capacity is the energy held in the cells (the virtual home's battery
gives ``energy x sqrt(round trip)`` to the home), and the battery's continuous
rating as ``max_discharge_w`` where it is known (load beyond it is shed).
An outage under way changes nothing: the figures count from the energy now.

The car. A Wall Connector keeps charging from the Powerwall in an outage unless
the owner has set it up otherwise (Tesla's off-grid vehicle charging reserve,
a load-shedding relay, or the car's own setting), and many owners do; so by
default the car's charging (``ev_power``, ``ev`` in rollups) is left out of the
expected load, and ``include_ev=True`` keeps it in. The vendor figure keeps
the whole current load, car included, as the gateway meters it.

Expected load and solar. For each local hour of the day (so daylight-saving
days fall right), the last ``days`` days of hour rollups give the load's mean,
its 10th and 90th percentiles across days, and the mean solar output; hours
less than 95 % covered by readings are left out, hours of the day without any
history take their neighbours' values. The recent load is the time-weighted
mean of the last hour of raw readings. Then (see ``backup_estimate``):

- central: the typical load, blended with the recent load over the next 3 h;
  typical solar;
- low: the 90th percentile, or the recent load if higher over the next 3 h;
  no solar (a storm);
- high: the 10th percentile (a household saving power); typical solar.

Without history the recent load is held constant and no solar is expected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.devices.powerwall.replies import HIDDEN_RESERVE_PERCENT
from homegrid.energy.backup import (
    BLEND_S,
    HORIZON_S,
    backup_estimate,
    format_duration,
    vendor_figure_s,
)
from homegrid.energy.integrate import coverage_per_bucket, energy_per_bucket
from homegrid.readings import from_ms
from homegrid.store import Store
from homegrid.timezones import DAY_MS, HOUR_MS, utc_offset_ms

__all__ = [
    "VENDOR_METHOD",
    "DayProfile",
    "backup_report",
    "day_profile",
    "profile_series",
    "recent_load_w",
]

#: Hours less covered by readings than this share are left out of the profile (an hour's energy over
#: its whole length is its mean power: a gap in power-only readings would understate it).
MIN_COVERAGE = 0.95
#: The recent load needs at least this much of the window covered by readings. [s]
MIN_RECENT_S = 300.0
#: Step of the outage simulation. [s]
STEP_S = 300.0

VENDOR_METHOD = (
    "energy remaining / current load: the pack's level (battery_soc_gateway) x battery_capacity "
    "over home_power now (car included), no solar. Tesla does not document how its app computes backup "
    "time (its cloud returns time_remaining_hours from /energy_sites/{id}/backup_time_remaining); this is "
    "how pypowerwall estimates it from a local gateway (nominalEnergyRemainingWh / LOAD realPowerW)."
)


@dataclass(frozen=True)
class DayProfile:
    """Load and solar for each local hour of the day (index 0 = 00:00-01:00) [W].

    ``hours`` counts the hours of history behind each slot (0: filled from its
    neighbours).
    """

    load_mean: np.ndarray
    load_light: np.ndarray
    load_heavy: np.ndarray
    solar_mean: np.ndarray
    hours: np.ndarray


def _local_hour(t_ms: np.ndarray, tz: ZoneInfo) -> np.ndarray:
    t = np.asarray(t_ms, dtype=np.int64)
    hour: np.ndarray = ((t + utc_offset_ms(t, tz.key)) // HOUR_MS) % 24
    return hour


def _fill_circular(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Slots without data take a linear interpolation of their nearest known neighbours, around the clock."""
    if known.all():
        return values
    x = np.flatnonzero(known)
    xp = np.concatenate((x - 24, x, x + 24))
    fp = np.tile(values[x], 3)
    filled: np.ndarray = np.interp(np.arange(24), xp, fp)
    return filled


def day_profile(
    store: Store,
    tz: ZoneInfo,
    now_ms: int,
    *,
    days: int = 14,
    include_ev: bool = False,
    light_percentile: float = 10.0,
    heavy_percentile: float = 90.0,
) -> DayProfile | None:
    """The typical load and solar for each local hour of the day, from recent hour rollups.

    Parameters
    ----------
    store : Store
    tz : ZoneInfo
        The site's zone: hours are grouped by local time of day.
    now_ms : int
        Now, epoch ms UTC; only hours complete by then count.
    days : int, optional
        How far back to look. [d]
    include_ev : bool, optional
        Keep the car's charging in the load.
    light_percentile, heavy_percentile : float, optional
        Percentiles across days of each hour's load for the light and heavy loads. [%]

    Returns
    -------
    DayProfile or None
        None when no hour in the period is covered well enough.
    """
    table = store.read_rollup("hour", now_ms - days * DAY_MS, now_ms - HOUR_MS + 1)
    if not len(table):
        return None
    c = table.columns
    ok = c["covered_s"] >= MIN_COVERAGE * HOUR_MS / 1000.0
    if not ok.any():
        return None
    start = table.start_ms[ok]
    load = c["home"][ok] - (0.0 if include_ev else np.nan_to_num(c["ev"][ok]))
    load = np.clip(np.nan_to_num(load), 0.0, None)  # an hour's energy [Wh] is its mean power [W]
    solar = np.clip(np.nan_to_num(c["solar"][ok]), 0.0, None)
    slot = _local_hour(start, tz)
    hours = np.bincount(slot, minlength=24)
    known = hours > 0
    mean = np.zeros(24)
    light = np.zeros(24)
    heavy = np.zeros(24)
    sun = np.zeros(24)
    for s in np.flatnonzero(known):
        sel = slot == s
        mean[s] = load[sel].mean()
        light[s], heavy[s] = np.percentile(load[sel], [light_percentile, heavy_percentile])
        sun[s] = solar[sel].mean()
    return DayProfile(
        load_mean=_fill_circular(mean, known),
        load_light=_fill_circular(light, known),
        load_heavy=_fill_circular(heavy, known),
        solar_mean=_fill_circular(sun, known),
        hours=hours,
    )


def profile_series(
    profile: DayProfile, tz: ZoneInfo, now_ms: int, step_s: float = STEP_S, horizon_s: float = HORIZON_S
) -> dict[str, np.ndarray]:
    """The profile laid over the steps from now, by each step's local hour (daylight saving included) [W].

    Returns
    -------
    dict of arrays
        ``load_mean``, ``load_light``, ``load_heavy`` and ``solar_mean``, one value per step.
    """
    n = math.ceil(horizon_s / step_s)
    t = now_ms + np.round(np.arange(n) * step_s * 1000.0).astype(np.int64)
    slot = _local_hour(t, tz)
    return {
        "load_mean": profile.load_mean[slot],
        "load_light": profile.load_light[slot],
        "load_heavy": profile.load_heavy[slot],
        "solar_mean": profile.solar_mean[slot],
    }


def recent_load_w(
    store: Store, now_ms: int, *, window_s: float = 3600.0, include_ev: bool = False, max_gap_s: float = 300.0
) -> float | None:
    """The time-weighted mean load over the last ``window_s`` of raw readings [W].

    Parameters
    ----------
    store : Store
    now_ms : int
        Now, epoch ms UTC.
    window_s : float, optional
        How far back. [s]
    include_ev : bool, optional
        Keep the car's charging in the load.
    max_gap_s : float, optional
        Samples further apart are not bridged. [s]

    Returns
    -------
    float or None
        None when readings cover less than ``MIN_RECENT_S`` of the window.
    """
    start = now_ms - int(window_s * 1000)
    frame = store.read_readings(start, now_ms + 1)
    if len(frame) < 2:
        return None
    load = frame.column("home_power")
    if not include_ev:
        load = load - np.nan_to_num(frame.column("ev_power"))
    load = np.where(np.isnan(load), np.nan, np.clip(load, 0.0, None))
    edges = np.array([start, now_ms], dtype=np.int64)
    covered = float(coverage_per_bucket(frame.time_ms, load, edges, max_gap_s)[0])
    if covered < MIN_RECENT_S:
        return None
    return float(energy_per_bucket(frame.time_ms, load, edges, max_gap_s)[0]) * 3600.0 / covered


def _number(values: Mapping[str, float], name: str) -> float | None:
    v = values.get(name)
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _round(v: float | None, digits: int = 1) -> float | None:
    return None if v is None else round(v, digits)


def backup_report(
    store: Store,
    tz: ZoneInfo,
    live_values: Mapping[str, float],
    now_ms: int,
    *,
    capacity_wh: float | None = None,
    days: int = 14,
    include_ev: bool = False,
    hidden_percent: float = HIDDEN_RESERVE_PERCENT,
    max_discharge_w: float | None = None,
    efficiency: float = 1.0,
    blend_s: float = BLEND_S,
    horizon_s: float = HORIZON_S,
    max_gap_s: float = 300.0,
) -> dict[str, object]:
    """How long the battery would carry the home now, as a range, and the vendor's plain figure.

    Parameters
    ----------
    store : Store
        History: hour rollups for the typical day, raw readings for the recent load.
    tz : ZoneInfo
        The site's zone.
    live_values : mapping
        The newest value of each quantity (``Hub.live()``): ``battery_soc`` [%],
        ``battery_capacity`` [Wh], ``home_power`` [W], ``ev_power`` [W] ...
    now_ms : int
        Now, epoch ms UTC.
    capacity_wh : float, optional
        The battery's capacity when the device does not report ``battery_capacity``. [Wh]
    days : int, optional
        Days of history for the typical day. [d]
    include_ev : bool, optional
        Expect the car to keep charging in an outage (default: it stops).
    hidden_percent : float, optional
        The bottom of the pack that does not carry the home and that ``battery_soc``
        leaves out (the Powerwall gateway's 5 %; 0 for a battery whose level counts
        all its energy). [%]
    max_discharge_w : float, optional
        The battery's continuous rating; None: no limit. [W]
    efficiency : float, optional
        One-way efficiency between stored energy and the home. [-]
    blend_s : float, optional
        How long the recent load weighs in the expected load. [s]
    horizon_s : float, optional
        Durations are computed up to this. [s]
    max_gap_s : float, optional
        Samples further apart are not bridged (recent load). [s]

    Returns
    -------
    dict
        JSON-ready: ``time``, ``stored_wh``, ``usable_wh``, ``soc``, ``load_now_w``,
        ``estimate`` (``low_s``, ``central_s``, ``high_s``), ``display``
        (``central`` and ``range`` as H:MM), ``vendor`` (``seconds``,
        ``display``, ``method``), ``assumptions`` and ``reason`` (None, or why
        there are no figures: then ``estimate`` and ``display`` are None).
    """
    soc = _number(live_values, "battery_soc")
    live_capacity = _number(live_values, "battery_capacity")
    capacity: float | None
    capacity_source: str | None
    if live_capacity is not None and live_capacity > 0:
        capacity, capacity_source = live_capacity, "live"
    else:
        capacity, capacity_source = capacity_wh, (None if capacity_wh is None else "config")
    home_now = _number(live_values, "home_power")
    ev_now = _number(live_values, "ev_power")
    pack_percent = None if soc is None else hidden_percent + soc * (1.0 - hidden_percent / 100.0)
    stored = None if pack_percent is None or capacity is None else pack_percent / 100.0 * capacity
    floor = None if capacity is None else hidden_percent / 100.0 * capacity
    vendor_s = vendor_figure_s(stored, home_now)
    assumptions: dict[str, object] = {
        "capacity_wh": _round(capacity),
        "capacity_source": capacity_source,
        "floor_percent": hidden_percent,
        "floor_wh": _round(floor),
        "backup_reserve_percent": _number(live_values, "battery_reserve"),
        "reserve_is_floor": False,
        "ev_in_load": include_ev,
        "profile_days": days,
        "history_hours": 0,
        "recent_load_w": None,
        "blend_s": blend_s,
        "step_s": STEP_S,
        "horizon_s": horizon_s,
        "max_discharge_w": max_discharge_w,
        "efficiency": efficiency,
        "low": "90th percentile of the load for each hour of the day, or the recent load if higher "
               f"for the first {blend_s / 3600:g} h; no solar",
        "central": f"mean load for each hour of the day blended with the recent load over {blend_s / 3600:g} h; "
                   "mean solar for each hour of the day",
        "high": "10th percentile of the load for each hour of the day; mean solar",
    }
    out: dict[str, object] = {
        "time": from_ms(now_ms).astimezone(tz).isoformat(),
        "stored_wh": _round(stored),
        "usable_wh": None if stored is None or floor is None else round(max(0.0, stored - floor), 1),
        "soc": soc,
        "load_now_w": home_now,
        "estimate": None,
        "display": None,
        "vendor": {
            "seconds": _round(vendor_s, 0),
            "display": format_duration(vendor_s, math.inf),
            "method": VENDOR_METHOD,
        },
        "assumptions": assumptions,
        "reason": None,
    }
    if soc is None:
        out["reason"] = "no battery state of charge (battery_soc) has been read yet"
        return out
    if capacity is None or not capacity > 0:
        out["reason"] = "the battery's capacity is unknown: the device reports no battery_capacity and none is set"
        return out
    assert stored is not None and floor is not None

    recent = recent_load_w(store, now_ms, include_ev=include_ev, max_gap_s=max_gap_s)
    assumptions["recent_load_w"] = _round(recent)
    profile = day_profile(store, tz, now_ms, days=days, include_ev=include_ev)
    if profile is not None:
        assumptions["history_hours"] = int(profile.hours.sum())
        series = profile_series(profile, tz, now_ms, STEP_S, horizon_s)
        typical, light, heavy, solar = (
            series["load_mean"], series["load_light"], series["load_heavy"], series["solar_mean"]
        )
    else:
        flat = recent
        if flat is None and home_now is not None:
            flat = max(0.0, home_now - (0.0 if include_ev or ev_now is None else ev_now))
            assumptions["recent_load_w"] = _round(flat)
            assumptions["recent_load_source"] = "live"
        if flat is None:
            out["reason"] = "no load history and no current load to estimate from"
            return out
        typical = light = heavy = np.array([flat])
        solar = np.array([0.0])
        for key in ("low", "central", "high"):
            assumptions[key] = "no history: the recent load held constant; no solar"
    est = backup_estimate(
        stored,
        STEP_S,
        typical_load_w=typical,
        heavy_load_w=heavy,
        light_load_w=light,
        typical_solar_w=solar,
        recent_load_w=recent,
        blend_s=blend_s,
        floor_wh=floor,
        capacity_wh=capacity,
        max_discharge_w=max_discharge_w,
        efficiency=efficiency,
        horizon_s=horizon_s,
    )
    low, central, high = (format_duration(s, horizon_s) for s in (est.low_s, est.central_s, est.high_s))
    out["estimate"] = {k: round(v, 0) for k, v in est.as_dict().items()}
    out["display"] = {"central": central, "range": f"{low}–{high}"}
    return out
