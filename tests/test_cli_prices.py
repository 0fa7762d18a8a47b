"""``homegrid prices fetch`` and ``homegrid bill`` with dynamic prices, end to end on a simulated virtual home in
Berlin over the three days of aWATTar's recorded reply (2024-06-14..16, tests/fixtures/prices: real prices, with
the negative hours of that sunny weekend). The live source answers through httpx.MockTransport, set at the seam
``homegrid.hub.price_cache.TRANSPORT``; nothing reaches the network.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import httpx
import pytest

from homegrid.cli import main
from homegrid.hub import price_cache
from homegrid.hub.service import open_store
from homegrid.timezones import HOUR_MS, local_day_bounds

from .test_dynamic_prices import BERLIN, END, START, failing, recorded, sliced

RATES = ('name = "aWATTar HOURLY"\ncurrency = "EUR"\nfixed_monthly = 5.75\n[energy]\nprice = 0\n[export]\n'
         'rule = "net-billing"\nsell_price = 0.08\n')
SITE = '[site]\ntimezone = "Europe/Berlin"\nlatitude = 52.52\nlongitude = 13.4\n'


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("HOMEGRID_DATA_DIR", raising=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> tuple[Path, Path]:
    """A data dir with 2024-06-14..16 simulated in Berlin, and its folder for configs."""
    root = tmp_path_factory.mktemp("dynamic")
    data = root / "data"
    data.mkdir()
    (root / "site.toml").write_text(SITE, encoding="utf-8")
    assert main(["simulate", "--config", str(root / "site.toml"), "--start", "2024-06-14", "--days", "3",
                 "--data-dir", str(data)]) == 0
    return root, data


def config(folder: Path, tariff: str) -> Path:
    (folder / "rates.toml").write_text(RATES, encoding="utf-8")
    path = folder / "homegrid.toml"
    path.write_text(SITE + '[tariff]\nfile = "rates.toml"\n' + tariff, encoding="utf-8")
    return path


def spot_csv(path: Path, hours: int = 72) -> Path:
    """The recorded reply's prices as a price CSV (per kWh, Berlin times), its first ``hours`` hours."""
    rows = ["time,import_price"]
    for e in recorded()["data"][:hours]:
        rows.append(f"{_berlin(e['start_timestamp'])},{e['marketprice'] / 1000!r}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _berlin(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, BERLIN).isoformat()


def hourly_import_kwh(data: Path) -> dict[int, tuple[float, float]]:
    """Each stored hour's import and export [kWh], by the hour's start [ms]."""
    store = open_store(data)
    try:
        table = store.read_rollup("hour", START, END, ("grid_import", "grid_export"))
    finally:
        store.close()
    return {int(t): (float(i) / 1000, float(e) / 1000)
            for t, i, e in zip(table.start_ms, table.columns["grid_import"], table.columns["grid_export"],
                               strict=True)}


def run_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ----------------------------------------------------------------------------- homegrid bill with prices


def test_the_bill_prices_each_hours_import_at_its_spot_price_with_the_terms(capsys, home, tmp_path):
    _, data = home
    cfg = config(tmp_path, "")
    prices = spot_csv(tmp_path / "spot.csv")
    out = run_json(capsys, "bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14",
                   "--to", "2024-06-16", "--prices", str(prices), "--price-adder", "0.2", "--price-percent", "19")
    hours = hourly_import_kwh(data)
    assert len(hours) == 72 and out["missing_hours"] == []
    spot = {e["start_timestamp"]: e["marketprice"] / 1000 for e in recorded()["data"]}  # EUR/MWh -> EUR/kWh
    energy = 0.0
    for t, (kwh_in, _) in hours.items():  # by hand: each hour's import at (spot * 1.19) + 0.2
        energy += kwh_in * (spot[t] * (1 + 19 / 100) + 0.2)
    sold = sum(kwh_out for _, kwh_out in hours.values()) * 0.08
    (month,) = out["months"]
    assert out["currency"] == "EUR" and out["tariff"] == "aWATTar HOURLY" and out["export_rule"] == "net-billing"
    assert energy > 0 and month["energy"] == pytest.approx(energy, abs=1e-3)
    assert month["export_credit"] == pytest.approx(sold, abs=1e-3)
    assert month["fixed"] == pytest.approx(5.75 * 3 / 30, abs=1e-3)  # three days of June's 30
    assert month["total"] == pytest.approx(month["fixed"] + energy - sold, abs=2e-3)
    # the terms matter: without them each hour costs its spot price
    bare = run_json(capsys, "bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14",
                    "--to", "2024-06-16", "--prices", str(prices))
    by_hand = sum(kwh_in * spot[t] for t, (kwh_in, _) in hours.items())
    assert bare["months"][0]["energy"] == pytest.approx(by_hand, abs=1e-3) and by_hand != pytest.approx(energy)


def test_a_price_csv_that_does_not_cover_the_span_is_a_clear_error(capsys, home, tmp_path):
    _, data = home
    cfg = config(tmp_path, "")
    short = spot_csv(tmp_path / "short.csv", hours=48)  # ends 2024-06-16 00:00 CEST
    capsys.readouterr()
    assert main(["bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14", "--to",
                 "2024-06-16", "--prices", str(short)]) == 2
    assert capsys.readouterr().err.strip() == (
        "homegrid: error: prices: the import price series does not cover 24 metered intervals, the first at "
        "2024-06-16T00:00:00+02:00")
    assert main(["bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14", "--to",
                 "2024-06-15", "--prices", str(short)]) == 0  # the two days it covers are priced
    capsys.readouterr()
    assert main(["bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14", "--to",
                 "2024-06-15", "--prices", str(tmp_path / "absent.csv")]) == 2
    assert f"--prices: {tmp_path / 'absent.csv'}: cannot read the price file" in capsys.readouterr().err


def test_the_configs_prices_and_net_metering(capsys, home, tmp_path):
    _, data = home
    spot_csv(tmp_path / "spot.csv")
    cfg = config(tmp_path, 'prices = "spot.csv"\nprice_adder = 0.2\nprice_percent = 19\n')
    args = ["bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14", "--to", "2024-06-16"]
    configured = run_json(capsys, *args)
    given = run_json(capsys, *args, "--prices", str(tmp_path / "spot.csv"))
    assert configured["total"] == given["total"] and configured["months"][0]["energy"] > 0
    other = run_json(capsys, *args, "--price-adder", "0")
    assert other["months"][0]["energy"] < configured["months"][0]["energy"]  # 0.2 per kWh less
    capsys.readouterr()
    assert main([*args, "--export", "net-metering"]) == 2
    assert ('[tariff] prices is set, and the export rule is net-metering (the tariff\'s own or --export)'
            in capsys.readouterr().err)
    assert main([*args, "--export", "net-metering", "--prices", str(tmp_path / "spot.csv")]) == 2
    assert capsys.readouterr().err.strip() == (
        "homegrid: error: --prices is set, and the export rule is net-metering (the tariff's own or --export): net "
        "metering nets kWh by time-of-use period, which dynamic prices do not have; give --export net-billing (or "
        "buy-all-sell-all, none), or leave it out")
    # --tariff is the file alone: the config's prices do not apply to it, --prices does
    rates = tmp_path / "other.toml"
    rates.write_text(RATES.replace("0.08", "0.05"), encoding="utf-8")
    alone = run_json(capsys, *args, "--tariff", str(rates))
    assert alone["months"][0]["energy"] == 0 and alone["months"][0]["export_credit"] > 0  # [energy] price = 0
    with_prices = run_json(capsys, *args, "--tariff", str(rates), "--prices", str(tmp_path / "spot.csv"))
    assert with_prices["months"][0]["energy"] == configured["months"][0]["energy"]
    capsys.readouterr()
    assert main([*args, "--tariff", str(rates), "--price-adder", "0.1"]) == 2
    assert capsys.readouterr().err.strip().endswith("apply to dynamic prices: give --prices FILE")
    plain = config(tmp_path, "")
    assert main(["bill", "--config", str(plain), "--data-dir", str(data), "--from", "2024-06-14", "--to",
                 "2024-06-16", "--price-adder", "0.1"]) == 2
    assert "--price-adder and --price-percent apply to dynamic prices" in capsys.readouterr().err


# ----------------------------------------------------------------------------- homegrid prices fetch


def test_fetch_fills_the_cache_and_the_bill_reads_it(capsys, home, tmp_path, monkeypatch):
    _, data = home
    seen: list[httpx.Request] = []
    monkeypatch.setattr(price_cache, "TRANSPORT", sliced(seen))
    cfg = config(tmp_path, 'prices = "awattar-de"\nprice_adder = 0.2\nprice_percent = 19\n')
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    capsys.readouterr()
    assert main(["prices", "fetch", "--config", str(cfg), "--data-dir", str(fresh), "--from", "2024-06-14",
                 "--to", "2024-06-16"]) == 0
    cache = fresh / "prices" / "awattar-de.csv"
    assert capsys.readouterr().out.splitlines() == [
        "aWATTar DE: 72 prices from 2024-06-14T00:00:00+02:00 to 2024-06-17T00:00:00+02:00",
        f"72 prices fetched; {cache} holds 72",
        "no gaps",
    ]
    assert [str(r.url) for r in seen] == [f"https://api.awattar.de/v1/marketdata?start={START}&end={END}"]
    assert cache.read_text().splitlines()[:2] == ["time,import_price", "2024-06-14T00:00:00+02:00,0.08313"]
    # the bill of the simulated home through the config's live source, from the cache
    (data / "prices").mkdir(exist_ok=True)
    (data / "prices" / "awattar-de.csv").write_bytes(cache.read_bytes())
    via_cache = run_json(capsys, "bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14",
                         "--to", "2024-06-16")
    spot_csv(tmp_path / "spot.csv")
    via_csv = run_json(capsys, "bill", "--config", str(config(tmp_path, "price_adder = 0.2\nprice_percent = 19\n")),
                       "--data-dir", str(data), "--from", "2024-06-14", "--to", "2024-06-16", "--prices",
                       str(tmp_path / "spot.csv"))
    assert via_cache["total"] == via_csv["total"] and via_cache["months"][0]["energy"] > 0


def test_fetch_reports_the_gaps_and_splits_long_spans(capsys, tmp_path, monkeypatch):
    seen: list[httpx.Request] = []
    monkeypatch.setattr(price_cache, "TRANSPORT", sliced(seen))
    cfg = config(tmp_path, 'prices = "awattar-de"\n')
    data = tmp_path / "data"
    data.mkdir()
    out = run_json(capsys, "prices", "fetch", "--config", str(cfg), "--data-dir", str(data), "--from", "2023-01-01",
                   "--to", "2024-06-18")
    first, _ = local_day_bounds(date(2023, 1, 1), BERLIN)
    _, last = local_day_bounds(date(2024, 6, 18), BERLIN)
    asked = [(int(r.url.params["start"]), int(r.url.params["end"])) for r in seen]
    assert len(asked) == 2 and asked[0][0] == first and asked[-1][1] == last
    assert asked[0][1] == asked[1][0] and asked[0][1] - asked[0][0] == 366 * 24 * HOUR_MS
    assert out["fetched"] == 72 and out["cached"] == 72 and out["source"] == "awattar-de"
    assert [(g["from"], g["to"], g["hours"]) for g in out["gaps"]] == [
        ("2023-01-01T00:00:00+01:00", "2024-01-02T00:00:00+01:00", 366 * 24),  # the first request: no prices
        ("2024-01-02T00:00:00+01:00", "2024-06-14T00:00:00+02:00", 164 * 24 - 1),
        ("2024-06-17T00:00:00+02:00", "2024-06-19T00:00:00+02:00", 48),
    ]
    capsys.readouterr()
    assert main(["prices", "fetch", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-16",
                 "--to", "2024-06-17"]) == 0
    text = capsys.readouterr().out
    assert "24 prices fetched" in text and "holds 72" in text
    assert "1 spans without prices:\n  2024-06-17T00:00:00+02:00 to 2024-06-18T00:00:00+02:00 (24 h)" in text


def test_a_failed_fetch_says_so_and_leaves_the_cache(capsys, tmp_path, monkeypatch):
    cfg = config(tmp_path, 'prices = "awattar-de"\n')
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr(price_cache, "TRANSPORT", sliced())
    args = ["prices", "fetch", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14", "--to",
            "2024-06-14"]
    assert main(args) == 0
    cache = data / "prices" / "awattar-de.csv"
    before = cache.read_bytes()
    monkeypatch.setattr(price_cache, "TRANSPORT", failing(503))
    capsys.readouterr()
    assert main([*args[:-3], "2024-06-15", "--to", "2024-06-16"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 503 Service Unavailable: maintenance" in err and f"{cache} keeps what was fetched" in err
    assert cache.read_bytes() == before


def test_fetch_needs_a_live_source(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(price_cache, "TRANSPORT", httpx.MockTransport(lambda r: httpx.Response(500)))
    cfg = config(tmp_path, 'prices = "spot.csv"\n')
    data = tmp_path / "data"
    data.mkdir()
    capsys.readouterr()
    assert main(["prices", "fetch", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14",
                 "--to", "2024-06-14"]) == 2
    assert capsys.readouterr().err.strip() == (
        "homegrid: error: no live price source: [tariff] prices is 'spot.csv'; set it to one of awattar-de, "
        "awattar-at or give --source")
    assert main(["prices", "fetch", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-15",
                 "--to", "2024-06-14", "--source", "awattar-at"]) == 2
    assert "--to is before --from" in capsys.readouterr().err


def test_an_uploaded_tariff_is_billed_with_the_configs_prices(capsys, home, tmp_path):
    import shutil

    from homegrid.config import load_config
    from homegrid.hub.tariff_file import SiteTariff

    _, shared = home
    data = tmp_path / "data"
    shutil.copytree(shared, data, ignore=shutil.ignore_patterns("prices", "*.lock"))
    spot_csv(tmp_path / "spot.csv")
    cfg = config(tmp_path, 'prices = "spot.csv"\n')
    SiteTariff.from_config(load_config(cfg), data).upload(RATES.replace("5.75", "9.0").replace("HOURLY", "UPLOADED"),
                                                           by="test", reason="")
    args = ["bill", "--config", str(cfg), "--data-dir", str(data), "--from", "2024-06-14", "--to", "2024-06-16"]
    out = run_json(capsys, *args)
    given = run_json(capsys, *args, "--tariff", str(tmp_path / "rates.toml"), "--prices", str(tmp_path / "spot.csv"))
    assert out["tariff"] == "aWATTar UPLOADED" and out["months"][0]["energy"] == given["months"][0]["energy"] != 0
    assert out["months"][0]["fixed"] == pytest.approx(9.0 * 3 / 30, abs=1e-3)
