"""The hub's configuration: one TOML file, validated at start with errors naming the bad key.

Lookup order for the file: ``--config``, else ``$XDG_CONFIG_HOME/homegrid/homegrid.toml``
(``~/.config/homegrid/homegrid.toml``); a missing file means all defaults.
Data directory: ``--data-dir``, else ``HOMEGRID_DATA_DIR``, else ``[store] data_dir``,
else ``$XDG_DATA_HOME/homegrid`` (``~/.local/share/homegrid``).

Each table of the file is a frozen pydantic model: its fields are the keys, with their types, defaults
and descriptions (the README's reference is written from them by ``scripts/config-reference``).
Models are checked when they are made, from the file or in code; a wrong value raises
:class:`ConfigError` naming its key (``mqtt.meters[0].topic is required``), never pydantic's own error.
"""

from __future__ import annotations

import contextvars
import os
import re
import tomllib
import types
import zoneinfo
from pathlib import Path
from typing import Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from homegrid.glossary import ALL_NAMES, MAX_POWER_W

__all__ = [
    "SECRET_KEYS",
    "AccountingConfig",
    "Config",
    "ConfigError",
    "MeterTopicConfig",
    "MqttConfig",
    "MqttSecrets",
    "OutagesConfig",
    "PowerwallConfig",
    "PowerwallSecrets",
    "Secrets",
    "SecretsTable",
    "ServerConfig",
    "SiteConfig",
    "StoreConfig",
    "StormConfig",
    "Table",
    "TeslaConfig",
    "TeslaSecrets",
    "VirtualHomeConfig",
    "default_config_path",
    "describe_error",
    "load_config",
    "resolve_data_dir",
]


class ConfigError(ValueError):
    """The configuration file is wrong; the message names the key."""


#: How deep in the making of nested tables this thread is.
_making: contextvars.ContextVar[int] = contextvars.ContextVar("homegrid_config_making", default=0)


class Table(BaseModel):
    """A table of the file: frozen, strict (TOML's types, an integer where a number goes), no unknown keys.
    Arrays are ``tuple`` fields with ``strict=False`` (strict takes no list for a tuple; their items stay strict).

    A validator's ``ValueError`` says what follows the key's dotted name: ``"= 70000: not a TCP port"`` or
    ``"must be > 0"`` (a space between), ``".host is required"`` or ``": a, b must be >= 0"`` (none);
    :func:`describe_error` puts the key in front.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    #: Where the table sits in the file, for the errors of one made in code (``Config`` itself: "").
    key: ClassVar[str] = ""

    def __init__(self, /, **data: Any) -> None:
        # pydantic makes a table inside another through its __init__ too: only the outermost tells the error,
        # with the whole key path
        depth = _making.get()
        token = _making.set(depth + 1)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            if depth:
                raise
            raise ConfigError(describe_error(exc, type(self), data)) from None
        finally:
            _making.reset(token)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked as a new one is (pydantic's ``model_copy`` checks nothing)."""
        return type(self)(**{**dict(self), **changes})


class SiteConfig(Table):
    """The home: where it is, its time zone and units."""

    key: ClassVar[str] = "site"

    name: str = Field(default="Virtual home", description="shown in the dashboard and the MQTT topics")
    latitude: float = Field(default=36.1,
                            description="[degrees] (Greensboro, NC: the site of pvlib's TMY3 file 723170TYA.CSV)")
    longitude: float = Field(default=-79.95, description="[degrees]")
    timezone: str = Field(default="America/New_York", description="IANA name; local days, reports and display use it")
    max_power_w: float = Field(default=MAX_POWER_W,
                               description="no power of the home beyond this, either way [W]: refused at the door "
                                           "(within 1e3..1e9)")
    units: str = Field(default="",
                       description="\"metric\" | \"imperial\" (the car's range in miles); \"\": by the zone's country "
                                   "(zone.tab: US and its territories, GB, LR, MM are imperial)")

    @field_validator("units")
    @classmethod
    def _units(cls, value: str) -> str:
        if value not in ("", "metric", "imperial"):
            raise ValueError(f"= {value!r}: must be \"metric\" or \"imperial\" (or left out: by the site's time "
                             "zone's country)")
        return value

    @field_validator("max_power_w")
    @classmethod
    def _max_power(cls, value: float) -> float:
        if not 1_000 <= value <= 1.0e9:
            raise ValueError(f"= {value:g}: must be within 1e3..1e9 W (default 1e6, 1 MW)")
        return value

    @field_validator("latitude")
    @classmethod
    def _latitude(cls, value: float) -> float:
        if not -90 <= value <= 90:
            raise ValueError(f"= {value}: must be within -90..90 degrees")
        return value

    @field_validator("longitude")
    @classmethod
    def _longitude(cls, value: float) -> float:
        if not -180 <= value <= 180:
            raise ValueError(f"= {value}: must be within -180..180 degrees")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"= {value!r}: not an IANA time zone name") from None
        return value

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def unit_system(self) -> str:
        """``metric`` or ``imperial``: ``units`` when set, else by the country of the site's zone."""
        from homegrid.units import units_for_zone

        return self.units or units_for_zone(self.timezone)


class StoreConfig(Table):
    """Where and how readings are kept."""

    key: ClassVar[str] = "store"

    data_dir: str | None = Field(default=None,
                                 description="the store's folder (unset: $HOMEGRID_DATA_DIR, else "
                                             "$XDG_DATA_HOME/homegrid); --data-dir wins", examples=["/srv/homegrid"])
    raw_retention_days: float = Field(default=90.0,
                                      description="raw readings; rollups (minute, hour, day) are kept forever")
    flush_interval_s: float = Field(default=0.05,
                                    description="readings are committed as they arrive, at most this often")

    @field_validator("raw_retention_days")
    @classmethod
    def _retention(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be > 0")
        return value

    @field_validator("flush_interval_s")
    @classmethod
    def _flush(cls, value: float) -> float:
        if not 0 < value <= 60:
            raise ValueError("must be within (0, 60] seconds")
        return value


class AccountingConfig(Table):
    """Energy from power samples."""

    key: ClassVar[str] = "accounting"

    max_gap_s: float = Field(default=300.0, description="power samples further apart than this are not bridged")

    @field_validator("max_gap_s")
    @classmethod
    def _gap(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be > 0")
        return value


class ServerConfig(Table):
    """The dashboard and API."""

    key: ClassVar[str] = "server"

    host: str = Field(default="127.0.0.1",
                      description="beyond loopback (0.0.0.0, a LAN address), reads need the owner's key too")
    port: int = Field(default=8080, description="--port wins")
    poll_interval_s: float = Field(default=5.0, description="how often each device is read (within 0.1..3600)")
    backfill_days: float = Field(default=7.0, description="virtual home history written on first start")
    allowed_hosts: tuple[str, ...] = Field(default=(),
                                           description="more names the hub is reached by (its addresses, hostname, "
                                                       "localhost: always)", strict=False)
    open_reads: bool = Field(default=False,
                             description="true: beyond loopback, anyone on the LAN may read (changes still need the "
                                         "key)")
    cors_origins: tuple[str, ...] = Field(default=(),
                                          description="other web origins allowed to call the API, e.g. "
                                                      '["http://homeassistant.local:8123"]; none: no CORS headers at '
                                                      "all", strict=False)
    offline_after_s: float = Field(default=300.0,
                                   description="a device whose polls fail this long is offline (stale sooner: see "
                                               "/api/v1/live)")

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"= {value}: not a TCP port")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
                raise ValueError(f": {name!r} is not a host name (no scheme, port or wildcard)")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not re.fullmatch(r"https?://[^/\s*]+", origin):
                raise ValueError(f": {origin!r} is not an origin (scheme://host[:port], no path, no wildcard)")
        return value

    @field_validator("poll_interval_s")
    @classmethod
    def _poll(cls, value: float) -> float:
        if not 0.1 <= value <= 3600:
            raise ValueError("must be within 0.1..3600 s")
        return value

    @field_validator("backfill_days")
    @classmethod
    def _backfill(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be >= 0")
        return value

    @field_validator("offline_after_s")
    @classmethod
    def _offline(cls, value: float) -> float:
        if not 1 <= value <= 86_400:
            raise ValueError("must be within 1..86400 s (default 300)")
        return value


class VirtualHomeConfig(Table):
    """The simulated home, run when no device is configured."""

    key: ClassVar[str] = "virtual"

    weather: str = Field(default="723170TYA.CSV", description="a typical-year (TMY) file shipped with pvlib")
    solar_kw: float = Field(default=7.6, description="DC nameplate [kW]")
    tilt: float = Field(default=25.0, description="[degrees]")
    azimuth: float = Field(default=180.0, description="[degrees from north]")
    load_kwh_per_year: float = Field(default=10_000.0, description="scales the measured household profile")
    battery_kwh: float = Field(default=13.5, description="usable")
    battery_kw: float = Field(default=5.0, description="continuous")
    battery_round_trip: float = Field(default=0.90, description="within (0, 1]")
    backup_reserve_percent: float = Field(default=20.0, description="kept for outages")
    battery_grid_charge_kw: float = Field(default=1.8,
                                          description="refills the reserve from the grid (after an outage, in storm "
                                                      "mode), as a Powerwall does; 0: never")
    ev_pack_kwh: float = Field(default=75.0, description="the car's battery")
    ev_charger_kw: float = Field(default=11.5, description="the home charger")
    ev_commute_km: float = Field(default=50.0, description="round trip, weekdays")
    ev_kwh_per_km: float = Field(default=0.16, description="the car's consumption")
    ev_charge_limit_percent: float = Field(default=90.0, description="the car charges to this")
    outages_per_year: float = Field(default=12.0, description="grid outages drawn at random; 0: none")
    demo_outages: bool = Field(default=True,
                               description="a sustained outage and a blip every 3.5 days (0 outages_per_year: none)")
    seed: int = Field(default=2017, description="the random draws' seed")

    @field_validator("solar_kw", "battery_kwh", "battery_kw", "ev_pack_kwh", "ev_charger_kw")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be > 0")
        return value

    @field_validator("battery_round_trip")
    @classmethod
    def _round_trip(cls, value: float) -> float:
        if not 0 < value <= 1:
            raise ValueError("must be within (0, 1]")
        return value

    @field_validator("backup_reserve_percent")
    @classmethod
    def _reserve(cls, value: float) -> float:
        if not 0 <= value <= 100:
            raise ValueError("must be within 0..100")
        return value

    @field_validator("ev_charge_limit_percent")
    @classmethod
    def _limit(cls, value: float) -> float:
        if not 0 < value <= 100:
            raise ValueError("must be within (0, 100]")
        return value

    @model_validator(mode="after")
    def _together(self) -> Self:
        if self.outages_per_year < 0 or self.load_kwh_per_year < 0 or self.ev_commute_km < 0:
            raise ValueError(": outages_per_year, load_kwh_per_year, ev_commute_km must be >= 0")
        if not 0 <= self.battery_grid_charge_kw <= self.battery_kw:
            raise ValueError(".battery_grid_charge_kw must be within 0..battery_kw")
        return self


POWERWALL_MODES = ("local", "cloud", "fleetapi")
TESLA_APIS = ("fleet", "teslemetry", "tessie")
TESLA_REGIONS = ("na", "eu", "cn")


def _interval(value: float) -> float:
    if not 0.1 <= value <= 3600:
        raise ValueError(f"= {value}: must be within 0.1..3600 s")
    return value


def _timeout(value: float) -> float:
    if not 0.1 <= value <= 120:
        raise ValueError(f"= {value}: must be within 0.1..120 s")
    return value


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"= {value!r}: expected one of {', '.join(choices)}")
    return value


def _http_url(value: str) -> str:
    if value and not value.startswith(("https://", "http://")):
        raise ValueError(f"= {value!r}: must be an http(s) URL")
    return value


class PowerwallConfig(Table):
    """A Tesla Powerwall gateway, read through pypowerwall; its password goes in the credentials file."""

    key: ClassVar[str] = "powerwall"

    host: str = Field(default="",
                      description="the gateway's address on the LAN, HOST or HOST:PORT (needed in local mode, e.g. "
                                  "192.168.91.1)")
    email: str = Field(default="", description="local mode: any address; cloud and fleetapi modes: the Tesla account")
    mode: str = Field(default="local", description="local | cloud | fleetapi (pypowerwall's cloud modes; email needed)")
    poll_interval_s: float = Field(default=5.0, description="within 0.1..3600")
    timeout_s: float = Field(default=5.0, description="within 0.1..120")
    site_id: str = Field(default="", description="cloud modes with several sites")

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        return _one_of(value, POWERWALL_MODES)

    @field_validator("poll_interval_s")
    @classmethod
    def _poll(cls, value: float) -> float:
        return _interval(value)

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, value: float) -> float:
        return _timeout(value)

    @model_validator(mode="after")
    def _account(self) -> Self:
        if self.mode == "local" and not self.host.strip():
            raise ValueError(".host is required in local mode (the gateway's address, e.g. 192.168.91.1)")
        if self.mode != "local" and not self.email.strip():
            raise ValueError(f".email is required in {self.mode} mode (the Tesla account)")
        return self


class TeslaConfig(Table):
    """A Tesla car, read through the Fleet API (or Teslemetry, Tessie); its tokens go in the credentials file."""

    key: ClassVar[str] = "tesla"

    vin: str = Field(default="", description="the car's vehicle identification number (needed)", validate_default=True)
    api: str = Field(default="fleet", description="fleet | teslemetry | tessie")
    region: str = Field(default="na", description="fleet: na | eu | cn")
    client_id: str = Field(default="", description="fleet: your app's client id, to renew the access token")
    location: bool = Field(default=True, description="read the car's location (needed to tell whether it is at home)")
    server: str = Field(default="", description="another base URL for the API (a proxy); empty: the vendor's own")
    home_radius_m: float = Field(default=100.0,
                                 description='"at home" within this distance of [site] latitude/longitude')
    poll_interval_s: float = Field(default=60.0,
                                   description="while awake and idle; 30 s while charging, never wakes a sleeping car")
    timeout_s: float = Field(default=20.0, description="within 0.1..120")

    @field_validator("vin")
    @classmethod
    def _vin(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is required (the car's vehicle identification number)")
        return value

    @field_validator("api")
    @classmethod
    def _api(cls, value: str) -> str:
        return _one_of(value, TESLA_APIS)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return _one_of(value, TESLA_REGIONS)

    @field_validator("server")
    @classmethod
    def _server(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("home_radius_m")
    @classmethod
    def _radius(cls, value: float) -> float:
        if not 0 < value <= 100_000:
            raise ValueError(f"= {value}: must be within (0, 100000] m")
        return value

    @field_validator("poll_interval_s")
    @classmethod
    def _poll(cls, value: float) -> float:
        return _interval(value)

    @field_validator("timeout_s")
    @classmethod
    def _timeout(cls, value: float) -> float:
        return _timeout(value)


class MeterTopicConfig(Table):
    """One value read from MQTT: a topic, a dotted JSON path in its payload (none: a bare number), a scale."""

    key: ClassVar[str] = "mqtt.meters[]"

    topic: str = Field(default="", description="e.g. Tasmota's tele/meter/SENSOR (needed)", validate_default=True)
    name: str = Field(default="",
                      description="the glossary name it feeds, e.g. grid_power (needed)", validate_default=True)
    path: str = Field(default="",
                      description="a dotted path to the value in a JSON payload, e.g. ENERGY.Power; empty: the "
                                  "payload is a bare number")
    scale: float = Field(default=1.0, description="the value times this is in the glossary's unit")
    time_path: str = Field(default="",
                           description="a dotted path to the value's own time in the payload (epoch s or ISO 8601); "
                                       "empty: when it arrives")

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is required")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value not in ALL_NAMES:
            raise ValueError(f"= {value!r}: not a glossary name; known: {', '.join(ALL_NAMES)}")
        return value

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        if value == 0 or value != value:
            raise ValueError(f"= {value}: must be a non-zero number")
        return value


class MqttConfig(Table):
    """An MQTT broker: homegrid publishes its live values there (with Home Assistant discovery)
    and reads the ``meters`` from it. The password goes in the credentials file."""

    key: ClassVar[str] = "mqtt"

    host: str = Field(default="127.0.0.1", description="the broker")
    port: int = Field(default=1883, description="the broker's port")
    username: str = Field(default="", description="empty: none (MQTT sends no password alone)")
    client_id: str = Field(default="homegrid", description="the MQTT client id")
    publish: bool = Field(default=True, description="publish the live values, with Home Assistant discovery")
    topic_prefix: str = Field(default="homegrid", description="<topic_prefix>/<site>/state ...")
    discovery_prefix: str = Field(default="homeassistant", description="Home Assistant's discovery prefix")
    stale_after_s: float = Field(default=600.0,
                                 description="a meter with no message for this long is failing (Tasmota reports every "
                                             "300 s)")
    meters: tuple[MeterTopicConfig, ...] = Field(default=(), description="[[mqtt.meters]] tables", strict=False)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is required")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"= {value}: not a TCP port")
        return value

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or any(c in value for c in "+#") or value.startswith("/") or value.endswith("/"):
            raise ValueError(f"= {value!r}: must be a plain topic without wildcards or edge '/'")
        return value

    @field_validator("stale_after_s")
    @classmethod
    def _stale(cls, value: float) -> float:
        return _interval(value)


class OutagesConfig(Table):
    """How interruptions are told apart and who hears about them."""

    key: ClassVar[str] = "outages"

    merge_gap_s: float = Field(default=60.0,
                               description="interruptions closer than this are one event (a recloser's repeated shots)")
    notify_command: str = Field(default="",
                                description="run at start and end; the event as JSON on stdin "
                                            "(HOMEGRID_EVENT=started|ended)")
    notify_url: str = Field(default="", description="POSTed the event as JSON")
    notify_mqtt: bool = Field(default=True,
                              description="publish <topic_prefix>/<site>/event/outage_started|outage_ended when "
                                          "[mqtt] is configured")

    @field_validator("merge_gap_s")
    @classmethod
    def _merge(cls, value: float) -> float:
        if not 0 <= value <= 3600:
            raise ValueError(f"= {value}: must be within 0..3600 s")
        return value

    @field_validator("notify_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)


STORM_EVENTS: tuple[str, ...] = (
    "Hurricane Warning", "Hurricane Watch", "Tropical Storm Warning", "Tropical Storm Watch",
    "Storm Surge Warning", "Extreme Wind Warning", "Tornado Warning", "Tornado Watch",
    "Severe Thunderstorm Warning", "Severe Thunderstorm Watch", "Winter Storm Warning", "Ice Storm Warning",
    "Blizzard Warning", "High Wind Warning",
)
#: CAP severities from least to most severe (the NWS alert feed's words).
CAP_SEVERITIES: tuple[str, ...] = ("Unknown", "Minor", "Moderate", "Severe", "Extreme")


class StormConfig(Table):
    """Storm mode: raise the backup reserve ahead of severe weather (US NWS alerts), restore it after."""

    key: ClassVar[str] = "storm"

    enabled: bool = Field(default=False, description="opt in: it writes to the battery")
    source: str = Field(default="",
                        description="empty: api.weather.gov alerts for [site] latitude/longitude; or a URL, file:// "
                                    "or a path")
    user_agent: str = Field(default="homegrid-storm-watch",
                            description='api.weather.gov asks for one with a contact, e.g. "homegrid-storm-watch '
                                        '(you@example.com)"')
    interval_s: float = Field(default=300.0, description="how often the alerts are read (within 60..3600)")
    reserve_percent: float = Field(default=100.0, description="the backup reserve while a storm is near")
    events: tuple[str, ...] = Field(default=STORM_EVENTS,
                                    description="alert events that qualify whatever their severity (case-insensitive)",
                                    strict=False)
    min_severity: str = Field(default="Severe",
                              description='alerts at least this severe qualify whatever their event; "" for the '
                                          "listed events only")
    lead_h: float = Field(default=24.0, description="an alert qualifies once its hazard begins within this time [h]")
    hold_h: float = Field(default=2.0, description="storm mode stays on this long after the last alert ended [h]")
    settle_s: float = Field(default=300.0,
                            description="after a write, how long a reserve that reads differently is taken for a slow "
                                        "or capped device, not the owner's hand [s]")

    @field_validator("interval_s")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 60 <= value <= 3600:
            raise ValueError(f"= {value}: must be within 60..3600 s")
        return value

    @field_validator("reserve_percent")
    @classmethod
    def _reserve(cls, value: float) -> float:
        if not 0 <= value <= 100:
            raise ValueError(f"= {value}: must be within 0..100")
        return value

    @field_validator("min_severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        if value not in ("", *CAP_SEVERITIES):
            raise ValueError(f"= {value!r}: expected \"\" or one of {CAP_SEVERITIES}")
        return value

    @field_validator("lead_h", "hold_h", "settle_s")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must be >= 0")
        return value


class Config(Table):
    """The whole file: a table per section; the device sections are None when absent."""

    site: SiteConfig = Field(default_factory=SiteConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    accounting: AccountingConfig = Field(default_factory=AccountingConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    virtual: VirtualHomeConfig = Field(default_factory=VirtualHomeConfig)
    powerwall: PowerwallConfig | None = None
    tesla: TeslaConfig | None = None
    mqtt: MqttConfig | None = None
    outages: OutagesConfig = Field(default_factory=OutagesConfig)
    storm: StormConfig = Field(default_factory=StormConfig)
    source: Path | None = Field(default=None, exclude=True)  # the file it was read from; not a section

    @property
    def has_devices(self) -> bool:
        """Whether a real device is configured (otherwise the hub runs the virtual home)."""
        return self.powerwall is not None or self.tesla is not None or bool(self.mqtt and self.mqtt.meters)


#: The sections of the file, in order.
SECTIONS: tuple[str, ...] = tuple(name for name in Config.model_fields if name != "source")


class SecretsTable(BaseModel):
    """A table of the credentials file: strings only, no unknown keys. Not a :class:`Table`: its errors are
    pydantic's own, which ``homegrid.credentials`` words without ever showing a value."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class PowerwallSecrets(SecretsTable):
    """The gateway's secrets."""

    password: str = Field(default="", description="the gateway's customer password")
    gw_pwd: str = Field(default="",
                        description="the gateway's own Wi-Fi password, for pypowerwall's TEDAPI (unused by homegrid "
                                    "so far)")


class TeslaSecrets(SecretsTable):
    """The car's tokens; renewed ones are written back."""

    access_token: str = Field(default="", description="the API's access token")
    refresh_token: str = Field(default="", description="fleet: renews the access token")


class MqttSecrets(SecretsTable):
    """The broker's password (with [mqtt] username)."""

    password: str = Field(default="", description="the broker's password for [mqtt] username")


class Secrets(SecretsTable):
    """The credentials file (owner-only): a table of strings per device section."""

    powerwall: PowerwallSecrets | None = None
    tesla: TeslaSecrets | None = None
    mqtt: MqttSecrets | None = None


#: Keys that belong in the credentials file (owner-only), never in the config, per section.
SECRET_KEYS: dict[str, tuple[str, ...]] = {
    name: tuple(_model.model_fields)
    for name, field in Secrets.model_fields.items()
    for _model in get_args(field.annotation) if isinstance(_model, type) and issubclass(_model, SecretsTable)
}


def _table(annotation: Any) -> type[Table] | None:
    """The model of a field that is a table (or an optional one)."""
    if isinstance(annotation, type) and issubclass(annotation, Table):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        return next((t for a in get_args(annotation) if (t := _table(a)) is not None), None)
    return None


def _rows(annotation: Any) -> type[Table] | None:
    """The model of a field that is an array of tables (``tuple[Model, ...]``)."""
    if get_origin(annotation) is tuple:
        return _table(get_args(annotation)[0])
    return None


_EXPECTED: dict[Any, str] = {
    float: "a number", int: "an integer", bool: "true or false", str: "a string", str | None: "a string",
    tuple[str, ...]: "a list of strings",
}


def describe_error(exc: ValidationError, root: type[Table], data: Any) -> str:
    """Today's words for pydantic's first error, the key named by its dotted path (``mqtt.meters[0].topic``).

    A wrong type or an unknown key is told before a wrong value (so a file is read before it is judged).
    """
    error = sorted(exc.errors(), key=lambda e: e["type"] == "value_error")[0]
    return _describe(error, root, data)


def _describe(error: ErrorDetails, root: type[Table], data: Any) -> str:
    key, value = root.key, data
    model: type[Table] | None = root
    field: FieldInfo | None = None
    for step in error["loc"]:
        if isinstance(step, int):
            rows = _rows(field.annotation) if field is not None else None
            if rows is None:  # an item of a list of strings: the list is the value told
                break
            key, model, field = f"{key}[{step}]", rows, None
            value = value[step] if isinstance(value, list | tuple) and step < len(value) else None
            continue
        assert model is not None
        key = f"{key}.{step}" if key else str(step)
        value = value.get(step) if isinstance(value, dict) else getattr(value, str(step), None)
        field = model.model_fields.get(str(step))
        if field is None:
            break
        model = _table(field.annotation)
    kind = error["type"]
    if kind == "extra_forbidden":
        if model is Config:
            return f"unknown section [{key}]; known: {', '.join(SECTIONS)}"
        section, _, name = key.rpartition(".")
        if name in SECRET_KEYS.get(section, ()) and model in (PowerwallConfig, TeslaConfig, MqttConfig):
            return (f"{key}: secrets do not go in the config file; put it under [{section}] in the credentials file "
                    "(credentials.toml beside the config, chmod 600)")
        known = model.model_fields if model is not None else {}
        return f"{key}: unknown key; known keys: {', '.join(known)}"
    if kind == "value_error":
        text = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{key}{text}" if text[:1] in (".", ":") else f"{key} {text}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"[{key}] must be a table"
    if field is not None and _rows(field.annotation) is not None:
        return f"{key} must be an array of tables ([[{key}]])"
    expected = _EXPECTED.get(field.annotation if field is not None else None)
    if expected is None:
        return f"{key}: {error['msg']}"
    return f"{key} = {value!r}: expected {expected}"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "homegrid" / "homegrid.toml"


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the config; ``path=None`` uses the default path if it exists."""
    explicit = path is not None
    p = Path(path) if path is not None else default_config_path()
    if not p.exists():
        if explicit:
            raise ConfigError(f"config file {p} does not exist")
        return Config()
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(f"{p}: unknown section [{key}]; known: {', '.join(SECTIONS)}")
    try:
        return Config(**raw, source=p)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def resolve_data_dir(config: Config, override: str | Path | None = None) -> Path:
    """Where the store lives, by the documented order of precedence."""
    for candidate in (override, os.environ.get("HOMEGRID_DATA_DIR"), config.store.data_dir):
        if candidate:
            return Path(candidate).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "homegrid"
