"""The utility bill of metered grid energy under a tariff, per billing month, as the utility computes it.

The rules are NREL SAM's ``Utilityrate5`` (``ssc/cmod_utilityrate5.cpp``) where SAM defines them, so a bill here
equals SAM's on the same hourly series (``tests/test_bill_sam.py`` checks it):

- **Tiers** fill with the billing month's energy. With net billing, buy-all-sell-all and no export credit they
  fill in time order from a running count (imports and exports each their own); with net metering the month's
  net use is split over the tiers pro rata between the periods (SAM's ``ur_calc``). A tier's limit in kWh/kW
  counts the month's peak demand, in kWh daily the billing month's days.
- **Net metering** nets imports against exports by time-of-use period within the month; a period's surplus is
  carried into the next month's period at the same time of day (the weekday schedule at 00, 05, 11 and 17 h),
  and the year's running surplus (the month's total net export, carried) is paid at the true-up rate in the
  true-up month, after which the count starts again. A month's energy charge is at least zero (negative buy
  prices cannot make it a credit).
- **Net billing** and **buy-all-sell-all** value each interval's export at the sell price (the export terms'
  ``sell_price``, else the dynamic export series, else each tier's sell price); the two differ in what is metered
  (:mod:`homegrid.tariffs.meters` builds each rule's meters), and buy-all-sell-all's minimum ignores the sale.
- **Demand** is the highest import averaged over the tariff's window (fixed local windows; the data's own step
  when that is longer), flat per month and per demand period, each with its blocks.
- **Minimums**: a month's minimum tops up ``max(energy - credits + demand + fixed, 0)``; the annual minimum tops
  up December's bill against the year's months.

What SAM does not have: billing days other than the 1st, daily fixed charges, taxes, per-period tiers, demand
windows, DST and holidays, and spans that cut a billing month (its monthly fixed charge and minimum are then
prorated by the time covered; tier limits are not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.tariffs.model import (
    DemandCharges,
    DemandTier,
    ExportRule,
    Tariff,
    TariffError,
    Tier,
    TierScope,
    TierUnit,
)
from homegrid.tariffs.schedule import MonthHourSchedule, tou_periods
from homegrid.timezones import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    local_date,
    local_day_bounds,
    local_isoformat,
    utc_offset_ms,
)

__all__ = ["Bill", "Metered", "MonthBill", "billing_months", "price_bill"]

_ROLLOVER_HOURS = (0, 5, 11, 17)  # SAM's rollover_periods: the weekday periods at these hours map month to month


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class Metered:
    """Grid energy through the meter, per interval.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Interval starts, rising, UTC epoch ms. [ms]
    step_ms : int
        Interval length. [ms]
    import_wh, export_wh : numpy.ndarray
        Energy delivered by and to the utility in each interval, both >= 0. [Wh]
    """

    t_ms: np.ndarray
    step_ms: int
    import_wh: np.ndarray
    export_wh: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.t_ms, dtype=np.int64)
        imp = np.asarray(self.import_wh, dtype=np.float64)
        exp = np.asarray(self.export_wh, dtype=np.float64)
        if not (t.ndim == imp.ndim == exp.ndim == 1 and len(t) == len(imp) == len(exp)):
            raise ValueError("metered: times, imports and exports must be 1-d arrays of one length")
        if self.step_ms <= 0 or (HOUR_MS % self.step_ms and self.step_ms % HOUR_MS):
            raise ValueError(f"metered: step must divide an hour or be whole hours, got {self.step_ms} ms")
        if len(t) and (np.diff(t) <= 0).any():
            raise ValueError("metered: interval starts must rise")
        for name, a in (("import_wh", imp), ("export_wh", exp)):
            if not np.isfinite(a).all() or (a < 0).any():
                raise ValueError(f"metered: {name} must be finite and >= 0")
        object.__setattr__(self, "t_ms", t)
        object.__setattr__(self, "import_wh", imp)
        object.__setattr__(self, "export_wh", exp)

    def between(self, start_ms: int, end_ms: int) -> Metered:
        """The intervals starting in ``[start_ms, end_ms)``."""
        a, b = np.searchsorted(self.t_ms, [start_ms, end_ms])
        return Metered(self.t_ms[a:b], self.step_ms, self.import_wh[a:b], self.export_wh[a:b])


@dataclass
class MonthBill:
    """One billing month's bill [currency], energy [Wh] and peak [W]."""

    month: str
    start_ms: int
    end_ms: int
    days: float
    fraction: float
    fixed: float = 0.0
    energy: float = 0.0
    demand: float = 0.0
    minimum: float = 0.0
    export_credit: float = 0.0
    true_up_credit: float = 0.0
    taxes: float = 0.0
    import_wh: float = 0.0
    export_wh: float = 0.0
    peak_demand_w: float = 0.0
    energy_lines: list[dict[str, Any]] = field(default_factory=list)
    demand_lines: list[dict[str, Any]] = field(default_factory=list)
    carried_in_kwh: float = 0.0
    carried_out_kwh: float = 0.0
    missing_hours: int = 0

    @property
    def subtotal(self) -> float:
        """The bill before taxes. [currency]"""
        return self.fixed + self.energy + self.demand + self.minimum - self.export_credit

    @property
    def total(self) -> float:
        """The bill with taxes. [currency]"""
        return self.subtotal + self.taxes


@dataclass
class Bill:
    """A bill over a span: its billing months and the hours without data."""

    tariff: str
    currency: str
    export_rule: ExportRule
    timezone: str
    start_ms: int
    end_ms: int
    months: list[MonthBill]
    missing_hours: list[str]
    demand_window_min: int | None

    @property
    def total(self) -> float:
        """The sum of the months' totals. [currency]"""
        return sum(m.total for m in self.months)

    def as_json(self) -> dict[str, Any]:
        """The bill as JSON: money rounded to 1/10000 of the currency, energy to Wh, power to W."""

        def money(x: float) -> float:
            return round(x + 0.0, 4)

        months = []
        for m in self.months:
            months.append({
                "month": m.month,
                "from": local_isoformat(np.array([m.start_ms]), self.timezone)[0],
                "to": local_isoformat(np.array([m.end_ms]), self.timezone)[0],
                "days": round(m.days, 4),
                "total": money(m.total),
                "fixed": money(m.fixed),
                "energy": money(m.energy),
                "demand": money(m.demand),
                "minimum": money(m.minimum),
                "export_credit": money(m.export_credit),
                "true_up_credit": money(m.true_up_credit),
                "taxes": money(m.taxes),
                "import_wh": round(m.import_wh),
                "export_wh": round(m.export_wh),
                "peak_demand_w": round(m.peak_demand_w),
                "carried_in_kwh": round(m.carried_in_kwh, 3),
                "carried_out_kwh": round(m.carried_out_kwh, 3),
                "missing_hours": m.missing_hours,
                "energy_lines": m.energy_lines,
                "demand_lines": m.demand_lines,
            })
        return {
            "tariff": self.tariff,
            "currency": self.currency,
            "export_rule": str(self.export_rule),
            "timezone": self.timezone,
            "from": local_isoformat(np.array([self.start_ms]), self.timezone)[0],
            "to": local_isoformat(np.array([self.end_ms]), self.timezone)[0],
            "demand_window_min": self.demand_window_min,
            "total": money(self.total),
            "months": months,
            "missing_hours": self.missing_hours,
        }


# ----------------------------------------------------------------------------- calendar


def _month_start(year: int, month: int, day: int, tz: ZoneInfo) -> int:
    y, m = year + (month - 1) // 12, (month - 1) % 12 + 1
    return local_day_bounds(date(y, m, day), tz)[0]


def billing_months(start_ms: int, end_ms: int, timezone: str, billing_day: int = 1) -> list[tuple[str, int, int]]:
    """The billing months overlapping ``[start_ms, end_ms)``: label ``YYYY-MM`` (the month it starts in), and its
    first instant and the next month's, UTC epoch ms. A billing month starts at local midnight of
    ``billing_day``."""
    tz = ZoneInfo(timezone)
    first = local_date(start_ms, tz)
    year, month = first.year, first.month
    if first.day < billing_day:
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    out = []
    while True:
        a = _month_start(year, month, billing_day, tz)
        b = _month_start(year, month + 1, billing_day, tz)
        if a >= end_ms:
            break
        out.append((f"{year:04d}-{month:02d}", a, b))
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return out


def _wall_days(a_ms: int, b_ms: int, timezone: str) -> float:
    """Local calendar days from ``a_ms`` to ``b_ms`` (a 23-hour day counts one). [d]"""
    off = utc_offset_ms(np.array([a_ms, b_ms]), timezone)
    return float((b_ms + off[1]) - (a_ms + off[0])) / DAY_MS


# ----------------------------------------------------------------------------- tiers


def _tier_limits(tiers: tuple[Tier, ...], unit: TierUnit, peak_kw: float, days: float) -> np.ndarray:
    """Upper limits of the blocks in kWh for one billing month."""
    scale = {TierUnit.KWH: 1.0, TierUnit.KWH_DAILY: days, TierUnit.KWH_PER_KW: peak_kw,
             TierUnit.KWH_PER_KW_DAILY: peak_kw * days}[unit]
    return np.array([t.max_kwh * scale for t in tiers])


def _fill_in_order(kwh: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Each interval's kWh split over the blocks as a running count fills them: (intervals x tiers)."""
    cum = np.cumsum(kwh)
    prev = cum - kwh
    lower = np.concatenate([[0.0], limits[:-1]])
    split: np.ndarray = np.clip(cum[:, None], lower, limits) - np.clip(prev[:, None], lower, limits)
    return split


def _pro_rata(use: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """SAM's net-metering split: the month's total use over the blocks, each period its share: (periods x tiers)."""
    total = use.sum()
    if total <= 0:
        return np.zeros((len(use), len(limits)))
    lower = np.concatenate([[0.0], limits[:-1]])
    in_tier = np.clip(total, lower, limits) - lower
    return np.outer(use / total, in_tier)


# ----------------------------------------------------------------------------- demand


def _windows(t_ms: np.ndarray, kwh: np.ndarray, window_ms: int, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Average import power per local demand window: window starts [ms] and powers [kW]."""
    if not len(t_ms):
        return t_ms, kwh
    off = utc_offset_ms(t_ms, timezone)
    start = t_ms - (t_ms + off) % window_ms
    starts, index = np.unique(start, return_inverse=True)
    energy = np.bincount(index, weights=kwh, minlength=len(starts))
    kw: np.ndarray = energy * HOUR_MS / window_ms
    return starts, kw


def _demand_cost(peak_kw: float, tiers: tuple[DemandTier, ...]) -> float:
    cost, lower = 0.0, 0.0
    for t in tiers:
        cost += (min(peak_kw, t.max_kw) - lower) * t.price
        if peak_kw < t.max_kw:
            break
        lower = t.max_kw
    return cost


# ----------------------------------------------------------------------------- the bill


@dataclass
class _Carry:
    """What net metering carries from one billing month to the next."""

    surplus_by_period: dict[int, float] = field(default_factory=dict)  # kWh, by the period they were earned in
    from_month: int | None = None  # calendar month index (0-11) of the month that earned them
    year_surplus_kwh: float = 0.0


def _rollover_target(schedule: MonthHourSchedule, period: int, from_month: int, to_month: int) -> int | None:
    """The period of ``to_month`` at the time of day ``period`` held in ``from_month`` (SAM's transfer_surplus)."""
    source = [int(schedule.weekday[from_month, h]) for h in _ROLLOVER_HOURS]
    if period not in source:
        return None
    return int(schedule.weekday[to_month, _ROLLOVER_HOURS[source.index(period)]])


def price_bill(tariff: Tariff, metered: Metered, timezone: str, start_ms: int, end_ms: int) -> Bill:
    """The bill of the metered energy from ``start_ms`` to ``end_ms`` under ``tariff``.

    Parameters
    ----------
    tariff : Tariff
        The rate, with the export terms to apply (:meth:`Tariff.with_export`).
    metered : Metered
        Grid energy per interval. [Wh]
    timezone : str
        The site's IANA zone: billing months, time-of-use hours and demand windows are local.
    start_ms, end_ms : int
        The span billed, UTC epoch ms. [ms]

    Returns
    -------
    Bill
        One :class:`MonthBill` per billing month the span touches, and every local hour of the span with no
        metered interval (``missing_hours``), which is not priced.

    Raises
    ------
    TariffError
        Dynamic prices that do not cover a metered interval.
    """
    if end_ms <= start_ms:
        raise ValueError("bill: the span must end after it starts")
    metered = metered.between(start_ms, end_ms)
    months = billing_months(start_ms, end_ms, timezone, tariff.billing_day)
    window_min = None
    if tariff.demand is not None and tariff.demand.any:
        window_min = max(tariff.demand.window_min, metered.step_ms // MINUTE_MS)
    missing = _missing_hours(metered, start_ms, end_ms, timezone)
    bill = Bill(tariff.name, tariff.currency, tariff.export.rule, timezone, start_ms, end_ms, [],
                local_isoformat(missing, timezone), window_min)
    carry = _Carry()
    year_bills: dict[int, list[tuple[MonthBill, float]]] = {}
    for label, a, b in months:
        s, e = max(a, start_ms), min(b, end_ms)
        month = MonthBill(label, s, e, _wall_days(s, e, timezone), (e - s) / (b - a))
        part = metered.between(s, e)
        month_index = int(label[5:]) - 1
        _price_month(tariff, month, part, timezone, month_index, _wall_days(a, b, timezone), carry)
        # SAM: the minimum tops up energy + demand + fixed net of net-billing credits (not the true-up, paid after,
        # nor buy-all-sell-all's sale, on its own meter)
        credits = month.export_credit - month.true_up_credit
        if tariff.export.rule is ExportRule.BUY_ALL_SELL_ALL:
            credits = 0.0
        floor = max(month.energy - credits + month.demand + month.fixed, 0.0)
        month.minimum = max(tariff.minimum_monthly * month.fraction - floor, 0.0)
        year_bills.setdefault(int(label[:4]), []).append((month, floor))
        if month_index == 11 and tariff.minimum_annual > 0:
            _annual_minimum(tariff, year_bills[int(label[:4])], timezone)
        month.taxes = max(month.subtotal, 0.0) * tariff.tax_percent / 100
        month.missing_hours = int(((missing >= s) & (missing < e)).sum())
        bill.months.append(month)
    return bill


def _annual_minimum(tariff: Tariff, months: list[tuple[MonthBill, float]], timezone: str) -> None:
    december = months[-1][0]
    year = int(december.month[:4])
    tz = ZoneInfo(timezone)
    whole = local_day_bounds(date(year + 1, 1, 1), tz)[0] - local_day_bounds(date(year, 1, 1), tz)[0]
    covered = sum(m.end_ms - m.start_ms for m, _ in months) / whole
    shortfall = tariff.minimum_annual * covered - sum(floor for _, floor in months)
    december.minimum += max(shortfall, 0.0)


def _price_month(
    tariff: Tariff, month: MonthBill, part: Metered, timezone: str, month_index: int, month_days: float,
    carry: _Carry,
) -> None:
    imp, exp = part.import_wh / 1000.0, part.export_wh / 1000.0
    month.import_wh, month.export_wh = float(part.import_wh.sum()), float(part.export_wh.sum())
    month.fixed = tariff.fixed_monthly * month.fraction + tariff.fixed_daily * month.days
    peak_kw = _price_demand(tariff.demand, month, part, timezone, month_index)
    rule = tariff.export.rule
    if rule is ExportRule.NET_METERING:
        _net_metering(tariff, month, part, timezone, month_index, month_days, peak_kw, carry)
        return
    periods = tou_periods(part.t_ms, timezone, tariff.energy.schedule) if len(part.t_ms) else part.t_ms
    if tariff.dynamic is not None:
        buy, known = tariff.dynamic.buy(part.t_ms)
        _require_prices(known, part.t_ms, timezone, "import")
        month.energy = float(imp @ buy)
        month.energy_lines.append({"period": None, "name": "dynamic", "tier": None,
                                   "kwh": round(float(imp.sum()), 4), "price": None, "cost": round(month.energy, 4)})
    else:
        month.energy = _tiered_cost(tariff, month, imp, periods, peak_kw, month_days, "buy")
    if rule is ExportRule.NONE or not len(exp):
        return
    if tariff.export.sell_price is not None:
        month.export_credit = float(exp.sum()) * tariff.export.sell_price
    elif tariff.dynamic is not None and tariff.dynamic.export_price is not None:
        sold = tariff.dynamic.sell(part.t_ms)
        assert sold is not None
        sell, known = sold
        _require_prices(known, part.t_ms, timezone, "export")
        month.export_credit = float(exp @ sell)
    else:
        month.export_credit = _tiered_cost(tariff, month, exp, periods, peak_kw, month_days, "sell")


def _require_prices(known: np.ndarray, t_ms: np.ndarray, timezone: str, what: str) -> None:
    if not known.all():
        first = local_isoformat(t_ms[~known][:1], timezone)[0]
        raise TariffError(f"prices: the {what} price series does not cover {int((~known).sum())} metered "
                          f"intervals, the first at {first}")


def _tiered_cost(
    tariff: Tariff, month: MonthBill, kwh: np.ndarray, periods: np.ndarray, peak_kw: float, days: float,
    side: str,
) -> float:
    """Cost (``side="buy"``) or credit (``"sell"``) of per-interval kWh through the blocks in time order."""
    rates = tariff.energy
    total = 0.0
    if rates.tier_scope is TierScope.MONTH:  # one running count over every period
        limits = _tier_limits(tuple(Tier(0.0, 0.0, m) for m in rates.tier_limits()), rates.tier_unit, peak_kw, days)
        month_split = _fill_in_order(kwh, limits)
    for p in np.unique(periods):
        tiers = rates.periods[int(p)]
        here = periods == p
        if rates.tier_scope is TierScope.MONTH:
            used = month_split[here].sum(axis=0)
        else:
            used = _fill_in_order(kwh[here], _tier_limits(tiers, rates.tier_unit, peak_kw, days)).sum(axis=0)
        for k, tier in enumerate(tiers):
            if used[k] > 0:
                cost = float(used[k] * getattr(tier, side))
                total += cost
                if side == "buy":
                    month.energy_lines.append({"period": int(p), "name": rates.name(int(p)), "tier": k + 1,
                                               "kwh": round(float(used[k]), 4), "price": tier.buy,
                                               "cost": round(cost, 4)})
    return total


def _net_metering(
    tariff: Tariff, month: MonthBill, part: Metered, timezone: str, month_index: int, month_days: float,
    peak_kw: float, carry: _Carry,
) -> None:
    rates = tariff.energy
    schedule = rates.schedule
    periods = tou_periods(part.t_ms, timezone, schedule) if len(part.t_ms) else part.t_ms
    keys = sorted(rates.periods)
    net = {p: 0.0 for p in keys}  # + surplus, - use [kWh]
    fresh_year = month_index == tariff.export.true_up_month % 12  # the month after the true-up starts over
    if not fresh_year and carry.from_month is not None:
        for p, kwh in carry.surplus_by_period.items():
            target = _rollover_target(schedule, p, carry.from_month, month_index)
            if target is not None and target in net:
                net[target] += kwh
    net_kwh = np.bincount(np.searchsorted(keys, periods), weights=(part.export_wh - part.import_wh) / 1000.0,
                          minlength=len(keys))
    for i, p in enumerate(keys):
        net[p] += float(net_kwh[i])
    month.carried_in_kwh = sum(carry.surplus_by_period.values()) if not fresh_year else 0.0
    use = np.array([max(-net[p], 0.0) for p in keys])
    surplus = {p: net[p] for p in keys if net[p] > 0}
    if rates.tier_scope is TierScope.MONTH:
        limits = _tier_limits(tuple(Tier(0.0, 0.0, m) for m in rates.tier_limits()), rates.tier_unit, peak_kw,
                              month_days)
        split = _pro_rata(use, limits)
    else:
        split = np.zeros((len(keys), max(len(t) for t in rates.periods.values())))
        for i, p in enumerate(keys):
            lim = _tier_limits(rates.periods[p], rates.tier_unit, peak_kw, month_days)
            split[i, : len(lim)] = _pro_rata(use[i : i + 1], lim)[0]
    for i, p in enumerate(keys):
        for k, tier in enumerate(rates.periods[p]):
            if split[i, k] > 0:
                cost = float(split[i, k] * tier.buy)
                month.energy += cost
                month.energy_lines.append({"period": p, "name": rates.name(p), "tier": k + 1,
                                           "kwh": round(float(split[i, k]), 4), "price": tier.buy,
                                           "cost": round(cost, 4)})
    # SAM (ur_calc): a net-metering month's energy charge is never below zero; only negative buy prices make it so
    month.energy = max(month.energy, 0.0)
    total_net = float((part.export_wh.sum() - part.import_wh.sum()) / 1000.0)
    carry.year_surplus_kwh = max((0.0 if fresh_year else carry.year_surplus_kwh) + total_net, 0.0)
    carry.surplus_by_period, carry.from_month = surplus, month_index
    month.carried_out_kwh = sum(surplus.values())
    if month_index == tariff.export.true_up_month - 1:
        month.true_up_credit = carry.year_surplus_kwh * tariff.export.true_up_rate
        month.export_credit = month.true_up_credit


def _price_demand(
    demand: DemandCharges | None, month: MonthBill, part: Metered, timezone: str, month_index: int
) -> float:
    """Demand charges of the month into ``month``; returns the month's peak [kW] (for kWh/kW tiers)."""
    window_ms = max((demand.window_min if demand else 15) * MINUTE_MS, part.step_ms)
    starts, kw = _windows(part.t_ms, part.import_wh / 1000.0, window_ms, timezone)
    peak = float(kw.max()) if len(kw) else 0.0
    month.peak_demand_w = peak * 1000.0
    if demand is None or not demand.any:
        return peak
    if demand.flat[month_index]:
        cost = _demand_cost(peak, demand.flat[month_index])
        month.demand += cost
        month.demand_lines.append({"period": None, "peak_w": round(peak * 1000.0), "cost": round(cost, 4)})
    if demand.schedule is not None and len(starts):
        periods = tou_periods(starts, timezone, demand.schedule)
        for p in np.unique(periods):
            tiers = demand.periods[int(p)]
            if tiers:
                p_peak = float(kw[periods == p].max())
                cost = _demand_cost(p_peak, tiers)
                month.demand += cost
                month.demand_lines.append({"period": int(p), "peak_w": round(p_peak * 1000.0),
                                           "cost": round(cost, 4)})
    return peak


# ----------------------------------------------------------------------------- coverage


def _missing_hours(metered: Metered, start_ms: int, end_ms: int, timezone: str) -> np.ndarray:
    """Starts of the span's local clock hours with no metered interval in them (the first cut to the span). [ms]"""
    off = int(utc_offset_ms(np.array([start_ms]), timezone)[0])
    first = start_ms - (start_ms + off) % HOUR_MS
    hours = np.arange(first, end_ms, HOUR_MS, dtype=np.int64)
    if not len(hours):
        return hours
    ends = metered.t_ms + metered.step_ms  # an interval covers the hours it overlaps
    a = np.clip((metered.t_ms - first) // HOUR_MS, 0, len(hours) - 1)
    b = np.clip((ends - 1 - first) // HOUR_MS, 0, len(hours) - 1)
    mark = np.zeros(len(hours) + 1, dtype=np.int64)
    np.add.at(mark, a, 1)
    np.add.at(mark, b + 1, -1)
    covered = np.cumsum(mark)[:-1] > 0
    missing: np.ndarray = np.maximum(hours[~covered], start_ms)
    return missing
