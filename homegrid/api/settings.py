"""The battery settings the owner may change from homegrid: backup reserve and operation mode.

``GET /api/v1/settings`` says what they are now and whether the device takes changes;
``POST /api/v1/settings`` changes either or both through the device adapter (the same
path storm mode uses). A change made while storm mode holds the reserve is the owner's:
storm mode will not restore over it. Changes need the owner's credential (``homegrid.api.security``);
the log names which one (``owner session``, ``owner token``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from homegrid.api.context import Endpoint, add_routes
from homegrid.api.security import actor_of
from homegrid.devices.base import DeviceError
from homegrid.devices.control import OPERATION_MODES, BatteryControl, check_mode, check_reserve

__all__ = ["SettingsRoutes", "add_settings_routes", "read_settings"]

log = logging.getLogger(__name__)


class SettingsChange(BaseModel):
    """What to change; a field left out stays as it is."""

    battery_reserve: float | None = Field(default=None, description="backup reserve [%], 0..100")
    operation_mode: str | None = Field(default=None, description="one of the battery's `modes`")


async def read_settings(control: BatteryControl | None) -> dict[str, Any]:
    """The settings now, what the battery takes, and why changes would be refused."""
    if control is None:
        return {"available": False, "can_control": False, "why_not": "no battery the hub can control"}
    out: dict[str, Any] = {
        "available": True,
        "can_control": control.can_control,
        "why_not": control.why_not,
        "modes": [{"mode": m, "label": OPERATION_MODES.get(m, m)} for m in control.modes],
        "battery_reserve": None,
        "operation_mode": None,
    }
    try:
        out["battery_reserve"], out["operation_mode"] = await control.settings()
    except DeviceError as exc:
        out["error"] = str(exc)
    return out


class SettingsRoutes:
    """``GET`` and ``POST /api/v1/settings`` (:attr:`routes`) over the battery's control (None: no battery the hub
    can control) and the hub's ``StormWatch`` (or None)."""

    def __init__(self, control: BatteryControl | None, storm: Any = None) -> None:
        self.control, self.storm = control, storm
        self.routes: tuple[Endpoint, ...] = (
            Endpoint("GET", "/api/v1/settings", self.settings_get,
                     summary="Backup reserve and operation mode, and whether they can be changed"),
            Endpoint("POST", "/api/v1/settings", self.settings_post,
                     summary="Change the backup reserve and/or the operation mode"),
        )

    async def current(self) -> dict[str, Any]:
        out = await read_settings(self.control)
        out["storm"] = bool(self.storm.status.get("storm")) if self.storm is not None else None
        return out

    async def settings_get(self) -> dict[str, Any]:
        return await self.current()

    async def settings_post(self, change: SettingsChange, request: Request) -> dict[str, Any]:
        control = self.control
        if control is None:
            raise HTTPException(status_code=409, detail="no battery the hub can control")
        try:
            reserve = None if change.battery_reserve is None else check_reserve(change.battery_reserve)
            mode = None if change.operation_mode is None else check_mode(change.operation_mode, control.modes)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        try:
            if mode is not None:
                await control.set_operation_mode(mode)
            if reserve is not None:
                await control.set_backup_reserve(reserve)
        except DeviceError as exc:
            log.warning("settings: %s", exc)
            raise HTTPException(status_code=502, detail=str(exc)) from None
        log.info("settings: reserve %s, mode %s (%s)", reserve, mode, actor_of(request))
        return await self.current()


def add_settings_routes(app: FastAPI, control: BatteryControl | None, storm: Any = None) -> None:
    """``GET`` and ``POST /api/v1/settings`` on an app (``storm``: the hub's ``StormWatch``, or None)."""
    add_routes(app, SettingsRoutes(control, storm).routes)
