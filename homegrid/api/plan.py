"""The plan over HTTP: ``GET /api/v1/plan``, the planner's latest plan for the next hours with its prices and
forecasts, what it will cost against the battery left self-powered, what had to be relaxed, the solve time, and how
far the forecasts are to be trusted (their MAE and RMSE at 1, 6 and 24 h on the last weeks, worked out daily), and
what the solar forecast was made from (``solar_forecast``: the weather forecast of ``[planner] weather`` and when it
was fetched, or the clear sky scaled by the recent days), and what was carried out today (``done``: the commands
sent with their reasons, and per step the level planned beside the battery's measured level).

409 with how to turn it on while ``[planner] enabled`` is false.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from homegrid.api.context import Endpoint, add_routes
from homegrid.hub.planning import PlanningService

__all__ = ["HOW_TO_ENABLE", "PlanRoutes", "add_plan_routes"]

#: said while the planner is off
HOW_TO_ENABLE = ("the planner is not enabled (with a real device it is the owner's choice): set [planner] enabled = "
                 "true in the config (dry_run = true to see the plan without acting) and restart the hub")


class PlanRoutes:
    """``GET /api/v1/plan`` over the hub's :class:`~homegrid.hub.planning.PlanningService`, or None (off)."""

    def __init__(self, planning: PlanningService | None) -> None:
        self.planning = planning
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/plan", self.plan,
                     summary="The planner's latest plan per step (mode, battery, state of charge, grid, car, load and "
                             "solar forecasts, prices), its cost against self-powered, what was relaxed, the solve "
                             "time, the forecasts' errors, the solar forecast's source, and what was carried out today "
                             "(commands and reasons; per step the planned and measured battery level)"),
        )

    def plan(self) -> dict[str, Any]:
        if self.planning is None:
            raise HTTPException(status_code=409, detail=HOW_TO_ENABLE)
        errors, why = self.planning.forecast_errors()
        solar = self.planning.solar_source
        return {"enabled": True, "status": self.planning.status(), "plan": self.planning.describe(),
                "done": self.planning.carried_out(),
                "forecast_errors": None if errors is None else errors.to_json(), "forecast_errors_missing": why,
                "solar_forecast": None if solar is None else solar.to_json()}


def add_plan_routes(app: FastAPI, planning: PlanningService | None) -> None:
    """The plan's route on an app (``planning`` None: the planner is off)."""
    add_routes(app, PlanRoutes(planning).routes)
