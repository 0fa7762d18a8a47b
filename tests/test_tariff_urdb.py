"""The OpenEI URDB record read as it is (homegrid.tariffs.urdb): real records, and bad ones refused by name."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.tariffs import ExportRule, TariffError, TierScope, TierUnit
from homegrid.tariffs.urdb import DGRULES, read_urdb
from tests.conftest import SHARED_DATA

PSCO_RD = SHARED_DATA / "tariffs" / "urdb_5a679442682bea21e990a0d4_psco_residential_demand_RD.json"
FIXTURES = Path(__file__).parent / "fixtures" / "tariffs"
SHIPPED = Path(__file__).resolve().parents[1] / "homegrid" / "tariffs" / "data" / \
    "urdb_618940545457a35a1c4097ec_psco_residential_re_tou.json"


def psco() -> dict[str, Any]:
    record: dict[str, Any] = json.loads(PSCO_RD.read_text(encoding="utf-8"))
    return record


def error(record: Any) -> str:
    with pytest.raises(TariffError) as info:
        read_urdb(record)
    return str(info.value)


# --- real records ---------------------------------------------------------------------------------------------

def test_the_psco_residential_demand_record_as_urdb_and_sam_price_it():
    """Rate + adj per kWh (SAM and PySAM add them; memo section 5: 0.0481085), $15.91 a month, flat demand 9.14
    $/kW October-May and 11.51 June-September, net metering; nothing left unpriced."""
    tariff, warnings = read_urdb(PSCO_RD.read_text(encoding="utf-8"))
    assert warnings == []
    assert tariff.name == "Residential Demand Service (Schedule RD)"
    assert tariff.currency == "USD"
    assert tariff.source == ("Public Service Co of Colorado, Residential Demand Service (Schedule RD); OpenEI Utility "
                             "Rate Database, label 5a679442682bea21e990a0d4 "
                             "(https://openei.org/apps/IURDB/rate/view/5a679442682bea21e990a0d4)")
    assert list(tariff.energy.periods) == [0]
    (tier,) = tariff.energy.periods[0]
    assert tier.buy == pytest.approx(0.01974 + 0.0283685, abs=1e-15) and tier.sell == 0 and math.isinf(tier.max_kwh)
    assert (tariff.energy.schedule.weekday == 0).all() and (tariff.energy.schedule.weekend == 0).all()
    assert tariff.energy.tier_unit is TierUnit.KWH and tariff.energy.tier_scope is TierScope.MONTH
    assert tariff.fixed_monthly == 15.91 and tariff.fixed_daily == 0
    assert tariff.minimum_monthly == tariff.minimum_annual == 0
    assert tariff.export.rule is ExportRule.NET_METERING
    assert tariff.demand is not None and tariff.demand.window_min == 15 and tariff.demand.schedule is None
    by_month = [t[0].price for t in tariff.demand.flat]
    assert by_month == pytest.approx([9.14] * 5 + [11.51] * 4 + [9.14] * 3)
    assert all(len(t) == 1 and math.isinf(t[0].max_kw) for t in tariff.demand.flat)


def test_the_shipped_time_of_use_record_twice_encoded_api_reply():
    """The virtual home's default: an API reply saved as a JSON string; five periods, URDB's 0-based numbers kept."""
    tariff, warnings = read_urdb(SHIPPED.read_text(encoding="utf-8"))
    assert warnings == []
    assert tariff.name == "Residential Energy Time Of Use (Schedule RE-TOU)"
    assert "label 618940545457a35a1c4097ec" in tariff.source
    prices = {p: tiers[0].buy for p, tiers in tariff.energy.periods.items()}
    assert prices == pytest.approx({0: 0.099057, 1: 0.0947412, 2: 0.158126, 3: 0.1252299, 4: 0.219872})
    july_weekday = tariff.energy.schedule.weekday[6]
    assert july_weekday.tolist() == [0] * 9 + [3] * 5 + [4] * 4 + [3] * 3 + [0] * 3
    assert tariff.energy.schedule.weekend[0].tolist() == [0] * 9 + [1] * 12 + [0] * 3
    assert tariff.fixed_monthly == 5.71 and tariff.demand is None
    assert tariff.export.rule is ExportRule.NET_METERING
    # and the periods land on the local clock: 15:00 on a July Wednesday is summer on-peak (4)
    t = int(datetime(2025, 7, 2, 15, 0, tzinfo=ZoneInfo("America/Denver")).timestamp() * 1000)
    assert tariff.energy.schedule.periods(np.array([t]), "America/Denver").tolist() == [4]


def test_the_lp1_record_tiers_per_kw_of_demand_and_no_dgrules_warned():
    tariff, warnings = read_urdb((FIXTURES / "urdb_539f6a23ec4f024411ec8beb_lp1.json").read_text(encoding="utf-8"))
    assert tariff.energy.tier_unit is TierUnit.KWH_PER_KW
    assert [t.max_kwh for t in tariff.energy.periods[0]] == [300.0, math.inf]
    assert tariff.demand is not None
    assert [(t.price, t.max_kw) for t in tariff.demand.flat[6]] == [(16.3, 100.0), (14.9, math.inf)]
    assert tariff.export.rule is ExportRule.NET_BILLING
    assert warnings == ["dgrules: missing; export is credited by net billing at each tier's sell price (set the "
                        "config's [tariff] export to choose)"]


def test_sams_older_names_and_its_1e38_no_limit():
    tariff, warnings = read_urdb((FIXTURES / "urdbv7_sam_names.json").read_text(encoding="utf-8"))
    assert warnings == []
    assert (tariff.fixed_monthly, tariff.minimum_monthly, tariff.minimum_annual) == (35.28, 1.0, 12.0)
    assert tariff.demand is not None and tariff.demand.schedule is not None
    assert all(math.isinf(tiers[-1].max_kw) for tiers in tariff.demand.periods.values())
    assert all(math.isinf(t[-1].max_kw) for t in tariff.demand.flat)


@pytest.mark.parametrize("wrap", ["bare", "dict", "items", "items text", "twice"])
def test_every_wrapping_reads_the_same(wrap: str):
    record = psco()
    data: Any = {"bare": json.dumps(record), "dict": record, "items": {"items": [record]},
                 "items text": json.dumps({"items": [record]}),
                 "twice": json.dumps(json.dumps({"items": [record]}))}[wrap]
    tariff, _ = read_urdb(data)
    assert tariff.fixed_monthly == 15.91


def test_the_callers_dict_is_not_changed():
    record = psco()
    before = copy.deepcopy(record)
    read_urdb(record)
    assert record == before


# --- what it maps -------------------------------------------------------------------------------------------------

def test_fixed_and_minimum_units():
    record = psco() | {"fixedchargefirstmeter": 0.5, "fixedchargeunits": "$/day", "mincharge": 240,
                       "minchargeunits": "$/year"}
    tariff, warnings = read_urdb(record)
    assert (tariff.fixed_monthly, tariff.fixed_daily, tariff.minimum_annual) == (0, 0.5, 240)
    tariff, warnings = read_urdb(psco() | {"mincharge": 12, "minchargeunits": "$/month"})
    assert tariff.minimum_monthly == 12 and warnings == []
    tariff, _ = read_urdb(psco() | {"mincharge": 12, "minchargeunits": "$/month", "minmonthlycharge": 0,
                                    "annualmincharge": None})
    assert (tariff.minimum_monthly, tariff.minimum_annual) == (12, 0)  # the older names, empty, change nothing
    tariff, warnings = read_urdb(psco() | {"mincharge": 12})
    assert tariff.minimum_monthly == 12 and warnings == ["minchargeunits: missing; mincharge taken as $/month"]
    tariff, warnings = read_urdb(psco() | {"fixedchargeunits": "$/year", "fixedchargefirstmeter": 120})
    assert tariff.fixed_monthly == 10 and warnings == ["fixedchargeunits: $/year charged as a twelfth each month"]


def test_tou_demand_with_tiers_and_its_window():
    record = psco() | {
        "demandratestructure": [[{"rate": 2.0}], [{"rate": 5.0, "adj": 0.5, "max": 10}, {"rate": 7.0}]],
        "demandweekdayschedule": [[1 if 16 <= h < 21 else 0 for h in range(24)]] * 12,
        "demandweekendschedule": [[0] * 24] * 12,
        "demandwindow": 30,
    }
    tariff, _ = read_urdb(record)
    assert tariff.demand is not None and tariff.demand.window_min == 30
    assert tariff.demand.periods[1][0].price == 5.5 and tariff.demand.periods[1][0].max_kw == 10
    assert tariff.demand.schedule is not None and tariff.demand.schedule.weekday[0, 17] == 1


def test_energy_tiers_with_sell_prices_and_daily_units():
    record = psco() | {"energyratestructure": [
        [{"rate": 0.1, "max": 10, "unit": "kWh daily", "sell": 0.03}, {"rate": 0.2, "unit": "kWh daily"}]]}
    tariff, _ = read_urdb(record)
    assert tariff.energy.tier_unit is TierUnit.KWH_DAILY
    assert [(t.buy, t.sell, t.max_kwh) for t in tariff.energy.periods[0]] == [(0.1, 0.03, 10), (0.2, 0, math.inf)]


@pytest.mark.parametrize("rule", list(DGRULES))
def test_dgrules(rule: str):
    tariff, _ = read_urdb(psco() | {"dgrules": rule})
    assert tariff.export.rule is DGRULES[rule]


def test_known_but_unpriced_fields_come_back_as_warnings():
    record = psco() | {"lookbackpercent": 0.5, "fueladjustmentsmonthly": [0.001] * 12, "demandratchetpercentage":
                       [0] * 12, "energyattrs": [{"Fuel": "0.01/kWh"}], "coincidentrateunit": "kW"}
    _, warnings = read_urdb(record)
    assert warnings == [
        "lookbackpercent: the demand ratchet (lookback) is not applied",
        "fueladjustmentsmonthly: the monthly fuel adjustments are not added to the energy prices",
        "energyattrs: energy attributes (extra charges written as text) are not priced",
    ]  # the all-zero ratchet changes nothing and a unit alone prices nothing, so they are not warned


def test_a_demand_structure_of_zeros_is_read_not_refused():
    record = psco() | {"demandratestructure": [[{"rate": 0}], [{"rate": 0}]],
                       "demandweekdayschedule": [[1] * 24] * 12, "demandweekendschedule": [[0] * 24] * 12}
    tariff, warnings = read_urdb(record)
    assert warnings == [] and tariff.demand is not None and tariff.demand.periods[1][0].price == 0


# --- refused, by name -----------------------------------------------------------------------------------------------

BAD: list[tuple[dict[str, Any], str]] = [
    ({"energyratecomments2": "x"},
     "energyratecomments2: unknown URDB field; homegrid would not know how to price it"),
    ({"energyweekdayschedule": [[0] * 14 + [1] * 4 + [0] * 6] * 12},
     "energyweekdayschedule: period 1 (month 1, hour 14) has no price: energyratestructure has 1 periods (0 to 0)"),
    ({"energyratestructure": [[{"rate": 0.1, "max": -5}, {"rate": 0.2}]]},
     "energyratestructure[0][0].max: must be >= 0, got -5"),
    ({"energyratestructure": [[{"rate": 0.1, "max": 500}, {"rate": 0.2, "max": 100}]]},
     "energyratestructure[0]: tier max values must rise, got [500.0, 100.0]"),
    ({"energyratestructure": [[{"rate": 0.1, "colour": "red"}]]},
     "energyratestructure[0][0].colour: unknown field; known: adj, max, rate, sell, unit"),
    ({"energyratestructure": [[{"adj": 0.1}]]}, "energyratestructure[0][0].rate: missing"),
    ({"energyratestructure": [[{"rate": "0.1"}]]}, "energyratestructure[0][0].rate: expected a number, got '0.1'"),
    ({"energyratestructure": [[{"rate": 0.1, "unit": "therms"}]]},
     "energyratestructure[0][0].unit = 'therms': expected one of kWh, kWh/kW, kWh daily, kWh/kW daily"),
    ({"energyratestructure": [[{"rate": 0.1, "max": 5, "unit": "kWh"}, {"rate": 0.2, "unit": "kWh daily"}]]},
     "energyratestructure[0][1].unit = 'kWh daily': every tier of a rate must count in one unit, and another tier "
     "counts in 'kWh'"),
    ({"energyratestructure": [[]]}, "energyratestructure[0]: expected a list of tiers (at least one)"),
    ({"energyweekendschedule": [[0] * 24] * 11}, "energyweekendschedule: expected 12 rows (months) of 24 period "
                                                 "numbers (hours), got shape (11, 24)"),
    ({"demandunits": "kVA"}, "demandunits = 'kVA': homegrid measures demand in kW only (not kVA or hp)"),
    ({"flatdemandunit": "hp"}, "flatdemandunit = 'hp': homegrid measures demand in kW only (not kVA or hp)"),
    ({"flatdemandmonths": [0] * 11 + [2]},
     "flatdemandmonths[11] = 2: no such period in flatdemandstructure (0 to 1)"),
    ({"flatdemandstructure": [[{"rate": 7.76, "max": -1}], [{"rate": 1}]]},
     "flatdemandstructure[0][0].max: must be >= 0, got -1"),
    ({"demandweekdayschedule": [[0] * 24] * 12, "demandweekendschedule": [[1] * 24] * 12},
     "demandratestructure: missing, while a demand schedule names periods"),
    ({"demandratestructure": [[{"rate": 5}]], "demandweekdayschedule": [[0] * 24] * 12,
      "demandweekendschedule": [[1] * 24] * 12},
     "demandweekendschedule: period 1 (month 1, hour 0) has no price: demandratestructure has 1 periods (0 to 0)"),
    ({"demandwindow": 7.5}, "demandwindow = 7.5: expected whole minutes from 1 to 60"),
    ({"dgrules": "Net Metering Plus"},
     "dgrules = 'Net Metering Plus': expected one of Net Metering, Net Billing Instantaneous, Net Billing Hourly, "
     "Buy All Sell All"),
    ({"fixedchargeunits": "$/week"}, "fixedchargeunits = '$/week': expected $/month, $/day or $/year"),
    ({"fixedchargefirstmeter": -3}, "fixedchargefirstmeter: must be >= 0, got -3"),
    ({"mincharge": 5, "minchargeunits": "$/day"},
     "minchargeunits = '$/day': a daily minimum is not supported; give $/month or $/year"),
    ({"minmonthlycharge": 5, "mincharge": 5}, "minmonthlycharge: given with mincharge; keep one"),
    ({"currency": "EUR"}, "currency = 'EUR': URDB rates are in USD"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[0].split(" ")[0] for _, m in BAD])
def test_a_bad_record_is_refused_naming_the_field(change: dict[str, Any], message: str):
    assert error(psco() | change) == message


def test_tiers_that_differ_between_the_periods_of_a_month_are_refused():
    record = psco() | {
        "energyratestructure": [[{"rate": 0.1, "max": 500}, {"rate": 0.2}], [{"rate": 0.3, "max": 400},
                                                                               {"rate": 0.4}]],
        "energyweekdayschedule": [[0] * 16 + [1] * 8] * 12,
    }
    assert error(record) == ("energyratestructure: periods [0, 1] share month 1 but their tier max values differ "
                             "(0: [500.0, inf], 1: [400.0, inf]); tiers fill with the month's energy")


def test_not_json_and_not_one_record():
    assert error("{").startswith("URDB: not JSON (")
    assert error("[1, 2]") == "URDB: expected a JSON object (a rate record), got list"
    assert error({"items": [psco(), psco()]}) == ("items: expected one URDB record, got 2 records; keep the one to "
                                                 "price")
    assert error({"name": "x"}) == ("energyratestructure: missing (homegrid prices energy; a demand-only rate has no "
                                    "energy price)")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=4, unique=True),
       st.lists(st.floats(-1, 1, allow_nan=False), min_size=5, max_size=5))
def test_rising_tiers_read_back_exactly(limits: list[float], prices: list[float]):
    """Invariant: any rising set of limits and any prices come back as written, the last block open."""
    limits = sorted(limits)
    tiers = [{"rate": p, "max": m} for p, m in zip(prices, limits, strict=False)] + [{"rate": prices[-1]}]
    tariff, _ = read_urdb(psco() | {"energyratestructure": [tiers]})
    got = tariff.energy.periods[0]
    assert [t.buy for t in got] == [t["rate"] for t in tiers]
    assert [t.max_kwh for t in got] == [*limits, math.inf]
