"""Household load forecast from the site's own history: local time-of-day profiles, weekday and weekend.

The model (after emhass's two load methods, ``naive`` persistence and ``typical`` profiles, in
``src/emhass/forecast.py``, made robust and incremental):

- the history is binned into local-clock slots of the day (``slot_ms``, e.g. 30 min): a slot is the wall-clock
  time of day in the site's zone, so 07:00 is 07:00 in summer and in winter. A 23-hour day simply has no
  02:00-03:00 slots; a 25-hour day puts both 02:00-03:00 hours into the same slots (their mean);
- the **typical profile** of a day type (weekdays, Monday to Friday; weekend days) is the median of each slot
  over the days of that type in the last ``weeks`` weeks; the **recent profile** is the median over the last
  ``recent_days`` days, whatever their type. Medians, not means: a household's load is spiky (a kettle, an
  oven), and the median is what minimises the absolute error (on the emhass home over a year, day ahead, the
  median profiles' MAE is 413 W against 444 W for means and 466 W for yesterday's persistence). A future
  slot gets ``typical_weight`` of the first and the rest of the second; a slot one of them lacks (a gap)
  takes the other, then the median of all days, then the last value;
- for the first hours, the last hour's departure from the profile (its readings minus the profile then, on
  average) is added with a weight ``exp(-lead / last_hour_decay_ms)``, so the forecast starts where the home is
  now and relaxes to the profile (on the emhass home, 1 h ahead: MAE 411 W with it, 432 W without; blending
  the last hour's plain level instead gave 453 W).

Missing readings (NaN) are skipped, never counted as zero. The car's charging is not in the history the caller
passes (it is planned separately). Only days that ended before the forecast's local day feed the profiles, so
they are rebuilt once a local day; a forecast call costs a few array look-ups (see :class:`LoadForecaster`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np

from homegrid.timezones import DAY_MS, HOUR_MS, MINUTE_MS, day_of_week, utc_offset_ms

__all__ = ["LoadForecaster", "forecast_load", "persistence_forecast"]

_N_TYPES = 2  # 0: Monday to Friday, 1: Saturday and Sunday


def _day_type(days: np.ndarray, holidays: np.ndarray) -> np.ndarray:
    """0 for a weekday, 1 for a weekend day or a holiday, of local dates as days since 1970-01-01."""
    out: np.ndarray = ((day_of_week(days) >= 5) | np.isin(days, holidays)).astype(np.int64)
    return out


def _column_median(rows: np.ndarray) -> np.ndarray:
    """The median of each column over its finite values; NaN for a column with none."""
    if rows.shape[0] == 0:
        return np.full(rows.shape[1], np.nan)
    ordered = np.sort(rows, axis=0)  # NaN sort last
    n = np.isfinite(rows).sum(axis=0)
    cols = np.arange(rows.shape[1])
    lo = ordered[np.maximum((n - 1) // 2, 0), cols]
    hi = ordered[np.maximum(n // 2, 0), cols]
    out: np.ndarray = np.where(n > 0, 0.5 * (lo + hi), np.nan)
    return out


class LoadForecaster:
    """The household load forecast, kept up to date with each new reading.

    Parameters
    ----------
    timezone : str
        The site's IANA zone: profiles follow its local clock.
    slot_ms : int
        The profile's resolution [ms]: a divisor of a day, at least the history's step (e.g. 30 min for
        half-hourly readings; a finer slot than the readings leaves slots empty).
    weeks : int
        How many weeks of history the typical profiles look back.
    recent_days : int
        How many of the last days make the recent profile.
    typical_weight : float
        The typical profile's share of the blend, 0..1 (the recent profile has the rest). The defaults were
        chosen on the emhass household (one year, 30 min): weights 0.4..0.8, 3..7 recent days and 4..8 weeks
        change the day-ahead MAE by under 3 %.
    last_hour_decay_ms : float
        How fast the last hour's departure from the profile fades out of the forecast [ms] (its weight is
        ``exp(-lead / this)``); 0 leaves it out.
    holidays : iterable of datetime.date
        Local dates that count as weekend days (public holidays: e.g. ``holidays.country_holidays("FR")``'s, or
        a tariff's :class:`~homegrid.tariffs.country_holidays.CountryHolidays`). None by default: on the emhass
        home France's 22 holidays of the year as weekend days made those days' MAE worse (398 W against 368 W),
        while the weekday/weekend split itself helps (423 W against 433 W for one profile over the year).

    Notes
    -----
    :meth:`observe` adds readings (in any order, usually the newest); :meth:`forecast` reads only the readings
    before its ``now_ms``, so a backtest that observes a step and then forecasts never sees the future. The
    profiles are cached per local day of ``now_ms`` and rebuilt when that day changes or an older day's
    readings arrive.
    """

    def __init__(self, timezone: str, *, slot_ms: int = 30 * MINUTE_MS, weeks: int = 4, recent_days: int = 3,
                 typical_weight: float = 0.6, last_hour_decay_ms: float = HOUR_MS,
                 holidays: Iterable[date] = ()) -> None:
        if slot_ms <= 0 or DAY_MS % slot_ms:
            raise ValueError(f"slot_ms = {slot_ms}: must divide a day (e.g. 900000 for 15 min)")
        if weeks < 1 or recent_days < 1:
            raise ValueError(f"weeks = {weeks}, recent_days = {recent_days}: each must be at least 1")
        if not 0.0 <= typical_weight <= 1.0:
            raise ValueError(f"typical_weight = {typical_weight}: must be within 0..1")
        if last_hour_decay_ms < 0:
            raise ValueError(f"last_hour_decay_ms = {last_hour_decay_ms}: must be >= 0")
        self.timezone = timezone
        self.slot_ms = int(slot_ms)
        self.weeks = int(weeks)
        self.recent_days = int(recent_days)
        self.typical_weight = float(typical_weight)
        self.last_hour_decay_ms = float(last_hour_decay_ms)
        epoch = date(1970, 1, 1).toordinal()
        self.holidays = np.array(sorted({d.toordinal() - epoch for d in holidays}), dtype=np.int64)
        self.n_slots = DAY_MS // self.slot_ms
        self._first_day: int | None = None  # the local day of row 0
        self._sums = np.zeros((0, self.n_slots))
        self._counts = np.zeros((0, self.n_slots))
        self._recent_t = np.zeros(0, dtype=np.int64)  # the raw readings of the last hours, for the level
        self._recent_w = np.zeros(0)
        self._cache_key: tuple[int, int] | None = None
        self._cache: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
        self._changed_before: int | None = None  # the oldest local day changed since the cache was built

    # ------------------------------------------------------------------ readings

    def observe(self, t_ms: np.ndarray, load_w: np.ndarray) -> None:
        """Add readings of the household load.

        Parameters
        ----------
        t_ms : numpy.ndarray
            Instants, UTC epoch ms (each the start of the interval its value averages). [ms]
        load_w : numpy.ndarray
            The load, the car's charging left out; NaN where unknown (skipped). [W]
        """
        t = np.asarray(t_ms, dtype=np.int64)
        w = np.asarray(load_w, dtype=np.float64)
        if t.shape != w.shape:
            raise ValueError(f"t_ms has {t.size} instants, load_w {w.size} values")
        ok = np.isfinite(w)
        t, w = t[ok], w[ok]
        if t.size == 0:
            return
        local = t + utc_offset_ms(t, self.timezone)
        day = local // DAY_MS
        slot = (local - day * DAY_MS) // self.slot_ms
        lo, hi = int(day.min()), int(day.max())
        if self._first_day is None:
            self._first_day = lo
        if lo < self._first_day:  # grow at the front
            pad = self._first_day - lo
            self._sums = np.vstack([np.zeros((pad, self.n_slots)), self._sums])
            self._counts = np.vstack([np.zeros((pad, self.n_slots)), self._counts])
            self._first_day = lo
        need = hi - self._first_day + 1
        if need > self._sums.shape[0]:  # grow at the end, doubling
            size = max(need, 2 * self._sums.shape[0], 8)
            grow = size - self._sums.shape[0]
            self._sums = np.vstack([self._sums, np.zeros((grow, self.n_slots))])
            self._counts = np.vstack([self._counts, np.zeros((grow, self.n_slots))])
        row = day - self._first_day
        np.add.at(self._sums, (row, slot), w)
        np.add.at(self._counts, (row, slot), 1.0)
        self._changed_before = lo if self._changed_before is None else min(self._changed_before, lo)
        keep_from = int(t.max()) - 2 * HOUR_MS
        rt = np.concatenate([self._recent_t, t])
        rw = np.concatenate([self._recent_w, w])
        keep = rt >= keep_from
        self._recent_t, self._recent_w = rt[keep], rw[keep]

    # ------------------------------------------------------------------ profiles

    def _profiles(self, today: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """The typical profile per day type [W] (2 x slots), the recent profile [W], the all-days mean profile
        [W], the last known value [W], from the days before local day ``today``."""
        key = (today, 0)
        if (self._cache is not None and self._cache_key == key
                and (self._changed_before is None or self._changed_before >= today)):
            return self._cache
        nan = np.full(self.n_slots, np.nan)
        typical = np.full((_N_TYPES, self.n_slots), np.nan)
        recent = nan.copy()
        overall = nan.copy()
        last = float("nan")
        if self._first_day is not None:
            first = max(self._first_day, today - 7 * self.weeks)
            stop = min(today, self._first_day + self._sums.shape[0])
            if stop > first:
                rows = slice(first - self._first_day, stop - self._first_day)
                sums, counts = self._sums[rows], self._counts[rows]
                days = np.arange(first, stop, dtype=np.int64)
                types = _day_type(days, self.holidays)
                with np.errstate(invalid="ignore", divide="ignore"):
                    daily = sums / counts  # each day's mean per slot; NaN where it has no reading
                    for k in range(_N_TYPES):
                        typical[k] = _column_median(daily[types == k])
                    overall = _column_median(daily)
                    recent = _column_median(daily[max(0, len(days) - self.recent_days):])
        if self._recent_w.size:
            last = float(self._recent_w[np.argmax(self._recent_t)])
        elif np.isfinite(overall).any():
            last = float(np.nanmean(overall))
        self._cache_key = key
        self._cache = (typical, recent, overall, last)
        self._changed_before = None
        return self._cache

    # ------------------------------------------------------------------ forecast

    def _profile_at(self, t_ms: np.ndarray, profiles: tuple[np.ndarray, np.ndarray, np.ndarray, float]) -> np.ndarray:
        """The blended profile at each instant [W]: typical and recent, else the all-days median, else the last
        value, else 0."""
        typical, recent, overall, last = profiles
        local = t_ms + utc_offset_ms(t_ms, self.timezone)
        day = local // DAY_MS
        slot = (local - day * DAY_MS) // self.slot_ms
        typ = typical[_day_type(day, self.holidays), slot]
        rec = recent[slot]
        w = self.typical_weight
        value = np.where(np.isfinite(typ) & np.isfinite(rec), w * typ + (1 - w) * rec,
                         np.where(np.isfinite(typ), typ, rec))
        value = np.where(np.isfinite(value), value, overall[slot])
        out: np.ndarray = np.where(np.isfinite(value), value, last if np.isfinite(last) else 0.0)
        return out

    def forecast(self, now_ms: int, future_t_ms: np.ndarray, step_ms: int) -> np.ndarray:
        """The expected household load of each future step.

        Parameters
        ----------
        now_ms : int
            When the forecast is made: only readings before it count (the last hour's for the departure from
            the profile; the profiles use the local days before today's). [ms]
        future_t_ms : numpy.ndarray
            The start of each future step, UTC epoch ms. [ms]
        step_ms : int
            The length of each step: a step longer than a slot averages the slots it covers. [ms]

        Returns
        -------
        numpy.ndarray
            The mean load expected over each step [W], >= 0; 0 where nothing at all is known.
        """
        ft = np.asarray(future_t_ms, dtype=np.int64)
        if ft.size == 0:
            return np.zeros(0)
        if step_ms <= 0:
            raise ValueError(f"step_ms = {step_ms}: must be positive")
        off_now = int(utc_offset_ms(np.array([now_ms], dtype=np.int64), self.timezone)[0])
        today = (now_ms + off_now) // DAY_MS
        typical, recent, overall, last = self._profiles(int(today))
        profiles = (typical, recent, overall, last)
        # sample each step at its slots (a step shorter than a slot takes the slot holding its start)
        k = max(1, -(-int(step_ms) // self.slot_ms))
        sub = ft[:, None] + (np.arange(k, dtype=np.int64) * (int(step_ms) // k))[None, :]
        out = self._profile_at(sub.ravel(), profiles).reshape(sub.shape).mean(axis=1)
        # the last hour's departure from the profile, fading out with the lead time
        if self.last_hour_decay_ms > 0 and self._recent_t.size:
            sel = (self._recent_t >= now_ms - HOUR_MS) & (self._recent_t < now_ms)
            if sel.any():
                seen_t = self._recent_t[sel]
                anomaly = float((self._recent_w[sel] - self._profile_at(seen_t, profiles)).mean())
                lead = np.maximum(ft - now_ms, 0).astype(np.float64)
                out = out + np.exp(-lead / self.last_hour_decay_ms) * anomaly
        result: np.ndarray = np.maximum(out, 0.0)
        return result


def forecast_load(hist_t_ms: np.ndarray, hist_load_w: np.ndarray, future_t_ms: np.ndarray, step_ms: int,
                  timezone: str, *, now_ms: int | None = None, slot_ms: int | None = None, weeks: int = 4,
                  recent_days: int = 3, typical_weight: float = 0.6,
                  last_hour_decay_ms: float = HOUR_MS) -> np.ndarray:
    """The household load of each future step, from the site's own history (one call; see :class:`LoadForecaster`
    to keep the profiles between calls).

    Parameters
    ----------
    hist_t_ms : numpy.ndarray
        The history's instants, UTC epoch ms (each the start of its interval). [ms]
    hist_load_w : numpy.ndarray
        The household load then, the car's charging left out; NaN where unknown. [W]
    future_t_ms : numpy.ndarray
        The start of each future step. [ms]
    step_ms : int
        The length of each future step. [ms]
    timezone : str
        The site's IANA zone.
    now_ms : int or None
        When the forecast is made (readings at or after it are ignored); None: the first future step.
    slot_ms : int or None
        The profiles' resolution [ms]; None: the history's typical step (its median spacing), within 15 to
        60 min, rounded up to a divisor of a day.
    weeks, recent_days, typical_weight, last_hour_decay_ms
        As :class:`LoadForecaster` has them.

    Returns
    -------
    numpy.ndarray
        The mean load expected over each step. [W]
    """
    t = np.asarray(hist_t_ms, dtype=np.int64)
    w = np.asarray(hist_load_w, dtype=np.float64)
    ft = np.asarray(future_t_ms, dtype=np.int64)
    now = int(ft[0]) if now_ms is None and ft.size else int(now_ms or 0)
    if slot_ms is None:
        slot_ms = _slot_for(t)
    keep = (t < now) & (t >= now - (7 * weeks + 2) * DAY_MS)
    model = LoadForecaster(timezone, slot_ms=slot_ms, weeks=weeks, recent_days=recent_days,
                           typical_weight=typical_weight, last_hour_decay_ms=last_hour_decay_ms)
    model.observe(t[keep], w[keep])
    return model.forecast(now, ft, step_ms)


_SLOTS = np.array([15, 20, 30, 60], dtype=np.int64) * MINUTE_MS


def _slot_for(t: np.ndarray) -> int:
    """The profile slot suited to readings at instants ``t``: their median spacing, at least 15 minutes (finer
    readings are averaged into the slot), as a divisor of a day. [ms]"""
    if t.size < 2:
        return 30 * MINUTE_MS
    spacing = float(np.median(np.diff(np.sort(t))))
    i = int(np.searchsorted(_SLOTS, spacing))
    return int(_SLOTS[min(i, len(_SLOTS) - 1)])


def persistence_forecast(hist_t_ms: np.ndarray, hist_w: np.ndarray, future_t_ms: np.ndarray,
                         lag_ms: int = DAY_MS) -> np.ndarray:
    """Plain persistence: each future step takes the reading ``lag_ms`` before it (or, when that is still in the
    future or missing, ``lag_ms`` earlier again, up to a week back), emhass's ``naive`` method. The yardstick of
    the tests.

    Parameters
    ----------
    hist_t_ms, hist_w : numpy.ndarray
        The history's instants [ms] and values [W]; sorted by time.
    future_t_ms : numpy.ndarray
        The instants to forecast. [ms]
    lag_ms : int
        The lag [ms] (a day: "same time yesterday").

    Returns
    -------
    numpy.ndarray
        The value ``lag_ms`` (or a multiple) earlier [W]; NaN where none is known.
    """
    t = np.asarray(hist_t_ms, dtype=np.int64)
    w = np.asarray(hist_w, dtype=np.float64)
    ft = np.asarray(future_t_ms, dtype=np.int64)
    out = np.full(ft.size, np.nan)
    if t.size == 0:
        return out
    last = int(t.max())
    for n in range(1, 8):
        src = ft - n * lag_ms
        i = np.clip(np.searchsorted(t, src), 0, t.size - 1)
        hit = (t[i] == src) & (src <= last) & np.isnan(out)
        out[hit] = w[i[hit]]
    return out
