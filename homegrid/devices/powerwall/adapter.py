"""The Powerwall gateway as a homegrid device, over any client that can GET its local API.

The transport seam is :class:`GatewayClient`: ``pypowerwall.Powerwall`` (local
mode, or its cloud and Fleet API modes) fits it as it is, and tests replay
recorded gateway replies through the same seam.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from homegrid.devices.base import Device, DeviceError
from homegrid.devices.control import BatteryControl
from homegrid.devices.powerwall.replies import (
    GridFault,
    Operation,
    ReplyError,
    app_soc,
    parse_aggregates,
    parse_capacity,
    parse_grid_faults,
    parse_grid_status,
    parse_operation,
    parse_rated_capacity,
    parse_soe,
    parse_toggle_time,
)
from homegrid.glossary import COUNTERS
from homegrid.readings import GridEvidence, Reading

__all__ = ["CAPACITY_EVERY_S", "GatewayClient", "PowerwallGateway"]

CAPACITY_EVERY_S = 600.0


class GatewayClient(Protocol):
    """What the adapter needs of a gateway client: a decoded GET, or None when nothing came back."""

    def poll(self, api: str) -> Any: ...


class PowerwallGateway(Device):
    """Reads power, counters, state of charge and grid status from a Powerwall gateway.

    ``/api/meters/aggregates`` is required: without it the poll fails. The state of
    charge, grid status, operation, grid-fault log and ``/api/system_status`` (its
    island toggle time; the full-pack energy is taken from it every
    :data:`CAPACITY_EVERY_S`) are read on every poll; when one of them fails, the
    reading goes without it and the problem is kept in :attr:`problems` for the hub
    to report.

    The island toggle time (``last_toggle_timestamp``) is when the gateway last left
    or rejoined the grid: a change of it between two polls is islanding evidence
    even when no poll saw the grid down (a blip shorter than a poll). It is offered
    as evidence at its own time (:meth:`grid_evidence`); the hub keeps each time once.
    """

    name = "powerwall"

    def __init__(self, client: GatewayClient, clock: Callable[[], datetime] | None = None) -> None:
        self.client = client
        self.clock = clock or (lambda: datetime.now(UTC))
        self.operation: Operation | None = None
        self.faults: list[GridFault] = []
        self.problems: dict[str, str] = {}
        self._soc: float | None = None
        self._capacity: float | None = None  # full-pack energy, read every CAPACITY_EVERY_S (it fades slowly)
        self._capacity_read = 0.0
        self.toggle_ms: int | None = None  # the gateway's island toggle time, as last read [ms]

    def _get(self, api: str) -> Any:
        try:
            reply = self.client.poll(api)
        except Exception as exc:  # a client library raises what it likes; the hub must go on
            raise DeviceError(f"{api}: {type(exc).__name__}: {exc}") from exc
        if reply is None:
            raise DeviceError(f"{api}: no reply")
        return reply

    def read(self) -> Reading:
        """One blocking poll of the gateway (run it off the event loop)."""
        when = self.clock()
        problems: dict[str, str] = {}
        try:
            values: dict[str, float] = parse_aggregates(self._get("/api/meters/aggregates"))
        except ReplyError as exc:
            raise DeviceError(str(exc)) from exc
        optional: list[tuple[str, Callable[[Any], None]]] = [
            ("/api/system_status/soe", lambda r: self._use_soe(parse_soe(r), values)),
            ("/api/system_status/grid_status", lambda r: values.__setitem__("grid_status",
                                                                            float(parse_grid_status(r)))),
            ("/api/operation", lambda r: self._use_operation(parse_operation(r), values)),
            ("/api/system_status/grid_faults", lambda r: setattr(self, "faults", parse_grid_faults(r))),
            ("/api/system_status", lambda r: self._use_system_status(r, values)),
        ]
        for api, use in optional:
            try:
                use(self._get(api))
            except (DeviceError, ReplyError) as exc:
                problems[api] = str(exc)
        if not getattr(self.client, "reports_counters", True):
            for name in COUNTERS:  # pypowerwall's cloud modes fill the counters with zeros
                values.pop(name, None)
        self.problems = problems
        self._soc = values.get("battery_soc_gateway")
        return Reading(when, values)

    def grid_evidence(self) -> list[GridEvidence]:
        """The gateway's fault log (each entry at its own time, with its kind and magnitude) and its island
        toggle time, as evidence of grid events."""
        out = [GridEvidence(f.time_ms, "grid_fault", f.name, source=self.name, disturbance=f.kind, value=f.value,
                            unit=f.unit) for f in self.faults]
        if self.toggle_ms is not None:
            out.append(GridEvidence(self.toggle_ms, "island_toggle", "last_toggle_timestamp", source=self.name))
        return out

    def _use_system_status(self, reply: Any, values: dict[str, float]) -> None:
        if getattr(self.client, "reports_toggle_time", True):  # a cloud mode's is made up: no evidence of anything
            self.toggle_ms = parse_toggle_time(reply)
        if self._capacity is None or time.monotonic() - self._capacity_read >= CAPACITY_EVERY_S:
            self._use_capacity(parse_capacity(reply), parse_rated_capacity(reply), values)

    @property
    def status(self) -> dict[str, Any]:
        """What the hub's health shows beside the readings: the figures on the gateway's own scale (the
        readings are on the Tesla app's, the bottom 5 % hidden), the operation mode, the newest fault-log entries
        (with their kind and magnitude; each a grid disturbance unless islanding evidence stands beside it) and the
        island toggle time."""
        op = self.operation
        return {
            "battery_soc_gateway_percent": None if self._soc is None else round(self._soc, 1),
            "operation_mode": None if op is None else op.mode,
            "backup_reserve_gateway_percent": None if op is None else round(op.backup_reserve_percent, 1),
            "grid_faults": [
                {"time": datetime.fromtimestamp(f.time_ms / 1000, UTC).isoformat(), "name": f.name, "kind": f.kind,
                 "value": f.value, "unit": f.unit}
                for f in self.faults[-5:]
            ],
            "island_toggle_time": None if self.toggle_ms is None else datetime.fromtimestamp(
                self.toggle_ms / 1000, UTC).isoformat(),
        }

    def _use_capacity(self, capacity_wh: float, rated_wh: float | None, values: dict[str, float]) -> None:
        """The pack's full energy (and its rating), in the reading of the poll that read them: their time says
        when they were read (the hub keeps the newest of each quantity)."""
        self._capacity = capacity_wh
        self._capacity_read = time.monotonic()
        values["battery_capacity"] = capacity_wh
        if rated_wh is not None:
            values["battery_capacity_rated"] = rated_wh

    @staticmethod
    def _use_soe(gateway_percent: float, values: dict[str, float]) -> None:
        """The level on the Tesla app's scale (``battery_soc``), and the gateway's own figure beside it."""
        values["battery_soc_gateway"] = gateway_percent
        values["battery_soc"] = app_soc(gateway_percent)

    def _use_operation(self, operation: Operation, values: dict[str, float]) -> None:
        self.operation = operation
        values["battery_reserve"] = app_soc(operation.backup_reserve_percent)

    async def poll(self) -> Reading:
        return await asyncio.to_thread(self.read)

    async def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            await asyncio.to_thread(close)

    def battery_control(self) -> BatteryControl:
        """The gateway's backup reserve and operation mode, set through its client."""
        from homegrid.devices.powerwall.control import PowerwallControl

        # the gateway polls through any GatewayClient (tests give it fakes); control needs the full PowerwallClient
        return PowerwallControl(self.client)  # type: ignore[arg-type]
