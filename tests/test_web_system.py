"""The app over time and its settings, in a real browser: the owner changes the backup reserve and the operation
mode of the virtual home's battery from the System view, and the hub's API and readings follow; "today" rolls
over at the site's midnight in a tab left open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from homegrid.owner import read_token, signin_url

from .test_web import DESKTOP, Page, Served, running_hub
from .waiting import wait_for

CONFIG = """
[site]
timezone = "Europe/Berlin"
[server]
backfill_days = 0.1
poll_interval_s = 1
[store]
flush_interval_s = 0.1
[virtual]
outages_per_year = 0
[planner]
enabled = true
dry_run = true
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Served]:
    with running_hub(tmp_path_factory.mktemp("settings"), CONFIG, ZoneInfo("Europe/Berlin")) as served:
        yield served


@pytest.fixture
def page(browser, hub) -> Iterator[Page]:
    page = Page(browser, hub, DESKTOP)
    yield page
    page.close()


def test_the_owner_changes_reserve_and_mode_from_the_system_view(page, hub):
    before = hub.get("/api/v1/settings")
    assert before["can_control"] and before["operation_mode"] == "self_consumption"
    page.open("system")
    card = page.page.locator("#settings[data-can-control=true]")
    card.wait_for()
    planner = page.page.locator("#planner")  # the planner's card: dry run, nothing sent yet
    planner.wait_for()
    assert "dry run" in planner.text_content() and hub.get("/api/v1/planner/commands")["dry_run"] is True
    assert page.page.locator("#reserve-now").text_content() == f"{round(before['battery_reserve'])} %"
    slider = page.page.get_by_label("Backup reserve")
    slider.fill("45")  # a range input takes fill(); the keyboard works too (below)
    slider.press("ArrowRight")
    page.page.get_by_label("Operation mode").select_option("backup")
    # a browser that has not signed in changes nothing, and is told how to sign in
    page.page.get_by_role("button", name="Save").click()
    prompt = page.page.locator("#signin")
    prompt.wait_for()
    assert "homegrid token" in prompt.text_content() and "homegrid serve" in prompt.text_content()
    assert "only the owner" in page.page.locator("#settings-msg[role=alert]").text_content()
    assert hub.get("/api/v1/settings") == before
    assert [e for e in page.errors if "401" not in e] == [] and len(page.errors) == 1
    page.errors.clear()
    page.page.get_by_label("Owner token").fill(read_token(hub.data_dir))
    page.page.get_by_role("button", name="Sign in").click()
    page.page.wait_for_selector("#settings-msg[role=status]")
    assert prompt.count() == 0
    session = [c for c in page.context.cookies() if c["name"] == "homegrid_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    page.page.wait_for_selector("#owner-session[data-signed-in=true]")
    page.page.get_by_role("button", name="Save").click()
    page.page.wait_for_selector("#settings-msg[role=status]:has-text('Saved')")
    assert "reserve 46 %" in page.page.locator("#settings-msg").text_content()
    after = hub.get("/api/v1/settings")
    assert after["battery_reserve"] == 46.0 and after["operation_mode"] == "backup"
    page.wait_for("document.querySelector('#reserve-now').textContent === '46 %'")
    wait_for(lambda: hub.get("/api/v1/live")["values"].get("battery_reserve") == 46.0,  # the next poll reports it
             timeout=10, interval=0.2, what="the readings never showed the new reserve")
    # a refusal is shown, not swallowed: the virtual home has no tariff to follow
    page.page.evaluate("""() => { const s = document.querySelector('#set-mode');
        const o = document.createElement('option'); o.value = 'autonomous'; o.text = 'autonomous'; s.add(o); }""")
    page.page.get_by_label("Operation mode").select_option("autonomous")
    page.page.get_by_role("button", name="Save").click()
    alert = page.page.locator("#settings-msg[role=alert]")
    alert.wait_for()
    assert "takes self_consumption, backup" in alert.text_content()
    assert hub.get("/api/v1/settings")["operation_mode"] == "backup"
    # the browser logs the refused request; that one is expected, nothing else may be there
    assert [e for e in page.errors if "422" not in e] == [] and len(page.errors) == 1
    page.errors.clear()
    # signing out forgets the session: the cookie is gone
    page.page.get_by_role("button", name="Sign out").click()
    page.page.wait_for_selector("#owner-session[data-signed-in=false]")
    assert not [c for c in page.context.cookies() if c["name"] == "homegrid_session"]


def test_the_signin_link_signs_the_browser_in_and_no_view_breaks_the_content_security_policy(page, hub):
    """The link `homegrid serve` prints sets the session cookie; every view draws under the strict policy (no
    inline script or style attribute, no outside source), so no violation is reported."""
    page.page.add_init_script("""window.__csp = []; document.addEventListener('securitypolicyviolation',
        (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));""")
    reply = page.page.goto(signin_url(hub.url, read_token(hub.data_dir)))
    assert reply.url == f"{hub.url}/" and "default-src 'self'" in reply.headers["content-security-policy"]
    assert page.page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
    assert any(c["name"] == "homegrid_session" for c in page.context.cookies())
    for view, ready in VIEWS.items():
        page.open(view)
        page.page.wait_for_selector(ready)
    page.page.goto(f"{hub.url}/#/history/week")
    page.page.wait_for_selector("section.history .bars svg g.bar")
    assert page.page.evaluate("window.__csp") == []
    assert not [e for e in page.errors if "Content Security Policy" in e]


def test_today_rolls_over_at_the_sites_midnight_in_an_open_tab(page, hub):
    real = hub.get("/api/v1/site")
    tomorrow = (date.fromisoformat(real["today"]) + timedelta(days=1)).isoformat()
    answer = {"today": real["today"]}

    def site(route) -> None:
        route.fulfill(status=200, content_type="application/json",
                      body=json.dumps({"timezone": real["timezone"], "today": answer["today"]}))

    page.page.clock.install()
    page.page.route("**/api/v1/site", site)
    page.open("history/day")  # the day view of "today"
    page.page.wait_for_selector(f"main[data-today='{real['today']}'] section.history[data-from='{real['today']}']")
    answer["today"] = tomorrow  # the hub's clock passes the site's midnight
    page.page.clock.run_for(61_000)
    page.page.wait_for_selector(f"main[data-today='{tomorrow}'] section.history[data-from='{tomorrow}']")
    assert page.page.locator("input[type=date]").first.get_attribute("max") == tomorrow


# what each view waits for before it is checked: drawn, with its data
VIEWS = {"now": "section.now [data-node=solar]", "history/day": "section.history:has(.chart canvas) .bars svg g.bar",
         "history/year": "section.history .bars svg g.bar",
         "car": "#car-card", "outages": "#saved-banner", "system": "#settings"}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_view_passes_axe_in_both_themes(browser, hub, theme):
    """axe-core's WCAG 2 A/AA rules (labels, names, contrast, ARIA, landmarks) on every view, drawn with data."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    found = {}
    page = Page(browser, hub, DESKTOP, theme)
    try:
        for view, ready in VIEWS.items():
            page.open(view)
            page.page.wait_for_selector(ready)
            assert page.page.evaluate("document.documentElement.dataset.theme") == theme
            result = axe.run(page.page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa"]},
                                                 "resultTypes": ["violations"]})
            if result.violations_count:
                found[view] = result.generate_report()
    finally:
        page.close()
    assert not found, "\n".join(f"--- {v}\n{r}" for v, r in found.items())


def test_the_app_works_from_the_keyboard(page, hub):
    page.open("now")
    page.page.wait_for_selector("section.now [data-node=solar]")
    page.page.keyboard.press("Tab")
    assert page.page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(12):  # through the brand and the views' links to Outages
        page.page.keyboard.press("Tab")
        if page.page.evaluate("document.activeElement.dataset.view") == "outages":
            break
    else:
        raise AssertionError("the Outages link is not reachable with Tab")
    page.page.keyboard.press("Enter")
    page.page.wait_for_selector("main[data-view=outages] #saved-banner")
    # the focused control shows a visible focus ring (not removed by the style sheet)
    ring = page.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert ring not in ("none", ""), ring
