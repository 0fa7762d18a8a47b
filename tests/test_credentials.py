"""Device sections of the config, and the owner-only credentials file."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from homegrid.config import ConfigError, load_config
from homegrid.credentials import (
    CredentialsError,
    Secret,
    credentials_path,
    load_credentials,
    save_credentials,
)

DEVICES = """
[powerwall]
host = "192.168.91.1:443"
poll_interval_s = 2

[tesla]
vin = "5YJ3E1EA7KF000000"
region = "eu"

[mqtt]
host = "broker.lan"
[[mqtt.meters]]
topic = "tele/meter/SENSOR"
name = "grid_power"
path = "ENERGY.Power"
[[mqtt.meters]]
topic = "shellies/em/emeter/0/total"
name = "grid_energy_imported"
"""


def _write(path, text: str, mode: int = 0o600):
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_device_sections_are_read_and_checked(tmp_path):
    config = load_config(_write(tmp_path / "homegrid.toml", DEVICES))
    assert config.has_devices
    assert config.powerwall.host == "192.168.91.1:443" and config.powerwall.poll_interval_s == 2.0
    assert config.tesla.region == "eu"
    assert [m.name for m in config.mqtt.meters] == ["grid_power", "grid_energy_imported"]
    assert config.mqtt.meters[1].path == "" and config.mqtt.meters[1].scale == 1.0
    assert not load_config(_write(tmp_path / "empty.toml", "")).has_devices


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[powerwall]\nhost = ""', "powerwall.host"),
        ('[powerwall]\nhost = "gw"\nmode = "magic"', "powerwall.mode"),
        ('[powerwall]\nmode = "cloud"', "powerwall.email"),
        ('[powerwall]\nhost = "gw"\npassword = "hunter2"', "powerwall.password: secrets do not go in the config"),
        ('[tesla]\nregion = "na"', "tesla.vin"),
        ('[tesla]\nvin = "X"\napi = "carapi"', "tesla.api"),
        ('[tesla]\nvin = "X"\naccess_token = "abc"', "tesla.access_token"),
        ('[mqtt]\nport = 0', "mqtt.port"),
        ('[mqtt]\npublish = "yes"', "mqtt.publish"),
        ('[mqtt]\ntopic_prefix = "home/#"', "mqtt.topic_prefix"),
        ('[mqtt]\nmeters = "x"', "mqtt.meters"),
        ('[[mqtt.meters]]\ntopic = "a"\nname = "volts"', "mqtt.meters[0].name"),
        ('[[mqtt.meters]]\nname = "grid_power"', "mqtt.meters[0].topic"),
        ('[[mqtt.meters]]\ntopic = "a"\nname = "grid_power"\nunit = "kW"', "mqtt.meters[0].unit: unknown key"),
    ],
)
def test_bad_device_config_names_the_key(tmp_path, text, names):
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path / "homegrid.toml", text))
    if "hunter2" in text or "abc" in text:
        with pytest.raises(ConfigError) as info:
            load_config(_write(tmp_path / "homegrid.toml", text))
        assert "hunter2" not in str(info.value) and '"abc"' not in str(info.value)


def test_credentials_are_read_owner_only_and_never_shown(tmp_path, caplog):
    text = '[powerwall]\npassword = "hunter2"\n[tesla]\naccess_token = "tok-xyzzy"\n'
    path = _write(tmp_path / "credentials.toml", text)
    creds = load_credentials(path)
    secret = creds.require("powerwall", "password")
    assert secret.reveal() == "hunter2"
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("creds %s %r %s", creds, secret, [secret])
    shown = caplog.text + repr(creds) + str(secret) + f"{secret}"
    assert "hunter2" not in shown and "xyzzy" not in shown
    with pytest.raises(CredentialsError, match=r"\[mqtt\] password is needed"):
        creds.require("mqtt", "password")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_credentials_open_to_others_are_refused(tmp_path, mode):
    path = _write(tmp_path / "credentials.toml", '[powerwall]\npassword = "hunter2"\n', mode)
    with pytest.raises(CredentialsError, match="chmod 600") as info:
        load_credentials(path)
    assert "hunter2" not in str(info.value)


def test_bad_credentials_files(tmp_path):
    with pytest.raises(CredentialsError, match="does not exist"):
        load_credentials(tmp_path / "none.toml", required=True)
    assert load_credentials(tmp_path / "none.toml").sections == {}
    with pytest.raises(CredentialsError, match="not valid TOML"):
        load_credentials(_write(tmp_path / "a.toml", "[powerwall\n"))
    with pytest.raises(CredentialsError, match=r"powerwall\.password must be a string"):
        load_credentials(_write(tmp_path / "b.toml", "[powerwall]\npassword = 1234\n"))


def test_saved_credentials_are_owner_only_and_round_trip(tmp_path):
    path = _write(tmp_path / "credentials.toml", '[powerwall]\npassword = "p\\"w"\n')
    creds = load_credentials(path)
    save_credentials(creds, {"tesla": {"access_token": "new\nline", "refresh_token": "r"}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_credentials(path)
    assert again.require("powerwall", "password").reveal() == 'p"w'
    assert again.require("tesla", "access_token").reveal() == "new\nline"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".credentials-")]


def test_credentials_path_order(tmp_path, monkeypatch):
    config = load_config(_write(tmp_path / "homegrid.toml", ""))
    monkeypatch.delenv("HOMEGRID_CREDENTIALS", raising=False)
    assert credentials_path(config) == tmp_path / "credentials.toml"
    monkeypatch.setenv("HOMEGRID_CREDENTIALS", str(tmp_path / "env.toml"))
    assert credentials_path(config) == tmp_path / "env.toml"
    assert credentials_path(config, tmp_path / "flag.toml") == tmp_path / "flag.toml"
    assert Secret("a") == Secret("a") and not Secret("")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[powerwall]\npassword = 1234\n', "powerwall.password must be a string"),
        ('powerwall = "hunter2"\n', "[powerwall] must be a table of secrets"),
        ('[powerwall]\npasword = "hunter2"\n', "powerwall.pasword: unknown key; known keys: password, gw_pwd"),
        ('[tesla]\ntoken = "hunter2"\n', "tesla.token: unknown key; known keys: access_token, refresh_token"),
        ('[car]\ntoken = "hunter2"\n', "unknown section [car]; known: powerwall, tesla, mqtt"),
    ],
)
def test_a_bad_credentials_file_names_the_key_never_the_value(tmp_path, text, message):
    path = _write(tmp_path / "c.toml", text)
    with pytest.raises(CredentialsError) as info:
        load_credentials(path)
    assert str(info.value) == f"{path}: {message}" and "hunter2" not in str(info.value)


def test_only_given_secrets_are_held(tmp_path):
    creds = load_credentials(_write(tmp_path / "c.toml", '[tesla]\naccess_token = "a"\n[mqtt]\n'))
    assert creds.sections == {"tesla": {"access_token": Secret("a")}}
    assert creds.get("tesla", "refresh_token") is None and creds.get("powerwall", "password") is None
    with pytest.raises(CredentialsError, match=r"\[tesla\] expires_at: not a key"):
        save_credentials(creds, {"tesla": {"expires_at": "1"}})
