"""The site's weather forecast in the hub (homegrid/hub/weather_cache.py): Open-Meteo fetched into the data dir's
cache on a recorded reply (tests/fixtures/weather, served by httpx.MockTransport: nothing reaches the network), a
failed fetch keeping the cache, and the planner's solar forecast following the weather."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from homegrid.api.plan import add_plan_routes
from homegrid.config import Config, PlannerConfig, SiteConfig
from homegrid.devices.weather import OpenMeteoSource, WeatherForecast, parse_forecast
from homegrid.forecast import clear_sky_ghi
from homegrid.hub import weather_cache
from homegrid.hub.planning import PlanningService
from homegrid.hub.service import Hub
from homegrid.hub.weather_cache import (
    FORECAST_DAYS,
    KEEP_DAYS,
    PAST_DAYS,
    CachedWeather,
    WeatherCacheTask,
    cache_path,
    merge_forecasts,
    read_cache,
    solar_forecast,
    weather_cache_for,
)
from homegrid.readings import to_ms
from homegrid.timezones import DAY_MS, HOUR_MS, parse_iso_ms

from .conftest import behind_the_door
from .test_forecast_openmeteo import BERLIN_LAT, BERLIN_LON, recorded, serve

#: an hour after the recorded reply was made (Berlin, 2021-11-24)
FETCHED = datetime(2021, 11, 24, 9, 0, tzinfo=UTC)
#: a winter weekday afternoon in New York (the virtual home's zone), as tests/test_planning.py plans
NOW = datetime(2026, 1, 14, 18, 7, tzinfo=UTC)


def refusing() -> httpx.MockTransport:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known", request=request)

    return httpx.MockTransport(refuse)


def berlin_task(data_dir: Path, transport: httpx.AsyncBaseTransport, clock: datetime = FETCHED) -> WeatherCacheTask:
    source = OpenMeteoSource(BERLIN_LAT, BERLIN_LON, forecast_days=FORECAST_DAYS, past_days=PAST_DAYS,
                             transport=transport)
    return WeatherCacheTask(source, cache_path(data_dir), lambda: clock)


# ----------------------------------------------------------------------------- the hub's task


def test_the_task_fetches_the_sites_forecast_into_the_data_dir(tmp_path):
    seen: list[httpx.Request] = []
    task = berlin_task(tmp_path, serve(recorded(), seen=seen))
    assert task.current() is None
    assert asyncio.run(task.refresh()) is True
    url = str(seen[0].url)
    assert "latitude=52.5200" in url and f"forecast_days={FORECAST_DAYS}" in url and f"past_days={PAST_DAYS}" in url
    cached = task.current()
    assert cached is not None and cached.fetched_at_ms == to_ms(FETCHED)
    want = parse_forecast(recorded())
    assert (cached.forecast.t_ms == want.t_ms).all()
    assert cached.forecast.ghi_w_m2 == pytest.approx(want.ghi_w_m2, abs=1e-3)
    # the file holds the same forecast: a restart reads it back
    again = read_cache(cache_path(tmp_path))
    assert again is not None and again.fetched_at_ms == to_ms(FETCHED)
    assert (again.forecast.t_ms == want.t_ms).all()
    assert again.forecast.cloud_cover_pct == pytest.approx(want.cloud_cover_pct, abs=1e-3)
    status = task.status()
    assert status["fetches"] == 1 and status["failures"] == 0
    assert status["forecast_until"] == "2021-11-30T22:00:00+00:00"  # 23:00 Berlin, the last hour's end


def test_a_failed_fetch_keeps_the_cache_and_is_logged_once(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="homegrid")
    assert asyncio.run(berlin_task(tmp_path, serve(recorded())).refresh())
    before = cache_path(tmp_path).read_bytes()
    # a restart without network: the cached forecast is there, the fetches fail, counted, the hub goes on
    task = berlin_task(tmp_path, refusing())
    assert task.current() is not None
    assert [asyncio.run(task.refresh()) for _ in range(3)] == [False, False, False]
    assert task.failures == 3 and task.fetches == 0 and "Name or service not known" in (task.last_error or "")
    assert cache_path(tmp_path).read_bytes() == before
    cached = task.current()
    assert cached is not None and cached.fetched_at_ms == to_ms(FETCHED)
    warned = [r for r in caplog.records if r.name == "homegrid.hub.weather_cache" and r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "the cached one is kept" in warned[0].getMessage()
    # an HTTP error and a reply that is not a forecast keep it too
    for transport in (serve({"error": True, "reason": "Latitude must be in range"}, status=400), serve(b"<html>")):
        task.source = OpenMeteoSource(BERLIN_LAT, BERLIN_LON, transport=transport)
        assert asyncio.run(task.refresh()) is False
    assert task.failures == 5 and cache_path(tmp_path).read_bytes() == before


def test_the_run_loop_survives_failures_until_stopped(tmp_path):
    task = berlin_task(tmp_path, refusing())
    task.interval_s = 0.01

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(task.run(stop))
        for _ in range(500):
            if task.failures >= 3:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await loop

    asyncio.run(run())
    assert task.failures >= 3 and task.current() is None


def test_a_later_fetch_merges_and_old_hours_are_dropped(tmp_path):
    first = parse_forecast(recorded())
    later = recorded()
    # the same reply a day on: its first 24 hours replace the cached ones' last day
    shifted = np.array(later["hourly"]["time"], dtype="datetime64[m]") + np.timedelta64(1, "D")
    later["hourly"]["time"] = [str(t) for t in shifted]
    second = parse_forecast(later)
    assert second.t_ms[0] == first.t_ms[0] + DAY_MS
    merged = merge_forecasts(first, second, keep_from_ms=0)
    assert len(merged) == len(first) + 24 and (np.diff(merged.t_ms) == HOUR_MS).all()
    assert merged.ghi_w_m2[-24:] == pytest.approx(second.ghi_w_m2[-24:])  # the newer wins
    assert merged.ghi_w_m2[24:48] == pytest.approx(second.ghi_w_m2[:24])
    assert merged.ghi_w_m2[:24] == pytest.approx(first.ghi_w_m2[:24])  # the old day kept
    trimmed = merge_forecasts(first, second, keep_from_ms=int(first.t_ms[0]) + 12 * HOUR_MS)
    assert trimmed.t_ms[0] == first.t_ms[0] + 12 * HOUR_MS
    # the task keeps KEEP_DAYS of past hours
    task = berlin_task(tmp_path, serve(recorded()))
    asyncio.run(task.refresh())
    task.clock = lambda: datetime(2021, 11, 24 + 1, 9, tzinfo=UTC)
    task.source = OpenMeteoSource(BERLIN_LAT, BERLIN_LON, transport=serve(later))
    asyncio.run(task.refresh())
    cached = task.current()
    assert cached is not None and len(cached.forecast) == len(first) + 24
    assert KEEP_DAYS >= 30  # the solar forecast's calibration window


def test_a_damaged_cache_or_another_places_is_not_used(tmp_path, caplog):
    path = cache_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    assert berlin_task(tmp_path, refusing()).current() is None
    assert "not used" in caplog.text
    asyncio.run(berlin_task(tmp_path, serve(recorded())).refresh())
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["ghi_w_m2"] = doc["ghi_w_m2"][:-1]
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert read_cache(path) is None
    asyncio.run(berlin_task(tmp_path, serve(recorded())).refresh())
    moved = OpenMeteoSource(48.85, 2.35, transport=refusing())  # the site is now Paris
    assert WeatherCacheTask(moved, path).current() is None


def test_the_hub_builds_the_task_from_the_config(tmp_path):
    on = Config().replace(planner=PlannerConfig(enabled=True))
    task = weather_cache_for(on, tmp_path)
    assert on.planner.weather == "open-meteo" and task is not None
    assert task.path == tmp_path / "weather" / "open-meteo.json"
    assert (task.source.latitude, task.source.longitude) == (on.site.latitude, on.site.longitude)
    assert task.source.transport is weather_cache.TRANSPORT  # tests/conftest.py's refusing one
    assert weather_cache_for(on.replace(planner=PlannerConfig(enabled=True, weather="none")), tmp_path) is None
    assert weather_cache_for(Config(), tmp_path) is None  # the planner off: no weather needed
    with pytest.raises(ValueError, match="weather"):
        PlannerConfig(weather="met-office")


# ----------------------------------------------------------------------------- the planner's solar forecast


def _hub(tmp_path: Path, weather: str = "open-meteo") -> Hub:
    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=10),
                            planner=PlannerConfig(enabled=True, weather=weather))
    hub = Hub(config, tmp_path, clock=lambda: NOW)
    hub.prepare()
    asyncio.run(hub.poll_once())
    hub.flush()
    return hub


def sky(site: SiteConfig, clearness: float, start_ms: int, hours: int, fetched_ms: int,
        past_clearness: float | None = None) -> CachedWeather:
    """An hourly forecast whose GHI is the clear sky's times ``clearness`` (cloud cover to match); the hours before
    ``fetched_ms`` (what the weather said of the past) at ``past_clearness`` when given."""
    t = start_ms - start_ms % HOUR_MS + HOUR_MS * np.arange(hours, dtype=np.int64)
    mids = (t[:, None] + np.arange(1, 12, 2)[None, :] * HOUR_MS // 12).ravel()
    clear = clear_sky_ghi(mids, site.latitude, site.longitude).reshape(hours, 6).mean(axis=1)
    k = np.where((t < fetched_ms) & (past_clearness is not None), past_clearness or 0.0, clearness)
    forecast = WeatherForecast(t, HOUR_MS, clear * k, 100.0 * (1 - k), np.full(hours, 5.0), site.latitude,
                               site.longitude)
    return CachedWeather(forecast, fetched_ms)


def test_the_plans_solar_follows_the_weather(tmp_path):
    hub = _hub(tmp_path)
    try:
        svc = hub.planning
        assert svc is not None and hub.weather is not None
        now = to_ms(NOW)
        site = hub.config.site
        # no network: no cached forecast, the clear sky scaled by the recent days, said so
        problem, notes = svc.build(now)
        assert "solar: clear sky scaled by the recent days, no weather forecast" in notes
        assert svc.solar_source is not None and svc.solar_source.source == "clear-sky"
        fetched = now - 40 * 60_000  # 12:27 in New York
        results = {}
        for clearness in (1.0, 0.2):
            # the same past (the weather's own view of the last week), another sky ahead
            weather = sky(site, clearness, now - 7 * DAY_MS, 8 * 24 + 48, fetched, past_clearness=0.6)
            svc.weather = lambda w=weather: w
            p, n = svc.build(now)
            results[clearness] = p.solar_w
            assert "solar: Open-Meteo forecast of 12:27" in n
            assert svc.solar_source is not None and svc.solar_source.source == "open-meteo"
            assert svc.solar_source.bias_corrected  # the cache's past hours meet the measured solar
        clear, cloudy = results[1.0], results[0.2]
        # a cloudy forecast gives less solar than a clear one on the same history, most of all past the first hours
        # (the last hour's measured clearness is blended into those)
        assert cloudy.sum() < 0.6 * clear.sum()
        later = slice(4 * 4, 96)
        assert cloudy[later].sum() == pytest.approx(0.2 * clear[later].sum(), rel=0.15)
        assert clear.max() > 0 and problem.solar_w.max() > 0
        # corrected by the site's own history: a weather source that said the past week was half as sunny (against
        # the same measured solar) is trusted half as much, and the same sky ahead gives twice the solar
        # (a cloudy sky ahead, so that the array's highest power, the forecast's cap, is not reached)
        gloomy = sky(site, 0.2, now - 7 * DAY_MS, 8 * 24 + 48, fetched, past_clearness=0.3)
        svc.weather = lambda: gloomy
        doubled = svc.build(now)[0].solar_w
        assert doubled[later].sum() == pytest.approx(2 * cloudy[later].sum(), rel=0.1)
        # a forecast that does not reach the horizon's end (a stale one) is not used
        stale = sky(site, 0.2, now - 7 * DAY_MS, 7 * 24 + 12, fetched - DAY_MS)
        svc.weather = lambda: stale
        p, n = svc.build(now)
        assert "solar: clear sky scaled by the recent days, the weather forecast does not cover the horizon" in n
        assert p.solar_w == pytest.approx(problem.solar_w)
    finally:
        hub.store.close()


def test_a_forecast_with_cloud_cover_only_is_used_and_said_so(tmp_path):
    hub = _hub(tmp_path)
    try:
        site = hub.config.site
        now = to_ms(NOW)
        t0 = now - now % (15 * 60_000)
        t = t0 + 15 * 60_000 * np.arange(96, dtype=np.int64)
        full = sky(site, 1.0, now - DAY_MS, 60, now - 3 * DAY_MS)
        f = full.forecast
        cover_only = CachedWeather(WeatherForecast(f.t_ms, f.step_ms, np.full(len(f), np.nan), f.cloud_cover_pct,
                                                   f.temperature_c, f.latitude, f.longitude), full.fetched_at_ms)
        from homegrid.hub.planning import history

        hist_t, _, solar = history(hub.store, t0 - 28 * DAY_MS, t0, 15 * 60_000)
        power, source = solar_forecast(hist_t, solar, t, 15 * 60_000, site, t0, cover_only)
        assert source.source == "open-meteo" and not source.bias_corrected
        assert source.note == "solar: Open-Meteo forecast of 2026-01-11 13:07 (its cloud cover)"
        assert power.max() > 0
    finally:
        hub.store.close()


def test_the_plan_api_says_where_the_solar_forecast_came_from(tmp_path):
    hub = _hub(tmp_path)
    try:
        svc = hub.planning
        assert svc is not None
        app = FastAPI()
        add_plan_routes(app, svc)
        client = behind_the_door(app, tmp_path / "owner")
        assert client.get("/api/v1/plan").json()["solar_forecast"] is None  # before the first plan
        now = to_ms(NOW)
        svc.weather = lambda: sky(hub.config.site, 0.5, now - DAY_MS, 3 * 24, now - HOUR_MS)
        svc.make()
        body = client.get("/api/v1/plan").json()
        solar = body["solar_forecast"]
        assert solar["source"] == "open-meteo" and solar["note"] == "solar: Open-Meteo forecast of 12:07"
        assert parse_iso_ms(solar["weather_fetched_at"]) == now - HOUR_MS
        assert solar["note"] in body["plan"]["notes"]
    finally:
        hub.store.close()


def test_weather_none_makes_no_task_and_plans_from_the_clear_sky(tmp_path):
    hub = _hub(tmp_path, weather="none")
    try:
        assert hub.weather is None and hub.status()["weather"] is None
        assert isinstance(hub.planning, PlanningService) and hub.planning.weather is None
        made = hub.planning.make()
        assert "solar: clear sky scaled by the recent days, no weather forecast" in made.notes
    finally:
        hub.store.close()
