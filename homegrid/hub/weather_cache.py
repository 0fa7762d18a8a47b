"""The site's weather forecast for the solar forecast: Open-Meteo's hourly forecast (``[planner] weather =
"open-meteo"``) fetched by the hub every hour into ``<data_dir>/weather/open-meteo.json``, and the solar forecast
the planner makes from it (:func:`solar_forecast`).

Each fetch asks for :data:`PAST_DAYS` days back and :data:`FORECAST_DAYS` ahead (today counts as one, so a
48 h horizon is covered from any hour of today) and is merged into the cache by the hour: a fetched hour replaces
the cached one (the newer forecast wins), the cached hours it does not cover are kept, those older than
:data:`KEEP_DAYS` are dropped. The cache therefore holds what the weather said of the past weeks too, which
:func:`homegrid.forecast.forecast_solar` compares with the measured solar to correct the forecast's bias. The file
is written whole and renamed over the old one (:func:`homegrid.planner.storm.write_json_atomic`), so a restart
without network still has the last good forecast.

The hub's :class:`WeatherCacheTask` never stops the hub: a failed fetch (no network, an HTTP error, a reply that is
not a forecast) is logged once per run of failures, counted, and the cached forecast is kept. A cache made for
another place (``[site]`` moved by more than :data:`MAX_SITE_MOVE_DEG`) is not used.

Tests reach Open-Meteo through :data:`TRANSPORT` (an ``httpx`` transport; None: the network).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from homegrid import strictjson
from homegrid.config import Config, SiteConfig
from homegrid.devices.weather import OpenMeteoError, OpenMeteoSource, WeatherForecast
from homegrid.forecast import forecast_solar
from homegrid.hub.poller import wait_or_stop
from homegrid.planner.storm import write_json_atomic
from homegrid.timezones import DAY_MS, HOUR_MS, local_time_text

__all__ = [
    "CACHE_DIR",
    "FORECAST_DAYS",
    "KEEP_DAYS",
    "PAST_DAYS",
    "REFRESH_S",
    "SOURCES",
    "TRANSPORT",
    "CachedWeather",
    "SolarSource",
    "WeatherCacheTask",
    "cache_path",
    "merge_forecasts",
    "read_cache",
    "solar_forecast",
    "weather_cache_for",
    "write_cache",
]

log = logging.getLogger(__name__)

#: the folder of the cache in the data dir
CACHE_DIR = "weather"
#: the weather sources ``[planner] weather`` may name, and their names for the owner
SOURCES: dict[str, str] = {"open-meteo": "Open-Meteo"}
#: how often the hub fetches [s]
REFRESH_S = 3600.0
#: days ahead asked for (today counts as one)
FORECAST_DAYS = 3
#: days back asked for: what the weather said of them, for the bias correction from the first fetch on
PAST_DAYS = 7
#: days of past hours kept in the cache (the solar forecast's calibration looks 30 days back)
KEEP_DAYS = 35
#: a cache whose point is farther than this from ``[site]`` is another place's [degrees]
MAX_SITE_MOVE_DEG = 0.5
#: the HTTP transport of the source; tests set an ``httpx.MockTransport``; None: the network
TRANSPORT: httpx.AsyncBaseTransport | None = None
_FORMAT = "homegrid weather cache 1"
_SERIES = ("ghi_w_m2", "cloud_cover_pct", "temperature_c")


@dataclass(frozen=True)
class CachedWeather:
    """A weather forecast and when it was last fetched.

    Attributes
    ----------
    forecast : WeatherForecast
        The merged hourly forecast (past hours included).
    fetched_at_ms : int
        The last good fetch, UTC epoch ms. [ms]
    source : str
        A key of :data:`SOURCES`.
    """

    forecast: WeatherForecast
    fetched_at_ms: int
    source: str = "open-meteo"


def cache_path(data_dir: str | Path, source: str = "open-meteo") -> Path:
    """The cache of a weather source in the data dir: ``<data_dir>/weather/<source>.json``."""
    return Path(data_dir) / CACHE_DIR / f"{source}.json"


def _floats(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else round(float(v), 3) for v in values]


def write_cache(path: Path, cached: CachedWeather) -> None:
    """Write the cache whole (a temporary file renamed over the old one)."""
    f = cached.forecast
    doc: dict[str, Any] = {
        "format": _FORMAT, "source": cached.source, "url": f.source,
        "fetched_at": datetime.fromtimestamp(cached.fetched_at_ms / 1000, UTC).isoformat(timespec="seconds"),
        "fetched_at_ms": cached.fetched_at_ms, "latitude": f.latitude, "longitude": f.longitude,
        "elevation_m": f.elevation_m if math.isfinite(f.elevation_m) else None, "step_ms": f.step_ms,
        "t_ms": [int(t) for t in f.t_ms], **{name: _floats(getattr(f, name)) for name in _SERIES},
    }
    write_json_atomic(path, doc)


def _parse_cache(doc: Any, where: str) -> CachedWeather:
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ValueError(f"{where}: not a homegrid weather cache (format {_FORMAT!r})")
    t = np.asarray(doc["t_ms"], dtype=np.int64)
    if t.size == 0 or np.any(np.diff(t) <= 0):
        raise ValueError(f"{where}: t_ms: expected increasing times")
    series = {}
    for name in _SERIES:
        values = np.array([np.nan if v is None else float(v) for v in doc[name]], dtype=np.float64)
        if values.size != t.size:
            raise ValueError(f"{where}: {name}: {values.size} values for {t.size} times")
        series[name] = values
    elevation = doc.get("elevation_m")
    forecast = WeatherForecast(t, int(doc["step_ms"]), series["ghi_w_m2"], series["cloud_cover_pct"],
                               series["temperature_c"], float(doc["latitude"]), float(doc["longitude"]),
                               float("nan") if elevation is None else float(elevation), str(doc.get("url", where)))
    return CachedWeather(forecast, int(doc["fetched_at_ms"]), str(doc.get("source", "open-meteo")))


def read_cache(path: Path) -> CachedWeather | None:
    """The cached forecast, or None when there is none or it cannot be read (logged: the next fetch writes a
    good one)."""
    if not path.exists():
        return None
    try:
        return _parse_cache(strictjson.loads(path.read_bytes(), str(path), ValueError), str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("weather cache %s not used: %s", path, exc)
        return None


def merge_forecasts(old: WeatherForecast | None, new: WeatherForecast, keep_from_ms: int) -> WeatherForecast:
    """``new`` with the hours of ``old`` it does not have, from ``keep_from_ms`` on. [ms]

    The newer forecast wins where both have an hour; both are hourly on whole hours (Open-Meteo's), so an hour is
    matched by its start. The point and the source are ``new``'s.
    """
    if old is None or old.step_ms != new.step_ms:
        keep = new.t_ms >= keep_from_ms
        t = new.t_ms[keep]
        parts = [(t, *(getattr(new, n)[keep] for n in _SERIES))]
    else:
        mine = ~np.isin(old.t_ms, new.t_ms) & (old.t_ms >= keep_from_ms)
        theirs = new.t_ms >= keep_from_ms
        parts = [(old.t_ms[mine], *(getattr(old, n)[mine] for n in _SERIES)),
                 (new.t_ms[theirs], *(getattr(new, n)[theirs] for n in _SERIES))]
    t = np.concatenate([p[0] for p in parts])
    order = np.argsort(t, kind="stable")
    cols = [np.concatenate([p[i] for p in parts])[order] for i in range(1, 1 + len(_SERIES))]
    return WeatherForecast(t[order], new.step_ms, cols[0], cols[1], cols[2], new.latitude, new.longitude,
                           new.elevation_m, new.source)


class WeatherCacheTask:
    """The hub's task keeping the site's weather forecast fresh: a fetch every ``interval_s``, merged into the
    cache; the last good forecast in memory for the planner (:meth:`current`).

    Parameters
    ----------
    source : OpenMeteoSource
        The site's forecast.
    path : Path
        Its cache (read now: a restart without network has the last good forecast).
    clock : callable
        The current aware time.
    interval_s : float
        Between fetches. [s]
    """

    def __init__(self, source: OpenMeteoSource, path: Path, clock: Callable[[], datetime] | None = None,
                 interval_s: float = REFRESH_S) -> None:
        self.source = source
        self.path = path
        self.clock = clock or (lambda: datetime.now(UTC))
        self.interval_s = interval_s
        self.fetches = 0
        self.failures = 0
        self.failing = 0  # failures since the last good fetch
        self.last_error: str | None = None
        self._cached = read_cache(path)
        if self._cached is not None and not self._here(self._cached.forecast):
            log.warning("weather cache %s is for %.2f, %.2f, not the site: not used", path,
                        self._cached.forecast.latitude, self._cached.forecast.longitude)
            self._cached = None

    def _here(self, forecast: WeatherForecast) -> bool:
        return (abs(forecast.latitude - self.source.latitude) <= MAX_SITE_MOVE_DEG
                and abs(forecast.longitude - self.source.longitude) <= MAX_SITE_MOVE_DEG)

    def current(self) -> CachedWeather | None:
        """The last good forecast (fetched, or read from the cache), or None."""
        return self._cached

    def status(self) -> dict[str, Any]:
        """What the hub's health says about the weather forecast."""
        cached = self._cached
        last = None if cached is None else datetime.fromtimestamp(cached.fetched_at_ms / 1000, UTC)
        end = None if cached is None else int(cached.forecast.t_ms[-1]) + cached.forecast.step_ms
        return {"source": "open-meteo", "path": str(self.path), "fetches": self.fetches, "failures": self.failures,
                "last_error": self.last_error,
                "last_fetch": None if last is None else last.isoformat(timespec="seconds"),
                "forecast_until": None if end is None else
                datetime.fromtimestamp(end / 1000, UTC).isoformat(timespec="seconds")}

    async def refresh(self) -> bool:
        """Fetch once and merge into the cache; False (counted; logged on the first of a run of failures) when
        that fails, the cached forecast kept."""
        now = self.clock()
        now_ms = int(now.timestamp() * 1000)
        try:
            fresh = await self.source.fetch()
            old = None if self._cached is None else self._cached.forecast
            merged = CachedWeather(merge_forecasts(old, fresh, now_ms - KEEP_DAYS * DAY_MS), now_ms)
            await asyncio.to_thread(write_cache, self.path, merged)
        except (OpenMeteoError, OSError) as exc:
            self.failures += 1
            self.failing += 1
            self.last_error = f"{now.isoformat(timespec='seconds')}: {exc}"
            level = logging.WARNING if self.failing == 1 else logging.DEBUG
            log.log(level, "weather forecast not fetched (failure %d; the cached one is kept%s): %s", self.failures,
                    "" if self.failing == 1 else ", said once", exc)
            return False
        if self.failing:
            log.info("weather forecast fetched again after %d failures", self.failing)
        self.fetches += 1
        self.failing = 0
        self._cached = merged
        log.info("weather forecast from %s: %d hours fetched, %d cached", self.source.url, len(fresh),
                 len(merged.forecast))
        return True

    async def run(self, stopping: asyncio.Event) -> None:
        """Refresh now and every ``interval_s`` until ``stopping`` is set."""
        while not stopping.is_set():
            await self.refresh()
            await wait_or_stop(stopping, self.interval_s)


def weather_cache_for(config: Config, data_dir: Path, clock: Callable[[], datetime] | None = None,
                      interval_s: float = REFRESH_S, *, planner_on: bool | None = None) -> WeatherCacheTask | None:
    """The hub's weather task when the planner is on (``planner_on``, the hub's decision; None: ``[planner]
    enabled``) and ``[planner] weather`` names a source, else None."""
    name = config.planner.weather
    if not (config.planner.enabled if planner_on is None else planner_on) or name not in SOURCES:
        return None
    site = config.site
    source = OpenMeteoSource(site.latitude, site.longitude, forecast_days=FORECAST_DAYS, past_days=PAST_DAYS,
                             transport=TRANSPORT)
    return WeatherCacheTask(source, cache_path(data_dir, name), clock, interval_s)


@dataclass(frozen=True)
class SolarSource:
    """What a solar forecast was made from.

    Attributes
    ----------
    source : str
        ``"open-meteo"`` (a weather forecast), or ``"clear-sky"`` (the clear sky scaled by the recent days).
    fetched_at_ms : int or None
        When the weather forecast was fetched. [ms]
    bias_corrected : bool
        The weather's forecast of the past days was compared with the measured solar (its bias corrected).
    note : str
        The plan's note, for the owner.
    """

    source: str
    fetched_at_ms: int | None
    bias_corrected: bool
    note: str

    def to_json(self) -> dict[str, Any]:
        at = self.fetched_at_ms
        return {"source": self.source, "bias_corrected": self.bias_corrected, "note": self.note,
                "weather_fetched_at": None if at is None else
                datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="seconds")}


def _covers(forecast: WeatherForecast, values: np.ndarray, start_ms: int, end_ms: int) -> bool:
    """Whether ``values`` are known for every hour of ``[start_ms, end_ms)``."""
    inside = (forecast.t_ms + forecast.step_ms > start_ms) & (forecast.t_ms < end_ms)
    hours = -(-(end_ms - (start_ms - start_ms % HOUR_MS)) // forecast.step_ms)
    return int(inside.sum()) >= hours and bool(np.isfinite(values[inside]).all())


def solar_forecast(hist_t_ms: np.ndarray, hist_pv_w: np.ndarray, t_ms: np.ndarray, step_ms: int, site: SiteConfig,
                   now_ms: int, weather: CachedWeather | None) -> tuple[np.ndarray, SolarSource]:
    """The solar power of each step (:func:`homegrid.forecast.forecast_solar`), from the weather's GHI (else its
    cloud cover) when it covers every step, else from the clear sky scaled by the recent days; and what it was made
    from. Where the cached forecast also covers the history (the past hours it keeps), its GHI there corrects the
    forecast's bias.

    Parameters
    ----------
    hist_t_ms, hist_pv_w : numpy.ndarray
        The history: instants [ms] and measured solar [W].
    t_ms : numpy.ndarray
        The start of each step. [ms]
    step_ms : int
        The steps' length. [ms]
    site : SiteConfig
        Its place and zone.
    now_ms : int
        When the forecast is made. [ms]
    weather : CachedWeather or None
        The cached weather forecast.
    """
    end_ms = int(t_ms[-1]) + step_ms if len(t_ms) else now_ms
    forecast = None if weather is None else weather.forecast
    ghi = cover = None
    if forecast is not None and len(forecast) and len(t_ms):
        if _covers(forecast, forecast.ghi_w_m2, int(t_ms[0]), end_ms):
            ghi = forecast.ghi_w_m2
        elif _covers(forecast, forecast.cloud_cover_pct, int(t_ms[0]), end_ms):
            cover = forecast.cloud_cover_pct
    if forecast is None or weather is None or (ghi is None and cover is None):
        why = "no weather forecast" if weather is None else "the weather forecast does not cover the horizon"
        power = forecast_solar(hist_t_ms, hist_pv_w, t_ms, step_ms, site.latitude, site.longitude, now_ms=now_ms)
        return power, SolarSource("clear-sky", None if weather is None else weather.fetched_at_ms, False,
                                  f"solar: clear sky scaled by the recent days, {why}")
    power = forecast_solar(hist_t_ms, hist_pv_w, t_ms, step_ms, site.latitude, site.longitude, now_ms=now_ms,
                           weather_t_ms=forecast.t_ms, weather_ghi=ghi, weather_cloud_cover=cover)
    past = (forecast.t_ms < now_ms) & np.isfinite(forecast.ghi_w_m2)
    corrected = ghi is not None and bool(past.any()) and bool(
        np.isin(forecast.t_ms[past] // HOUR_MS, np.asarray(hist_t_ms, dtype=np.int64) // HOUR_MS).any())
    name = SOURCES.get(weather.source, weather.source)
    at, today = local_time_text(weather.fetched_at_ms, site.timezone), local_time_text(now_ms, site.timezone)
    at = at[11:16] if at[:10] == today[:10] else f"{at[:10]} {at[11:16]}"
    what = "" if ghi is not None else " (its cloud cover)"
    return power, SolarSource(weather.source, weather.fetched_at_ms, corrected,
                              f"solar: {name} forecast of {at}{what}")
