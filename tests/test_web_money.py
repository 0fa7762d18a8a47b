"""The Money view, the day's prices, the battery's saving beside the outage sentence and the tariff upload, in a real
browser over a simulated store: every money figure on the page equals the API's, and only the owner sets the tariff.

The app is served in this process (uvicorn in a thread, behind the hub's door on loopback) over two months of the
virtual home written by ``homegrid simulate``; it starts with no tariff, the owner uploads one from the System
view."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from homegrid.api.app import create_app
from homegrid.api.planner import add_planner_routes
from homegrid.api.security import install_security, policy_for
from homegrid.api.settings import add_settings_routes
from homegrid.api.storm import add_storm_routes
from homegrid.cli import main
from homegrid.config import Config, PlannerConfig, ServerConfig, TariffConfig
from homegrid.hub.parts import outage_tracker_for
from homegrid.hub.planner_saving import PlannerSaving
from homegrid.hub.queries import Queries
from homegrid.hub.service import open_store
from homegrid.hub.tariff_file import SiteTariff
from homegrid.owner import OwnerKey, read_token

from .conftest import NEW_YORK
from .formatjs import run_format_js
from .test_web import DESKTOP, Page
from .waiting import wait_for

#: uploaded from the System view: peak 16:00-21:00 on weekdays all year, net billing
TARIFF_TEXT = """name = "Test TOU 4-9"
fixed_monthly = 10.0
[periods.off-peak]
price = 0.12
sell = 0.04
[periods.peak]
price = 0.32
sell = 0.04
[seasons.all]
months = "Jan-Dec"
weekday = { peak = "16-21", off-peak = ["0-16", "21-24"] }
weekend = { off-peak = "0-24" }
"""


class InProcess:
    """The app served by uvicorn in a thread (what :class:`tests.test_web.Page` needs of a hub: ``url``)."""

    def __init__(self, app: Any, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> InProcess:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=20, interval=0.05, what="uvicorn never started")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[InProcess]:
    data_dir = tmp_path_factory.mktemp("webmoney") / "data"
    data_dir.mkdir()
    today = datetime.now(NEW_YORK).date()
    start = (today.replace(day=1) - timedelta(days=40)).isoformat()  # last month whole, and this one so far
    assert main(["simulate", "--start", start, "--days", "80", "--data-dir", str(data_dir)]) == 0
    store = open_store(data_dir)
    site = SiteTariff.from_config(Config(tariff=TariffConfig(file="none")), data_dir)  # no tariff until uploaded
    outages = outage_tracker_for(Config(), store, writer=False)  # the simulated outages, as `homegrid outages`
    # the planner's saving against self-powered mode, as a hub with [planner] enabled has it
    saving = PlannerSaving(store, NEW_YORK, PlannerConfig(enabled=True))
    app = create_app(Queries(store, NEW_YORK), outages=outages.report, tariff=site, planner_saving=saving)
    add_settings_routes(app, None)  # the System view asks them (no battery to control, no storm mode)
    add_storm_routes(app, None)
    add_planner_routes(app, None)  # and the planner's card (no executor: the planner is off)
    install_security(app, policy_for(ServerConfig(), OwnerKey(data_dir), "127.0.0.1"))
    try:
        with InProcess(app, data_dir) as s:
            s.saving = saving  # type: ignore[attr-defined]  # a test turns the planner off in it
            yield s
    finally:
        store.close()


@pytest.fixture
def page(browser, served) -> Iterator[Page]:
    p = Page(browser, served, DESKTOP)  # type: ignore[arg-type]  # Page only needs .url
    yield p
    p.close()


def field_of(body: Any, path: str) -> Any:
    """``months[3].total`` (or ``hours[].cost``: not resolvable, None) in a JSON body."""
    value = body
    for part in re.findall(r"[^.\[\]]+|\[\d*\]", path):
        if part == "[]":
            return None
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


def month_start(day: date, back: int = 0) -> date:
    y, m = day.year, day.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return date(y, m, 1)


def figures(page: Page, api: str) -> list[dict[str, str]]:
    return page.page.evaluate(
        """(api) => [...document.querySelectorAll(`[data-api="${api}"][data-field]`)].map((e) => ({
             field: e.dataset.field, value: e.dataset.value, text: e.textContent.trim() }))""", api)


def upload_from_the_system_view(page: Page, served: InProcess) -> None:
    page.open("system")
    card = page.page.locator("#tariff")
    card.wait_for()
    assert "No tariff is set" in page.page.locator("#tariff-none").text_content()
    page.page.locator("#tariff-text").fill(TARIFF_TEXT)
    page.page.locator("#tariff-reason").fill("the test's plan")
    page.page.get_by_role("button", name="Upload tariff").click()
    page.page.locator("#tariff-signin").wait_for()  # not signed in: refused, and asked to sign in
    assert "only the owner" in page.page.locator("#tariff-msg[role=alert]").text_content()
    assert served.get("/api/v1/tariff")["configured"] is False
    assert [e for e in page.errors if "401" not in e] == []
    page.errors.clear()
    page.page.get_by_label("Owner token").fill(read_token(served.data_dir))
    page.page.get_by_role("button", name="Sign in").click()
    page.page.wait_for_selector("#tariff-msg[role=status]")
    page.page.get_by_role("button", name="Upload tariff").click()
    page.page.wait_for_selector("#tariff-msg[role=status]:has-text('Saved: Test TOU 4-9')")
    page.page.wait_for_selector("#tariff-name:has-text('Test TOU 4-9')")
    periods = page.page.locator("#tariff-periods").text_content()
    assert "off-peak: $0.120/kWh" in periods and "peak: $0.320/kWh" in periods
    got = served.get("/api/v1/tariff")
    assert got["tariff"]["name"] == "Test TOU 4-9" and got["uploaded"]["by"] == "owner session"
    assert got["uploaded"]["reason"] == "the test's plan"
    page.shot("system-tariff")


def test_money_view_from_no_tariff_to_the_figures_of_the_api(page, served):
    page.open("money")
    page.page.locator("#no-tariff").wait_for()
    assert "System view" in page.page.locator("#no-tariff").text_content()
    upload_from_the_system_view(page, served)

    page.open("money")
    page.wait_for("document.querySelector('#month-so-far .tile-value')?.dataset.value")
    today = date.fromisoformat(served.get("/api/v1/site")["today"])
    body = served.get("/api/v1/money")
    bill = body["bill"]
    assert body["tariff"]["name"] == "Test TOU 4-9"
    month = today.strftime("%Y-%m")
    assert [m["month"] for m in bill["months"]][-2:] == [month_start(today, 1).strftime("%Y-%m"), month]
    same = served.get(f"/api/v1/bill?from={month_start(today, 11)}&to={today}&stored_only=true")
    assert {k: v for k, v in same.items() if k != "months"} == {k: v for k, v in bill.items() if k != "months"}
    shown = figures(page, "/api/v1/money")
    fields = {f["field"] for f in shown}
    assert {"bill.total", "bill.savings.battery", "bill.savings.solar", "bill.counterfactuals.grid_only.total",
            "bill.counterfactuals.solar_only.total", "bill.savings.car.cost"} <= fields
    n = len(bill["months"]) - 1
    assert {f"bill.months[{n}].total", f"bill.months[{n}].projected_total",
            f"bill.savings.months[{n}].battery"} <= fields
    calls = []
    for f in shown:
        expected = field_of(body, f["field"])
        value = float(f["value"]) if f["value"] else None
        if f["field"].endswith("projected_total"):  # it moves with the clock between the two asks
            assert value == pytest.approx(expected, rel=1e-2)
            continue
        assert value == expected, f
        if f["field"].endswith(("total", "battery", "solar", "cost", "saved")):
            calls.append((f, ["money", value, "USD"]))
    for (f, _), text in zip(calls, run_format_js([c for _, c in calls]), strict=True):
        assert text in f["text"], (f, text)
    # this month's battery saving, in words
    saved = bill["savings"]["months"][n]["battery"]
    assert page.page.locator("#battery-saved b").first.get_attribute("data-value") == str(saved)
    # what the planner saved against self-powered mode: the sentence's figures are the API's (the view asks again
    # while the hub replays the months in the background)
    page.page.wait_for_selector("#against-last-month b[data-value]", timeout=20_000)
    against = served.get("/api/v1/money")["against_self_powered"]
    last = against["last_month"]
    shown = {f["field"]: f for f in figures(page, "/api/v1/money") if f["field"].startswith("against_self_powered.")}
    for key in ("last_month", "this_month"):
        for k in ("saving", "actual", "self_powered"):
            f = shown[f"against_self_powered.{key}.{k}"]
            assert float(f["value"]) == against[key][k], f
    sentence = page.page.locator("#against-last-month").text_content()
    verb = "saved you" if last["saving"] >= 0 else "cost you"
    [text] = run_format_js([["money", abs(last["saving"]), "USD"]])
    assert verb in sentence and text in sentence and "self-powered mode" in sentence
    # a past month's bill, line by line: the lines add up to its total
    last_month = bill["months"][n - 1]
    page.page.locator(f"#month-list tr[data-month='{last_month['month']}'] button").click()
    page.page.wait_for_selector(f"#breakdown[data-month='{last_month['month']}']")
    lines = page.page.evaluate("""() => [...document.querySelectorAll('#breakdown tbody td[data-value]')]
        .map((e) => Number(e.dataset.sign) * Number(e.dataset.value))""")
    assert sum(lines) == pytest.approx(last_month["total"], abs=0.01)
    assert last_month["fixed"] == pytest.approx(10.0)
    lines = page.page.locator("#breakdown tbody").text_content()
    assert "off-peak" in lines and "peak" in lines and "$0.320/kWh" in lines
    page.shot("money")

    # beside the outage sentence: what the battery saved this month
    page.open("outages")
    page.page.locator("#outage-battery-saved").wait_for()
    this_month = served.get(f"/api/v1/bill?from={month_start(today)}&to={today}")
    value = page.page.locator("#outage-battery-saved b").first.get_attribute("data-value")
    assert float(value) == this_month["savings"]["months"][-1]["battery"]

    # the day view: the price over the day and what each hour cost
    day = (today - timedelta(days=3)).isoformat()
    page.open(f"history/day/{day}")
    page.page.locator("#day-prices[data-day] svg").wait_for()
    prices = served.get(f"/api/v1/prices?day={day}")
    bars = page.page.evaluate("""() => [...document.querySelectorAll('#day-prices g.price-bar')]
        .map((g) => g.dataset.value === '' ? null : Number(g.dataset.value))""")
    assert bars == [h["cost"] for h in prices["hours"]]
    assert float(page.page.locator("#day-cost").get_attribute("data-value")) == prices["cost"]
    weekday = date.fromisoformat(day).weekday() < 5
    assert [h["import_price"] for h in prices["hours"]] == (
        [0.12] * 16 + [0.32] * 5 + [0.12] * 3 if weekday else [0.12] * 24)
    # the hour-by-hour table is made when opened (closed, nobody sees or hears it), with every hour's figures
    assert page.page.locator("#price-table").count() == 0
    page.page.locator("#day-prices summary").click()
    rows = page.page.locator("#price-table tbody tr")
    rows.first.wait_for()
    assert rows.count() == len(prices["hours"])
    cells = page.page.evaluate("""() => [...document.querySelectorAll('#price-table tbody tr')].map((tr) =>
        [tr.dataset.hour, ...[...tr.querySelectorAll('td[data-field]')].map((td) =>
          td.dataset.value === '' ? null : Number(td.dataset.value))])""")
    assert cells == [[h["start"], h["import_price"], h["cost"]] for h in prices["hours"]]
    page.shot("day-prices")


def test_the_money_view_says_why_there_is_no_planner_saving_while_the_planner_is_off(page, served):
    saving = served.saving
    on = saving.planner
    saving.planner = PlannerConfig(enabled=False)
    try:
        note = served.get("/api/v1/money")["against_self_powered"]["note"]
        assert note and "the planner is off" in note
        page.open("money")
        card = page.page.locator("#against-self-powered")
        card.wait_for()
        assert card.get_attribute("data-enabled") == "false"
        assert note in card.text_content()
        assert page.page.locator("#against-last-month").count() == 0  # no figure is made up
    finally:
        saving.planner = on
