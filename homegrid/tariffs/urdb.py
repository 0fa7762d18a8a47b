"""The OpenEI Utility Rate Database (URDB) JSON record, read as it is, into a :class:`~homegrid.tariffs.model.Tariff`.

A URDB record (API versions 3 to 8) describes a rate with 12 x 24 month-by-hour schedules of 0-based period
numbers and, per period, blocks (tiers) of prices. This reader keeps URDB's period numbers as the model's
period keys (``energyweekdayschedule`` period 0 is ``EnergyRates.periods[0]``).

It takes the parsed JSON or its text: a bare record, an API reply ``{"items": [record]}``, or either encoded
twice (a JSON string holding the JSON, as some tools save replies). Nothing is read from files here.

Every field is accounted for: the ones it prices, the descriptive ones (name, utility, dates, comments ...),
and the ones it knows but does not price (ratchets, coincident demand, reactive power, per-month fuel
adjustments, charges per additional meter), which come back as warnings when they carry a value. A field it
does not know, a schedule period without a price, a negative tier limit or a unit homegrid cannot measure
(kVA, hp) is a :class:`~homegrid.tariffs.model.TariffError` that names the field
(``energyratestructure[1][0].max``).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

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

__all__ = ["DGRULES", "URDB_ATTRIBUTION", "read_urdb"]

URDB_ATTRIBUTION = "OpenEI Utility Rate Database"

#: URDB's ``dgrules`` (distributed generation rules) and the export rule each means (NREL SAM's mapping, except
#: "Net Billing Hourly", which SAM reads as "net billing with $ carryover"; homegrid nets each interval).
DGRULES: dict[str, ExportRule] = {
    "Net Metering": ExportRule.NET_METERING,
    "Net Billing Instantaneous": ExportRule.NET_BILLING,
    "Net Billing Hourly": ExportRule.NET_BILLING,
    "Buy All Sell All": ExportRule.BUY_ALL_SELL_ALL,
}

#: Energy tier units (a tier's ``unit``) and what their limits count.
TIER_UNITS: dict[str, TierUnit] = {
    "kWh": TierUnit.KWH,
    "kWh/kW": TierUnit.KWH_PER_KW,
    "kWh daily": TierUnit.KWH_DAILY,
    "kWh/kW daily": TierUnit.KWH_PER_KW_DAILY,
}

#: NREL SAM's "no upper limit" (1e38, and its float32 rounding): a tier max at or beyond this is open.
NO_LIMIT = 1e37

#: Fields that describe the rate and change no price.
DESCRIPTIVE = frozenset({
    "label", "uri", "name", "utility", "utility_name", "eiaid", "sector", "servicetype", "description", "source",
    "sourceparent", "startdate", "enddate", "supersedes", "revisions", "approved", "is_default", "country",
    "basicinformationcomments", "energycomments", "demandcomments", "voltagecategory", "phasewiring",
    "voltageminimum", "voltagemaximum", "peakkwcapacitymin", "peakkwcapacitymax", "peakkwcapacityhistory",
    "peakkwhusagemin", "peakkwhusagemax", "peakkwhusagehistory", "ratetype", "id", "coincidentrateunit",
})

#: Fields this reader prices.
PRICED = frozenset({
    "energyratestructure", "energyweekdayschedule", "energyweekendschedule",
    "fixedchargefirstmeter", "fixedchargeunits", "fixedmonthlycharge",
    "mincharge", "minchargeunits", "minmonthlycharge", "annualmincharge",
    "demandratestructure", "demandweekdayschedule", "demandweekendschedule",
    "flatdemandstructure", "flatdemandmonths", "demandwindow",
    "demandunits", "demandrateunit", "flatdemandunit", "dgrules", "currency",
})

#: Fields known but not priced: each one that carries a value comes back as a warning saying what is left out.
NOT_PRICED: dict[str, str] = {
    "fixedchargeeaaddl": "the fixed charge per additional meter is not applied (one meter)",
    "lookbackpercent": "the demand ratchet (lookback) is not applied",
    "lookbackrange": "the demand ratchet (lookback) is not applied",
    "lookbackmonths": "the demand ratchet (lookback) is not applied",
    "demandratchetpercentage": "the demand ratchet is not applied",
    "demandreactivepowercharge": "the reactive power charge is not applied",
    "coincidentratestructure": "coincident demand charges are not applied",
    "coincidentrateschedule": "coincident demand charges are not applied",
    "coincidentschedule": "coincident demand charges are not applied",
    "fueladjustmentsmonthly": "the monthly fuel adjustments are not added to the energy prices",
    "energyattrs": "energy attributes (extra charges written as text) are not priced",
    "demandattrs": "demand attributes (extra charges written as text) are not priced",
    "fixedattrs": "fixed-charge attributes (extra charges written as text) are not priced",
}

_ENERGY_TIER_KEYS = frozenset({"rate", "adj", "max", "unit", "sell"})
_DEMAND_TIER_KEYS = frozenset({"rate", "adj", "max", "unit"})


def _unwrap(data: Any) -> dict[str, Any]:
    """The record from JSON text, a parsed dict, an API reply ``{"items": [record]}``, or twice-encoded JSON."""
    for _ in range(3):
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise TariffError(f"URDB: not JSON ({exc})") from None
            continue
        if isinstance(data, dict) and "items" in data:
            items = data["items"]
            if not isinstance(items, list) or len(items) != 1:
                count = len(items) if isinstance(items, list) else "no list of"
                raise TariffError(f"items: expected one URDB record, got {count} records; keep the one to price")
            data = items[0]
            continue
        break
    if not isinstance(data, dict):
        raise TariffError(f"URDB: expected a JSON object (a rate record), got {type(data).__name__}")
    return data


def _has_value(value: Any) -> bool:
    """Whether a field carries something (not null, an empty list, "" or only zeros)."""
    if value is None or value == "" or value == 0:
        return False
    if isinstance(value, list | tuple):
        return any(_has_value(v) for v in value)
    if isinstance(value, dict):
        return any(_has_value(v) for v in value.values())
    return True


def _number(name: str, value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TariffError(f"{name}: expected a number, got {value!r}")
    if minimum is not None and value < minimum:
        raise TariffError(f"{name}: must be >= {minimum:g}, got {value:g}")
    return float(value)


def _structure(name: str, value: Any) -> list[list[dict[str, Any]]]:
    """A ``[period][tier]`` structure, checked for shape."""
    if not isinstance(value, list) or not value:
        raise TariffError(f"{name}: expected a list of periods, each a list of tiers")
    for p, tiers in enumerate(value):
        if not isinstance(tiers, list) or not tiers:
            raise TariffError(f"{name}[{p}]: expected a list of tiers (at least one)")
        for t, tier in enumerate(tiers):
            if not isinstance(tier, dict):
                raise TariffError(f"{name}[{p}][{t}]: expected an object with a rate")
    return value


def _schedule(record: Mapping[str, Any], weekday: str, weekend: str) -> MonthHourSchedule:
    tables = []
    for key in (weekday, weekend):
        if key not in record:
            raise TariffError(f"{key}: missing (a 12 x 24 table of period numbers)")
        try:
            tables.append(MonthHourSchedule(record[key], record[key]).weekday)
        except ValueError as exc:
            raise TariffError(f"{key}: {str(exc).split(': ', 1)[-1]}") from None
    return MonthHourSchedule(tables[0], tables[1])


def _check_periods(schedule: MonthHourSchedule, weekday: str, weekend: str, structure: str, count: int) -> None:
    """Every period a schedule names has an entry in its structure (0-based)."""
    for key, table in ((weekday, schedule.weekday), (weekend, schedule.weekend)):
        beyond = table >= count
        if beyond.any():
            month, hour = (int(i[0]) for i in beyond.nonzero())
            raise TariffError(
                f"{key}: period {int(table[month, hour])} (month {month + 1}, hour {hour}) has no price: "
                f"{structure} has {count} periods (0 to {count - 1})")


def _energy_tier(name: str, tier: Mapping[str, Any]) -> tuple[Tier, str]:
    unknown = sorted(set(tier) - _ENERGY_TIER_KEYS)
    if unknown:
        raise TariffError(f"{name}.{unknown[0]}: unknown field; known: {', '.join(sorted(_ENERGY_TIER_KEYS))}")
    if "rate" not in tier:
        raise TariffError(f"{name}.rate: missing")
    buy = _number(f"{name}.rate", tier["rate"]) + _number(f"{name}.adj", tier.get("adj", 0) or 0)
    sell = _number(f"{name}.sell", tier.get("sell", 0) or 0)
    limit = tier.get("max")
    max_kwh = math.inf if limit is None else _number(f"{name}.max", limit, minimum=0.0)
    max_kwh = math.inf if max_kwh >= NO_LIMIT else max_kwh
    unit = tier.get("unit", "kWh") or "kWh"
    if unit not in TIER_UNITS:
        raise TariffError(f"{name}.unit = {unit!r}: expected one of {', '.join(TIER_UNITS)}")
    return Tier(buy, sell, max_kwh), unit


def _energy(record: Mapping[str, Any]) -> EnergyRates:
    name = "energyratestructure"
    if name not in record:
        raise TariffError(f"{name}: missing (homegrid prices energy; a demand-only rate has no energy price)")
    structure = _structure(name, record[name])
    periods: dict[int, tuple[Tier, ...]] = {}
    units: dict[str, str] = {}
    for p, tiers in enumerate(structure):
        read = [_energy_tier(f"{name}[{p}][{t}]", tier) for t, tier in enumerate(tiers)]
        limits = [tier.max_kwh for tier, _ in read]
        if any(b <= a for a, b in itertools.pairwise(limits)):
            raise TariffError(f"{name}[{p}]: tier max values must rise, got {limits}")
        periods[p] = tuple(tier for tier, _ in read)
        for t, (_, unit) in enumerate(read):
            units.setdefault(unit, f"{name}[{p}][{t}].unit")
    if len(units) > 1:
        (first, _), (second, where) = list(units.items())[:2]
        raise TariffError(f"{where} = {second!r}: every tier of a rate must count in one unit, and "
                          f"another tier counts in {first!r}")
    schedule = _schedule(record, "energyweekdayschedule", "energyweekendschedule")
    _check_periods(schedule, "energyweekdayschedule", "energyweekendschedule", name, len(structure))
    # NREL SAM refuses tiers whose limits differ between the periods of one month; so does homegrid
    for month in range(12):
        used = sorted({int(p) for p in schedule.weekday[month]} | {int(p) for p in schedule.weekend[month]})
        shared = {p: tuple(t.max_kwh for t in periods[p]) for p in used}
        if len(set(shared.values())) > 1:
            raise TariffError(
                f"{name}: periods {used} share month {month + 1} but their tier max values differ "
                f"({', '.join(f'{p}: {list(v)}' for p, v in shared.items())}); tiers fill with the month's energy")
    unit = next(iter(units), "kWh")
    return EnergyRates(schedule, periods, TIER_UNITS[unit], TierScope.MONTH)


def _demand_tiers(name: str, tiers: Sequence[Mapping[str, Any]]) -> tuple[DemandTier, ...]:
    out = []
    for t, tier in enumerate(tiers):
        where = f"{name}[{t}]"
        unknown = sorted(set(tier) - _DEMAND_TIER_KEYS)
        if unknown:
            raise TariffError(f"{where}.{unknown[0]}: unknown field; known: {', '.join(sorted(_DEMAND_TIER_KEYS))}")
        if "rate" not in tier:
            raise TariffError(f"{where}.rate: missing")
        unit = tier.get("unit", "kW") or "kW"
        if unit != "kW":
            raise TariffError(f"{where}.unit = {unit!r}: homegrid measures demand in kW only")
        price = _number(f"{where}.rate", tier["rate"]) + _number(f"{where}.adj", tier.get("adj", 0) or 0)
        limit = tier.get("max")
        max_kw = math.inf if limit is None else _number(f"{where}.max", limit, minimum=0.0)
        out.append(DemandTier(price, math.inf if max_kw >= NO_LIMIT else max_kw))
    limits = [t.max_kw for t in out]
    if any(b <= a for a, b in itertools.pairwise(limits)):
        raise TariffError(f"{name}: tier max values must rise, got {limits}")
    return tuple(out)


def _demand(record: Mapping[str, Any]) -> DemandCharges | None:
    for key in ("demandunits", "demandrateunit", "flatdemandunit"):
        unit = record.get(key)
        if unit not in (None, "", "kW"):
            raise TariffError(f"{key} = {unit!r}: homegrid measures demand in kW only (not kVA or hp)")
    window = record.get("demandwindow")
    window_min = 15
    if window not in (None, ""):
        value = _number("demandwindow", window)
        if not value.is_integer() or not 1 <= value <= 60:
            raise TariffError(f"demandwindow = {window!r}: expected whole minutes from 1 to 60")
        window_min = int(value)

    flat: tuple[tuple[DemandTier, ...], ...] = ((),) * 12
    if record.get("flatdemandstructure") or _has_value(record.get("flatdemandmonths")):
        if not record.get("flatdemandstructure"):
            raise TariffError("flatdemandstructure: missing, while flatdemandmonths names its periods")
        structure = _structure("flatdemandstructure", record["flatdemandstructure"])
        months = record.get("flatdemandmonths")
        if months is None and len(structure) == 1:
            months = [0] * 12
        if not isinstance(months, list) or len(months) != 12:
            raise TariffError("flatdemandmonths: expected 12 period numbers (January first)")
        tiers = [_demand_tiers(f"flatdemandstructure[{p}]", s) for p, s in enumerate(structure)]
        picked = []
        for m, p in enumerate(months):
            if isinstance(p, bool) or not isinstance(p, int | float) or p != int(p) or not 0 <= p < len(structure):
                raise TariffError(f"flatdemandmonths[{m}] = {p!r}: no such period in flatdemandstructure "
                                  f"(0 to {len(structure) - 1})")
            picked.append(tiers[int(p)])
        flat = tuple(picked)

    schedule: MonthHourSchedule | None = None
    periods: dict[int, tuple[DemandTier, ...]] = {}
    if record.get("demandratestructure"):
        structure = _structure("demandratestructure", record["demandratestructure"])
        periods = {p: _demand_tiers(f"demandratestructure[{p}]", s) for p, s in enumerate(structure)}
        schedule = _schedule(record, "demandweekdayschedule", "demandweekendschedule")
        _check_periods(schedule, "demandweekdayschedule", "demandweekendschedule", "demandratestructure",
                       len(structure))
    elif _has_value(record.get("demandweekdayschedule")) or _has_value(record.get("demandweekendschedule")):
        raise TariffError("demandratestructure: missing, while a demand schedule names periods")
    charges = DemandCharges(window_min, flat, schedule, periods)
    return charges if charges.any else None


def _money(record: Mapping[str, Any], warnings: list[str]) -> dict[str, float]:
    out = {"fixed_monthly": 0.0, "fixed_daily": 0.0, "minimum_monthly": 0.0, "minimum_annual": 0.0}
    if record.get("fixedchargefirstmeter") not in (None, ""):
        if record.get("fixedmonthlycharge") not in (None, "", 0):
            raise TariffError("fixedmonthlycharge: given with fixedchargefirstmeter; keep one")
        value = _number("fixedchargefirstmeter", record["fixedchargefirstmeter"], minimum=0.0)
        units = record.get("fixedchargeunits")
        if units in (None, ""):
            units = "$/month"
            if value:
                warnings.append("fixedchargeunits: missing; fixedchargefirstmeter taken as $/month")
        if units == "$/month":
            out["fixed_monthly"] = value
        elif units == "$/day":
            out["fixed_daily"] = value
        elif units == "$/year":
            out["fixed_monthly"] = value / 12
            warnings.append("fixedchargeunits: $/year charged as a twelfth each month")
        else:
            raise TariffError(f"fixedchargeunits = {units!r}: expected $/month, $/day or $/year")
    elif record.get("fixedchargeunits") not in (None, ""):
        if record["fixedchargeunits"] not in ("$/month", "$/day", "$/year"):
            raise TariffError(f"fixedchargeunits = {record['fixedchargeunits']!r}: expected $/month, $/day or $/year")
    if record.get("fixedmonthlycharge") not in (None, "") and not out["fixed_monthly"]:
        out["fixed_monthly"] = _number("fixedmonthlycharge", record["fixedmonthlycharge"], minimum=0.0)

    if record.get("mincharge") not in (None, ""):
        for old in ("minmonthlycharge", "annualmincharge"):
            if record.get(old) not in (None, "", 0):
                raise TariffError(f"{old}: given with mincharge; keep one")
        value = _number("mincharge", record["mincharge"], minimum=0.0)
        units = record.get("minchargeunits")
        if units in (None, ""):
            units = "$/month"
            if value:
                warnings.append("minchargeunits: missing; mincharge taken as $/month")
        if units == "$/month":
            out["minimum_monthly"] = value
        elif units == "$/year":
            out["minimum_annual"] = value
        elif units == "$/day":
            raise TariffError("minchargeunits = '$/day': a daily minimum is not supported; give $/month or $/year")
        else:
            raise TariffError(f"minchargeunits = {units!r}: expected $/month or $/year")
    else:  # SAM's older names
        for old, key in (("minmonthlycharge", "minimum_monthly"), ("annualmincharge", "minimum_annual")):
            if record.get(old) not in (None, ""):
                out[key] = _number(old, record[old], minimum=0.0)
    return out


def _export(record: Mapping[str, Any], warnings: list[str]) -> ExportTerms:
    rule = record.get("dgrules")
    if rule in (None, ""):
        warnings.append("dgrules: missing; export is credited by net billing at each tier's sell price (set the "
                        "config's [tariff] export to choose)")
        return ExportTerms()
    if rule not in DGRULES:
        raise TariffError(f"dgrules = {rule!r}: expected one of {', '.join(DGRULES)}")
    return ExportTerms(DGRULES[rule])


def _source(record: Mapping[str, Any]) -> str:
    parts = [str(record[k]) for k in ("utility", "name") if record.get(k)]
    label = record.get("label")
    attribution = f"{URDB_ATTRIBUTION}, label {label}" if label else URDB_ATTRIBUTION
    uri = record.get("uri")
    return "; ".join([", ".join(parts), attribution] if parts else [attribution]) + (f" ({uri})" if uri else "")


def read_urdb(data: str | bytes | Mapping[str, Any]) -> tuple[Tariff, list[str]]:
    """A tariff from a URDB rate record.

    Parameters
    ----------
    data : str, bytes or mapping
        The record as JSON text or parsed: a bare record, an API reply ``{"items": [record]}``, or either
        encoded twice.

    Returns
    -------
    tuple of (Tariff, list of str)
        The tariff, and warnings naming each field it read but does not price (and each assumption made).

    Raises
    ------
    TariffError
        A field it does not know, a schedule period without a price, a negative or falling tier limit, a
        demand unit other than kW, an unknown ``dgrules``; the message names the field.
    """
    record = _unwrap(data if isinstance(data, str | bytes) else dict(data))
    unknown = sorted(set(record) - DESCRIPTIVE - PRICED - set(NOT_PRICED))
    if unknown:
        raise TariffError(f"{unknown[0]}: unknown URDB field" + (
            f" (and {', '.join(unknown[1:])})" if unknown[1:] else "") + "; homegrid would not know how to price it")
    currency = record.get("currency", "USD")
    if currency != "USD":
        raise TariffError(f"currency = {currency!r}: URDB rates are in USD")
    warnings: list[str] = []
    for key, what in NOT_PRICED.items():
        if _has_value(record.get(key)):
            warnings.append(f"{key}: {what}")
    energy = _energy(record)
    money = _money(record, warnings)
    tariff = Tariff(
        name=str(record.get("name") or record.get("label") or "URDB rate"),
        energy=energy,
        currency="USD",
        fixed_monthly=money["fixed_monthly"],
        fixed_daily=money["fixed_daily"],
        minimum_monthly=money["minimum_monthly"],
        minimum_annual=money["minimum_annual"],
        demand=_demand(record),
        export=_export(record, warnings),
        source=_source(record),
    )
    return tariff, warnings
