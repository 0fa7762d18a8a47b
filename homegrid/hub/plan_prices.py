"""The billing month so far in the live planner's prices: a tiered rate's blocks left and the demand peaks to beat.

:func:`month_charges` reads the billing month so far from the store as the bill does (:mod:`homegrid.hub.bill`:
the minute rollups when the tariff's demand window is under an hour, else the hours; metered by the tariff's export
rule) and hands it to :func:`homegrid.tariffs.horizon.horizon_charges`, which bills it and reads off the blocks and
peaks. What the planner gets:

- **tiers**, when the blocks rise in price (the usual inclining blocks) and the rule is not net metering: the
  blocks themselves (:attr:`Problem.import_tiers`), priced exactly by the optimiser; ``import_price`` is each
  step's marginal price (the first block with room). A **declining** block rate (a dearer block first) is not
  convex, and under **net metering** the blocks fill with the month's net use: then each step is priced flat at its
  marginal price at the month so far (under net metering export earns that same price, as the bill nets it);
- **demand**: the billing month's flat charge at the price of the next kW above the month's peak so far (the
  bill's own peak over its demand window) as :attr:`Problem.demand_price_per_kw` and
  :attr:`Problem.demand_peak_w` when each step is a demand window of its own (steps as long as the window or
  longer); a per-period charge, a billing month that starts within the horizon, and steps shorter than the window
  (averaged over the bill's windows) as :attr:`Problem.demand_terms` (each over its own steps, with its own peak
  so far).

Without tiers or demand charges the store is not read and the prices pass through.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from homegrid.hub.bill import bill_step, home_intervals
from homegrid.store import Store
from homegrid.tariffs.bill import billing_months
from homegrid.tariffs.horizon import DemandTerm, TierBlocks, horizon_charges
from homegrid.tariffs.meters import counterfactual_meters
from homegrid.tariffs.model import ExportRule, Tariff

__all__ = ["MonthCharges", "month_charges"]


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class MonthCharges:
    """The planner's prices with the billing month so far in them (the fields of a :class:`Problem` of the same
    names)."""

    import_price: np.ndarray
    export_price: np.ndarray
    import_tiers: TierBlocks | None = None
    demand_price_per_kw: float = 0.0
    demand_peak_w: float = 0.0
    demand_terms: tuple[DemandTerm, ...] = ()


def month_charges(store: Store, tariff: Tariff | None, t_ms: np.ndarray, step_ms: int, timezone: str,
                  import_price: np.ndarray, export_price: np.ndarray, notes: list[str]) -> MonthCharges:
    """The horizon's prices, tier blocks and demand charges given the billing month so far (the module's docstring).

    Parameters
    ----------
    store : Store
        The hub's store (its rollups up to the horizon's first step).
    tariff : Tariff or None
        The site's tariff (None: the prices pass through).
    t_ms : numpy.ndarray
        The horizon's step starts. [ms]
    step_ms : int
        The horizon's step. [ms]
    timezone : str
    import_price, export_price : numpy.ndarray
        Each step's prices before tiers (:func:`homegrid.tariffs.meters.import_price`). [currency/kWh]
    notes : list of str
        Appended to: what the month so far changes.
    """
    if tariff is None or not len(t_ms):
        return MonthCharges(import_price, export_price)
    tiered = tariff.dynamic is None and tariff.energy.tiered
    if not (tiered or (tariff.demand is not None and tariff.demand.any)):
        return MonthCharges(import_price, export_price)
    t0 = int(t_ms[0])
    month_start = billing_months(t0, t0 + 1, timezone, tariff.billing_day)[0][1]
    home, _ = home_intervals(store, bill_step(tariff), month_start, t0)
    meter = counterfactual_meters(home, tariff.export.rule)["actual"]
    charges = horizon_charges(tariff, t_ms, step_ms, timezone, meter)
    blocks = charges.blocks
    imp, exp = import_price, export_price
    if blocks is not None:
        imp = blocks.marginal()
        if tariff.export.rule is ExportRule.NET_METERING:
            exp, blocks = imp.copy(), None
            notes.append("tiers under net metering: each step at its marginal block price for the month so far")
        elif not blocks.convex:
            blocks = None
            notes.append("the tiers' prices fall with the block: each step at its marginal block price for the "
                         "month so far")
        else:
            left = blocks.size_wh[blocks.group[0]]
            block = int(np.argmax(left > 0))
            notes.append(f"tiers: {left[block] / 1000:.1f} kWh left in block {block + 1} this month")
    terms = list(charges.demand)
    for term in terms:
        notes.append(f"demand {term.name}: {term.price_per_kw:g} per kW above {term.peak_w / 1000:.2f} kW")
    demand_price = demand_peak = 0.0
    flat = terms[0] if terms else None
    if flat is not None and flat.period is None and flat.steps.all() and flat.window is None:
        # the flat charge, the horizon within one month, each step a demand window of its own
        demand_price, demand_peak = flat.price_per_kw, flat.peak_w
        terms = terms[1:]
    return MonthCharges(imp, exp, blocks, demand_price, demand_peak, tuple(terms))
