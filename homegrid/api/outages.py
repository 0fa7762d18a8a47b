"""The grid and the battery's backup: ``GET /api/v1/outages?from=&to=`` (grid interruptions the battery carried the
home through, and disturbances apart) and ``GET /api/v1/backup`` (how long the battery would carry the home now)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated, Any

from fastapi import HTTPException, Query

from homegrid.api.context import INLINE_DAYS, ApiContext, Endpoint, answer
from homegrid.hub.queries import day_span

__all__ = ["OutageRoutes", "default_outage_dates"]


def default_outage_dates(first: date | None, last: date | None, tz: tzinfo | None) -> tuple[date, date]:
    """The outage report's default span: the year up to today (local)."""
    last = last or datetime.now(tz).date()
    return first or last - timedelta(days=365), last


class OutageRoutes:
    """The outage and backup routes over an app's :class:`ApiContext` (:attr:`routes`); 404 where the hub does
    not run that part."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/outages", self.outages_report,
                     summary="Grid interruptions the battery carried the home through, and grid disturbances "
                             "(logged while the home stayed on the grid) apart"),
            Endpoint("GET", "/api/v1/backup", self.backup_now, summary="How long the battery would carry the home now"),
        )

    async def outages_report(
        self,
        from_: Annotated[date | None, Query(alias="from", description="first local date (default: a year ago)")] = None,
        to: Annotated[date | None, Query(description="last local date, inclusive (default: today)")] = None,
    ) -> dict[str, Any]:
        if self.api.outages is None:
            raise HTTPException(status_code=404, detail="outage tracking is not running")
        queries = self.api.queries
        first, last = default_outage_dates(from_, to, queries.tz)
        if last < first:
            raise HTTPException(status_code=422, detail="'to' is before 'from'")
        return await answer((last - first).days < INLINE_DAYS, self._outages, self.api.outages, first, last)

    def _outages(self, outages: Callable[[int, int], dict[str, Any]], first: date, last: date) -> dict[str, Any]:
        queries = self.api.queries
        start_ms, end_ms = queries.stored(*day_span(first, last, queries.tz))
        return {"from": first.isoformat(), "to": last.isoformat(), **outages(start_ms, end_ms)}

    def backup_now(self) -> dict[str, Any]:
        if self.api.backup is None:
            raise HTTPException(status_code=404, detail="backup estimate is not running")
        return self.api.backup()
