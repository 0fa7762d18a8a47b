"""Solar forecast: pvlib's clear sky at the site, scaled by what the array has really delivered.

Three pieces, each a function over arrays:

- :func:`clear_sky_ghi`: the global horizontal irradiance under a clear sky [W/m²], from pvlib's solar
  geometry (Spencer's declination and equation of time, the analytical zenith) and pvlib's Ineichen-Perez
  model with a Linke turbidity (3 by default, or one per month), written out over numpy (importing pvlib would
  cost the live hub about 130 MB). It is pure arithmetic: no file, no table look-up.
- **the array's clear-sky response** per slot of the solar day (UTC time of day: the sun does not follow daylight
  saving): a high quantile (``envelope_quantile``) of measured power over clear-sky GHI across the last
  ``calibration_days`` days [W per W/m²]. It holds the array's size, orientation, shading and inverter limit
  without knowing any of them.
- the sky: without a weather forecast, the **recent clearness** (measured energy over the array's clear-sky
  energy across the last ``recent_days`` days, time-of-day weighted as the response is); with one, the clearness
  of each weather interval (its GHI over the clear sky's mean across the interval, so the interval's energy is
  kept and spread as the clear sky spreads it) from the forecast's GHI, or from its cloud cover turned into GHI
  by the linear model of pvlib's ``cloud_cover_to_ghi_linear`` that emhass uses (offset 35 %); corrected by the
  site's history when the weather source also gave the past (:meth:`SolarForecaster.observe` with
  ``weather_ghi``): the ratio of measured energy to what the weather's GHI predicted for those days.

For the first hours, the last hour's own clearness (measured over expected) is blended in and fades out
(``nowcast_decay_ms``), with or without a weather forecast.

Measured on PVDAQ system 50 (Golden, CO; 15 min, forecasts of the next 24 h every 3 h over a month,
``tests/test_forecast_solar.py``): MAE 268 W (May 2012) and 251 W (November) without weather, against 287 W
and 306 W for yesterday's persistence; with NSRDB's satellite GHI standing for a weather forecast, 159 W and
182 W.

The forecast is capped at the highest power measured in the calibration window times ``cap_factor`` (an
inverter never delivers more than its limit), and is 0 at night. :class:`SolarForecaster` keeps the
calibration between calls (it changes once a day); :func:`forecast_solar` is the one-call form.
"""

from __future__ import annotations

import numpy as np

from homegrid.timezones import DAY_MS, HOUR_MS, MINUTE_MS

__all__ = [
    "SolarForecaster",
    "clear_sky_ghi",
    "cloud_cover_to_ghi",
    "forecast_solar",
    "solar_zenith",
]

_MS_PER_DEGREE = 240_000  # the sun moves 1 degree of hour angle in 4 minutes
_EPOCH_DAY_1970 = np.datetime64("1970-01-01", "D")


def _day_of_year(t_ms: np.ndarray) -> np.ndarray:
    """The UTC day of the year, 1..366, with the fraction of the day (as pvlib's Spencer formulas take it)."""
    t = np.asarray(t_ms, dtype=np.int64)
    day = t // DAY_MS
    years = (_EPOCH_DAY_1970 + day.astype("timedelta64[D]")).astype("datetime64[Y]")
    first = (years.astype("datetime64[D]") - _EPOCH_DAY_1970).astype(np.int64)
    doy: np.ndarray = (day - first + 1).astype(np.float64) + (t - day * DAY_MS) / DAY_MS
    return doy


# pvlib's formulas, written out over numpy arrays: importing pvlib brings pandas and scipy, about 130 MB of the
# live hub's memory for a few lines of arithmetic (tests/test_forecast_solar.py checks them against pvlib's own).


def _day_angle(doy: np.ndarray) -> np.ndarray:
    """pvlib's ``_calculate_simple_day_angle``: ``2 pi / 365 (doy - 1)``. [rad]"""
    out: np.ndarray = (2.0 * np.pi / 365.0) * (doy - 1.0)
    return out


def _declination_spencer71(b: np.ndarray) -> np.ndarray:
    """The sun's declination (Spencer 1971, pvlib's ``declination_spencer71``) at day angle ``b``. [rad]"""
    out: np.ndarray = (0.006918 - 0.399912 * np.cos(b) + 0.070257 * np.sin(b) - 0.006758 * np.cos(2.0 * b)
                       + 0.000907 * np.sin(2.0 * b) - 0.002697 * np.cos(3.0 * b) + 0.00148 * np.sin(3.0 * b))
    return out


def _equation_of_time_spencer71(b: np.ndarray) -> np.ndarray:
    """The equation of time (Spencer 1971, pvlib's ``equation_of_time_spencer71``) at day angle ``b``. [min]"""
    out: np.ndarray = (1440.0 / 2.0 / np.pi) * (0.0000075 + 0.001868 * np.cos(b) - 0.032077 * np.sin(b)
                                                - 0.014615 * np.cos(2.0 * b) - 0.040849 * np.sin(2.0 * b))
    return out


def _extra_radiation_spencer(b: np.ndarray, solar_constant: float = 1366.1) -> np.ndarray:
    """The irradiance at the top of the atmosphere (pvlib's ``get_extra_radiation``, Spencer). [W/m²]"""
    out: np.ndarray = solar_constant * (1.00011 + 0.034221 * np.cos(b) + 0.00128 * np.sin(b)
                                        + 0.000719 * np.cos(2.0 * b) + 7.7e-05 * np.sin(2.0 * b))
    return out


def _ineichen_ghi(zenith_deg: np.ndarray, linke_turbidity: float | np.ndarray, altitude_m: float,
                  dni_extra: np.ndarray) -> np.ndarray:
    """Clear-sky GHI of the Ineichen-Perez model with Kasten-Young's air mass at the site's pressure (pvlib's
    ``ineichen`` over ``get_absolute_airmass(get_relative_airmass(z), alt2pres(altitude))``), sun above the
    horizon (``zenith_deg`` < 90). [W/m²]"""
    z = np.asarray(zenith_deg, dtype=np.float64)
    cos_z = np.cos(np.radians(z))
    am_rel = 1.0 / (cos_z + 0.50572 * (6.07995 + (90.0 - z)) ** -1.6364)
    pressure = 100.0 * ((44331.514 - altitude_m) / 11880.516) ** (1.0 / 0.1902632)  # [Pa]
    am = am_rel * pressure / 101325.0
    tl = np.asarray(linke_turbidity, dtype=np.float64)
    fh1, fh2 = np.exp(-altitude_m / 8000.0), np.exp(-altitude_m / 1250.0)
    cg1, cg2 = 5.09e-05 * altitude_m + 0.868, 3.92e-05 * altitude_m + 0.0387
    ghi: np.ndarray = cg1 * dni_extra * np.maximum(cos_z, 0.0) * np.exp(-cg2 * am * (fh1 + fh2 * (tl - 1.0)))
    out: np.ndarray = np.nan_to_num(ghi, nan=0.0)
    return out


def solar_zenith(t_ms: np.ndarray, latitude: float, longitude: float) -> np.ndarray:
    """The sun's zenith angle at each instant [degrees] (pvlib's analytical formulas, within about 0.5°).

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants, UTC epoch ms. [ms]
    latitude, longitude : float
        The site. [degrees]

    Returns
    -------
    numpy.ndarray
        The zenith angle, 0 overhead, above 90 below the horizon. [degrees]
    """
    t = np.asarray(t_ms, dtype=np.int64)
    day_angle = _day_angle(_day_of_year(t))
    decl = _declination_spencer71(day_angle)
    eot_min = _equation_of_time_spencer71(day_angle)
    utc_hours = (t % DAY_MS) / HOUR_MS
    hour_angle = np.radians((utc_hours - 12.0) * 15.0 + longitude + eot_min / 4.0)
    lat = np.radians(latitude)
    cos_zen = np.cos(decl) * np.cos(lat) * np.cos(hour_angle) + np.sin(decl) * np.sin(lat)
    zen = np.arccos(np.clip(cos_zen, -1.0, 1.0))
    out: np.ndarray = np.degrees(np.asarray(zen, dtype=np.float64))
    return out


def clear_sky_ghi(t_ms: np.ndarray, latitude: float, longitude: float, altitude_m: float = 0.0,
                  linke_turbidity: float | np.ndarray = 3.0) -> np.ndarray:
    """The global horizontal irradiance under a clear sky at each instant [W/m²] (Ineichen-Perez, pvlib).

    Parameters
    ----------
    t_ms : numpy.ndarray
        Instants, UTC epoch ms. [ms]
    latitude, longitude : float
        The site. [degrees]
    altitude_m : float
        The site's height above sea level. [m]
    linke_turbidity : float or numpy.ndarray
        The Linke turbidity (about 2 very clean air .. 7 hazy); one value, or twelve (January to December).

    Returns
    -------
    numpy.ndarray
        Clear-sky GHI, 0 when the sun is down, never above the irradiance on a horizontal plane at the top of
        the atmosphere. [W/m²]
    """
    t = np.asarray(t_ms, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0)
    zen = solar_zenith(t, latitude, longitude)
    lt = np.asarray(linke_turbidity, dtype=np.float64)
    if lt.ndim == 1:
        if lt.size != 12:
            raise ValueError(f"linke_turbidity: one value or twelve (one a month), got {lt.size}")
        months = (_EPOCH_DAY_1970 + (t // DAY_MS).astype("timedelta64[D]")).astype("datetime64[M]")
        lt = lt[months.astype(np.int64) % 12]
    up = zen < 90.0
    out = np.zeros(t.size)
    if up.any():
        dni_extra = _extra_radiation_spencer(_day_angle(_day_of_year(t[up])))
        ghi = _ineichen_ghi(zen[up], lt[up] if lt.ndim else float(lt), altitude_m, dni_extra)
        # never more than reaches the top of the atmosphere (Ineichen-Perez overshoots it by a few 0.01 % on
        # high sites with the sun near the zenith)
        out[up] = np.minimum(ghi, dni_extra * np.cos(np.radians(zen[up])))
    result: np.ndarray = np.maximum(out, 0.0)
    return result


def cloud_cover_to_ghi(cloud_cover_pct: np.ndarray, ghi_clear: np.ndarray, offset_pct: float = 35.0) -> np.ndarray:
    """GHI under a cloud cover [W/m²]: ``(offset + (1 - offset) * (1 - cover)) * clear-sky GHI`` (Larson et al.
    2016's linear model, pvlib's ``cloud_cover_to_ghi_linear``, as emhass uses it).

    Parameters
    ----------
    cloud_cover_pct : numpy.ndarray
        Total cloud cover. [%]
    ghi_clear : numpy.ndarray
        Clear-sky GHI at the same instants. [W/m²]
    offset_pct : float
        The share of clear-sky GHI left under a full cover. [%]
    """
    cc = np.clip(np.asarray(cloud_cover_pct, dtype=np.float64), 0.0, 100.0) / 100.0
    off = offset_pct / 100.0
    out: np.ndarray = (off + (1.0 - off) * (1.0 - cc)) * np.asarray(ghi_clear, dtype=np.float64)
    return out


def _step_mean(fn_t: np.ndarray, step_ms: int, sub_ms: int) -> tuple[np.ndarray, int]:
    """Instants inside each step ``[t, t + step)`` (``k`` of them, evenly spread at their midpoints)."""
    k = max(1, -(-int(step_ms) // sub_ms))
    offsets = (np.arange(k, dtype=np.int64) * 2 + 1) * int(step_ms) // (2 * k)
    return (fn_t[:, None] + offsets[None, :]).ravel(), k


class SolarForecaster:
    """The site's solar forecast, its calibration kept between calls.

    Parameters
    ----------
    latitude, longitude : float
        The site (``[site]`` of the config). [degrees]
    altitude_m : float
        The site's height. [m]
    slot_ms : int
        The resolution of the array's response over the day [ms] (a divisor of a day).
    calibration_days : int
        Days of history the array's clear-sky response is taken from.
    recent_days : int
        Days of history the recent clearness is taken from (no weather forecast).
    envelope_quantile : float
        The quantile of the daily power-to-clear-sky ratios per slot taken as the clear-day response (0..1).
    cap_factor : float
        The forecast never exceeds the highest power measured in the calibration window times this.
    linke_turbidity : float or numpy.ndarray
        As :func:`clear_sky_ghi` takes it.
    nowcast_decay_ms : float
        How fast the last hour's clearness (measured power over the array's clear-sky power then) fades into the
        day's [ms]: its weight is ``exp(-lead / this)``; 0 leaves it out. Clouds of the last hour tend to stay
        for the next: on PVDAQ Golden (May and November 2012) the first hour's MAE falls from 288 and 251 W
        without it to 118 and 96 W with 3 h (2 h: 128 and 99 W; 4 h: 114 and 96 W but a worse 6-24 h).
    """

    def __init__(self, latitude: float, longitude: float, *, altitude_m: float = 0.0, slot_ms: int = 30 * MINUTE_MS,
                 calibration_days: int = 30, recent_days: int = 3, envelope_quantile: float = 0.9,
                 cap_factor: float = 1.05, linke_turbidity: float | np.ndarray = 3.0,
                 nowcast_decay_ms: float = 3 * HOUR_MS) -> None:
        if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
            raise ValueError(f"latitude {latitude}, longitude {longitude}: not a place on Earth")
        if slot_ms <= 0 or DAY_MS % slot_ms:
            raise ValueError(f"slot_ms = {slot_ms}: must divide a day")
        if calibration_days < 1 or recent_days < 1:
            raise ValueError("calibration_days and recent_days must be at least 1")
        if not 0.0 < envelope_quantile <= 1.0:
            raise ValueError(f"envelope_quantile = {envelope_quantile}: must be within (0, 1]")
        if nowcast_decay_ms < 0:
            raise ValueError(f"nowcast_decay_ms = {nowcast_decay_ms}: must be >= 0")
        self.latitude = float(latitude)
        self.longitude = float(longitude)
        self.altitude_m = float(altitude_m)
        self.slot_ms = int(slot_ms)
        self.n_slots = DAY_MS // self.slot_ms
        self.calibration_days = int(calibration_days)
        self.recent_days = int(recent_days)
        self.envelope_quantile = float(envelope_quantile)
        self.cap_factor = float(cap_factor)
        self.linke_turbidity = linke_turbidity
        self.nowcast_decay_ms = float(nowcast_decay_ms)
        self._recent_t = np.zeros(0, dtype=np.int64)  # the raw readings of the last hours, for the nowcast
        self._recent_p = np.zeros(0)
        self._first_day: int | None = None
        self._p_sum = np.zeros((0, self.n_slots))  # measured power per UTC day and slot [W] (sums)
        self._p_n = np.zeros((0, self.n_slots))
        self._p_max = np.zeros(0)  # the highest reading of each day [W]
        self._w_sum = np.zeros((0, self.n_slots))  # the weather's GHI at the readings (sums) [W/m²]
        self._w_n = np.zeros((0, self.n_slots))
        self._pw_sum = np.zeros((0, self.n_slots))  # measured power at the readings that have the weather's GHI
        self._cs_slot = np.zeros((0, self.n_slots))  # clear-sky GHI per day and slot [W/m²]
        self._cs_days: dict[int, np.ndarray] = {}  # clear-sky GHI per UTC day at each minute (1441 values)
        self._cache_day: int | None = None
        self._cache: tuple[np.ndarray, float, float, float] | None = None
        self._dirty_from: int | None = None

    # ------------------------------------------------------------------ history

    def _grow(self, lo: int, hi: int) -> None:
        if self._first_day is None:
            self._first_day = lo
        if lo < self._first_day:
            pad = self._first_day - lo
            self._p_sum, self._p_n, self._w_sum, self._w_n, self._pw_sum, self._cs_slot = (
                np.vstack([np.zeros((pad, self.n_slots)), a])
                for a in (self._p_sum, self._p_n, self._w_sum, self._w_n, self._pw_sum, self._cs_slot))
            self._cs_slot[:pad] = np.nan
            self._p_max = np.concatenate([np.zeros(pad), self._p_max])
            self._first_day = lo
        need = hi - self._first_day + 1
        have = self._p_sum.shape[0]
        if need > have:
            size = max(need, 2 * have, 8)
            grow = size - have
            self._p_sum, self._p_n, self._w_sum, self._w_n, self._pw_sum = (
                np.vstack([a, np.zeros((grow, self.n_slots))])
                for a in (self._p_sum, self._p_n, self._w_sum, self._w_n, self._pw_sum))
            self._cs_slot = np.vstack([self._cs_slot, np.full((grow, self.n_slots), np.nan)])
            self._p_max = np.concatenate([self._p_max, np.zeros(grow)])

    def _clear_sky(self, t_ms: np.ndarray) -> np.ndarray:
        """Clear-sky GHI at instants [W/m²], from per-day tables at each minute (interpolated between minutes):
        successive re-plans ask for nearly the same instants, and a table of a day costs one call."""
        t = np.asarray(t_ms, dtype=np.int64)
        day = t // DAY_MS
        lo, hi = int(day.min()), int(day.max())
        if hi - lo > 7:  # a long span: compute directly
            return clear_sky_ghi(t, self.latitude, self.longitude, self.altitude_m, self.linke_turbidity)
        if len(self._cs_days) > 16:  # keep the days around these instants only
            self._cs_days = {d: v for d, v in self._cs_days.items() if lo - 1 <= d <= hi + 1}
        for d in range(lo, hi + 1):
            if d not in self._cs_days:
                grid = d * DAY_MS + np.arange(1441, dtype=np.int64) * MINUTE_MS
                self._cs_days[d] = clear_sky_ghi(grid, self.latitude, self.longitude, self.altitude_m,
                                                 self.linke_turbidity)
        table = np.stack([self._cs_days[d] for d in range(lo, hi + 1)])
        pos = (t - lo * DAY_MS) / MINUTE_MS - (day - lo) * 1440
        i = np.minimum(pos.astype(np.int64), 1439)
        frac = pos - i
        rows = day - lo
        out: np.ndarray = table[rows, i] * (1.0 - frac) + table[rows, i + 1] * frac
        return out

    def _clear_sky_rows(self, rows: np.ndarray) -> np.ndarray:
        """Clear-sky GHI per slot (mean over the slot) of the given rows, computed once and kept. [W/m²]"""
        assert self._first_day is not None
        todo = rows[np.isnan(self._cs_slot[rows, 0])]
        if todo.size:
            days = (todo + self._first_day).astype(np.int64)
            sub = 3
            starts = days[:, None] * DAY_MS + np.arange(self.n_slots, dtype=np.int64)[None, :] * self.slot_ms
            inst, k = _step_mean(starts.ravel(), self.slot_ms, self.slot_ms // sub)
            ghi = clear_sky_ghi(inst, self.latitude, self.longitude, self.altitude_m, self.linke_turbidity)
            self._cs_slot[todo] = ghi.reshape(todo.size, self.n_slots, k).mean(axis=2)
        out: np.ndarray = self._cs_slot[rows]
        return out

    def observe(self, t_ms: np.ndarray, pv_w: np.ndarray, weather_ghi: np.ndarray | None = None) -> None:
        """Add readings of the solar power (and, when a weather source gave it, its GHI then).

        Parameters
        ----------
        t_ms : numpy.ndarray
            Instants, UTC epoch ms (each the start of the interval its value averages). [ms]
        pv_w : numpy.ndarray
            Measured solar power; NaN where unknown (skipped; night readings may be NaN or 0). [W]
        weather_ghi : numpy.ndarray or None
            The weather source's GHI at the same instants (a past forecast or an analysis), for the bias
            correction of weather-driven forecasts; NaN where unknown (that reading then counts for the array's
            response only). [W/m²]
        """
        t = np.asarray(t_ms, dtype=np.int64)
        p = np.asarray(pv_w, dtype=np.float64)
        if t.shape != p.shape:
            raise ValueError(f"t_ms has {t.size} instants, pv_w {p.size} values")
        g = None if weather_ghi is None else np.asarray(weather_ghi, dtype=np.float64)
        if g is not None and g.shape != t.shape:
            raise ValueError(f"t_ms has {t.size} instants, weather_ghi {g.size} values")
        ok = np.isfinite(p)
        t, p = t[ok], np.maximum(p[ok], 0.0)
        if t.size == 0:
            return
        day = t // DAY_MS
        slot = (t - day * DAY_MS) // self.slot_ms
        self._grow(int(day.min()), int(day.max()))
        assert self._first_day is not None
        row = day - self._first_day
        np.add.at(self._p_sum, (row, slot), p)
        np.add.at(self._p_n, (row, slot), 1.0)
        np.maximum.at(self._p_max, row, p)
        if g is not None:
            has = np.isfinite(g[ok])
            np.add.at(self._w_sum, (row[has], slot[has]), np.maximum(g[ok][has], 0.0))
            np.add.at(self._pw_sum, (row[has], slot[has]), p[has])
            np.add.at(self._w_n, (row[has], slot[has]), 1.0)
        lo = int(day.min())
        self._dirty_from = lo if self._dirty_from is None else min(self._dirty_from, lo)
        keep_from = max(int(t.max()), int(self._recent_t.max()) if self._recent_t.size else 0) - 2 * HOUR_MS
        rt = np.concatenate([self._recent_t, t])
        rp = np.concatenate([self._recent_p, p])
        keep = rt >= keep_from
        self._recent_t, self._recent_p = rt[keep], rp[keep]

    # ------------------------------------------------------------------ calibration

    def _calibration(self, today: int) -> tuple[np.ndarray, float, float, float]:
        """The array's response per slot [W per W/m²], the recent clearness, the weather bias, the cap [W]; from
        the UTC days before ``today``."""
        if (self._cache is not None and self._cache_day == today
                and (self._dirty_from is None or self._dirty_from >= today)):
            return self._cache
        response = np.full(self.n_slots, np.nan)
        clearness, bias, cap = float("nan"), float("nan"), float("nan")
        if self._first_day is not None:
            first = max(self._first_day, today - self.calibration_days)
            stop = min(today, self._first_day + self._p_sum.shape[0])
            if stop > first:
                rows = np.arange(first - self._first_day, stop - self._first_day)
                cs = self._clear_sky_rows(rows)
                n = self._p_n[rows]
                with np.errstate(invalid="ignore", divide="ignore"):
                    p = self._p_sum[rows] / n
                    ratio = np.where((n > 0) & (cs > 50.0), p / cs, np.nan)
                seen = np.isfinite(ratio).sum(axis=0)
                if seen.any():
                    filled = np.where(np.isfinite(ratio), ratio, -np.inf)
                    ordered = np.sort(filled, axis=0)  # the -inf (no reading) first
                    cols = np.arange(self.n_slots)
                    base = ratio.shape[0] - seen
                    pick = base + np.floor(self.envelope_quantile * np.maximum(seen - 1, 0)).astype(np.int64)
                    response = np.where(seen >= 2, ordered[np.minimum(pick, ratio.shape[0] - 1), cols], np.nan)
                    # slots with too few days: the median response of the others, scaled by clear-sky only
                    if np.isfinite(response).any():
                        response = np.where(np.isfinite(response), response,
                                            np.where(cs.mean(axis=0) > 0, np.nanmedian(response), np.nan))
                    cap = float(self._p_max[rows].max()) * self.cap_factor
                    recent = rows[-self.recent_days:]
                    rn = self._p_n[recent]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        rp = np.where(rn > 0, self._p_sum[recent] / rn, np.nan)
                    expect = response[None, :] * self._clear_sky_rows(recent)
                    both = np.isfinite(rp) & np.isfinite(expect) & (expect > 0)
                    if both.any() and expect[both].sum() > 0:
                        clearness = float(rp[both].sum() / expect[both].sum())
                    wn = self._w_n[rows]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        wg = np.where(wn > 0, self._w_sum[rows] / wn, np.nan)
                        wp = np.where(wn > 0, self._pw_sum[rows] / wn, np.nan)
                    wexp = response[None, :] * wg
                    wboth = np.isfinite(wexp) & np.isfinite(wp) & (wexp > 0)
                    if wboth.sum() >= 8 and wexp[wboth].sum() > 0:
                        bias = float(wp[wboth].sum() / wexp[wboth].sum())
        self._cache_day = today
        self._cache = (response, clearness, bias, cap)
        self._dirty_from = None
        return self._cache

    # ------------------------------------------------------------------ forecast

    def _nowcast(self, now_ms: int, response: np.ndarray, cap: float) -> float:
        """The last hour's clearness: its measured energy over the array's clear-sky energy then (NaN when the
        sun was too low to tell, below 5 % of the array's highest power on average)."""
        sel = (self._recent_t >= now_ms - HOUR_MS) & (self._recent_t < now_ms)
        if not sel.any() or not np.isfinite(cap):
            return float("nan")
        t = self._recent_t[sel]
        cs = self._clear_sky(t)
        expect = np.nan_to_num(response[(t % DAY_MS) // self.slot_ms], nan=0.0) * cs
        if expect.mean() < 0.05 * cap:
            return float("nan")
        return float(min(self._recent_p[sel].sum() / expect.sum(), 1.5))

    def forecast(self, now_ms: int, future_t_ms: np.ndarray, step_ms: int, *,
                 weather_t_ms: np.ndarray | None = None, weather_ghi: np.ndarray | None = None,
                 weather_cloud_cover: np.ndarray | None = None) -> np.ndarray:
        """The expected solar power of each future step.

        Parameters
        ----------
        now_ms : int
            When the forecast is made: the calibration uses the UTC days before its day. [ms]
        future_t_ms : numpy.ndarray
            The start of each future step. [ms]
        step_ms : int
            The length of each step. [ms]
        weather_t_ms : numpy.ndarray or None
            The start of each weather forecast interval (e.g. hourly, as Open-Meteo gives it), sorted. [ms]
        weather_ghi : numpy.ndarray or None
            The forecast mean GHI over each weather interval. [W/m²]
        weather_cloud_cover : numpy.ndarray or None
            The forecast total cloud cover of each interval, used where ``weather_ghi`` is not given. [%]

        Returns
        -------
        numpy.ndarray
            The mean solar power expected over each step, 0..cap. [W]
        """
        ft = np.asarray(future_t_ms, dtype=np.int64)
        if ft.size == 0:
            return np.zeros(0)
        if step_ms <= 0:
            raise ValueError(f"step_ms = {step_ms}: must be positive")
        response, clearness, bias, cap = self._calibration(int(now_ms // DAY_MS))
        if not np.isfinite(response).any():
            return np.zeros(ft.size)  # nothing measured yet: no basis for a figure
        inst, k = _step_mean(ft, step_ms, min(self.slot_ms, 15 * MINUTE_MS))
        cs = self._clear_sky(inst)
        slot = (inst % DAY_MS) // self.slot_ms
        resp = np.nan_to_num(response[slot], nan=0.0)
        sky = np.full(inst.size, clearness if np.isfinite(clearness) else 1.0)
        if weather_t_ms is not None and (weather_ghi is not None or weather_cloud_cover is not None):
            wt = np.asarray(weather_t_ms, dtype=np.int64)
            if wt.size:
                span = int(np.median(np.diff(wt))) if wt.size > 1 else HOUR_MS
                i = np.searchsorted(wt, inst, side="right") - 1
                inside = (i >= 0) & (inst < wt[np.clip(i, 0, None)] + span)
                ii = np.clip(i, 0, wt.size - 1)
                if weather_ghi is not None:
                    g = np.asarray(weather_ghi, dtype=np.float64)[ii]
                else:
                    assert weather_cloud_cover is not None
                    cc = np.asarray(weather_cloud_cover, dtype=np.float64)[ii]
                    g = cloud_cover_to_ghi(cc, cs)
                use = inside & np.isfinite(g)
                # the clearness of each weather interval: its GHI over the clear sky's mean across the instants
                # of the interval (so the interval's energy is kept, spread as the clear sky spreads it; a
                # per-instant ratio would blow up at sunrise and sunset)
                n_w = wt.size
                cs_sum = np.bincount(ii[use], weights=cs[use], minlength=n_w)
                cs_n = np.bincount(ii[use], minlength=n_w)
                with np.errstate(invalid="ignore", divide="ignore"):
                    cs_mean = cs_sum / cs_n
                    wsky = np.where(cs_mean[ii] > 1.0, np.clip(g, 0.0, None) / cs_mean[ii], 0.0)
                b = bias if np.isfinite(bias) else 1.0
                sky = np.where(use, np.minimum(wsky, 3.0) * b, sky)
        now_sky = self._nowcast(now_ms, response, cap)
        if np.isfinite(now_sky) and self.nowcast_decay_ms > 0:
            a = np.exp(-np.maximum(inst - now_ms, 0).astype(np.float64) / self.nowcast_decay_ms)
            sky = a * now_sky + (1.0 - a) * sky
        power = resp * cs * sky
        if np.isfinite(cap):
            power = np.minimum(power, cap)
        out: np.ndarray = np.maximum(power, 0.0).reshape(ft.size, k).mean(axis=1)
        return out


def forecast_solar(hist_t_ms: np.ndarray, hist_pv_w: np.ndarray, future_t_ms: np.ndarray, step_ms: int,
                   latitude: float, longitude: float, *, now_ms: int | None = None, altitude_m: float = 0.0,
                   weather_t_ms: np.ndarray | None = None, weather_ghi: np.ndarray | None = None,
                   weather_cloud_cover: np.ndarray | None = None, calibration_days: int = 30,
                   recent_days: int = 3, slot_ms: int = 30 * MINUTE_MS) -> np.ndarray:
    """The solar power of each future step from the site's history (one call; :class:`SolarForecaster` keeps the
    calibration between calls).

    Parameters
    ----------
    hist_t_ms, hist_pv_w : numpy.ndarray
        The history: instants [ms] and measured solar power [W] (NaN unknown).
    future_t_ms : numpy.ndarray
        The start of each future step. [ms]
    step_ms : int
        The length of each future step. [ms]
    latitude, longitude : float
        The site. [degrees]
    now_ms : int or None
        When the forecast is made (readings at or after it are ignored); None: the first future step. [ms]
    altitude_m : float
        The site's height. [m]
    weather_t_ms, weather_ghi, weather_cloud_cover
        A weather forecast, as :meth:`SolarForecaster.forecast` takes it; where it also covers the history,
        its GHI there corrects its bias (weather_ghi only).
    calibration_days, recent_days, slot_ms
        As :class:`SolarForecaster` has them.

    Returns
    -------
    numpy.ndarray
        The mean solar power expected over each step. [W]
    """
    t = np.asarray(hist_t_ms, dtype=np.int64)
    p = np.asarray(hist_pv_w, dtype=np.float64)
    ft = np.asarray(future_t_ms, dtype=np.int64)
    now = int(ft[0]) if now_ms is None and ft.size else int(now_ms or 0)
    keep = (t < now) & (t >= (now // DAY_MS - calibration_days) * DAY_MS)
    model = SolarForecaster(latitude, longitude, altitude_m=altitude_m, slot_ms=slot_ms,
                            calibration_days=calibration_days, recent_days=recent_days)
    past_ghi = None
    if weather_t_ms is not None and weather_ghi is not None:
        wt = np.asarray(weather_t_ms, dtype=np.int64)
        wg = np.asarray(weather_ghi, dtype=np.float64)
        if wt.size:
            i = np.searchsorted(wt, t[keep], side="right") - 1
            span = int(np.median(np.diff(wt))) if wt.size > 1 else HOUR_MS
            ii = np.clip(i, 0, wt.size - 1)
            past_ghi = np.where((i >= 0) & (t[keep] < wt[ii] + span), wg[ii], np.nan)
            if not np.isfinite(past_ghi).any():
                past_ghi = None
    model.observe(t[keep], p[keep], past_ghi)
    return model.forecast(now, ft, step_ms, weather_t_ms=weather_t_ms, weather_ghi=weather_ghi,
                          weather_cloud_cover=weather_cloud_cover)
