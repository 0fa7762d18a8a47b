"""aWATTar's public day-ahead market prices (Germany and Austria): ``GET /v1/marketdata``.

aWATTar is a dynamic-tariff retailer whose customers pay the day-ahead (EPEX Spot) price of each hour plus a
fixed adder and a percentage. Its public API needs no key::

    GET https://api.awattar.de/v1/marketdata?start=<ms>&end=<ms>     (api.awattar.at for Austria)

and answers with a list of intervals, times in UTC epoch milliseconds, prices per MWh::

    {"object": "list",
     "data": [{"start_timestamp": 1718316000000, "end_timestamp": 1718319600000,
               "marketprice": 83.13, "unit": "Eur/MWh"}, ...],
     "url": "/de/v1/marketdata"}

Without ``start`` the API answers from the current hour on (about 24 h, 14:00 CET adds the next day). Each
entry carries its own end, so an hourly product (3,600,000 ms) and a quarter-hour one (900,000 ms) read the
same way, and a day of daylight-saving change simply has 23 or 25 hourly entries: nothing here depends on
the local clock. Prices are turned into currency per kWh (``Eur/MWh`` / 1000); a span the reply does not
cover is a :class:`~homegrid.readings.prices.Gap` of the series, never priced.

A reply that is not what this describes raises :class:`PriceFeedError` naming the field at fault
(``data[3].marketprice: expected a number, got 'n/a'``); so does a failed request. Nothing here touches the
network except :meth:`AwattarSource.fetch`, which talks through an ``httpx`` transport that tests replace
with recorded replies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from homegrid import strictjson
from homegrid.devices.http import get_capped
from homegrid.readings.prices import PriceSeries, series_from_intervals
from homegrid.timezones import DAY_MS

__all__ = [
    "API_BASES",
    "MAX_REPLY_BYTES",
    "UNITS",
    "AwattarSource",
    "NoPrices",
    "PriceFeedError",
    "marketdata_url",
    "parse_marketdata",
    "parse_marketdata_text",
]

#: the API of each market area aWATTar serves
API_BASES = {"de": "https://api.awattar.de", "at": "https://api.awattar.at"}
#: each ``unit`` a reply may carry: its currency and the factor to currency per kWh
UNITS: dict[str, tuple[str, float]] = {"eur/mwh": ("EUR", 1e-3), "eur/kwh": ("EUR", 1.0)}
#: a larger reply is refused [bytes] (a year of quarter hours is about 4 MB)
MAX_REPLY_BYTES = 16_000_000
_MAX_SPAN_MS = 366 * DAY_MS  # the most asked for at once


class PriceFeedError(ValueError):
    """A price reply that cannot be used (unreachable, an HTTP error, not JSON, a field missing or wrong)."""


class NoPrices(PriceFeedError):
    """A well-formed reply holding no prices: the span asked for has none (in the future, or before the market
    data begins); a backfill records the span as a gap and goes on."""


def marketdata_url(country: str, start_ms: int | None = None, end_ms: int | None = None,
                   base: str | None = None) -> str:
    """The market-data URL of a market area.

    Parameters
    ----------
    country : {"de", "at"}
        The market area.
    start_ms, end_ms : int or None
        The span asked for [ms]; None: the API's default (from the current hour on).
    base : str or None
        Another server of the same API (a test's, a proxy); None: aWATTar's for ``country``.
    """
    key = country.strip().lower()
    if base is None:
        if key not in API_BASES:
            raise PriceFeedError(f"country: aWATTar serves {', '.join(sorted(API_BASES))}, not {country!r}")
        base = API_BASES[key]
    query = "&".join(f"{k}={v}" for k, v in (("start", start_ms), ("end", end_ms)) if v is not None)
    return f"{base.rstrip('/')}/v1/marketdata" + (f"?{query}" if query else "")


def _ms(where: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PriceFeedError(f"{where}.{name}: expected epoch milliseconds, got {value!r}")
    if value != int(value) or not 0 < value < 10**14:
        raise PriceFeedError(f"{where}.{name}: {value!r} is not a time in epoch milliseconds")
    return int(value)


def parse_marketdata(doc: Any, source: str = "aWATTar reply") -> PriceSeries:
    """The price series of a decoded ``/v1/marketdata`` reply.

    Parameters
    ----------
    doc : Any
        The decoded JSON.
    source : str
        Names the reply in messages and in the series (a URL or a path).

    Returns
    -------
    PriceSeries
        Import prices [currency/kWh] of each interval, no export prices, the currency, the gaps.

    Raises
    ------
    PriceFeedError
        Not a market-data list, no entry, an entry's field missing or wrong, units of two currencies,
        intervals that overlap or repeat.
    """
    if not isinstance(doc, Mapping):
        raise PriceFeedError(f"{source}: expected a JSON object with a 'data' list, got {type(doc).__name__}")
    data = doc.get("data")
    if not isinstance(data, list):
        keys = ", ".join(sorted(str(k) for k in doc)[:8]) or "none"
        raise PriceFeedError(f"{source}: data: expected a list of prices, got "
                             f"{type(data).__name__ if 'data' in doc else 'no such field'} (keys: {keys})")
    if not data:
        raise NoPrices(f"{source}: data: the reply holds no prices (the next day's are published "
                             "about 14:00 CET; a span in the future has none yet)")
    starts: list[int] = []
    ends: list[int] = []
    prices: list[float] = []
    currencies: set[str] = set()
    for i, entry in enumerate(data):
        where = f"{source}: data[{i}]"
        if not isinstance(entry, Mapping):
            raise PriceFeedError(f"{where}: expected an object, got {type(entry).__name__}")
        for name in ("start_timestamp", "end_timestamp", "marketprice", "unit"):
            if name not in entry:
                raise PriceFeedError(f"{where}.{name}: missing")
        start = _ms(where, "start_timestamp", entry["start_timestamp"])
        end = _ms(where, "end_timestamp", entry["end_timestamp"])
        if end <= start:
            raise PriceFeedError(f"{where}.end_timestamp: {end} is not after start_timestamp {start}")
        price = entry["marketprice"]
        if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
            raise PriceFeedError(f"{where}.marketprice: expected a number, got {price!r}")
        unit = entry["unit"]
        if not isinstance(unit, str) or unit.strip().lower() not in UNITS:
            raise PriceFeedError(f"{where}.unit: expected one of Eur/MWh, Eur/kWh, got {unit!r}")
        currency, factor = UNITS[unit.strip().lower()]
        currencies.add(currency)
        starts.append(start)
        ends.append(end)
        prices.append(float(price) * factor)
    if len(currencies) > 1:
        raise PriceFeedError(f"{source}: data: prices in several currencies ({', '.join(sorted(currencies))})")
    order = np.argsort(np.array(starts, dtype=np.int64), kind="stable")
    t = np.array(starts, dtype=np.int64)[order]
    t_end = np.array(ends, dtype=np.int64)[order]
    clash = np.flatnonzero(t_end[:-1] > t[1:])
    if len(clash):
        k = int(clash[0])
        a, b = int(order[k]), int(order[k + 1])
        raise PriceFeedError(f"{source}: data[{b}].start_timestamp: {int(t[k + 1])} falls inside "
                             f"data[{a}] ({int(t[k])} to {int(t_end[k])}); intervals may not overlap or repeat")
    return series_from_intervals(t, np.array(prices, dtype=np.float64)[order], end_ms=t_end,
                                 currency=currencies.pop(), source=source)


def parse_marketdata_text(text: str | bytes, source: str = "aWATTar reply") -> PriceSeries:
    """The price series of a reply's text; :class:`PriceFeedError` when it is not JSON or not market data."""
    return parse_marketdata(strictjson.loads(text, source, PriceFeedError), source)


@dataclass(frozen=True)
class AwattarSource:
    """aWATTar's market data for one market area, fetched over HTTP.

    Parameters
    ----------
    country : {"de", "at"}
        The market area.
    base_url : str or None
        Another server of the same API; None: aWATTar's.
    timeout_s : float
        For the whole request [s].
    transport : httpx.AsyncBaseTransport or None
        The HTTP transport (tests pass an ``httpx.MockTransport`` answering with recorded replies); None:
        httpx's own.
    """

    country: str = "de"
    base_url: str | None = None
    timeout_s: float = 15.0
    transport: httpx.AsyncBaseTransport | None = None

    @property
    def name(self) -> str:
        """The provider and market area, for messages."""
        return f"aWATTar {self.country.upper()}"

    async def fetch(self, start_ms: int, end_ms: int) -> PriceSeries:
        """The prices of the span ``[start_ms, end_ms)`` (what the API has of it).

        Raises
        ------
        PriceFeedError
            A bad span, the server unreachable or slow, an HTTP error, a reply that is not market data.
        """
        if not 0 < end_ms - start_ms <= _MAX_SPAN_MS:
            raise PriceFeedError(f"span: expected an end after the start, at most 366 days later; "
                                 f"got {start_ms} to {end_ms}")
        url = marketdata_url(self.country, start_ms, end_ms, self.base_url)
        status, phrase, body = await get_capped(url, transport=self.transport, timeout_s=self.timeout_s,
                                                max_bytes=MAX_REPLY_BYTES, error=PriceFeedError, name=self.name)
        if status != 200:
            head = body[:200].decode("utf-8", "replace").strip()
            raise PriceFeedError(f"{url}: HTTP {status} {phrase}" + (f": {head}" if head else ""))
        return parse_marketdata_text(body, url)
