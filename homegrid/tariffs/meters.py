"""What the utility's meter would read for the actual home and for homes without the battery or the sun.

From the same measured intervals (the home's load, the solar, the battery and the grid) three homes are metered:

- ``grid_only``: no solar and no battery; all the home's load comes from the grid;
- ``solar_only``: the measured solar and load with no battery: the measured flows with the battery's taken
  out. What the battery gave the home comes from the grid, what the sun gave the battery goes to the grid, and
  the battery's own grid charging and export vanish (import = grid_import - grid_to_battery + battery_to_home,
  export = grid_export - battery_to_grid + solar_to_battery). A home without a battery meters the same as
  ``actual``. Where the flows are not known, each interval nets the solar and the load instead;
- ``actual``: the grid meter as measured.

Under buy-all-sell-all the load and the solar have meters of their own: the load meter reads the home's load
(plus the battery's net charge in the actual home, as a battery behind the load meter charges from the grid) and
the solar meter all the solar. The solar's part of the savings is ``grid_only - solar_only``, the battery's
``solar_only - actual``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from homegrid.tariffs.bill import Metered
from homegrid.tariffs.model import ExportRule, Tariff
from homegrid.tariffs.schedule import tou_periods

__all__ = ["COUNTERFACTUALS", "HomeIntervals", "counterfactual_meters", "export_price", "import_price"]

#: The homes billed side by side, in the order of the savings.
COUNTERFACTUALS: tuple[str, ...] = ("grid_only", "solar_only", "actual")


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class HomeIntervals:
    """Measured energy per interval [Wh], all >= 0 (the glossary's categories)."""

    t_ms: np.ndarray
    step_ms: int
    home: np.ndarray
    solar: np.ndarray
    grid_import: np.ndarray
    grid_export: np.ndarray
    battery_charge: np.ndarray
    battery_discharge: np.ndarray
    grid_to_battery: np.ndarray | None = None
    battery_to_home: np.ndarray | None = None
    battery_to_grid: np.ndarray | None = None
    solar_to_battery: np.ndarray | None = None


def counterfactual_meters(home: HomeIntervals, rule: ExportRule) -> dict[str, Metered]:
    """The meters of the three homes (:data:`COUNTERFACTUALS`) under an export rule.

    Parameters
    ----------
    home : HomeIntervals
        Measured energy per interval. [Wh]
    rule : ExportRule
        Buy-all-sell-all meters load and solar apart; every other rule meters the grid connection.

    Returns
    -------
    dict of str to Metered
    """

    def clean(a: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num(np.asarray(a, dtype=np.float64)), 0.0, None)

    load, solar = clean(home.home), clean(home.solar)
    zero = np.zeros_like(load)

    def meter(imported: np.ndarray, exported: np.ndarray) -> Metered:
        return Metered(home.t_ms, home.step_ms, np.clip(imported, 0.0, None), np.clip(exported, 0.0, None))

    if rule is ExportRule.BUY_ALL_SELL_ALL:
        battery_net = clean(home.battery_charge) - clean(home.battery_discharge)
        return {
            "grid_only": meter(load, zero),
            "solar_only": meter(load, solar),
            "actual": meter(load + battery_net, solar),
        }
    grid_import, grid_export = clean(home.grid_import), clean(home.grid_export)
    solar_only = meter(load - solar, solar - load)
    flows = [f for f in (home.grid_to_battery, home.battery_to_home, home.battery_to_grid, home.solar_to_battery)
             if f is not None]
    if len(flows) == 4:
        to_battery, battery_home, battery_grid, solar_battery = (clean(f) for f in flows)
        known = np.isfinite(np.asarray(flows[1], dtype=np.float64))
        solar_only = meter(
            np.where(known, grid_import - to_battery + battery_home, solar_only.import_wh),
            np.where(known, grid_export - battery_grid + solar_battery, solar_only.export_wh),
        )
    return {
        "grid_only": meter(load, zero),
        "solar_only": solar_only,
        "actual": meter(grid_import, grid_export),
    }


def _first_tier(tariff: Tariff, t_ms: np.ndarray, timezone: str, side: str) -> np.ndarray:
    """Each instant's period's first block price (``side``: ``"buy"`` or ``"sell"``). [currency/kWh]"""
    periods = tou_periods(t_ms, timezone, tariff.energy.schedule)
    table = np.full(max(tariff.energy.periods) + 1, np.nan)
    for p, tiers in tariff.energy.periods.items():
        table[p] = getattr(tiers[0], side)
    prices: np.ndarray = table[periods]
    return prices


def import_price(tariff: Tariff, t_ms: np.ndarray, timezone: str) -> np.ndarray:
    """The price of one more kWh imported at each instant, before tiers move it: the first block's price of the
    instant's period, or the dynamic price (NaN where its series has none). [currency/kWh]"""
    t_ms = np.asarray(t_ms, dtype=np.int64)
    if tariff.dynamic is not None:
        price, known = tariff.dynamic.buy(t_ms)
        return np.where(known, price, np.nan)
    return _first_tier(tariff, t_ms, timezone, "buy")


def export_price(tariff: Tariff, t_ms: np.ndarray, timezone: str) -> np.ndarray:
    """What one more kWh exported at each instant earns, before tiers move it, by the bill's own order of rules
    (:func:`homegrid.tariffs.bill.price_bill`). [currency/kWh]

    - no export credit: 0;
    - net metering: the import price of the instant (:func:`import_price`), as each exported kWh nets out one
      imported in the same period (a surplus carried to the true-up earns less: the true-up rate);
    - net billing and buy-all-sell-all: the export terms' ``sell_price``, else the dynamic export series (NaN
      where it has none), else the first block's sell price of the instant's period.
    """
    t_ms = np.asarray(t_ms, dtype=np.int64)
    rule = tariff.export.rule
    if rule is ExportRule.NONE:
        return np.zeros(len(t_ms))
    if rule is ExportRule.NET_METERING:
        return import_price(tariff, t_ms, timezone)
    if tariff.export.sell_price is not None:
        return np.full(len(t_ms), tariff.export.sell_price)
    if tariff.dynamic is not None and tariff.dynamic.export_price is not None:
        sold = tariff.dynamic.sell(t_ms)
        assert sold is not None
        price, known = sold
        return np.where(known, price, np.nan)
    return _first_tier(tariff, t_ms, timezone, "sell")
