"""The hub's HTTP API (documented by its OpenAPI schema at ``/openapi.json``).

- ``GET /api/v1/live``: the newest reading in glossary names, and the hub's health.
- ``GET /api/v1/energy?from=&to=&step=``: energy, flows and average power per local
  ``minute``, ``hour``, ``day`` or ``month`` between two instants or local dates.
- ``GET /api/v1/report?from=&to=``: the same report as ``homegrid report --json``.
- ``GET /api/v1/stream``: the live values as server-sent events, pushed when they change.
- ``GET /api/v1/export.csv?from=&to=[&resolution=]``: raw readings of local dates as canonical CSV (or the rollups).
- ``GET /api/v1/outages``, ``/api/v1/backup``, ``/api/v1/quarantine``: see the README.
- ``GET /api/v1/site``: the site's time zone, today's local date (the web app's calendar) and its units.
- ``GET /`` and ``/static/...``: the web app (``homegrid/web``), gzip-compressed when the browser takes it.
"""

from __future__ import annotations

import io
import math
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from homegrid import __version__
from homegrid.api.broadcast import LiveBroadcast
from homegrid.api.static import StaticBundle
from homegrid.glossary import ALL_NAMES, display_value, quantity
from homegrid.hub.queries import Queries, day_span
from homegrid.readings import ReadingFrame, from_ms
from homegrid.timezones import local_isoformat

__all__ = ["create_app"]

STREAM_CHECK_S = 0.25  # how often the live streams' one loop looks for a newer reading (one look serves them all)
KEEPALIVE_S = 15.0
#: threads answering requests at once (anyio's default is 40): on a home hub's few cores more only adds
#: memory, each busy thread holding a reply being built; the requests beyond wait their turn
API_THREADS = 8
#: exports running at once: each holds a day of readings, pyarrow's buffers and a gzip stream; one more is
#: asked to come back (429), so that a script looping on exports cannot fill the hub's memory
EXPORTS_AT_ONCE = 2


class _Slots:
    """A count of things running at once, safe from any thread (``take`` says whether one was free)."""

    def __init__(self, size: int) -> None:
        self.size, self.used, self._lock = size, 0, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.size:
                return False
            self.used += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.used -= 1


class _BoundedThreads:
    """Holds the number of request threads (anyio's limiter belongs to the running loop, so it is set there)."""

    def __init__(self, app: Any, threads: int) -> None:
        self.app, self.threads = app, threads

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        if limiter.total_tokens != self.threads:
            limiter.total_tokens = self.threads
        await self.app(scope, receive, send)


def _clean(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def default_outage_dates(first: date | None, last: date | None, tz: Any) -> tuple[date, date]:
    """The outage report's default span: the year up to today (local)."""
    from datetime import datetime, timedelta

    last = last or datetime.now(tz).date()
    return first or last - timedelta(days=365), last


def create_app(
    queries: Queries, health: Any = None, live: Any = None, outages: Any = None, backup: Any = None
) -> FastAPI:
    """Build the API over a store's queries.

    ``health()`` returns the hub's device status; ``live()`` returns ``(time, values, times)``,
    the newest value of each quantity from any device (default: the store's newest row), or
    ``(time, values, times, devices)`` with each device's ``name``, ``state`` (``live``, ``stale``,
    ``offline``: :mod:`homegrid.hub.liveness`), ``last_seen`` and ``quantities``;
    ``outages(start_ms, end_ms)`` the outage report (``OutageTracker.report``); ``backup()`` the
    backup time left (``Hub.backup``).
    """
    from homegrid.strictjson import dumps

    app = FastAPI(
        title="homegrid",
        version=__version__,
        description="The integrated home energy app: solar, battery, grid, home and car, local-first.",
        docs_url=None,  # /docs is served from the installed package, not a CDN (homegrid.api.docs)
        redoc_url=None,
    )
    from homegrid.api.docs import add_docs_routes

    add_docs_routes(app)
    # Replies are strict JSON without a response class of ours: every route declares its return type, so FastAPI
    # serializes through pydantic's core, which writes NaN and infinity as null (a custom default response class
    # would turn that fast path off and cost half as much again on a day of minutes)
    # a day of minutes is about 1 MB of JSON: a phone on Wi-Fi gets a quarter of it (the event stream and the
    # pre-compressed web app pass through untouched)
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    app.add_middleware(_BoundedThreads, threads=API_THREADS)
    exports = _Slots(EXPORTS_AT_ONCE)

    bundle = app.state.static = StaticBundle()

    def static_file(name: str, request: Request) -> Response:
        """A file of the web app's bundle (``homegrid/web/static``), compressed once and kept in memory."""
        found = bundle.get(name)
        if found is None:
            raise HTTPException(status_code=404, detail="not found")
        raw, packed, media_type = found
        headers = {"Cache-Control": "no-cache" if name.endswith(".html") else "public, max-age=3600",
                   "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", "") and len(packed) < len(raw):
            headers["Content-Encoding"] = "gzip"
            return Response(packed, media_type=media_type, headers=headers)
        return Response(raw, media_type=media_type, headers=headers)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request) -> Response:
        return static_file("index.html", request)

    @app.get("/static/{name:path}", include_in_schema=False)
    def static(name: str, request: Request) -> Response:
        return static_file(name, request)

    @app.get("/api/v1/site", summary="The site's time zone, today's local date and its units")
    def site() -> dict[str, Any]:
        from homegrid.units import units_for_zone

        # app.state.units: the hub's [site] units; else by the zone's country
        units = getattr(app.state, "units", None) or units_for_zone(queries.tz.key)
        return {"timezone": queries.tz.key, "today": datetime.now(queries.tz).date().isoformat(), "units": units}

    def live_now() -> tuple[str | None, dict[str, float], dict[str, str], list[dict[str, Any]]]:
        """The newest values, their times and each device's liveness (none without a hub)."""
        if live is not None:
            time, raw, times, *rest = live()
            return time, raw, times, list(rest[0]) if rest else []
        frame = queries.store.latest()
        if not len(frame):
            return None, {}, {}, []
        time = from_ms(int(frame.time_ms[0])).isoformat()
        raw = {n: float(c[0]) for n, c in frame.columns.items() if not math.isnan(c[0])}
        return time, raw, dict.fromkeys(raw, time), []

    @app.get("/api/v1/live", summary="The newest value of each quantity, each device's state and the hub's health")
    def live_values() -> dict[str, Any]:
        time, raw, times, devices = live_now()
        values = {name: display_value(name, v) for name, v in raw.items()}
        units = {n: quantity(n).unit for n in ALL_NAMES}
        return {"time": time, "now": datetime.now(UTC).isoformat(), "values": values, "times": times,
                "units": units, "devices": devices, "health": health() if health else None}

    def newest_time() -> str | None:
        """What a new live event is wanted for: the newest reading's time and each device's state (cheap: no
        health, no JSON), so that a device going stale or offline is pushed at once though no reading came."""
        if live is not None:
            time, _, _, devices = live_now()
            return f"{time}|{','.join(d['state'] for d in devices)}"
        span = queries.store.time_range()
        return None if span is None else from_ms(span[1]).isoformat()

    def live_event() -> str:
        return f"event: live\ndata: {dumps(live_values(), separators=(',', ':'))}\n\n"  # strict, as the replies

    # one loop looks for new readings and builds each event once, however many streams are open
    broadcast = LiveBroadcast(newest_time, live_event, STREAM_CHECK_S, KEEPALIVE_S)

    @app.get("/api/v1/stream", summary="Live values as server-sent events (event 'live', the /api/v1/live body)")
    async def stream(
        max_events: Annotated[int | None, Query(ge=1, le=1_000_000_000, description="stop after this many events")]
        = None,
    ) -> StreamingResponse:
        return StreamingResponse(broadcast.events(max_events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.get("/api/v1/export.csv", summary="Raw readings (or minute or hour rollups) of local dates as CSV")
    def export_csv(
        from_: Annotated[date, Query(alias="from")],
        to: Annotated[date, Query()],
        resolution: Annotated[Literal["raw", "minute", "hour"], Query(
            description="raw: the readings (kept [store] raw_retention_days); minute or hour: the rollups")] = "raw",
    ) -> StreamingResponse:
        from homegrid.hub.export import coverage, rollup_csv_chunks
        from homegrid.readings.csvfile import write_csv

        if to < from_:
            raise HTTPException(status_code=422, detail="'to' is before 'from'")
        start_ms, end_ms = day_span(from_, to, queries.tz)
        cov = coverage(queries, start_ms, end_ms)
        if resolution == "raw" and cov.raw is None and cov.pruned is not None:
            raise HTTPException(status_code=404, detail="the raw readings of these days were pruned (older than "
                                "[store] raw_retention_days); resolution=minute or resolution=hour has their rollups")

        def chunk(frames: Iterator[ReadingFrame]) -> str | None:
            """The next day's rows as CSV (with the header line), or None at the end."""
            for frame in frames:
                if len(frame):
                    out = io.StringIO()
                    write_csv([frame], out, tz=queries.tz)
                    return out.getvalue()
            return None

        async def rollups() -> AsyncIterator[str]:
            chunks = rollup_csv_chunks(queries, resolution, start_ms, end_ms)
            while (text := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
                yield text

        async def rows() -> AsyncIterator[str]:
            frames = queries.readings(start_ms, end_ms)
            header = True
            while (text := await anyio.to_thread.run_sync(chunk, frames)) is not None:
                yield text if header else text.split("\n", 1)[1]
                header = False
            if header:
                yield "time\n"

        if not exports.take():
            raise HTTPException(status_code=429, detail=f"{EXPORTS_AT_ONCE} exports are running; try again when "
                                "they are done", headers={"Retry-After": "10"})
        body = rows() if resolution == "raw" else rollups()
        # the slot is given back when the stream is done with, however it ends (finished, client gone, never run)
        weakref.finalize(body, exports.give)

        name = f"homegrid-{from_.isoformat()}-{to.isoformat()}{'' if resolution == 'raw' else '-' + resolution}.csv"
        return StreamingResponse(body, media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    from homegrid.api.summary import add_summary_routes

    add_summary_routes(app, queries, live)

    @app.get("/api/v1/energy", summary="Energy, flows and average power per local minute, hour, day or month")
    def energy(
        from_: Annotated[str, Query(alias="from", description="ISO 8601 instant or local date")],
        to: Annotated[str, Query(description="ISO 8601 instant or local date (inclusive)")],
        step: Annotated[Literal["minute", "hour", "day", "month"], Query()] = "hour",
    ) -> dict[str, Any]:
        try:
            start_ms, end_ms = queries.span(from_, to)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        if end_ms - start_ms > queries.max_points(step) * queries.step_ms(step):
            raise HTTPException(status_code=422, detail=f"too many {step} points; use a coarser step")
        table, labels, ends, partial = queries.series(step, start_ms, end_ms)
        end_labels = local_isoformat(ends, queries.tz.key)
        rows = []
        for i in range(len(table)):
            row: dict[str, Any] = {"start": labels[i], "end": end_labels[i], "partial": bool(partial[i])}
            for name, col in table.columns.items():
                row[name] = _clean(col[i])
            rows.append(row)
        return {"from": from_ms(start_ms).isoformat(), "to": from_ms(end_ms).isoformat(), "step": step,
                "timezone": queries.tz.key, "points": rows}

    @app.get("/api/v1/report", summary="Energy report for local dates (inclusive)")
    def report(
        from_: Annotated[date, Query(alias="from")],
        to: Annotated[date, Query()],
    ) -> dict[str, Any]:
        if to < from_:
            raise HTTPException(status_code=422, detail="'to' is before 'from'")
        return queries.report(from_, to)

    @app.get("/api/v1/outages", summary="Grid interruptions the battery carried the home through, and grid "
                                        "disturbances (logged while the home stayed on the grid) apart")
    def outages_report(
        from_: Annotated[date | None, Query(alias="from", description="first local date (default: a year ago)")] = None,
        to: Annotated[date | None, Query(description="last local date, inclusive (default: today)")] = None,
    ) -> dict[str, Any]:
        if outages is None:
            raise HTTPException(status_code=404, detail="outage tracking is not running")
        first, last = default_outage_dates(from_, to, queries.tz)
        if last < first:
            raise HTTPException(status_code=422, detail="'to' is before 'from'")
        start_ms, end_ms = queries.stored(*day_span(first, last, queries.tz))
        return {"from": first.isoformat(), "to": last.isoformat(), **outages(start_ms, end_ms)}

    @app.get("/api/v1/backup", summary="How long the battery would carry the home now")
    def backup_now() -> dict[str, Any]:
        if backup is None:
            raise HTTPException(status_code=404, detail="backup estimate is not running")
        return backup()

    @app.get("/api/v1/quarantine", summary="Values refused at the door")
    def quarantine(
        limit: Annotated[int, Query(ge=0, le=10_000, description="newest items to list")] = 100,
    ) -> dict[str, Any]:
        count, items = queries.store.quarantined(limit)
        return {
            "count": count,
            "items": [
                {"time": from_ms(q.time_ms).isoformat(), "source": q.source, "field": q.field,
                 "value": q.value, "reason": q.reason}
                for q in items
            ],
        }

    return app
