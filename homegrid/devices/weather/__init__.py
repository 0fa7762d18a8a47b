"""Weather: the alerts storm preparation acts on (the US National Weather Service's CAP feed, :mod:`.nws`) and
the hourly forecast the solar forecast uses (Open-Meteo, :mod:`.openmeteo`)."""

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
from homegrid.devices.weather.openmeteo import (
    OpenMeteoError,
    OpenMeteoSource,
    WeatherForecast,
    forecast_url,
    parse_forecast,
    parse_forecast_text,
)

__all__ = [
    "Alert",
    "AlertFeed",
    "AlertSource",
    "FeedError",
    "OpenMeteoError",
    "OpenMeteoSource",
    "WeatherForecast",
    "alerts_url",
    "fetch_alerts",
    "forecast_url",
    "load_alerts",
    "parse_alerts",
    "parse_alerts_text",
    "parse_forecast",
    "parse_forecast_text",
]
