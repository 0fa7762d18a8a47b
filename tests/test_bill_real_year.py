"""``homegrid bill`` on an imported real year: the emhass household in France (../shared/data, section 1.1: load and
PV every 30 minutes, 2024-02-28 to 2025-02-27, MIT), under emhass's own peak / off-peak prices (HP 0.1907, HC 0.1419
EUR/kWh, export 0.1419), in Europe/Paris with both DST days.

The file is turned into homegrid's canonical CSV (home and solar power, the grid their difference; rows with no load
left out), imported, and billed. Every month's energy charge is checked against the store's own hour rollups priced
hour by hour with zoneinfo's clock (peak 06-22 local), and the hours the file does not cover are listed.
"""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from homegrid.cli import main
from homegrid.hub.service import open_store
from tests.conftest import SHARED_DATA

SOURCE = SHARED_DATA / "load" / "emhass_household_fr_2024-02_2025-02_30min.csv"
TZ = ZoneInfo("Europe/Paris")
HP, HC, SELL = 0.1907, 0.1419, 0.1419

TARIFF = f"""
name = "emhass HP/HC"
currency = "EUR"
source = "emhass defaults (davidusb-geek/emhass), heures pleines 06-22"

[periods.HC]
price = {HC}
sell = {SELL}

[periods.HP]
price = {HP}
sell = {SELL}

[seasons.all]
months = "Jan-Dec"
every_day = {{ HP = "6-22", HC = "22-6" }}

[export]
rule = "net-billing"
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    if not SOURCE.exists():
        pytest.skip(f"{SOURCE} is not here (../shared/data)")
    root = tmp_path_factory.mktemp("realyear")
    config = root / "homegrid.toml"
    config.write_text('[site]\ntimezone = "Europe/Paris"\n[accounting]\nmax_gap_s = 1800\n'
                      '[tariff]\nfile = "hphc.toml"\n')
    (root / "hphc.toml").write_text(TARIFF)
    canonical = root / "house.csv"
    kept = 0
    with SOURCE.open() as src, canonical.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["time", "home_power", "solar_power", "grid_power"])
        for row in csv.DictReader(src):
            load, pv = float(row["load_w_excl_deferrable"] or "nan"), float(row["pv_w"] or "nan")
            if math.isnan(load):
                continue
            pv = 0.0 if math.isnan(pv) else max(pv, 0.0)
            writer.writerow([row["timestamp_utc"], load, pv, load - pv])
            kept += 1
    data = root / "data"
    assert main(["import", str(canonical), "--create", "--data-dir", str(data), "--config", str(config)]) == 0
    return root, config, data, kept


def test_a_real_year_is_billed_hour_by_hour_in_local_time(imported, capsys):
    _, config, data, kept = imported
    assert kept > 17_000  # of the file's 17,524 half-hours, those with a load
    capsys.readouterr()
    assert main(["bill", "--from", "2024-03-01", "--to", "2025-02-26", "--json", "--data-dir", str(data),
                 "--config", str(config)]) == 0
    bill = json.loads(capsys.readouterr().out)
    assert bill["currency"] == "EUR" and len(bill["months"]) == 12
    hours = open_store(data).read_rollup("hour", 0, 2**62)
    by_month: dict[str, list[float]] = {}
    for t, imp, exp in zip(hours.start_ms, hours.columns["grid_import"], hours.columns["grid_export"], strict=True):
        local = datetime.fromtimestamp(t / 1000, UTC).astimezone(TZ)
        if not (datetime(2024, 3, 1, tzinfo=TZ) <= local < datetime(2025, 2, 27, tzinfo=TZ)):
            continue
        price = HP if 6 <= local.hour < 22 else HC
        acc = by_month.setdefault(f"{local.year:04d}-{local.month:02d}", [0.0, 0.0])
        acc[0] += imp / 1000 * price
        acc[1] += exp / 1000 * SELL
    for m in bill["months"]:
        energy, credit = by_month[m["month"]]
        assert m["energy"] == pytest.approx(energy, abs=0.01), m["month"]
        assert m["export_credit"] == pytest.approx(credit, abs=0.01), m["month"]
    october = next(m for m in bill["months"] if m["month"] == "2024-10")
    assert october["days"] == 31  # 31 local days, one of 25 hours
    # the rows without a load leave hours out; those hours are listed, not priced as zero
    assert 0 < len(bill["missing_hours"]) < 400
    assert sum(m["missing_hours"] for m in bill["months"]) == len(bill["missing_hours"])
    # the sun paid for part of the year; without a battery the actual bill is the solar-only one
    assert bill["savings"]["solar"] > 100
    assert bill["savings"]["battery"] == pytest.approx(0.0, abs=0.5)
