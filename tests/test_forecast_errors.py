"""The forecasts' errors per horizon (homegrid/forecast/errors.py), replayed over the emhass home's real load and
PV: honest (no forecast sees its own future), and reported as JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from homegrid.forecast import DEFAULT_HORIZONS_MS, ForecastErrors, HorizonError, forecast_errors, replay
from homegrid.strictjson import dumps
from homegrid.timezones import DAY_MS, HOUR_MS, parse_iso_ms
from tests.forecast_data import EMHASS_LAT, EMHASS_LON, EMHASS_TZ, emhass

SITE = {"timezone": EMHASS_TZ, "latitude": EMHASS_LAT, "longitude": EMHASS_LON}


def span(first: str, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The emhass home from ``first`` for ``days`` (the weeks before it included, for the profiles)."""
    data = emhass()
    start = parse_iso_ms(first)
    sel = (data.t_ms >= start - 35 * DAY_MS) & (data.t_ms < start + days * DAY_MS)
    pv = np.nan_to_num(data.values["pv"], nan=0.0)  # the file leaves PV empty at night
    return data.t_ms[sel], data.values["load"][sel], pv[sel]


def test_a_month_of_errors_at_1_6_and_24_hours() -> None:
    t, load, pv = span("2024-10-01T00:00+02:00", 30)
    e = forecast_errors(t, load, pv, **SITE, start_ms=parse_iso_ms("2024-10-01T00:00+02:00"))
    assert [h.horizon_ms for h in e.load] == [HOUR_MS, 6 * HOUR_MS, 24 * HOUR_MS] == list(DEFAULT_HORIZONS_MS)
    assert [h.horizon_ms for h in e.solar] == list(DEFAULT_HORIZONS_MS)
    assert e.issues == pytest.approx(30 * 4 - 4, abs=1)  # every 6 h until the last whose 24 h is measured
    assert e.step_ms == 30 * 60_000
    for h in (*e.load, *e.solar):
        assert h.count > 0.9 * e.issues
        assert 0 < h.mae_w <= h.rmse_w  # RMSE >= MAE always
    # the home uses about 900 W on average in October: errors of a few hundred W, not thousands
    assert all(100 < h.mae_w < 800 for h in e.load)
    assert all(10 < h.mae_w < 1500 for h in e.solar)
    print({"load": [round(h.mae_w) for h in e.load], "solar": [round(h.mae_w) for h in e.solar]})


def test_the_errors_are_the_replays_forecasts_against_what_was_measured() -> None:
    t, load, pv = span("2024-12-01T00:00+01:00", 10)
    kw = {**SITE, "start_ms": parse_iso_ms("2024-12-01T00:00+01:00"), "issue_every_ms": 3 * HOUR_MS}
    r = replay(t, load, pv, **kw)
    e = forecast_errors(t, load, pv, **kw)
    k = 2  # 24 h
    ok = np.isfinite(r.load_actual[:, k])
    diff = r.load_forecast[ok, k] - r.load_actual[ok, k]
    assert e.load[k].mae_w == pytest.approx(float(np.abs(diff).mean()))
    assert e.load[k].rmse_w == pytest.approx(float(np.sqrt((diff ** 2).mean())))
    # the actual of the 24-h horizon is the reading of the step that ends 24 h after the issue
    i = int(np.flatnonzero(ok)[5])
    j = int(np.searchsorted(t, r.issue_ms[i] + 24 * HOUR_MS - 30 * 60_000))
    assert r.load_actual[i, k] == load[j]


def test_no_forecast_sees_its_own_future() -> None:
    """Rewrite everything from a point in time on: the forecasts issued up to it do not move; later ones do."""
    t, load, pv = span("2024-09-01T00:00+02:00", 12)
    kw = {**SITE, "start_ms": parse_iso_ms("2024-09-01T00:00+02:00"), "issue_every_ms": 2 * HOUR_MS}
    before = replay(t, load, pv, **kw)
    cut = parse_iso_ms("2024-09-06T13:00+02:00")
    load2, pv2 = load.copy(), pv.copy()
    later = t >= cut
    load2[later] = load2[later] * 3 + 500
    pv2[later] = 0.0
    after = replay(t, load2, pv2, **kw)
    made_before = before.issue_ms <= cut
    assert made_before.sum() > 20 and (~made_before).sum() > 20
    np.testing.assert_array_equal(after.load_forecast[made_before], before.load_forecast[made_before])
    np.testing.assert_array_equal(after.solar_forecast[made_before], before.solar_forecast[made_before])
    # the test can fail: forecasts made after the cut do see the rewritten past
    assert not np.allclose(after.load_forecast[~made_before], before.load_forecast[~made_before])
    assert not np.allclose(after.solar_forecast[~made_before], before.solar_forecast[~made_before])
    # and the measurements they are scored against are the rewritten ones
    assert not np.allclose(np.nan_to_num(after.load_actual), np.nan_to_num(before.load_actual))


def test_a_series_not_given_has_no_errors_and_json_holds_no_nan() -> None:
    t, load, _ = span("2024-04-01T00:00+02:00", 5)
    e = forecast_errors(t, load, None, **SITE)
    assert e.solar == () and len(e.load) == 3
    doc = e.to_json()
    assert json.loads(dumps(doc)) == doc
    assert doc["load"][0] == {"horizon_h": 1.0, "mae_w": e.load[0].mae_w, "rmse_w": e.load[0].rmse_w,
                              "count": e.load[0].count}
    assert set(doc) == {"start_ms", "end_ms", "issues", "step_ms", "load", "solar"}
    empty = ForecastErrors((HorizonError(HOUR_MS, float("nan"), float("nan"), 0),), (), 0, 0, 0, 1800000)
    assert json.loads(dumps(empty.to_json()))["load"][0]["mae_w"] is None
    with pytest.raises(AttributeError):
        e.issues = 3  # type: ignore[misc]  # frozen


def test_bad_inputs_are_refused_with_the_reason() -> None:
    t, load, pv = span("2024-04-01T00:00+02:00", 3)
    with pytest.raises(ValueError, match="multiple of the readings' step"):
        replay(t, load, pv, **SITE, horizons_ms=(45 * 60_000,))
    with pytest.raises(ValueError, match="increasing"):
        replay(t[::-1], load, pv, **SITE)
    with pytest.raises(ValueError, match="load_w has"):
        replay(t, load[:-1], pv, **SITE)
