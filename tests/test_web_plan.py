"""The Plan view in a real browser, over the hub's planning service on the virtual home with its shipped TOU tariff:
the chart has a mode per step, and what it does now, the cost against self-powered and the forecasts' errors are
the API's own figures; with the planner off the view says how to turn it on. On a hub that has run the planner live
(the virtual home, the planner on by default, a test clock moved through a winter weekday's midday into the peak),
the view shows what was carried out: the commands sent with their reasons, and each step's planned level beside the
battery's measured one, as the API gives them.

The app is served in this process (uvicorn in a thread, behind the hub's door on loopback) as in
tests/test_web_money.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from homegrid.api.app import create_app
from homegrid.api.plan import add_plan_routes
from homegrid.api.planner import add_planner_routes
from homegrid.api.security import install_security, policy_for
from homegrid.config import Config, PlannerConfig, ServerConfig
from homegrid.hub.service import Hub
from homegrid.hub.weather_cache import CachedWeather
from homegrid.owner import OwnerKey
from homegrid.readings import to_ms
from homegrid.timezones import DAY_MS, HOUR_MS

from .formatjs import run_format_js
from .test_planning import MIDDAY, LiveClock, live_hub, run_steps
from .test_weather_cache import sky
from .test_web import DESKTOP, PHONE, Page
from .test_web_money import InProcess, field_of, figures

NOW = datetime(2026, 1, 14, 18, 7, tzinfo=UTC)  # a winter weekday afternoon in New York


def _serve(data_dir: Path, planner: bool, weather: CachedWeather | None = None) -> tuple[Hub, InProcess]:
    config = Config()
    config = config.replace(server=config.server.replace(backfill_days=10),
                            planner=PlannerConfig(enabled=planner, dry_run=True))
    hub = Hub(config, data_dir, clock=lambda: NOW)
    hub.prepare()
    # Playwright's sync API holds this thread's event loop: the poll runs in a thread of its own
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, hub.poll_once()).result()
    hub.flush()
    if hub.planning is not None:
        if weather is not None:
            hub.planning.weather = lambda: weather
        hub.planning.make()
    app = create_app(hub.queries, health=hub.status, live=hub.live, tariff=hub.tariff)
    add_plan_routes(app, hub.planning)
    install_security(app, policy_for(ServerConfig(), OwnerKey(data_dir), "127.0.0.1"))
    return hub, InProcess(app, data_dir)


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[InProcess]:
    hub, server = _serve(tmp_path_factory.mktemp("webplan"), planner=True)
    try:
        with server as s:
            yield s
    finally:
        hub.store.close()


@pytest.fixture
def page(browser, served) -> Iterator[Page]:
    p = Page(browser, served, DESKTOP)  # type: ignore[arg-type]  # Page only needs .url
    yield p
    p.close()


def test_the_plan_view_shows_the_apis_plan(page, served):
    body = served.get("/api/v1/plan")
    plan = body["plan"]
    page.open("plan")
    page.page.locator("#plan-chart svg").wait_for()
    # one mode per step, in the plan's order
    modes = page.page.evaluate(
        "() => [...document.querySelectorAll('#plan-chart rect.mode')].map((r) => r.dataset.mode)")
    assert modes == [s["mode"] for s in plan["steps"]] and len(modes) == 96
    assert page.page.locator("#plan-next").get_attribute("data-mode") == plan["next"]["mode"]
    assert plan["next"]["battery_reason"] in page.page.locator("#plan-why").text_content()
    # every figure with a resolvable source equals the API's
    shown = figures(page, "/api/v1/plan")
    fields = {f["field"] for f in shown}
    assert {"plan.cost.plan", "plan.cost.self_powered", "plan.cost.saving", "plan.solve_ms",
            "forecast_errors.load[0].mae_w", "forecast_errors.solar[2].rmse_w"} <= fields
    for f in shown:
        want = field_of(body, f["field"])
        if want is not None:
            assert float(f["value"]) == pytest.approx(want) if isinstance(want, float) else f["value"] == str(want), f
    currency = plan["cost"]["currency"]
    money = run_format_js([["money", plan["cost"]["saving"], currency]])[0]
    assert page.page.locator("#plan-saving").text_content() == money
    # hovering a step reads it out
    box = page.page.locator("#plan-chart .plan-chart").bounding_box()
    assert box is not None
    page.page.mouse.move(box["x"] + 44 + 3, box["y"] + 60)  # the first step, right of the axis
    page.wait_for("document.querySelector('#plan-chart .readout [data-field=\"plan.steps[].soc_percent\"]')")
    readout = page.page.locator('#plan-chart .readout [data-field="plan.steps[].soc_percent"]')
    value = readout.get_attribute("data-value")
    assert float(value) == pytest.approx(plan["steps"][0]["soc_percent"])
    assert page.page.locator("nav a[data-view=plan]").get_attribute("aria-current") == "page"
    # where the solar forecast came from, in one line (no network in tests: no weather forecast), said once
    line = page.page.locator("#plan-solar")
    assert line.get_attribute("data-source") == body["solar_forecast"]["source"] == "clear-sky"
    assert line.text_content() == "Solar forecast: clear sky scaled by the recent days, no weather forecast."
    notes = page.page.evaluate("() => document.querySelector('#plan-notes')?.textContent ?? ''")
    assert "solar:" not in notes
    page.shot("plan")
    assert not page.errors, page.errors


def test_with_the_planner_off_the_view_says_how_to_turn_it_on(browser, tmp_path):
    hub, server = _serve(tmp_path, planner=False)
    try:
        with server as s:
            p = Page(browser, s, DESKTOP)  # type: ignore[arg-type]
            try:
                p.open("plan")
                p.page.locator("#plan-off").wait_for()
                assert "[planner] enabled = true" in p.page.locator("#plan-off").text_content()
                # the 409 itself is the browser's console error, and the only one
                assert p.errors == ["console: Failed to load resource: the server responded with a status of 409 "
                                    "(Conflict)"]
                p.errors.clear()
            finally:
                p.close()
    finally:
        hub.store.close()


def test_the_plan_view_fits_a_phone(browser, served):
    p = Page(browser, served, PHONE)  # type: ignore[arg-type]
    try:
        p.open("plan")
        p.page.locator("#plan-chart svg").wait_for()
        width = p.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the Plan view is {width} px wide on a phone"
        assert p.page.get_by_role("navigation", name="Views").is_visible()
        p.shot("plan")
    finally:
        p.close()


def test_the_plan_view_names_the_weather_forecast_it_used(browser, tmp_path):
    config = Config()
    now = to_ms(NOW)
    weather = sky(config.site, 0.5, now - 7 * DAY_MS, 8 * 24 + 48, now - HOUR_MS, past_clearness=0.5)
    hub, server = _serve(tmp_path, planner=True, weather=weather)
    try:
        with server as s:
            p = Page(browser, s, DESKTOP)  # type: ignore[arg-type]
            try:
                p.open("plan")
                line = p.page.locator("#plan-solar")
                line.wait_for()
                assert line.get_attribute("data-source") == "open-meteo"
                # 17:07 UTC is 12:07 in New York
                assert line.text_content() == ("Solar forecast: Open-Meteo forecast of 12:07, corrected by this "
                                               "home's own history.")
                assert s.get("/api/v1/plan")["solar_forecast"]["bias_corrected"] is True
                assert not p.errors, p.errors
            finally:
                p.close()
    finally:
        hub.store.close()


@pytest.fixture(scope="module")
def carried_out(tmp_path_factory) -> Iterator[InProcess]:
    data_dir = tmp_path_factory.mktemp("webplanlive")
    clock = LiveClock(MIDDAY)
    hub = live_hub(data_dir, clock)
    try:
        with ThreadPoolExecutor(1) as pool:  # Playwright's sync API holds this thread's event loop
            # 11:30 to 17:30 local: charge, then export once the sun no longer refills the battery
            pool.submit(asyncio.run, run_steps(hub, clock, 24)).result()
        app = create_app(hub.queries, health=hub.status, live=hub.live, tariff=hub.tariff)
        add_plan_routes(app, hub.planning)
        add_planner_routes(app, hub.executor, hub.planning)
        install_security(app, policy_for(ServerConfig(), OwnerKey(data_dir), "127.0.0.1"))
        with InProcess(app, data_dir) as s:
            yield s
    finally:
        hub.store.close()


def test_the_plan_view_shows_what_was_carried_out(browser, carried_out):
    body = carried_out.get("/api/v1/plan")
    done = body["done"]
    assert done["acting"] and not done["dry_run"]
    sent = [c for c in done["commands"] if c["outcome"] == "sent"]
    charge = max(i for i, c in enumerate(done["commands"]) if c["command"].startswith("charge to"))  # the newest
    assert sent and done["commands"] == carried_out.get("/api/v1/planner/commands")["commands"]
    p = Page(browser, carried_out, DESKTOP)  # type: ignore[arg-type]
    try:
        p.open("plan")
        card = p.page.locator("#plan-done")
        card.wait_for()
        assert "carrying its plan out" in p.page.locator("#plan-done-state").text_content()
        # a charge from the grid, as sent: its command, outcome and reason are the API's
        shown = p.page.locator(f'[data-field="done.commands[{charge}].command"]')
        assert shown.text_content() == done["commands"][charge]["command"]
        reason = p.page.locator(f'[data-field="done.commands[{charge}].reason"]').text_content()
        assert reason == done["commands"][charge]["reason"] and "charge to" in reason
        outcome = p.page.locator(f'[data-field="done.commands[{charge}].outcome"]').get_attribute("data-value")
        assert outcome == "sent"
        # every command shown is the API's, newest first
        fields = p.page.evaluate("""() => [...document.querySelectorAll('#plan-commands [data-field$="].command"]')]
                                    .map((e) => [e.dataset.field, e.textContent])""")
        assert fields and [t for _, t in fields] == [c["command"] for c in done["commands"][::-1][:len(fields)]]
        # the day's steps: the mode carried out in each beneath, the planned and measured levels under the cursor
        modes = p.page.evaluate(
            "() => [...document.querySelectorAll('#plan-done rect.mode')].map((r) => r.dataset.mode)")
        assert modes == [s["done_mode"] or s["mode"] for s in done["steps"]] and {"charge", "export"} <= set(modes)
        i = next(k for k, s in enumerate(done["steps"]) if s["mode"] == "charge" and not s["under_way"])
        p.page.locator("#plan-done .plan-chart").scroll_into_view_if_needed()  # below the fold
        rect = p.page.locator("#plan-done rect.mode").nth(i).bounding_box()
        assert rect is not None
        p.page.mouse.move(rect["x"] + rect["width"] / 2, rect["y"] - 20)
        measured = p.page.locator(f'#plan-done .readout [data-field="done.steps[{i}].measured_soc_percent"]')
        measured.wait_for()
        assert float(measured.get_attribute("data-value")) == pytest.approx(done["steps"][i]["measured_soc_percent"])
        planned = p.page.locator(f'#plan-done .readout [data-field="done.steps[{i}].planned_soc_percent"]')
        assert float(planned.get_attribute("data-value")) == pytest.approx(done["steps"][i]["planned_soc_percent"])
        p.shot("plan-done")
        assert not p.errors, p.errors
    finally:
        p.close()
