"""Dynamic prices wired to the site (issue 13): ``[tariff] prices`` read by site_tariff from a price CSV or a live
source's cache, the hub's task keeping the cache fresh, and the merge of fetched prices into the cache.

The prices are aWATTar's real reply of 2024-06-14..17 in tests/fixtures/prices (its README gives the provenance),
served through httpx.MockTransport sliced to the span each request asks for; nothing reaches the network.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from homegrid.config import Config, PowerwallConfig, TariffConfig, load_config
from homegrid.devices.prices import AwattarSource, parse_marketdata
from homegrid.hub import price_cache
from homegrid.hub.price_cache import (
    PriceCacheTask,
    cache_path,
    fetch_into_cache,
    merge_into_cache,
    merge_series,
    price_cache_for,
    read_cache,
    spans,
    write_cache,
)
from homegrid.hub.tariff import site_prices, site_tariff
from homegrid.readings.prices import read_price_csv, series_from_intervals, write_price_csv
from homegrid.tariffs import ExportRule, ExportTerms, TariffError
from homegrid.timezones import DAY_MS, HOUR_MS, parse_iso_ms

FIXTURES = Path(__file__).parent / "fixtures" / "prices"
RECORDED = FIXTURES / "awattar_de_2024-06-14_72h.json"
BERLIN = ZoneInfo("Europe/Berlin")
START, END = 1718316000000, 1718575200000  # the recorded reply: 2024-06-14 00:00 .. 06-17 00:00 CEST
NET_BILLING = 'name = "aWATTar hourly"\ncurrency = "EUR"\n[energy]\nprice = 0\n[export]\nrule = "net-billing"\n' \
              "sell_price = 0.08\n"


def recorded() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RECORDED.read_text(encoding="utf-8"))
    return doc


def sliced(seen: list[httpx.Request] | None = None, scale: float = 1.0) -> httpx.MockTransport:
    """aWATTar as it answers: the recorded entries inside the span asked for (prices times ``scale``)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        q = parse_qs(request.url.query.decode())
        a, b = int(q["start"][0]), int(q["end"][0])
        doc = recorded()
        doc["data"] = [e | {"marketprice": round(e["marketprice"] * scale, 2)} for e in doc["data"]
                       if a <= e["start_timestamp"] < b]
        return httpx.Response(200, json=doc)

    return httpx.MockTransport(handler)


def failing(status: int = 503) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, text="maintenance"))


def _config(tmp_path: Path, tariff: str, *, rates: str = NET_BILLING, prices_csv: str | None = None) -> Config:
    (tmp_path / "rates.toml").write_text(rates, encoding="utf-8")
    if prices_csv is not None:
        (tmp_path / "spot.csv").write_text(prices_csv, encoding="utf-8")
    path = tmp_path / "homegrid.toml"
    path.write_text('[site]\ntimezone = "Europe/Berlin"\n[tariff]\nfile = "rates.toml"\n' + tariff, encoding="utf-8")
    return load_config(path)


def _recorded_csv(tmp_path: Path) -> str:
    path = tmp_path / "recorded.csv"
    write_price_csv(path, parse_marketdata(recorded()), "Europe/Berlin")
    return path.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- site_tariff


def test_a_price_csv_beside_the_config_with_the_terms(tmp_path):
    config = _config(tmp_path, 'prices = "spot.csv"\nprice_adder = 0.2\nprice_percent = 19\n',
                     prices_csv=_recorded_csv(tmp_path))
    tariff = site_tariff(config)
    assert tariff is not None and tariff.dynamic is not None and tariff.currency == "EUR"
    assert tariff.export.rule is ExportRule.NET_BILLING
    t = np.array([START, parse_iso_ms("2024-06-15T14:30:00+02:00"), END - 1, END], dtype=np.int64)
    buy, known = tariff.dynamic.buy(t)
    assert known.tolist() == [True, True, True, False]  # the last hour ends at 06-17 00:00
    assert buy[0] == pytest.approx(0.08313 * 1.19 + 0.2)
    assert buy[1] == pytest.approx(-0.08001 * 1.19 + 0.2)  # the lowest hour, Saturday 14:00
    assert tariff.dynamic.sell(t) is None  # aWATTar has no export price: the tariff's sell_price applies


def test_a_csv_with_export_prices_and_their_terms(tmp_path):
    csv = ("time,import_price,export_price\n2024-06-14T00:00:00+02:00,0.10,0.05\n"
           "2024-06-14T01:00:00+02:00,0.20,0.06\n")
    config = _config(tmp_path, 'prices = "spot.csv"\nexport_price_adder = -0.01\nexport_price_percent = 10\n',
                     prices_csv=csv)
    tariff = site_tariff(config)
    assert tariff is not None and tariff.dynamic is not None
    sold = tariff.dynamic.sell(np.array([START, START + HOUR_MS], dtype=np.int64))
    assert sold is not None
    assert sold[0].tolist() == pytest.approx([0.05 * 1.1 - 0.01, 0.06 * 1.1 - 0.01])
    assert tariff.dynamic.buy(np.array([START + HOUR_MS]))[0][0] == pytest.approx(0.20)


def test_bad_rows_are_logged_with_their_count_and_no_good_row_names_the_file(tmp_path, caplog):
    csv = ("time,import_price\n2024-06-14T00:00:00+02:00,0.10\n2024-06-14T01:00:00,0.11\n"
           "2024-06-14T02:00:00+02:00,n/a\n2024-06-14T03:00:00+02:00,0.13\n")
    config = _config(tmp_path, 'prices = "spot.csv"\n', prices_csv=csv)
    with caplog.at_level(logging.WARNING, logger="homegrid.hub.tariff"):
        tariff = site_tariff(config)
    assert tariff is not None and tariff.dynamic is not None and len(tariff.dynamic.t_ms) == 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"prices {tmp_path / 'spot.csv'}: 2 rows not used (the first: ")
    assert "spot.csv:3: field 'time'" in message
    config = _config(tmp_path, 'prices = "spot.csv"\n', prices_csv="time,import_price\n2024-06-14T00:00:00,1\n")
    with pytest.raises(TariffError) as info:
        site_tariff(config)
    assert str(info.value) == (f"[tariff] prices: {tmp_path / 'spot.csv'}: no row of the price file is good "
                               "(1 rows not used)")
    config = _config(tmp_path, 'prices = "spot.csv"\n', prices_csv="when,import_price\n")
    with pytest.raises(TariffError, match=r"^\[tariff\] prices: .*spot.csv:1: unknown column 'when'"):
        site_tariff(config)
    config = _config(tmp_path, 'prices = "absent.csv"\n')
    with pytest.raises(TariffError) as info:
        site_tariff(config)
    assert str(info.value) == (f"[tariff] prices: {tmp_path / 'absent.csv'}: cannot read the price file "
                               "(No such file or directory)")


def test_a_live_source_is_read_from_its_cache_in_the_data_dir(tmp_path):
    config = _config(tmp_path, 'prices = "awattar-de"\nprice_adder = 0.1\n')
    data = tmp_path / "data"
    with pytest.raises(TariffError) as info:
        site_tariff(config, data)
    assert str(info.value) == (
        f"[tariff] prices = 'awattar-de': no prices cached yet ({data / 'prices' / 'awattar-de.csv'} does not "
        "exist); run `homegrid prices fetch --from DATE --to DATE` (the running hub also fetches today and "
        "tomorrow every hour)")
    with pytest.raises(TariffError, match="cached in the data dir, and none is given"):
        site_tariff(config)
    write_cache(cache_path(data, "awattar-de"), parse_marketdata(recorded()), "Europe/Berlin")
    tariff = site_tariff(config, data)
    assert tariff is not None and tariff.dynamic is not None and len(tariff.dynamic.t_ms) == 72
    assert tariff.dynamic.buy(np.array([START]))[0][0] == pytest.approx(0.08313 + 0.1)


def test_net_metering_with_dynamic_prices_names_the_keys(tmp_path):
    rates = NET_BILLING.replace('"net-billing"', '"net-metering"').replace("sell_price = 0.08\n", "")
    config = _config(tmp_path, 'prices = "spot.csv"\n', rates=rates, prices_csv=_recorded_csv(tmp_path))
    with pytest.raises(TariffError) as info:
        site_tariff(config)
    assert str(info.value) == (
        "[tariff] prices is set, and the export rule is net-metering (the tariff's own or [tariff] export): net "
        "metering nets kWh by time-of-use period, which dynamic prices do not have; set [tariff] export = "
        '"net-billing" (or buy-all-sell-all, none), or leave [tariff] prices empty')
    config = _config(tmp_path, 'prices = "spot.csv"\nexport = "net-billing"\n', rates=rates)
    tariff = site_tariff(config)
    assert tariff is not None and tariff.dynamic is not None and tariff.export.rule is ExportRule.NET_BILLING


def test_prices_without_a_tariff_file_are_refused_and_no_prices_change_nothing(tmp_path):
    config = Config(powerwall=PowerwallConfig(host="gw"), tariff=TariffConfig(prices="awattar-de"))
    with pytest.raises(TariffError, match=r"\[tariff\] prices is set but there is no tariff to go with it"):
        site_tariff(config, tmp_path)
    assert site_prices(Config(), tmp_path) is None
    plain = site_tariff(Config(), tmp_path)
    assert plain is not None and plain.dynamic is None


# ----------------------------------------------------------------------------- the merge


def _series(starts_h: list[int], prices: list[float], step_h: float = 1.0) -> Any:
    t = START + np.array(starts_h, dtype=np.int64) * HOUR_MS
    return series_from_intervals(t, np.array(prices), end_ms=t + int(step_h * HOUR_MS), source="test")


def test_the_merge_keeps_the_old_where_nothing_new_came_and_the_new_wins_where_it_did():
    old = _series([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])
    new = _series([2, 3, 4, 5], [30.0, 40.0, 50.0, 60.0])
    merged = merge_series(old, new)
    assert ((merged.t_ms - START) // HOUR_MS).tolist() == [0, 1, 2, 3, 4, 5]
    assert merged.import_price.tolist() == [1.0, 2.0, 30.0, 40.0, 50.0, 60.0] and merged.gaps == ()
    assert merge_series(None, new) is new
    # quarter hours replace the hour they split; a gap between old and new stays a gap
    quarters = series_from_intervals(START + HOUR_MS + np.arange(4) * 900_000, np.array([5.0, 6.0, 7.0, 8.0]),
                                     end_ms=START + HOUR_MS + np.arange(1, 5) * 900_000)
    merged = merge_series(old, quarters)
    assert merged.import_price.tolist() == [1.0, 5.0, 6.0, 7.0, 8.0, 3.0, 4.0]
    far = merge_series(old, _series([10], [9.0]))
    assert [(g.start_ms - START) // HOUR_MS for g in far.gaps] == [4] and far.gaps[0].duration_ms == 6 * HOUR_MS


@settings(max_examples=60, deadline=None)
@given(old=st.sets(st.integers(0, 48), min_size=1), new=st.sets(st.integers(0, 48), min_size=1))
def test_merged_hours_are_the_union_and_each_price_is_the_newest(old, new):
    a = _series(sorted(old), [float(h) for h in sorted(old)])
    b = _series(sorted(new), [100.0 + h for h in sorted(new)])
    merged = merge_series(a, b)
    hours = ((merged.t_ms - START) // HOUR_MS).tolist()
    assert hours == sorted(old | new)
    assert merged.import_price.tolist() == [100.0 + h if h in new else float(h) for h in hours]
    assert (merged.end_ms - merged.t_ms == HOUR_MS).all()


def test_merges_at_once_lose_nothing(tmp_path):
    """The hub's task and `homegrid prices fetch` may merge at the same moment: the lock keeps both."""
    from concurrent.futures import ThreadPoolExecutor

    path = cache_path(tmp_path, "awattar-de")
    with ThreadPoolExecutor(max_workers=8) as pool:
        counts = list(pool.map(lambda h: merge_into_cache(path, _series([h], [float(h)]), "UTC"), range(24)))
    cached = read_cache(path)
    assert cached is not None and ((cached.t_ms - START) // HOUR_MS).tolist() == list(range(24))
    assert cached.import_price.tolist() == [float(h) for h in range(24)] and max(counts) == 24


def test_long_spans_are_cut_into_requests_of_366_days():
    assert spans(0, DAY_MS) == [(0, DAY_MS)]
    assert spans(0, 366 * DAY_MS) == [(0, 366 * DAY_MS)]
    assert spans(0, 800 * DAY_MS) == [(0, 366 * DAY_MS), (366 * DAY_MS, 732 * DAY_MS), (732 * DAY_MS, 800 * DAY_MS)]


# ----------------------------------------------------------------------------- the hub's task


class Clock:
    def __init__(self, text: str) -> None:
        self.now = datetime.fromisoformat(text)

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


def test_the_task_fetches_today_and_tomorrow_and_merges_newer_prices(tmp_path):
    seen: list[httpx.Request] = []
    path = cache_path(tmp_path, "awattar-de")
    clock = Clock("2024-06-14T15:05:00+02:00")
    task = PriceCacheTask(AwattarSource("de", transport=sliced(seen)), path, BERLIN, clock)
    assert asyncio.run(task.refresh()) is True
    q = parse_qs(seen[0].url.query.decode())
    assert (int(q["start"][0]), int(q["end"][0])) == (START, START + 2 * DAY_MS)  # today and tomorrow, local
    cached = read_cache(path)
    assert cached is not None and len(cached) == 48 and cached.import_price[0] == pytest.approx(0.08313)
    assert path.read_text().splitlines()[1] == "2024-06-14T00:00:00+02:00,0.08313"
    assert task.status() | {"path": None} == {"source": "aWATTar DE", "path": None, "fetches": 1, "failures": 0,
                                              "last_fetch": "2024-06-14T13:05:00+00:00", "last_error": None,
                                              "cached_intervals": 48}
    # the next day: the day after joins, and a corrected (here doubled) price replaces the cached one
    clock.now = datetime.fromisoformat("2024-06-15T15:05:00+02:00")
    task.source = AwattarSource("de", transport=sliced(scale=2.0))
    assert asyncio.run(task.refresh()) is True
    cached = read_cache(path)
    assert cached is not None and len(cached) == 72 and cached.gaps == ()
    assert cached.import_price[0] == pytest.approx(0.08313)  # the 14th: not fetched again, kept
    assert cached.import_price[24] == pytest.approx(2 * parse_marketdata(recorded()).import_price[24], abs=1e-5)
    assert sorted(p.name for p in path.parent.iterdir()) == ["awattar-de.csv", "awattar-de.csv.lock"]  # no .tmp


def test_a_failed_fetch_leaves_the_cache_untouched_and_is_counted(tmp_path, caplog):
    path = cache_path(tmp_path, "awattar-de")
    clock = Clock("2024-06-14T15:05:00+02:00")
    task = PriceCacheTask(AwattarSource("de", transport=sliced()), path, BERLIN, clock)
    assert asyncio.run(task.refresh())
    before = path.read_bytes()
    task.source = AwattarSource("de", transport=failing())
    with caplog.at_level(logging.WARNING, logger="homegrid.hub.price_cache"):
        assert asyncio.run(task.refresh()) is False
        task.source = AwattarSource("de", transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")))
        assert asyncio.run(task.refresh()) is False
    assert path.read_bytes() == before
    assert (task.fetches, task.failures) == (1, 2)
    assert task.last_error is not None and "not JSON" in task.last_error
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("prices from aWATTar DE not cached (failure 1): https://api.awattar.de/v1/"
                                  "marketdata?start=1718316000000&end=1718488800000: HTTP 503 Service Unavailable")
    assert sorted(p.name for p in path.parent.iterdir()) == ["awattar-de.csv", "awattar-de.csv.lock"]


def test_a_failed_write_leaves_the_old_cache(tmp_path, monkeypatch):
    path = cache_path(tmp_path, "awattar-de")
    write_cache(path, _series([0, 1], [1.0, 2.0]), "UTC")
    before = path.read_bytes()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(price_cache, "write_price_csv", broken)
    task = PriceCacheTask(AwattarSource("de", transport=sliced()), path, BERLIN, Clock("2024-06-14T10:00:00+02:00"))
    assert asyncio.run(task.refresh()) is False
    assert task.last_error is not None and "No space left" in task.last_error
    assert path.read_bytes() == before and not list(path.parent.glob("*.tmp"))


def test_the_task_runs_until_the_hub_stops_and_survives_failures(tmp_path):
    path = cache_path(tmp_path, "awattar-de")
    calls: list[int] = []

    async def scenario() -> None:
        stopping = asyncio.Event()
        flaky = [failing(), sliced()]

        class Source:
            name = "flaky"

            async def fetch(self, a: int, b: int) -> Any:
                calls.append(a)
                source = AwattarSource("de", transport=flaky[min(len(calls) - 1, 1)])
                try:
                    return await source.fetch(a, b)
                finally:
                    if len(calls) == 2:
                        stopping.set()

        task = PriceCacheTask(Source(), path, BERLIN, Clock("2024-06-14T10:00:00+02:00"), interval_s=0.01)
        await asyncio.wait_for(task.run(stopping), timeout=10)
        assert (task.failures, task.fetches) == (1, 1)

    asyncio.run(scenario())
    assert len(calls) == 2 and path.exists()


def test_the_hub_runs_the_task_only_for_a_live_source(tmp_path, monkeypatch):
    monkeypatch.setattr(price_cache, "TRANSPORT", sliced())
    config = _config(tmp_path, 'prices = "awattar-at"\n')
    task = price_cache_for(config, tmp_path / "data")
    assert task is not None and task.path == tmp_path / "data" / "prices" / "awattar-at.csv"
    assert isinstance(task.source, AwattarSource) and task.source.country == "at"
    assert task.source.transport is price_cache.TRANSPORT
    assert price_cache_for(_config(tmp_path, 'prices = "spot.csv"\n'), tmp_path) is None
    assert price_cache_for(Config(), tmp_path) is None


def test_the_hub_starts_the_task_and_reports_it(tmp_path, monkeypatch):
    from homegrid.hub.service import Hub

    from .test_poller_supervision import Scripted
    from .waiting import wait_for_async

    monkeypatch.setattr(price_cache, "TRANSPORT", sliced())
    config = _config(tmp_path, 'prices = "awattar-de"\n')
    data = tmp_path / "data"
    data.mkdir()
    clock = Clock("2024-06-14T10:00:00+02:00")
    hub = Hub(config, data, devices=[(Scripted(clock=clock), 0.05)], clock=clock)
    assert hub.price_cache is not None
    cache = hub.price_cache

    async def run() -> None:
        task = asyncio.create_task(hub.run_pollers())
        try:
            await wait_for_async(lambda: cache.fetches >= 1, timeout=10.0, interval=0.01)
        finally:
            hub.stop()
            await asyncio.wait_for(task, 10.0)

    try:
        asyncio.run(run())
        status = hub.status()
        assert status["prices"]["source"] == "aWATTar DE" and status["prices"]["cached_intervals"] == 48
        assert status["tasks"]["prices"] == {"restarts": 0, "last_crash": None}
        tariff = site_tariff(config, data)
        assert tariff is not None and tariff.dynamic is not None and len(tariff.dynamic.t_ms) == 48
    finally:
        hub.store.close()
    plain = Hub(Config(), tmp_path / "plain")
    try:
        assert plain.price_cache is None and plain.status()["prices"] is None
    finally:
        plain.store.close()


def test_a_backfill_records_spans_without_prices_as_gaps(tmp_path):
    path = cache_path(tmp_path, "awattar-de")
    update = asyncio.run(fetch_into_cache(AwattarSource("de", transport=sliced()), path, START - DAY_MS,
                                          END + DAY_MS, "Europe/Berlin"))
    assert (update.fetched, update.cached, update.first_ms, update.last_ms) == (72, 72, START, END)
    assert [(g.start_ms, g.end_ms) for g in update.gaps] == [(START - DAY_MS, START), (END, END + DAY_MS)]
    assert read_price_csv(path).series is not None


def test_the_readmes_dynamic_prices_example_is_a_config_that_reads(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Dynamic prices"):readme.index("## Storm mode")]
    block = section[section.index("```toml\n") + 8:]
    path = tmp_path / "homegrid.toml"
    path.write_text(block[:block.index("```")], encoding="utf-8")
    (tmp_path / "awattar.toml").write_text(
        'name = "aWATTar HOURLY"\ncurrency = "EUR"\nfixed_monthly = 5.75\n[energy]\nprice = 0\n[export]\n'
        'rule = "net-billing"\nsell_price = 0.08\n', encoding="utf-8")
    config = load_config(path)
    assert config.tariff.prices == "awattar-de" and config.tariff.price_percent == 19.0
    write_cache(cache_path(tmp_path / "data", "awattar-de"), parse_marketdata(recorded()), "Europe/Berlin")
    tariff = site_tariff(config, tmp_path / "data")
    assert tariff is not None and tariff.dynamic is not None
    assert tariff.dynamic.buy(np.array([START]))[0][0] == pytest.approx(0.08313 * 1.19 + 0.1805)


def test_the_running_hubs_prices_follow_the_cache(tmp_path, caplog):
    from homegrid.hub.tariff import SitePrices

    config = _config(tmp_path, 'prices = "awattar-de"\n')
    data = tmp_path / "data"
    base = site_tariff(config.model_copy(update={"tariff": config.tariff.model_copy(update={"prices": ""})}))
    assert base is not None and base.dynamic is None
    current = SitePrices(config, data)
    with caplog.at_level(logging.ERROR, logger="homegrid.hub.tariff"):
        assert current(base) is None and current(base) is None
    assert current.error is not None and "homegrid prices fetch" in current.error
    assert len(caplog.records) == 1  # once per change of the file, not per call
    path = cache_path(data, "awattar-de")
    write_cache(path, _series([0, 1], [0.1, 0.2]), "Europe/Berlin")
    first = current(base)
    assert first is not None and first.dynamic is not None and len(first.dynamic.t_ms) == 2
    assert current(base) is first and current.error is None  # the same object while nothing changes
    task = PriceCacheTask(AwattarSource("de", transport=sliced()), path, BERLIN, Clock("2024-06-14T10:00:00+02:00"))
    assert asyncio.run(task.refresh())
    fresh = current(base)
    assert fresh is not first and fresh is not None and fresh.dynamic is not None
    assert len(fresh.dynamic.t_ms) == 48 and fresh.name == base.name
    metered = base.with_export(ExportTerms(ExportRule.NET_METERING))
    assert current(metered) is None and current.error is not None and "net-metering" in current.error
    with pytest.raises(TariffError, match=r"set \[tariff\] export = \"net-billing\""):
        current.check(metered)
    assert current(base) is fresh and current.error is None
