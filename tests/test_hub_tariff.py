"""The site's tariff from the config's [tariff] table (homegrid.hub.tariff)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from homegrid.config import Config, PowerwallConfig, TariffConfig, load_config
from homegrid.hub.tariff import VIRTUAL_HOME_TARIFF, site_tariff, tariff_file
from homegrid.tariffs import ExportRule, TariffError
from tests.conftest import SHARED_DATA

PSCO_RD = SHARED_DATA / "tariffs" / "urdb_5a679442682bea21e990a0d4_psco_residential_demand_RD.json"
FLAT = 'name = "Flat"\n[energy]\nprice = 0.15\n[export]\nrule = "net-metering"\ntrue_up_rate = 0.01\n'


def _config(tmp_path: Path, text: str, tariff: str | None = None, name: str = "rates.toml") -> Config:
    if tariff is not None:
        (tmp_path / name).write_text(tariff, encoding="utf-8")
    path = tmp_path / "homegrid.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_virtual_home_prices_with_the_shipped_rate():
    path = tariff_file(Config())
    assert path is not None and path.name == VIRTUAL_HOME_TARIFF and path.is_file()
    tariff = site_tariff(Config())
    assert tariff is not None and tariff.name == "Residential Energy Time Of Use (Schedule RE-TOU)"
    assert "OpenEI Utility Rate Database, label 618940545457a35a1c4097ec" in tariff.source
    assert tariff.export.rule is ExportRule.NET_METERING


def test_real_devices_have_no_tariff_until_one_is_named():
    config = Config(powerwall=PowerwallConfig(host="gw"))
    assert config.has_devices and site_tariff(config) is None
    assert site_tariff(Config(tariff=TariffConfig(file="none"))) is None


def test_a_relative_file_is_read_beside_the_config_with_the_overrides(tmp_path):
    config = _config(tmp_path, '[tariff]\nfile = "rates.toml"\n', FLAT)
    tariff = site_tariff(config)
    assert tariff is not None and tariff.name == "Flat"
    assert (tariff.export.rule, tariff.export.true_up_month, tariff.export.true_up_rate) == \
        (ExportRule.NET_METERING, 12, 0.01)
    config = _config(tmp_path, '[tariff]\nfile = "rates.toml"\ntrue_up_month = 4\n')
    tariff = site_tariff(config)
    assert tariff is not None and (tariff.export.rule, tariff.export.true_up_month, tariff.export.true_up_rate) == \
        (ExportRule.NET_METERING, 4, 0.01)
    config = _config(tmp_path, '[tariff]\nfile = "rates.toml"\nexport = "net-billing"\nsell_price = 0.04\n')
    tariff = site_tariff(config)
    assert tariff is not None and tariff.export.rule is ExportRule.NET_BILLING and tariff.export.sell_price == 0.04
    assert tariff.energy.periods[0][0].buy == 0.15  # the rest untouched


def test_a_urdb_file_and_its_warnings_logged(tmp_path, caplog):
    record = json.loads(PSCO_RD.read_text(encoding="utf-8")) | {"lookbackpercent": 0.6}
    config = _config(tmp_path, f'[tariff]\nfile = "{tmp_path / "rd.json"}"\nexport = "buy-all-sell-all"\n',
                     json.dumps(record), name="rd.json")
    with caplog.at_level(logging.WARNING, logger="homegrid.hub.tariff"):
        tariff = site_tariff(config)
    assert tariff is not None and tariff.fixed_monthly == 15.91 and tariff.export.rule is ExportRule.BUY_ALL_SELL_ALL
    assert [r.getMessage() for r in caplog.records] == [
        "tariff rd.json: lookbackpercent: the demand ratchet (lookback) is not applied"]


def test_a_missing_or_bad_file_is_named(tmp_path):
    config = _config(tmp_path, '[tariff]\nfile = "nowhere.toml"\n')
    with pytest.raises(TariffError) as info:
        site_tariff(config)
    assert str(info.value) == (f"{tmp_path / 'nowhere.toml'}: cannot read the tariff file (No such file or "
                               "directory); see [tariff] file")
    config = _config(tmp_path, '[tariff]\nfile = "rates.toml"\n', FLAT.replace("price", "prise"))
    with pytest.raises(TariffError) as info:
        site_tariff(config)
    assert str(info.value) == (f"{tmp_path / 'rates.toml'}: energy.prise: unknown key; known keys: price, sell, "
                               "tier_scope, tier_unit, tiers")
