"""Storm mode over HTTP: its state, and the owner's switch (on, off, automatic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from homegrid.api.context import Endpoint, add_routes
from homegrid.api.security import actor_of

__all__ = ["StormRoutes", "add_storm_routes"]


class StormSwitch(BaseModel):
    """``on``: storm mode now (until ``until``, if given); ``off``: not for the current alerts (or until
    ``until``); ``auto``: follow the alerts."""

    mode: Literal["on", "off", "auto"]
    until: datetime | None = None


class StormRoutes:
    """``GET /api/v1/storm`` and ``POST /api/v1/storm`` (:attr:`routes`) over the hub's ``StormWatch``, or None."""

    def __init__(self, watch: Any) -> None:
        self.watch = watch
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/storm", self.storm_status,
                     summary="Storm mode: on or off, why, the alerts, the saved reserve"),
            Endpoint("POST", "/api/v1/storm", self.storm_set, summary="The owner's storm switch: on, off or auto"),
        )

    def storm_status(self) -> dict[str, Any]:
        if self.watch is None:
            return {"enabled": False}
        return {"enabled": True, **self.watch.status}

    def storm_set(self, switch: StormSwitch, request: Request) -> dict[str, Any]:
        if self.watch is None:
            raise HTTPException(status_code=409, detail="storm mode is not enabled ([storm] enabled = true)")
        try:
            self.watch.switch(switch.mode, switch.until, by=actor_of(request))
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return {"enabled": True, **self.watch.status}


def add_storm_routes(app: FastAPI, watch: Any) -> None:
    """``GET /api/v1/storm`` and ``POST /api/v1/storm`` on an app (``watch`` a ``StormWatch``, or None)."""
    add_routes(app, StormRoutes(watch).routes)
