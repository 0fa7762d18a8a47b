"""How good the forecasts have been: replayed over the site's past, error per horizon (MAE, RMSE at 1, 6, 24 h).

A replay issues a forecast every ``issue_every_ms`` over a span of history, the way the planner would have: the
forecasters are fed the readings before each issue time and nothing after (:func:`replay`), and the forecast
of the step that ends ``h`` after the issue time is compared with what was then measured. No forecast can see
its own future: the forecasters read only what they were given, the readings are given in time order, and
``tests/test_forecast_errors.py`` perturbs the future and checks that earlier forecasts do not move.

The solar error counts every step, nights included (where both forecast and measurement are 0), as the
planner lives with it; its figures are therefore lower than a daytime-only error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from homegrid.forecast.load import LoadForecaster
from homegrid.forecast.solar import SolarForecaster
from homegrid.timezones import DAY_MS, HOUR_MS

__all__ = ["DEFAULT_HORIZONS_MS", "ForecastErrors", "HorizonError", "Replay", "forecast_errors", "replay"]

#: the horizons reported: 1 h, 6 h and 24 h ahead [ms]
DEFAULT_HORIZONS_MS: tuple[int, ...] = (HOUR_MS, 6 * HOUR_MS, 24 * HOUR_MS)


@dataclass(frozen=True)
class HorizonError:
    """A forecast's error at one horizon over a replay.

    Attributes
    ----------
    horizon_ms : int
        How far ahead: the step that ends this long after the forecast was made. [ms]
    mae_w : float
        Mean absolute error; NaN when no step could be compared. [W]
    rmse_w : float
        Root mean square error; NaN when no step could be compared. [W]
    count : int
        The steps compared (a step without a measurement is left out).
    """

    horizon_ms: int
    mae_w: float
    rmse_w: float
    count: int

    def to_json(self) -> dict[str, Any]:
        """The figures as JSON-ready values (hours and watts, NaN as None)."""
        return {"horizon_h": self.horizon_ms / HOUR_MS,
                "mae_w": _finite(self.mae_w), "rmse_w": _finite(self.rmse_w), "count": self.count}


@dataclass(frozen=True)
class ForecastErrors:
    """The errors of the load and solar forecasts per horizon, replayed over a span of history.

    Attributes
    ----------
    load, solar : tuple of HorizonError
        One per horizon; empty when that series was not given.
    start_ms, end_ms : int
        The first and the last issue time of the replay. [ms]
    issues : int
        How many forecasts were issued.
    step_ms : int
        The forecast step. [ms]
    """

    load: tuple[HorizonError, ...]
    solar: tuple[HorizonError, ...]
    start_ms: int
    end_ms: int
    issues: int
    step_ms: int

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (``json.dumps`` takes it; NaN becomes None)."""
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, "issues": self.issues,
                "step_ms": self.step_ms,
                "load": [h.to_json() for h in self.load], "solar": [h.to_json() for h in self.solar]}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True)
class Replay:
    """The forecasts of a replay and what was measured, per issue time and horizon.

    Attributes
    ----------
    issue_ms : numpy.ndarray
        When each forecast was made. [ms]
    horizons_ms : tuple of int
        The horizons. [ms]
    load_forecast, load_actual, solar_forecast, solar_actual : numpy.ndarray
        ``(issues, horizons)`` arrays [W]; NaN where nothing was measured (or the series was not given).
    """

    issue_ms: np.ndarray
    horizons_ms: tuple[int, ...]
    load_forecast: np.ndarray
    load_actual: np.ndarray
    solar_forecast: np.ndarray
    solar_actual: np.ndarray


def _median_step(t: np.ndarray) -> int:
    if t.size < 2:
        raise ValueError("a replay needs at least two readings")
    step = int(np.median(np.diff(t)))
    if step <= 0:
        raise ValueError("t_ms must be increasing")
    return step


def replay(t_ms: np.ndarray, load_w: np.ndarray | None, solar_w: np.ndarray | None, *, timezone: str,
           latitude: float, longitude: float, altitude_m: float = 0.0, start_ms: int | None = None,
           end_ms: int | None = None, issue_every_ms: int = 6 * HOUR_MS,
           horizons_ms: tuple[int, ...] = DEFAULT_HORIZONS_MS, warmup_days: int = 7,
           load_model: LoadForecaster | None = None, solar_model: SolarForecaster | None = None) -> Replay:
    """Replay the forecasts over past readings, each made from the readings before its issue time only.

    Parameters
    ----------
    t_ms : numpy.ndarray
        The readings' instants, UTC epoch ms, increasing, on a regular step (gaps as NaN values). [ms]
    load_w : numpy.ndarray or None
        The household load, the car left out; NaN unknown. [W]
    solar_w : numpy.ndarray or None
        The measured solar power; NaN unknown. [W]
    timezone : str
        The site's IANA zone.
    latitude, longitude : float
        The site. [degrees]
    altitude_m : float
        The site's height. [m]
    start_ms, end_ms : int or None
        The first and last issue time [ms]; None: ``warmup_days`` after the first reading, and the last time
        whose longest horizon is still measured.
    issue_every_ms : int
        The time between two forecasts. [ms]
    horizons_ms : tuple of int
        The horizons, each a multiple of the readings' step. [ms]
    warmup_days : int
        Days of history before the first forecast (by default).
    load_model, solar_model : LoadForecaster or SolarForecaster or None
        The forecasters (fresh ones); None: the defaults, at the readings' step.

    Returns
    -------
    Replay
        The forecasts and the measurements per issue and horizon.
    """
    t = np.asarray(t_ms, dtype=np.int64)
    step = _median_step(t)
    if np.any(np.diff(t) <= 0):
        raise ValueError("t_ms must be increasing")
    hz = tuple(int(h) for h in horizons_ms)
    if any(h <= 0 or h % step for h in hz):
        raise ValueError(f"horizons_ms {hz}: each must be a positive multiple of the readings' step ({step} ms)")
    if issue_every_ms <= 0:
        raise ValueError(f"issue_every_ms = {issue_every_ms}: must be positive")
    first = int(t[0]) + warmup_days * DAY_MS if start_ms is None else int(start_ms)
    last = int(t[-1]) + step - max(hz) if end_ms is None else int(end_ms)
    first = first - (first - int(t[0])) % step  # on the readings' grid
    issues = np.arange(first, last + 1, int(issue_every_ms), dtype=np.int64)
    lw = None if load_w is None else np.asarray(load_w, dtype=np.float64)
    sw = None if solar_w is None else np.asarray(solar_w, dtype=np.float64)
    for name, arr in (("load_w", lw), ("solar_w", sw)):
        if arr is not None and arr.shape != t.shape:
            raise ValueError(f"{name} has {arr.size} values for {t.size} instants")
    lm = load_model if load_model is not None else LoadForecaster(timezone, slot_ms=_divisor_slot(step))
    sm = solar_model if solar_model is not None else SolarForecaster(latitude, longitude, altitude_m=altitude_m,
                                                                     slot_ms=_divisor_slot(step))
    shape = (issues.size, len(hz))
    lf, la, sf, sa = (np.full(shape, np.nan) for _ in range(4))
    targets = np.array(hz, dtype=np.int64) - step  # the start of the step that ends h after the issue
    fed = 0
    for n, now in enumerate(issues.tolist()):
        upto = int(np.searchsorted(t, now, side="left"))  # readings strictly before now
        if upto > fed:
            if lw is not None:
                lm.observe(t[fed:upto], lw[fed:upto])
            if sw is not None:
                sm.observe(t[fed:upto], sw[fed:upto])
            fed = upto
        ft = now + targets
        j = np.searchsorted(t, ft)
        jj = np.clip(j, 0, t.size - 1)
        found = (j < t.size) & (t[jj] == ft)
        if lw is not None:
            lf[n] = lm.forecast(now, ft, step)
            la[n] = np.where(found, lw[jj], np.nan)
        if sw is not None:
            sf[n] = sm.forecast(now, ft, step)
            sa[n] = np.where(found, sw[jj], np.nan)
    return Replay(issues, hz, lf, la, sf, sa)


def _divisor_slot(step: int) -> int:
    """The profile slot for readings every ``step``: the step within 15 to 60 minutes, rounded up to a divisor
    of a day (finer readings are averaged into it). [ms]"""
    for minutes in (15, 20, 30, 60):
        if step <= minutes * 60_000:
            return minutes * 60_000
    return HOUR_MS


def _horizon_errors(forecast: np.ndarray, actual: np.ndarray, horizons: tuple[int, ...]) -> tuple[HorizonError, ...]:
    out = []
    for k, h in enumerate(horizons):
        ok = np.isfinite(forecast[:, k]) & np.isfinite(actual[:, k])
        e = forecast[ok, k] - actual[ok, k]
        n = int(ok.sum())
        mae = float(np.abs(e).mean()) if n else float("nan")
        rmse = float(np.sqrt((e * e).mean())) if n else float("nan")
        out.append(HorizonError(h, mae, rmse, n))
    return tuple(out)


def forecast_errors(t_ms: np.ndarray, load_w: np.ndarray | None, solar_w: np.ndarray | None, *, timezone: str,
                    latitude: float, longitude: float, altitude_m: float = 0.0, start_ms: int | None = None,
                    end_ms: int | None = None, issue_every_ms: int = 6 * HOUR_MS,
                    horizons_ms: tuple[int, ...] = DEFAULT_HORIZONS_MS, warmup_days: int = 7) -> ForecastErrors:
    """The forecasts' MAE and RMSE per horizon over past readings (see :func:`replay`, which takes the same
    parameters).

    Returns
    -------
    ForecastErrors
        Per horizon, for load and solar (empty for a series not given). [W]
    """
    r = replay(t_ms, load_w, solar_w, timezone=timezone, latitude=latitude, longitude=longitude,
               altitude_m=altitude_m, start_ms=start_ms, end_ms=end_ms, issue_every_ms=issue_every_ms,
               horizons_ms=horizons_ms, warmup_days=warmup_days)
    step = _median_step(np.asarray(t_ms, dtype=np.int64))
    load = _horizon_errors(r.load_forecast, r.load_actual, r.horizons_ms) if load_w is not None else ()
    solar = _horizon_errors(r.solar_forecast, r.solar_actual, r.horizons_ms) if solar_w is not None else ()
    start = int(r.issue_ms[0]) if r.issue_ms.size else 0
    end = int(r.issue_ms[-1]) if r.issue_ms.size else 0
    return ForecastErrors(load, solar, start, end, int(r.issue_ms.size), step)
