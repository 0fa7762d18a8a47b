"""The solar forecast (homegrid/forecast/solar.py) on measured PV: PVDAQ system 50 in Golden, Colorado (15-min AC
power, with NSRDB's satellite irradiance for the same site) and the emhass home's PV (30 min, France)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pvlib import irradiance

from homegrid.forecast import SolarForecaster, clear_sky_ghi, cloud_cover_to_ghi, forecast_solar, solar_zenith
from homegrid.forecast.load import persistence_forecast
from homegrid.timezones import DAY_MS, HOUR_MS, MINUTE_MS, parse_iso_ms
from tests.forecast_data import (
    EMHASS_LAT,
    EMHASS_LON,
    GOLDEN_ALT,
    GOLDEN_LAT,
    GOLDEN_LON,
    emhass,
    nsrdb,
    pvdaq,
)

Q = 15 * MINUTE_MS


def weather_at(t: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """NSRDB's GHI (30-min values) at instants, as a weather source would have given it. [W/m²]"""
    n = nsrdb()
    i = np.clip(np.searchsorted(n.t_ms, t, side="right") - 1, 0, n.t_ms.size - 1)
    out: np.ndarray = n.values["ghi"][i] * scale
    return out


# ----------------------------------------------------------------------------- the clear sky


def test_clear_sky_agrees_with_nsrdbs_clear_sky_at_golden() -> None:
    n = nsrdb()
    ours = clear_sky_ghi(n.t_ms, GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT)
    theirs = n.values["ghi_clear"]
    assert ours.sum() == pytest.approx(theirs.sum(), rel=0.03)  # three years: 1.4 % apart
    assert float(np.abs(ours - theirs).mean()) < 25.0  # [W/m²]; the mean clear-sky GHI is about 270
    assert ours.max() == pytest.approx(theirs.max(), rel=0.05)


def test_clear_sky_never_exceeds_what_reaches_the_top_of_the_atmosphere() -> None:
    t = np.arange(parse_iso_ms("2024-01-01T00:00Z"), parse_iso_ms("2025-01-01T00:00Z"), Q, dtype=np.int64)
    for lat, lon, alt in ((GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT), (EMHASS_LAT, EMHASS_LON, 0.0),
                          (-33.9, 151.2, 0.0), (64.1, -21.9, 0.0), (0.0, 0.0, 4000.0)):
        ghi = clear_sky_ghi(t, lat, lon, alt)
        zen = solar_zenith(t, lat, lon)
        stamps = pd.DatetimeIndex(t.astype("datetime64[ms]"))
        doy = np.asarray(stamps.day_of_year, dtype=np.float64) + (t % DAY_MS) / DAY_MS
        top = irradiance.get_extra_radiation(doy) * np.cos(np.radians(zen))
        assert (ghi >= 0).all() and (ghi <= np.maximum(top, 0) * (1 + 1e-9)).all()
        assert (ghi[zen >= 90] == 0).all()  # nothing at night
        if alt < 2000:  # (at 4,000 m Ineichen-Perez nears the top of the atmosphere: the cap above holds it)
            assert ghi.max() < 1250.0


def _pvlibs_clear_sky(t: np.ndarray, lat: float, lon: float, alt: float) -> tuple[np.ndarray, np.ndarray]:
    """The zenith [degrees] and clear-sky GHI [W/m²] from pvlib's own functions, as homegrid computed them before
    writing the formulas out (pvlib costs the live hub about 130 MB)."""
    from pvlib import atmosphere, clearsky, solarposition

    from homegrid.forecast.solar import _day_of_year

    doy = _day_of_year(t)
    decl = solarposition.declination_spencer71(doy)
    eot = solarposition.equation_of_time_spencer71(doy)
    hour_angle = np.radians(((t % DAY_MS) / HOUR_MS - 12.0) * 15.0 + lon + eot / 4.0)
    zen = np.degrees(solarposition.solar_zenith_analytical(np.radians(lat), hour_angle, decl))
    up = zen < 90.0
    ghi = np.zeros(t.size)
    am = atmosphere.get_absolute_airmass(atmosphere.get_relative_airmass(zen[up]), atmosphere.alt2pres(alt))
    extra = irradiance.get_extra_radiation(doy[up])
    cs = clearsky.ineichen(zen[up], am, 3.0, altitude=alt, dni_extra=extra)
    ghi[up] = np.minimum(np.nan_to_num(cs["ghi"]), extra * np.cos(np.radians(zen[up])))
    return zen, np.maximum(ghi, 0.0)


def test_the_formulas_written_out_are_pvlibs() -> None:
    t = np.arange(parse_iso_ms("2024-01-01T00:00Z"), parse_iso_ms("2025-01-01T00:00Z"), 7 * MINUTE_MS,
                  dtype=np.int64)
    for lat, lon, alt in ((GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT), (-33.9, 151.2, 0.0), (64.1, -21.9, 0.0),
                          (0.0, 0.0, 4000.0)):
        zen, ghi = _pvlibs_clear_sky(t, lat, lon, alt)
        assert solar_zenith(t, lat, lon) == pytest.approx(zen, abs=1e-9)
        assert clear_sky_ghi(t, lat, lon, alt) == pytest.approx(ghi, abs=1e-9)


def test_the_forecast_does_not_import_pvlib() -> None:
    import subprocess
    import sys

    code = ("import sys, numpy as np; from homegrid.forecast import clear_sky_ghi; "
            "clear_sky_ghi(np.array([1718913600000]), 39.7, -105.2); print('pvlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

def test_the_zenith_at_noon_on_the_june_solstice_is_latitude_minus_the_tilt_of_the_earth() -> None:
    noon = parse_iso_ms("2024-06-20T20:00Z")  # 20:51 UTC was the solstice; Golden's solar noon is about 19:01
    t = noon + np.arange(-3 * 60, 3 * 60, dtype=np.int64) * MINUTE_MS
    assert solar_zenith(t, GOLDEN_LAT, GOLDEN_LON).min() == pytest.approx(GOLDEN_LAT - 23.44, abs=0.5)


def test_cloud_cover_takes_ghi_from_the_clear_sky_down_to_35_percent() -> None:
    cs = np.array([0.0, 500.0, 1000.0])
    assert cloud_cover_to_ghi(np.zeros(3), cs) == pytest.approx(cs)
    assert cloud_cover_to_ghi(np.full(3, 100.0), cs) == pytest.approx(0.35 * cs)
    assert cloud_cover_to_ghi(np.full(3, 50.0), cs) == pytest.approx(0.675 * cs)


# ----------------------------------------------------------------------------- the forecast on measured PV


def replay(first: str, days: int, weather_scale: float | None, every_ms: int = 3 * HOUR_MS,
           horizon_steps: int = 96, nowcast_decay_ms: float = 3 * HOUR_MS
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forecasts of the next 24 h made every ``every_ms`` (fed as time goes by), yesterday's persistence, and the
    measurements; with NSRDB's GHI times ``weather_scale`` as the weather forecast (None: no weather)."""
    data = pvdaq()
    t, p = data.t_ms, data.values["ac"]
    start = parse_iso_ms(first)
    model = SolarForecaster(GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT, slot_ms=Q,
                            nowcast_decay_ms=nowcast_decay_ms)
    fed = int(np.searchsorted(t, start - 31 * DAY_MS))
    ours, naive, actual = [], [], []
    for now in range(start, start + days * DAY_MS, every_ms):
        upto = int(np.searchsorted(t, now))
        past = t[fed:upto]
        model.observe(past, p[fed:upto], None if weather_scale is None else weather_at(past, weather_scale))
        fed = upto
        ft = now + np.arange(horizon_steps, dtype=np.int64) * Q
        if weather_scale is None:
            ours.append(model.forecast(now, ft, Q))
        else:
            wt = np.arange(now - now % HOUR_MS, now + 30 * HOUR_MS, HOUR_MS // 2, dtype=np.int64)
            ours.append(model.forecast(now, ft, Q, weather_t_ms=wt, weather_ghi=weather_at(wt, weather_scale)))
        naive.append(persistence_forecast(t[:upto], p[:upto], ft))
        actual.append(p[np.searchsorted(t, ft)])
    return np.array(ours), np.array(naive), np.array(actual)


def mae(f: np.ndarray, a: np.ndarray, ok: np.ndarray) -> float:
    return float(np.abs(f - a)[ok].mean())


@pytest.mark.parametrize("first", ["2012-05-01T00:00-07:00", "2012-11-01T00:00-07:00"])
def test_with_a_weather_forecast_the_error_falls_well_below_persistence(first: str) -> None:
    """NSRDB's satellite GHI stands for a (very good) weather forecast: the forecast must use it."""
    plain, naive, actual = replay(first, 30, None)
    weather, _, _ = replay(first, 30, 1.0)
    ok = np.isfinite(actual) & np.isfinite(naive)
    assert ok.mean() > 0.8
    print(f"{first[:7]} MAE [W]: persistence {mae(naive, actual, ok):.0f}, clear sky x recent clearness "
          f"{mae(plain, actual, ok):.0f}, with the weather's GHI {mae(weather, actual, ok):.0f}")
    assert mae(weather, actual, ok) < 0.8 * mae(naive, actual, ok)
    assert mae(weather, actual, ok) < 0.8 * mae(plain, actual, ok)
    # without weather, clear sky scaled by the last days is no worse than yesterday repeated
    assert mae(plain, actual, ok) < 1.05 * mae(naive, actual, ok)


def test_the_last_hours_clearness_carries_the_first_hours() -> None:
    """Clouds of the last hour tend to stay: blending the last hour's clearness in halves the first hour's error."""
    first = "2012-05-01T00:00-07:00"
    with_it, naive, actual = replay(first, 30, None)
    without, _, _ = replay(first, 30, None, nowcast_decay_ms=0)
    ok = np.isfinite(actual) & np.isfinite(naive)
    ok[:, 4:] = False  # the first hour
    assert mae(with_it, actual, ok) < 0.6 * mae(without, actual, ok)
    assert mae(with_it, actual, ok) < 0.6 * mae(naive, actual, ok)


def test_a_biased_weather_source_is_corrected_by_the_sites_history() -> None:
    """A source whose GHI runs 30 % high, in the past as in its forecast: the bias learnt from the past cancels
    it."""
    first = "2012-06-01T00:00-07:00"
    honest, _, actual = replay(first, 10, 1.0)
    biased, _, _ = replay(first, 10, 1.3)
    ok = np.isfinite(actual)
    assert biased.sum() == pytest.approx(honest.sum(), rel=0.05)
    assert mae(biased, actual, ok) < 1.1 * mae(honest, actual, ok)


def test_the_forecast_stays_within_the_arrays_limit_and_is_zero_at_night() -> None:
    ours, _, actual = replay("2012-07-01T00:00-07:00", 20, 1.0)
    assert np.isfinite(ours).all() and (ours >= 0).all()
    assert ours.max() <= 1.05 * np.nanmax(pvdaq().values["ac"]) + 1e-6
    data = pvdaq()
    start = parse_iso_ms("2012-07-01T00:00-07:00")
    ft = start + np.arange(ours.shape[1], dtype=np.int64) * Q
    night = clear_sky_ghi(ft + Q // 2, GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT) == 0
    assert (ours[0][night] == 0).all()
    assert np.isfinite(actual).mean() > 0.8 and data.t_ms.size > 0


@settings(max_examples=25, deadline=None)
@given(a=st.floats(0, 100), b=st.floats(0, 100))
def test_more_cloud_never_means_more_sun(a: float, b: float) -> None:
    model = SolarForecaster(EMHASS_LAT, EMHASS_LON)
    data = emhass()
    now = int(data.t_ms[8000])
    model.observe(data.t_ms[:8000], data.values["pv"][:8000])
    ft = now + np.arange(48, dtype=np.int64) * 30 * MINUTE_MS
    wt = np.arange(now, now + 26 * HOUR_MS, HOUR_MS, dtype=np.int64)
    lo, hi = min(a, b), max(a, b)
    f_lo = model.forecast(now, ft, 30 * MINUTE_MS, weather_t_ms=wt, weather_cloud_cover=np.full(wt.size, lo))
    f_hi = model.forecast(now, ft, 30 * MINUTE_MS, weather_t_ms=wt, weather_cloud_cover=np.full(wt.size, hi))
    assert (f_hi <= f_lo + 1e-9).all()


def test_the_emhass_homes_pv_day_ahead_beats_persistence_over_a_spring_month() -> None:
    """The French home's own PV (NaN at night in the file): clear sky scaled by the last days, 30-min steps."""
    data = emhass()
    t, p = data.t_ms, np.nan_to_num(data.values["pv"], nan=0.0)
    step = 30 * MINUTE_MS
    start = parse_iso_ms("2024-05-01T00:00+02:00")
    model = SolarForecaster(EMHASS_LAT, EMHASS_LON, slot_ms=step)
    fed = 0
    errs, naive_errs = [], []
    for now in range(start, start + 31 * DAY_MS, 6 * HOUR_MS):
        upto = int(np.searchsorted(t, now))
        model.observe(t[fed:upto], p[fed:upto])
        fed = upto
        ft = now + np.arange(48, dtype=np.int64) * step
        f = model.forecast(now, ft, step)
        n = persistence_forecast(t[:upto], p[:upto], ft)
        a = p[np.searchsorted(t, ft)]
        errs.append(np.abs(f - a))
        naive_errs.append(np.abs(n - a))
    assert np.mean(errs) < np.mean(naive_errs)


# ----------------------------------------------------------------------------- honesty and cost


def test_readings_at_or_after_now_never_change_the_forecast() -> None:
    data = pvdaq()
    t, p = data.t_ms, data.values["ac"].copy()
    now = int(t[40_000])
    ft = now + np.arange(96, dtype=np.int64) * Q
    before = forecast_solar(t, p, ft, Q, GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT, slot_ms=Q)
    assert before.max() > 500
    p[t >= now] = 0.0  # the future, rewritten
    after = forecast_solar(t, p, ft, Q, GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT, slot_ms=Q)
    assert after == pytest.approx(before, abs=0)
    p[(t >= now - 2 * DAY_MS) & (t < now)] *= 0.5  # the last days do count
    assert forecast_solar(t, p, ft, Q, GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT, slot_ms=Q).sum() < before.sum()


def test_with_no_history_there_is_no_figure_to_give() -> None:
    ft = parse_iso_ms("2024-06-01T00:00Z") + np.arange(96, dtype=np.int64) * Q
    assert (forecast_solar(np.zeros(0, dtype=np.int64), np.zeros(0), ft, Q, 45.0, 5.0) == 0).all()


def test_fifteen_days_of_15_minute_re_plans_give_sane_forecasts() -> None:
    """The re-plan loop's pattern (its cost is measured by bench/bench_forecast.py, not here)."""
    data = pvdaq()
    t, p = data.t_ms, data.values["ac"]
    start = parse_iso_ms("2012-03-01T00:00-07:00")
    model = SolarForecaster(GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT, slot_ms=Q)
    fed = int(np.searchsorted(t, start - 31 * DAY_MS))
    for now in range(start, start + 15 * DAY_MS, Q):
        upto = int(np.searchsorted(t, now))
        ft = now + np.arange(192, dtype=np.int64) * Q  # 48 h at 15 min
        model.observe(t[fed:upto], p[fed:upto])
        forecast = model.forecast(now, ft, Q)
        fed = upto
        assert forecast.shape == (192,) and np.isfinite(forecast).all() and (forecast >= 0).all()
        assert forecast.max() > 0  # 48 h always hold a day


def test_readings_may_arrive_out_of_order() -> None:
    data = pvdaq()
    t, p = data.t_ms[20_000:26_000], data.values["ac"][20_000:26_000]
    in_order = SolarForecaster(GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT, slot_ms=Q)
    in_order.observe(t, p)
    backwards = SolarForecaster(GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT, slot_ms=Q)
    for a in range(5000, -1, -1000):
        backwards.observe(t[a:a + 1000], p[a:a + 1000])
    now = int(t[-1]) + Q
    ft = now + np.arange(96, dtype=np.int64) * Q
    assert backwards.forecast(now, ft, Q) == pytest.approx(in_order.forecast(now, ft, Q), rel=1e-9)


def test_a_weather_source_that_also_covers_the_past_corrects_its_bias_in_one_call() -> None:
    data, n = pvdaq(), nsrdb()
    t, p = data.t_ms, data.values["ac"]
    now = parse_iso_ms("2012-08-15T04:00-07:00")
    ft = now + np.arange(96, dtype=np.int64) * Q
    sel = (n.t_ms >= now - 31 * DAY_MS) & (n.t_ms < now + 2 * DAY_MS)  # the past month and the next two days
    kw = {"altitude_m": GOLDEN_ALT, "slot_ms": Q, "weather_t_ms": n.t_ms[sel]}
    honest = forecast_solar(t, p, ft, Q, GOLDEN_LAT, GOLDEN_LON, weather_ghi=n.values["ghi"][sel], **kw)
    biased = forecast_solar(t, p, ft, Q, GOLDEN_LAT, GOLDEN_LON, weather_ghi=1.3 * n.values["ghi"][sel], **kw)
    assert honest.sum() > 0
    assert biased.sum() == pytest.approx(honest.sum(), rel=0.03)


def test_a_turbidity_per_month_is_taken_month_by_month() -> None:
    t = np.array([parse_iso_ms("2024-01-15T19:00Z"), parse_iso_ms("2024-07-15T19:00Z")], dtype=np.int64)
    months = np.full(12, 3.0)
    months[6] = 6.0  # a hazy July
    plain = clear_sky_ghi(t, GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT)
    hazy = clear_sky_ghi(t, GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT, months)
    assert hazy[0] == pytest.approx(plain[0]) and hazy[1] < 0.95 * plain[1]
    with pytest.raises(ValueError, match="one value or twelve"):
        clear_sky_ghi(t, GOLDEN_LAT, GOLDEN_LON, 0.0, np.ones(4))
    assert clear_sky_ghi(np.zeros(0, dtype=np.int64), 0.0, 0.0).size == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"latitude": 91.0}, "not a place on Earth"), ({"slot_ms": 7 * MINUTE_MS}, "must divide a day"),
    ({"calibration_days": 0}, "at least 1"), ({"envelope_quantile": 0.0}, r"within \(0, 1\]"),
    ({"nowcast_decay_ms": -1.0}, ">= 0"),
])
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = {"latitude": GOLDEN_LAT, "longitude": GOLDEN_LON, **kwargs}
    with pytest.raises(ValueError, match=message):
        SolarForecaster(**args)  # type: ignore[arg-type]


def test_bad_calls_are_refused() -> None:
    model = SolarForecaster(GOLDEN_LAT, GOLDEN_LON)
    with pytest.raises(ValueError, match="3 instants, pv_w 2 values"):
        model.observe(np.arange(3, dtype=np.int64), np.zeros(2))
    with pytest.raises(ValueError, match="weather_ghi 1 values"):
        model.observe(np.arange(3, dtype=np.int64), np.zeros(3), np.zeros(1))
    with pytest.raises(ValueError, match="step_ms = 0"):
        model.forecast(0, np.arange(3, dtype=np.int64), 0)
    assert model.forecast(0, np.zeros(0, dtype=np.int64), Q).size == 0


def test_the_forecasters_clear_sky_tables_give_pvlibs_values() -> None:
    """The per-day minute tables the forecaster keeps (re-plans ask for nearly the same instants) agree with the
    direct computation, at odd instants, over a few days and over a long span."""
    model = SolarForecaster(GOLDEN_LAT, GOLDEN_LON, altitude_m=GOLDEN_ALT)
    for count, spacing in ((700, 450_123), (400, 3 * DAY_MS // 7)):
        t = parse_iso_ms("2012-06-01T00:00Z") + 12_345 + np.arange(count, dtype=np.int64) * spacing
        direct = clear_sky_ghi(t, GOLDEN_LAT, GOLDEN_LON, GOLDEN_ALT)
        assert model._clear_sky(t) == pytest.approx(direct, abs=0.05)
