"""The live values: ``GET /api/v1/live`` (the newest value of each quantity, each device's state, the hub's
health) and ``GET /api/v1/stream`` (the same body as server-sent events, pushed when it changes)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import StreamingResponse

from homegrid.api.broadcast import LiveBroadcast
from homegrid.api.context import ApiContext, Endpoint
from homegrid.glossary import ALL_NAMES, display_value, quantity
from homegrid.readings import from_ms
from homegrid.strictjson import dumps

__all__ = ["KEEPALIVE_S", "STREAM_CHECK_S", "LiveRoutes"]

STREAM_CHECK_S = 0.25  # how often the live streams' one loop looks for a newer reading (one look serves them all)
KEEPALIVE_S = 15.0


class LiveRoutes:
    """The live routes over an app's :class:`ApiContext` (:attr:`routes`), and the one broadcast their streams
    share: one loop looks for new readings and builds each event once, however many streams are open."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.broadcast = LiveBroadcast(self.newest_time, self.live_event, STREAM_CHECK_S, KEEPALIVE_S)
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/live", self.live_values,
                     summary="The newest value of each quantity, each device's state and the hub's health"),
            Endpoint("GET", "/api/v1/stream", self.stream,
                     summary="Live values as server-sent events (event 'live', the /api/v1/live body)"),
        )

    def live_now(self) -> tuple[str | None, dict[str, float], dict[str, str], list[dict[str, Any]]]:
        """The newest values, their times and each device's liveness (none without a hub)."""
        if self.api.live is not None:
            time, raw, times, *rest = self.api.live()
            return time, raw, times, list(rest[0]) if rest else []
        frame = self.api.queries.store.latest()
        if not len(frame):
            return None, {}, {}, []
        time = from_ms(int(frame.time_ms[0])).isoformat()
        raw = {n: float(c[0]) for n, c in frame.columns.items() if not math.isnan(c[0])}
        return time, raw, dict.fromkeys(raw, time), []

    def live_values(self) -> dict[str, Any]:
        time, raw, times, devices = self.live_now()
        values = {name: display_value(name, v) for name, v in raw.items()}
        units = {n: quantity(n).unit for n in ALL_NAMES}
        health = self.api.health
        return {"time": time, "now": self.api.now().isoformat(), "values": values, "times": times,
                "units": units, "devices": devices, "health": health() if health else None}

    def newest_time(self) -> str | None:
        """What a new live event is wanted for: the newest reading's time and each device's state (cheap: no
        health, no JSON), so that a device going stale or offline is pushed at once though no reading came."""
        if self.api.live is not None:
            time, _, _, devices = self.live_now()
            return f"{time}|{','.join(d['state'] for d in devices)}"
        span = self.api.queries.store.time_range()
        return None if span is None else from_ms(span[1]).isoformat()

    def live_event(self) -> str:
        return f"event: live\ndata: {dumps(self.live_values(), separators=(',', ':'))}\n\n"  # strict, as the replies

    async def stream(
        self,
        max_events: Annotated[int | None, Query(ge=1, le=1_000_000_000, description="stop after this many events")]
        = None,
    ) -> StreamingResponse:
        return StreamingResponse(self.broadcast.events(max_events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
