"""The hub's HTTP API (documented by its OpenAPI schema at ``/openapi.json``): a table of routes per resource.

- ``GET /api/v1/live``: the newest reading in glossary names, and the hub's health (:mod:`.live`).
- ``GET /api/v1/stream``: the live values as server-sent events, pushed when they change (:mod:`.live`).
- ``GET /api/v1/energy?from=&to=&step=[&fields=]``: energy, flows and average power per local
  ``minute``, ``hour``, ``day`` or ``month`` between two instants or local dates, one array per field; replies
  about sealed periods carry an ETag and are kept (:mod:`.energy`).
- ``GET /api/v1/report?from=&to=``: the same report as ``homegrid report --json`` (:mod:`.energy`).
- ``GET /api/v1/export.csv?from=&to=[&resolution=]``: raw readings of local dates as canonical CSV (or the rollups)
  (:mod:`.export`).
- ``GET /api/v1/bill?from=&to=``: the bill of local dates or instants, per billing month, with what the sun, the
  battery and the car's timing saved; ``GET /api/v1/prices?day=``: the price over a local day and what each hour
  cost; ``GET``/``PUT /api/v1/tariff``: the site's tariff, uploaded by the owner; ``GET /api/v1/money``: the
  Money view's figures in one reply (:mod:`.money`).
- ``GET /api/v1/summary``: today's and lifetime energy, and the battery's health (:mod:`.summary`).
- ``GET /api/v1/outages``, ``/api/v1/backup`` (:mod:`.outages`), ``/api/v1/quarantine`` (:mod:`.site`): see the
  README.
- ``GET /api/v1/site``: the site's time zone, today's local date (the web app's calendar) and its units
  (:mod:`.site`).
- ``GET /`` and ``/static/...``: the web app (``homegrid/web``), gzip-compressed when the browser takes it
  (:mod:`.static`); ``/docs``: Swagger UI, offline (:mod:`.docs`).

The hub adds storm mode (:mod:`.storm`), the battery settings (:mod:`.settings`) and the owner's door with its
session routes (:mod:`.security`) in :mod:`.serve`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import anyio
from fastapi import FastAPI

from homegrid import __version__
from homegrid.api.compression import JSON_GZIP_LEVEL, GZipMiddleware
from homegrid.api.context import ApiContext, add_routes
from homegrid.api.docs import DocsRoutes
from homegrid.api.energy import EnergyRoutes
from homegrid.api.export import EXPORTS_AT_ONCE, ExportRoutes
from homegrid.api.live import LiveRoutes
from homegrid.api.money import MoneyRoutes
from homegrid.api.outages import OutageRoutes, default_outage_dates
from homegrid.api.site import SiteRoutes
from homegrid.api.static import WebAppRoutes
from homegrid.api.summary import SummaryRoutes
from homegrid.hub.planner_saving import PlannerSaving
from homegrid.hub.queries import Queries
from homegrid.hub.tariff_file import SiteTariff

__all__ = ["API_THREADS", "EXPORTS_AT_ONCE", "create_app", "default_outage_dates"]

#: threads answering requests at once (anyio's default is 40): on a home hub's few cores more only adds
#: memory, each busy thread holding a reply being built; the requests beyond wait their turn
API_THREADS = 8


class _BoundedThreads:
    """Holds the number of request threads (anyio's limiter belongs to the running loop, so it is set there)."""

    def __init__(self, app: Any, threads: int) -> None:
        self.app, self.threads = app, threads

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        if limiter.total_tokens != self.threads:
            limiter.total_tokens = self.threads
        await self.app(scope, receive, send)


def create_app(
    queries: Queries,
    health: Callable[[], Any] | None = None,
    live: Callable[[], Any] | None = None,
    outages: Callable[[int, int], dict[str, Any]] | None = None,
    backup: Callable[[], dict[str, Any]] | None = None,
    tariff: SiteTariff | None = None,
    planner_saving: PlannerSaving | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """Build the API over a store's queries (the hub's callbacks as :class:`~homegrid.api.context.ApiContext`
    takes them; each None without a hub)."""
    app = FastAPI(
        title="homegrid",
        version=__version__,
        description="The integrated home energy app: solar, battery, grid, home and car, local-first.",
        docs_url=None,  # /docs is served from the installed package, not a CDN (homegrid.api.docs)
        redoc_url=None,
    )
    # a day of minutes with every field is 280 kB of JSON: a phone on Wi-Fi gets a sixth of it (the event stream,
    # the pre-compressed web app and the energy replies kept gzip-coded pass through untouched)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=JSON_GZIP_LEVEL)
    app.add_middleware(_BoundedThreads, threads=API_THREADS)

    # Replies are strict JSON without a response class of ours: every route declares its return type, so FastAPI
    # serializes through pydantic's core, which writes NaN and infinity as null (a custom default response class
    # would turn that fast path off); /api/v1/energy encodes its columns itself (orjson, NaN as null too)
    api = app.state.api = ApiContext(queries, health=health, live=live, outages=outages, backup=backup,
                                         tariff=tariff, planner_saving=planner_saving, clock=clock)
    web_app = WebAppRoutes()
    app.state.static = web_app.bundle
    for routes in (
        DocsRoutes().routes,  # /docs, /docs/{name}
        web_app.routes,  # /, /static/{name}
        SiteRoutes(api).routes,  # /api/v1/site, /api/v1/quarantine
        LiveRoutes(api).routes,  # /api/v1/live, /api/v1/stream
        ExportRoutes(api).routes,  # /api/v1/export.csv
        SummaryRoutes(api).routes,  # /api/v1/summary
        EnergyRoutes(api).routes,  # /api/v1/energy, /api/v1/report
        OutageRoutes(api).routes,  # /api/v1/outages, /api/v1/backup
        MoneyRoutes(api).routes,  # /api/v1/bill, /api/v1/prices, /api/v1/tariff
    ):
        add_routes(app, routes)
    return app
