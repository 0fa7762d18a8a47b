"""The history charts right to the bar, in a real browser: every bar of the day (hourly kWh), week, month and year views
is read back from the page (its bin and each segment's value, from data attributes) and compared with
/api/v1/energy for the same bin, on the hub in America/New_York whose history holds the last 23-hour and 25-hour
days (their weeks included); the bin still going is drawn and marked partial, the last bar is never missing; and
the phone's Sankey labels are as big as text (they were 6 px)."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from .energy_reply import points as points_of
from .formatjs import format_js
from .test_web import PHONE, TIMEOUT_MS, Page, dst_hub, last_dst_days  # noqa: F401 (a fixture)

# segments of a bar: sources above the line, uses below; "home-ev" is the home without the car
FIELDS = ("solar", "battery_discharge", "grid_import", "home-ev", "ev", "battery_charge", "grid_export")
MWH = 0.001  # /api/v1/energy gives each energy to the mWh [Wh] (home-ev, two of them, to 2 mWh at most)

READ_BARS = """() => {
  const el = document.querySelector('.bars[data-bins]');
  if (!el || !el.querySelector('svg')) return null;
  const bars = [...el.querySelectorAll('svg g.bar')];
  return {step: el.dataset.step, slots: Number(el.dataset.bins), bars: bars.map((g) => ({
    bin: g.dataset.bin, empty: g.dataset.empty === 'true', partial: g.dataset.partial ?? null,
    start: g.dataset.start ?? null, end: g.dataset.end ?? null, api: g.dataset.api ?? null,
    marks: [...g.querySelectorAll('.partial-mark')].filter((m) => m.getBBox().width > 0).length,
    opacity: [...g.querySelectorAll('rect.seg')].map((r) => Number(getComputedStyle(r).fillOpacity)),
    segments: Object.fromEntries([...g.querySelectorAll('rect.seg')].map((r) =>
      [r.dataset.field, {value: r.dataset.value === '' ? null : Number(r.dataset.value), api: r.dataset.api,
                         height: r.getBBox().height}])),
  }))};
}"""


def value_of(point: dict, field: str) -> float | None:
    if field == "home-ev":
        return None if point["home"] is None else point["home"] - (point["ev"] or 0.0)
    return point[field]


@pytest.fixture
def page(browser, dst_hub) -> Iterator[Page]:  # noqa: F811 (the fixture imported above)
    from .test_web import DESKTOP

    p = Page(browser, dst_hub, DESKTOP)
    yield p
    p.close()


def open_bars(page: Page, route: str, step: str) -> tuple[dict, dict]:
    """Open a history view; what its bars show, and the /api/v1/energy reply the page drew them from."""
    with page.page.expect_response(lambda r: "/api/v1/energy?" in r.url and f"step={step}" in r.url) as fetched:
        page.open(route)
    reply = fetched.value.json()
    assert reply["fields"] == ["solar", "battery_discharge", "grid_import", "home", "ev", "battery_charge",
                               "grid_export"]  # only what the bars draw
    page.wait_for(f"document.querySelector('.bars[data-step={step}] svg g.bar')")
    page.wait_for("document.querySelectorAll('.bars svg g.bar').length == "
                  "Number(document.querySelector('.bars').dataset.bins)")
    query = parse_qs(urlparse(fetched.value.url).query)
    reply["query"] = {k: v[0] for k, v in query.items()}
    return page.page.evaluate(READ_BARS), reply


def assert_bars_are_the_api(shown: dict, reply: dict, fresh: dict) -> list[dict]:
    """Every point of the reply is one bar, in order, with each segment's value; bins without a point are empty
    slots. Finished bins are also the API's now (``fresh``); the bin still going has only grown since."""
    drawn = [b for b in shown["bars"] if not b["empty"]]
    points = points_of(reply)
    assert [b["bin"] for b in drawn] == [p["start"] for p in points]  # none missing, the last one included
    assert len(shown["bars"]) == shown["slots"]
    now = {p["start"]: p for p in points_of(fresh)}
    for bar, point in zip(drawn, points, strict=True):
        assert bar["api"] == "/api/v1/energy"
        assert bar["start"] == point["start"]
        assert datetime.fromisoformat(bar["end"]) == datetime.fromisoformat(point["end"])  # an hour's: in UTC
        assert bar["partial"] == ("true" if point["partial"] else "false")
        assert set(bar["segments"]) == set(FIELDS)
        for field in FIELDS:
            seg, want = bar["segments"][field], value_of(point, field)
            assert seg["api"] == "/api/v1/energy"
            assert seg["value"] == pytest.approx(want, rel=1e-9, abs=1e-9), (bar["bin"], field)
            later = value_of(now[point["start"]], field)
            if point["partial"]:
                assert later >= want - 1e-6, (bar["bin"], field)  # energy of a bin only grows while it goes on
            else:
                assert later == pytest.approx(want, rel=1e-9, abs=1e-9), (bar["bin"], field)
        assert point["home"] is None or point["home"] >= 0
    return drawn


def scale_px_per_wh(drawn: list[dict]) -> list[float]:
    return [seg["height"] / seg["value"] for b in drawn for seg in b["segments"].values()
            if seg["value"] and seg["value"] > 500]


def week_of(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def hours_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


@pytest.mark.parametrize("hours", [23, 25])
def test_a_dst_days_hourly_bars_are_the_api(page, dst_hub, hours):  # noqa: F811
    day = dst_hub.dst_days[0 if hours == 23 else 1]
    shown, reply = open_bars(page, f"history/day/{day}", "hour")
    fresh = dst_hub.get(f"/api/v1/energy?from={day}&to={day}&step=hour")
    drawn = assert_bars_are_the_api(shown, reply, fresh)
    assert shown["slots"] == hours and len(drawn) == hours  # every local hour of the day, once
    assert all(hours_between(b["start"], b["end"]) == 1 for b in drawn)
    report = dst_hub.get(f"/api/v1/report?from={day}&to={day}")
    # the hours add up to the day's report (which rounds to mWh)
    assert sum(value_of(p, "grid_import") for p in points_of(reply)) == pytest.approx(
        report["energy_wh"]["grid_import"], abs=1e-2 + hours * MWH / 2)
    scale = scale_px_per_wh(drawn)
    assert scale and max(scale) / min(scale) < 1.15
    # the power chart is still drawn above the bars
    page.page.wait_for_selector(".chart canvas")
    page.shot(f"day-bars-{hours}h")


@pytest.mark.parametrize("hours", [23, 25])
def test_a_dst_weeks_daily_bars_are_the_api(page, dst_hub, hours):  # noqa: F811
    day = dst_hub.dst_days[0 if hours == 23 else 1]
    monday, sunday = week_of(day)
    shown, reply = open_bars(page, f"history/week/{day}", "day")
    assert reply["query"] == {"from": monday.isoformat(), "to": sunday.isoformat(), "step": "day",
                              "fields": ",".join(reply["fields"])}
    fresh = dst_hub.get(f"/api/v1/energy?from={monday}&to={sunday}&step=day")
    drawn = assert_bars_are_the_api(shown, reply, fresh)
    assert [b["bin"] for b in shown["bars"]] == [(monday + timedelta(days=k)).isoformat() for k in range(7)]
    assert day.isoformat() in [b["bin"] for b in drawn]
    dst = next(b for b in drawn if b["bin"] == day.isoformat())
    start = datetime.fromisoformat(f"{day}T00:00:00").replace(tzinfo=dst_hub.tz)
    assert dst["end"] == (day + timedelta(days=1)).isoformat() + dst["end"][10:]  # it ends at the next midnight ...
    assert (datetime.fromisoformat(dst["end"]) - start).total_seconds() == hours * 3600  # ... 23 or 25 hours on
    # that day's bar is that local day's energy: the sum of its own hours
    day_hours = points_of(dst_hub.get(f"/api/v1/energy?from={day}&to={day}&step=hour"))
    assert len(day_hours) == hours
    for field in FIELDS:
        assert dst["segments"][field]["value"] == pytest.approx(sum(value_of(p, field) for p in day_hours),
                                                                rel=1e-6, abs=(hours + 1) * MWH), field
    page.shot(f"week-bars-{hours}h")


def test_a_custom_range_across_a_dst_day_is_daily_bars(page, dst_hub):  # noqa: F811
    day = dst_hub.dst_days[0]
    first, last = day - timedelta(days=1), day + timedelta(days=1)
    shown, reply = open_bars(page, f"history/custom/{first}/{last}", "day")
    fresh = dst_hub.get(f"/api/v1/energy?from={first}&to={last}&step=day")
    drawn = assert_bars_are_the_api(shown, reply, fresh)
    assert [b["bin"] for b in drawn] == [(first + timedelta(days=k)).isoformat() for k in range(3)]
    assert [hours_between(b["start"] + "T00:00:00", b["end"][:19]) for b in drawn] == [24, 24, 24]  # wall clock
    assert [(datetime.fromisoformat(b["end"]) - datetime.fromisoformat(f"{b['bin']}T00:00:00").replace(
        tzinfo=dst_hub.tz)).total_seconds() / 3600 for b in drawn] == [24, 23, 24]  # elapsed


def test_a_months_and_a_years_bars_are_the_api(page, dst_hub):  # noqa: F811
    day = dst_hub.dst_days[1]  # the 25-hour day: its month has two days of history
    first, last = day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    shown, reply = open_bars(page, f"history/month/{day}", "day")
    fresh = dst_hub.get(f"/api/v1/energy?from={first}&to={last}&step=day")
    drawn = assert_bars_are_the_api(shown, reply, fresh)
    assert shown["slots"] == last.day and shown["bars"][-1]["bin"] == last.isoformat()
    assert day.isoformat() in [b["bin"] for b in drawn]

    year = dst_hub.today.year
    shown, reply = open_bars(page, f"history/year/{dst_hub.today}", "month")
    fresh = dst_hub.get(f"/api/v1/energy?from={year}-01-01&to={year}-12-31&step=month")
    drawn = assert_bars_are_the_api(shown, reply, fresh)
    assert [b["bin"] for b in shown["bars"]] == [f"{year}-{m:02d}" for m in range(1, 13)]
    # each month's bar is the sum of its local days
    by_day = points_of(dst_hub.get(f"/api/v1/energy?from={year}-01-01&to={year}-12-31&step=day"))
    for bar in drawn:
        if bar["partial"] == "true":
            continue
        days = [p for p in by_day if p["start"].startswith(bar["bin"])]
        for field in FIELDS:
            assert bar["segments"][field]["value"] == pytest.approx(sum(value_of(p, field) for p in days),
                                                                    rel=1e-6, abs=(len(days) + 1) * MWH), (
                bar["bin"], field)
    months_with_dst = {d.strftime("%Y-%m") for d in dst_hub.dst_days if d.year == year}
    assert months_with_dst <= {b["bin"] for b in drawn}
    # from the keyboard: the arrow keys step through the months, the readout gives each one's figures
    page.page.locator(".bars").focus()
    page.page.keyboard.press("Home")
    readout = page.page.locator(".bars-block .readout")
    assert readout.locator("b").first.text_content() == f"January {year}"
    index = [b["bin"] for b in shown["bars"]].index(drawn[0]["bin"])
    for _ in range(index):
        page.page.keyboard.press("ArrowRight")
    figure = readout.locator("[data-field=home-ev]")
    assert float(figure.get_attribute("data-value")) == pytest.approx(drawn[0]["segments"]["home-ev"]["value"])
    assert figure.text_content() == format_js("kwh", drawn[0]["segments"]["home-ev"]["value"])
    page.shot("year-bars")


@pytest.mark.parametrize(("kind", "step"), [("day", "hour"), ("week", "day"), ("month", "day"), ("year", "month")])
def test_the_current_bar_is_drawn_and_marked_partial(page, dst_hub, kind, step):  # noqa: F811
    today = dst_hub.today
    shown, reply = open_bars(page, f"history/{kind}/{today}", step)
    fresh = dst_hub.get("/api/v1/energy?" + "&".join(f"{k}={v}" for k, v in reply["query"].items()))
    drawn = assert_bars_are_the_api(shown, reply, fresh)
    current = {"hour": None, "day": today.isoformat(), "month": today.strftime("%Y-%m")}[step]
    going = [b for b in drawn if b["partial"] == "true"]
    assert len(going) == 1, [b["bin"] for b in going]  # the bin holding now, and no other
    bar = going[0]
    if current is not None:
        assert bar["bin"] == current
    else:  # this hour
        assert datetime.fromisoformat(bar["start"]) <= datetime.now(dst_hub.tz) < datetime.fromisoformat(bar["end"])
    assert bar is drawn[-1]  # the last bar with data, drawn
    # visibly: a dashed outline, and its colours faded where the finished bars' are not
    assert bar["marks"] == 1
    assert max(bar["opacity"]) < 0.75
    assert all(min(b["opacity"]) == 1 for b in drawn if b is not bar)
    if kind in ("week", "year"):
        assert page.page.locator(".bars g.bar.partial text.so-far").text_content() == "so far"
    # and the readout says so too
    box = page.page.locator(".bars svg").bounding_box()
    index = [b["bin"] for b in shown["bars"]].index(bar["bin"])
    left = 44  # the y axis' width, as bars.js draws it
    slot = (box["width"] - left - 8) / shown["slots"]
    page.page.mouse.move(box["x"] + left + slot * (index + 0.5), box["y"] + box["height"] / 2)
    page.page.locator(".bars-block .readout b", has_text="(so far)").wait_for(timeout=TIMEOUT_MS)
    figure = page.page.locator(".bars-block .readout [data-field=grid_import]")
    assert float(figure.get_attribute("data-value")) == pytest.approx(bar["segments"]["grid_import"]["value"])


def test_the_phone_sankey_labels_are_readable(browser, dst_hub):  # noqa: F811
    """Measured as drawn: the font size times the drawing's scale on the screen (CSS px), at the phone's 390x844."""
    page = Page(browser, dst_hub, PHONE)
    try:
        day = dst_hub.dst_days[1]
        page.open(f"history/day/{day}")
        page.page.wait_for_selector(".sankey .sankey-label")
        sizes = page.page.evaluate("""() => [...document.querySelectorAll('.sankey-label, .bars text')].map((t) => {
          const m = t.ownerSVGElement.getScreenCTM();
          return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b),
                  height: t.getBoundingClientRect().height, right: t.getBoundingClientRect().right};
        })""")
        labels = [s for s in sizes if "kWh" in s["text"]]
        assert len(labels) >= 2
        assert all(s["px"] >= 11.5 for s in sizes), sizes
        assert all(s["height"] >= 11 for s in labels), labels  # the glyphs' box as laid out
        assert all(s["right"] <= PHONE["width"] for s in sizes), sizes  # and on the screen
        assert page.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.shot("day-sankey")
    finally:
        page.close()


def test_last_dst_days_helper_is_what_the_hub_holds(dst_hub):  # noqa: F811
    """The fixture's history is the last 23-hour and 25-hour days (so the tests above run on the DST days)."""
    assert dst_hub.dst_days == last_dst_days(dst_hub.today - timedelta(days=1), dst_hub.tz)
    for day in dst_hub.dst_days:
        body = dst_hub.get(f"/api/v1/energy?from={day}&to={day}&step=day&fields=home")
        assert body["start"] == [day.isoformat()]
        assert body["values"]["home"][0] > 0


def test_the_browser_keeps_a_sealed_days_reply_and_revalidates_it(page, dst_hub):  # noqa: F811
    """A past day's reply carries an ETag: asked again, Chromium sends If-None-Match and takes the hub's 304 (only
    headers cross), the body from its cache; today's reply is sent whole each time."""
    day = dst_hub.dst_days[1]
    page.open(f"history/day/{day}")
    sizes = page.page.evaluate("""async (urls) => {
      const out = [];
      for (const url of urls) {
        for (let i = 0; i < 2; i++) await (await fetch(url, { headers: { Accept: "application/json" } })).json();
        out.push(performance.getEntriesByName(new URL(url, location.href).href).slice(-2)
          .map((e) => [e.transferSize, e.encodedBodySize]));
      }
      return out;
    }""", [f"/api/v1/energy?from={day}&to={day}&step=minute&fields=home_w,soc_mean",
           f"/api/v1/energy?from={dst_hub.today}&to={dst_hub.today}&step=minute&fields=home_w,soc_mean"])
    (first, again), (_, today_again) = sizes
    assert first[1] > 1000 and first[0] > first[1]  # the body crossed, gzip-coded
    assert 0 < again[0] < 1000 and again[1] == first[1], sizes  # a 304: headers only, the same body from the cache
    assert today_again[0] > today_again[1] > 0, sizes  # not sealed: sent again


# canvases added to the page from now on, each counted once (an added element may hold one added with it)
COUNT_CANVASES = """() => {
  const seen = new Set();
  window.__canvases = 0;
  new MutationObserver((records) => {
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType !== 1) continue;
      for (const c of n.tagName === "CANVAS" ? [n] : n.querySelectorAll("canvas")) seen.add(c);
    }
    window.__canvases = seen.size;
  }).observe(document, { childList: true, subtree: true });
}"""


def test_a_days_replies_are_asked_at_the_route_change_and_its_chart_built_once(page, dst_hub):  # noqa: F811
    """Another day: its four replies asked first, the chart's two before the totals and the bars, and its power
    chart made once, when both the minutes and the outages are in (not once per reply)."""
    day, other = dst_hub.dst_days
    page.open(f"history/day/{day}")
    page.page.wait_for_selector(f".totals[data-report-from='{day}']")
    page.page.wait_for_selector(f"section.history[data-from='{day}'] .chart canvas")
    asked: list[str] = []
    page.page.on("request", lambda r: "/api/v1/" in r.url and asked.append(r.url.split("/api/v1/", 1)[1]))
    page.page.evaluate(COUNT_CANVASES)
    page.page.evaluate("(h) => { location.hash = h; }", f"#/history/day/{other}")
    page.page.wait_for_selector(f"section.history[data-from='{other}'] .chart canvas")
    page.page.wait_for_selector(f".totals[data-report-from='{other}']")
    page.page.wait_for_selector(".bars[data-step=hour] svg g.bar")
    page.page.wait_for_timeout(300)  # a late render would add its canvas by now
    q = f"from={other}&to={other}"
    assert [a.split("&fields=")[0] for a in asked[:4]] == [
        f"energy?{q}&step=minute", f"outages?{q}", f"report?{q}", f"energy?{q}&step=hour"], asked
    assert len(asked) == len(set(asked)), asked  # each asked once: the view took the replies asked for it
    assert page.page.evaluate("window.__canvases") == 1


SHOWN = """() => { const s = document.querySelector('section.history');
  return {from: s.dataset.from, busy: s.getAttribute('aria-busy'), title: document.querySelector('#hist-h').textContent,
          totals: document.querySelector('.totals')?.dataset.reportFrom ?? null,
          bars: document.querySelectorAll('.bars svg g.bar').length, canvas: !!s.querySelector('.chart canvas'),
          date: document.querySelector('.date-pick input').value}; }"""


def test_another_day_replaces_the_last_one_whole_and_a_slow_reply_holds_it_only_so_long(page, dst_hub):  # noqa: F811
    """While another day's replies are on their way the last day stays whole, its title over its own figures
    (``aria-busy``; the date picker already says the day asked for); the new day is drawn when they are in. One
    slower than the wait (``SWAP_AFTER_MS`` in history.js) holds the others back no longer: the new day is shown
    with its figures so far, never the last day's beside them; so is the first day the page opens on."""
    day, other = dst_hub.dst_days
    held: list = []
    page.page.route(lambda url: "/api/v1/report?" in url and f"from={day}" in url, lambda route: held.append(route))
    page.open(f"history/day/{day}")  # the first day too: its chart and bars come while its report is held
    page.page.wait_for_selector(f"section.history[data-from='{day}'] .chart canvas")
    page.page.wait_for_selector(f"section.history[data-from='{day}'] .bars svg g.bar")
    assert page.page.evaluate(SHOWN)["totals"] is None and len(held) == 1
    held.pop().continue_()
    page.page.wait_for_selector(f".totals[data-report-from='{day}']")
    before = page.page.evaluate(SHOWN)
    assert before["busy"] == "false" and before["bars"] > 0 and before["canvas"]
    page.page.route(lambda url: "/api/v1/report?" in url and f"from={other}" in url, lambda route: held.append(route))
    during = page.page.evaluate("""async (h) => {
      const changed = new Promise((r) => addEventListener('hashchange', r, { once: true }));
      location.hash = h;
      await changed;
      await new Promise((r) => setTimeout(r, 30));
      return (""" + SHOWN + """)(); }""", f"#/history/day/{other}")
    assert during == {**before, "busy": "true", "date": str(other)}  # the last day whole, its title with it
    page.page.wait_for_selector(f"section.history[data-from='{other}'] .chart canvas")
    after = page.page.evaluate(SHOWN)
    assert after["busy"] == "false" and after["title"] != before["title"] and after["bars"] > 0
    assert after["totals"] is None  # its report is held: no totals, and never the last day's
    assert len(held) == 1
    held[0].continue_()
    page.page.wait_for_selector(f".totals[data-report-from='{other}'] #total-solar")
