"""``GET /api/v1/export.csv?from=&to=[&resolution=]``: raw readings of local dates as canonical CSV (or the minute
or hour rollups), streamed a day at a time, with few exports at once."""

from __future__ import annotations

import io
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from datetime import date
from typing import Annotated, Literal

import anyio
from fastapi import HTTPException, Query
from fastapi.responses import StreamingResponse

from homegrid.api.context import ApiContext, Endpoint
from homegrid.hub.queries import day_span
from homegrid.readings import ReadingFrame

__all__ = ["EXPORTS_AT_ONCE", "ExportRoutes"]

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


class ExportRoutes:
    """The export route over an app's :class:`ApiContext` (:attr:`routes`), and its slots."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.exports = _Slots(EXPORTS_AT_ONCE)
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/export.csv", self.export_csv,
                     summary="Raw readings (or minute or hour rollups) of local dates as CSV"),
        )

    def export_csv(
        self,
        from_: Annotated[date, Query(alias="from")],
        to: Annotated[date, Query()],
        resolution: Annotated[Literal["raw", "minute", "hour"], Query(
            description="raw: the readings (kept forever unless [store] raw_retention_days); minute or hour: "
                        "the rollups")] = "raw",
    ) -> StreamingResponse:
        from homegrid.hub.export import coverage

        queries = self.api.queries
        if to < from_:
            raise HTTPException(status_code=422, detail="'to' is before 'from'")
        start_ms, end_ms = day_span(from_, to, queries.tz)
        cov = coverage(queries, start_ms, end_ms)
        if resolution == "raw" and cov.raw is None and cov.pruned is not None:
            raise HTTPException(status_code=404, detail="the raw readings of these days were pruned (older than "
                                "[store] raw_retention_days); resolution=minute or resolution=hour has their rollups")
        if not self.exports.take():
            raise HTTPException(status_code=429, detail=f"{EXPORTS_AT_ONCE} exports are running; try again when "
                                "they are done", headers={"Retry-After": "10"})
        body = self._rows(start_ms, end_ms) if resolution == "raw" else self._rollups(resolution, start_ms, end_ms)
        # the slot is given back when the stream is done with, however it ends (finished, client gone, never run)
        weakref.finalize(body, self.exports.give)

        name = f"homegrid-{from_.isoformat()}-{to.isoformat()}{'' if resolution == 'raw' else '-' + resolution}.csv"
        return StreamingResponse(body, media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def _chunk(self, frames: Iterator[ReadingFrame]) -> str | None:
        """The next day's rows as CSV (with the header line), or None at the end."""
        from homegrid.readings.csvfile import write_csv

        for frame in frames:
            if len(frame):
                out = io.StringIO()
                write_csv([frame], out, tz=self.api.queries.tz)
                return out.getvalue()
        return None

    async def _rows(self, start_ms: int, end_ms: int) -> AsyncIterator[str]:
        frames = self.api.queries.readings(start_ms, end_ms)
        header = True
        while (text := await anyio.to_thread.run_sync(self._chunk, frames)) is not None:
            yield text if header else text.split("\n", 1)[1]
            header = False
        if header:
            yield "time\n"

    async def _rollups(self, resolution: str, start_ms: int, end_ms: int) -> AsyncIterator[str]:
        from homegrid.hub.export import rollup_csv_chunks

        chunks = rollup_csv_chunks(self.api.queries, resolution, start_ms, end_ms)
        while (text := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
            yield text
