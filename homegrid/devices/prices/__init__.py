"""Live day-ahead price sources: each turns a provider's reply into a :class:`~homegrid.readings.prices.PriceSeries`.

- :mod:`homegrid.devices.prices.awattar`: aWATTar's public market data (Germany, Austria), per MWh, hourly or
  quarter-hourly.
"""

from homegrid.devices.prices.awattar import (
    AwattarSource,
    PriceFeedError,
    marketdata_url,
    parse_marketdata,
    parse_marketdata_text,
)

__all__ = [
    "AwattarSource",
    "PriceFeedError",
    "marketdata_url",
    "parse_marketdata",
    "parse_marketdata_text",
]
