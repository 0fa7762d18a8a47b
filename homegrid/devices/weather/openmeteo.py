"""Open-Meteo's public weather forecast: hourly solar irradiance and cloud cover for the solar forecast.

Open-Meteo needs no key for non-commercial use::

    GET https://api.open-meteo.com/v1/forecast?latitude=52.52&longitude=13.42
        &hourly=shortwave_radiation,cloud_cover,temperature_2m&timezone=GMT&forecast_days=2

and answers with parallel arrays under ``hourly``, one entry per hour::

    {"latitude": 52.52, "longitude": 13.419998, "elevation": 44.8125,
     "utc_offset_seconds": 0, "timezone": "GMT", "timezone_abbreviation": "GMT",
     "hourly_units": {"time": "iso8601", "shortwave_radiation": "W/m²", "cloud_cover": "%", ...},
     "hourly": {"time": ["2021-11-24T00:00", ...], "shortwave_radiation": [0, ...], "cloud_cover": [100, ...]}}

Times carry no offset: they are wall-clock times in the reply's ``timezone`` (GMT unless asked otherwise).
They are turned into UTC with that zone (:func:`homegrid.timezones.wall_to_utc_ms`, so a span across a
daylight-saving change is right hour by hour), or with ``utc_offset_seconds`` when the zone is not an IANA name;
``timeformat=unixtime`` replies (epoch seconds) are read too. Open-Meteo's ``shortwave_radiation`` (GHI) is the
mean of the **preceding** hour, so the hour labelled 10:00 is the interval 09:00-10:00: :class:`WeatherForecast`
gives each interval's start. Cloud cover is an instant: an interval takes the mean of its two ends. Tiny
negative irradiances (``-0.1`` at night, a model artefact) become 0; a null is NaN.

The older field name ``cloudcover`` (before 2023) is read as ``cloud_cover``. A reply that is not what this
describes raises :class:`OpenMeteoError` naming the field (``hourly.cloud_cover[5]: expected a number, got
'x'``); so does a failed request, with the API's own ``reason``. Nothing here touches the network except
:meth:`OpenMeteoSource.fetch`, which talks through an ``httpx`` transport that tests replace with recorded
replies.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
import numpy as np

from homegrid import strictjson
from homegrid.devices.http import get_capped
from homegrid.timezones import HOUR_MS, wall_to_utc_ms

__all__ = [
    "API_BASE",
    "HOURLY_FIELDS",
    "MAX_REPLY_BYTES",
    "OpenMeteoError",
    "OpenMeteoSource",
    "WeatherForecast",
    "forecast_url",
    "parse_forecast",
    "parse_forecast_text",
]

API_BASE = "https://api.open-meteo.com"
#: the hourly series asked for
HOURLY_FIELDS: tuple[str, ...] = ("shortwave_radiation", "cloud_cover", "temperature_2m")
#: a larger reply is refused [bytes] (16 days of a few hourly series is about 30 kB)
MAX_REPLY_BYTES = 4_000_000
_ALIASES = {"cloudcover": "cloud_cover", "shortwave_radiation": "shortwave_radiation",
            "cloud_cover": "cloud_cover", "temperature_2m": "temperature_2m"}
_UNITS = {"shortwave_radiation": ("W/m²", "W/m2", "W/m^2"), "cloud_cover": ("%",), "temperature_2m": ("°C",)}
_ISO_MINUTE = np.dtype("datetime64[m]")


class OpenMeteoError(ValueError):
    """A forecast reply that cannot be used (unreachable, an HTTP or API error, not JSON, a field missing or
    wrong)."""


@dataclass(frozen=True)
class WeatherForecast:
    """An hourly weather forecast for a point, on UTC intervals.

    Attributes
    ----------
    t_ms : numpy.ndarray
        The start of each interval, UTC epoch ms, increasing. [ms]
    step_ms : int
        The intervals' length (an hour). [ms]
    ghi_w_m2 : numpy.ndarray
        Global horizontal irradiance, the interval's mean; NaN where not given. [W/m²]
    cloud_cover_pct : numpy.ndarray
        Total cloud cover over the interval; NaN where not given. [%]
    temperature_c : numpy.ndarray
        Air temperature at 2 m; NaN where not given. [°C]
    latitude, longitude : float
        The model's grid point (near the site asked for). [degrees]
    elevation_m : float
        The grid point's elevation; NaN if not given. [m]
    source : str
        Where it came from (a URL or a path), for messages.
    """

    t_ms: np.ndarray
    step_ms: int
    ghi_w_m2: np.ndarray
    cloud_cover_pct: np.ndarray
    temperature_c: np.ndarray
    latitude: float
    longitude: float
    elevation_m: float = float("nan")
    source: str = field(default="Open-Meteo reply")

    def __len__(self) -> int:
        return int(self.t_ms.size)


def forecast_url(latitude: float, longitude: float, *, forecast_days: int = 2, past_days: int = 0,
                 base: str = API_BASE) -> str:
    """The forecast URL for a point: the hourly series of :data:`HOURLY_FIELDS`, times in GMT.

    Parameters
    ----------
    latitude, longitude : float
        The site. [degrees]
    forecast_days : int
        Days ahead, 1..16 (today counts as one).
    past_days : int
        Days back, 0..92 (the past as the model saw it; for the forecast's bias correction).
    base : str
        Another server of the same API (a test's, a self-hosted Open-Meteo).
    """
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise OpenMeteoError(f"latitude {latitude}, longitude {longitude}: not a place on Earth")
    if not 1 <= forecast_days <= 16 or not 0 <= past_days <= 92:
        raise OpenMeteoError(f"forecast_days = {forecast_days}, past_days = {past_days}: Open-Meteo serves "
                             "1..16 forecast days and 0..92 past days")
    query = (f"latitude={latitude:.4f}&longitude={longitude:.4f}&hourly={','.join(HOURLY_FIELDS)}"
             f"&timezone=GMT&forecast_days={forecast_days}" + (f"&past_days={past_days}" if past_days else ""))
    return f"{base.rstrip('/')}/v1/forecast?{query}"


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OpenMeteoError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _times(source: str, doc: Mapping[str, Any], raw: Any) -> np.ndarray:
    """The instants of ``hourly.time`` as UTC epoch ms."""
    if not isinstance(raw, list) or not raw:
        raise OpenMeteoError(f"{source}: hourly.time: expected a list of times, got {raw!r:.60}")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):  # timeformat=unixtime
        return np.array(raw, dtype=np.int64) * 1000
    for i, v in enumerate(raw):
        if not isinstance(v, str) or len(v) != 16 or v[10] != "T":
            raise OpenMeteoError(f"{source}: hourly.time[{i}]: expected YYYY-MM-DDThh:mm, got {v!r}")
    try:
        wall = np.array(raw, dtype=_ISO_MINUTE).astype("datetime64[ms]").astype(np.int64)
    except ValueError as exc:
        raise OpenMeteoError(f"{source}: hourly.time: {exc}") from None
    zone = doc.get("timezone")
    if isinstance(zone, str) and zone.upper() in ("GMT", "UTC"):
        return wall
    if isinstance(zone, str) and zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            out: np.ndarray = wall_to_utc_ms(wall, zone)
            return out
    offset = doc.get("utc_offset_seconds")
    if offset is None:
        raise OpenMeteoError(f"{source}: timezone {zone!r} is not an IANA zone and utc_offset_seconds is missing")
    shifted: np.ndarray = wall - int(_number(f"{source}: utc_offset_seconds", offset)) * 1000
    return shifted


def _series(source: str, name: str, raw: Any, n: int) -> np.ndarray:
    if not isinstance(raw, list):
        raise OpenMeteoError(f"{source}: hourly.{name}: expected a list, got {type(raw).__name__}")
    if len(raw) != n:
        raise OpenMeteoError(f"{source}: hourly.{name}: {len(raw)} values for {n} times")
    out = np.full(n, np.nan)
    for i, v in enumerate(raw):
        if v is not None:
            out[i] = _number(f"{source}: hourly.{name}[{i}]", v)
    return out


def parse_forecast(doc: Any, source: str = "Open-Meteo reply") -> WeatherForecast:
    """The hourly forecast of a decoded Open-Meteo reply.

    Parameters
    ----------
    doc : Any
        The decoded JSON.
    source : str
        Names the reply in messages (a URL or a path).

    Returns
    -------
    WeatherForecast
        GHI, cloud cover and temperature per hourly interval (NaN for a series the reply lacks).

    Raises
    ------
    OpenMeteoError
        An API error object, no ``hourly`` block, no irradiance nor cloud cover, a time or value that is not
        one, series of unequal lengths, times not increasing hour by hour, a unit other than the API's.
    """
    if not isinstance(doc, Mapping):
        raise OpenMeteoError(f"{source}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("error"):
        raise OpenMeteoError(f"{source}: the API refused: {doc.get('reason') or 'no reason given'}")
    hourly = doc.get("hourly")
    if not isinstance(hourly, Mapping):
        keys = ", ".join(sorted(str(k) for k in doc)[:8]) or "none"
        raise OpenMeteoError(f"{source}: hourly: expected an object of hourly series, got "
                             f"{type(hourly).__name__ if 'hourly' in doc else 'no such field'} (keys: {keys})")
    t = _times(source, doc, hourly.get("time"))
    if t.size > 1 and np.any(np.diff(t) != HOUR_MS):
        i = int(np.flatnonzero(np.diff(t) != HOUR_MS)[0]) + 1
        raise OpenMeteoError(f"{source}: hourly.time[{i}]: not an hour after hourly.time[{i - 1}] "
                             "(an hourly forecast is expected)")
    units = doc.get("hourly_units")
    units = units if isinstance(units, Mapping) else {}
    found: dict[str, np.ndarray] = {}
    for key, raw in hourly.items():
        name = _ALIASES.get(str(key))
        if name is None or name in found:
            continue
        unit = units.get(key, units.get(name))
        if unit is not None and unit not in _UNITS[name]:
            raise OpenMeteoError(f"{source}: hourly_units.{key}: expected {_UNITS[name][0]}, got {unit!r}")
        found[name] = _series(source, str(key), raw, t.size)
    if "shortwave_radiation" not in found and "cloud_cover" not in found:
        raise OpenMeteoError(f"{source}: hourly: neither shortwave_radiation nor cloud_cover (ask for "
                             f"hourly={','.join(HOURLY_FIELDS)})")
    nan = np.full(t.size, np.nan)
    ghi = np.maximum(found.get("shortwave_radiation", nan), 0.0)  # -0.1 at night is a model artefact; NaN stays
    cover = found.get("cloud_cover", nan)
    if "cloud_cover" in found:
        cover = np.clip(cover, 0.0, 100.0)
    temp = found.get("temperature_2m", nan)
    # GHI is the preceding hour's mean: the hour labelled T is [T - 1 h, T). Instants (cloud cover,
    # temperature) are averaged over each interval's two ends (the first interval has only its end).
    starts = t - HOUR_MS

    def interval_mean(x: np.ndarray) -> np.ndarray:
        prev = np.concatenate([[np.nan], x[:-1]])
        both = np.isfinite(prev) & np.isfinite(x)
        out: np.ndarray = np.where(both, 0.5 * (prev + x), x)
        return out

    lat = _number(f"{source}: latitude", doc.get("latitude"))
    lon = _number(f"{source}: longitude", doc.get("longitude"))
    elev = doc.get("elevation")
    return WeatherForecast(starts, HOUR_MS, ghi, interval_mean(cover), interval_mean(temp), lat, lon,
                           _number(f"{source}: elevation", elev) if elev is not None else float("nan"), source)


def parse_forecast_text(text: str | bytes, source: str = "Open-Meteo reply") -> WeatherForecast:
    """The forecast of a reply's text; :class:`OpenMeteoError` when it is not JSON or not a forecast."""
    return parse_forecast(strictjson.loads(text, source, OpenMeteoError), source)


@dataclass(frozen=True)
class OpenMeteoSource:
    """Open-Meteo's forecast for the site, fetched over HTTP.

    Parameters
    ----------
    latitude, longitude : float
        The site (``[site]`` of the config). [degrees]
    forecast_days, past_days : int
        As :func:`forecast_url` takes them.
    base_url : str
        Open-Meteo's API, or another server of it.
    timeout_s : float
        For the whole request [s].
    transport : httpx.AsyncBaseTransport or None
        The HTTP transport (tests pass an ``httpx.MockTransport`` answering with recorded replies); None:
        httpx's own.
    """

    latitude: float
    longitude: float
    forecast_days: int = 2
    past_days: int = 0
    base_url: str = API_BASE
    timeout_s: float = 15.0
    transport: httpx.AsyncBaseTransport | None = None

    @property
    def url(self) -> str:
        """The request's URL."""
        return forecast_url(self.latitude, self.longitude, forecast_days=self.forecast_days,
                            past_days=self.past_days, base=self.base_url)

    async def fetch(self) -> WeatherForecast:
        """The forecast now.

        Raises
        ------
        OpenMeteoError
            The server unreachable or slow, an HTTP error (with the API's ``reason``), a reply that is not a
            forecast.
        """
        url = self.url
        status, phrase, body = await get_capped(url, transport=self.transport, timeout_s=self.timeout_s,
                                                max_bytes=MAX_REPLY_BYTES, error=OpenMeteoError, name="Open-Meteo")
        if status != 200:
            reason = ""
            try:
                err = json.loads(body)
                if isinstance(err, Mapping):
                    reason = str(err.get("reason") or "")
            except (json.JSONDecodeError, UnicodeDecodeError):
                reason = body[:200].decode("utf-8", "replace").strip()
            raise OpenMeteoError(f"{url}: HTTP {status} {phrase}" + (f": {reason}" if reason else ""))
        return parse_forecast_text(body, url)
