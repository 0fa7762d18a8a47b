"""The API's bill with ``[tariff] prices``: the hub's SiteTariff reads the live source's cache, follows it as the
hub's task rewrites it, and bills the simulated Berlin home of tests/test_cli_prices.py as ``homegrid bill`` does."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.cli import main
from homegrid.config import load_config
from homegrid.devices.prices import AwattarSource, parse_marketdata
from homegrid.hub.price_cache import PriceCacheTask, cache_path, write_cache
from homegrid.hub.queries import Queries
from homegrid.hub.service import open_store
from homegrid.hub.tariff_file import SiteTariff
from homegrid.tariffs import TariffError

from .test_cli_prices import config, home, no_user_config  # noqa: F401 (fixtures)
from .test_dynamic_prices import BERLIN, START, Clock, recorded, sliced


def test_the_apis_bill_reads_the_cache_and_follows_it(capsys, home, tmp_path):  # noqa: F811
    _, data = home
    cfg = config(tmp_path, 'prices = "awattar-de"\nprice_adder = 0.2\nprice_percent = 19\n')
    prices = data / "prices"
    if prices.exists():  # another test of the module's home may have filled it
        for f in prices.iterdir():
            f.unlink()
    site = SiteTariff.from_config(load_config(cfg), data)
    assert site.current() is None and "homegrid prices fetch" in site.describe()["error"]
    path = cache_path(data, "awattar-de")
    task = PriceCacheTask(AwattarSource("de", transport=sliced()), path, BERLIN, Clock("2024-06-14T10:00:00+02:00"))
    assert asyncio.run(task.refresh())  # the 14th and 15th
    first = site.current()
    assert first is not None and first.dynamic is not None and len(first.dynamic.t_ms) == 48
    write_cache(path, parse_marketdata(recorded()), "Europe/Berlin")  # the three days
    store = open_store(data)
    try:
        client = TestClient(create_app(Queries(store, BERLIN), tariff=site))
        body = client.get("/api/v1/bill", params={"from": "2024-06-14", "to": "2024-06-16"}).json()
    finally:
        store.close()
    capsys.readouterr()
    assert main(["bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14", "--to",
                 "2024-06-16", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert body["total"] == cli["total"] and body["months"][0]["energy"] == cli["months"][0]["energy"] > 0
    assert site.describe()["tariff"]["dynamic"] is True


def test_an_uploaded_tariff_takes_the_configs_prices_and_net_metering_is_refused(tmp_path):
    cfg = config(tmp_path, 'prices = "awattar-de"\nprice_adder = 0.2\n')
    data = tmp_path / "data"
    write_cache(cache_path(data, "awattar-de"), parse_marketdata(recorded()), "Europe/Berlin")
    site = SiteTariff.from_config(load_config(cfg), data)
    assert site.current() is not None and site.current().dynamic is not None
    metered = 'name = "Metered"\ncurrency = "EUR"\n[energy]\nprice = 0.3\n[export]\nrule = "net-metering"\n'
    with pytest.raises(TariffError, match=r"\[tariff\] prices is set, and the export rule is net-metering"):
        site.upload(metered, by="test", reason="")
    assert site.describe()["origin"] == "config" and not (data / "tariff.json").exists()
    tariff, _ = site.upload(metered.replace("net-metering", "net-billing"), by="test", reason="a new plan")
    assert tariff.dynamic is None  # as read; the site's prices are put on when it is used
    current = site.current()
    assert current is not None and current.name == "Metered" and current.dynamic is not None
    assert current.dynamic.buy(np.array([START]))[0][0] == pytest.approx(0.08313 + 0.2)
    assert site.describe()["tariff"]["dynamic"] is True and site.describe()["origin"] == "upload"
