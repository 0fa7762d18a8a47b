"""The site and its data: ``GET /api/v1/site`` (the site's time zone, today's local date, the web app's calendar,
and its units) and ``GET /api/v1/quarantine`` (values refused at the door)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request

from homegrid.api.context import ApiContext, Endpoint
from homegrid.readings import from_ms

__all__ = ["SiteRoutes"]


class SiteRoutes:
    """The site routes over an app's :class:`ApiContext` (:attr:`routes`)."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/site", self.site,
                     summary="The site's time zone, today's local date and its units"),
            Endpoint("GET", "/api/v1/quarantine", self.quarantine, summary="Values refused at the door"),
        )

    def site(self, request: Request) -> dict[str, Any]:
        from homegrid.units import units_for_zone

        queries = self.api.queries
        # app.state.units: the hub's [site] units (homegrid.api.serve); else by the zone's country
        units = getattr(request.app.state, "units", None) or units_for_zone(queries.tz.key)
        return {"timezone": queries.tz.key, "today": datetime.now(queries.tz).date().isoformat(), "units": units}

    def quarantine(
        self,
        limit: Annotated[int, Query(ge=0, le=10_000, description="newest items to list")] = 100,
    ) -> dict[str, Any]:
        count, items = self.api.queries.store.quarantined(limit)
        return {
            "count": count,
            "items": [
                {"time": from_ms(q.time_ms).isoformat(), "source": q.source, "field": q.field,
                 "value": q.value, "reason": q.reason}
                for q in items
            ],
        }
