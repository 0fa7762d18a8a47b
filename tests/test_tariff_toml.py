"""homegrid's TOML tariff (homegrid.tariffs.toml_rate), a country's holidays, and telling a file's format by content."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from homegrid.tariffs import (
    EnergyRates,
    ExportRule,
    MonthHourSchedule,
    Tariff,
    TariffError,
    Tier,
    TierScope,
    TierUnit,
)
from homegrid.tariffs.bill import Metered, MonthBill, price_bill
from homegrid.tariffs.country_holidays import CountryHolidays
from homegrid.tariffs.readers import load_tariff, tariff_format
from homegrid.tariffs.toml_rate import read_toml_tariff, write_toml_tariff
from homegrid.tariffs.urdb import read_urdb
from tests.conftest import SHARED_DATA

LA = "America/Los_Angeles"
ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "homegrid" / "tariffs" / "data" / "urdb_618940545457a35a1c4097ec_psco_residential_re_tou.json"
URDB_FILES = [SHIPPED, SHARED_DATA / "tariffs" / "urdb_5a679442682bea21e990a0d4_psco_residential_demand_RD.json",
              ROOT / "tests" / "fixtures" / "tariffs" / "urdb_539f6a23ec4f024411ec8beb_lp1.json",
              ROOT / "tests" / "fixtures" / "tariffs" / "urdbv7_sam_names.json"]

EXAMPLE = """\
name = "Example Electric TOU-4-9"
source = "Example Electric, Schedule TOU-4-9, effective 2025-01-01"
fixed_monthly = 12.0
fixed_daily = 0.1
minimum_monthly = 10
minimum_annual = 200
tax_percent = 5
billing_day = 15
holidays = [2025-11-28]
holidays_country = "US"
holidays_subdivision = "CA"
holidays_names = ["New Year's Day", "Independence Day", "Christmas Day"]

[energy]
tier_scope = "period"

[periods.peak]
price = 0.45
sell = 0.08

[periods.off-peak]
tiers = [{ up_to = 300, price = 0.25 }, { price = 0.30 }]
sell = 0.05

[periods.super-off-peak]
price = 0.20

[seasons.summer]
months = "Jun-Sep"
weekday = { peak = "16-21", off-peak = ["21-24", "0-16"] }
weekend = { off-peak = "0-24" }

[seasons.winter]
months = "Oct-May"
every_day = { peak = "16:00-21:00", off-peak = "21-9", super-off-peak = "9-16" }

[demand]
window_min = 30
flat = [{ months = "Jun-Sep", price = 12.0 }, { months = [10, 11], tiers = [{ up_to = 10, price = 5 }, { price = 7 }] }]
periods = { peak = 3.5 }

[export]
rule = "net-metering"
true_up_month = 3
true_up_rate = 0.03
"""


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def read(text: str) -> Tariff:
    tariff, warnings = read_toml_tariff(text)
    assert warnings == []
    return tariff


def error(text: str) -> str:
    with pytest.raises(TariffError) as info:
        read_toml_tariff(text)
    return str(info.value)


def assert_same(a: Tariff, b: Tariff, *, names: bool = True) -> None:
    """Two tariffs price alike: every field equal, the schedules' tables by value."""
    for key in ("name", "currency", "fixed_monthly", "fixed_daily", "minimum_monthly", "minimum_annual", "export",
                "tax_percent", "billing_day", "source", "dynamic"):
        assert getattr(a, key) == getattr(b, key), key
    for x, y in ((a.energy.schedule, b.energy.schedule),
                 *([(a.demand.schedule, b.demand.schedule)] if a.demand and a.demand.schedule else [])):
        assert y is not None
        assert np.array_equal(x.weekday, y.weekday) and np.array_equal(x.weekend, y.weekend)
        assert x.holidays == y.holidays and x.holiday_rule == y.holiday_rule
    assert a.energy.periods == b.energy.periods
    assert (a.energy.tier_unit, a.energy.tier_scope) == (b.energy.tier_unit, b.energy.tier_scope)
    if names:
        assert a.energy.names == b.energy.names
    assert (a.demand is None) == (b.demand is None)
    if a.demand is not None and b.demand is not None:
        assert (a.demand.window_min, a.demand.flat) == (b.demand.window_min, b.demand.flat)
        assert {p: t for p, t in a.demand.periods.items() if t} == {p: t for p, t in b.demand.periods.items() if t}


# --- the format -----------------------------------------------------------------------------------------------------

def test_the_full_example():
    tariff = read(EXAMPLE)
    assert tariff.name == "Example Electric TOU-4-9" and tariff.currency == "USD"
    assert (tariff.fixed_monthly, tariff.fixed_daily, tariff.minimum_monthly, tariff.minimum_annual) == \
        (12, 0.1, 10, 200)
    assert (tariff.tax_percent, tariff.billing_day) == (5, 15)
    energy = tariff.energy
    assert energy.names == {0: "peak", 1: "off-peak", 2: "super-off-peak"}
    assert energy.tier_scope is TierScope.PERIOD and energy.tier_unit is TierUnit.KWH
    assert [(t.buy, t.sell, t.max_kwh) for t in energy.periods[1]] == [(0.25, 0.05, 300), (0.30, 0.05, math.inf)]
    assert energy.periods[0][0].sell == 0.08 and energy.periods[2][0].sell == 0
    july, january = energy.schedule.weekday[6].tolist(), energy.schedule.weekday[0].tolist()
    assert july == [1] * 16 + [0] * 5 + [1] * 3
    assert january == [1] * 9 + [2] * 7 + [0] * 5 + [1] * 3
    assert (energy.schedule.weekend[0] == energy.schedule.weekday[0]).all()
    assert (energy.schedule.weekend[6] == 1).all()
    demand = tariff.demand
    assert demand is not None and demand.window_min == 30
    assert [len(t) for t in demand.flat] == [0] * 5 + [1] * 4 + [2, 2, 0]
    assert demand.flat[10][0].max_kw == 10 and demand.periods == {0: (demand.periods[0][0],), 1: (), 2: ()}
    assert demand.periods[0][0].price == 3.5 and demand.schedule is energy.schedule
    assert tariff.export.rule is ExportRule.NET_METERING
    assert (tariff.export.true_up_month, tariff.export.true_up_rate) == (3, 0.03)


def test_holidays_listed_and_the_countrys_take_the_weekend_periods():
    schedule = read(EXAMPLE).energy.schedule
    la = ZoneInfo(LA)
    at = [datetime(2025, 7, 4, 17, tzinfo=la),    # Independence Day, a Friday: a holiday by name
          datetime(2025, 7, 3, 17, tzinfo=la),    # the day before: peak
          datetime(2026, 7, 3, 17, tzinfo=la),    # Independence Day (observed), Friday, another year
          datetime(2025, 9, 1, 17, tzinfo=la),    # Labor Day: a public holiday, but not one of the names kept
          datetime(2025, 11, 28, 17, tzinfo=la)]  # listed in the file (winter: every day alike, so peak anyway)
    assert schedule.periods(np.array([ms(t) for t in at]), LA).tolist() == [1, 0, 1, 0, 0]


def test_a_country_rule_gives_any_year_asked():
    rule = CountryHolidays("US", "CO")
    assert date(2031, 12, 25) in rule(2031) and date(1999, 7, 5) in rule(1999)  # 1999-07-04 was a Sunday
    assert all(d.year == 2030 for d in rule(2030))
    kept = CountryHolidays("US", names=("Thanksgiving Day",))
    assert kept(2025) == {date(2025, 11, 27)}
    assert "Thanksgiving Day of US" in kept.description


def test_a_flat_rate_and_a_single_period():
    tariff = read('name = "Flat"\n[energy]\nprice = 0.15\nsell = 0.04\n')
    assert tariff.energy.periods == {0: tariff.energy.periods[0]} and tariff.energy.periods[0][0].buy == 0.15
    assert (tariff.energy.schedule.weekday == 0).all() and (tariff.energy.schedule.weekend == 0).all()
    assert tariff.export.rule is ExportRule.NET_BILLING and tariff.demand is None
    tiered = read('name = "Tiers"\n[energy]\ntier_unit = "kWh daily"\n'
                  'tiers = [{ up_to = 10, price = 0.1 }, { price = 0.2 }]\n')
    assert tiered.energy.tier_unit is TierUnit.KWH_DAILY and tiered.energy.tiered
    single = read('name = "One"\n[periods.anytime]\nprice = 0.2\n')
    assert single.energy.names == {0: "anytime"}
    demand = read('name = "D"\n[energy]\nprice = 0.1\n[demand]\nflat = 9.5\n')
    assert demand.demand is not None and [t[0].price for t in demand.demand.flat] == [9.5] * 12
    assert demand.demand.window_min == 15


def test_a_period_never_scheduled_is_warned():
    text = EXAMPLE.replace("[periods.super-off-peak]", "[periods.critical]\nprice = 1.0\n\n[periods.super-off-peak]")
    _, warnings = read_toml_tariff(text)
    assert warnings == ["periods.critical: never scheduled in any season"]


def _swap(old: str, new: str) -> str:
    assert old in EXAMPLE, old
    return EXAMPLE.replace(old, new)


BAD = [
    (_swap("billing_day", "billing_dya"), "billing_dya: unknown key; known keys: billing_day, currency, demand, "
                                          "energy, export, fixed_daily, fixed_monthly, holidays, holidays_country, "
                                          "holidays_names, holidays_subdivision, minimum_annual, minimum_monthly, "
                                          "name, periods, seasons, source, tax_percent"),
    (_swap("price = 0.45", "prise = 0.45"), "periods.peak.prise: unknown key; known keys: price, sell, tiers"),
    (_swap("price = 0.45\n", ""), "periods.peak: no price (give price = ..., or tiers)"),
    (_swap('peak = "16-21", off-peak = ["21-24"', 'peek = "16-21", off-peak = ["21-24"'),
     "seasons.summer.weekday.peek: no such period; defined: peak, off-peak, super-off-peak"),
    (_swap('months = "Oct-May"', 'months = "Sep-May"'), "seasons.winter.months: Sep is also in seasons.summer"),
    (_swap('months = "Oct-May"', 'months = "Nov-May"'), "seasons: no season covers Oct"),
    (_swap('off-peak = ["21-24", "0-16"]', 'off-peak = ["20-24", "0-16"]'),
     "seasons.summer.weekday: hour 20 is in both peak and off-peak"),
    (_swap('off-peak = ["21-24", "0-16"]', 'off-peak = ["21-24", "0-14"]'),
     "seasons.summer.weekday: hour 14 has no period (nor 15)"),
    (_swap('weekend = { off-peak = "0-24" }', ""), "seasons.summer.weekend: missing (or give every_day)"),
    (_swap('weekend = { off-peak = "0-24" }', 'weekend = { off-peak = "0-24" }\nholiday = { off-peak = "0-24" }'),
     "seasons.summer.holiday: unknown key; known keys: every_day, months, weekday, weekend"),
    (_swap('up_to = 300', 'up_to = -300'), "periods.off-peak.tiers[0].up_to = -300: must be >= 0"),
    (_swap('tiers = [{ up_to = 300, price = 0.25 }, { price = 0.30 }]',
           'tiers = [{ up_to = 300, price = 0.25 }, { up_to = 200, price = 0.30 }]'),
     "periods.off-peak.tiers: up_to must rise, got [300.0, 200.0]"),
    (_swap('tiers = [{ up_to = 300, price = 0.25 }, { price = 0.30 }]',
           'tiers = [{ price = 0.25 }, { price = 0.30 }]'),
     "periods.off-peak.tiers[0].up_to: missing (only the last tier is open)"),
    (_swap('peak = "16:00-21:00"', 'peak = "16:30-21:00"'),
     "seasons.winter.every_day.peak = '16:30-21:00': whole hours only (a schedule is hourly)"),
    (_swap('peak = "16:00-21:00"', 'peak = "4pm-9pm"'),
     "seasons.winter.every_day.peak = '4pm-9pm': expected hours as \"16-21\" (from 16:00 to 21:00) or a list of them"),
    (_swap('months = "Jun-Sep"', 'months = "Jun-Sept"'),
     "seasons.summer.months: 'Sept' is not a month (Jan..Dec or 1..12)"),
    (_swap('months = "Jun-Sep"', 'months = [6, 7, 8, 9, 6]'), "seasons.summer.months: Jun is given twice"),
    (_swap('rule = "net-metering"', 'rule = "netmetering"'),
     "export.rule = 'netmetering': expected one of net-metering, net-billing, buy-all-sell-all, none"),
    (_swap("true_up_month = 3", "true_up_month = 13"), "export.true_up_month = 13: expected a month from 1 to 12"),
    (_swap("holidays = [2025-11-28]", 'holidays = ["2025-11-28"]'),
     "holidays[0] = '2025-11-28': expected a date, as 2025-12-25 (TOML date, no quotes)"),
    (_swap('holidays_country = "US"', 'holidays_country = "XX"'),
     "holidays_country = 'XX': not a country the holidays library knows (an ISO 3166-1 alpha-2 code such as \"US\")"),
    (_swap('"Christmas Day"]', '"Christmas"]'), None),  # the library's names are listed: checked by prefix below
    (_swap("window_min = 30", "window_min = 0"), "demand.window_min = 0: expected whole minutes from 1 to 60"),
    (_swap("periods = { peak = 3.5 }", "periods = { peak = -3.5, shoulder = 1 }"),
     "demand.periods.shoulder: no such period; defined: peak, off-peak, super-off-peak"),
    (_swap('{ months = [10, 11], tiers', '{ months = [9, 10], tiers'), "demand.flat[1].months: Sep is also in "
                                                                       "demand.flat[0]"),
    (_swap("tax_percent = 5", "tax_percent = -5"), "tax_percent = -5: must be >= 0"),
    (_swap("fixed_monthly = 12.0", 'fixed_monthly = "12"'), "fixed_monthly = '12': expected a number"),
    (_swap("billing_day = 15", "billing_day = 31"), "billing_day = 31: expected a day from 1 to 28"),
    (_swap('name = "Example Electric TOU-4-9"\n', ""), "name: missing (the tariff's name, as the utility calls it)"),
    (_swap('tier_scope = "period"', 'tier_scope = "month"'),
     "periods: energy.periods: tiers filled by the month's energy need the same limits in every period, got "
     "[(300.0, inf), (inf,)]; or set energy.tier_scope = \"period\""),
    (_swap("[energy]", "[energy]\nprice = 0.1"),
     "periods: a flat rate (energy.price or energy.tiers) has no periods; give one or the other"),
    ('name = "x"\n[periods.a]\nprice = 1\n[periods.b]\nprice = 2\n',
     "seasons: missing; with more than one period, [seasons.NAME] tables say when each applies"),
    ('name = "x"\n', "energy: no price (give energy.price for a flat rate, or [periods.NAME] tables and "
                     "[seasons.NAME] tables for time of use)"),
    ('name = "x"\nholidays_subdivision = "CA"\n[energy]\nprice = 1\n', "holidays_subdivision: needs holidays_country"),
    ("name = ", None),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_a_bad_tariff_is_refused_naming_the_key(text: str, message: str | None):
    got = error(text)
    if message is not None:
        assert got == message
    elif text == "name = ":
        assert got.startswith("not valid TOML: ")
    else:
        assert got.startswith("holidays_names[2] = 'Christmas': not a holiday of US-CA between 2000 and 2050; "
                              "known: ") and "Christmas Day" in got


# --- round trips ------------------------------------------------------------------------------------------------------

def test_the_example_round_trips_through_the_writer():
    tariff = read(EXAMPLE)
    text = write_toml_tariff(tariff)
    again = read(text)
    assert_same(tariff, again)
    assert write_toml_tariff(again) == text


@pytest.mark.parametrize("path", URDB_FILES, ids=lambda p: p.name[:30])
def test_a_urdb_record_becomes_toml_that_prices_alike(path: Path):
    urdb, _ = read_urdb(path.read_text(encoding="utf-8"))
    try:
        text = write_toml_tariff(urdb)
    except TariffError as exc:  # SAM's record has a TOU demand schedule of its own, which the TOML cannot say
        assert path.name == "urdbv7_sam_names.json"
        assert str(exc).startswith("demand.schedule: a demand schedule other than the energy schedule")
        return
    assert_same(urdb, read(text), names=False)


@settings(max_examples=60, deadline=None)
@given(periods=st.integers(1, 5), data=st.data())
def test_any_schedule_round_trips(periods: int, data: st.DataObject):
    """Invariant: any pair of 12 x 24 tables over any prices is written and read back cell for cell (the periods'
    numbers may change with the order the writer meets them; their names and prices do not)."""
    tables = hnp.arrays(np.int64, (12, 24), elements=st.integers(0, periods - 1))
    weekday, weekend = data.draw(tables), data.draw(tables)
    prices = data.draw(st.lists(st.floats(-1, 5, allow_nan=False), min_size=periods, max_size=periods))
    used = sorted(set(weekday.ravel().tolist()) | set(weekend.ravel().tolist()))
    energy = EnergyRates(MonthHourSchedule(weekday, weekend), {p: (Tier(prices[p]),) for p in used},
                         names={p: f"p{p}" for p in used})
    again = read(write_toml_tariff(Tariff("random", energy))).energy
    for table, back in ((weekday, again.schedule.weekday), (weekend, again.schedule.weekend)):
        assert [[f"p{p}" for p in row] for row in table.tolist()] == \
            [[again.names[p] for p in row] for row in back.tolist()]
    assert {again.names[p]: t[0].buy for p, t in again.periods.items()} == {f"p{p}": prices[p] for p in used}


# --- which format ------------------------------------------------------------------------------------------------

def test_load_tariff_tells_the_formats_apart():
    urdb_text = SHIPPED.read_text(encoding="utf-8")
    assert tariff_format(urdb_text) == "urdb" and tariff_format(EXAMPLE) == "toml"
    tariff, warnings = load_tariff(urdb_text)
    assert tariff.name.startswith("Residential Energy Time Of Use") and warnings == []
    tariff, warnings = load_tariff("\ufeff" + EXAMPLE)
    assert tariff.name == "Example Electric TOU-4-9" and warnings == []
    bare = URDB_FILES[1].read_text(encoding="utf-8")
    assert load_tariff(bare)[0].fixed_monthly == 15.91


@pytest.mark.parametrize(("text", "start"), [
    ("{\"energyratestructure\": ", "tariff: starts as JSON but is not valid JSON ("),
    ("[1, 2]", "tariff: JSON list, expected a URDB record (a JSON object) or homegrid's TOML"),
    ("<html>a rate</html>", "tariff: neither a URDB JSON record nor homegrid's TOML (not valid TOML: "),
    ("[energy]\nprice = 0.1\n", "name: missing (the tariff's name, as the utility calls it)"),
    (" \n", "tariff: the file is empty; expected a URDB record or homegrid's TOML"),
])
def test_neither_format_is_a_clear_error(text: str, start: str):
    with pytest.raises(TariffError) as info:
        load_tariff(text)
    assert str(info.value).startswith(start)


def test_the_readmes_example_reads():
    """The README's Tariffs section shows every key; it must be a tariff that reads without a warning."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Tariffs"):readme.index("## Storm mode")]
    block = section[section.index("```toml\n") + 8:]
    tariff = read(block[:block.index("```")])
    assert tariff.energy.names == {0: "off-peak", 1: "peak"} and tariff.export.rule is ExportRule.NET_METERING
    assert tariff.demand is not None and tariff.demand.flat[0][1].price == 7.0
    assert tariff.energy.schedule.holiday_rule == CountryHolidays("US", "CA", (
        "New Year's Day", "Memorial Day", "Independence Day", "Labor Day", "Thanksgiving Day", "Christmas Day"))


# --- read tariffs priced by the bill --------------------------------------------------------------------------------

def _july_bill(tariff: Tariff, zone: str) -> MonthBill:
    tz = ZoneInfo(zone)
    start, end = ms(datetime(2025, 7, 1, tzinfo=tz)), ms(datetime(2025, 8, 1, tzinfo=tz))
    t = np.arange(start, end, 3_600_000, dtype=np.int64)
    metered = Metered(t, 3_600_000, np.full(len(t), 1000.0), np.zeros(len(t)))  # 1 kWh every hour
    (month,) = price_bill(tariff, metered, zone, start, end).months
    return month


def test_the_shipped_rate_prices_a_july_as_by_hand():
    """July 2025 in Denver: 23 weekdays (URDB names no holidays, so the 4th is a Friday like any other) of 12 h
    off-peak, 8 h shoulder and 4 h on-peak, and 8 weekend days of 12 h off-peak and 12 h shoulder, 1 kWh each."""
    tariff, _ = load_tariff(SHIPPED.read_text(encoding="utf-8"))
    off, shoulder, peak = 0.06387 + 0.035187, 0.11816 + 0.0070699, 0.17246 + 0.047412
    month = _july_bill(tariff, "America/Denver")
    assert month.energy == pytest.approx(23 * (12 * off + 8 * shoulder + 4 * peak) + 8 * (12 * off + 12 * shoulder),
                                         abs=1e-9)
    assert month.fixed == pytest.approx(5.71) and month.demand == 0


def test_the_countrys_holiday_is_priced_as_a_weekend_by_the_bill():
    """The example tariff with and without Independence Day among its holidays: on July 4th (a Friday) the
    holiday has no peak hours."""
    text = _swap("billing_day = 15", "billing_day = 1").replace("window_min = 30", "window_min = 60")
    with_holiday = read(text)
    without = read(text.replace('"Independence Day", ', ""))
    a, b = _july_bill(with_holiday, LA), _july_bill(without, LA)
    # five peak hours at 0.45 become off-peak; the month's off-peak kWh are past their 300 kWh tier, so the five
    # more cost 0.30 each at the margin
    assert b.energy - a.energy == pytest.approx(5 * (0.45 - 0.30), abs=1e-9)
