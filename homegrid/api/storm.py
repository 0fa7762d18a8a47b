"""Storm mode over HTTP: its state, and the owner's switch (on, off, automatic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from homegrid.api.security import actor_of

__all__ = ["add_storm_routes"]


class StormSwitch(BaseModel):
    """``on``: storm mode now (until ``until``, if given); ``off``: not for the current alerts (or until
    ``until``); ``auto``: follow the alerts."""

    mode: Literal["on", "off", "auto"]
    until: datetime | None = None


def add_storm_routes(app: FastAPI, watch: Any) -> None:
    """``GET /api/v1/storm`` and ``POST /api/v1/storm`` on an app (``watch`` a ``StormWatch``, or None)."""

    @app.get("/api/v1/storm", summary="Storm mode: on or off, why, the alerts, the saved reserve")
    def storm_status() -> dict[str, Any]:
        if watch is None:
            return {"enabled": False}
        return {"enabled": True, **watch.status}

    @app.post("/api/v1/storm", summary="The owner's storm switch: on, off or auto")
    def storm_set(switch: StormSwitch, request: Request) -> dict[str, Any]:
        if watch is None:
            raise HTTPException(status_code=409, detail="storm mode is not enabled ([storm] enabled = true)")
        try:
            watch.switch(switch.mode, switch.until, by=actor_of(request))
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"enabled": True, **watch.status}
