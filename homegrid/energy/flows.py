"""Where every kWh came from and went: sources split over sinks, per interval.

The default rule gives the categories of Tesla's own energy history, so the two
can be compared:

- solar serves the home first, then charges the battery, then exports;
- battery discharge serves the home, then exports;
- grid import serves the home, then charges the battery.

An interval can hold moments of import and of export, or of charge and of
discharge; when the greedy rule leaves such a pair unplaced, the flows are
rerouted (giving up the lowest-priority flow first) so that every interval
that balanced moment by moment is fully placed.

The car's share of the home's sources in an interval is proportional to its
share of the home's energy in that interval. What of the car's energy no source
can be named for (meters that disagree, a gap in the home's readings) is its own
part, ``unknown``, so the parts always add up to the car's energy.

When an interval's sources and sinks do not balance (meters disagree), what a
source could not place, or a sink did not get, is returned as its residual;
nothing is dropped silently.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ev_sources", "ev_unknown", "split_flows"]

SOURCES = ("solar", "battery_discharge", "grid_import")
SINKS = ("home", "battery_charge", "grid_export")


def split_flows(
    solar: np.ndarray,
    battery_discharge: np.ndarray,
    grid_import: np.ndarray,
    home: np.ndarray,
    battery_charge: np.ndarray,
    grid_export: np.ndarray,
) -> dict[str, np.ndarray]:
    """Split each interval's source energies over its sink energies [Wh].

    Parameters
    ----------
    solar, battery_discharge, grid_import : array
        Source energies per interval, >= 0. [Wh]
    home, battery_charge, grid_export : array
        Sink energies per interval, >= 0. [Wh]

    Returns
    -------
    dict of arrays
        The seven flows named in ``homegrid.glossary.FLOWS`` [Wh], plus
        ``unplaced_<source>`` and ``unserved_<sink>`` residuals [Wh]: for
        each source, its flows plus its unplaced part equal it; for each sink,
        its flows plus its unserved part equal it.
    """
    s = np.asarray(solar, dtype=np.float64)
    b = np.asarray(battery_discharge, dtype=np.float64)
    g = np.asarray(grid_import, dtype=np.float64)
    home_left = np.asarray(home, dtype=np.float64).copy()
    charge_left = np.asarray(battery_charge, dtype=np.float64).copy()
    export_left = np.asarray(grid_export, dtype=np.float64).copy()

    # each source in turn fills the sinks it may reach, in order of preference
    order = (
        ("solar", s, (("home", home_left), ("battery", charge_left), ("grid", export_left))),
        ("battery", b, (("home", home_left), ("grid", export_left))),
        ("grid", g, (("home", home_left), ("battery", charge_left))),
    )
    out: dict[str, np.ndarray] = {}
    left: dict[str, np.ndarray] = {}
    for source, available, sinks in order:
        for sink, need in sinks:
            moved = np.minimum(available, need)
            need -= moved  # in place: the sink's "left" array
            available = available - moved
            out[f"{source}_to_{sink}"] = moved
        left[source] = available
    s_left, b_left, g_left = left["solar"], left["battery"], left["grid"]

    # grid import and export both left over: solar or battery energy that served home or battery goes out
    # instead, and the grid takes its place
    _pass_through("grid", out, g_left, export_left,
                  (("battery_to_home", "home"), ("solar_to_battery", "battery"), ("solar_to_home", "home")))
    # battery discharge and charge both left over: the battery takes over serving home or export, and the
    # energy that served them charges the battery instead
    _pass_through("battery", out, b_left, charge_left,
                  (("grid_to_home", "home"), ("solar_to_grid", "grid"), ("solar_to_home", "home")))

    out["unplaced_solar"] = s_left
    out["unplaced_battery_discharge"] = b_left
    out["unplaced_grid_import"] = g_left
    out["unserved_home"] = home_left
    out["unserved_battery_charge"] = charge_left
    out["unserved_grid_export"] = export_left
    return out


def _shift(amount: np.ndarray, flows: dict[str, np.ndarray], minus: tuple[str, ...], plus: tuple[str, ...]) -> None:
    for name in minus:
        flows[name] -= amount
    for name in plus:
        flows[name] += amount


def _pass_through(
    node: str, out: dict[str, np.ndarray], supplied_left: np.ndarray, taken_left: np.ndarray,
    routes: tuple[tuple[str, str], ...],
) -> None:
    """``node`` (the grid or the battery) both supplied and took energy that is left over: it held both at
    different moments. Each flow of ``routes`` in turn (lowest priority first) goes to ``node`` instead, and
    ``node`` takes its place serving the flow's sink."""
    for via, sink in routes:
        y = np.minimum(np.minimum(supplied_left, taken_left), out[via])
        origin = via.split("_to_")[0]
        _shift(y, out, (via,), (f"{origin}_to_{node}", f"{node}_to_{sink}"))
        supplied_left -= y
        taken_left -= y


def ev_sources(
    ev: np.ndarray, home: np.ndarray, flows: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The car's energy by source, in proportion to its share of the home [Wh].

    Parameters
    ----------
    ev : array
        The car charger's energy per interval, part of ``home``. [Wh]
    home : array
        Household energy per interval, car included. [Wh]
    flows : dict of arrays
        From :func:`split_flows`.

    Returns
    -------
    dict of arrays
        ``solar``, ``battery`` and ``grid`` [Wh].
    """
    ev = np.asarray(ev, dtype=np.float64)
    home = np.asarray(home, dtype=np.float64)
    share = np.divide(np.minimum(ev, home), home, out=np.zeros_like(home), where=home > 0)
    return {
        "solar": share * flows["solar_to_home"],
        "battery": share * flows["battery_to_home"],
        "grid": share * flows["grid_to_home"],
    }


def ev_unknown(ev: np.ndarray, sources: dict[str, np.ndarray]) -> np.ndarray:
    """The car's energy that no source can be named for [Wh]: its energy less its sources.

    Parameters
    ----------
    ev : array
        The car charger's energy per interval. [Wh]
    sources : dict of arrays
        The car's energy by source, from :func:`ev_sources` (or sums of it). [Wh]

    Returns
    -------
    array
        ``ev`` minus the sum of ``sources`` [Wh]: the sources and this part add up to ``ev``.
        Non-negative for one interval (a source's share never exceeds the car's); it holds
        the part of the car's energy in intervals whose home energy was not fully served by
        the metered sources, and the car's energy in intervals where the home was not measured.
    """
    ev = np.asarray(ev, dtype=np.float64)
    left: np.ndarray = ev - sum((np.asarray(a, dtype=np.float64) for a in sources.values()), np.zeros_like(ev))
    return left
