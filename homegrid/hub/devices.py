"""The devices a config asks for, built with their secrets; and one trial poll of each.

Used by ``homegrid serve`` (the hub polls what :func:`build_devices` returns; its MQTT publisher is built
in :mod:`homegrid.api.serve`) and ``homegrid devices test`` (:func:`try_devices`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from homegrid.config import Config, PowerwallConfig
from homegrid.credentials import Credentials
from homegrid.devices import Device
from homegrid.devices.control import BatteryControl, ModeControl
from homegrid.glossary import display_value
from homegrid.hub.poller import EXPECTED_FAILURES, describe
from homegrid.readings import Reading

if TYPE_CHECKING:
    from homegrid.devices.mqtt import MqttBroker

__all__ = [
    "DeviceTrial", "build_battery_control", "build_devices", "build_executor", "build_powerwall", "build_storm",
    "mqtt_broker", "try_devices",
]

log = logging.getLogger(__name__)


def build_powerwall(
    pw: PowerwallConfig, password: str, timezone: str, auth_dir: Path | None,
    clock: Callable[[], datetime] | None = None,
) -> Device:
    """A Powerwall gateway through pypowerwall (connecting lazily: a gateway that is down at start
    is retried by the hub's back-off)."""
    from homegrid.devices.powerwall import PowerwallGateway
    from homegrid.devices.powerwall.client import connect_gateway

    client = connect_gateway(
        pw.host, password, pw.email, timezone, mode=pw.mode, timeout_s=pw.timeout_s,
        auth_dir=None if auth_dir is None else auth_dir / "powerwall", site_id=pw.site_id or None,
    )
    return PowerwallGateway(client, clock=clock)


def build_devices(
    config: Config, credentials: Credentials, data_dir: Path | None, clock: Callable[[], datetime] | None = None
) -> list[tuple[Device, float]]:
    """Every configured device with the pace the hub polls it at [s]; empty when none is configured.

    Raises
    ------
    CredentialsError
        A device's secret is missing from the credentials file.
    """
    devices: list[tuple[Device, float]] = []
    if config.powerwall is not None:
        pw = config.powerwall
        password = credentials.get("powerwall", "password")
        if pw.mode == "local":
            password = credentials.require("powerwall", "password")
        devices.append((
            build_powerwall(pw, password.reveal() if password else "", config.site.timezone, data_dir, clock),
            pw.poll_interval_s,
        ))
    if config.tesla is not None:
        from homegrid.hub.car import build_vehicle

        devices.append(build_vehicle(config, credentials, clock))
    if config.mqtt is not None and config.mqtt.meters:
        from homegrid.devices.mqtt import MeterTopic, MqttMeter

        m = config.mqtt
        meter = MqttMeter(
            [MeterTopic(t.topic, t.name, t.path or None, t.scale, t.time_path or None) for t in m.meters],
            mqtt_broker(config, credentials), client_id=f"{m.client_id}-meters", stale_after_s=m.stale_after_s,
            clock=clock,
        )
        devices.append((meter, config.server.poll_interval_s))
    return devices


def mqtt_broker(config: Config, credentials: Credentials) -> MqttBroker:
    """The broker of ``[mqtt]`` with the owner's credentials: the one place its settings are read, for the
    meters and the publisher alike."""
    from homegrid.devices.mqtt import MqttBroker

    m = config.mqtt
    if m is None:
        raise ValueError("no [mqtt] section in the config")
    password = credentials.get("mqtt", "password") if m.username else None  # MQTT 3.1.1: no password alone
    return MqttBroker(m.host, m.port, m.username or None, password.reveal() if password else None)


def build_battery_control(device: Device) -> BatteryControl | None:
    """What the hub may change on the battery of ``device`` (reserve, operation mode), or None."""
    control = getattr(device, "battery_control", None)  # a device that is not a Device subclass has none
    return None if control is None else control()


def build_storm(config: Config, control: BatteryControl | None, data_dir: Path,
                clock: Callable[[], datetime] | None = None) -> Any:
    """Storm mode acting through ``control`` when ``[storm] enabled``, else None."""
    if not config.storm.enabled:
        return None
    from homegrid.devices.weather import AlertSource, alerts_url
    from homegrid.planner import StormPolicy, StormWatch

    st = config.storm
    if control is None:
        log.warning("storm mode: the device has no backup reserve to set")
        return None
    if not control.can_control:
        log.warning("storm mode: %s", control.why_not)
    source = AlertSource(st.source or alerts_url(config.site.latitude, config.site.longitude), st.user_agent)
    policy = StormPolicy(reserve_percent=st.reserve_percent, events=st.events, min_severity=st.min_severity or None,
                         lead_h=st.lead_h, hold_h=st.hold_h, settle_s=st.settle_s)
    return StormWatch(control, Path(data_dir) / "storm.json", policy, source, clock=clock)


def build_executor(config: Config, control: object, devices: Iterable[object], publisher: Any = None,
                   storm: Any = None, clock: Callable[[], datetime] | None = None,
                   data_dir: Path | None = None) -> Any:
    """The planner's :class:`~homegrid.planner.execute.Executor` (the hub builds it when the planner is on: see
    :attr:`~homegrid.hub.service.Hub.planner_on`).

    It drives ``control`` when that carries out the planner's modes (``apply`` and ``settings_now``: a Powerwall in
    a cloud mode, the virtual home) and the first device with a ``car_control()`` (the virtual car, a Tesla);
    it stands aside while storm mode is on. Its state is kept in ``data_dir``'s ``planner.json``.
    """
    pl = config.planner
    from homegrid.planner.execute import Executor, ExecutorPolicy

    drives = callable(getattr(control, "apply", None)) and callable(getattr(control, "settings_now", None))
    battery = cast("ModeControl", control) if drives else None
    car = None
    for device in devices:
        make = getattr(device, "car_control", None)
        if callable(make):
            car = make()
            break
    if battery is None and car is None:
        log.warning("planner: no battery or car the planner can drive")
        return None
    policy = ExecutorPolicy(dry_run=pl.dry_run, keep=pl.log_size, settle_s=pl.settle_s, volts=pl.car_volts,
                            min_amps=pl.car_min_amps, max_amps=pl.car_max_amps, idle_export_rule=pl.idle_export_rule)

    def standby() -> str | None:
        status = None if storm is None else storm.status
        return str(status.get("reason") or "storm mode is on") if status and status.get("storm") else None

    now = clock or (lambda: datetime.now(UTC))
    return Executor(battery, car, policy=policy, publisher=publisher, standby=standby,
                    clock=lambda: round(now().timestamp() * 1000),
                    state_path=None if data_dir is None else Path(data_dir) / "planner.json")


@dataclass
class DeviceTrial:
    """What one trial poll of a device gave."""

    device: str
    ok: bool
    seconds: float
    time: str | None = None
    readings: dict[str, Any] | None = None
    problems: dict[str, str] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device, "ok": self.ok, "seconds": round(self.seconds, 3)}
        if self.ok:
            out["time"] = self.time
            out["readings"] = self.readings
            out["grid_status"] = (self.readings or {}).get("grid_status")
            out["problems"] = self.problems or {}
        else:
            out["error"] = self.error
        return out


async def _try(device: Device) -> DeviceTrial:
    name = getattr(device, "name", type(device).__name__)
    started = time.perf_counter()
    try:
        raw = await device.poll()
        reading, bad = Reading.checked(raw.time, raw.values)
    except Exception as exc:  # whatever the poll raised, a parser's bug included, is the trial's answer
        error = str(exc) if isinstance(exc, (*EXPECTED_FAILURES, ValueError)) else describe(exc)
        return DeviceTrial(name, False, time.perf_counter() - started, error=error)
    finally:
        await device.close()
    problems = dict(getattr(device, "problems", {}))
    problems.update({k: f"refused: {v}" for k, v in bad.items()})
    readings = {n: display_value(n, v) for n, v in reading.values.items()}
    return DeviceTrial(name, True, time.perf_counter() - started, reading.time.astimezone(UTC).isoformat(),
                       readings, problems)


def try_devices(devices: list[Device]) -> list[DeviceTrial]:
    """Poll each device once (one after the other) and say what it gave."""

    async def run() -> list[DeviceTrial]:
        return [await _try(d) for d in devices]

    return asyncio.run(run())
