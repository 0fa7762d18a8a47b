"""NREL SAM's bill of a homegrid tariff: the peer of issue 13's bill engine (PySAM.Utilityrate5, ``nrel-pysam``).

:func:`sam_rates` writes a :class:`homegrid.tariffs.model.Tariff` as SAM's ``ElectricityRates`` inputs;
:func:`sam_bill` runs SAM's utility-rate module on a year of load and generation (hourly or finer) and returns its
figures per calendar month. The semantics are those of docs/research/issue-13-pysam-utilityrate5.md; what a
homegrid tariff can say and SAM cannot is refused by :class:`NotInSam`, naming the field, never dropped.

How a tariff becomes SAM's inputs:

- energy periods: homegrid's period numbers (any whole numbers) become SAM's 1-based periods in rising order
  (the lowest is 1); ``ur_ec_sched_weekday/weekend`` are the schedule's tables so renumbered;
- ``ur_ec_tou_mat`` rows ``[period, tier, max, unit, buy, sell]``: ``max`` is 1e38 (SAM's "no limit") for the
  last, open tier; ``unit`` is SAM's ``max_unit`` (0 kWh, 1 kWh/kW, 2 kWh daily, 3 kWh/kW daily); ``sell`` is the
  export terms' ``sell_price`` when set, else the tier's ``sell``; with the rule "none" every sell is 0;
- ``ur_metering_option``: 0 for net metering (kWh carried per period, the true-up in ``ur_nm_credit_month`` =
  true-up month - 1 at ``ur_nm_yearend_sell_rate``), 2 for net billing and for "none" (net billing at sell 0),
  4 for buy-all-sell-all;
- ``ur_monthly_fixed_charge``, ``ur_monthly_min_charge``, ``ur_annual_min_charge`` from the tariff's monthly
  fixed charge and minimums;
- demand: ``ur_dc_flat_mat`` rows ``[month 0-11, tier, max kW, $/kW]`` (a month without a charge gets one row at
  0) and ``ur_dc_tou_mat`` rows ``[period, tier, max kW, $/kW]`` over the demand schedule renumbered as the
  energy one; SAM's peak is the highest single-step import, so the tariff's demand window must be the step
  (60 min for hourly data);
- dynamic prices: ``ur_en_ts_buy_rate`` = 1 and ``ur_ts_buy_rate`` the price of each hour (spot x (1 + percent)
  + adder); an export series likewise as ``ur_ts_sell_rate`` unless the export terms name a sell price, which
  then goes in the table, as homegrid's ``--sell-price`` overrides the tariff's.

Not in SAM (refused): per-period tiers (SAM fills one set of monthly blocks with all periods' energy), holidays
(SAM's calendar has none), a daily fixed charge (SAM has one monthly figure; :func:`sam_bill` adds it per
calendar day when asked, see ``daily_fixed``), a billing day other than the 1st, taxes (SAM has none: compare
homegrid's totals before tax).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import PySAM.Utilityrate5 as ur5

from homegrid.tariffs.model import ExportRule, Tariff, TierScope, TierUnit
from homegrid.tariffs.schedule import MonthHourSchedule

__all__ = ["DAYS_IN_MONTH", "HOURS", "NotInSam", "SamMonths", "sam_bill", "sam_rates"]

HOURS = 8760  # SAM's year: 365 days, no leap day
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
NO_LIMIT = 1e38  # SAM's "no upper limit" for a tier

_UNIT = {TierUnit.KWH: 0, TierUnit.KWH_PER_KW: 1, TierUnit.KWH_DAILY: 2, TierUnit.KWH_PER_KW_DAILY: 3}
_METERING = {
    ExportRule.NET_METERING: 0,
    ExportRule.NET_BILLING: 2,
    ExportRule.NONE: 2,  # net billing with every sell price 0
    ExportRule.BUY_ALL_SELL_ALL: 4,
}


class NotInSam(ValueError):
    """A tariff SAM cannot express, with the field at fault named."""


def _limit(value: float) -> float:
    return NO_LIMIT if math.isinf(value) else value


def _renumbered(schedule: MonthHourSchedule) -> tuple[list[list[int]], list[list[int]], dict[int, int]]:
    """The schedule's tables in SAM's 1-based periods, and homegrid period -> SAM period."""
    if schedule.holidays or getattr(schedule, "holiday_rule", None) is not None:
        raise NotInSam("schedule.holidays: SAM's calendar has no holidays")
    used = sorted({int(p) for p in np.unique(np.concatenate([schedule.weekday.ravel(), schedule.weekend.ravel()]))})
    sam = {p: i + 1 for i, p in enumerate(used)}
    if len(sam) > 36:
        raise NotInSam(f"schedule: SAM takes at most 36 periods, got {len(sam)}")
    lookup = np.vectorize(sam.__getitem__)
    return lookup(schedule.weekday).tolist(), lookup(schedule.weekend).tolist(), sam


def sam_rates(tariff: Tariff, hour_ms: np.ndarray | None = None) -> dict[str, Any]:
    """SAM's ``ElectricityRates`` inputs for a tariff.

    Parameters
    ----------
    tariff : Tariff
        The tariff (its export terms included).
    hour_ms : numpy.ndarray or None
        Start of each of SAM's 8760 hours, UTC epoch milliseconds [ms]; needed for dynamic prices only.

    Returns
    -------
    dict
        ``ElectricityRates`` inputs, ready for ``assign``.

    Raises
    ------
    NotInSam
        What the tariff says that SAM cannot, named.
    """
    if tariff.billing_day != 1:
        raise NotInSam(f"billing_day: SAM bills calendar months, got day {tariff.billing_day}")
    if tariff.fixed_daily:
        raise NotInSam("fixed_daily: SAM has one monthly fixed charge (sam_bill's daily_fixed adds it per day)")
    energy = tariff.energy
    if energy.tier_scope is TierScope.PERIOD and energy.tiered:
        raise NotInSam("energy.tier_scope: SAM fills one set of monthly blocks with all periods' energy")
    energy.tier_limits()  # SAM's rule too: the same limits in every period
    weekday, weekend, sam = _renumbered(energy.schedule)
    export = tariff.export
    rows = []
    for p, number in sam.items():
        for i, tier in enumerate(energy.periods[p]):
            sell = 0.0 if export.rule is ExportRule.NONE else (
                tier.sell if export.sell_price is None else export.sell_price)
            rows.append([number, i + 1, _limit(tier.max_kwh), _UNIT[energy.tier_unit], tier.buy, sell])
    rates: dict[str, Any] = {
        "en_electricity_rates": 1,
        "rate_escalation": [0],
        "ur_metering_option": _METERING[export.rule],
        "ur_nm_credit_month": export.true_up_month - 1,
        "ur_nm_yearend_sell_rate": export.true_up_rate,
        "ur_nm_credit_rollover": 0,
        "ur_sell_eq_buy": 0,
        "ur_monthly_fixed_charge": tariff.fixed_monthly,
        "ur_monthly_min_charge": tariff.minimum_monthly,
        "ur_annual_min_charge": tariff.minimum_annual,
        "ur_ec_sched_weekday": weekday,
        "ur_ec_sched_weekend": weekend,
        "ur_ec_tou_mat": rows,
        "ur_en_ts_buy_rate": 0,
        "ur_en_ts_sell_rate": 0,
        "ur_dc_enable": 0,
        "ur_enable_billing_demand": 0,
        "TOU_demand_single_peak": 0,
    }
    demand = tariff.demand
    if demand is not None and demand.any:
        flat = [[m, i + 1, _limit(t.max_kw), t.price] for m, tiers in enumerate(demand.flat)
                for i, t in enumerate(tiers)]
        flat += [[m, 1, NO_LIMIT, 0.0] for m, tiers in enumerate(demand.flat) if not tiers]
        if demand.schedule is not None and demand.periods:
            dweekday, dweekend, dsam = _renumbered(demand.schedule)
            limits = {tuple(t.max_kw for t in demand.periods[p]) for p in dsam if demand.periods[p]} or {(NO_LIMIT,)}
            if len(limits) > 1:
                raise NotInSam("demand.periods: SAM needs the same demand blocks in every period of a month")
            blocks = next(iter(limits))
            tou = [[dsam[p], i + 1, _limit(t.max_kw), t.price] for p in dsam for i, t in enumerate(demand.periods[p])]
            tou += [[dsam[p], i + 1, _limit(m), 0.0]
                    for p in dsam if not demand.periods[p] for i, m in enumerate(blocks)]
        else:
            dweekday, dweekend, tou = [[1] * 24] * 12, [[1] * 24] * 12, [[1, 1, NO_LIMIT, 0.0]]
        rates |= {
            "ur_dc_enable": 1,
            "ur_dc_flat_mat": sorted(flat),
            "ur_dc_tou_mat": tou,
            "ur_dc_sched_weekday": dweekday,
            "ur_dc_sched_weekend": dweekend,
        }
    dynamic = tariff.dynamic
    if dynamic is not None:
        if hour_ms is None:
            raise NotInSam("dynamic: SAM's time-series prices need the hours' instants (hour_ms)")
        buy, known = dynamic.buy(hour_ms)
        if not known.all():
            raise NotInSam(f"dynamic: the price series misses {int((~known).sum())} of SAM's hours")
        rates |= {"ur_en_ts_buy_rate": 1, "ur_ts_buy_rate": buy.tolist()}
        sold = dynamic.sell(hour_ms) if export.sell_price is None else None  # a sell price overrides the series
        if sold is not None:
            sell, known = sold
            if not known.all():
                raise NotInSam(f"dynamic: the export price series misses {int((~known).sum())} of SAM's hours")
            if export.rule is ExportRule.NONE:
                sell = np.zeros_like(sell)
            rates |= {"ur_en_ts_sell_rate": 1, "ur_ts_sell_rate": sell.tolist()}
    return rates


@dataclass(frozen=True, eq=False)
class SamMonths:
    """SAM's figures per calendar month (January first), in the tariff's currency.

    ``bill`` is ``utility_bill_w_sys``; the parts are SAM's ``charge_w_sys_*`` (``energy`` is net of net-billing
    credits, as SAM's ``ec``), ``true_up`` the net-metering payout in the credit month, ``sales`` the
    buy-all-sell-all generation meter's credit; ``import_kwh`` / ``export_kwh`` the grid energy; ``peak_kw`` the
    month's highest single-step import, ``peak_load_kw`` the load's (the meter without the system, which
    buy-all-sell-all bills: SAM reports ``peak_kw`` 0 for it at sub-hourly steps). ``model`` keeps SAM's object
    alive: its outputs are views into its memory (dropping it while reading them segfaults, the memo's pitfall 1).
    """

    bill: np.ndarray
    energy: np.ndarray
    fixed: np.ndarray
    minimum: np.ndarray
    demand_flat: np.ndarray
    demand_tou: np.ndarray
    net_billing_credits: np.ndarray
    true_up: np.ndarray
    sales: np.ndarray
    import_kwh: np.ndarray
    export_kwh: np.ndarray
    peak_kw: np.ndarray
    peak_load_kw: np.ndarray
    model: Any

    @property
    def demand(self) -> np.ndarray:
        """Flat and time-of-use demand charges together."""
        return self.demand_flat + self.demand_tou


def sam_bill(
    tariff: Tariff,
    load_kw: np.ndarray,
    gen_kw: np.ndarray,
    hour_ms: np.ndarray | None = None,
    *,
    daily_fixed: bool = False,
) -> SamMonths:
    """SAM's monthly bill of a tariff for a year of load and generation (hourly or finer).

    Parameters
    ----------
    tariff : Tariff
        The tariff (:func:`sam_rates`).
    load_kw, gen_kw : numpy.ndarray
        Mean powers of 8760 x n steps (n = 1 to 60 a hour), both >= 0 (SAM nets them per step: gen - load > 0
        is export; its demand peak is the highest step). [kW]
    hour_ms : numpy.ndarray or None
        Start of each hour, UTC epoch milliseconds, for dynamic prices. [ms]
    daily_fixed : bool
        Add the tariff's daily fixed charge x the days of each month to ``fixed`` and ``bill`` (SAM has no daily
        charge; its URDB converter would bill 365/12 days every month).

    Returns
    -------
    SamMonths
    """
    load_kw = np.asarray(load_kw, dtype=np.float64)
    gen_kw = np.asarray(gen_kw, dtype=np.float64)
    steps = len(load_kw) // HOURS
    if load_kw.shape != gen_kw.shape or load_kw.shape != (steps * HOURS,) or not 1 <= steps <= 60:
        raise ValueError(f"load and gen: expected 8760 x (1 to 60) steps each, got {load_kw.shape} and {gen_kw.shape}")
    if daily_fixed and (tariff.minimum_monthly or tariff.minimum_annual):
        raise NotInSam("fixed_daily: added after SAM's run, it would miss SAM's minimum-charge comparison")
    if daily_fixed:
        rates = sam_rates(_without_daily(tariff), hour_ms)
    else:
        rates = sam_rates(tariff, hour_ms)
    m = sam_model(load_kw, gen_kw, rates)
    m.execute(0)
    o = m.Outputs

    def year1(name: str) -> np.ndarray:
        return np.array(getattr(o, name), dtype=np.float64).reshape(-1, 12)[1].copy()  # row 0 is "year 0"

    daily = tariff.fixed_daily * DAYS_IN_MONTH if daily_fixed else np.zeros(12)
    return SamMonths(
        bill=year1("utility_bill_w_sys_ym") + daily,
        energy=year1("charge_w_sys_ec_ym"),
        fixed=year1("charge_w_sys_fixed_ym") + daily,
        minimum=year1("charge_w_sys_minimum_ym"),
        demand_flat=year1("charge_w_sys_dc_fixed_ym"),
        demand_tou=year1("charge_w_sys_dc_tou_ym"),
        net_billing_credits=np.array(o.year1_net_billing_credits, dtype=np.float64),
        true_up=np.array(o.year1_true_up_credits, dtype=np.float64),
        sales=np.array(o.year1_two_meter_sales, dtype=np.float64),
        import_kwh=_monthly(np.clip(load_kw - gen_kw, 0, None)) / steps,
        export_kwh=_monthly(np.clip(gen_kw - load_kw, 0, None)) / steps,
        peak_kw=np.array(o.year1_monthly_peak_w_system, dtype=np.float64),
        peak_load_kw=np.array(o.year1_monthly_peak_wo_system, dtype=np.float64),
        model=m,
    )


def sam_model(load_kw: np.ndarray, gen_kw: np.ndarray, rates: dict[str, Any]) -> Any:
    """A one-year ``Utilityrate5`` model of load and generation [kW] under ``rates``, ready to ``execute(0)``.
    Keep it alive while its ``Outputs`` are read (they are views into it)."""
    m = ur5.new()
    m.Lifetime.analysis_period = 1
    m.Lifetime.system_use_lifetime_output = 0
    m.Lifetime.inflation_rate = 0
    m.SystemOutput.gen = gen_kw.tolist()
    m.SystemOutput.degradation = [0]
    m.Load.load = load_kw.tolist()
    m.Load.load_escalation = [0]
    m.ElectricityRates.assign(rates)
    return m


def _without_daily(tariff: Tariff) -> Tariff:
    return Tariff(**{**tariff.__dict__, "fixed_daily": 0.0})


def _monthly(steps: np.ndarray) -> np.ndarray:
    edges = np.concatenate([[0], np.cumsum(DAYS_IN_MONTH) * 24]) * (len(steps) // HOURS)
    return np.add.reduceat(steps, edges[:-1])
