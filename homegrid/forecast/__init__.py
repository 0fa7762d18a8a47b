"""Forecasts for the planner: household load and solar power from the site's own history, and their errors.

Pure maths over arrays (no I/O, no store, no devices): times are UTC epoch ms, powers W.

- :mod:`homegrid.forecast.load`: local time-of-day profiles (weekday, weekend) blended with the recent days and
  the last hour (:class:`LoadForecaster`, :func:`forecast_load`), and plain persistence as the yardstick.
- :mod:`homegrid.forecast.solar`: pvlib's clear sky at the site scaled by the array's measured response and the
  recent clearness, or by a weather forecast's GHI or cloud cover (:class:`SolarForecaster`,
  :func:`forecast_solar`).
- :mod:`homegrid.forecast.errors`: the forecasts replayed over the past, MAE and RMSE at 1, 6 and 24 h
  (:func:`forecast_errors`, :class:`ForecastErrors`).

The weather forecast itself is read by :mod:`homegrid.devices.weather.openmeteo`.
"""

from homegrid.forecast.errors import (
    DEFAULT_HORIZONS_MS,
    ForecastErrors,
    HorizonError,
    Replay,
    forecast_errors,
    replay,
)
from homegrid.forecast.load import LoadForecaster, forecast_load, persistence_forecast
from homegrid.forecast.solar import (
    SolarForecaster,
    clear_sky_ghi,
    cloud_cover_to_ghi,
    forecast_solar,
    solar_zenith,
)

__all__ = [
    "DEFAULT_HORIZONS_MS",
    "ForecastErrors",
    "HorizonError",
    "LoadForecaster",
    "Replay",
    "SolarForecaster",
    "clear_sky_ghi",
    "cloud_cover_to_ghi",
    "forecast_errors",
    "forecast_load",
    "forecast_solar",
    "persistence_forecast",
    "replay",
    "solar_zenith",
]
