"""What the API's resources share: the store's queries and the hub's callbacks (:class:`ApiContext`), and the way a
resource's table of routes (:class:`Endpoint` rows) is added to an app or a router (:func:`add_routes`).

:func:`homegrid.api.app.create_app` makes one :class:`ApiContext`, hands it to each resource and adds their routes;
it is also ``app.state.api``. Nothing in it belongs to one request. The routes are added to the app itself (FastAPI's
``include_router`` keeps an included router behind one entry of ``app.routes``; added one by one, each is an
``APIRoute`` of the app, as tests and tools that walk ``app.routes`` expect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import Response

from homegrid.hub.planner_saving import PlannerSaving
from homegrid.hub.queries import Queries
from homegrid.hub.tariff_file import SiteTariff

__all__ = ["INLINE_DAYS", "ApiContext", "Endpoint", "add_routes", "answer", "span_or_422"]


@dataclass(frozen=True)
class ApiContext:
    """The store's queries and what the running hub offers (None where there is no hub, or not that part).

    Attributes
    ----------
    queries : Queries
        The store's queries in the site's time zone.
    health : callable, optional
        ``health()``: the hub's device status.
    live : callable, optional
        ``live()``: ``(time, values, times)``, the newest value of each quantity from any device, or
        ``(time, values, times, devices)`` with each device's ``name``, ``state`` (``live``, ``stale``,
        ``offline``: :mod:`homegrid.hub.liveness`), ``last_seen`` and ``quantities``; without it the
        store's newest row.
    outages : callable, optional
        ``outages(start_ms, end_ms)``: the outage report (``OutageTracker.report``).
    backup : callable, optional
        ``backup()``: the backup time left (``Hub.backup``).
    tariff : SiteTariff, optional
        The site's tariff (the owner's upload, else the config's) for the bill and the prices; None: no tariff.
    planner_saving : PlannerSaving, optional
        What the planner saved against self-powered mode per billing month (the Money view); None: not shown.
    clock : callable, optional
        ``clock()``: the hub's time (tz-aware UTC), the "now" of ``/api/v1/live`` that "last seen" counts from, so
        that it is the time the devices' states are judged at; None: the machine's clock.
    """

    queries: Queries
    health: Callable[[], Any] | None = None
    live: Callable[[], Any] | None = None
    outages: Callable[[int, int], dict[str, Any]] | None = None
    backup: Callable[[], dict[str, Any]] | None = None
    tariff: SiteTariff | None = None
    planner_saving: PlannerSaving | None = None
    clock: Callable[[], datetime] | None = None

    def now(self) -> datetime:
        """The hub's time, else the machine's (tz-aware UTC)."""
        return self.clock() if self.clock is not None else datetime.now(UTC)


@dataclass(frozen=True)
class Endpoint:
    """One route of a resource: the method, the path, the function answering it and what the OpenAPI schema says."""

    method: str
    path: str
    endpoint: Callable[..., Any]
    summary: str | None = None
    include_in_schema: bool = True
    response_class: type[Response] | None = None  # None: FastAPI's default (JSON)
    responses: dict[int | str, dict[str, Any]] | None = None  # the schema's replies of a route returning a Response


#: a reply over at most this many local days (a day's outages, report or prices; a month's) takes a millisecond or
#: two: it is worked out on the event loop, which saves handing it to a request thread and back (a thread woken each
#: way, then the two taking turns with the GIL); a longer one goes to a thread, so that the loop, which also polls
#: the devices, never waits long for it
INLINE_DAYS = 62


T = TypeVar("T")


async def answer(inline: bool, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` on the event loop when ``inline`` (a small reply), in a request thread otherwise."""
    return work(*args) if inline else await anyio.to_thread.run_sync(work, *args)


def span_or_422(queries: Queries, from_: str, to: str) -> tuple[int, int]:
    """:meth:`Queries.span` of a request's ``from`` and ``to`` [ms UTC]; a span it refuses is a 422 saying why."""
    try:
        return queries.span(from_, to)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def add_routes(target: FastAPI | APIRouter, routes: Iterable[Endpoint]) -> None:
    """Add a resource's routes, in order, to an app (or to a router of its own)."""
    for route in routes:
        extra: dict[str, Any] = {} if route.response_class is None else {"response_class": route.response_class}
        if route.responses is not None:
            extra["responses"] = route.responses
        target.add_api_route(route.path, route.endpoint, methods=[route.method], summary=route.summary,
                             include_in_schema=route.include_in_schema, **extra)
