"""``homegrid bill`` end to end: a simulated virtual home priced with the shipped tariff and with others."""

import json

import pytest

from homegrid.cli import main


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    data = tmp_path_factory.mktemp("bill") / "data"
    data.mkdir()
    assert main(["simulate", "--start", "2025-01-20", "--days", "20", "--data-dir", str(data)]) == 0
    return data


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HOMEGRID_DATA_DIR", raising=False)


def bill(capsys, data, *args: str) -> dict:
    capsys.readouterr()
    assert main(["bill", "--data-dir", str(data), "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_virtual_home_is_billed_with_the_shipped_tariff(capsys, simulated):
    out = bill(capsys, simulated, "--from", "2025-01-20", "--to", "2025-02-08")
    assert out["tariff"].startswith("Residential Energy Time Of Use") and out["currency"] == "USD"
    assert [m["month"] for m in out["months"]] == ["2025-01", "2025-02"]
    assert out["missing_hours"] == []
    for m in out["months"]:
        parts = m["fixed"] + m["energy"] + m["demand"] + m["minimum"] - m["export_credit"] + m["taxes"]
        assert m["total"] == pytest.approx(parts, abs=1e-3)
        assert m["energy"] > 0 and m["import_wh"] > 0
    assert out["total"] == pytest.approx(sum(m["total"] for m in out["months"]), abs=1e-3)
    cf = out["counterfactuals"]
    assert cf["grid_only"]["total"] > cf["solar_only"]["total"] > 0
    assert out["savings"]["solar"] == pytest.approx(cf["grid_only"]["total"] - cf["solar_only"]["total"], abs=1e-3)
    assert out["savings"]["battery"] == pytest.approx(cf["solar_only"]["total"] - out["total"], abs=1e-3)
    car = out["savings"]["car"]
    assert car["energy_wh"] > 0
    assert car["from_grid_wh"] + car["from_solar_wh"] + car["from_battery_wh"] <= car["energy_wh"] + 1


def test_days_without_data_are_listed_not_priced(capsys, simulated):
    out = bill(capsys, simulated, "--from", "2025-02-05", "--to", "2025-02-12")
    assert len(out["missing_hours"]) == 4 * 24  # the 9th to the 12th: the simulation ends with the 8th
    assert out["missing_hours"][0].startswith("2025-02-09T00:00")
    assert out["months"][0]["missing_hours"] == 96


def test_a_tariff_file_and_export_overrides(capsys, simulated, tmp_path):
    flat = tmp_path / "flat.toml"
    flat.write_text('name = "Flat"\ncurrency = "EUR"\n[energy]\nprice = 0.25\n'
                    '[export]\nrule = "net-billing"\nsell_price = 0.1\n')
    out = bill(capsys, simulated, "--from", "2025-01-21", "--to", "2025-01-21", "--tariff", str(flat),
               "--export", "none")
    (day,) = out["months"]
    assert out["currency"] == "EUR" and out["export_rule"] == "none"
    assert day["energy"] == pytest.approx(day["import_wh"] / 1000 * 0.25, abs=1e-3)
    assert day["export_credit"] == 0
    sold = bill(capsys, simulated, "--from", "2025-01-21", "--to", "2025-01-21", "--tariff", str(flat),
                "--sell-price", "0.07")
    assert sold["months"][0]["export_credit"] == pytest.approx(sold["months"][0]["export_wh"] / 1000 * 0.07,
                                                               abs=1e-3)


def test_a_bad_tariff_is_a_usage_error(capsys, simulated, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ncolour = "red"\n[energy]\nprice = 0.2\n')
    assert main(["bill", "--data-dir", str(simulated), "--from", "2025-01-21", "--to", "2025-01-21",
                 "--tariff", str(bad)]) == 2
    assert "colour" in capsys.readouterr().err


def test_the_text_bill(capsys, simulated):
    capsys.readouterr()
    assert main(["bill", "--data-dir", str(simulated), "--from", "2025-01-20", "--to", "2025-01-31"]) == 0
    text = capsys.readouterr().out
    assert "2025-01" in text and "The sun saved" in text and "the battery" in text


def test_the_owners_upload_from_the_app_is_the_bills_tariff(capsys, simulated, tmp_path):
    from shutil import copytree

    from homegrid.hub.tariff_file import SiteTariff
    from homegrid.tariffs import load_tariff

    data = tmp_path / "data"
    copytree(simulated, data)
    SiteTariff(data, load=load_tariff).upload('name = "Flat 20"\n[energy]\nprice = 0.2\n', by="owner token",
                                             reason="test")
    out = bill(capsys, data, "--from", "2025-01-21", "--to", "2025-01-21")
    assert out["tariff"] == "Flat 20"
    assert out["months"][0]["energy"] == pytest.approx(out["months"][0]["import_wh"] / 1000 * 0.2, abs=1e-3)
    capsys.readouterr()
    assert main(["bill", "--data-dir", str(data), "--from", "2025-01-21", "--to", "2025-01-21", "--json"]) == 0
    assert "uploaded" in capsys.readouterr().err


def test_a_config_tariff_that_does_not_read_is_a_usage_error(capsys, simulated, tmp_path):
    config = tmp_path / "homegrid.toml"
    config.write_text('[tariff]\nfile = "nowhere.toml"\n')
    assert main(["bill", "--config", str(config), "--data-dir", str(simulated), "--from", "2025-01-21",
                 "--to", "2025-01-21"]) == 2
    assert "nowhere.toml" in capsys.readouterr().err
