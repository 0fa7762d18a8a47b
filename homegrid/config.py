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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from homegrid.glossary import ALL_NAMES, MAX_POWER_W

__all__ = [
    "EXPORT_RULES",
    "LIVE_PRICE_SOURCES",
    "SECRET_KEYS",
    "SECTIONS",
    "AccountingConfig",
    "Config",
    "ConfigError",
    "MeterTopicConfig",
    "MqttConfig",
    "MqttSecrets",
    "OutagesConfig",
    "PlannerConfig",
    "PowerwallConfig",
    "PowerwallSecrets",
    "Rule",
    "Secrets",
    "SecretsTable",
    "ServerConfig",
    "SiteConfig",
    "StoreConfig",
    "StormConfig",
    "Table",
    "TariffConfig",
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


class Rule(NamedTuple):
    """A key's own check: ``ok(value)``, else ``told`` (``str.format``-ted with ``value``) follows the key's name:
    ``"= {value}: not a TCP port"`` or ``"must be > 0"`` (after a space), ``": ..."`` (none)."""

    ok: Callable[[Any], bool]
    told: str
    each: bool = False  # an array's: each item is checked and told as ``value``


POSITIVE = Rule(lambda v: v > 0, "must be > 0")
NOT_NEGATIVE = Rule(lambda v: v >= 0, "must be >= 0")
REQUIRED = Rule(lambda v: bool(v.strip()), "is required")
TCP_PORT = Rule(lambda v: 0 < v < 65536, "= {value}: not a TCP port")
INTERVAL = Rule(lambda v: 0.1 <= v <= 3600, "= {value}: must be within 0.1..3600 s")
TIMEOUT = Rule(lambda v: 0.1 <= v <= 120, "= {value}: must be within 0.1..120 s")
HTTP_URL = Rule(lambda v: not v or v.startswith(("https://", "http://")), "= {value!r}: must be an http(s) URL")


def one_of(choices: tuple[str, ...]) -> Rule:
    """The key is one of ``choices``."""
    return Rule(lambda v: v in choices, f"= {{value!r}}: expected one of {', '.join(choices)}")


def _is_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_topic(prefix: str) -> bool:
    return bool(prefix) and not any(c in prefix for c in "+#") and not prefix.startswith("/") \
        and not prefix.endswith("/")


class Table(BaseModel):
    """A table of the file: frozen, strict (TOML's types, an integer where a number goes), no unknown keys.
    Arrays are ``tuple`` fields with ``strict=False`` (strict takes no list for a tuple; their items stay strict).

    Each key's own check is a row of ``rules``; a check of several keys is a ``model_validator`` whose
    ``ValueError`` says what follows the table's name (``".host is required"``). :func:`describe_error` puts the
    key in front.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    #: Where the table sits in the file, for the errors of one made in code (``Config`` itself: "").
    key: ClassVar[str] = ""
    #: The keys' own checks, by key.
    rules: ClassVar[Mapping[str, Rule]] = {}

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

    @field_validator("*")
    @classmethod
    def _rule(cls, value: Any, info: ValidationInfo) -> Any:
        rule = cls.rules.get(info.field_name or "")
        if rule is not None:
            for item in value if rule.each else (value,):
                if not rule.ok(item):
                    raise ValueError(rule.told.format(value=item))
        return value

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked as a new one is (pydantic's ``model_copy`` checks nothing)."""
        return type(self)(**{**dict(self), **changes})


class SiteConfig(Table):
    """The home: where it is, its time zone and units."""

    key: ClassVar[str] = "site"
    rules: ClassVar[Mapping[str, Rule]] = {
        "units": Rule(lambda v: v in ("", "metric", "imperial"), '= {value!r}: must be "metric" or "imperial" (or left '
                      "out: by the site's time zone's country)"),
        "max_power_w": Rule(lambda v: 1_000 <= v <= 1.0e9,
                            "= {value:g}: must be within 1e3..1e9 W (default 1e6, 1 MW)"),
        "latitude": Rule(lambda v: -90 <= v <= 90, "= {value}: must be within -90..90 degrees"),
        "longitude": Rule(lambda v: -180 <= v <= 180, "= {value}: must be within -180..180 degrees"),
        "timezone": Rule(_is_zone, "= {value!r}: not an IANA time zone name"),
    }

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
    rules: ClassVar[Mapping[str, Rule]] = {
        "raw_retention_days": Rule(lambda v: v is None or v > 0, "must be > 0 (leave it out to keep them forever)"),
        "flush_interval_s": Rule(lambda v: 0 < v <= 60, "must be within (0, 60] seconds"),
    }

    data_dir: str | None = Field(default=None,
                                 description="the store's folder (unset: $HOMEGRID_DATA_DIR, else "
                                             "$XDG_DATA_HOME/homegrid); --data-dir wins", examples=["/srv/homegrid"])
    raw_retention_days: float | None = Field(
        default=None, description="raw readings; unset: kept forever (a sealed day of minute readings takes about "
                                  "15 kB); rollups (minute, hour, day) are kept forever", examples=[365])
    flush_interval_s: float = Field(default=0.05,
                                    description="readings are committed as they arrive, at most this often")


class AccountingConfig(Table):
    """Energy from power samples."""

    key: ClassVar[str] = "accounting"
    rules: ClassVar[Mapping[str, Rule]] = {"max_gap_s": POSITIVE}

    max_gap_s: float = Field(default=300.0, description="power samples further apart than this are not bridged")


class ServerConfig(Table):
    """The dashboard and API."""

    key: ClassVar[str] = "server"
    rules: ClassVar[Mapping[str, Rule]] = {
        "port": TCP_PORT,
        "allowed_hosts": Rule(lambda v: re.fullmatch(r"[A-Za-z0-9._-]+", v) is not None,
                              ": {value!r} is not a host name (no scheme, port or wildcard)", each=True),
        "cors_origins": Rule(lambda v: re.fullmatch(r"https?://[^/\s*]+", v) is not None,
                             ": {value!r} is not an origin (scheme://host[:port], no path, no wildcard)", each=True),
        "poll_interval_s": Rule(lambda v: 0.1 <= v <= 3600, "must be within 0.1..3600 s"),
        "backfill_days": NOT_NEGATIVE,
        "offline_after_s": Rule(lambda v: 1 <= v <= 86_400, "must be within 1..86400 s (default 300)"),
    }

    host: str = Field(default="127.0.0.1",
                      description="beyond loopback (0.0.0.0, a LAN address), reads need the owner's key too")
    port: int = Field(default=8080, description="--port wins")
    poll_interval_s: float = Field(default=5.0, description="how often each device is read [s] (within 0.1..3600)")
    backfill_days: float = Field(default=7.0, description="virtual home history written on first start [days]")
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


class VirtualHomeConfig(Table):
    """The simulated home, run when no device is configured."""

    key: ClassVar[str] = "virtual"
    rules: ClassVar[Mapping[str, Rule]] = {
        **dict.fromkeys(("solar_kw", "battery_kwh", "battery_kw", "ev_pack_kwh", "ev_charger_kw"), POSITIVE),
        "battery_round_trip": Rule(lambda v: 0 < v <= 1, "must be within (0, 1]"),
        "backup_reserve_percent": Rule(lambda v: 0 <= v <= 100, "must be within 0..100"),
        "ev_charge_limit_percent": Rule(lambda v: 0 < v <= 100, "must be within (0, 100]"),
    }

    weather: str = Field(default="723170TYA.CSV", description="a typical-year (TMY) file shipped with pvlib")
    solar_kw: float = Field(default=7.6, description="DC nameplate [kW]")
    tilt: float = Field(default=25.0, description="[degrees]")
    azimuth: float = Field(default=180.0, description="[degrees from north]")
    load_kwh_per_year: float = Field(default=10_000.0,
                                     description="the home's use [kWh]; scales the measured household profile")
    battery_kwh: float = Field(default=13.5, description="usable [kWh]")
    battery_kw: float = Field(default=5.0, description="continuous [kW]")
    battery_round_trip: float = Field(default=0.90, description="round-trip efficiency, within (0, 1]")
    backup_reserve_percent: float = Field(default=20.0, description="the battery's share kept for outages [%]")
    battery_grid_charge_kw: float = Field(default=1.8,
                                          description="refills the reserve from the grid (after an outage, in storm "
                                                      "mode), as a Powerwall does [kW]; 0: never")
    ev_pack_kwh: float = Field(default=75.0, description="the car's battery [kWh]")
    ev_charger_kw: float = Field(default=11.5, description="the home charger [kW]")
    ev_commute_km: float = Field(default=50.0, description="round trip, weekdays [km]")
    ev_kwh_per_km: float = Field(default=0.16, description="the car's use [kWh/km]")
    ev_charge_limit_percent: float = Field(default=90.0, description="the car charges to this [%]")
    outages_per_year: float = Field(default=12.0, description="grid outages drawn at random; 0: none")
    demo_outages: bool = Field(default=True,
                               description="a sustained outage and a blip every 3.5 days (0 outages_per_year: none)")
    seed: int = Field(default=2017, description="the random draws' seed")

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


class PowerwallConfig(Table):
    """A Tesla Powerwall gateway, read through pypowerwall; its password goes in the credentials file."""

    key: ClassVar[str] = "powerwall"
    rules: ClassVar[Mapping[str, Rule]] = {
        "mode": one_of(POWERWALL_MODES),
        "poll_interval_s": INTERVAL,
        "timeout_s": TIMEOUT,
    }

    host: str = Field(default="",
                      description="the gateway's address on the LAN, HOST or HOST:PORT (needed in local mode, e.g. "
                                  "192.168.91.1)")
    email: str = Field(default="", description="local mode: any address; cloud and fleetapi modes: the Tesla account")
    mode: str = Field(default="local", description="local | cloud | fleetapi (pypowerwall's cloud modes; email needed)")
    poll_interval_s: float = Field(default=5.0, description="within 0.1..3600")
    timeout_s: float = Field(default=5.0, description="within 0.1..120")
    site_id: str = Field(default="", description="cloud modes with several sites")

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
    rules: ClassVar[Mapping[str, Rule]] = {
        "vin": Rule(REQUIRED.ok, "is required (the car's vehicle identification number)"),
        "api": one_of(TESLA_APIS),
        "region": one_of(TESLA_REGIONS),
        "server": HTTP_URL,
        "home_radius_m": Rule(lambda v: 0 < v <= 100_000, "= {value}: must be within (0, 100000] m"),
        "poll_interval_s": INTERVAL,
        "timeout_s": TIMEOUT,
    }

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


class MeterTopicConfig(Table):
    """One value read from MQTT: a topic, a dotted JSON path in its payload (none: a bare number), a scale."""

    key: ClassVar[str] = "mqtt.meters[]"
    rules: ClassVar[Mapping[str, Rule]] = {
        "topic": REQUIRED,
        "name": Rule(lambda v: v in ALL_NAMES, f"= {{value!r}}: not a glossary name; known: {', '.join(ALL_NAMES)}"),
        "scale": Rule(lambda v: v != 0 and v == v, "= {value}: must be a non-zero number"),
    }

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


class MqttConfig(Table):
    """An MQTT broker: homegrid publishes its live values there (with Home Assistant discovery)
    and reads the ``meters`` from it. The password goes in the credentials file."""

    key: ClassVar[str] = "mqtt"
    rules: ClassVar[Mapping[str, Rule]] = {
        "host": REQUIRED,
        "port": TCP_PORT,
        **dict.fromkeys(("topic_prefix", "discovery_prefix"), Rule(
            _is_topic, "= {value!r}: must be a plain topic without wildcards or edge '/'")),
        "stale_after_s": INTERVAL,
    }

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


class OutagesConfig(Table):
    """How interruptions are told apart and who hears about them."""

    key: ClassVar[str] = "outages"
    rules: ClassVar[Mapping[str, Rule]] = {
        "merge_gap_s": Rule(lambda v: 0 <= v <= 3600, "= {value}: must be within 0..3600 s"),
        "notify_url": HTTP_URL,
    }

    merge_gap_s: float = Field(default=60.0,
                               description="interruptions closer than this are one event (a recloser's repeated shots)")
    notify_command: str = Field(default="",
                                description="run at start and end; the event as JSON on stdin "
                                            "(HOMEGRID_EVENT=started|ended)")
    notify_url: str = Field(default="", description="POSTed the event as JSON")
    notify_mqtt: bool = Field(default=True,
                              description="publish <topic_prefix>/<site>/event/outage_started|outage_ended when "
                                          "[mqtt] is configured")


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
    rules: ClassVar[Mapping[str, Rule]] = {
        "interval_s": Rule(lambda v: 60 <= v <= 3600, "= {value}: must be within 60..3600 s"),
        "reserve_percent": Rule(lambda v: 0 <= v <= 100, "= {value}: must be within 0..100"),
        "min_severity": Rule(lambda v: v in ("", *CAP_SEVERITIES),
                             f'= {{value!r}}: expected "" or one of {CAP_SEVERITIES}'),
        **dict.fromkeys(("lead_h", "hold_h", "settle_s"), NOT_NEGATIVE),
    }

    enabled: bool = Field(default=False, description="opt in: it writes to the battery")
    source: str = Field(default="",
                        description="empty: api.weather.gov alerts for [site] latitude/longitude; or a URL, file:// "
                                    "or a path")
    user_agent: str = Field(default="homegrid-storm-watch",
                            description='api.weather.gov asks for one with a contact, e.g. "homegrid-storm-watch '
                                        '(you@example.com)"')
    interval_s: float = Field(default=300.0, description="how often the alerts are read [s] (within 60..3600)")
    reserve_percent: float = Field(default=100.0, description="the backup reserve while a storm is near [%]")
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


#: The weather forecasts ``[planner] weather`` may name (homegrid.hub.weather_cache.SOURCES' keys), or "none".
WEATHER_SOURCES: tuple[str, ...] = ("open-meteo", "none")


def _hh_mm(value: str) -> bool:
    """A local time of day written ``HH:MM``."""
    parts = value.split(":")
    return (len(parts) == 2 and all(p.isdigit() and len(p) == 2 for p in parts)
            and int(parts[0]) < 24 and int(parts[1]) < 60)


class PlannerConfig(Table):
    """The planner's execution: the plan's modes sent to the battery and the car (issue 14)."""

    key: ClassVar[str] = "planner"
    rules: ClassVar[Mapping[str, Rule]] = {
        "log_size": Rule(lambda v: 1 <= v <= 100_000, "= {value}: must be within 1..100000"),
        "settle_s": NOT_NEGATIVE,
        "car_volts": Rule(lambda v: 100 <= v <= 1000, "= {value}: must be within 100..1000 V"),
        "car_min_amps": Rule(lambda v: 0 <= v <= 80, "= {value}: must be within 0..80 A"),
        "car_max_amps": Rule(lambda v: 1 <= v <= 80, "= {value}: must be within 1..80 A"),
        "idle_export_rule": Rule(lambda v: v in ("pv_only", "never"), '= {value!r}: expected "pv_only" or "never"'),
        "step_min": Rule(lambda v: v in (5, 10, 15, 20, 30, 60), "= {value}: expected 5, 10, 15, 20, 30 or 60"),
        "horizon_h": Rule(lambda v: 1 <= v <= 48, "= {value}: must be within 1..48 h"),
        "history_days": Rule(lambda v: 1 <= v <= 365, "= {value}: must be within 1..365"),
        "car_departure": Rule(_hh_mm, '= {value!r}: expected a local time "HH:MM"'),
        "car_pack_kwh": Rule(lambda v: 0 <= v <= 1000, "= {value}: must be within 0..1000 kWh"),
        "battery_kwh": Rule(lambda v: 0 <= v <= 10_000, "= {value}: must be within 0..10000 kWh"),
        "battery_kw": Rule(lambda v: 0 <= v <= 10_000, "= {value}: must be within 0..10000 kW"),
        "round_trip_percent": Rule(lambda v: 50 <= v <= 100, "= {value}: must be within 50..100 %"),
        "wear_cost_per_kwh": Rule(lambda v: 0 <= v <= 10, "= {value}: must be within 0..10 per kWh"),
        "weather": Rule(lambda v: v in WEATHER_SOURCES, f"= {{value!r}}: expected one of {WEATHER_SOURCES}"),
    }

    enabled: bool | None = Field(default=None, examples=[True],
                                 description="unset: on for the virtual home (it can only move the virtual battery "
                                             "and car), off with a real device configured (opt in: it writes to the "
                                             "battery and the car)")
    dry_run: bool = Field(default=False, description="work out, log and publish the commands without sending them")
    log_size: int = Field(default=200, description="commands kept in memory for the System view and the API")
    settle_s: float = Field(default=300.0,
                            description="after a write, how long settings that read differently are taken for a slow "
                                        "or capping device, not the owner's hand [s]")
    car_volts: float = Field(default=240.0, description="the car charger's voltage, to turn power into amps [V]")
    car_min_amps: int = Field(default=5, description="below this current the car is not charged [A]")
    car_max_amps: int = Field(default=32, description="the most the car is asked to draw [A]")
    idle_export_rule: str = Field(default="pv_only",
                                  description='the Powerwall\'s export rule outside the export mode: "pv_only", or '
                                              '"never" where the utility forbids export')
    step_min: int = Field(default=15, description="the plan's step and how often it is made afresh (MPC) [min]")
    horizon_h: float = Field(default=24.0, description="how far ahead each plan looks [h]")
    history_days: int = Field(default=28, description="days of the store's history the load and solar forecasts "
                                                      "learn from")
    car_departure: str = Field(default="07:00", description="the local time the car leaves by, charged to its "
                                                            "charge limit")
    car_pack_kwh: float = Field(default=0.0, description="the car's battery [kWh]; 0: the virtual car's "
                                                         "(ev_pack_kwh), else 75")
    battery_kwh: float = Field(default=0.0, description="the home battery's usable energy [kWh]; 0: as the "
                                                        "device says, else 13.5")
    battery_kw: float = Field(default=0.0, description="the home battery's power limit [kW]; 0: as the device "
                                                       "says, else 5")
    round_trip_percent: float = Field(default=90.0, description="the home battery's round-trip efficiency [%]")
    wear_cost_per_kwh: float = Field(default=0.0,
                                     description="what each kWh through the battery (in or out) costs its life, in "
                                                 "the tariff's currency: the plan moves energy only for more; 0 by "
                                                 "default (a Powerwall's warranty does not count cycles of solar "
                                                 "self-consumption) [per kWh]")
    weather: str = Field(default="open-meteo",
                         description='the solar forecast\'s weather: "open-meteo" (its hourly forecast for [site] '
                                     "latitude/longitude, fetched hourly by the hub into weather/open-meteo.json in "
                                     "the data dir; no key needed) or \"none\" (the clear sky scaled by the recent "
                                     "days' measured solar)")

    @model_validator(mode="after")
    def _together(self) -> Self:
        if self.car_min_amps > self.car_max_amps:
            raise ValueError(".car_min_amps must be at most car_max_amps")
        return self


#: How export is credited (homegrid.tariffs.model.ExportRule's values; the config does not import tariffs).
EXPORT_RULES: tuple[str, ...] = ("net-metering", "net-billing", "buy-all-sell-all", "none")
#: The live price sources ``[tariff] prices`` may name (homegrid.hub.price_cache.LIVE_SOURCES' keys).
LIVE_PRICE_SOURCES: tuple[str, ...] = ("awattar-de", "awattar-at")


def _price_source(value: str) -> bool:
    """A live source's name, or anything else (a path) that does not look like a mistyped source's name."""
    name = value.strip().lower()
    return name in LIVE_PRICE_SOURCES or not name.startswith("awattar")


class TariffConfig(Table):
    """What energy costs: the tariff file, and export terms that override the tariff's own (the Tariffs section)."""

    key: ClassVar[str] = "tariff"
    rules: ClassVar[Mapping[str, Rule]] = {
        "export": Rule(lambda v: v in ("", *EXPORT_RULES),
                       f'= {{value!r}}: expected "" (the tariff\'s own) or one of {", ".join(EXPORT_RULES)}'),
        "sell_price": Rule(lambda v: v is None or abs(v) < 1e6, "= {value}: must be a price per kWh"),
        "true_up_month": Rule(lambda v: v is None or 1 <= v <= 12, "= {value}: must be a month within 1..12"),
        "true_up_rate": Rule(lambda v: v is None or 0 <= v < 1e6, "= {value}: must be >= 0 per kWh"),
        "prices": Rule(_price_source, f'= {{value!r}}: expected "" (none), {", ".join(LIVE_PRICE_SOURCES)} or '
                                      "the path of a price CSV"),
        "price_adder": Rule(lambda v: abs(v) < 1e6, "= {value}: must be a price per kWh"),
        "price_percent": Rule(lambda v: -100 <= v < 1e4, "= {value}: must be a percentage within -100..10000"),
        "export_price_adder": Rule(lambda v: abs(v) < 1e6, "= {value}: must be a price per kWh"),
        "export_price_percent": Rule(lambda v: -100 <= v < 1e4,
                                     "= {value}: must be a percentage within -100..10000"),
    }

    file: str = Field(default="",
                      description="homegrid's TOML tariff or a URDB JSON record (told apart by content); relative to "
                                  "this file's folder. Empty: the virtual home prices with the shipped PSCo RE-TOU "
                                  "rate; real devices have no tariff (no money figures) until one is set; "
                                  '"none": no tariff at all')
    export: str = Field(default="",
                        description="net-metering | net-billing | buy-all-sell-all | none; empty: the tariff's own "
                                    "(URDB's dgrules)")
    sell_price: float | None = Field(default=None,
                                     description="export price for net billing and buy-all-sell-all [currency/kWh]; "
                                                 "unset: the tariff's", examples=[0.05])
    true_up_month: int | None = Field(default=None,
                                      description="net metering: the month (1-12) whose bill settles the year's "
                                                  "surplus; unset: the tariff's (December by default)",
                                      examples=[12])
    true_up_rate: float | None = Field(default=None,
                                       description="net metering: what each surplus kWh left at the true-up earns "
                                                   "[currency/kWh]; unset: the tariff's (0 by default)",
                                       examples=[0.03])
    prices: str = Field(default="",
                        description='dynamic prices: "awattar-de" or "awattar-at" (aWATTar\'s day-ahead prices, kept '
                                    "in prices/<source>.csv in the data dir by the hub and `homegrid prices fetch`) "
                                    "or a price CSV (time, import_price, optional export_price per kWh; relative to "
                                    "this file's folder); they replace the tariff's energy prices; empty: none")
    price_adder: float = Field(default=0.0,
                               description="dynamic prices: added to each spot price after price_percent "
                                           "[currency/kWh] (grid fees, levies, the retailer's margin)",
                               examples=[0.18])
    price_percent: float = Field(default=0.0,
                                 description="dynamic prices: added to each spot price as a percentage of it [%] "
                                             "(VAT); import price = spot * (1 + price_percent / 100) + price_adder",
                                 examples=[19.0])
    export_price_adder: float = Field(default=0.0,
                                      description="dynamic prices: added to each export price of the CSV after "
                                                  "export_price_percent [currency/kWh] (often negative: a fee)")
    export_price_percent: float = Field(default=0.0,
                                        description="dynamic prices: added to each export price of the CSV as a "
                                                    "percentage of it [%]")


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
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    tariff: TariffConfig = Field(default_factory=TariffConfig)
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
    float | None: "a number", int | None: "an integer", bool | None: "true or false",
    tuple[str, ...]: "a list of strings",
}


def describe_error(exc: ValidationError, root: type[Table], data: Any) -> str:
    """The first of pydantic's errors in homegrid's words, the key named by its dotted path (``mqtt.meters[0].topic``).

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
        if model is not None and model.key == section and name in SECRET_KEYS.get(section, ()):
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
