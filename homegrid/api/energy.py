"""The energy queries: ``GET /api/v1/energy?from=&to=&step=`` (energy, flows and average power per local
``minute``, ``hour``, ``day`` or ``month`` between two instants or local dates) and ``GET /api/v1/report?from=&to=``
(the same report as ``homegrid report --json``)."""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Query

from homegrid.api.context import ApiContext, Endpoint
from homegrid.readings import from_ms
from homegrid.timezones import local_isoformat

__all__ = ["EnergyRoutes"]


def _clean(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


class EnergyRoutes:
    """The energy routes over an app's :class:`ApiContext` (:attr:`routes`)."""

    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/energy", self.energy,
                     summary="Energy, flows and average power per local minute, hour, day or month"),
            Endpoint("GET", "/api/v1/report", self.report, summary="Energy report for local dates (inclusive)"),
        )

    def energy(
        self,
        from_: Annotated[str, Query(alias="from", description="ISO 8601 instant or local date")],
        to: Annotated[str, Query(description="ISO 8601 instant or local date (inclusive)")],
        step: Annotated[Literal["minute", "hour", "day", "month"], Query()] = "hour",
    ) -> dict[str, Any]:
        queries = self.api.queries
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

    def report(
        self,
        from_: Annotated[date, Query(alias="from")],
        to: Annotated[date, Query()],
    ) -> dict[str, Any]:
        if to < from_:
            raise HTTPException(status_code=422, detail="'to' is before 'from'")
        return self.api.queries.report(from_, to)
