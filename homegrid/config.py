"""The hub's configuration: one TOML file, validated at start with errors naming the bad key.

Lookup order for the file: ``--config``, else ``$XDG_CONFIG_HOME/homegrid/homegrid.toml``
(``~/.config/homegrid/homegrid.toml``); a missing file means all defaults.
Data directory: ``--data-dir``, else ``HOMEGRID_DATA_DIR``, else ``[store] data_dir``,
else ``$XDG_DATA_HOME/homegrid`` (``~/.local/share/homegrid``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AccountingConfig",
    "Config",
    "ConfigError",
    "ServerConfig",
    "SiteConfig",
    "StoreConfig",
    "VirtualHomeConfig",
    "default_config_path",
    "load_config",
    "resolve_data_dir",
]


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the key."""


@dataclass(frozen=True)
class SiteConfig:
    name: str = "Virtual home"
    latitude: float = 36.1  # Greensboro, NC: the site of pvlib's TMY3 file 723170TYA.CSV
    longitude: float = -79.95
    timezone: str = "America/New_York"

    def check(self) -> None:
        if not -90 <= self.latitude <= 90:
            raise ConfigError(f"site.latitude = {self.latitude}: must be within -90..90 degrees")
        if not -180 <= self.longitude <= 180:
            raise ConfigError(f"site.longitude = {self.longitude}: must be within -180..180 degrees")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"site.timezone = {self.timezone!r}: not an IANA time zone name") from None

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


@dataclass(frozen=True)
class StoreConfig:
    data_dir: str | None = None
    raw_retention_days: float = 90.0  # rollups are kept forever
    flush_interval_s: float = 1.0

    def check(self) -> None:
        if self.raw_retention_days <= 0:
            raise ConfigError("store.raw_retention_days must be > 0")
        if not 0 < self.flush_interval_s <= 60:
            raise ConfigError("store.flush_interval_s must be within (0, 60] seconds")


@dataclass(frozen=True)
class AccountingConfig:
    max_gap_s: float = 300.0  # power samples further apart than this are not bridged

    def check(self) -> None:
        if self.max_gap_s <= 0:
            raise ConfigError("accounting.max_gap_s must be > 0")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    poll_interval_s: float = 5.0
    backfill_days: float = 7.0

    def check(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"server.port = {self.port}: not a TCP port")
        if not 0.1 <= self.poll_interval_s <= 3600:
            raise ConfigError("server.poll_interval_s must be within 0.1..3600 s")
        if self.backfill_days < 0:
            raise ConfigError("server.backfill_days must be >= 0")


@dataclass(frozen=True)
class VirtualHomeConfig:
    """The simulated site used when no device is configured."""

    weather: str = "723170TYA.CSV"  # a TMY file shipped in pvlib/data
    solar_kw: float = 7.6  # DC nameplate [kW]
    tilt: float = 25.0  # [degrees]
    azimuth: float = 180.0  # [degrees from north]
    load_kwh_per_year: float = 10_000.0  # scales the measured household profile
    battery_kwh: float = 13.5  # usable
    battery_kw: float = 5.0  # continuous
    battery_round_trip: float = 0.90
    backup_reserve_percent: float = 20.0
    ev_pack_kwh: float = 75.0
    ev_charger_kw: float = 11.5
    ev_commute_km: float = 50.0  # round trip, weekdays
    ev_kwh_per_km: float = 0.16
    ev_charge_limit_percent: float = 90.0
    outages_per_year: float = 12.0
    seed: int = 2017

    def check(self) -> None:
        positive = ("solar_kw", "battery_kwh", "battery_kw", "ev_pack_kwh", "ev_charger_kw")
        for key in positive:
            if getattr(self, key) <= 0:
                raise ConfigError(f"virtual.{key} must be > 0")
        if not 0 < self.battery_round_trip <= 1:
            raise ConfigError("virtual.battery_round_trip must be within (0, 1]")
        if not 0 <= self.backup_reserve_percent <= 100:
            raise ConfigError("virtual.backup_reserve_percent must be within 0..100")
        if not 0 < self.ev_charge_limit_percent <= 100:
            raise ConfigError("virtual.ev_charge_limit_percent must be within (0, 100]")
        if self.outages_per_year < 0 or self.load_kwh_per_year < 0 or self.ev_commute_km < 0:
            raise ConfigError("virtual: outages_per_year, load_kwh_per_year, ev_commute_km must be >= 0")


@dataclass(frozen=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    accounting: AccountingConfig = field(default_factory=AccountingConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    virtual: VirtualHomeConfig = field(default_factory=VirtualHomeConfig)
    source: Path | None = None

    def check(self) -> Config:
        for section in (self.site, self.store, self.accounting, self.server, self.virtual):
            section.check()
        return self


_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "store": StoreConfig,
    "accounting": AccountingConfig,
    "server": ServerConfig,
    "virtual": VirtualHomeConfig,
}


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            raise ConfigError(f"{name}.{key}: unknown key; known keys: {', '.join(fields)}")
        kwargs[key] = _coerce(f"{name}.{key}", f.type, value)
    return cls(**kwargs)


def _coerce(key: str, annotation: Any, value: Any) -> Any:
    text = str(annotation)
    if text.startswith("float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {value!r}: expected a number")
        return float(value)
    if text == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r}: expected an integer")
        return value
    if "str" in text:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r}: expected a string")
        return value
    return value


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "homegrid" / "homegrid.toml"


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the config; ``path=None`` uses the default path if it exists."""
    explicit = path is not None
    p = Path(path) if explicit else default_config_path()
    if not p.exists():
        if explicit:
            raise ConfigError(f"config file {p} does not exist")
        return Config().check()
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        cls = _SECTIONS.get(key)
        if cls is None:
            raise ConfigError(f"{p}: unknown section [{key}]; known: {', '.join(_SECTIONS)}")
        try:
            sections[key] = _build_section(key, cls, value)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None
    try:
        return Config(**sections, source=p).check()
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def resolve_data_dir(config: Config, override: str | Path | None = None) -> Path:
    """Where the store lives, by the documented order of precedence."""
    for candidate in (override, os.environ.get("HOMEGRID_DATA_DIR"), config.store.data_dir):
        if candidate:
            return Path(candidate).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "homegrid"
