"""The marginal prices of the day view (``homegrid.tariffs.meters.import_price`` and ``export_price``) against the
bill engine: on rates without blocks, each hour's import x import price - export x export price adds up to the
bill's energy charge less its export credit, whatever the hours, periods and export rule (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.tariffs import EnergyRates, ExportRule, ExportTerms, MonthHourSchedule, Tariff, Tier
from homegrid.tariffs.bill import Metered, price_bill
from homegrid.tariffs.meters import export_price, import_price
from homegrid.timezones import HOUR_MS, parse_iso_ms

ZONES = ("America/New_York", "Europe/Berlin", "Australia/Adelaide", "UTC")


@st.composite
def cases(draw: st.DrawFn) -> tuple[Tariff, Metered, str]:
    n_periods = draw(st.integers(1, 4))
    weekday = np.array(draw(st.lists(st.integers(0, n_periods - 1), min_size=24, max_size=24)) * 12).reshape(12, 24)
    weekend = np.array(draw(st.lists(st.integers(0, n_periods - 1), min_size=24, max_size=24)) * 12).reshape(12, 24)
    price = st.floats(-0.1, 1.0, allow_nan=False).map(lambda v: round(v, 4))
    periods = {p: (Tier(draw(price), draw(price)),) for p in range(n_periods)}
    rule = draw(st.sampled_from([ExportRule.NET_BILLING, ExportRule.NONE]))
    sell = draw(st.none() | price)
    tariff = Tariff("random", EnergyRates(MonthHourSchedule(weekday.tolist(), weekend.tolist()), periods),
                    export=ExportTerms(rule, sell_price=sell))
    zone = draw(st.sampled_from(ZONES))
    hours = draw(st.integers(1, 72))
    start = parse_iso_ms("2025-03-28T00:00:00Z") + draw(st.integers(0, 24 * 14)) * HOUR_MS  # spring's DST days
    energy = st.floats(0, 5000, allow_nan=False)
    imp = np.array(draw(st.lists(energy, min_size=hours, max_size=hours)))
    exp = np.array(draw(st.lists(energy, min_size=hours, max_size=hours)))
    t = start + np.arange(hours, dtype=np.int64) * HOUR_MS
    return tariff, Metered(t, HOUR_MS, imp, exp), zone


@settings(max_examples=150, deadline=None)
@given(cases())
def test_hourly_costs_add_up_to_the_bills_energy_less_its_credit(case):
    tariff, metered, zone = case
    bill = price_bill(tariff, metered, zone, int(metered.t_ms[0]), int(metered.t_ms[-1] + HOUR_MS))
    buy, sell = import_price(tariff, metered.t_ms, zone), export_price(tariff, metered.t_ms, zone)
    hourly = metered.import_wh / 1000 * buy - metered.export_wh / 1000 * sell
    billed = sum(m.energy - m.export_credit for m in bill.months)
    assert hourly.sum() == pytest.approx(billed, abs=1e-6, rel=1e-9)


def test_net_metering_credits_an_export_at_the_import_price_of_its_hour():
    schedule = MonthHourSchedule([[0] * 16 + [1] * 5 + [0] * 3] * 12, [[0] * 24] * 12)
    tariff = Tariff("nem", EnergyRates(schedule, {0: (Tier(0.1, 0.02),), 1: (Tier(0.4, 0.02),)}),
                    export=ExportTerms(ExportRule.NET_METERING))
    t = parse_iso_ms("2025-06-02T00:00:00Z") + np.arange(24, dtype=np.int64) * HOUR_MS  # a Monday
    assert export_price(tariff, t, "UTC").tolist() == [0.1] * 16 + [0.4] * 5 + [0.1] * 3
    # an hour's export nets an import of the same period: 2 kWh in at 17:00 and out at 18:00 cost nothing
    hour = np.arange(24)
    metered = Metered(t, HOUR_MS, np.where(hour == 17, 2000.0, 0.0), np.where(hour == 18, 2000.0, 0.0))
    (m,) = price_bill(tariff, metered, "UTC", int(t[0]), int(t[-1] + HOUR_MS)).months
    assert m.energy - m.export_credit == pytest.approx(0.0, abs=1e-9)
