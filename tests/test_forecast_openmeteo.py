"""Open-Meteo's forecast (homegrid/devices/weather/openmeteo.py) on a real recorded reply, and the solar forecast
driven by it.

The reply in tests/fixtures/weather is real (its README gives the provenance: Home Assistant's recorded reply,
cut down); malformed replies are made here from it, each named where it is made. No test reaches the network:
httpx.MockTransport answers.
"""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from homegrid.devices.weather import (
    OpenMeteoError,
    OpenMeteoSource,
    forecast_url,
    parse_forecast,
    parse_forecast_text,
)
from homegrid.forecast import SolarForecaster, clear_sky_ghi, solar_zenith
from homegrid.timezones import DAY_MS, HOUR_MS, MINUTE_MS, parse_iso_ms, utc_offset_ms

RECORDED = Path(__file__).parent / "fixtures" / "weather" / "openmeteo_berlin_2021-11-24_7d.json"
BERLIN_LAT, BERLIN_LON = 52.52, 13.419998


def recorded() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return doc


def serve(body: bytes | dict[str, Any], status: int = 200, seen: list[httpx.Request] | None = None
          ) -> httpx.MockTransport:
    data = json.dumps(body).encode() if isinstance(body, dict) else body

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, content=data, headers={"Content-Type": "application/json"})

    return httpx.MockTransport(handler)


# ----------------------------------------------------------------------------- the recorded reply


def test_the_recorded_reply_gives_168_hourly_intervals_in_utc() -> None:
    f = parse_forecast(recorded(), "recorded")
    assert len(f) == 168 and f.step_ms == HOUR_MS and (np.diff(f.t_ms) == HOUR_MS).all()
    # "2021-11-24T00:00" Berlin (CET, +01:00) is 23:00 UTC; GHI labelled so is the mean of the hour before it
    assert f.t_ms[0] == parse_iso_ms("2021-11-23T22:00Z")
    assert (f.latitude, f.longitude, f.elevation_m) == (52.52, 13.419998, 44.8125)
    assert f.ghi_w_m2.max() == pytest.approx(239.7)
    assert (f.ghi_w_m2 >= 0).all()  # -0.1 and -0.2 at night become 0
    assert np.isnan(f.ghi_w_m2).sum() == 0
    raw = recorded()["hourly"]
    assert min(raw["shortwave_radiation"]) < 0  # (the reply does hold them)
    # cloud cover: an instant, averaged over each interval's two ends (the first has only its end)
    assert f.cloud_cover_pct[0] == 100 and f.cloud_cover_pct[2] == pytest.approx((100 + 98) / 2)
    assert f.temperature_c[1] == pytest.approx((6.9 + 6.8) / 2)


def test_the_sunniest_hour_of_each_day_is_around_local_noon() -> None:
    """A check of the time handling against the sun: in late November Berlin's solar noon is about 11:55 CET."""
    f = parse_forecast(recorded())
    local_mid = f.t_ms + HOUR_MS // 2 + utc_offset_ms(f.t_ms, "Europe/Berlin")
    day = local_mid // DAY_MS
    for d in np.unique(day):
        sel = day == d
        if f.ghi_w_m2[sel].max() < 20:  # the first interval (22:00-23:00 UTC) alone on the 23rd
            continue
        hour = (local_mid[sel][np.argmax(f.ghi_w_m2[sel])] % DAY_MS) / HOUR_MS
        assert 10.0 <= hour <= 14.0, (d, hour)


def top_of_atmosphere(t_ms: np.ndarray) -> np.ndarray:
    """The mean irradiance on a horizontal plane above the atmosphere over each hour from ``t_ms``. [W/m²]"""
    inst = (t_ms[:, None] + np.arange(12, dtype=np.int64)[None, :] * 5 * MINUTE_MS + 150_000).ravel()
    cos_z = np.maximum(np.cos(np.radians(solar_zenith(inst, BERLIN_LAT, BERLIN_LON))), 0.0)
    out: np.ndarray = (1367.0 * cos_z).reshape(-1, 12).mean(axis=1)
    return out


def test_the_forecast_ghi_is_physical_at_every_hour() -> None:
    """Open-Meteo's hourly GHI against the sun over the same interval: at most 80 % of what reaches the top of
    the atmosphere, nothing before sunrise (07:40 CET) or after sunset (15:55). A one-hour slip in the times
    either way puts light where the sun is down."""
    f = parse_forecast(recorded())
    assert (f.ghi_w_m2 <= 0.8 * top_of_atmosphere(f.t_ms) + 1.0).all()
    for slip in (-HOUR_MS, HOUR_MS):  # the check can fail
        assert not (f.ghi_w_m2 <= 0.8 * top_of_atmosphere(f.t_ms + slip) + 1.0).all()


def test_a_zone_that_is_not_iana_falls_back_on_the_utc_offset() -> None:
    doc = recorded()
    doc["timezone"] = "CET-ish"  # made here: not a zone name; the offset alone must place the times
    assert parse_forecast(doc).t_ms[0] == parse_forecast(recorded()).t_ms[0]
    del doc["utc_offset_seconds"]
    with pytest.raises(OpenMeteoError, match="utc_offset_seconds is missing"):
        parse_forecast(doc)


def test_gmt_and_unixtime_replies_read_the_same() -> None:
    doc = recorded()
    t_ms = parse_forecast(doc).t_ms + HOUR_MS  # the labels, in UTC
    gmt = copy.deepcopy(doc)
    gmt["timezone"], gmt["utc_offset_seconds"] = "GMT", 0
    gmt["hourly"]["time"] = [str(np.datetime64(int(x), "ms").astype("datetime64[m]")) for x in t_ms]
    unix = copy.deepcopy(doc)
    unix["hourly"]["time"] = [int(x) // 1000 for x in t_ms]
    for variant in (gmt, unix):
        f = parse_forecast(variant)
        np.testing.assert_array_equal(f.t_ms, parse_forecast(doc).t_ms)
        np.testing.assert_array_equal(f.ghi_w_m2, parse_forecast(doc).ghi_w_m2)


def test_the_older_field_name_cloudcover_is_read() -> None:
    doc = recorded()
    doc["hourly"]["cloudcover"] = doc["hourly"].pop("cloud_cover")
    np.testing.assert_array_equal(parse_forecast(doc).cloud_cover_pct, parse_forecast(recorded()).cloud_cover_pct)


# ----------------------------------------------------------------------------- bad replies name the field


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["hourly"]["cloud_cover"].__setitem__(5, "x"), r"hourly\.cloud_cover\[5\]: expected a number"),
    (lambda d: d["hourly"]["shortwave_radiation"].pop(), r"hourly\.shortwave_radiation: 167 values for 168 times"),
    (lambda d: d["hourly"].pop("time"), r"hourly\.time: expected a list of times"),
    (lambda d: d["hourly"]["time"].__setitem__(3, "2021-11-24 03h"), r"hourly\.time\[3\]: expected YYYY-MM-DDThh:mm"),
    (lambda d: d["hourly"]["time"].__setitem__(3, "2021-11-24T05:00"), r"hourly\.time\[3\]: not an hour after"),
    (lambda d: d["hourly_units"].__setitem__("shortwave_radiation", "MJ/m²"), r"hourly_units\.shortwave_radiation"),
    (lambda d: d.pop("hourly"), r"hourly: expected an object of hourly series, got no such field"),
    (lambda d: [d["hourly"].pop(k) for k in ("shortwave_radiation", "cloud_cover")],
     "neither shortwave_radiation nor cloud_cover"),
    (lambda d: d.__setitem__("latitude", None), r"latitude: expected a number, got None"),
])
def test_a_malformed_reply_is_refused_naming_the_field(change: Any, message: str) -> None:
    doc = recorded()
    change(doc)  # each change is made here, to the recorded reply
    with pytest.raises(OpenMeteoError, match=message):
        parse_forecast(doc, "test")


def test_not_json_and_an_api_error_object_are_refused_with_the_reason() -> None:
    with pytest.raises(OpenMeteoError, match=r"not JSON.*begins '<html>"):
        parse_forecast_text("<html>Bad gateway</html>")
    # the API's documented error object (https://open-meteo.com/en/docs, "Errors")
    refusal = {"error": True, "reason": "Cannot initialize WeatherVariable from invalid String value tempeture_2m"}
    with pytest.raises(OpenMeteoError, match="the API refused: Cannot initialize"):
        parse_forecast(refusal)


def test_a_null_value_is_nan_not_zero() -> None:
    doc = recorded()
    doc["hourly"]["shortwave_radiation"][12] = None  # made here: the API writes null where a model has no value
    f = parse_forecast(doc)
    assert np.isnan(f.ghi_w_m2[12]) and np.isfinite(f.ghi_w_m2[11])


# ----------------------------------------------------------------------------- fetching


def test_fetch_asks_for_the_hourly_series_in_gmt_and_reads_the_reply() -> None:
    seen: list[httpx.Request] = []
    source = OpenMeteoSource(BERLIN_LAT, BERLIN_LON, transport=serve(RECORDED.read_bytes(), seen=seen))
    f = asyncio.run(source.fetch())
    assert str(seen[0].url) == ("https://api.open-meteo.com/v1/forecast?latitude=52.5200&longitude=13.4200"
                                "&hourly=shortwave_radiation,cloud_cover,temperature_2m&timezone=GMT"
                                "&forecast_days=2")
    assert len(f) == 168 and f.source == source.url
    assert forecast_url(1.0, 2.0, forecast_days=3, past_days=7).endswith("&forecast_days=3&past_days=7")


def test_an_http_error_carries_the_apis_reason() -> None:
    body = json.dumps({"error": True, "reason": "Latitude must be in range of -90 to 90°. Given: 91.0."}).encode()
    source = OpenMeteoSource(BERLIN_LAT, BERLIN_LON, transport=serve(body, status=400))
    with pytest.raises(OpenMeteoError, match=r"HTTP 400 Bad Request: Latitude must be in range"):
        asyncio.run(source.fetch())


def test_an_unreachable_server_is_an_open_meteo_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    source = OpenMeteoSource(BERLIN_LAT, BERLIN_LON, transport=httpx.MockTransport(refuse))
    with pytest.raises(OpenMeteoError, match="cannot reach Open-Meteo: ConnectError"):
        asyncio.run(source.fetch())
    with pytest.raises(OpenMeteoError, match="not a place on Earth"):
        forecast_url(95.0, 0.0)


# ----------------------------------------------------------------------------- the solar forecast on it


def test_the_solar_forecast_follows_the_weathers_ghi() -> None:
    """An array that made 4 W per W/m² of clear sky over a month (made here, for Berlin) and a real overcast
    November forecast: each step's power is that response times the forecast GHI."""
    f = parse_forecast(recorded())
    step = 30 * MINUTE_MS
    hist = np.arange(f.t_ms[0] - 30 * DAY_MS, f.t_ms[0], step, dtype=np.int64)
    cs = np.array([clear_sky_ghi(hist + k * 5 * MINUTE_MS, BERLIN_LAT, BERLIN_LON, 44.8) for k in range(6)])
    model = SolarForecaster(BERLIN_LAT, BERLIN_LON, altitude_m=44.8, slot_ms=step, envelope_quantile=0.5)
    model.observe(hist, 4.0 * cs.mean(axis=0))
    now = int(f.t_ms[0])
    ft = np.arange(now, now + 48 * HOUR_MS, HOUR_MS, dtype=np.int64)
    p = model.forecast(now, ft, HOUR_MS, weather_t_ms=f.t_ms, weather_ghi=f.ghi_w_m2)
    expected = 4.0 * f.ghi_w_m2[:48]
    day = expected > 20
    assert p[day] == pytest.approx(expected[day], rel=0.12)
    assert p.sum() == pytest.approx(expected.sum(), rel=0.05)
    # and from the cloud cover alone: less than the clear sky, more than the 35 % floor of a full cover
    pc = model.forecast(now, ft, HOUR_MS, weather_t_ms=f.t_ms, weather_cloud_cover=f.cloud_cover_pct)
    clear = model.forecast(now, ft, HOUR_MS, weather_t_ms=f.t_ms, weather_cloud_cover=np.zeros(len(f)))
    assert (pc <= clear + 1e-9).all() and pc.sum() >= 0.35 * clear.sum() - 1e-6
