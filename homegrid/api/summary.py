"""What the Now view shows beside the live flow: today's and lifetime energy, and the battery's health.

``GET /api/v1/summary``:

- ``today``: the energy report of today's local date (the same accounting as ``/api/v1/report``);
- ``lifetime``: the same since the first stored day (``since``);
- ``battery``: ``capacity_wh`` (``battery_capacity``: the full pack's energy now), ``rated_wh``
  (``battery_capacity_rated``), ``health_percent`` (their ratio) and ``read`` (when the device reported
  the capacity); None where the device reports no capacity.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from homegrid.api.context import ApiContext, Endpoint
from homegrid.readings import from_ms

__all__ = ["SummaryRoutes", "battery_health"]

KEPT = ("energy_wh", "ev_sources_wh", "self_powered_percent", "covered_hours")


def battery_health(values: dict[str, float], times: dict[str, str]) -> dict[str, Any] | None:
    """The battery's full-pack energy against its rating, from the newest values and their times."""
    capacity = values.get("battery_capacity")
    if capacity is None:
        return None
    rated = values.get("battery_capacity_rated")
    health = None if not rated else round(100.0 * capacity / rated, 1)
    return {"capacity_wh": capacity, "rated_wh": rated, "health_percent": health,
            "read": times.get("battery_capacity")}


class SummaryRoutes:
    """``GET /api/v1/summary`` over an app's :class:`ApiContext` (:attr:`routes`); the battery's health from the
    hub's ``live()`` (newest values and their times), None without a hub."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/summary", self.summary,
                     summary="Today's and lifetime energy, and the battery's health"),
        )

    def part(self, first: date, last: date) -> dict[str, Any]:
        report = self.api.queries.report(first, last)
        return {"from": report["from"], "to": report["to"], **{k: report[k] for k in KEPT}}

    def summary(self) -> dict[str, Any]:
        queries = self.api.queries
        today = datetime.now(queries.tz).date()
        days = queries.store.rollup_range("day")
        first = today if days is None else min(today, from_ms(days[0]).astimezone(queries.tz).date())
        battery = None
        if self.api.live is not None:
            _, values, times, *_ = self.api.live()
            battery = battery_health(values, times)
        return {"timezone": queries.tz.key, "today": self.part(today, today),
                "lifetime": {"since": first.isoformat(), **self.part(first, today)}, "battery": battery}
