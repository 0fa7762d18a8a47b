"""``homegrid devices test``: each configured device polled once, or a gateway from the command line."""

from __future__ import annotations

import json

import pytest

from homegrid.cli import main
from homegrid.devices.powerwall.simulator import Simulator


@pytest.fixture(scope="module")
def gateway():
    with Simulator() as sim:
        yield sim.add_gateway(password="customer-pass", scenario="outage")


def test_gateway_from_the_command_line_as_json(gateway, capsys):
    code = main(["devices", "test", "--powerwall", gateway.address, "--password", "customer-pass", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    [gw] = out
    assert gw["device"] == "powerwall" and gw["ok"] is True
    assert gw["grid_status"] == "islanded"
    assert gw["readings"]["grid_power"] == 0.0
    assert {"solar_power", "home_power", "battery_power", "battery_soc", "battery_reserve",
            "grid_energy_imported"} <= set(gw["readings"])


def test_wrong_password_fails_without_showing_it(gateway, capsys):
    code = main(["devices", "test", "--powerwall", gateway.address, "--password", "not-the-pass-xyzzy",
                 "--timeout", "2"])
    captured = capsys.readouterr()
    assert code == 1
    assert "powerwall: FAILED" in captured.out
    assert "xyzzy" not in captured.out + captured.err


def test_configured_devices_in_text(gateway, tmp_path, capsys, monkeypatch):
    config = tmp_path / "homegrid.toml"
    config.write_text(f'[powerwall]\nhost = "{gateway.address}"\n')
    creds = tmp_path / "credentials.toml"
    creds.write_text('[powerwall]\npassword = "customer-pass"\n')
    creds.chmod(0o600)
    monkeypatch.delenv("HOMEGRID_CREDENTIALS", raising=False)
    code = main(["devices", "test", "--config", str(config), "--data-dir", str(tmp_path / "data")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "powerwall: ok" in out and "grid_status" in out and "islanded" in out

    creds.chmod(0o644)
    code = main(["devices", "test", "--config", str(config), "--data-dir", str(tmp_path / "data")])
    assert code == 2
    assert "chmod 600" in capsys.readouterr().err


def test_bad_invocations_are_usage_errors(tmp_path, capsys):
    assert main(["devices", "test", "--powerwall", "gw.lan"]) == 2
    assert "--password" in capsys.readouterr().err
    config = tmp_path / "homegrid.toml"
    config.write_text("")
    assert main(["devices", "test", "--config", str(config)]) == 2
    assert "no device is configured" in capsys.readouterr().err
