"""/api/v1/energy's columns (one array per field, the time axis once) read back as one dict per bin, for the tests
that check bins one by one: ``start``, ``end`` (for a minute or an hour its start plus the step, at the start's
offset), ``partial`` and each field."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}


def points(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The bins of a reply, in order."""
    out = []
    for i, start in enumerate(body["start"]):
        end = body["end"][i] if "end" in body else (datetime.fromisoformat(start) + STEP[body["step"]]).isoformat()
        point = {"start": start, "end": end, "partial": i >= body["partial_from"]}
        point.update((field, body["values"][field][i]) for field in body["fields"])
        out.append(point)
    return out
