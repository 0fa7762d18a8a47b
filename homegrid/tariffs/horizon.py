"""What the rest of the billing month charges a planning horizon: the import tiers left and the demand peaks to beat.

A tiered rate's next kWh costs the price of the block the month's running count is in, and a demand charge costs
only the peak above the month's peak so far. Both depend on the billing month so far, which the bill
(:func:`homegrid.tariffs.bill.price_bill`) already measures: :func:`horizon_charges` bills the month so far and
reads from it what each block has used (its energy lines) and the peaks so far (its demand, over the tariff's
demand window), so the blocks and peaks here are the bill's own.

- **Tiers** (:class:`TierBlocks`): per step of the horizon, the blocks its import can still fill, each block's
  energy left [Wh] and its price. A block is shared by the steps of one running count (a *group*): the billing
  month's steps, or with per-period tiers (:attr:`TierScope.PERIOD`) the month's steps in one period. Steps in the
  next billing month start from an empty count. Limits in kWh daily count the billing month's days, in kWh/kW the
  month's peak so far (the plan may raise it; the limits are not moved for that).
- **Demand** (:class:`DemandTerm`): per billing month, one term for the flat charge and one per demand period, each
  over its steps, with its peak so far [W] and the price of the next kW above it (the demand block the peak so far
  is in).

Pure: the month so far comes in as :class:`~homegrid.tariffs.bill.Metered` (the hub reads it from its store).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from homegrid.tariffs.bill import Metered, MonthBill, billing_months, price_bill
from homegrid.tariffs.bill import _fill_in_order as fill_in_order  # the bill's own tier engine
from homegrid.tariffs.bill import _tier_limits as tier_limits
from homegrid.tariffs.bill import _wall_days as wall_days
from homegrid.tariffs.model import DemandTier, Tariff, Tier, TierScope
from homegrid.tariffs.schedule import tou_periods
from homegrid.timezones import MINUTE_MS, utc_offset_ms

__all__ = ["DemandTerm", "HorizonCharges", "TierBlocks", "horizon_charges"]


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class TierBlocks:
    """Import priced in blocks over a horizon of ``n`` steps and ``k`` blocks.

    Parameters
    ----------
    group : numpy.ndarray of int, shape (n,)
        Which running count (row of ``size_wh``) each step's import fills.
    size_wh : numpy.ndarray, shape (groups, k)
        Energy left in each group's blocks, lowest block first; ``inf`` for an open block, 0 for a full one. [Wh]
    price : numpy.ndarray, shape (n, k)
        Each step's price of each block. [currency/kWh]
    """

    group: np.ndarray
    size_wh: np.ndarray
    price: np.ndarray

    def __post_init__(self) -> None:
        group = np.asarray(self.group, dtype=np.int64)
        size = np.atleast_2d(np.asarray(self.size_wh, dtype=np.float64))
        price = np.atleast_2d(np.asarray(self.price, dtype=np.float64))
        if group.ndim != 1 or price.shape != (len(group), size.shape[1]):
            raise ValueError(f"tier blocks: expected prices of shape ({len(group)}, {size.shape[1]}), "
                             f"got {price.shape}")
        if len(group) and (group.min() < 0 or group.max() >= len(size)):
            raise ValueError("tier blocks: a step's group has no blocks")
        if np.isnan(size).any() or (size < 0).any() or not np.isfinite(price).all():
            raise ValueError("tier blocks: sizes must be >= 0 and prices finite")
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "size_wh", size)
        object.__setattr__(self, "price", price)

    def open(self) -> np.ndarray:
        """Whether each step's blocks have room: (n, k) of bool."""
        room: np.ndarray = self.size_wh[self.group] > 0
        return room

    def marginal(self) -> np.ndarray:
        """Each step's price of the next kWh: its first block with room (the last when none has). [currency/kWh]"""
        room = self.open()
        first = np.where(room.any(axis=1), room.argmax(axis=1), self.price.shape[1] - 1)
        out: np.ndarray = self.price[np.arange(len(self.group)), first]
        return out

    def cost(self, import_wh: np.ndarray) -> float:
        """What each step's import costs through the blocks, each count filled in time order as the bill fills
        it (:func:`homegrid.tariffs.bill.price_bill`). [currency]"""
        kwh = np.asarray(import_wh, dtype=np.float64) / 1000.0
        total = 0.0
        for g, size in enumerate(self.size_wh):
            steps = self.group == g
            last = int(np.argmax(np.isinf(size))) if np.isinf(size).any() else len(size) - 1
            limits = np.cumsum(size[: last + 1]) / 1000.0
            split = fill_in_order(kwh[steps], limits)
            total += float((split * self.price[steps, : last + 1]).sum())
        return total

    @property
    def convex(self) -> bool:
        """Whether every step's blocks with room rise in price, so that a linear programme fills them in order."""
        price = np.where(self.open(), self.price, np.nan)
        for row in price:
            have = row[~np.isnan(row)]
            if (np.diff(have) < 0).any():
                return False
        return True


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class DemandTerm:
    """A demand charge on the horizon: ``price_per_kw`` on the peak of ``steps``' import above ``peak_w``.

    Parameters
    ----------
    steps : numpy.ndarray of bool
        The horizon's steps this charge's peak is taken over (its billing month, its demand period).
    price_per_kw : float
        The price of the next kW of peak. [currency/kW]
    peak_w : float
        The billing month's peak so far over these steps' period (0 in a month not begun). [W]
    name : str
        What it is, for notes: ``2026-01 flat``, ``2026-01 period 1``.
    period : int or None
        The demand period; None: the flat charge.
    window : numpy.ndarray of int or None
        The demand window of each step: steps with the same number are averaged into one window's power (the
        bill's fixed local windows, where the horizon's steps fill a whole window); None: each step its own.
    """

    steps: np.ndarray
    price_per_kw: float
    peak_w: float
    name: str
    period: int | None = None
    window: np.ndarray | None = None

    def windows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The term's steps, each one's window among them (0, 1, ...) and each window's number of steps."""
        t = np.flatnonzero(np.asarray(self.steps, dtype=bool))
        number = np.arange(len(self.steps)) if self.window is None else np.asarray(self.window)
        _, index, count = np.unique(number[t], return_inverse=True, return_counts=True)
        return t, index, count

    def cost(self, import_w: np.ndarray) -> float:
        """The charge on per-step imports: the price on the highest window average above the peak so far.
        [currency]"""
        t, index, count = self.windows()
        if not len(t):
            return 0.0
        average = np.bincount(index, weights=np.asarray(import_w, dtype=np.float64)[t]) / count
        return self.price_per_kw * max(0.0, float(average.max()) - self.peak_w) / 1000.0


@dataclass(frozen=True)
class HorizonCharges:
    """What :func:`horizon_charges` finds: the import blocks (None without tiers: dynamic prices, or one block in
    every period) and the demand terms (empty without demand charges)."""

    blocks: TierBlocks | None
    demand: tuple[DemandTerm, ...]
    month_so_far: MonthBill | None


def _next_kw_price(peak_kw: float, tiers: tuple[DemandTier, ...]) -> float:
    """The price of the demand block a peak's next kW falls in. [currency/kW]"""
    for t in tiers:
        if peak_kw < t.max_kw:
            return t.price
    return tiers[-1].price


def _blocks(tariff: Tariff, t_ms: np.ndarray, timezone: str,
            months: list[tuple[np.ndarray, MonthBill | None, float]]) -> TierBlocks:
    """The blocks left: ``months`` gives each billing month's steps, its bill so far (None: not begun), its days."""
    rates = tariff.energy
    periods = tou_periods(t_ms, timezone, rates.schedule)
    k = max(len(t) for t in rates.periods.values())
    table = {p: [tiers[min(i, len(tiers) - 1)].buy for i in range(k)] for p, tiers in rates.periods.items()}
    price = np.array([table[int(p)] for p in periods]).reshape(len(t_ms), k)
    group = np.zeros(len(t_ms), dtype=np.int64)
    sizes: list[np.ndarray] = []
    for steps, so_far, days in months:
        peak_kw = so_far.peak_demand_w / 1000.0 if so_far is not None else 0.0
        lines = so_far.energy_lines if so_far is not None else []
        scoped = rates.tier_scope is TierScope.PERIOD
        keys = sorted({int(p) for p in periods[steps]}) if scoped else [None]
        for key in keys:
            tiers = rates.periods[key] if key is not None else tuple(Tier(0.0, 0.0, m) for m in rates.tier_limits())
            limits = tier_limits(tiers, rates.tier_unit, peak_kw, days)
            width = np.diff(np.concatenate([[0.0], limits]))
            used = np.zeros(len(limits))
            for line in lines:
                if key is None or line["period"] == key:
                    used[int(line["tier"]) - 1] += float(line["kwh"])
            left = np.zeros(k)
            left[: len(limits)] = np.clip(width - used, 0.0, None) * 1000.0
            group[steps & ((periods == key) if key is not None else True)] = len(sizes)
            sizes.append(left)
    return TierBlocks(group, np.array(sizes).reshape(len(sizes), k), price)


def _windows(t_ms: np.ndarray, step_ms: int, window_ms: int, timezone: str) -> np.ndarray | None:
    """Each step's demand window number: the bill's fixed local windows where the steps fill a whole one, else a
    number of the step's own (None when every step is its own window)."""
    if step_ms >= window_ms or window_ms % step_ms:
        return None
    start = t_ms - (t_ms + utc_offset_ms(t_ms, timezone)) % window_ms
    _, index, counts = np.unique(start, return_inverse=True, return_counts=True)
    whole: np.ndarray = counts[index] == window_ms // step_ms
    return np.where(whole, index, len(t_ms) + np.arange(len(t_ms)))


def _demand(tariff: Tariff, t_ms: np.ndarray, step_ms: int, timezone: str,
            months: list[tuple[str, np.ndarray, MonthBill | None]]) -> tuple[DemandTerm, ...]:
    demand = tariff.demand
    if demand is None or not demand.any:
        return ()
    window = _windows(t_ms, step_ms, demand.window_min * MINUTE_MS, timezone)
    periods = tou_periods(t_ms, timezone, demand.schedule) if demand.schedule is not None else None
    terms: list[DemandTerm] = []
    for label, steps, so_far in months:
        flat = demand.flat[int(label[5:]) - 1]
        peak_w = so_far.peak_demand_w if so_far is not None else 0.0
        if flat and steps.any():
            terms.append(DemandTerm(steps, _next_kw_price(peak_w / 1000.0, flat), peak_w, f"{label} flat",
                                    window=window))
        if periods is None:
            continue
        for p in sorted({int(x) for x in periods[steps]}):
            tiers = demand.periods[p]
            if not tiers:
                continue
            peak_w = max((float(line["peak_w"]) for line in (so_far.demand_lines if so_far is not None else [])
                          if line["period"] == p), default=0.0)
            terms.append(DemandTerm(steps & (periods == p), _next_kw_price(peak_w / 1000.0, tiers), peak_w,
                                    f"{label} period {p}", p, window))
    return tuple(terms)


def horizon_charges(tariff: Tariff, t_ms: np.ndarray, step_ms: int, timezone: str,
                    month_so_far: Metered) -> HorizonCharges:
    """The tiers and demand charges ahead of a horizon, from the billing month so far (the module's docstring).

    Parameters
    ----------
    tariff : Tariff
    t_ms : numpy.ndarray
        The horizon's step starts, rising, UTC epoch ms. [ms]
    step_ms : int
        The horizon's step. [ms]
    timezone : str
        The site's IANA zone.
    month_so_far : Metered
        The meter (as the tariff's export rule meters it) from the start of the billing month ``t_ms[0]`` is in;
        intervals from ``t_ms[0]`` on are left out. [Wh]

    Returns
    -------
    HorizonCharges
        ``blocks`` is None when the tariff has no tiers to plan (dynamic prices, one block in every period).
    """
    t_ms = np.asarray(t_ms, dtype=np.int64)
    if not len(t_ms):
        return HorizonCharges(None, (), None)
    start = int(t_ms[0])
    months = billing_months(start, int(t_ms[-1]) + step_ms, timezone, tariff.billing_day)
    label0, a0, _ = months[0]
    # the month so far's blocks and peaks; a dynamic price series need not reach back to the month's start for them
    plain = dataclasses.replace(tariff, dynamic=None)
    bill_so_far = price_bill(plain, month_so_far, timezone, a0, start).months[-1] if start > a0 else None
    parts = []
    for label, a, b in months:
        so_far = bill_so_far if label == label0 else None
        parts.append((label, (t_ms >= a) & (t_ms < b), so_far, wall_days(a, b, timezone)))
    blocks = None
    if tariff.dynamic is None and tariff.energy.tiered:
        blocks = _blocks(tariff, t_ms, timezone, [(steps, so_far, days) for _, steps, so_far, days in parts])
    demand = _demand(tariff, t_ms, step_ms, timezone, [(label, steps, so_far) for label, steps, so_far, _ in parts])
    return HorizonCharges(blocks, demand, bill_so_far)

