"""The energy queries: ``GET /api/v1/energy?from=&to=&step=[&fields=]`` (energy, flows and average power per local
``minute``, ``hour``, ``day`` or ``month`` between two instants or local dates, one array per field: the shape a
chart draws) and ``GET /api/v1/report?from=&to=`` (the same report as ``homegrid report --json``).

A day of minutes is 1,440 bins of up to 33 fields: the reply is encoded by orjson straight from the numpy arrays and
returned as it is (no validation of a large dict). Replies about sealed periods (see
:meth:`homegrid.store.Store.sealed_before`) carry an ETag and are kept gzip-coded in a small in-process cache
(:mod:`.body_cache`), so the chart of a past day costs a lookup, or a 304 to a browser that has it.
"""

from __future__ import annotations

import gzip
import secrets
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import anyio
import numpy as np
import orjson
from fastapi import HTTPException, Query, Request
from fastapi.responses import Response

from homegrid import __version__
from homegrid.api.body_cache import GZIP_SUFFIX, BodyCache, entity_tag, matches
from homegrid.api.compression import gzip_body
from homegrid.api.context import INLINE_DAYS, ApiContext, Endpoint, answer, span_or_422
from homegrid.hub.queries import SERIES_FIELDS
from homegrid.readings import from_ms, to_ms
from homegrid.timezones import local_isoformat_json

__all__ = ["BODY_FORMAT", "CACHE_BYTES", "EnergyRoutes", "decimals"]

#: the reply's layout: part of every ETag, so a browser never keeps a body of another layout
BODY_FORMAT = "columns-1"
#: the bodies of sealed periods kept (gzip-coded: a day of minutes with every field is about 40 kB) [bytes]
CACHE_BYTES = 8 * 1024 * 1024
JSON = "application/json"
#: sent with every reply that has an ETag: the browser keeps it, and asks whether it is still good before using it
REVALIDATE = "private, max-age=0, must-revalidate"
STEPS_WITH_END = ("day", "month")  # a minute or an hour ends one step after it starts
#: a reply of at most this many bins (a day of minutes, a quarter of hours, years of days) takes a few ms: it is
#: worked out on the event loop, which saves handing it to a request thread and back (a thread woken each way);
#: a larger one goes to a thread, so that the loop, which also polls the devices, never waits long for it
INLINE_BINS = 2_000
FIELDS_HELP = ("comma-separated names of the fields to give (default: all of them): " + ", ".join(SERIES_FIELDS))


def decimals(field: str) -> int:
    """The decimals a field is given to: powers to 0.1 W, energies to the mWh (0.1 W over a minute is 1.7 mWh; the
    report rounds to the mWh too), durations to the ms, the state of charge to 0.01 % (``soc_sum`` to 0.01 %*s).
    All the digits of the doubles would be three times the bytes on the wire, in noise: no meter reads finer."""
    if field.endswith("_w"):
        return 1
    if field.startswith("soc_"):
        return 3 if field == "soc_s" else 2
    return 3


def _rounded(field: str, values: np.ndarray) -> np.ndarray:
    # + 0.0 turns -0.0 (a rounded -1e-9) into 0.0; orjson writes NaN and infinity as null
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(np.round(np.asarray(values, dtype=np.float64), decimals(field)) + 0.0)


def _field_names(text: str | None) -> tuple[str, ...]:
    """The fields a ``fields=`` parameter names (each once, in its order); all of them when it names none."""
    names = tuple(dict.fromkeys(n.strip() for n in (text or "").split(",") if n.strip()))
    unknown = [n for n in names if n not in SERIES_FIELDS]
    if unknown:
        shown = ", ".join(repr(n[:40]) for n in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
        raise HTTPException(status_code=422, detail=f"unknown field{'s' if len(unknown) > 1 else ''} {shown}; "
                                                    f"the fields are {', '.join(SERIES_FIELDS)}")
    return names or SERIES_FIELDS


_EXAMPLE = {"from": "2025-06-01T04:00:00+00:00", "to": "2025-06-02T04:00:00+00:00", "step": "hour",
            "timezone": "America/New_York", "fields": ["solar_w", "soc_mean"],
            "start": ["2025-06-01T00:00:00-04:00", "2025-06-01T01:00:00-04:00", "..."], "partial_from": 24,
            "values": {"solar_w": [0.0, 0.0, "..."], "soc_mean": [54.21, None, "..."]}}


class EnergyRoutes:
    """The energy routes over an app's :class:`ApiContext` (:attr:`routes`)."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.bodies = BodyCache(CACHE_BYTES)
        # in every ETag: a store's generation may start again from 0 in a new process, a browser's tag must not match
        self.boot = secrets.token_hex(8)
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/energy", self.energy,
                     summary="Energy, flows and average power per local minute, hour, day or month, one array per "
                             "field",
                     responses={200: {"content": {JSON: {"example": _EXAMPLE}}},
                                304: {"description": "Not modified: the sealed period's reply named by "
                                                     "If-None-Match is still the reply"}}),
            Endpoint("GET", "/api/v1/report", self.report, summary="Energy report for local dates (inclusive)"),
        )

    async def energy(
        self,
        request: Request,
        from_: Annotated[str, Query(alias="from", description="ISO 8601 instant or local date")],
        to: Annotated[str, Query(description="ISO 8601 instant or local date (inclusive)")],
        step: Annotated[Literal["minute", "hour", "day", "month"], Query()] = "hour",
        fields: Annotated[str | None, Query(description=FIELDS_HELP)] = None,
    ) -> Response:
        """The bins of a span, one array per field and the time axis once:
        ``{"from", "to", "step", "timezone", "fields", "start", ["end",] "partial_from", "values"}``.

        - ``from``, ``to``: the span asked for (UTC instants); ``timezone``: the site's, whose local time the bins
          follow.
        - ``fields``: the fields given, in order (``fields=`` names them; without it, all).
        - ``start[i]``: bin *i*'s label: a local time with its offset (``minute``, ``hour``), a local date
          (``day``: 23, 24 or 25 hours) or ``YYYY-MM`` (``month``: the sum of its local days within the span).
          Bins are whole (a span starting inside one gets all of it) and only those holding data are listed.
        - ``end[i]``: the local instant bin *i* ends, for ``day`` and ``month`` only: a minute or an hour ends
          60 or 3,600 s after its ``start``.
        - ``partial_from``: the index of the first bin still going (its end after now): the bins from it on
          are partial; the number of bins when none is.
        - ``values[field][i]``: the field's value in bin *i*, null where unknown. Energies, flows and the car's
          sources [Wh] to the mWh, average powers (``solar_w``, ``home_w``, ...) [W] to 0.1 W, mean, least and
          greatest state of charge (``soc_mean``, ``soc_min``, ``soc_max``) [%] to 0.01 %, durations
          (``covered_s``, ``islanded_s``, ``soc_s``) [s] to the ms.

        A reply whose bins all ended before the store sealed its data has a strong ETag and
        ``Cache-Control: private, max-age=0, must-revalidate``: ``If-None-Match`` with it answers 304. Such
        replies are kept in memory; ``Cache-Control: no-cache`` in the request has one worked out again.
        """
        queries = self.api.queries
        names = _field_names(fields)
        start_ms, end_ms = span_or_422(queries, from_, to)
        if end_ms - start_ms > queries.max_points(step) * queries.step_ms(step):
            raise HTTPException(status_code=422, detail=f"too many {step} points; use a coarser step")
        if (end_ms - start_ms) // queries.step_ms(step) <= INLINE_BINS:
            return self._reply(request, step, start_ms, end_ms, names)
        return await anyio.to_thread.run_sync(self._reply, request, step, start_ms, end_ms, names)

    def _reply(self, request: Request, step: str, start_ms: int, end_ms: int, names: tuple[str, ...]) -> Response:
        """The reply to a checked request (see :meth:`energy`): worked out, kept or 304."""
        queries = self.api.queries
        store = queries.store
        generation, sealed = store.generation(), store.sealed_before()  # before reading: a change after moves them
        now_ms = to_ms(datetime.now(UTC))
        if sealed is None or queries.bins_end(step, end_ms) > min(sealed, now_ms):
            return Response(self._encode(step, start_ms, end_ms, names), media_type=JSON)

        key = (BODY_FORMAT, __version__, self.boot, queries.tz.key, step, start_ms, end_ms, names, generation)
        tag = entity_tag(key)
        coded = "gzip" in request.headers.get("accept-encoding", "")  # as GZipMiddleware decides
        headers = {"ETag": f'"{tag}{GZIP_SUFFIX if coded else ""}"', "Cache-Control": REVALIDATE,
                   "Vary": "Accept-Encoding"}
        if matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers=headers)
        # a request's "Cache-Control: no-cache" (a browser's hard reload) has the reply worked out again
        body = None if "no-cache" in request.headers.get("cache-control", "") else self.bodies.get(key)
        plain = None
        if body is None:
            plain = self._encode(step, start_ms, end_ms, names)
            body = gzip_body(plain)  # no time in its header: one key, one byte sequence
            self.bodies.put(key, body)
        if coded:  # GZipMiddleware passes a body with a Content-Encoding through
            return Response(body, media_type=JSON, headers={**headers, "Content-Encoding": "gzip"})
        return Response(plain if plain is not None else gzip.decompress(body), media_type=JSON, headers=headers)

    def _encode(self, step: str, start_ms: int, end_ms: int, names: tuple[str, ...]) -> bytes:
        """The reply's JSON (see :meth:`energy`)."""
        queries = self.api.queries
        table, labels, ends, partial = queries.series(step, start_ms, end_ms, fields=names)
        body: dict[str, Any] = {"from": from_ms(start_ms).isoformat(), "to": from_ms(end_ms).isoformat(),
                                "step": step, "timezone": queries.tz.key, "fields": list(names),
                                "start": orjson.Fragment(labels.json())}
        if step in STEPS_WITH_END:
            body["end"] = orjson.Fragment(local_isoformat_json(ends, queries.tz.key))
        body["partial_from"] = int(np.argmax(partial)) if partial.any() else len(partial)  # bins end in order
        body["values"] = {name: _rounded(name, col) for name, col in table.columns.items()}
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    async def report(
        self,
        from_: Annotated[date, Query(alias="from")],
        to: Annotated[date, Query()],
    ) -> dict[str, Any]:
        if to < from_:
            raise HTTPException(status_code=422, detail="'to' is before 'from'")
        return await answer((to - from_).days < INLINE_DAYS, self.api.queries.report, from_, to)
