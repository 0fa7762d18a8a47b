"""The car's charging set through tesla-fleet-api (a :class:`~homegrid.devices.control.CarControl`).

The planner starts and stops the car's charging and sets its current and charge limit with the Fleet API's vehicle
commands, as Home Assistant's ``tesla_fleet`` and ``teslemetry`` integrations and evcc's Tesla vehicle do:

- ``set_charge_limit`` (``percent``, 50..100), ``set_charging_amps`` (``charging_amps``), then ``charge_start`` or
  ``charge_stop``; each answers ``{"response": {"result": bool, "reason": str}}``. A refusal that means "already
  so" (``is_charging``, ``not_charging``, ``already_set``, ``complete``: the car is at its limit) is not an error.
- Commands never wake the car (an asleep car answers HTTP 408): the planner only changes a car that is awake,
  as it is while plugged in and charging or just plugged in; otherwise the command fails and is logged, and the
  next step tries again.
- Cars built from 2021 (and all Model 3/Y) accept Fleet API commands only signed with the Vehicle Command
  Protocol (a key paired with the car); :class:`~homegrid.devices.tesla.client.FleetApiClient` sends unsigned
  commands, which those cars refuse. Teslemetry signs for its users, so its client works with every car. Tessie's
  client has other command names and is not driven.
- What the car reports back (:meth:`TeslaCarControl.car_settings`) comes from ``vehicle_data``'s ``charge_state``:
  ``charging_state`` ("Charging" or not), ``charge_current_request`` [A] and ``charge_limit_soc`` [%].
"""

from __future__ import annotations

from typing import Any, Protocol

from homegrid.devices.base import DeviceError
from homegrid.devices.control import CarCommand, CarSettings

__all__ = ["ALREADY", "TeslaCarControl", "car_settings_of"]

#: Refusals that mean the car already is as asked.
ALREADY = frozenset({"is_charging", "not_charging", "already_set", "complete"})


class _CommandClient(Protocol):
    async def command(self, name: str, **kwargs: Any) -> dict[str, Any]: ...

    async def vehicle_data(self) -> dict[str, Any]: ...


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def car_settings_of(reply: dict[str, Any]) -> CarSettings:
    """The charging switch, amps [A] and limit [%] of a ``vehicle_data`` reply (wrapped in ``response`` or bare)."""
    body = reply.get("response", reply)
    state = body.get("charge_state") if isinstance(body, dict) else None
    if not isinstance(state, dict):
        raise DeviceError("vehicle_data has no charge_state")
    charging = state.get("charging_state")
    return CarSettings(None if not isinstance(charging, str) else charging == "Charging",
                       _int(state.get("charge_current_request")), _int(state.get("charge_limit_soc")))


class TeslaCarControl:
    """Start and stop a Tesla's charging, set its amps and limit.

    Parameters
    ----------
    client : FleetApiClient or TeslemetryClient
        The same client the :class:`~homegrid.devices.tesla.adapter.TeslaVehicle` polls.
    """

    def __init__(self, client: _CommandClient) -> None:
        self.client = client

    async def _send(self, name: str, **kwargs: Any) -> None:
        try:
            reply = await self.client.command(name, **kwargs)
        except Exception as exc:  # TeslaApiError and what a transport raises
            raise DeviceError(str(exc)) from exc
        body = reply.get("response", reply)
        result = body.get("result") if isinstance(body, dict) else None
        reason = str(body.get("reason") or "") if isinstance(body, dict) else ""
        if result is True or reason in ALREADY:
            return
        raise DeviceError(f"the car refused {name}: {reason or 'no reason given'}")

    async def apply(self, command: CarCommand) -> None:
        """The limit, the amps, then start or stop; :class:`DeviceError` at the first refusal."""
        if command.limit_percent is not None:
            await self._send("set_charge_limit", percent=command.limit_percent)
        if command.amps is not None and command.charging:
            await self._send("set_charging_amps", charging_amps=command.amps)
        await self._send("charge_start" if command.charging else "charge_stop")

    async def car_settings(self) -> CarSettings:
        """From ``vehicle_data`` (never wakes the car)."""
        try:
            reply = await self.client.vehicle_data()
        except Exception as exc:
            raise DeviceError(str(exc)) from exc
        return car_settings_of(reply)
