"""The hub's configuration: one TOML file, validated at start with errors naming the bad key.

Lookup order for the file: ``--config``, else ``$XDG_CONFIG_HOME/homegrid/homegrid.toml``
(``~/.config/homegrid/homegrid.toml``); a missing file means all defaults.
Data directory: ``--data-dir``, else ``HOMEGRID_DATA_DIR``, else ``[store] data_dir``,
else ``$XDG_DATA_HOME/homegrid`` (``~/.local/share/homegrid``).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homegrid.glossary import MAX_POWER_W

__all__ = [
    "SECRET_KEYS",
    "AccountingConfig",
    "Config",
    "ConfigError",
    "MeterTopicConfig",
    "MqttConfig",
    "OutagesConfig",
    "PowerwallConfig",
    "ServerConfig",
    "SiteConfig",
    "StoreConfig",
    "StormConfig",
    "TeslaConfig",
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
    max_power_w: float = MAX_POWER_W  # the physical bound on any power of the home, either sign [W]
    units: str = ""  # "metric" or "imperial" (miles for the car's range); empty: by the site's country (its zone)

    def check(self) -> None:
        if self.units not in ("", "metric", "imperial"):
            raise ConfigError(f"site.units = {self.units!r}: must be \"metric\" or \"imperial\" (or left out: by "
                              "the site's time zone's country)")
        if not 1_000 <= self.max_power_w <= 1.0e9:
            raise ConfigError(f"site.max_power_w = {self.max_power_w:g}: must be within 1e3..1e9 W (default 1e6, 1 MW)")
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

    @property
    def unit_system(self) -> str:
        """``metric`` or ``imperial``: ``units`` when set, else by the country of the site's zone."""
        from homegrid.units import units_for_zone

        return self.units or units_for_zone(self.timezone)


@dataclass(frozen=True)
class StoreConfig:
    data_dir: str | None = None
    raw_retention_days: float = 90.0  # rollups are kept forever
    flush_interval_s: float = 0.05  # readings are committed as they come, at most this often

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
    allowed_hosts: tuple[str, ...] = ()  # more names the hub is reached by (besides its addresses and hostname)
    open_reads: bool = False  # beyond loopback, reads need no credential (anyone on the LAN may look)
    cors_origins: tuple[str, ...] = ()  # other web origins allowed to call the API (none: no CORS at all)
    offline_after_s: float = 300.0  # a device whose polls fail this long is offline (homegrid.hub.liveness)

    def check(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"server.port = {self.port}: not a TCP port")
        for name in self.allowed_hosts:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
                raise ConfigError(f"server.allowed_hosts: {name!r} is not a host name (no scheme, port or wildcard)")
        for origin in self.cors_origins:
            if not re.fullmatch(r"https?://[^/\s*]+", origin):
                raise ConfigError(f"server.cors_origins: {origin!r} is not an origin (scheme://host[:port], no path, "
                                  "no wildcard)")
        if not 0.1 <= self.poll_interval_s <= 3600:
            raise ConfigError("server.poll_interval_s must be within 0.1..3600 s")
        if self.backfill_days < 0:
            raise ConfigError("server.backfill_days must be >= 0")
        if not 1 <= self.offline_after_s <= 86_400:
            raise ConfigError("server.offline_after_s must be within 1..86400 s (default 300)")


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
    battery_grid_charge_kw: float = 1.8  # refilling the reserve from the grid, as a Powerwall does; 0: never
    ev_pack_kwh: float = 75.0
    ev_charger_kw: float = 11.5
    ev_commute_km: float = 50.0  # round trip, weekdays
    ev_kwh_per_km: float = 0.16
    ev_charge_limit_percent: float = 90.0
    outages_per_year: float = 12.0
    demo_outages: bool = True  # a sustained outage and a blip every 3.5 days (0 outages_per_year: none)
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
        if not 0 <= self.battery_grid_charge_kw <= self.battery_kw:
            raise ConfigError("virtual.battery_grid_charge_kw must be within 0..battery_kw")


#: Keys that belong in the credentials file (owner-only), never in the config, per section.
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    "powerwall": ("password", "gw_pwd"),
    "tesla": ("access_token", "refresh_token"),
    "mqtt": ("password",),
}

POWERWALL_MODES = ("local", "cloud", "fleetapi")
TESLA_APIS = ("fleet", "teslemetry", "tessie")
TESLA_REGIONS = ("na", "eu", "cn")


def _check_interval(key: str, value: float) -> None:
    if not 0.1 <= value <= 3600:
        raise ConfigError(f"{key} = {value}: must be within 0.1..3600 s")


@dataclass(frozen=True)
class PowerwallConfig:
    """A Tesla Powerwall gateway read through pypowerwall; the password is in the credentials file."""

    host: str = ""  # the gateway's address on the LAN, HOST or HOST:PORT
    email: str = ""  # local mode: any address; cloud and fleetapi modes: the Tesla account
    mode: str = "local"  # local | cloud | fleetapi
    poll_interval_s: float = 5.0
    timeout_s: float = 5.0
    site_id: str = ""  # cloud modes with several sites

    def check(self) -> None:
        if self.mode not in POWERWALL_MODES:
            raise ConfigError(f"powerwall.mode = {self.mode!r}: expected one of {', '.join(POWERWALL_MODES)}")
        if self.mode == "local" and not self.host.strip():
            raise ConfigError("powerwall.host is required in local mode (the gateway's address, e.g. 192.168.91.1)")
        if self.mode != "local" and not self.email.strip():
            raise ConfigError(f"powerwall.email is required in {self.mode} mode (the Tesla account)")
        _check_interval("powerwall.poll_interval_s", self.poll_interval_s)
        if not 0.1 <= self.timeout_s <= 120:
            raise ConfigError(f"powerwall.timeout_s = {self.timeout_s}: must be within 0.1..120 s")


@dataclass(frozen=True)
class TeslaConfig:
    """A Tesla car read through the Fleet API (or Teslemetry / Tessie); tokens are in the credentials file."""

    vin: str = ""
    api: str = "fleet"  # fleet | teslemetry | tessie
    region: str = "na"  # fleet: na | eu | cn
    client_id: str = ""  # fleet: the app's client id, needed to renew the access token
    location: bool = True  # read the car's location (needed to tell whether it is at home)
    server: str = ""  # another base URL for the API (a proxy); empty: the vendor's own
    home_radius_m: float = 100.0  # the car is at home within this distance of the site
    poll_interval_s: float = 60.0  # while the car is awake and idle; charging and sleep have their own pace
    timeout_s: float = 20.0

    def check(self) -> None:
        if not self.vin.strip():
            raise ConfigError("tesla.vin is required (the car's vehicle identification number)")
        if self.api not in TESLA_APIS:
            raise ConfigError(f"tesla.api = {self.api!r}: expected one of {', '.join(TESLA_APIS)}")
        if self.region not in TESLA_REGIONS:
            raise ConfigError(f"tesla.region = {self.region!r}: expected one of {', '.join(TESLA_REGIONS)}")
        if self.server and not self.server.startswith(("https://", "http://")):
            raise ConfigError(f"tesla.server = {self.server!r}: must be an http(s) URL")
        if not 0 < self.home_radius_m <= 100_000:
            raise ConfigError(f"tesla.home_radius_m = {self.home_radius_m}: must be within (0, 100000] m")
        _check_interval("tesla.poll_interval_s", self.poll_interval_s)
        if not 0.1 <= self.timeout_s <= 120:
            raise ConfigError(f"tesla.timeout_s = {self.timeout_s}: must be within 0.1..120 s")


@dataclass(frozen=True)
class MeterTopicConfig:
    """One value read from MQTT: a topic, a dotted JSON path in its payload (none: a bare number), a scale."""

    topic: str = ""
    name: str = ""  # the glossary name it feeds
    path: str = ""
    scale: float = 1.0
    time_path: str = ""  # a dotted path to the value's own time in the payload (epoch s or ISO 8601)

    def check(self, key: str) -> None:
        from homegrid.glossary import ALL_NAMES

        if not self.topic.strip():
            raise ConfigError(f"{key}.topic is required")
        if self.name not in ALL_NAMES:
            raise ConfigError(f"{key}.name = {self.name!r}: not a glossary name; known: {', '.join(ALL_NAMES)}")
        if self.scale == 0 or self.scale != self.scale:
            raise ConfigError(f"{key}.scale = {self.scale}: must be a non-zero number")


@dataclass(frozen=True)
class MqttConfig:
    """An MQTT broker: homegrid publishes its live values there (with Home Assistant discovery)
    and reads the ``meters`` from it. The password is in the credentials file."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    client_id: str = "homegrid"
    publish: bool = True
    topic_prefix: str = "homegrid"
    discovery_prefix: str = "homeassistant"
    stale_after_s: float = 600.0  # a meter with no message for this long is failing (Tasmota reports every 300 s)
    meters: tuple[MeterTopicConfig, ...] = ()

    def check(self) -> None:
        if not self.host.strip():
            raise ConfigError("mqtt.host is required")
        if not 0 < self.port < 65536:
            raise ConfigError(f"mqtt.port = {self.port}: not a TCP port")
        for prefix in ("topic_prefix", "discovery_prefix"):
            value = getattr(self, prefix)
            if not value or any(c in value for c in "+#") or value.startswith("/") or value.endswith("/"):
                raise ConfigError(f"mqtt.{prefix} = {value!r}: must be a plain topic without wildcards or edge '/'")
        _check_interval("mqtt.stale_after_s", self.stale_after_s)
        for i, meter in enumerate(self.meters):
            meter.check(f"mqtt.meters[{i}]")


@dataclass(frozen=True)
class OutagesConfig:
    """How interruptions are told apart and who hears about them."""

    merge_gap_s: float = 60.0  # interruptions closer than this are one event (a recloser's repeated shots)
    notify_command: str = ""  # run on start and end, the event as JSON on stdin (HOMEGRID_EVENT=started|ended)
    notify_url: str = ""  # POSTed the event as JSON
    notify_mqtt: bool = True  # publish <topic_prefix>/<site>/event/outage_started|outage_ended when [mqtt] is set

    def check(self) -> None:
        if not 0 <= self.merge_gap_s <= 3600:
            raise ConfigError(f"outages.merge_gap_s = {self.merge_gap_s}: must be within 0..3600 s")
        if self.notify_url and not self.notify_url.startswith(("http://", "https://")):
            raise ConfigError(f"outages.notify_url = {self.notify_url!r}: must be an http(s) URL")


STORM_EVENTS: tuple[str, ...] = (
    "Hurricane Warning", "Hurricane Watch", "Tropical Storm Warning", "Tropical Storm Watch",
    "Storm Surge Warning", "Extreme Wind Warning", "Tornado Warning", "Tornado Watch",
    "Severe Thunderstorm Warning", "Severe Thunderstorm Watch", "Winter Storm Warning", "Ice Storm Warning",
    "Blizzard Warning", "High Wind Warning",
)
#: CAP severities from least to most severe (the NWS alert feed's words).
CAP_SEVERITIES: tuple[str, ...] = ("Unknown", "Minor", "Moderate", "Severe", "Extreme")


@dataclass(frozen=True)
class StormConfig:
    """Storm mode: raise the backup reserve ahead of severe weather (US NWS alerts), restore it after."""

    enabled: bool = False  # opt in: it writes to the battery
    source: str = ""  # empty: api.weather.gov alerts for [site] latitude/longitude; or a URL, file:// or a path
    user_agent: str = "homegrid-storm-watch"  # api.weather.gov asks for one with a contact
    interval_s: float = 300.0
    reserve_percent: float = 100.0
    events: tuple[str, ...] = STORM_EVENTS
    min_severity: str = "Severe"  # or "" for the listed events only
    lead_h: float = 24.0
    hold_h: float = 2.0
    settle_s: float = 300.0

    def check(self) -> None:
        if not 60 <= self.interval_s <= 3600:
            raise ConfigError(f"storm.interval_s = {self.interval_s}: must be within 60..3600 s")
        if not 0 <= self.reserve_percent <= 100:
            raise ConfigError(f"storm.reserve_percent = {self.reserve_percent}: must be within 0..100")
        if self.min_severity not in ("", *CAP_SEVERITIES):
            raise ConfigError(f"storm.min_severity = {self.min_severity!r}: expected \"\" or one of {CAP_SEVERITIES}")
        for key in ("lead_h", "hold_h", "settle_s"):
            if getattr(self, key) < 0:
                raise ConfigError(f"storm.{key} must be >= 0")


@dataclass(frozen=True)
class Config:
    site: SiteConfig = field(default_factory=SiteConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    accounting: AccountingConfig = field(default_factory=AccountingConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    virtual: VirtualHomeConfig = field(default_factory=VirtualHomeConfig)
    powerwall: PowerwallConfig | None = None
    tesla: TeslaConfig | None = None
    mqtt: MqttConfig | None = None
    outages: OutagesConfig = field(default_factory=OutagesConfig)
    storm: StormConfig = field(default_factory=StormConfig)
    source: Path | None = None

    def check(self) -> Config:
        for section in (self.site, self.store, self.accounting, self.server, self.virtual,
                        self.powerwall, self.tesla, self.mqtt, self.outages, self.storm):
            if section is not None:
                section.check()
        return self

    @property
    def has_devices(self) -> bool:
        """Whether a real device is configured (otherwise the hub runs the virtual home)."""
        return self.powerwall is not None or self.tesla is not None or bool(self.mqtt and self.mqtt.meters)


_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "store": StoreConfig,
    "accounting": AccountingConfig,
    "server": ServerConfig,
    "virtual": VirtualHomeConfig,
    "powerwall": PowerwallConfig,
    "tesla": TeslaConfig,
    "mqtt": MqttConfig,
    "outages": OutagesConfig,
    "storm": StormConfig,
}


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SECRET_KEYS.get(name, ()):
            raise ConfigError(
                f"{name}.{key}: secrets do not go in the config file; put it under [{name}] in the "
                "credentials file (credentials.toml beside the config, chmod 600)"
            )
        f = fields.get(key)
        if f is None:
            raise ConfigError(f"{name}.{key}: unknown key; known keys: {', '.join(fields)}")
        if name == "mqtt" and key == "meters":
            if not isinstance(value, list):
                raise ConfigError("mqtt.meters must be an array of tables ([[mqtt.meters]])")
            kwargs[key] = tuple(_build_section(f"mqtt.meters[{i}]", MeterTopicConfig, m) for i, m in enumerate(value))
            continue
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
    if text.startswith("tuple[str"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key} = {value!r}: expected a list of strings")
        return tuple(value)
    if text == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r}: expected true or false")
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
