"""homegrid's own tariff format: a TOML text a person writes from the utility's tariff sheet.

The README's "Tariffs" section has a full example. In short::

    name = "Example Electric TOU-4-9"
    fixed_monthly = 12.0
    holidays_country = "US"

    [periods.peak]
    price = 0.45
    [periods.off-peak]
    price = 0.30

    [seasons.all-year]
    months = "Jan-Dec"
    weekday = { peak = "16-21", off-peak = ["0-16", "21-24"] }
    weekend = { off-peak = "0-24" }

A flat rate needs no periods: ``[energy] price = 0.15``. Seasons must cover the twelve months once; each day
kind's hour ranges (local clock, end excluded, ``"21-7"`` runs past midnight) must cover the 24 hours once;
holidays take the weekend's periods. Periods are numbered in the order the file gives them, from 0, and keep
their names (:attr:`EnergyRates.names`).

:func:`read_toml_tariff` reads the text (no file I/O here); :func:`write_toml_tariff` writes a tariff back in
this format (a URDB record turned into a file the owner can edit). Errors name the key at fault
(``seasons.summer.weekday: hour 3 has no period``).
"""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np

from homegrid.tariffs.country_holidays import CountryHolidays
from homegrid.tariffs.model import (
    DemandCharges,
    DemandTier,
    EnergyRates,
    ExportRule,
    ExportTerms,
    Tariff,
    TariffError,
    Tier,
    TierScope,
    TierUnit,
)
from homegrid.tariffs.schedule import MonthHourSchedule

__all__ = ["MONTHS", "read_toml_tariff", "write_toml_tariff"]

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_TOP = {
    "name", "source", "currency", "billing_day", "tax_percent", "fixed_monthly", "fixed_daily", "minimum_monthly",
    "minimum_annual", "holidays", "holidays_country", "holidays_subdivision", "holidays_names",
    "energy", "periods", "seasons", "demand", "export",
}
_ENERGY = {"price", "sell", "tiers", "tier_unit", "tier_scope"}
_PERIOD = {"price", "sell", "tiers"}
_TIER = {"up_to", "price", "sell"}
_SEASON = {"months", "weekday", "weekend", "every_day"}
_DEMAND = {"window_min", "flat", "periods"}
_DEMAND_TIER = {"up_to", "price"}
_FLAT_ENTRY = {"months", "price", "tiers"}
_EXPORT = {"rule", "sell_price", "true_up_month", "true_up_rate"}


def _known(name: str, table: Mapping[str, Any], keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        where = f"{name}.{unknown[0]}" if name else unknown[0]
        raise TariffError(f"{where}: unknown key; known keys: {', '.join(sorted(keys))}")


def _table(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TariffError(f"{name}: expected a table, got {value!r}")
    return value


def _number(name: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TariffError(f"{name} = {value!r}: expected a number")
    if minimum is not None and value < minimum:
        raise TariffError(f"{name} = {value!r}: must be >= {minimum:g}")
    return float(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TariffError(f"{name} = {value!r}: expected a string")
    return value


_MONTH_WORDS = {word: i for i, short in enumerate(MONTHS) for word in (
    short.lower(), date(2001, i + 1, 1).strftime("%B").lower(), str(i + 1))}


def _month(name: str, text: str) -> int:
    """A month (0-based) from ``"Jun"``, ``"June"`` or ``"6"``."""
    month = _MONTH_WORDS.get(text.strip().lower())
    if month is None:
        raise TariffError(f"{name}: {text.strip()!r} is not a month (Jan..Dec or 1..12)")
    return month


def _months(name: str, value: Any) -> list[int]:
    """Months (0-based, in order given) from ``[6, 7, 8]``, ``"Jun-Sep"``, ``"Oct-Mar"`` or ``"Jan, Mar-Apr"``."""
    items: list[Any] = value if isinstance(value, list) else [value]
    out: list[int] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 1 <= item <= 12:
                raise TariffError(f"{name}: {item} is not a month (1..12)")
            out.append(item - 1)
            continue
        if not isinstance(item, str):
            raise TariffError(f"{name} = {value!r}: expected months, as \"Jun-Sep\" or [6, 7, 8, 9]")
        for part in item.split(","):
            first, sep, last = part.partition("-")
            a = _month(name, first)
            b = _month(name, last) if sep else a
            out += [(a + i) % 12 for i in range((b - a) % 12 + 1)]
    if not out:
        raise TariffError(f"{name}: no months given")
    seen: set[int] = set()
    for m in out:
        if m in seen:
            raise TariffError(f"{name}: {MONTHS[m]} is given twice")
        seen.add(m)
    return out


_HOURS = re.compile(r"\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*")


def _hours(name: str, value: Any) -> list[int]:
    """Local clock hours from ``"16-21"`` (16:00 to 21:00, end excluded), ``"21-7"`` (past midnight),
    ``"16:00-21:00"``, or a list of them."""
    items: list[Any] = value if isinstance(value, list) else [value]
    out: list[int] = []
    for item in items:
        match = _HOURS.fullmatch(item) if isinstance(item, str) else None
        if match is None:
            raise TariffError(f"{name} = {item!r}: expected hours as \"16-21\" (from 16:00 to 21:00) or a list of them")
        start, start_min, end, end_min = match.groups()
        if (start_min or "00") != "00" or (end_min or "00") != "00":
            raise TariffError(f"{name} = {item!r}: whole hours only (a schedule is hourly)")
        a, b = int(start), int(end)
        if a > 23 or b > 24:
            raise TariffError(f"{name} = {item!r}: hours run from 0 to 24")
        if a == b:
            raise TariffError(f"{name} = {item!r}: an empty range")
        out += list(range(a, b)) if a < b else [*range(a, 24), *range(0, b)]
    return out


def _energy_tiers(name: str, table: Mapping[str, Any], sell_default: float = 0.0) -> tuple[Tier, ...]:
    if "tiers" in table:
        if "price" in table:
            raise TariffError(f"{name}: give price or tiers, not both")
        tiers = table["tiers"]
        if not isinstance(tiers, list) or not tiers:
            raise TariffError(f"{name}.tiers: expected a list of tiers, as [{{ up_to = 300, price = 0.2 }}, "
                              "{ price = 0.3 }]")
        sell = _number(f"{name}.sell", table.get("sell", sell_default))
        out = []
        for i, tier in enumerate(tiers):
            where = f"{name}.tiers[{i}]"
            tier = _table(where, tier)
            _known(where, tier, _TIER)
            if "price" not in tier:
                raise TariffError(f"{where}.price: missing")
            last = i == len(tiers) - 1
            if "up_to" not in tier and not last:
                raise TariffError(f"{where}.up_to: missing (only the last tier is open)")
            up_to = _number(f"{where}.up_to", tier["up_to"], minimum=0.0) if "up_to" in tier else math.inf
            out.append(Tier(_number(f"{where}.price", tier["price"]), _number(f"{where}.sell", tier.get("sell", sell)),
                            up_to))
        limits = [t.max_kwh for t in out]
        if any(b <= a for a, b in itertools.pairwise(limits)):
            raise TariffError(f"{name}.tiers: up_to must rise, got {limits}")
        return tuple(out)
    if "price" not in table:
        raise TariffError(f"{name}: no price (give price = ..., or tiers)")
    return (Tier(_number(f"{name}.price", table["price"]), _number(f"{name}.sell", table.get("sell", sell_default))),)


def _day(name: str, value: Any, names: Mapping[str, int]) -> list[int]:
    """A 24-hour row of period numbers from ``{ peak = "16-21", off-peak = ["0-16", "21-24"] }``."""
    table = _table(name, value)
    row: list[int | None] = [None] * 24
    owner: list[str] = [""] * 24
    for period, hours in table.items():
        if period not in names:
            raise TariffError(f"{name}.{period}: no such period; defined: {', '.join(names)}")
        for h in _hours(f"{name}.{period}", hours):
            if row[h] is not None:
                raise TariffError(f"{name}: hour {h} is in both {owner[h]} and {period}")
            row[h], owner[h] = names[period], period
    gaps = [h for h, p in enumerate(row) if p is None]
    if gaps:
        raise TariffError(f"{name}: hour {gaps[0]} has no period" + (
            f" (nor {', '.join(map(str, gaps[1:]))})" if gaps[1:] else ""))
    return [p for p in row if p is not None]


def _schedule(doc: Mapping[str, Any], names: Mapping[str, int]) -> tuple[np.ndarray, np.ndarray]:
    seasons = _table("seasons", doc["seasons"])
    weekday: list[list[int] | None] = [None] * 12
    weekend: list[list[int] | None] = [None] * 12
    season_of: list[str] = [""] * 12
    for season, table in seasons.items():
        where = f"seasons.{season}"
        table = _table(where, table)
        _known(where, table, _SEASON)
        if "months" not in table:
            raise TariffError(f"{where}.months: missing (as \"Jun-Sep\")")
        if "every_day" in table:
            if "weekday" in table or "weekend" in table:
                raise TariffError(f"{where}: give every_day, or weekday and weekend, not both")
            wd = we = _day(f"{where}.every_day", table["every_day"], names)
        else:
            for kind in ("weekday", "weekend"):
                if kind not in table:
                    raise TariffError(f"{where}.{kind}: missing (or give every_day)")
            wd = _day(f"{where}.weekday", table["weekday"], names)
            we = _day(f"{where}.weekend", table["weekend"], names)
        for m in _months(f"{where}.months", table["months"]):
            if weekday[m] is not None:
                raise TariffError(f"{where}.months: {MONTHS[m]} is also in seasons.{season_of[m]}")
            weekday[m], weekend[m], season_of[m] = wd, we, season
    gaps = [MONTHS[m] for m in range(12) if weekday[m] is None]
    if gaps:
        raise TariffError(f"seasons: no season covers {', '.join(gaps)}")
    return np.array(weekday, dtype=np.int64), np.array(weekend, dtype=np.int64)


def _demand_tiers(name: str, value: Any) -> tuple[DemandTier, ...]:
    if not isinstance(value, list):
        return (DemandTier(_number(name, value)),)
    if not value:
        raise TariffError(f"{name}: expected a price per kW or a list of tiers")
    out = []
    for i, tier in enumerate(value):
        where = f"{name}[{i}]"
        tier = _table(where, tier)
        _known(where, tier, _DEMAND_TIER)
        if "price" not in tier:
            raise TariffError(f"{where}.price: missing")
        if "up_to" not in tier and i < len(value) - 1:
            raise TariffError(f"{where}.up_to: missing (only the last tier is open)")
        up_to = _number(f"{where}.up_to", tier["up_to"], minimum=0.0) if "up_to" in tier else math.inf
        out.append(DemandTier(_number(f"{where}.price", tier["price"]), up_to))
    limits = [t.max_kw for t in out]
    if any(b <= a for a, b in itertools.pairwise(limits)):
        raise TariffError(f"{name}: up_to must rise, got {limits}")
    return tuple(out)


def _demand(doc: Mapping[str, Any], schedule: MonthHourSchedule, names: Mapping[str, int]) -> DemandCharges | None:
    if "demand" not in doc:
        return None
    table = _table("demand", doc["demand"])
    _known("demand", table, _DEMAND)
    window = table.get("window_min", 15)
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 60:
        raise TariffError(f"demand.window_min = {window!r}: expected whole minutes from 1 to 60")
    flat: list[tuple[DemandTier, ...]] = [()] * 12
    if "flat" in table:
        value = table["flat"]
        if isinstance(value, list) and value and all(isinstance(v, dict) and "months" in v for v in value):
            owner = [""] * 12
            for i, entry in enumerate(value):
                where = f"demand.flat[{i}]"
                _known(where, entry, _FLAT_ENTRY)
                if ("price" in entry) == ("tiers" in entry):
                    raise TariffError(f"{where}: give price or tiers")
                tiers = _demand_tiers(f"{where}.{'price' if 'price' in entry else 'tiers'}",
                                      entry.get("price", entry.get("tiers")))
                for m in _months(f"{where}.months", entry["months"]):
                    if owner[m]:
                        raise TariffError(f"{where}.months: {MONTHS[m]} is also in {owner[m]}")
                    flat[m], owner[m] = tiers, where
        else:
            flat = [_demand_tiers("demand.flat", value)] * 12
    periods: dict[int, tuple[DemandTier, ...]] = {}
    demand_schedule: MonthHourSchedule | None = None
    if "periods" in table:
        by_name = _table("demand.periods", table["periods"])
        for period, value in by_name.items():
            if period not in names:
                raise TariffError(f"demand.periods.{period}: no such period; defined: {', '.join(names)}")
            periods[names[period]] = _demand_tiers(f"demand.periods.{period}", value)
        periods = {p: periods.get(p, ()) for p in names.values()}  # the other periods: no demand charge
        demand_schedule = schedule
    charges = DemandCharges(window, tuple(flat), demand_schedule, periods)
    return charges if charges.any else None


def _export(doc: Mapping[str, Any]) -> ExportTerms:
    if "export" not in doc:
        return ExportTerms()
    table = _table("export", doc["export"])
    _known("export", table, _EXPORT)
    rule = table.get("rule", ExportRule.NET_BILLING.value)
    if rule not in {r.value for r in ExportRule}:
        raise TariffError(f"export.rule = {rule!r}: expected one of {', '.join(r.value for r in ExportRule)}")
    sell = table.get("sell_price")
    month = table.get("true_up_month", 12)
    if isinstance(month, bool) or not isinstance(month, int) or not 1 <= month <= 12:
        raise TariffError(f"export.true_up_month = {month!r}: expected a month from 1 to 12")
    return ExportTerms(
        ExportRule(rule),
        None if sell is None else _number("export.sell_price", sell),
        month,
        _number("export.true_up_rate", table.get("true_up_rate", 0.0), minimum=0.0),
    )


def _holidays(doc: Mapping[str, Any]) -> tuple[list[date], CountryHolidays | None]:
    dates = doc.get("holidays", [])
    if not isinstance(dates, list):
        raise TariffError(f"holidays = {dates!r}: expected a list of dates, as [2025-12-25, 2026-01-01]")
    for i, d in enumerate(dates):
        if not isinstance(d, date) or hasattr(d, "hour"):
            raise TariffError(f"holidays[{i}] = {d!r}: expected a date, as 2025-12-25 (TOML date, no quotes)")
    country = doc.get("holidays_country")
    if country is None:
        for key in ("holidays_subdivision", "holidays_names"):
            if key in doc:
                raise TariffError(f"{key}: needs holidays_country")
        return list(dates), None
    names = doc.get("holidays_names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise TariffError(f"holidays_names = {names!r}: expected a list of holiday names")
    rule = CountryHolidays(_text("holidays_country", country), _text("holidays_subdivision",
                                                                      doc.get("holidays_subdivision", "")),
                           tuple(names))
    return list(dates), rule


def read_toml_tariff(text: str) -> tuple[Tariff, list[str]]:
    """A tariff from homegrid's TOML.

    Parameters
    ----------
    text : str
        The file's text.

    Returns
    -------
    tuple of (Tariff, list of str)
        The tariff, and warnings (a period defined but never scheduled).

    Raises
    ------
    TariffError
        Not TOML, an unknown key, a period without a price, seasons or hour ranges that overlap or leave a gap,
        a negative or falling tier; the message names the key.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffError(f"not valid TOML: {exc}") from None
    _known("", doc, _TOP)
    warnings: list[str] = []
    energy_table = _table("energy", doc.get("energy", {}))
    _known("energy", energy_table, _ENERGY)
    unit = energy_table.get("tier_unit", TierUnit.KWH.value)
    if unit not in {u.value for u in TierUnit}:
        raise TariffError(f"energy.tier_unit = {unit!r}: expected one of {', '.join(u.value for u in TierUnit)}")
    scope = energy_table.get("tier_scope", TierScope.MONTH.value)
    if scope not in {s.value for s in TierScope}:
        raise TariffError(f"energy.tier_scope = {scope!r}: expected one of {', '.join(s.value for s in TierScope)}")
    flat = bool({"price", "tiers"} & set(energy_table))

    periods: dict[int, tuple[Tier, ...]] = {}
    names: dict[str, int] = {}
    if flat:
        for key in ("periods", "seasons"):
            if key in doc:
                raise TariffError(f"{key}: a flat rate (energy.price or energy.tiers) has no periods; give one or "
                                  "the other")
        periods[0] = _energy_tiers("energy", energy_table)
        weekday = weekend = np.zeros((12, 24), dtype=np.int64)
    else:
        if "sell" in energy_table:
            raise TariffError("energy.sell: the sell price goes with each period (periods.NAME.sell), or in "
                              "export.sell_price")
        if "periods" not in doc:
            raise TariffError("energy: no price (give energy.price for a flat rate, or [periods.NAME] tables and "
                              "[seasons.NAME] tables for time of use)")
        for number, (name, table) in enumerate(_table("periods", doc["periods"]).items()):
            where = f"periods.{name}"
            table = _table(where, table)
            _known(where, table, _PERIOD)
            periods[number], names[name] = _energy_tiers(where, table), number
        if "seasons" in doc:
            weekday, weekend = _schedule(doc, names)
        elif len(names) == 1:
            weekday = weekend = np.zeros((12, 24), dtype=np.int64)
        else:
            raise TariffError("seasons: missing; with more than one period, [seasons.NAME] tables say when each "
                              "applies")
        used = set(np.unique(np.concatenate([weekday.ravel(), weekend.ravel()])).tolist())
        warnings += [f"periods.{n}: never scheduled in any season" for n, p in names.items() if p not in used]
    dates, rule = _holidays(doc)
    schedule = MonthHourSchedule(weekday, weekend, dates, rule)
    energy = EnergyRates(schedule, periods, TierUnit(unit), TierScope(scope), {p: n for n, p in names.items()})
    if energy.tiered and energy.tier_scope is TierScope.MONTH:
        try:
            energy.tier_limits()
        except TariffError as exc:
            raise TariffError(f"periods: {exc}; or set energy.tier_scope = \"period\"") from None

    money = {key: _number(key, doc.get(key, 0.0), minimum=0.0) for key in (
        "fixed_monthly", "fixed_daily", "minimum_monthly", "minimum_annual", "tax_percent")}
    billing_day = doc.get("billing_day", 1)
    if isinstance(billing_day, bool) or not isinstance(billing_day, int) or not 1 <= billing_day <= 28:
        raise TariffError(f"billing_day = {billing_day!r}: expected a day from 1 to 28")
    if "name" not in doc:
        raise TariffError("name: missing (the tariff's name, as the utility calls it)")
    tariff = Tariff(
        name=_text("name", doc["name"]),
        energy=energy,
        currency=_text("currency", doc.get("currency", "USD")),
        fixed_monthly=money["fixed_monthly"],
        fixed_daily=money["fixed_daily"],
        minimum_monthly=money["minimum_monthly"],
        minimum_annual=money["minimum_annual"],
        demand=_demand(doc, schedule, names),
        export=_export(doc),
        tax_percent=money["tax_percent"],
        billing_day=billing_day,
        source=_text("source", doc.get("source", "")),
    )
    return tariff, warnings


# --- writing -----------------------------------------------------------------------------------------------------

def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml(name)


def _month_text(months: Sequence[int]) -> str:
    """``"Jun-Sep"`` or ``"Jan-Mar, Nov"`` for 0-based months (runs wrap past December)."""
    todo = sorted(months)
    runs: list[list[int]] = []
    for m in todo:
        if runs and runs[-1][-1] == m - 1:
            runs[-1].append(m)
        else:
            runs.append([m])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 11:
        runs = [runs[-1] + runs[0], *runs[1:-1]]
    return ", ".join(MONTHS[r[0]] if len(r) == 1 else f"{MONTHS[r[0]]}-{MONTHS[r[-1]]}" for r in runs)


def _day_text(row: Sequence[int], label: Mapping[int, str]) -> dict[str, Any]:
    """A day's row as ``{ name = "16-21", other = "21-16" }``: each period's runs of hours, a run through
    midnight written as one wrapped range."""
    runs: dict[str, list[tuple[int, int]]] = {}
    start = 0
    for h in range(1, 25):
        if h == 24 or row[h] != row[start]:
            runs.setdefault(label[int(row[start])], []).append((start, h))
            start = h
    out: dict[str, Any] = {}
    for name, spans in runs.items():
        if len(spans) > 1 and spans[0][0] == 0 and spans[-1][1] == 24:  # through midnight
            spans = [(spans[-1][0], spans[0][1]), *spans[1:-1]]
        texts = [f"{a}-{b}" for a, b in spans]
        out[name] = texts[0] if len(texts) == 1 else texts
    return out


def _tiers_text(tiers: Sequence[Tier]) -> dict[str, Any]:
    if len(tiers) == 1:
        return {"price": tiers[0].buy, "sell": tiers[0].sell}
    return {"tiers": [{"up_to": t.max_kwh, "price": t.buy, "sell": t.sell} if not math.isinf(t.max_kwh)
                      else {"price": t.buy, "sell": t.sell} for t in tiers]}


def _demand_text(tiers: Sequence[DemandTier]) -> Any:
    if len(tiers) == 1 and math.isinf(tiers[0].max_kw):
        return tiers[0].price
    return [{"up_to": t.max_kw, "price": t.price} if not math.isinf(t.max_kw) else {"price": t.price} for t in tiers]


def write_toml_tariff(tariff: Tariff) -> str:
    """The tariff as homegrid's TOML, which :func:`read_toml_tariff` reads back to the same tariff.

    Periods without a name are called ``period-N`` (URDB's number); seasons are named by their months.

    Raises
    ------
    TariffError
        What the format cannot say: dynamic prices, a demand schedule other than the energy schedule, a holiday
        rule other than a country's.
    """
    if tariff.dynamic is not None:
        raise TariffError("dynamic: a price series has no place in the TOML tariff (it is its own CSV file)")
    energy = tariff.energy
    schedule = energy.schedule
    label = {p: energy.names.get(p, f"period-{p}") for p in energy.periods}
    lines = [f"name = {_toml(tariff.name)}"]
    if tariff.source:
        lines.append(f"source = {_toml(tariff.source)}")
    lines.append(f"currency = {_toml(tariff.currency)}")
    for key in ("billing_day", "tax_percent", "fixed_monthly", "fixed_daily", "minimum_monthly", "minimum_annual"):
        value = getattr(tariff, key)
        if value or key == "fixed_monthly":
            lines.append(f"{key} = {_toml(value)}")
    if schedule.holidays:
        lines.append(f"holidays = {_toml(sorted(schedule.holidays))}")
    rule = schedule.holiday_rule
    if rule is not None:
        if not isinstance(rule, CountryHolidays):
            raise TariffError(f"holidays: a holiday rule the TOML cannot name ({rule!r})")
        lines.append(f"holidays_country = {_toml(rule.country)}")
        if rule.subdivision:
            lines.append(f"holidays_subdivision = {_toml(rule.subdivision)}")
        if rule.names:
            lines.append(f"holidays_names = {_toml(list(rule.names))}")

    one_period = len(energy.periods) == 1 and not energy.names
    lines += ["", "[energy]", f"tier_unit = {_toml(energy.tier_unit.value)}",
              f"tier_scope = {_toml(energy.tier_scope.value)}"]
    if one_period:
        for key, value in _tiers_text(next(iter(energy.periods.values()))).items():
            lines.append(f"{key} = {_toml(value)}")
    else:
        for p, tiers in energy.periods.items():
            lines += ["", f"[periods.{_key(label[p])}]"]
            lines += [f"{key} = {_toml(value)}" for key, value in _tiers_text(tiers).items()]
        seasons: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
        for m in range(12):
            seasons.setdefault((tuple(schedule.weekday[m].tolist()), tuple(schedule.weekend[m].tolist())),
                               []).append(m)
        for (weekday, weekend), months in seasons.items():
            text = _month_text(months)
            lines += ["", f"[seasons.{_key(text.replace(', ', '-and-'))}]", f"months = {_toml(text)}"]
            if weekday == weekend:
                lines.append(f"every_day = {_toml(_day_text(weekday, label))}")
            else:
                lines += [f"weekday = {_toml(_day_text(weekday, label))}",
                          f"weekend = {_toml(_day_text(weekend, label))}"]

    demand = tariff.demand
    if demand is not None and demand.any:
        lines += ["", "[demand]", f"window_min = {demand.window_min}"]
        groups: dict[tuple[DemandTier, ...], list[int]] = {}
        for m, month_tiers in enumerate(demand.flat):
            if month_tiers:
                groups.setdefault(month_tiers, []).append(m)
        if groups:
            entries = [{"months": _month_text(months), "price" if len(t) == 1 and math.isinf(t[0].max_kw)
                        else "tiers": _demand_text(t)} for t, months in groups.items()]
            lines.append(f"flat = {_toml(entries)}")
        if any(demand.periods.values()):
            same = demand.schedule is not None and np.array_equal(demand.schedule.weekday, schedule.weekday) and \
                np.array_equal(demand.schedule.weekend, schedule.weekend)
            if not same or set(demand.periods) - set(label):
                raise TariffError("demand.schedule: a demand schedule other than the energy schedule cannot be "
                                  "written in the TOML tariff (its demand charges follow the energy periods)")
            by_name = {label[p]: _demand_text(t) for p, t in demand.periods.items() if t}
            lines.append(f"periods = {_toml(by_name)}")

    export = tariff.export
    lines += ["", "[export]", f"rule = {_toml(export.rule.value)}"]
    if export.sell_price is not None:
        lines.append(f"sell_price = {_toml(export.sell_price)}")
    lines += [f"true_up_month = {export.true_up_month}", f"true_up_rate = {_toml(export.true_up_rate)}"]
    return "\n".join(lines) + "\n"
