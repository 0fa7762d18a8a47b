"""A tariff as data: what each kWh imported costs, what each kWh exported earns, and the charges around them.

The model follows the OpenEI Utility Rate Database (URDB) and NREL SAM's utility-rate module, which most US
rates are written in, with what European dynamic tariffs add (a price series, an adder and a percentage):

- **energy** (:class:`EnergyRates`): time-of-use periods from a month-by-hour schedule, each with blocks
  (:class:`Tier`) of a buy and a sell price per kWh;
- **fixed** charges per month and per day, a monthly and an annual **minimum**;
- **demand** (:class:`DemandCharges`): the month's highest average import power over the demand window,
  flat (by month) and per time-of-use period, each with its own blocks;
- **export** (:class:`ExportTerms`): net metering, net billing, buy-all-sell-all or no credit;
- **dynamic** prices (:class:`DynamicPrices`): a per-interval price series replacing the energy table;
- **taxes** as a percentage of each month's total.

Prices are in the tariff's currency per kWh (energy) or per kW (demand); money is in that currency.
Readers (URDB JSON, homegrid's TOML) build these objects; :mod:`homegrid.tariffs.bill` prices metered energy
with them. Every object checks itself when made and names what is wrong.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from homegrid.tariffs.schedule import MonthHourSchedule

__all__ = [
    "DemandCharges",
    "DemandTier",
    "DynamicPrices",
    "EnergyRates",
    "ExportRule",
    "ExportTerms",
    "Tariff",
    "TariffError",
    "Tier",
    "TierScope",
    "TierUnit",
]

INFINITE = math.inf


class TariffError(ValueError):
    """A tariff that cannot be priced, with the field at fault named (``energy.periods[2].tiers[0].buy``)."""


class ExportRule(enum.StrEnum):
    """How exported energy is credited (NREL SAM's ``ur_metering_option`` in brackets)."""

    NET_METERING = "net-metering"  # kWh netted per month and time-of-use period, surplus carried [0]
    NET_BILLING = "net-billing"  # each interval's export valued at the sell price [2]
    BUY_ALL_SELL_ALL = "buy-all-sell-all"  # all load bought, all solar sold, on two meters [4]
    NONE = "none"  # export earns nothing


class TierUnit(enum.StrEnum):
    """What a tier's upper limit counts (SAM's ``max_unit`` in brackets)."""

    KWH = "kWh"  # kWh per billing month [0]
    KWH_PER_KW = "kWh/kW"  # kWh per kW of the month's peak demand [1]
    KWH_DAILY = "kWh daily"  # kWh per day of the billing month [2]
    KWH_PER_KW_DAILY = "kWh/kW daily"  # kWh per kW of peak demand per day [3]


class TierScope(enum.StrEnum):
    """Which energy fills a tier: the month's across all periods (URDB and SAM), or each period's own."""

    MONTH = "month"
    PERIOD = "period"


def _finite(name: str, value: float, *, minimum: float | None = None, infinite: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TariffError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not infinite):
        raise TariffError(f"{name}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise TariffError(f"{name}: must be >= {minimum:g}, got {value:g}")
    return value


@dataclass(frozen=True)
class Tier:
    """One block of a period's energy price.

    Parameters
    ----------
    buy : float
        Import price [currency/kWh].
    sell : float
        Export price for net billing and buy-all-sell-all [currency/kWh].
    max_kwh : float
        Upper limit of the block in the rate's :class:`TierUnit`; ``inf`` for the last block.
    """

    buy: float
    sell: float = 0.0
    max_kwh: float = INFINITE

    def checked(self, name: str) -> Tier:
        """This tier with its numbers checked (``name`` locates it in errors)."""
        return Tier(
            _finite(f"{name}.buy", self.buy),
            _finite(f"{name}.sell", self.sell),
            _finite(f"{name}.max", self.max_kwh, minimum=0.0, infinite=True),
        )


def _tiers(name: str, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
    if not tiers:
        raise TariffError(f"{name}: a period needs at least one tier")
    checked = tuple(t.checked(f"{name}[{i}]") for i, t in enumerate(tiers))
    limits = [t.max_kwh for t in checked]
    if any(b <= a for a, b in itertools.pairwise(limits)):
        raise TariffError(f"{name}: tier limits must rise, got {limits}")
    if not math.isinf(limits[-1]):
        checked = (*checked[:-1], Tier(checked[-1].buy, checked[-1].sell, INFINITE))  # the last block is open
    return checked


def _used_periods(schedules: tuple[MonthHourSchedule, ...]) -> set[int]:
    return {int(p) for s in schedules for p in np.unique(np.concatenate([s.weekday.ravel(), s.weekend.ravel()]))}


@dataclass(frozen=True)
class EnergyRates:
    """Energy prices by time-of-use period.

    Parameters
    ----------
    schedule : MonthHourSchedule
        Which period each local month and hour is in (weekday, weekend and holiday tables).
    periods : mapping of int to tuple of Tier
        Each period's blocks, lowest first. Every period the schedule names must be here.
    tier_unit : TierUnit
        What the blocks' limits count.
    tier_scope : TierScope
        Whether a month's blocks fill with all periods' energy together (URDB, SAM) or per period.
    names : mapping of int to str
        The periods' names where the tariff gives them (homegrid's TOML: "peak", "off-peak"); URDB has none.
    """

    schedule: MonthHourSchedule
    periods: Mapping[int, tuple[Tier, ...]]
    tier_unit: TierUnit = TierUnit.KWH
    tier_scope: TierScope = TierScope.MONTH
    names: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        periods = {int(p): _tiers(f"energy.periods[{p}].tiers", tuple(t)) for p, t in self.periods.items()}
        missing = sorted(_used_periods((self.schedule,)) - set(periods))
        if missing:
            raise TariffError(f"energy schedule: period {missing[0]} is in the schedule but has no price")
        object.__setattr__(self, "periods", periods)
        names = {int(p): str(n) for p, n in self.names.items()}
        if set(names) - set(periods):
            raise TariffError(f"energy.names: period {min(set(names) - set(periods))} has a name but no price")
        object.__setattr__(self, "names", names)

    def name(self, period: int) -> str:
        """A period's name, or ``period N`` where the tariff gives none."""
        return self.names.get(period, f"period {period}")

    @property
    def tiered(self) -> bool:
        """Whether any period has more than one block."""
        return any(len(t) > 1 for t in self.periods.values())

    def tier_limits(self) -> tuple[float, ...]:
        """The blocks' limits when all periods share them (needed when the scope is the month)."""
        limits = {tuple(t.max_kwh for t in tiers) for tiers in self.periods.values()}
        if len(limits) > 1:
            raise TariffError(
                "energy.periods: tiers filled by the month's energy need the same limits in every period, "
                f"got {sorted(limits)}"
            )
        return next(iter(limits))


@dataclass(frozen=True)
class DemandTier:
    """One block of a demand charge: ``price`` per kW of the peak up to ``max_kw``."""

    price: float
    max_kw: float = INFINITE


def _demand_tiers(name: str, tiers: tuple[DemandTier, ...]) -> tuple[DemandTier, ...]:
    checked = tuple(
        DemandTier(_finite(f"{name}[{i}].price", t.price), _finite(f"{name}[{i}].max", t.max_kw, minimum=0.0,
                                                                    infinite=True))
        for i, t in enumerate(tiers)
    )
    limits = [t.max_kw for t in checked]
    if any(b <= a for a, b in itertools.pairwise(limits)):
        raise TariffError(f"{name}: tier limits must rise, got {limits}")
    return checked


@dataclass(frozen=True)
class DemandCharges:
    """Charges on the month's highest average import power.

    Parameters
    ----------
    window_min : int
        The demand window: power is averaged over fixed local windows of this length. [min]
    flat : tuple of 12 tuples of DemandTier
        Charge on the month's peak, by month (January first); an empty tuple for a month without one.
    schedule : MonthHourSchedule or None
        The demand's time-of-use periods (URDB's ``demandweekdayschedule``).
    periods : mapping of int to tuple of DemandTier
        Charge on each period's own peak in the month.
    """

    window_min: int = 15
    flat: tuple[tuple[DemandTier, ...], ...] = ((),) * 12
    schedule: MonthHourSchedule | None = None
    periods: Mapping[int, tuple[DemandTier, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.window_min, bool) or not isinstance(self.window_min, int) or not 1 <= self.window_min <= 60:
            raise TariffError(f"demand.window: expected whole minutes from 1 to 60, got {self.window_min!r}")
        if len(self.flat) != 12:
            raise TariffError(f"demand.flat: expected 12 months, got {len(self.flat)}")
        flat = tuple(_demand_tiers(f"demand.flat[{m}]", tuple(t)) for m, t in enumerate(self.flat))
        periods = {int(p): _demand_tiers(f"demand.periods[{p}].tiers", tuple(t)) for p, t in self.periods.items()}
        if periods and self.schedule is None:
            raise TariffError("demand.schedule: time-of-use demand prices need a demand schedule")
        if self.schedule is not None:
            missing = sorted(_used_periods((self.schedule,)) - set(periods))
            if missing:
                raise TariffError(f"demand schedule: period {missing[0]} is in the schedule but has no price")
        object.__setattr__(self, "flat", flat)
        object.__setattr__(self, "periods", periods)

    @property
    def any(self) -> bool:
        """Whether any demand charge is set."""
        return any(self.flat) or any(self.periods.values())


@dataclass(frozen=True)
class ExportTerms:
    """How export is credited.

    Parameters
    ----------
    rule : ExportRule
    sell_price : float or None
        Export price for net billing and buy-all-sell-all [currency/kWh]; None: each tier's ``sell``.
    true_up_month : int
        Net metering: the month (1-12) whose bill settles the year's surplus (December by default).
    true_up_rate : float
        Net metering: what each surplus kWh left at the true-up earns [currency/kWh].
    """

    rule: ExportRule = ExportRule.NET_BILLING
    sell_price: float | None = None
    true_up_month: int = 12
    true_up_rate: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rule", ExportRule(self.rule))
        if self.sell_price is not None:
            object.__setattr__(self, "sell_price", _finite("export.sell_price", self.sell_price))
        if isinstance(self.true_up_month, bool) or self.true_up_month not in range(1, 13):
            raise TariffError(f"export.true_up_month: expected a month from 1 to 12, got {self.true_up_month!r}")
        object.__setattr__(self, "true_up_rate", _finite("export.true_up_rate", self.true_up_rate, minimum=0.0))


@dataclass(frozen=True, eq=False)  # arrays: compared by identity
class DynamicPrices:
    """Per-interval prices (a spot price series), replacing the energy table's prices.

    The price paid is ``spot * (1 + percent / 100) + adder`` per kWh; export earns
    ``export_spot * (1 + export_percent / 100) + export_adder`` where an export series is given, else the
    tariff's export terms apply.

    Parameters
    ----------
    t_ms : numpy.ndarray
        Start of each price interval, rising; a price holds until the next start. [ms]
    step_ms : int
        How long the last price holds. [ms]
    import_price, export_price : numpy.ndarray
        Spot prices [currency/kWh]; ``export_price`` may be None.
    end_ms : numpy.ndarray or None
        End of each price interval, after its start and no later than the next start [ms]; where it comes
        before the next start, the series has a gap there and instants in it are not covered. None: each price
        holds until the next start (the last one for ``step_ms``).
    """

    t_ms: np.ndarray
    step_ms: int
    import_price: np.ndarray
    export_price: np.ndarray | None = None
    adder: float = 0.0
    percent: float = 0.0
    export_adder: float = 0.0
    export_percent: float = 0.0
    end_ms: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = np.asarray(self.t_ms, dtype=np.int64)
        if t.ndim != 1 or len(t) == 0:
            raise TariffError("prices.time: expected at least one price")
        if (np.diff(t) <= 0).any():
            raise TariffError("prices.time: times must rise")
        if self.step_ms <= 0:
            raise TariffError(f"prices.step: must be > 0, got {self.step_ms}")
        prices = [np.asarray(self.import_price, dtype=np.float64)]
        if self.export_price is not None:
            prices.append(np.asarray(self.export_price, dtype=np.float64))
        for name, p in zip(("import_price", "export_price"), prices, strict=False):
            if p.shape != t.shape:
                raise TariffError(f"prices.{name}: expected {len(t)} prices, got {p.shape}")
            if not np.isfinite(p).all():
                raise TariffError(f"prices.{name}: {int((~np.isfinite(p)).sum())} prices are not numbers")
        for name in ("adder", "percent", "export_adder", "export_percent"):
            object.__setattr__(self, name, _finite(f"prices.{name}", getattr(self, name)))
        if self.end_ms is None:
            end = np.append(t[1:], t[-1] + self.step_ms)
        else:
            end = np.asarray(self.end_ms, dtype=np.int64)
            if end.shape != t.shape:
                raise TariffError(f"prices.end: expected {len(t)} ends, got {end.shape}")
            if (end <= t).any():
                raise TariffError("prices.end: every interval must end after it starts")
            if (end[:-1] > t[1:]).any():
                raise TariffError("prices.end: an interval may not run past the next one's start")
        object.__setattr__(self, "t_ms", t)
        object.__setattr__(self, "end_ms", end)
        object.__setattr__(self, "import_price", prices[0])
        object.__setattr__(self, "export_price", prices[1] if len(prices) > 1 else None)

    def _index(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t_ms = np.asarray(t_ms, dtype=np.int64)
        i = np.searchsorted(self.t_ms, t_ms, side="right") - 1
        assert self.end_ms is not None  # set in __post_init__
        known = (i >= 0) & (t_ms < self.end_ms[np.clip(i, 0, None)])
        return np.clip(i, 0, None), known

    def buy(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The import price at each instant [currency/kWh], and whether the series covers it."""
        i, known = self._index(t_ms)
        return self.import_price[i] * (1 + self.percent / 100) + self.adder, known

    def sell(self, t_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The export price at each instant [currency/kWh] and whether it is covered, or None without a series."""
        if self.export_price is None:
            return None
        i, known = self._index(t_ms)
        return self.export_price[i] * (1 + self.export_percent / 100) + self.export_adder, known


@dataclass(frozen=True)
class Tariff:
    """A whole tariff (see the module's docstring).

    Parameters
    ----------
    name : str
    energy : EnergyRates
    currency : str
        ISO 4217 code of every price.
    fixed_monthly, fixed_daily : float
        Fixed charges per billing month and per day [currency].
    minimum_monthly, minimum_annual : float
        The least a month's and a year's bill may be, before taxes and export credits [currency].
    demand : DemandCharges or None
    export : ExportTerms
    dynamic : DynamicPrices or None
    tax_percent : float
        Taxes on each month's total, when positive. [%]
    billing_day : int
        The day of the month a billing month starts (1: calendar months).
    source : str
        Where the tariff comes from (a URDB label, a file, a URL), with its attribution.
    """

    name: str
    energy: EnergyRates
    currency: str = "USD"
    fixed_monthly: float = 0.0
    fixed_daily: float = 0.0
    minimum_monthly: float = 0.0
    minimum_annual: float = 0.0
    demand: DemandCharges | None = None
    export: ExportTerms = field(default_factory=ExportTerms)
    dynamic: DynamicPrices | None = None
    tax_percent: float = 0.0
    billing_day: int = 1
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("fixed_monthly", "fixed_daily", "minimum_monthly", "minimum_annual", "tax_percent"):
            object.__setattr__(self, name, _finite(name, getattr(self, name), minimum=0.0))
        if isinstance(self.billing_day, bool) or self.billing_day not in range(1, 29):
            raise TariffError(f"billing_day: expected a day from 1 to 28, got {self.billing_day!r}")
        if not (isinstance(self.currency, str) and len(self.currency) == 3 and self.currency.isalpha()):
            raise TariffError(f"currency: expected a three-letter ISO 4217 code, got {self.currency!r}")
        if self.dynamic is not None and self.export.rule is ExportRule.NET_METERING:
            raise TariffError("export.rule: net metering nets kWh by time-of-use period, which dynamic prices "
                              "do not have; use net-billing")

    def with_export(self, export: ExportTerms) -> Tariff:
        """This tariff with other export terms (the bill's ``--export`` and ``--sell-price``)."""
        return Tariff(**{**self.__dict__, "export": export})
