"""The bill engine (homegrid.tariffs.bill) on bills computed by hand, one feature at a time, and its invariants."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.tariffs import (
    DemandCharges,
    DemandTier,
    DynamicPrices,
    EnergyRates,
    ExportRule,
    ExportTerms,
    MonthHourSchedule,
    Tariff,
    TariffError,
    Tier,
    TierScope,
    TierUnit,
)
from homegrid.tariffs.bill import Metered, billing_months, price_bill
from homegrid.timezones import HOUR_MS, MINUTE_MS, parse_iso_ms

FLAT = MonthHourSchedule([[1] * 24] * 12, [[1] * 24] * 12)
PEAK_4_TO_9 = MonthHourSchedule([[1] * 16 + [2] * 5 + [1] * 3] * 12, [[1] * 24] * 12)


def flat(price: float = 0.2, sell: float = 0.05, **kw: object) -> Tariff:
    return Tariff("flat", EnergyRates(FLAT, {1: (Tier(price, sell),)}), **kw)  # type: ignore[arg-type]


def hourly(start: str, kwh_import: list[float] | np.ndarray, kwh_export: list[float] | np.ndarray | None = None,
           step_ms: int = HOUR_MS) -> Metered:
    imp = np.asarray(kwh_import, dtype=float) * 1000
    exp = np.zeros_like(imp) if kwh_export is None else np.asarray(kwh_export, dtype=float) * 1000
    t0 = parse_iso_ms(start)
    return Metered(t0 + np.arange(len(imp)) * step_ms, step_ms, imp, exp)


def span(metered: Metered) -> tuple[int, int]:
    return int(metered.t_ms[0]), int(metered.t_ms[-1] + metered.step_ms)


def test_flat_price_times_energy_with_fixed_and_taxes():
    m = hourly("2025-01-01T00:00-05:00", [1.0] * (31 * 24))
    bill = price_bill(flat(0.2, fixed_monthly=10.0, tax_percent=10.0), m, "America/New_York", *span(m))
    (jan,) = bill.months
    assert jan.month == "2025-01" and jan.energy == pytest.approx(744 * 0.2)
    assert jan.fixed == 10.0 and jan.taxes == pytest.approx((148.8 + 10) * 0.1)
    assert bill.total == pytest.approx(158.8 * 1.1)
    assert bill.missing_hours == []


def test_a_tier_crossed_mid_month_prices_the_rest_higher():
    # 20 kWh a day: the 300 kWh block is full on the 15th; 16 days at the upper price
    rates = EnergyRates(FLAT, {1: (Tier(0.10, 0, 300), Tier(0.30))})
    m = hourly("2025-01-01T00:00Z", [20 / 24] * (31 * 24))
    (jan,) = price_bill(Tariff("tiers", rates), m, "UTC", *span(m)).months
    assert jan.energy == pytest.approx(300 * 0.10 + 320 * 0.30)
    assert [(line["tier"], line["kwh"]) for line in jan.energy_lines] == [(1, 300.0), (2, 320.0)]


def test_daily_tier_limits_count_the_month_days():
    rates = EnergyRates(FLAT, {1: (Tier(0.10, 0, 10), Tier(0.30))}, tier_unit=TierUnit.KWH_DAILY)
    m = hourly("2025-02-01T00:00Z", [1.0] * (28 * 24))  # 672 kWh; the block holds 280
    (feb,) = price_bill(Tariff("daily", rates), m, "UTC", *span(m)).months
    assert feb.energy == pytest.approx(280 * 0.1 + 392 * 0.3)


def test_per_period_tiers_fill_each_period_apart():
    rates = EnergyRates(PEAK_4_TO_9, {1: (Tier(0.1, 0, 100), Tier(0.2)), 2: (Tier(0.3, 0, 10), Tier(0.6))},
                        tier_scope=TierScope.PERIOD)
    m = hourly("2025-01-01T00:00Z", [1.0] * (31 * 24))
    jan = price_bill(Tariff("p", rates), m, "UTC", *span(m)).months[0]
    peak = 23 * 5  # 23 weekdays in January 2025, 5 peak hours each
    off = 744 - peak
    assert jan.energy == pytest.approx(100 * 0.1 + (off - 100) * 0.2 + 10 * 0.3 + (peak - 10) * 0.6)


def test_the_peak_follows_the_local_clock_across_spring_forward():
    # 2025-03-09, Los Angeles: 02:00 does not exist; 16:00 PDT is 23:00 UTC (it was 00:00 UTC the day before)
    rates = EnergyRates(PEAK_4_TO_9, {1: (Tier(0.1),), 2: (Tier(1.0),)})
    m = hourly("2025-03-10T00:00Z", [1.0] * 24, step_ms=HOUR_MS)  # Monday 10 March UTC = Sunday evening PDT ...
    tz = "America/Los_Angeles"
    bill = price_bill(Tariff("tou", rates), m, tz, *span(m))
    # UTC 00:00-23:59 on 10 March is 17:00 Sun .. 16:59 Mon PDT: Monday's 16:00 hour is the only weekday peak hour
    assert bill.total == pytest.approx(23 * 0.1 + 1 * 1.0)
    before = hourly("2025-03-03T00:00Z", [1.0] * 24)  # a week earlier, PST: 16:00 Mon is 00:00 Tue UTC
    assert price_bill(Tariff("tou", rates), before, tz, *span(before)).total == pytest.approx(24 * 0.1)


def test_demand_is_the_highest_window_average_not_the_highest_minute():
    # 1 kW all day, one minute at 16 kW: the 15-minute window holds (14 * 1 + 16) / 15 = 2 kW
    kw = np.ones(24 * 60)
    kw[600] = 16.0
    m = hourly("2025-06-02T00:00Z", kw / 60, step_ms=MINUTE_MS)
    demand = DemandCharges(window_min=15, flat=((DemandTier(10.0),),) * 12)
    june = price_bill(flat(0.0, demand=demand), m, "UTC", *span(m)).months[0]
    assert june.peak_demand_w == pytest.approx(2000.0)
    assert june.demand == pytest.approx(20.0)
    hourly_window = DemandCharges(window_min=60, flat=((DemandTier(10.0),),) * 12)
    assert price_bill(flat(0.0, demand=hourly_window), m, "UTC", *span(m)).months[0].peak_demand_w == \
        pytest.approx((59 + 16) / 60 * 1000)


def test_tiered_and_time_of_use_demand():
    kw = np.full(31 * 24, 2.0)
    kw[16] = 8.0  # Wed 1 Jan 2025 16:00, a peak hour
    kw[3] = 9.0  # 03:00, off-peak
    m = hourly("2025-01-01T00:00Z", kw)
    demand = DemandCharges(window_min=60, flat=((DemandTier(5.0, 5.0), DemandTier(10.0)),) * 12,
                           schedule=PEAK_4_TO_9, periods={1: (), 2: (DemandTier(3.0),)})
    jan = price_bill(flat(0.0, demand=demand), m, "UTC", *span(m)).months[0]
    assert jan.demand == pytest.approx(5 * 5 + 4 * 10 + 8 * 3)


def test_the_monthly_minimum_tops_up_a_small_bill():
    m = hourly("2025-01-01T00:00Z", [0.01] * (31 * 24))
    jan = price_bill(flat(0.2, fixed_monthly=5.0, minimum_monthly=12.0), m, "UTC", *span(m)).months[0]
    assert jan.minimum == pytest.approx(12.0 - 5.0 - 7.44 * 0.2)
    assert jan.total == pytest.approx(12.0)


def test_the_minimum_on_a_credit_month_is_added_in_full_as_sam_does():
    m = hourly("2025-01-01T00:00Z", [0.0] * 744, [1.0] * 744)
    jan = price_bill(flat(0.2, 0.1, fixed_monthly=5.0, minimum_monthly=12.0), m, "UTC", *span(m)).months[0]
    assert jan.export_credit == pytest.approx(74.4)
    assert jan.minimum == pytest.approx(12.0)  # max(-74.4 + 5, 0) = 0 counts as the month's bill
    assert jan.total == pytest.approx(5 + 12 - 74.4)


def test_net_metering_carries_surplus_kwh_and_pays_the_true_up():
    # Nov: 100 kWh surplus; Dec: 40 kWh use. Dec nets the carried kWh; the true-up pays the year's 60 kWh left
    nov = hourly("2025-11-01T00:00Z", np.zeros(720), np.full(720, 100 / 720))
    dec = hourly("2025-12-01T00:00Z", np.full(744, 40 / 744))
    both = Metered(np.concatenate([nov.t_ms, dec.t_ms]), HOUR_MS, np.concatenate([nov.import_wh, dec.import_wh]),
                   np.concatenate([nov.export_wh, dec.export_wh]))
    tariff = flat(0.3).with_export(ExportTerms(ExportRule.NET_METERING, true_up_rate=0.04))
    n, d = price_bill(tariff, both, "UTC", int(nov.t_ms[0]), int(dec.t_ms[-1]) + HOUR_MS).months
    assert n.energy == 0 and n.export_credit == 0
    assert n.carried_out_kwh == pytest.approx(100) and d.carried_in_kwh == pytest.approx(100)
    assert d.energy == 0 and d.carried_out_kwh == pytest.approx(60)
    assert d.true_up_credit == pytest.approx(60 * 0.04) and d.total == pytest.approx(-2.4)


def test_net_metering_nets_each_period_apart():
    # a month of off-peak export and peak import costs money though its total is an export, as in SAM
    kwh_in = np.zeros(31 * 24)
    kwh_out = np.zeros(31 * 24)
    t = hourly("2025-01-01T00:00Z", kwh_in).t_ms
    hours = ((t // HOUR_MS) % 24)
    kwh_out[hours == 12] = 5.0
    kwh_in[hours == 17] = 1.0
    m = Metered(t, HOUR_MS, kwh_in * 1000, kwh_out * 1000)
    rates = EnergyRates(PEAK_4_TO_9, {1: (Tier(0.1),), 2: (Tier(0.5),)})
    tariff = Tariff("tou", rates, export=ExportTerms(ExportRule.NET_METERING))
    jan = price_bill(tariff, m, "UTC", *span(m)).months[0]
    weekdays = sum(date(2025, 1, d).weekday() < 5 for d in range(1, 32))
    assert (weekdays, 31 - weekdays) == (23, 8)
    # each weekday's 17:00 kWh is bought at the peak price; a weekend's 17:00 is off-peak, netted by the noons
    assert jan.energy == pytest.approx(weekdays * 1.0 * 0.5)
    assert [(line["period"], line["kwh"]) for line in jan.energy_lines] == [(2, pytest.approx(weekdays * 1.0))]
    assert jan.carried_out_kwh == pytest.approx(31 * 5.0 - (31 - weekdays) * 1.0)  # off-peak: 155 out, 8 in


def test_a_net_metering_month_never_pays_for_energy_as_in_sam():
    # SAM's ur_calc sets a net-metering month's negative energy charge to 0; net billing keeps it
    m = hourly("2025-01-01T00:00Z", [1.0] * 24 * 31)
    nm = price_bill(flat(-0.05, export=ExportTerms(ExportRule.NET_METERING)), m, "UTC", *span(m)).months[0]
    nb = price_bill(flat(-0.05, export=ExportTerms(ExportRule.NET_BILLING)), m, "UTC", *span(m)).months[0]
    assert nm.energy == 0.0 and nm.energy_lines[0]["cost"] == pytest.approx(-0.05 * 744)
    assert nb.energy == pytest.approx(-0.05 * 744)


def test_buy_all_sell_all_minimum_ignores_the_sale():
    m = hourly("2025-01-01T00:00Z", [0.01] * 744, [1.0] * 744)
    tariff = flat(0.2, 0.1, minimum_monthly=10.0).with_export(ExportTerms(ExportRule.BUY_ALL_SELL_ALL))
    jan = price_bill(tariff, m, "UTC", *span(m)).months[0]
    assert jan.minimum == pytest.approx(10.0 - 7.44 * 0.2)
    assert jan.export_credit == pytest.approx(74.4)


def test_no_export_credit_and_a_sell_price_override():
    m = hourly("2025-01-01T00:00Z", [1.0] * 744, [1.0] * 744)
    none = price_bill(flat(0.2, 0.1).with_export(ExportTerms(ExportRule.NONE)), m, "UTC", *span(m))
    assert none.months[0].export_credit == 0
    fixed_sell = price_bill(flat(0.2, 0.1).with_export(ExportTerms(sell_price=0.03)), m, "UTC", *span(m))
    assert fixed_sell.months[0].export_credit == pytest.approx(744 * 0.03)


def test_dynamic_prices_with_an_adder_and_a_percentage():
    m = hourly("2025-01-01T00:00Z", [1.0, 2.0, 1.0])
    spot = DynamicPrices(m.t_ms, HOUR_MS, np.array([0.10, 0.20, -0.05]), adder=0.02, percent=10.0)
    tariff = Tariff("dyn", EnergyRates(FLAT, {1: (Tier(0.0),)}), dynamic=spot)
    bill = price_bill(tariff, m, "UTC", *span(m))
    assert bill.months[0].energy == pytest.approx(1 * 0.13 + 2 * 0.24 + 1 * (-0.055 + 0.02))
    short = DynamicPrices(m.t_ms[:2], HOUR_MS, np.array([0.1, 0.2]))
    with pytest.raises(TariffError, match="does not cover 1 metered interval"):
        price_bill(Tariff("dyn", tariff.energy, dynamic=short), m, "UTC", *span(m))


def test_a_missing_month_is_listed_and_the_rest_priced():
    jan = hourly("2025-01-01T00:00Z", [1.0] * 744)
    mar = hourly("2025-03-01T00:00Z", [1.0] * 744)
    m = Metered(np.concatenate([jan.t_ms, mar.t_ms]), HOUR_MS, np.concatenate([jan.import_wh, mar.import_wh]),
                np.zeros(1488))
    bill = price_bill(flat(0.2, fixed_monthly=10), m, "UTC", int(jan.t_ms[0]), int(mar.t_ms[-1]) + HOUR_MS)
    assert [b.month for b in bill.months] == ["2025-01", "2025-02", "2025-03"]
    assert [b.missing_hours for b in bill.months] == [0, 672, 0]
    assert len(bill.missing_hours) == 672 and bill.missing_hours[0] == "2025-02-01T00:00:00+00:00"
    assert bill.months[0].energy == bill.months[2].energy == pytest.approx(744 * 0.2)


def test_billing_months_from_a_billing_day_across_dst():
    months = billing_months(parse_iso_ms("2025-03-01T00:00-08:00"), parse_iso_ms("2025-05-01T00:00-07:00"),
                            "America/Los_Angeles", billing_day=15)
    assert [m[0] for m in months] == ["2025-02", "2025-03", "2025-04"]
    assert months[1][1] == parse_iso_ms("2025-03-15T00:00-07:00")


def test_a_partial_month_prorates_the_fixed_charge():
    m = hourly("2025-04-01T00:00Z", [0.0] * (15 * 24))
    (apr,) = price_bill(flat(fixed_monthly=30.0, fixed_daily=1.0), m, "UTC", *span(m)).months
    assert apr.days == 15 and apr.fraction == pytest.approx(0.5)
    assert apr.fixed == pytest.approx(15 + 15)


def test_a_bad_tariff_names_its_field():
    with pytest.raises(TariffError, match=r"period 2 is in the schedule but has no price"):
        EnergyRates(PEAK_4_TO_9, {1: (Tier(0.1),)})
    with pytest.raises(TariffError, match=r"energy.periods\[1\].tiers\[0\].max: must be >= 0"):
        EnergyRates(FLAT, {1: (Tier(0.1, 0, -5), Tier(0.2))})
    with pytest.raises(TariffError, match="net metering"):
        Tariff("x", EnergyRates(FLAT, {1: (Tier(0.1),)}), export=ExportTerms(ExportRule.NET_METERING),
               dynamic=DynamicPrices(np.array([0]), HOUR_MS, np.array([0.1])))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), hours=st.integers(1, 24 * 70), price=st.floats(0.01, 1.0),
       zone=st.sampled_from(["UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Kolkata"]))
def test_a_flat_tariff_bills_energy_times_price(seed: int, hours: int, price: float, zone: str):
    kwh = np.random.default_rng(seed).uniform(0, 5, hours)
    m = hourly("2025-01-20T00:00Z", kwh)
    bill = price_bill(flat(price), m, zone, *span(m))
    assert bill.total == pytest.approx(kwh.sum() * price, rel=1e-9, abs=1e-9)
    assert sum(b.import_wh for b in bill.months) == pytest.approx(kwh.sum() * 1000)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rule=st.sampled_from([ExportRule.NET_BILLING, ExportRule.NONE, ExportRule.BUY_ALL_SELL_ALL]),
)
def test_the_bill_of_a_load_is_the_sum_of_its_months_bills(seed: int, rule: ExportRule):
    rng = np.random.default_rng(seed)
    n = 24 * 120
    m = hourly("2025-01-01T00:00-05:00", rng.uniform(0, 3, n), rng.uniform(0, 2, n))
    rates = EnergyRates(PEAK_4_TO_9, {1: (Tier(0.1, 0.02, 200), Tier(0.2, 0.03)),
                                      2: (Tier(0.4, 0.08, 200), Tier(0.5, 0.09))})
    demand = DemandCharges(window_min=60, flat=((DemandTier(4.0),),) * 12, schedule=PEAK_4_TO_9,
                           periods={1: (), 2: (DemandTier(2.0),)})
    tariff = Tariff("t", rates, fixed_monthly=9.0, minimum_monthly=20.0, demand=demand, tax_percent=7.0,
                    export=ExportTerms(rule))
    tz = "America/New_York"
    whole = price_bill(tariff, m, tz, *span(m))
    parts = 0.0
    for b in whole.months:
        parts += price_bill(tariff, m, tz, b.start_ms, b.end_ms).total
    assert whole.total == pytest.approx(parts, rel=1e-12)
    assert len(whole.months) == 5 and date.fromisoformat(whole.months[-1].month + "-01").month == 5
