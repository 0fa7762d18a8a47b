"""Dynamic prices for the bill and the planner: a price series (a CSV or a live source) with the tariff's terms.

A dynamic tariff charges the spot price of each interval with a fixed adder and a percentage on top:
``price = spot * (1 + percent / 100) + adder`` per kWh (aWATTar, Tibber, Octopus Agile and the Nordic
retailers all work so; the adder carries the retailer's margin, the grid fees and levies, the percentage the
VAT). This module joins the two: a :class:`~homegrid.readings.prices.PriceSeries` (from
:func:`~homegrid.readings.prices.read_price_csv` or a live source such as
:class:`~homegrid.devices.prices.AwattarSource`) and :class:`PriceTerms` make a
:class:`~homegrid.tariffs.DynamicPrices`, which carries the series' gaps as uncovered spans.

A live source that fails (unreachable, an HTTP error, a malformed reply) never stops the hub:
:func:`fetch_dynamic_prices` logs the error, which names the field at fault, and answers None.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Protocol

from homegrid.devices.prices import PriceFeedError
from homegrid.readings.prices import MAX_ABS_PRICE, MAX_INTERVAL_MS, PriceFile, PriceSeries, read_price_csv
from homegrid.tariffs import DynamicPrices, TariffError

__all__ = [
    "PriceSource",
    "PriceTerms",
    "dynamic_prices",
    "fetch_dynamic_prices",
    "load_dynamic_prices",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriceTerms:
    """What a dynamic tariff adds to the spot price.

    Parameters
    ----------
    adder : float
        Added to each import price after the percentage [currency/kWh].
    percent : float
        Added to each import price, as a percentage of the spot price (VAT, a margin) [%].
    export_adder : float
        Added to each export price after its percentage [currency/kWh] (often negative: a fee per kWh sold).
    export_percent : float
        Added to each export price, as a percentage of it [%].
    """

    adder: float = 0.0
    percent: float = 0.0
    export_adder: float = 0.0
    export_percent: float = 0.0


class PriceSource(Protocol):
    """A live price source: :class:`~homegrid.devices.prices.AwattarSource` and any other of its form."""

    @property
    def name(self) -> str: ...

    async def fetch(self, start_ms: int, end_ms: int) -> PriceSeries: ...


def dynamic_prices(series: PriceSeries, terms: PriceTerms = PriceTerms()) -> DynamicPrices:
    """The tariff's dynamic prices from a series and the tariff's terms.

    Parameters
    ----------
    series : PriceSeries
        Spot prices per interval [currency/kWh], with each interval's end (gaps stay uncovered).
    terms : PriceTerms
        The adder and percentage of import and export.

    Raises
    ------
    TariffError
        A term that is not a finite number (naming it: ``prices.adder``).
    """
    return DynamicPrices(
        t_ms=series.t_ms,
        step_ms=series.step_ms,
        import_price=series.import_price,
        export_price=series.export_price,
        adder=terms.adder,
        percent=terms.percent,
        export_adder=terms.export_adder,
        export_percent=terms.export_percent,
        end_ms=series.end_ms,
    )


def load_dynamic_prices(
    path: str | os.PathLike[str],
    terms: PriceTerms = PriceTerms(),
    *,
    max_abs_price: float = MAX_ABS_PRICE,
    max_interval_ms: int = MAX_INTERVAL_MS,
) -> tuple[DynamicPrices | None, PriceFile]:
    """A price CSV's dynamic prices, and what the file's reading found (its problems, gaps, duplicates).

    Parameters
    ----------
    path : path-like
        The price CSV (:mod:`homegrid.readings.prices` describes it).
    terms : PriceTerms
    max_abs_price : float
        A price beyond this either way is a problem of its row [currency/kWh].
    max_interval_ms : int
        A step between rows longer than this is a gap [ms].

    Returns
    -------
    prices : DynamicPrices or None
        None when no row of the file is good.
    found : PriceFile
        The file's problems (rows not used, each at its line) and gaps; the caller shows them.

    Raises
    ------
    BadRow
        The file is not a price CSV at all (its header).
    TariffError
        A term that is not a finite number.
    """
    found = read_price_csv(path, max_abs_price=max_abs_price, max_interval_ms=max_interval_ms)
    if found.series is None:
        return None, found
    return dynamic_prices(found.series, terms), found


async def fetch_dynamic_prices(
    source: PriceSource, start_ms: int, end_ms: int, terms: PriceTerms = PriceTerms()
) -> DynamicPrices | None:
    """A live source's prices over ``[start_ms, end_ms)`` with the terms; None (logged) when it fails.

    Parameters
    ----------
    source : PriceSource
    start_ms, end_ms : int
        The span asked for. [ms]
    terms : PriceTerms

    Returns
    -------
    DynamicPrices or None
        None when the source cannot be reached or answers with something that is not prices; the error
        logged names the source and the field at fault. The hub keeps running either way.
    """
    try:
        series = await source.fetch(start_ms, end_ms)
        prices = dynamic_prices(series, terms)
    except (PriceFeedError, TariffError) as exc:
        log.warning("prices from %s not used: %s", source.name, exc)
        return None
    for gap in series.gaps:
        log.info("prices from %s: %s", source.name, gap)
    return prices
