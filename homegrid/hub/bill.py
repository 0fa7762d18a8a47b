"""The bill of a stored span, and what the sun, the battery and the car's timing saved (``homegrid bill`` and
``GET /api/v1/bill``).

The stored rollups are priced three times (:mod:`homegrid.tariffs.meters`): as metered (``actual``), with the
measured solar and load and no battery (``solar_only``), and with the load all from the grid (``grid_only``).
The hour rollups are read, or the minute rollups when the tariff's demand window is shorter than an hour. Hours
with no stored data are listed as ``missing_hours`` and not priced.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from homegrid.readings import to_ms
from homegrid.store import Store
from homegrid.tariffs.bill import Bill, price_bill
from homegrid.tariffs.meters import COUNTERFACTUALS, HomeIntervals, counterfactual_meters, import_price
from homegrid.tariffs.model import Tariff
from homegrid.timezones import HOUR_MS, MINUTE_MS

__all__ = ["bill_step", "home_intervals", "site_bill"]


_FLOWS = ("grid_to_battery", "battery_to_home", "battery_to_grid", "solar_to_battery")
_COLUMNS = ("home", "solar", "grid_import", "grid_export", "battery_charge", "battery_discharge", *_FLOWS, "ev",
            "ev_from_solar", "ev_from_battery", "ev_from_grid")


def bill_step(tariff: Tariff) -> str:
    """The rollup a tariff is priced from: minutes when its demand window is under an hour, else hours."""
    if tariff.demand is not None and tariff.demand.any and tariff.demand.window_min < 60:
        return "minute"
    return "hour"


def home_intervals(store: Store, step: str, start_ms: int, end_ms: int) -> tuple[HomeIntervals, dict[str, Any]]:
    """The stored rollups of a span as measured energy per interval, and the car's energy by source [Wh]."""
    table = store.read_rollup(step, start_ms, end_ms, _COLUMNS)
    cols = table.columns
    intervals = HomeIntervals(
        np.asarray(table.start_ms, dtype=np.int64), MINUTE_MS if step == "minute" else HOUR_MS,
        cols["home"], cols["solar"], cols["grid_import"], cols["grid_export"], cols["battery_charge"],
        cols["battery_discharge"], *(cols[f] for f in _FLOWS),
    )
    car = {"t_ms": intervals.t_ms, "ev": np.nan_to_num(cols["ev"]),
           **{s: np.nan_to_num(cols[f"ev_from_{s}"]) for s in ("solar", "battery", "grid")}}
    return intervals, car


def _months_brief(bill: Bill) -> list[dict[str, Any]]:
    return [{"month": m.month, "total": round(m.total + 0.0, 4)} for m in bill.months]


def _projection(out: dict[str, Any], bill: Bill, end_ms: int, tariff: Tariff) -> None:
    """The month cut by the span's end (this month so far): its bill scaled to the whole month
    (``projected_total``). Energy and export credits scale with the time elapsed; the fixed charge is the whole
    month's; demand is the peak so far."""
    last = bill.months[-1] if bill.months else None
    if last is None or last.end_ms != end_ms or last.fraction >= 1:
        return
    elapsed = last.fraction
    fixed = tariff.fixed_monthly + tariff.fixed_daily * last.days / elapsed
    floor = fixed + (last.energy - (last.export_credit - last.true_up_credit)) / elapsed + last.demand
    subtotal = floor - last.true_up_credit + max(tariff.minimum_monthly - max(floor, 0.0), 0.0)
    out["months"][-1]["projected_total"] = round(subtotal + max(subtotal, 0.0) * tariff.tax_percent / 100, 4)
    out["months"][-1]["elapsed_fraction"] = round(elapsed, 4)


def site_bill(
    store: Store, tariff: Tariff, tz: ZoneInfo, start_ms: int, end_ms: int, *, now_ms: int | None = None,
    counterfactuals: bool = True,
) -> dict[str, Any]:
    """The bill of ``[start_ms, end_ms)`` as the utility would compute it, with the counterfactual homes and the
    savings (see the module's docstring). A span reaching past now is billed up to now, and the month still going
    gets a ``projected_total``.

    Returns
    -------
    dict
        :meth:`homegrid.tariffs.bill.Bill.as_json` of the actual home, with ``step`` (the rollup priced),
        ``counterfactuals`` (each home's ``total`` and ``months``) and ``savings`` [currency]: ``solar``
        (grid_only - solar_only), ``battery`` (solar_only - actual), ``total``, and ``car``: its energy by source
        [Wh], what its grid energy cost at each hour's import price, what all its energy would have cost at the
        bill's average import price, and the difference.
    """
    now_ms = to_ms(datetime.now(UTC)) if now_ms is None else now_ms
    still_going = end_ms > now_ms
    end_ms = max(min(end_ms, now_ms), start_ms + 1)
    step = bill_step(tariff)
    home, car = home_intervals(store, step, start_ms, end_ms)
    meters = counterfactual_meters(home, tariff.export.rule)
    names = COUNTERFACTUALS if counterfactuals else ("actual",)
    bills = {name: price_bill(tariff, meters[name], tz.key, start_ms, end_ms) for name in names}
    actual = bills["actual"]
    out = actual.as_json()
    out["step"] = step
    if still_going:
        _projection(out, actual, end_ms, tariff)
    if not counterfactuals:
        return out
    out["counterfactuals"] = {name: {"total": round(b.total, 4), "months": _months_brief(b)}
                              for name, b in bills.items()}
    out["savings"] = {
        "solar": round(bills["grid_only"].total - bills["solar_only"].total, 4),
        "battery": round(bills["solar_only"].total - actual.total, 4),
        "total": round(bills["grid_only"].total - actual.total, 4),
        "months": [
            {"month": g.month, "solar": round(g.total - s.total, 4), "battery": round(s.total - a.total, 4)}
            for g, s, a in zip(bills["grid_only"].months, bills["solar_only"].months, actual.months, strict=True)
        ],
        "car": _car_savings(car, meters["actual"].import_wh, tariff, tz.key),
    }
    return out


def _car_savings(car: dict[str, Any], imported_wh: np.ndarray, tariff: Tariff, timezone: str) -> dict[str, Any]:
    """What the car's charge cost: its grid part at each interval's import price, against all of it at the span's
    average import price (each interval's import price weighted by the home's import in it: what a kWh from the
    grid cost on average, before net metering's netting and the fixed charges)."""
    prices = import_price(tariff, car["t_ms"], timezone) if len(car["t_ms"]) else np.empty(0)
    weights = np.where(np.isfinite(prices), imported_wh, 0.0)
    average = float(np.nansum(weights * prices) / weights.sum()) if weights.sum() > 0 else None
    grid_cost = float(np.nansum(car["grid"] / 1000.0 * prices))
    ev_kwh = float(car["ev"].sum()) / 1000.0
    at_average = None if average is None else ev_kwh * average
    return {
        "energy_wh": round(float(car["ev"].sum())),
        "from_solar_wh": round(float(car["solar"].sum())),
        "from_battery_wh": round(float(car["battery"].sum())),
        "from_grid_wh": round(float(car["grid"].sum())),
        "average_import_price": None if average is None else round(average, 6),
        "cost": round(grid_cost, 4),
        "cost_at_average_price": None if at_average is None else round(at_average, 4),
        "saved": None if at_average is None else round(at_average - grid_cost, 4),
    }
