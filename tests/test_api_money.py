"""The money routes (issue 13) over a simulated store: the bill of a span equals ``site_bill``'s, the day's prices and
hourly costs add up to the bill of that day, and only the owner changes the tariff (kept in the data dir, logged
with its reason)."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from homegrid.api.app import create_app
from homegrid.cli import main
from homegrid.config import Config, TariffConfig
from homegrid.hub.bill import site_bill
from homegrid.hub.queries import Queries
from homegrid.hub.service import open_store
from homegrid.hub.tariff import VIRTUAL_HOME_TARIFF
from homegrid.hub.tariff_file import TARIFF_FILE, SiteTariff
from homegrid.tariffs import EnergyRates, ExportRule, ExportTerms, MonthHourSchedule, Tariff, Tier, load_tariff
from homegrid.timezones import local_date, local_day_bounds

from .conftest import NEW_YORK, behind_the_door, steady_frame

PEAK_4_TO_9 = MonthHourSchedule([[1] * 16 + [2] * 5 + [1] * 3] * 12, [[1] * 24] * 12)
TOU = Tariff("TOU test", EnergyRates(PEAK_4_TO_9, {1: (Tier(0.10, 0.04),), 2: (Tier(0.30, 0.04),)}),
             fixed_monthly=10.0, export=ExportTerms(ExportRule.NET_BILLING))


FLAT_TOML = """
name = "Flat 25"
source = "a test's plan"
[energy]
price = 0.25
sell = 0.05
"""


def shipped_urdb(*, drop: tuple[str, ...] = ()) -> str:
    """The virtual home's URDB record (PSCo RE-TOU), without some fields."""
    record = json.loads(files("homegrid.tariffs").joinpath("data", VIRTUAL_HOME_TARIFF).read_text())
    record = json.loads(record) if isinstance(record, str) else record  # kept as pysam keeps it: encoded twice
    record = record["items"][0] if "items" in record else record
    return json.dumps({k: v for k, v in record.items() if k not in drop})


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    """The virtual home from 2025-05-25 for 40 days (three billing months), in New York."""
    data_dir = tmp_path_factory.mktemp("money") / "data"
    data_dir.mkdir()
    assert main(["simulate", "--start", "2025-05-25", "--days", "40", "--data-dir", str(data_dir)]) == 0
    return data_dir


@pytest.fixture
def sim(sim_dir):
    store = open_store(sim_dir)
    yield store
    store.close()


def client_of(store, tariff: SiteTariff | None) -> TestClient:
    return TestClient(create_app(Queries(store, NEW_YORK), tariff=tariff))


def test_bill_is_site_bill_of_the_local_dates(sim):
    body = client_of(sim, SiteTariff.fixed(TOU)).get("/api/v1/bill", params={"from": "2025-05-25",
                                                                               "to": "2025-07-03"}).json()
    a, _ = local_day_bounds(date(2025, 5, 25), NEW_YORK)
    _, b = local_day_bounds(date(2025, 7, 3), NEW_YORK)
    assert body == json.loads(json.dumps(site_bill(sim, TOU, NEW_YORK, a, b)))
    assert [m["month"] for m in body["months"]] == ["2025-05", "2025-06", "2025-07"]
    assert body["currency"] == "USD" and body["tariff"] == "TOU test"
    assert body["total"] == pytest.approx(sum(m["total"] for m in body["months"]), abs=1e-3)
    june = body["months"][1]
    assert june["fixed"] == pytest.approx(10.0) and june["import_wh"] > 0 and june["export_wh"] > 0
    s = body["savings"]
    c = body["counterfactuals"]
    assert s["battery"] == pytest.approx(c["solar_only"]["total"] - c["actual"]["total"], abs=1e-3)
    assert s["solar"] == pytest.approx(c["grid_only"]["total"] - c["solar_only"]["total"], abs=1e-3)
    assert c["grid_only"]["total"] > c["actual"]["total"]  # the sun and the battery saved something
    assert "projected_total" not in body["months"][-1]  # the span is over


def test_bill_takes_iso_instants_and_refuses_bad_spans(sim):
    c = client_of(sim, SiteTariff.fixed(TOU))
    body = c.get("/api/v1/bill", params={"from": "2025-06-01T00:00:00-04:00", "to": "2025-06-02T00:00:00-04:00"}).json()
    assert [m["month"] for m in body["months"]] == ["2025-06"] and body["months"][0]["days"] == pytest.approx(1)
    cut = c.get("/api/v1/bill", params={"from": "2025-01-01", "to": "2025-06-01", "stored_only": "true"}).json()
    assert cut["from"] == "2025-05-25T00:00:00-04:00" and cut["months"][0]["month"] == "2025-05"
    assert cut["missing_hours"] == []
    assert c.get("/api/v1/bill", params={"from": "junk", "to": "2025-06-01"}).status_code == 422
    assert c.get("/api/v1/bill", params={"from": "2025-06-02", "to": "2025-06-01"}).status_code == 422
    assert c.get("/api/v1/bill", params={"from": "2020-01-01", "to": "2025-06-01"}).status_code == 422


def test_without_a_tariff_the_bill_and_prices_say_how_to_set_one(sim):
    for tariff in (None, SiteTariff.fixed(None)):
        c = client_of(sim, tariff)
        for path, params in (("/api/v1/bill", {"from": "2025-06-01", "to": "2025-06-01"}),
                             ("/api/v1/prices", {"day": "2025-06-01"})):
            r = c.get(path, params=params)
            assert r.status_code == 409
            assert "no tariff is set" in r.json()["detail"] and "[tariff]" in r.json()["detail"]
        body = c.get("/api/v1/tariff").json()
        assert body["configured"] is False and body["tariff"] is None and "System view" in body["how_to_set"]


def test_the_money_views_figures_at_once(sim, recorder, store):
    for site in (None, SiteTariff.fixed(None)):
        body = client_of(sim, site).get("/api/v1/money").json()
        assert body["configured"] is False and body["bill"] is None and "[tariff]" in body["how_to_set"]
    c = client_of(sim, SiteTariff.fixed(TOU))
    body = c.get("/api/v1/money").json()  # twelve months to today: the simulated months of 2025 are older
    assert body["tariff"]["name"] == "TOU test" and body["bill"]["months"][0]["import_wh"] == 0
    assert c.get("/api/v1/money", params={"months": 0}).status_code == 422
    now = datetime.now(NEW_YORK)
    start = int(now.timestamp() * 1000) // 60_000 * 60_000 - 3 * 3_600_000
    recorder.ingest_bulk([steady_frame(start, 120, solar_power=0, home_power=1000, grid_power=1000, battery_soc=50,
                                       grid_status=1)])
    body = client_of(store, SiteTariff.fixed(TOU)).get("/api/v1/money", params={"months": 3}).json()
    first = local_date(start, NEW_YORK).isoformat()
    assert body["bill"]["from"].startswith(first)  # from the first stored day, not three months back
    assert body["bill"]["months"][-1]["month"] == now.strftime("%Y-%m") and body["bill"]["missing_hours"]


def test_a_day_of_prices_adds_up_to_that_days_bill(sim):
    c = client_of(sim, SiteTariff.fixed(TOU))
    day = "2025-06-03"  # a Tuesday: peak 16:00-21:00
    prices = c.get("/api/v1/prices", params={"day": day}).json()
    hours = prices["hours"]
    assert len(hours) == 24 and prices["currency"] == "USD" and prices["hours_with_data"] == 24
    assert [h["import_price"] for h in hours] == [0.1] * 16 + [0.3] * 5 + [0.1] * 3
    assert all(h["export_price"] == 0.04 for h in hours)
    assert hours[16]["start"] == "2025-06-03T16:00:00-04:00"
    for h in hours:
        assert h["cost"] == pytest.approx(h["import_wh"] / 1000 * h["import_price"]
                                          - h["export_wh"] / 1000 * h["export_price"], abs=1e-4)
    bill = c.get("/api/v1/bill", params={"from": day, "to": day, "counterfactuals": "false"}).json()
    (m,) = bill["months"]
    assert prices["cost"] == pytest.approx(m["energy"] - m["export_credit"], abs=1e-3)
    assert sum(h["import_wh"] for h in hours) == pytest.approx(m["import_wh"], abs=1)


def test_prices_of_a_short_day_and_a_day_without_data(recorder, store):
    a, _ = local_day_bounds(date(2025, 3, 9), NEW_YORK)  # spring forward: 23 hours
    recorder.ingest_bulk([steady_frame(a, 6 * 60 + 1, solar_power=0, home_power=1000, grid_power=1000,
                                       battery_soc=50, grid_status=1)])
    c = client_of(store, SiteTariff.fixed(TOU))
    hours = c.get("/api/v1/prices", params={"day": "2025-03-09"}).json()["hours"]
    assert len(hours) == 23 and hours[2]["start"] == "2025-03-09T03:00:00-04:00"
    assert hours[0]["import_wh"] == pytest.approx(1000) and hours[0]["cost"] == pytest.approx(0.1)
    assert hours[10]["import_wh"] is None and hours[10]["cost"] is None and hours[10]["import_price"] == 0.1
    empty = c.get("/api/v1/prices", params={"day": "2025-03-20"}).json()
    assert empty["hours_with_data"] == 0 and empty["cost"] == 0 and len(empty["hours"]) == 24
    assert c.get("/api/v1/prices", params={"day": "2025-02-30"}).status_code == 422
    far = c.get("/api/v1/prices", params={"day": "0001-01-01"})
    assert far.status_code == 422 and "outside" in far.json()["detail"]


def test_a_still_going_month_is_projected(recorder, store):
    now = datetime.now(NEW_YORK)
    today = now.date()
    a, _ = local_day_bounds(today.replace(day=1), NEW_YORK)
    _, b = local_day_bounds(today, NEW_YORK)
    start = max(a, int(now.timestamp() * 1000) // 60_000 * 60_000 - 2 * 3_600_000)  # two hours ago, this month
    recorder.ingest_bulk([steady_frame(start, 100, solar_power=0, home_power=1000, grid_power=1000, battery_soc=50,
                                       grid_status=1)])
    body = client_of(store, SiteTariff.fixed(TOU)).get(
        "/api/v1/bill", params={"from": today.replace(day=1).isoformat(), "to": today.isoformat()}).json()
    last = body["months"][-1]
    assert 0 < last["elapsed_fraction"] < 1 and last["projected_total"] >= last["total"]
    assert b > a


def test_bills_are_cached_until_a_new_minute_is_stored(sim, monkeypatch):
    import homegrid.api.money as money

    calls = []
    real = money.site_bill
    monkeypatch.setattr(money, "site_bill", lambda *a, **k: calls.append(1) or real(*a, **k))
    c = client_of(sim, SiteTariff.fixed(TOU))
    q = {"from": "2025-06-01", "to": "2025-06-30"}
    first = c.get("/api/v1/bill", params=q).json()
    assert c.get("/api/v1/bill", params=q).json() == first and len(calls) == 1
    c.get("/api/v1/bill", params={**q, "counterfactuals": "false"})
    assert len(calls) == 2


def test_the_money_views_bill_may_be_a_minute_old_the_bill_is_not(recorder, store, monkeypatch):
    import homegrid.api.money as money

    calls = []
    real = money.site_bill
    monkeypatch.setattr(money, "site_bill", lambda *a, **k: calls.append(1) or real(*a, **k))
    now = datetime.now(NEW_YORK)
    start = int(now.timestamp() * 1000) // 60_000 * 60_000 - 3 * 3_600_000
    recorder.ingest_bulk([steady_frame(start, 60, solar_power=0, home_power=1000, grid_power=1000, battery_soc=50,
                                       grid_status=1)])
    c = client_of(store, SiteTariff.fixed(TOU))
    first = c.get("/api/v1/money").json()["bill"]
    recorder.ingest_bulk([steady_frame(start + 60 * 60_000, 60, solar_power=0, home_power=1000, grid_power=1000,
                                       battery_soc=50, grid_status=1)])  # an hour more stored
    assert c.get("/api/v1/money").json()["bill"] == first and len(calls) == 1
    fresh = c.get("/api/v1/bill", params={"from": first["from"][:10], "to": now.date().isoformat(),
                                          "stored_only": "true"}).json()
    assert len(calls) == 2 and fresh["months"][-1]["import_wh"] == pytest.approx(
        first["months"][-1]["import_wh"] + 1000, abs=20)
    monkeypatch.setattr(money, "MONEY_MAX_AGE_S", 0.0)
    assert c.get("/api/v1/money").json()["bill"]["months"][-1]["import_wh"] == fresh["months"][-1]["import_wh"]


def test_the_owner_uploads_a_tariff_kept_in_the_data_dir(sim, tmp_path, caplog):
    site = SiteTariff(tmp_path, load=load_tariff)
    c = client_of(sim, site)
    assert c.get("/api/v1/tariff").json()["can_upload"] is True
    with caplog.at_level(logging.INFO, logger="homegrid.hub.tariff_file"):
        r = c.put("/api/v1/tariff", json={"text": FLAT_TOML, "reason": "moved to the flat plan"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] and body["tariff"]["name"] == "Flat 25" and body["origin"] == "upload"
    assert body["warnings"] == [] and body["uploaded"]["format"] == "toml"
    assert body["tariff"]["periods"] == [{"period": 0, "name": "period 0",
                                          "tiers": [{"buy": 0.25, "sell": 0.05, "max_kwh": None}]}]
    assert "moved to the flat plan" in caplog.text and "Flat 25" in caplog.text
    kept = json.loads((tmp_path / TARIFF_FILE).read_text())
    assert kept["text"] == FLAT_TOML and kept["reason"] == "moved to the flat plan"
    bill = c.get("/api/v1/bill", params={"from": "2025-06-02", "to": "2025-06-02"}).json()
    (m,) = bill["months"]
    assert bill["tariff"] == "Flat 25" and m["energy"] == pytest.approx(m["import_wh"] / 1000 * 0.25, abs=1e-3)
    assert m["export_credit"] == pytest.approx(m["export_wh"] / 1000 * 0.05, abs=1e-3)
    # a URDB record, with what the reader leaves out named back
    r = c.put("/api/v1/tariff", json={"text": shipped_urdb(drop=("dgrules",)), "reason": "back to RE-TOU"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tariff"]["name"] == "Residential Energy Time Of Use (Schedule RE-TOU)"
    assert body["uploaded"]["format"] == "urdb-json" and body["tariff"]["fixed_monthly"] == pytest.approx(5.71)
    assert [w.split(":")[0] for w in body["warnings"]] == ["dgrules"]
    assert len(body["tariff"]["periods"]) == 5
    # a hub started again reads the owner's tariff back from the data dir
    again = SiteTariff(tmp_path, load=load_tariff).describe()
    assert again["tariff"]["name"] == body["tariff"]["name"] and again["warnings"] == body["warnings"]
    assert again["uploaded"]["reason"] == "back to RE-TOU"
    assert [h["reason"] for h in again["history"]] == ["moved to the flat plan", "back to RE-TOU"]


def test_a_bad_tariff_is_refused_by_name_and_changes_nothing(sim, tmp_path):
    site = SiteTariff(tmp_path, load=load_tariff, configured=lambda: TOU)
    c = client_of(sim, site)
    r = c.put("/api/v1/tariff", json={"text": FLAT_TOML + "colour = 1\n", "reason": "test"})
    assert r.status_code == 422 and "colour: unknown key" in r.json()["detail"]
    r = c.put("/api/v1/tariff", json={"text": shipped_urdb(drop=("energyratestructure",)), "reason": ""})
    assert r.status_code == 422 and "energyratestructure" in r.json()["detail"]
    assert c.put("/api/v1/tariff", json={"text": "{not json", "reason": ""}).status_code == 422
    assert not (tmp_path / TARIFF_FILE).exists()
    body = c.get("/api/v1/tariff").json()
    assert body["tariff"]["name"] == "TOU test" and body["origin"] == "config"


def test_a_hub_without_a_reader_or_data_dir_refuses_uploads(sim, tmp_path):
    for site in (SiteTariff(tmp_path), SiteTariff(None, load=load_tariff)):
        r = client_of(sim, site).put("/api/v1/tariff", json={"text": FLAT_TOML, "reason": ""})
        assert r.status_code == 409 and "takes no tariff uploads" in r.json()["detail"]


def test_the_hubs_tariff_from_its_config(tmp_path):
    virtual = SiteTariff.from_config(Config(), tmp_path).describe()  # the virtual home: the shipped RE-TOU rate
    assert virtual["origin"] == "config" and virtual["tariff"]["name"].startswith("Residential Energy Time Of Use")
    assert virtual["can_upload"] and virtual["error"] is None
    assert SiteTariff.from_config(Config(tariff=TariffConfig(file="none")), tmp_path).current() is None
    broken = SiteTariff.from_config(Config(tariff=TariffConfig(file=str(tmp_path / "missing.toml"))), tmp_path)
    assert broken.current() is None and "missing.toml" in broken.describe()["error"]
    # the config's export terms apply to an upload too: they are the site's metering
    net_billing = Config(tariff=TariffConfig(export="net-billing", sell_price=0.03))
    site = SiteTariff.from_config(net_billing, tmp_path)
    assert site.current().export.rule is ExportRule.NET_BILLING
    tariff, _ = site.upload(FLAT_TOML, by="test", reason="")
    assert tariff.export.sell_price == 0.03 and site.current() is tariff


def test_only_the_owner_changes_the_tariff(sim, tmp_path, caplog):
    site = SiteTariff(tmp_path / "data", load=load_tariff)
    app = create_app(Queries(sim, NEW_YORK), tariff=site)
    owner = behind_the_door(app, tmp_path / "data")
    stranger = TestClient(app)
    r = stranger.put("/api/v1/tariff", json={"text": FLAT_TOML, "reason": "sneaky"})
    assert r.status_code == 401 and "owner's credential" in r.json()["detail"]
    r = stranger.put("/api/v1/tariff", content=FLAT_TOML, headers={"Content-Type": "text/plain",
                                                                   "Authorization": "Bearer wrong"})
    assert r.status_code == 415
    assert site.current() is None and not (tmp_path / "data" / TARIFF_FILE).exists()
    assert stranger.get("/api/v1/tariff").status_code == 200  # reads are open on loopback
    with caplog.at_level(logging.INFO, logger="homegrid.hub.tariff_file"):
        r = owner.put("/api/v1/tariff", json={"text": FLAT_TOML, "reason": "new contract"})
    assert r.status_code == 200 and site.current() is not None and site.current().name == "Flat 25"
    assert "owner token" in caplog.text and "new contract" in caplog.text
    assert json.loads((tmp_path / "data" / TARIFF_FILE).read_text())["by"] == "owner token"


def test_prices_follow_a_dynamic_series_and_net_metering(recorder, store):
    from homegrid.tariffs import DynamicPrices
    from homegrid.tariffs.meters import export_price, import_price

    a, b = local_day_bounds(date(2025, 6, 1), NEW_YORK)
    t = np.arange(a, b, 3_600_000, dtype=np.int64)
    dyn = Tariff("spot", TOU.energy, dynamic=DynamicPrices(t[:12], 3_600_000, np.linspace(0.1, 0.2, 12),
                                                           np.full(12, 0.02), adder=0.01, percent=10))
    buy = import_price(dyn, t, NEW_YORK.key)
    assert buy[:12] == pytest.approx(np.linspace(0.1, 0.2, 12) * 1.1 + 0.01) and np.isnan(buy[12:]).all()
    assert export_price(dyn, t[:12], NEW_YORK.key) == pytest.approx(np.full(12, 0.02))
    nm = TOU.with_export(ExportTerms(ExportRule.NET_METERING))
    assert export_price(nm, t, NEW_YORK.key) == pytest.approx(import_price(nm, t, NEW_YORK.key))
    fixed_sell = TOU.with_export(ExportTerms(ExportRule.BUY_ALL_SELL_ALL, sell_price=0.07))
    assert export_price(fixed_sell, t, NEW_YORK.key) == pytest.approx(np.full(24, 0.07))
    assert export_price(TOU.with_export(ExportTerms(ExportRule.NONE)), t, NEW_YORK.key) == pytest.approx(0)
