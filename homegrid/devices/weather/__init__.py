"""Weather alerts that storm preparation acts on (the US National Weather Service's CAP feed)."""

from homegrid.devices.weather.nws import (
    Alert,
    AlertFeed,
    AlertSource,
    FeedError,
    alerts_url,
    fetch_alerts,
    load_alerts,
    parse_alerts,
    parse_alerts_text,
)

__all__ = [
    "Alert",
    "AlertFeed",
    "AlertSource",
    "FeedError",
    "alerts_url",
    "fetch_alerts",
    "load_alerts",
    "parse_alerts",
    "parse_alerts_text",
]
