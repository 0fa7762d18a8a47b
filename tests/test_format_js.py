"""homegrid/web/src/format.js, the units and dates of every figure on the dashboard, run through Node."""

from __future__ import annotations

import pytest

from .formatjs import format_js, run_format_js

#: (function, arguments, what the page shows). JavaScript rounds halves up (toFixed, Math.round), where
#: Python's format and round go to even: 1.25 kW reads "1.3 kW", 12.5 % reads "13 %".
CASES = [
    ("kw", (0,), "0.00 kW"),
    ("kw", (-0.4,), "0.00 kW"),  # no "-0.00": the sign is left to the words around it
    ("kw", (-1520,), "1.5 kW"),
    ("kw", (999,), "1.00 kW"),  # two decimals under 1 kW
    ("kw", (1000,), "1.0 kW"),
    ("kw", (1250,), "1.3 kW"),
    ("kw", (7200,), "7.2 kW"),
    ("kw", (None,), "–"),
    ("kwh", (0,), "0.00 kWh"),
    ("kwh", (940,), "0.94 kWh"),
    ("kwh", (-12_345,), "12.3 kWh"),
    ("kwh", (99_950,), "100.0 kWh"),  # one decimal under 100 kWh
    ("kwh", (100_000,), "100 kWh"),
    ("kwh", (1_234_567,), "1235 kWh"),
    ("kwh", (None,), "–"),
    ("pct", (12.5,), "13 %"),
    ("pct", (99.4,), "99 %"),
    ("pct", (100,), "100 %"),
    ("pct", (None,), "–"),
    ("duration", (0,), "0 s"),
    ("duration", (40.4,), "40 s"),
    ("duration", (59.5,), "1 min"),  # 60 s rounds to a minute
    ("duration", (89.5,), "2 min"),  # 90 s: half a minute rounds up
    ("duration", (3569,), "59 min"),
    ("duration", (3599,), "1 h 00 min"),
    ("duration", (7500,), "2 h 05 min"),
    ("duration", (None,), "–"),
    ("longDate", ("2026-11-28",), "Saturday 2026-11-28"),
    ("ago", (1_000, 181_000), "3 min ago"),
    ("ago", (None,), "never"),
    # money in the tariff's currency (Intl.NumberFormat), its minor unit, the sign in front, no "-$0.00"
    ("money", (12.3, "USD"), "$12.30"),
    ("money", (-3.5, "EUR"), "-€3.50"),
    ("money", (1234.567, "GBP"), "£1,234.57"),
    ("money", (-0.004, "USD"), "$0.00"),
    ("money", (1234.5, "JPY"), "¥1,235"),  # no minor unit
    ("money", (None, "USD"), "–"),
    ("unitPrice", (0.12, "USD"), "$0.120/kWh"),
    ("unitPrice", (0.28751, "EUR"), "€0.2875/kWh"),
    ("unitPrice", (-0.01, "EUR"), "-€0.010/kWh"),  # a negative spot price
    ("unitPrice", (None, "USD"), "–"),
]


@pytest.fixture(scope="module")
def shown_by_the_page() -> dict[tuple, str]:
    """Every case's result, from one Node process."""
    calls = [[function, *args] for function, args, _ in CASES]
    return dict(zip([(f, a) for f, a, _ in CASES], run_format_js(calls), strict=True))


@pytest.mark.parametrize(("function", "args", "shown"), CASES, ids=[f"{f}{a}" for f, a, _ in CASES])
def test_format_js_shows_each_figure_as_the_page_does(shown_by_the_page, function, args, shown):
    assert shown_by_the_page[function, args] == shown


def test_one_call_at_a_time_gives_the_same():
    assert format_js("kw", 1250) == "1.3 kW"


def test_distances_follow_the_sites_units():
    assert run_format_js([["distance", 312], ["setUnits", "imperial"], ["distance", 312], ["distance", None],
                          ["setUnits", "metric"], ["distance", 312.5]]) == ["312 km", None, "194 mi", "–", None,
                                                                            "313 km"]


def test_dates_and_times_are_iso_in_the_sites_zone():
    got = run_format_js([
        ["setZone", "America/New_York"],
        ["isoDate", "2026-11-28T03:00:00Z"],  # still the 27th in New York
        ["clock", "2026-11-28T19:05:07Z"],
        ["clock", "2026-11-28T19:05:07Z", True],
        ["isoDate", None],
        ["setZone", "Asia/Kolkata"],
        ["clock", "2026-11-28T19:05:07Z"],  # zones half an hour off UTC
    ])
    assert got == [None, "2026-11-27", "14:05:07", "Sat 2026-11-28 14:05", "–", None, "00:35:07"]


def test_an_unknown_function_fails_the_harness():
    with pytest.raises(AssertionError, match=r"format\.js has no function nope"):
        run_format_js([["nope"]])
