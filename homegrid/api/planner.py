"""The planner's execution over HTTP: the commands sent (or, dry, worked out) with their reasons, and the owner's
hand-back after a change by hand."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request

from homegrid.api.context import Endpoint, add_routes
from homegrid.api.security import actor_of

__all__ = ["PlannerRoutes", "add_planner_routes"]


class PlannerRoutes:
    """``GET /api/v1/planner/commands`` and ``POST /api/v1/planner/hand-back`` over the hub's ``Executor``, or
    None."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/planner/commands", self.commands,
                     summary="The planner's commands to the battery and the car, with their reasons; whether it "
                             "acts, runs dry, or stands aside for the owner's change"),
            Endpoint("POST", "/api/v1/planner/hand-back", self.hand_back,
                     summary="The owner hands control back to the planner after changing the battery or the car "
                             "by hand"),
        )

    def commands(self) -> dict[str, Any]:
        if self.executor is None:
            return {"enabled": False}
        return {"enabled": True, **self.executor.status}

    def hand_back(self, request: Request) -> dict[str, Any]:
        if self.executor is None:
            raise HTTPException(status_code=409, detail="the planner is not enabled ([planner] enabled = true)")
        self.executor.hand_back(by=actor_of(request))
        return {"enabled": True, **self.executor.status}


def add_planner_routes(app: FastAPI, executor: Any) -> None:
    """The planner's routes on an app (``executor`` an :class:`~homegrid.planner.execute.Executor`, or None)."""
    add_routes(app, PlannerRoutes(executor).routes)
