"""The TOML config: every key's default and type, and errors that name the file and the key, word for word."""

from __future__ import annotations

from pathlib import Path

import pytest

from homegrid.config import (
    STORM_EVENTS,
    Config,
    ConfigError,
    MeterTopicConfig,
    MqttConfig,
    PowerwallConfig,
    ServerConfig,
    SiteConfig,
    StormConfig,
    TariffConfig,
    VirtualHomeConfig,
    load_config,
)
from homegrid.glossary import ALL_NAMES

SECTIONS = "site, store, accounting, server, virtual, powerwall, tesla, mqtt, outages, storm, planner, tariff"


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "homegrid.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    prefix = f"{tmp_path / 'homegrid.toml'}: "
    message = str(info.value)
    assert message.startswith(prefix), message
    return message[len(prefix):]


BAD = [
    # site
    ('[site]\nunits = "furlongs"',
     "site.units = 'furlongs': must be \"metric\" or \"imperial\" (or left out: by the site's time zone's country)"),
    ("[site]\nmax_power_w = 10", "site.max_power_w = 10: must be within 1e3..1e9 W (default 1e6, 1 MW)"),
    ("[site]\nmax_power_w = 2e9", "site.max_power_w = 2e+09: must be within 1e3..1e9 W (default 1e6, 1 MW)"),
    ("[site]\nlatitude = 91", "site.latitude = 91.0: must be within -90..90 degrees"),
    ("[site]\nlongitude = -180.5", "site.longitude = -180.5: must be within -180..180 degrees"),
    ('[site]\ntimezone = "Mars/Olympus"', "site.timezone = 'Mars/Olympus': not an IANA time zone name"),
    ('[site]\ntimezone = ""', "site.timezone = '': not an IANA time zone name"),
    ('[site]\nlatitude = "north"', "site.latitude = 'north': expected a number"),
    ("[site]\nlatitude = true", "site.latitude = True: expected a number"),
    ("[site]\nname = 3", "site.name = 3: expected a string"),
    ("[site]\nlatitud = 3", "site.latitud: unknown key; known keys: name, latitude, longitude, timezone, "
                            "max_power_w, units"),
    # store, accounting
    ("[store]\nraw_retention_days = 0", "store.raw_retention_days must be > 0 (leave it out to keep them forever)"),
    ("[store]\nflush_interval_s = 61", "store.flush_interval_s must be within (0, 60] seconds"),
    ("[store]\nflush_interval_s = 0", "store.flush_interval_s must be within (0, 60] seconds"),
    ("[store]\ndata_dir = 5", "store.data_dir = 5: expected a string"),
    ("[accounting]\nmax_gap_s = 0", "accounting.max_gap_s must be > 0"),
    # server
    ("[server]\nport = 70000", "server.port = 70000: not a TCP port"),
    ("[server]\nport = 0", "server.port = 0: not a TCP port"),
    ("[server]\nport = 80.5", "server.port = 80.5: expected an integer"),
    ("[server]\nport = true", "server.port = True: expected an integer"),
    ('[server]\nport = "80"', "server.port = '80': expected an integer"),
    ('[server]\nallowed_hosts = ["http://hub"]',
     "server.allowed_hosts: 'http://hub' is not a host name (no scheme, port or wildcard)"),
    ('[server]\nallowed_hosts = "hub"', "server.allowed_hosts = 'hub': expected a list of strings"),
    ("[server]\nallowed_hosts = [1]", "server.allowed_hosts = [1]: expected a list of strings"),
    ('[server]\ncors_origins = ["*"]',
     "server.cors_origins: '*' is not an origin (scheme://host[:port], no path, no wildcard)"),
    ("[server]\npoll_interval_s = 0", "server.poll_interval_s must be within 0.1..3600 s"),
    ("[server]\nbackfill_days = -1", "server.backfill_days must be >= 0"),
    ("[server]\noffline_after_s = 0.5", "server.offline_after_s must be within 1..86400 s (default 300)"),
    ('[server]\nopen_reads = "yes"', "server.open_reads = 'yes': expected true or false"),
    # virtual
    *[(f"[virtual]\n{key} = 0", f"virtual.{key} must be > 0")
      for key in ("solar_kw", "battery_kwh", "battery_kw", "ev_pack_kwh", "ev_charger_kw")],
    ("[virtual]\nbattery_round_trip = 1.5", "virtual.battery_round_trip must be within (0, 1]"),
    ("[virtual]\nbackup_reserve_percent = 101", "virtual.backup_reserve_percent must be within 0..100"),
    ("[virtual]\nev_charge_limit_percent = 0", "virtual.ev_charge_limit_percent must be within (0, 100]"),
    *[(f"[virtual]\n{key} = -1", "virtual: outages_per_year, load_kwh_per_year, ev_commute_km must be >= 0")
      for key in ("outages_per_year", "load_kwh_per_year", "ev_commute_km")],
    ("[virtual]\nbattery_grid_charge_kw = 6", "virtual.battery_grid_charge_kw must be within 0..battery_kw"),
    ("[virtual]\nbattery_kw = 1", "virtual.battery_grid_charge_kw must be within 0..battery_kw"),
    ("[virtual]\nseed = 1.5", "virtual.seed = 1.5: expected an integer"),
    ("[virtual]\ndemo_outages = 1", "virtual.demo_outages = 1: expected true or false"),
    ("[virtual]\nweather = []", "virtual.weather = []: expected a string"),
    # powerwall
    ('[powerwall]\nhost = "gw"\nmode = "magic"', "powerwall.mode = 'magic': expected one of local, cloud, fleetapi"),
    ("[powerwall]", "powerwall.host is required in local mode (the gateway's address, e.g. 192.168.91.1)"),
    ('[powerwall]\nhost = " "', "powerwall.host is required in local mode (the gateway's address, e.g. 192.168.91.1)"),
    ('[powerwall]\nmode = "cloud"', "powerwall.email is required in cloud mode (the Tesla account)"),
    ('[powerwall]\nhost = "gw"\npoll_interval_s = 0', "powerwall.poll_interval_s = 0.0: must be within 0.1..3600 s"),
    ('[powerwall]\nhost = "gw"\ntimeout_s = 200', "powerwall.timeout_s = 200.0: must be within 0.1..120 s"),
    ('[powerwall]\nhost = "gw"\npassword = "hunter2"',
     "powerwall.password: secrets do not go in the config file; put it under [powerwall] in the credentials file "
     "(credentials.toml beside the config, chmod 600)"),
    ('[powerwall]\nhost = "gw"\ngw_pwd = "hunter2"',
     "powerwall.gw_pwd: secrets do not go in the config file; put it under [powerwall] in the credentials file "
     "(credentials.toml beside the config, chmod 600)"),
    ('[powerwall]\nhost = "gw"\nfoo = 1',
     "powerwall.foo: unknown key; known keys: host, email, mode, poll_interval_s, timeout_s, site_id"),
    # tesla
    ("[tesla]", "tesla.vin is required (the car's vehicle identification number)"),
    ('[tesla]\nvin = "X"\napi = "carapi"', "tesla.api = 'carapi': expected one of fleet, teslemetry, tessie"),
    ('[tesla]\nvin = "X"\nregion = "au"', "tesla.region = 'au': expected one of na, eu, cn"),
    ('[tesla]\nvin = "X"\nserver = "ftp://x"', "tesla.server = 'ftp://x': must be an http(s) URL"),
    ('[tesla]\nvin = "X"\nhome_radius_m = 0', "tesla.home_radius_m = 0.0: must be within (0, 100000] m"),
    ('[tesla]\nvin = "X"\npoll_interval_s = 5000', "tesla.poll_interval_s = 5000.0: must be within 0.1..3600 s"),
    ('[tesla]\nvin = "X"\ntimeout_s = 0', "tesla.timeout_s = 0.0: must be within 0.1..120 s"),
    ('[tesla]\nvin = "X"\nlocation = "yes"', "tesla.location = 'yes': expected true or false"),
    ('[tesla]\nvin = "X"\nrefresh_token = "abc"',
     "tesla.refresh_token: secrets do not go in the config file; put it under [tesla] in the credentials file "
     "(credentials.toml beside the config, chmod 600)"),
    # mqtt
    ('[mqtt]\nhost = ""', "mqtt.host is required"),
    ("[mqtt]\nport = 0", "mqtt.port = 0: not a TCP port"),
    ("[mqtt]\nport = 65536", "mqtt.port = 65536: not a TCP port"),
    ('[mqtt]\ntopic_prefix = "home/#"',
     "mqtt.topic_prefix = 'home/#': must be a plain topic without wildcards or edge '/'"),
    ('[mqtt]\ntopic_prefix = ""', "mqtt.topic_prefix = '': must be a plain topic without wildcards or edge '/'"),
    ('[mqtt]\ndiscovery_prefix = "/ha"',
     "mqtt.discovery_prefix = '/ha': must be a plain topic without wildcards or edge '/'"),
    ("[mqtt]\nstale_after_s = 0", "mqtt.stale_after_s = 0.0: must be within 0.1..3600 s"),
    ('[mqtt]\npublish = "yes"', "mqtt.publish = 'yes': expected true or false"),
    ('[mqtt]\nmeters = "x"', "mqtt.meters must be an array of tables ([[mqtt.meters]])"),
    ('[mqtt]\nmeters = ["x"]', "[mqtt.meters[0]] must be a table"),
    ('[mqtt]\npassword = "hunter2"',
     "mqtt.password: secrets do not go in the config file; put it under [mqtt] in the credentials file "
     "(credentials.toml beside the config, chmod 600)"),
    ('[[mqtt.meters]]\ntopic = "a"\nname = "volts"',
     f"mqtt.meters[0].name = 'volts': not a glossary name; known: {', '.join(ALL_NAMES)}"),
    ('[[mqtt.meters]]\nname = "grid_power"', "mqtt.meters[0].topic is required"),
    *[(f'[[mqtt.meters]]\ntopic = "a"\nname = "grid_power"\nscale = {scale}',
       f"mqtt.meters[0].scale = {told}: must be a non-zero number") for scale, told in (("0", "0.0"), ("nan", "nan"))],
    ('[[mqtt.meters]]\ntopic = "a"\nname = "grid_power"\nunit = "kW"',
     "mqtt.meters[0].unit: unknown key; known keys: topic, name, path, scale, time_path"),
    ('[[mqtt.meters]]\ntopic = "a"\nname = "grid_power"\n[[mqtt.meters]]\ntopic = "b"\nname = "grid_power"\npath = 3',
     "mqtt.meters[1].path = 3: expected a string"),
    ('[[mqtt.meters]]\ntopic = "a"\nname = "grid_power"\npassword = "x"',
     "mqtt.meters[0].password: unknown key; known keys: topic, name, path, scale, time_path"),
    # outages, storm
    ("[outages]\nmerge_gap_s = 4000", "outages.merge_gap_s = 4000.0: must be within 0..3600 s"),
    ('[outages]\nnotify_url = "ftp://x"', "outages.notify_url = 'ftp://x': must be an http(s) URL"),
    ("[storm]\ninterval_s = 10", "storm.interval_s = 10.0: must be within 60..3600 s"),
    ("[storm]\nreserve_percent = 101", "storm.reserve_percent = 101.0: must be within 0..100"),
    ('[storm]\nmin_severity = "Bad"',
     "storm.min_severity = 'Bad': expected \"\" or one of ('Unknown', 'Minor', 'Moderate', 'Severe', 'Extreme')"),
    *[(f"[storm]\n{key} = -1", f"storm.{key} must be >= 0") for key in ("lead_h", "hold_h", "settle_s")],
    # planner
    ("[planner]\ncar_min_amps = 40\ncar_max_amps = 16", "planner.car_min_amps must be at most car_max_amps"),
    ('[planner]\nidle_export_rule = "battery_ok"',
     "planner.idle_export_rule = 'battery_ok': expected \"pv_only\" or \"never\""),
    ("[planner]\nlog_size = 0", "planner.log_size = 0: must be within 1..100000"),
    ('[storm]\nevents = "Tornado Warning"', "storm.events = 'Tornado Warning': expected a list of strings"),
    # tariff
    ('[tariff]\nexport = "net metering"',
     "tariff.export = 'net metering': expected \"\" (the tariff's own) or one of net-metering, net-billing, "
     "buy-all-sell-all, none"),
    ('[tariff]\nsell_price = "0.05"', "tariff.sell_price = '0.05': expected a number"),
    ("[tariff]\nsell_price = true", "tariff.sell_price = True: expected a number"),
    ("[tariff]\nsell_price = nan", "tariff.sell_price = nan: must be a price per kWh"),
    ("[tariff]\ntrue_up_month = 0", "tariff.true_up_month = 0: must be a month within 1..12"),
    ("[tariff]\ntrue_up_month = 12.0", "tariff.true_up_month = 12.0: expected an integer"),
    ("[tariff]\ntrue_up_rate = -0.01", "tariff.true_up_rate = -0.01: must be >= 0 per kWh"),
    ("[tariff]\nfile = 3", "tariff.file = 3: expected a string"),
    ('[tariff]\nrule = "none"',
     "tariff.rule: unknown key; known keys: file, export, sell_price, true_up_month, true_up_rate, prices, "
     "price_adder, price_percent, export_price_adder, export_price_percent"),
    ('[tariff]\nprices = "awattar"',
     "tariff.prices = 'awattar': expected \"\" (none), awattar-de, awattar-at or the path of a price CSV"),
    ('[tariff]\nprices = "aWATTar-ch"',
     "tariff.prices = 'aWATTar-ch': expected \"\" (none), awattar-de, awattar-at or the path of a price CSV"),
    ("[tariff]\nprices = 1", "tariff.prices = 1: expected a string"),
    ('[tariff]\nprice_adder = "0.18"', "tariff.price_adder = '0.18': expected a number"),
    ("[tariff]\nprice_adder = inf", "tariff.price_adder = inf: must be a price per kWh"),
    ("[tariff]\nexport_price_adder = nan", "tariff.export_price_adder = nan: must be a price per kWh"),
    ("[tariff]\nprice_percent = -101", "tariff.price_percent = -101.0: must be a percentage within -100..10000"),
    ("[tariff]\nprice_percent = nan", "tariff.price_percent = nan: must be a percentage within -100..10000"),
    ("[tariff]\nexport_price_percent = 1e5",
     "tariff.export_price_percent = 100000.0: must be a percentage within -100..10000"),
    # the file's shape
    ("[weather]\nx = 1", f"unknown section [weather]; known: {SECTIONS}"),
    ('source = "x"', f"unknown section [source]; known: {SECTIONS}"),
    ("site = 3", "[site] must be a table"),
    ("mqtt = []", "[mqtt] must be a table"),
    # a wrong type is told before a wrong value, and sections in the order of the file's model
    ('[server]\nport = 0\n[site]\nlatitude = "x"', "site.latitude = 'x': expected a number"),
    ("[storm]\ninterval_s = 1\n[site]\nlatitude = 100", "site.latitude = 100.0: must be within -90..90 degrees"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_config_is_named_by_file_and_key(tmp_path, text, message):
    assert _error(tmp_path, text) == message


def test_secrets_are_never_echoed(tmp_path):
    message = _error(tmp_path, '[tesla]\nvin = "X"\naccess_token = "tok-xyzzy"')
    assert message.startswith("tesla.access_token: secrets do not go") and "xyzzy" not in message


def test_the_file_itself(tmp_path):
    path = tmp_path / "homegrid.toml"
    path.write_text("[site\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"homegrid\.toml: not valid TOML: "):
        load_config(path)
    with pytest.raises(ConfigError, match=r"^config file .*none\.toml does not exist$"):
        load_config(tmp_path / "none.toml")


def test_no_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = load_config(None)
    assert config == Config() and config.source is None
    assert config.powerwall is None and config.tesla is None and config.mqtt is None and not config.has_devices


def test_values_are_read_with_their_types(tmp_path):
    config = _load(tmp_path, """
[site]
latitude = 40
[server]
poll_interval_s = 2
allowed_hosts = ["hub.lan"]
[mqtt]
[[mqtt.meters]]
topic = "t"
name = "grid_power"
scale = 2
""")
    assert config.source == tmp_path / "homegrid.toml"
    assert config.site.latitude == 40.0 and type(config.site.latitude) is float
    assert type(config.server.poll_interval_s) is float and type(config.server.port) is int
    assert config.server.allowed_hosts == ("hub.lan",) and config.server.cors_origins == ()
    assert config.mqtt is not None and config.mqtt.host == "127.0.0.1" and config.mqtt.port == 1883
    assert config.mqtt.meters == (MeterTopicConfig(topic="t", name="grid_power", scale=2.0),)
    assert type(config.mqtt.meters[0].scale) is float and config.has_devices
    assert config.storm.events == STORM_EVENTS and config.powerwall is None
    assert _load(tmp_path, "[mqtt]\n").mqtt == MqttConfig() and not _load(tmp_path, "[mqtt]\n").has_devices


def test_the_tariff_table(tmp_path):
    config = _load(tmp_path, '[tariff]\nfile = "rates/tou.toml"\nexport = "net-billing"\nsell_price = 0\n'
                             "true_up_month = 3\ntrue_up_rate = 0.02\n")
    assert config.tariff == TariffConfig(file="rates/tou.toml", export="net-billing", sell_price=0.0,
                                         true_up_month=3, true_up_rate=0.02)
    assert type(config.tariff.sell_price) is float
    assert Config().tariff == TariffConfig() and TariffConfig().file == "" and TariffConfig().export == ""
    assert (TariffConfig().sell_price, TariffConfig().true_up_month, TariffConfig().true_up_rate) == (None,) * 3


def test_the_tariffs_dynamic_prices(tmp_path):
    config = _load(tmp_path, '[tariff]\nfile = "dyn.toml"\nprices = "awattar-de"\nprice_adder = 0.18\n'
                             "price_percent = 19\nexport_price_adder = -0.01\nexport_price_percent = 0\n")
    assert config.tariff == TariffConfig(file="dyn.toml", prices="awattar-de", price_adder=0.18, price_percent=19.0,
                                         export_price_adder=-0.01)
    assert type(config.tariff.price_percent) is float and type(config.tariff.export_price_percent) is float
    assert _load(tmp_path, '[tariff]\nprices = "prices/2024.csv"\n').tariff.prices == "prices/2024.csv"
    assert _load(tmp_path, '[tariff]\nprices = "awattar-at"\n').tariff.prices == "awattar-at"
    assert _load(tmp_path, "[tariff]\nprice_percent = -100\n").tariff.price_percent == -100.0
    default = TariffConfig()
    assert (default.prices, default.price_adder, default.price_percent, default.export_price_adder,
            default.export_price_percent) == ("", 0.0, 0.0, 0.0, 0.0)


def test_the_configs_live_price_sources_are_the_hubs():
    """config.py may not import the hub, so it spells the live sources' names itself: the same ones."""
    from homegrid.config import LIVE_PRICE_SOURCES
    from homegrid.hub.price_cache import LIVE_SOURCES

    assert LIVE_PRICE_SOURCES == tuple(LIVE_SOURCES)


def test_the_configs_export_rules_are_the_tariffs():
    """config.py may not import the tariffs (a lower layer), so it spells the rules itself: the same ones."""
    from homegrid.config import EXPORT_RULES
    from homegrid.tariffs import ExportRule

    assert EXPORT_RULES == tuple(rule.value for rule in ExportRule)


def test_defaults():
    config = Config()
    assert config.site.name == "Virtual home" and config.site.tz.key == "America/New_York"
    assert config.site.unit_system == "imperial" and config.store.data_dir is None
    assert config.server.port == 8080 and config.virtual.seed == 2017 and config.storm.min_severity == "Severe"
    assert PowerwallConfig(host="gw").mode == "local" and MqttConfig().meters == ()


def test_objects_are_immutable_values():
    config = Config()
    with pytest.raises((AttributeError, TypeError, ValueError)):
        config.server.port = 1  # type: ignore[misc]
    assert Config() == Config() and hash(Config()) == hash(Config())
    assert Config(virtual=VirtualHomeConfig(seed=1)) != Config()


def test_objects_made_in_code_are_checked_too():
    """What ``devices test --powerwall`` builds from its flags, and the tests' own configs, when they are made."""
    with pytest.raises(ConfigError, match=r"^server\.port = 70000: not a TCP port$"):
        ServerConfig(port=70000)
    with pytest.raises(ConfigError, match=r"^powerwall\.timeout_s = 999\.0: must be within 0\.1\.\.120 s$"):
        PowerwallConfig(host="gw", timeout_s=999.0)
    with pytest.raises(ConfigError, match=r"^site\.latitude = 100\.0: must be within -90\.\.90 degrees$"):
        SiteConfig(latitude=100.0)
    with pytest.raises(ConfigError, match=r"^storm\.lead_h must be >= 0$"):
        Config(storm=StormConfig(lead_h=-1.0))


def test_replace_is_checked_like_a_new_table():
    config = Config()
    changed = config.replace(server=config.server.replace(backfill_days=2.0))
    assert changed.server.backfill_days == 2.0 and changed.site == config.site and config.server.backfill_days == 7.0
    with pytest.raises(ConfigError, match=r"^virtual\.battery_round_trip must be within \(0, 1\]$"):
        config.virtual.replace(battery_round_trip=2.0)
    with pytest.raises(ConfigError, match=r"^server\.nope: unknown key"):
        config.server.replace(nope=1)
