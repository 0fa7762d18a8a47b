"""The Powerwall's backup reserve and operation mode, read and set through pypowerwall
(a :class:`~homegrid.devices.control.BatteryControl`, used by storm mode and the owner's settings).

What pypowerwall 0.22.2 does
----------------------------
- ``get_reserve(scale=True, force=False)`` reads ``/api/operation``'s
  ``backup_reserve_percent``, which is on the **gateway's scale** in every mode (the cloud
  modes convert Tesla's app value to it: ``gateway = app * 0.95 + 5``); with ``scale=True``
  (its default) it returns the **app's scale** ``(gateway - 5) / 0.95``. None when the
  gateway has no battery or did not answer.
- ``set_reserve(level)`` is ``set_operation(level=level)``: it refuses levels outside 0..100
  (logs and returns None) and POSTs ``/api/operation``. **Which scale it takes depends on the
  mode**: the local backend posts the number verbatim to the gateway, whose
  ``/api/operation`` is on the gateway scale (pypowerwall back-fills omitted fields from
  ``get_reserve(scale=False)`` for this reason, and adds ``real_mode`` since the local
  endpoint overwrites everything); the cloud (Tesla owner API, ``BACKUP_RESERVE`` command,
  truncated to an int) and Fleet API (``/backup``) backends send it to Tesla, which takes the
  **app scale**; the TEDAPI v1r backend converts from the app scale (``raw = app * 0.95 + 5``).
  So the same call means different reserves in different modes: this module converts.
- **Local mode (the gateway's LAN API with the customer password) cannot set the reserve on
  current firmware**: the gateway answers the POST with 403 ("User does not have adequate
  access rights"; writes need the installer login), pypowerwall logs it and returns None.
  Its authors say as much ("Likely won't work in the local mode", pull request #78). The
  hybrid local+TEDAPI mode (``gw_pwd`` with host 192.168.91.1) still posts through the local
  API. Only the cloud and Fleet API modes (and TEDAPI v1r with a registered RSA key, which
  homegrid does not configure; the WiFi TEDAPI "full" mode refuses writes: "requires v1r
  transport") can change it. Older firmware that accepted the POST also wanted
  ``/api/config/completed`` to apply it; pypowerwall does not send that.
- **Tesla caps the reserve through the cloud**: pypowerwall's own CLI warns that cloud and
  Fleet API may cap it at 80 % (firmware 25.x restricts 81-99 % in some modes; 100 % is
  reported to work). Tesla applies the command asynchronously, so a read right after may
  still show the old value: in cloud modes we trust the reply and storm mode's settle time
  deals with the rest.
- ``set_mode(mode)`` is ``set_operation(mode=mode)`` and goes the same ways (local: the
  reserve back-filled on the gateway scale; cloud: ``OPERATION_MODE``; Fleet API:
  ``/operation``), with the same local-mode refusal.
- Errors are log lines and None, never exceptions (except a failed login); we capture
  pypowerwall's WARNING+ records during the call and put them in the :class:`DeviceError`.

The planner's modes
-------------------
:meth:`PowerwallControl.apply` writes a :class:`~homegrid.devices.control.BatteryCommand` as
:func:`~homegrid.devices.control.powerwall_settings` maps it (see :mod:`homegrid.devices.control` for the mapping
and its limits): the operation mode, the reserve, then grid charging (``set_grid_charging``) and the export rule
(``set_grid_export``), each only when it differs from what the Powerwall reports, so a step that keeps its mode
costs one read. pypowerwall's cloud and Fleet API modes read the last two from the site's configuration
(``components.disallow_charge_from_grid_with_solar_installed``, ``customer_preferred_export_rule``,
``non_export_configured``: "never"); local mode cannot read or write them.

Scales here
-----------
:class:`PowerwallControl` speaks the glossary's ``battery_reserve`` scale (the Tesla app's, as
``battery_soc``) both ways: it reads the gateway's figure and converts it, posts the gateway's
scale in local mode and whole app percents in the cloud modes. Round trips are exact in local
mode and to the app's whole-percent resolution in the cloud modes.
"""

from __future__ import annotations

import asyncio

from homegrid.devices.base import DeviceError
from homegrid.devices.control import (
    EXPORT_RULES,
    OPERATION_MODES,
    BatteryCommand,
    PowerwallSettings,
    check_mode,
    check_reserve,
    powerwall_settings,
)
from homegrid.devices.powerwall.client import PowerwallClient
from homegrid.devices.powerwall.replies import ReplyError, app_soc, gateway_soc, parse_operation

__all__ = ["PowerwallControl", "app_to_gateway", "gateway_to_app", "grid_rules_of_site_info"]


#: The local API refuses reserve writes on current firmware; this says what to do instead.
LOCAL_HINT = ("the gateway's local API lets the customer login read the reserve and mode but not change them on "
              "current firmware (writes need the installer login); set [powerwall] mode = \"cloud\" or "
              "\"fleetapi\" for homegrid to change them (storm mode, settings)")


#: A reserve on the gateway's scale as the Tesla app shows it [%]: the same 5 %-hidden scale as the charge level
#: (the rule lives in :mod:`homegrid.devices.powerwall.replies`).
gateway_to_app = app_soc
#: A reserve on the Tesla app's scale on the gateway's scale [%].
app_to_gateway = gateway_soc


def grid_rules_of_site_info(reply: object) -> tuple[bool | None, str | None]:
    """Grid charging and the export rule of a Fleet API ``site_info`` reply (wrapped in ``response`` or bare), as
    pypowerwall's cloud modes read them; None where the reply does not say."""
    body = reply.get("response", reply) if isinstance(reply, dict) else None
    components = body.get("components") if isinstance(body, dict) else None
    if not isinstance(components, dict):
        return None, None
    charging = not bool(components.get("disallow_charge_from_grid_with_solar_installed", False))
    if components.get("non_export_configured"):
        return charging, "never"
    rule = components.get("customer_preferred_export_rule") or "battery_ok"
    return charging, rule if rule in EXPORT_RULES else None


class PowerwallControl:
    """The backup reserve and operation mode of a Powerwall, through the hub's :class:`PowerwallClient`.

    Parameters
    ----------
    client : PowerwallClient
        The same client the :class:`~homegrid.devices.powerwall.adapter.PowerwallGateway` polls
        (``gateway.client``); calls are serialised with the polls by its lock.
    verify : bool
        Local mode: read the reserve back after a write and fail when it did not take.
    """

    def __init__(self, client: PowerwallClient, *, verify: bool = True) -> None:
        self.client = client
        self.verify = verify

    @property
    def mode(self) -> str:
        return getattr(self.client, "mode", "local")

    @property
    def can_control(self) -> bool:
        """Whether this mode can change the reserve: cloud and Fleet API yes; local mode no (see the module notes).

        Local mode is still tried by :meth:`set_backup_reserve` (an old firmware may allow it).
        """
        return self.mode in ("cloud", "fleetapi")

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(OPERATION_MODES)

    @property
    def why_not(self) -> str | None:
        """Why changes will be refused, or None."""
        return None if self.can_control else LOCAL_HINT

    def _where(self) -> str:
        where = getattr(self.client, "_where", None)
        return where() if callable(where) else f"powerwall ({self.mode})"

    def _redact(self, text: str) -> str:
        redact = getattr(self.client, "_redact", None)
        return redact(text) if callable(redact) else text

    @staticmethod
    def _reserve_of(reply: object) -> float | None:
        """The reserve of an ``/api/operation`` reply on the app's scale [%]."""
        if isinstance(reply, dict) and reply.get("backup_reserve_percent") is None:
            return None
        try:
            return gateway_to_app(parse_operation(reply).backup_reserve_percent)
        except ReplyError as exc:
            raise DeviceError(str(exc)) from exc

    @staticmethod
    def _mode_of(reply: object) -> str | None:
        if isinstance(reply, dict) and reply.get("real_mode") is None:
            return None
        try:
            return parse_operation(reply).mode
        except ReplyError as exc:
            raise DeviceError(str(exc)) from exc

    def read(self) -> float | None:
        """The backup reserve now, app scale [%]; None for a gateway without a battery (blocking)."""
        return self._reserve_of(self.client.poll("/api/operation"))

    def write(self, percent: float) -> None:
        """Set the backup reserve, app scale [%] (blocking); raise :class:`DeviceError` when it did not take."""
        percent = check_reserve(percent)
        local = self.mode == "local"
        # local: the gateway's own scale; cloud and Fleet API: Tesla's app scale, whole percents
        level: float = app_to_gateway(percent) if local else float(round(percent))
        result, said = self.client.call(lambda pw: pw.set_reserve(level))
        why = self._redact(" | ".join(said))[:400]
        if result is None:
            hint = f"; {LOCAL_HINT}" if local else ""
            raise DeviceError(f"{self._where()} did not set the backup reserve to {percent:.1f} %"
                              f"{' (gateway ' + format(level, '.1f') + ' %)' if local else ''}: "
                              f"{why or 'no reply'}{hint}")
        if isinstance(result, dict):
            if result.get("error") or result.get("ERROR"):
                raise DeviceError(self._redact(f"{self._where()} refused the backup reserve "
                                               f"{percent:.1f} %: {result.get('error') or result.get('ERROR')}"))
            outcome = result.get("set_backup_reserve_percent")
            if isinstance(outcome, dict) and outcome.get("result") in (None, False, "BatteryNotFound"):
                raise DeviceError(f"{self._where()} refused the backup reserve {percent:.1f} %: "
                                  f"{outcome.get('result')!r}" + (f" ({why})" if why else ""))
        if local and self.verify:
            now = self.read()
            if now is None or abs(now - percent) > 0.5:
                raise DeviceError(f"{self._where()} accepted the backup reserve {percent:.1f} % but reports "
                                  f"{'none' if now is None else format(now, '.1f') + ' %'}")

    def read_mode(self) -> str | None:
        """The operation mode now (``real_mode``), None when the gateway has none (blocking)."""
        return self._mode_of(self.client.poll("/api/operation"))

    def read_settings(self) -> tuple[float | None, str | None]:
        """The backup reserve [%] and operation mode from one read of ``/api/operation`` (blocking)."""
        reply = self.client.poll("/api/operation")
        return self._reserve_of(reply), self._mode_of(reply)

    def write_mode(self, mode: str) -> None:
        """Set the operation mode (blocking); raise :class:`DeviceError` when it did not take."""
        mode = check_mode(mode, self.modes)
        local = self.mode == "local"
        result, said = self.client.call(lambda pw: pw.set_mode(mode))
        why = self._redact(" | ".join(said))[:400]
        detail = (result.get("error") or result.get("ERROR")) if isinstance(result, dict) else None
        if result is None or detail:
            raise DeviceError(self._redact(f"{self._where()} did not set the operation mode to {mode}: "
                                           f"{detail or why or 'no reply'}") + (f"; {LOCAL_HINT}" if local else ""))
        if local and self.verify:
            now = self.read_mode()
            if now != mode:
                raise DeviceError(f"{self._where()} accepted the operation mode {mode} but reports {now}")

    async def settings(self) -> tuple[float | None, str | None]:
        """The backup reserve [%] (app scale) and the operation mode, read together."""
        return await asyncio.to_thread(self.read_settings)

    async def operation_mode(self) -> str | None:
        """The operation mode now (:data:`~homegrid.devices.control.OPERATION_MODES`)."""
        return await asyncio.to_thread(self.read_mode)

    async def set_operation_mode(self, mode: str) -> None:
        """Set the operation mode; raise :class:`DeviceError` when the mode or gateway refuses."""
        await asyncio.to_thread(self.write_mode, mode)

    async def backup_reserve(self) -> float | None:
        """The backup reserve now, app scale [%] (the glossary's ``battery_reserve``)."""
        return await asyncio.to_thread(self.read)

    async def set_backup_reserve(self, percent: float) -> None:
        """Set the backup reserve, app scale [%]; raise :class:`DeviceError` when the mode or gateway refuses."""
        await asyncio.to_thread(self.write, percent)

    # -- the planner's modes (homegrid.devices.control.ModeControl) ----------------------------------------------

    def _check_written(self, what: str, result: object, said: list[str]) -> None:
        why = self._redact(" | ".join(said))[:400]
        detail = (result.get("error") or result.get("ERROR")) if isinstance(result, dict) else None
        if result is None or result is False or detail:
            raise DeviceError(self._redact(f"{self._where()} did not set {what}: {detail or why or 'no reply'}")
                              + (f"; {LOCAL_HINT}" if self.mode == "local" else ""))

    def read_grid_rules(self) -> tuple[bool | None, str | None]:
        """Grid charging and the export rule (cloud and Fleet API modes; None, None in local mode) (blocking)."""
        if self.mode == "local":
            return None, None
        (charging, rule), _ = self.client.call(lambda pw: (pw.get_grid_charging(), pw.get_grid_export()))
        return (None if charging is None else bool(charging)), (rule if rule in EXPORT_RULES else None)

    def read_plan_settings(self) -> PowerwallSettings:
        """The mode, reserve [%], grid charging and export rule now (blocking)."""
        reserve, mode = self.read_settings()
        charging, rule = self.read_grid_rules()
        if reserve is None or mode is None:
            raise DeviceError(f"{self._where()} reports no battery reserve or operation mode")
        return PowerwallSettings(mode, reserve, charging, rule)

    def write_plan(self, command: BatteryCommand) -> PowerwallSettings:
        """Write what :func:`powerwall_settings` gives for ``command``, only what differs (blocking)."""
        want = powerwall_settings(command)
        if not self.can_control:
            raise DeviceError(f"{self._where()} cannot carry out the planner's modes: {LOCAL_HINT}")
        now = self.read_plan_settings()
        if now.operation_mode != want.operation_mode:
            self.write_mode(want.operation_mode)
        if abs(now.reserve_percent - want.reserve_percent) > 0.5:
            self.write(want.reserve_percent)
        if want.grid_charging is not None and now.grid_charging != want.grid_charging:
            result, said = self.client.call(lambda pw: pw.set_grid_charging(want.grid_charging))
            self._check_written(f"grid charging {'on' if want.grid_charging else 'off'}", result, said)
        if want.export_rule is not None and now.export_rule != want.export_rule:
            result, said = self.client.call(lambda pw: pw.set_grid_export(want.export_rule))
            self._check_written(f"the export rule {want.export_rule}", result, said)
        return want

    async def apply(self, command: BatteryCommand) -> PowerwallSettings:
        """Carry out one of the planner's modes; :class:`DeviceError` when a write is refused."""
        return await asyncio.to_thread(self.write_plan, command)

    async def settings_now(self) -> PowerwallSettings:
        """The Powerwall's mode, reserve [%], grid charging and export rule now."""
        return await asyncio.to_thread(self.read_plan_settings)
