"""The energy report: totals, flows, the car's sources and how self-powered the home was."""

from __future__ import annotations

import math
from collections.abc import Mapping

from homegrid.glossary import EV_SOURCES, FLOWS
from homegrid.readings.rollup import ENERGY_KEYS

__all__ = ["energy_report", "ev_parts_wh", "self_powered_percent"]


def self_powered_percent(home_wh: float, grid_to_home_wh: float) -> float | None:
    """Share of the home's energy not drawn from the grid [%]; None when the home used nothing.

    Parameters
    ----------
    home_wh : float
        Household energy, car included. [Wh]
    grid_to_home_wh : float
        The part of it that came from the grid. [Wh]
    """
    if not home_wh > 0:
        return None
    return max(0.0, min(100.0, 100.0 * (1.0 - grid_to_home_wh / home_wh)))


def _num(totals: Mapping[str, float], key: str) -> float:
    v = float(totals.get(key, 0.0))
    return 0.0 if math.isnan(v) else round(v, 3)


def ev_parts_wh(ev_wh: float, sources_wh: Mapping[str, float]) -> dict[str, float]:
    """The car's energy by source, plus ``unknown``, rounded so that the parts add up to the car's energy.

    Parameters
    ----------
    ev_wh : float
        The car's energy. [Wh]
    sources_wh : mapping
        Its energy by source (``solar``, ``battery``, ``grid``). [Wh]

    Returns
    -------
    dict
        Each source and ``unknown`` [Wh] to the mWh: in whole mWh, the parts sum exactly to ``ev_wh``
        rounded to the mWh (``unknown`` takes the rounding, and whatever no source can be named for).
    """
    def mwh(v: float) -> int:
        return 0 if not math.isfinite(v) else round(v * 1000)

    parts = {k: mwh(v) for k, v in sources_wh.items()}
    parts["unknown"] = mwh(ev_wh) - sum(parts.values())
    return {k: v / 1000 for k, v in parts.items()}


def energy_report(totals: Mapping[str, float]) -> dict[str, object]:
    """Shape summed rollups into the report's public JSON keys.

    Parameters
    ----------
    totals : mapping
        Sums of rollup columns over the period (energies [Wh], ``covered_s``,
        ``islanded_s`` [s]).

    Returns
    -------
    dict
        ``energy_wh``, ``flows_wh``, ``ev_sources_wh`` (with ``unknown``: see :func:`ev_parts_wh`),
        ``self_powered_percent``,
        ``covered_hours`` and ``islanded_minutes``.
    """
    energy = {k: _num(totals, k) for k in ENERGY_KEYS}
    flows = {k: _num(totals, k) for k in FLOWS}
    ev = ev_parts_wh(energy["ev"], {s: _num(totals, f"ev_from_{s}") for s in EV_SOURCES})
    spp = self_powered_percent(energy["home"], flows["grid_to_home"])
    return {
        "energy_wh": energy,
        "flows_wh": flows,
        "ev_sources_wh": ev,
        "self_powered_percent": None if spp is None else round(spp, 2),
        "covered_hours": round(_num(totals, "covered_s") / 3600.0, 3),
        "islanded_minutes": round(_num(totals, "islanded_s") / 60.0, 2),
    }
