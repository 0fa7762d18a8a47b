"""Live price sources (homegrid/devices/prices/) on recorded replies, and the hub's dynamic prices from them.

The aWATTar reply in tests/fixtures/prices is real (its README gives the provenance); the DST days are SMARD's
real 2015 prices put in aWATTar's shape; quarter hours, missing hours and malformed replies are made here from
the recorded reply, each named where it is made. No test reaches the network: httpx.MockTransport answers.
"""

from __future__ import annotations

import asyncio
import copy
import csv
import json
import logging
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.devices.prices import AwattarSource, PriceFeedError, marketdata_url, parse_marketdata
from homegrid.devices.prices.awattar import parse_marketdata_text
from homegrid.hub.prices import PriceTerms, dynamic_prices, fetch_dynamic_prices, load_dynamic_prices
from homegrid.readings.prices import read_price_csv, write_price_csv
from homegrid.tariffs import DynamicPrices, TariffError
from homegrid.timezones import HOUR_MS, MINUTE_MS, local_day_bounds, parse_iso_ms
from tests.conftest import SHARED_DATA

FIXTURES = Path(__file__).parent / "fixtures" / "prices"
RECORDED = FIXTURES / "awattar_de_2024-06-14_72h.json"
BERLIN = ZoneInfo("Europe/Berlin")
SMARD = SHARED_DATA / "prices" / "smard_day_ahead_prices_2015_hourly.csv"
START, END = 1718316000000, 1718575200000  # the recorded reply's span: 2024-06-14 .. 06-17, 00:00 CEST


def recorded() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return doc


def serve(body: bytes | str | dict[str, Any], status: int = 200, seen: list[httpx.Request] | None = None
          ) -> httpx.MockTransport:
    """A transport answering every request with ``body`` (JSON-encoded when a dict)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=data, headers={"Content-Type": "application/json"})

    return httpx.MockTransport(handler)


# ----------------------------------------------------------------------------- the recorded reply


def test_the_recorded_reply_gives_72_hourly_prices_per_kwh() -> None:
    s = parse_marketdata(recorded(), "recorded")
    assert len(s) == 72 and s.step_ms == HOUR_MS and s.gaps == () and s.currency == "EUR"
    assert (s.t_ms[0], s.end_ms[-1]) == (START, END)
    assert (np.diff(s.t_ms) == HOUR_MS).all() and (s.end_ms - s.t_ms == HOUR_MS).all()
    assert s.import_price[0] == pytest.approx(0.08313)  # 83.13 Eur/MWh
    assert s.import_price.min() == pytest.approx(-0.08001)  # -80.01 Eur/MWh, Saturday 15 June 14:00 CEST
    assert s.t_ms[int(np.argmin(s.import_price))] == parse_iso_ms("2024-06-15T14:00:00+02:00")
    assert s.export_price is None
    for day in (date(2024, 6, 14), date(2024, 6, 15), date(2024, 6, 16)):
        a, b = local_day_bounds(day, BERLIN)
        assert int(((s.t_ms >= a) & (s.t_ms < b)).sum()) == 24


def test_fetch_asks_for_the_span_at_the_market_areas_host_and_reads_the_reply() -> None:
    seen: list[httpx.Request] = []
    source = AwattarSource("de", transport=serve(RECORDED.read_bytes(), seen=seen))
    s = asyncio.run(source.fetch(START, END))
    assert str(seen[0].url) == "https://api.awattar.de/v1/marketdata?start=1718316000000&end=1718575200000"
    assert len(s) == 72 and s.source == str(seen[0].url)
    at = AwattarSource("AT", transport=serve(RECORDED.read_bytes(), seen=seen))
    asyncio.run(at.fetch(START, END))
    assert seen[1].url.host == "api.awattar.at"


def test_marketdata_url_forms() -> None:
    assert marketdata_url("de") == "https://api.awattar.de/v1/marketdata"
    assert marketdata_url("at", 1, 2) == "https://api.awattar.at/v1/marketdata?start=1&end=2"
    assert marketdata_url("ch", 1, base="http://127.0.0.1:9/") == "http://127.0.0.1:9/v1/marketdata?start=1"
    with pytest.raises(PriceFeedError, match="country: aWATTar serves at, de, not 'ch'"):
        marketdata_url("ch")


def test_dynamic_prices_from_the_recorded_reply_buy_at_instants_with_adder_and_percent() -> None:
    s = parse_marketdata(recorded())
    terms = PriceTerms(adder=0.1848, percent=19)  # e.g. grid fees and levies per kWh, and German VAT
    prices = dynamic_prices(s, terms)
    t = np.array([START, START + 30 * MINUTE_MS, START + HOUR_MS, parse_iso_ms("2024-06-15T14:59:59.999+02:00"),
                  END - 1, END, START - 1])
    buy, known = prices.buy(t)
    assert known.tolist() == [True, True, True, True, True, False, False]
    spot = np.array([83.13, 83.13, 71.45, -80.01, 94.44]) / 1000
    assert buy[:5] == pytest.approx(spot * 1.19 + 0.1848)
    assert prices.sell(t) is None  # aWATTar publishes no export price: the tariff's export terms apply


# ----------------------------------------------------------------------------- DST days (SMARD's real prices)


def smard_day_as_awattar(day: date) -> dict[str, Any]:
    """SMARD's German day-ahead prices of one local day in the shape of an aWATTar reply (derived, not recorded:
    aWATTar's own reply for a DST day was not found in a public source)."""
    with SMARD.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    j = rows[0].index("Germany/Austria/Luxembourg[€/MWh]")
    seen: set[datetime] = set()
    data = []
    for r in rows[1:]:
        wall = datetime.strptime(f"{r[0]} {r[1]}", "%b %d, %Y %I:%M %p")
        local = wall.replace(tzinfo=BERLIN, fold=1 if wall in seen else 0)
        seen.add(wall)
        if local.date() != day:
            continue
        start = int(local.timestamp() * 1000)
        data.append({"start_timestamp": start, "end_timestamp": start + HOUR_MS, "marketprice": float(r[j]),
                     "unit": "Eur/MWh"})
    return {"object": "list", "data": data, "url": "/de/v1/marketdata"}


@pytest.mark.parametrize(("day", "hours"), [(date(2015, 3, 29), 23), (date(2015, 10, 25), 25)])
def test_a_dst_day_is_23_or_25_hourly_prices_covering_the_local_day(day: date, hours: int) -> None:
    a, b = local_day_bounds(day, BERLIN)
    seen: list[httpx.Request] = []
    source = AwattarSource("de", transport=serve(smard_day_as_awattar(day), seen=seen))
    s = asyncio.run(source.fetch(a, b))
    assert f"start={a}&end={b}" in str(seen[0].url)
    assert len(s) == hours and s.gaps == () and (s.t_ms[0], s.end_ms[-1]) == (a, b)
    prices = dynamic_prices(s)
    probe = np.arange(a, b, 15 * MINUTE_MS)
    assert prices.buy(probe)[1].all()  # every quarter hour of the local day is priced


def test_the_two_2_oclocks_of_october_are_priced_apart() -> None:
    prices = dynamic_prices(parse_marketdata(smard_day_as_awattar(date(2015, 10, 25))), PriceTerms(percent=20))
    buy, known = prices.buy(np.array([parse_iso_ms("2015-10-25T02:10:00+02:00"),
                                      parse_iso_ms("2015-10-25T02:10:00+01:00")]))
    assert known.all() and buy.tolist() == pytest.approx([0.02507 * 1.2, 0.02502 * 1.2])  # SMARD: 25.07, 25.02


# ----------------------------------------------------------------------------- quarter hours and missing hours


def quarter_hours(doc: dict[str, Any]) -> dict[str, Any]:
    """The recorded reply with each hour split into four quarter-hour entries of the same price (made here: a
    15-minute product's shape, with the recorded prices)."""
    out = copy.deepcopy(doc)
    out["data"] = [
        {**e, "start_timestamp": e["start_timestamp"] + q * 15 * MINUTE_MS,
         "end_timestamp": e["start_timestamp"] + (q + 1) * 15 * MINUTE_MS}
        for e in doc["data"] for q in range(4)
    ]
    return out


def test_quarter_hour_entries_read_with_their_own_ends() -> None:
    s = parse_marketdata(quarter_hours(recorded()))
    assert len(s) == 288 and s.step_ms == 15 * MINUTE_MS and s.gaps == ()
    assert (s.t_ms[0], s.end_ms[-1]) == (START, END)
    assert s.import_price[:4].tolist() == pytest.approx([0.08313] * 4)


def test_a_missing_quarter_hour_is_a_gap_and_not_priced() -> None:
    doc = quarter_hours(recorded())
    del doc["data"][5]  # 01:15-01:30 CEST of the first day
    s = parse_marketdata(doc)
    (g,) = s.gaps
    assert (g.start_ms, g.end_ms) == (START + 75 * MINUTE_MS, START + 90 * MINUTE_MS)
    _, known = dynamic_prices(s).buy(np.array([g.start_ms - 1, g.start_ms, g.end_ms - 1, g.end_ms]))
    assert known.tolist() == [True, False, False, True]


def test_missing_hours_are_gaps_and_entries_in_any_order_are_sorted() -> None:
    doc = recorded()
    del doc["data"][30:33]  # three hours of the 15th, 08:00-11:00 CEST
    doc["data"].reverse()
    s = parse_marketdata(doc)
    assert len(s) == 69 and (np.diff(s.t_ms) > 0).all()
    (g,) = s.gaps
    assert (g.start_ms, g.end_ms) == (START + 30 * HOUR_MS, START + 33 * HOUR_MS)
    assert g.duration_ms == 3 * HOUR_MS and "no price for 3 h" in str(g)
    assert s.covered_ms == 69 * HOUR_MS


# ----------------------------------------------------------------------------- malformed replies


def change(path: str, value: Any) -> dict[str, Any]:
    """The recorded reply with one field set (``data.3.marketprice``) or removed (value ``...``)."""
    doc = recorded()
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is ...:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "expected a JSON object with a 'data' list, got list"),
        ({"object": "error", "message": "rate limit"}, "data: expected a list of prices, got no such field"),
        (change("data", {"a": 1}), "data: expected a list of prices, got dict"),
        (change("data", []), "data: the reply holds no prices"),
        (change("data.3", "83.13"), "data[3]: expected an object, got str"),
        (change("data.3.marketprice", ...), "data[3].marketprice: missing"),
        (change("data.3.marketprice", "83.13"), "data[3].marketprice: expected a number, got '83.13'"),
        (change("data.3.marketprice", None), "data[3].marketprice: expected a number, got None"),
        (change("data.3.marketprice", float("nan")), "data[3].marketprice: expected a number, got nan"),
        (change("data.3.unit", "USD/MWh"), "data[3].unit: expected one of Eur/MWh, Eur/kWh, got 'USD/MWh'"),
        (change("data.3.start_timestamp", "1718326800000"), "data[3].start_timestamp: expected epoch milliseconds"),
        (change("data.3.start_timestamp", True), "data[3].start_timestamp: expected epoch milliseconds, got True"),
        (change("data.3.end_timestamp", 1718326800000.5), "data[3].end_timestamp: 1718326800000.5 is not a time"),
        (change("data.3.end_timestamp", 1718326800000), "data[3].end_timestamp: 1718326800000 is not after"),
        (change("data.4.start_timestamp", 1718328000000), "data[4].start_timestamp: 1718328000000 falls inside "
                                                          "data[3]"),
        (change("data.4", recorded()["data"][3]), "data[4].start_timestamp: 1718326800000 falls inside data[3]"),
    ],
)
def test_a_malformed_reply_is_an_error_naming_the_field(doc: Any, message: str) -> None:
    with pytest.raises(PriceFeedError) as caught:
        parse_marketdata(doc, "reply")
    assert message in str(caught.value) and str(caught.value).startswith("reply: ")


def test_text_that_is_not_json_is_named_with_its_beginning() -> None:
    with pytest.raises(PriceFeedError, match=r"reply: not JSON \(JSONDecodeError.*it begins '<html>Bad"):
        parse_marketdata_text(b"<html>Bad Gateway</html>", "reply")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["data", "object", "start_timestamp", "end_timestamp", "marketprice", "unit", "x"]),
        inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_prices_or_a_price_feed_error(doc: Any) -> None:
    try:
        s = parse_marketdata(doc)
    except PriceFeedError:
        return
    assert len(s) >= 1 and (s.end_ms > s.t_ms).all() and np.isfinite(s.import_price).all()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 71), max_size=20), st.sampled_from(["Eur/MWh", "eur/mwh", "Eur/kWh"]))
def test_removing_entries_leaves_exactly_those_spans_uncovered(removed: list[int], unit: str) -> None:
    doc = recorded()
    for e in doc["data"]:
        e["unit"] = unit
    keep = [e for k, e in enumerate(doc["data"]) if k not in set(removed)]
    if not keep:
        return
    doc["data"] = keep
    s = parse_marketdata(doc)
    factor = 1e-3 if unit.lower() == "eur/mwh" else 1.0
    prices = dynamic_prices(s)
    hours = START + (np.arange(72) * HOUR_MS) + 20 * MINUTE_MS
    buy, known = prices.buy(hours)
    expected_known = np.array([k not in set(removed) for k in range(72)])
    inside = (hours >= s.t_ms[0]) & (hours < s.end_ms[-1])
    assert (known == expected_known & inside).all()
    original = np.array([e["marketprice"] for e in recorded()["data"]]) * factor
    assert buy[known] == pytest.approx(original[known])


# ----------------------------------------------------------------------------- failures of the request


def raising(exc: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (serve(b'{"error": "Bad Request"}', status=400), "HTTP 400 Bad Request: {\"error\": \"Bad Request\"}"),
        (serve(b"", status=503), "HTTP 503 Service Unavailable"),
        (raising(httpx.ConnectError("Name or service not known")), "cannot reach aWATTar DE: ConnectError"),
        (raising(httpx.ReadTimeout("timed out")), "no answer within 15 s"),
        (serve(b"{}"), "data: expected a list of prices"),
    ],
)
def test_a_failed_request_is_a_price_feed_error(transport: httpx.MockTransport, message: str) -> None:
    with pytest.raises(PriceFeedError) as caught:
        asyncio.run(AwattarSource("de", transport=transport).fetch(START, END))
    assert message in str(caught.value)
    assert str(caught.value).startswith("https://api.awattar.de/v1/marketdata?start=")


def test_an_oversized_reply_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("homegrid.devices.prices.awattar.MAX_REPLY_BYTES", 1000)
    with pytest.raises(PriceFeedError, match="the reply exceeds 1,000 bytes"):
        asyncio.run(AwattarSource("de", transport=serve(RECORDED.read_bytes())).fetch(START, END))


@pytest.mark.parametrize(("start", "end"), [(END, START), (START, START), (START, START + 367 * 86_400_000)])
def test_a_bad_span_is_refused_before_asking(start: int, end: int) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(PriceFeedError, match="span: expected an end after the start"):
        asyncio.run(AwattarSource("de", transport=serve(b"{}", seen=seen)).fetch(start, end))
    assert seen == []


# ----------------------------------------------------------------------------- the hub


def test_the_hub_gets_dynamic_prices_from_a_working_source() -> None:
    source = AwattarSource("de", transport=serve(RECORDED.read_bytes()))
    prices = asyncio.run(fetch_dynamic_prices(source, START, END, PriceTerms(adder=0.15, percent=10)))
    assert isinstance(prices, DynamicPrices)
    buy, known = prices.buy(np.array([START]))
    assert known.all() and buy[0] == pytest.approx(0.08313 * 1.1 + 0.15)


@pytest.mark.parametrize(
    "transport",
    [serve(b"<html>oops</html>"), serve(b"", status=500), raising(httpx.ConnectError("refused")),
     serve(json.dumps(change("data.3.marketprice", "x")).encode())],
)
def test_a_failing_source_never_stops_the_hub(transport: httpx.MockTransport, caplog: pytest.LogCaptureFixture
                                              ) -> None:
    source = AwattarSource("de", transport=transport)
    with caplog.at_level(logging.WARNING, logger="homegrid.hub.prices"):
        assert asyncio.run(fetch_dynamic_prices(source, START, END)) is None
    (record,) = caplog.records
    assert record.getMessage().startswith("prices from aWATTar DE not used: https://api.awattar.de/v1/marketdata")


def test_bad_terms_are_named() -> None:
    with pytest.raises(TariffError, match=r"prices.adder: expected a finite number, got nan"):
        dynamic_prices(parse_marketdata(recorded()), PriceTerms(adder=float("nan")))
    source = AwattarSource("de", transport=serve(RECORDED.read_bytes()))
    assert asyncio.run(fetch_dynamic_prices(source, START, END, PriceTerms(percent=float("inf")))) is None


def test_a_csv_with_export_prices_buys_and_sells_at_instants_with_both_terms(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "time,import_price,export_price\n"
        "2024-06-15T15:00:00+02:00,-0.06546,-0.06546\n"
        "2024-06-15T16:00:00+02:00,-0.08001,-0.08001\n"
        "2024-06-15T17:00:00+02:00,0.0,bad\n"
        "2024-06-15T18:00:00+02:00,-0.02953,-0.02953\n",
        encoding="utf-8",
    )
    terms = PriceTerms(adder=0.2, percent=19, export_adder=-0.005, export_percent=0)
    prices, found = load_dynamic_prices(path, terms)
    assert prices is not None
    assert [(p.line, p.field) for p in found.problems] == [(4, "export_price")]
    (g,) = found.gaps
    assert g.line == 5 and g.duration_ms == HOUR_MS
    t = np.array([parse_iso_ms(x) for x in ("2024-06-15T15:59:59+02:00", "2024-06-15T16:30:00+02:00",
                                            "2024-06-15T17:30:00+02:00", "2024-06-15T18:45:00+02:00")])
    buy, known = prices.buy(t)
    sold = prices.sell(t)
    assert sold is not None
    sell, sell_known = sold
    assert known.tolist() == sell_known.tolist() == [True, True, False, True]
    assert buy[known] == pytest.approx(np.array([-0.06546, -0.08001, -0.02953]) * 1.19 + 0.2)
    assert sell[known] == pytest.approx(np.array([-0.06546, -0.08001, -0.02953]) - 0.005)


def test_a_fetched_series_written_as_csv_reads_back_to_the_same_prices(tmp_path: Path) -> None:
    s = parse_marketdata(recorded())
    write_price_csv(tmp_path / "awattar.csv", s, "Europe/Berlin")
    back = read_price_csv(tmp_path / "awattar.csv").series
    assert back is not None
    assert back.t_ms.tolist() == s.t_ms.tolist() and back.end_ms.tolist() == s.end_ms.tolist()
    assert back.import_price.tolist() == s.import_price.tolist()
    assert (tmp_path / "awattar.csv").read_text().splitlines()[1] == "2024-06-14T00:00:00+02:00,0.08313"


def test_dynamic_prices_refuse_ends_that_do_not_fit() -> None:
    t = np.array([0, HOUR_MS], dtype=np.int64)
    p = np.array([0.1, 0.2])
    with pytest.raises(TariffError, match=r"prices\.end: every interval must end after it starts"):
        DynamicPrices(t, HOUR_MS, p, end_ms=np.array([0, 2 * HOUR_MS]))
    with pytest.raises(TariffError, match=r"prices\.end: an interval may not run past the next one's start"):
        DynamicPrices(t, HOUR_MS, p, end_ms=np.array([2 * HOUR_MS, 3 * HOUR_MS]))
    with pytest.raises(TariffError, match=r"prices\.end: expected 2 ends"):
        DynamicPrices(t, HOUR_MS, p, end_ms=np.array([HOUR_MS]))
    legacy = DynamicPrices(t, HOUR_MS, p)  # without ends: each price holds to the next start, the last a step
    assert legacy.buy(np.array([HOUR_MS - 1, 2 * HOUR_MS - 1, 2 * HOUR_MS]))[1].tolist() == [True, True, False]
