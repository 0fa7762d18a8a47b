"""The Outages view on a fresh ``homegrid serve`` of the virtual home, in a real browser (issue 11): its first week
already holds interruptions, a blip and grid disturbances; the view lists interruptions and disturbances apart,
the "saved you" count is the API's interruption count, and no start note says "the hub was down" when it was not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from .test_web import DESKTOP, Page, Served, start_hub, stop_hub, warm_solar_cache

ZONE = "America/New_York"
CONFIG = f"""
[site]
timezone = "{ZONE}"
[server]
poll_interval_s = 1
[store]
flush_interval_s = 0.1
"""  # everything else as a new user gets it: the virtual home, its 7-day backfill, its demonstration outages


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("outages")
    warm_solar_cache(folder, CONFIG)
    served = start_hub(folder, CONFIG, ZoneInfo(ZONE))
    try:
        yield served
    finally:
        stop_hub(served)


@pytest.fixture
def page(browser, hub) -> Iterator[Page]:
    page = Page(browser, hub, DESKTOP)
    yield page
    page.close()


READ = """() => ({
  interruptions: [...document.querySelectorAll('#outage-list tbody tr')].map((r) => r.dataset.start),
  disturbances: [...document.querySelectorAll('#disturbance-list tbody tr')]
    .map((r) => [r.dataset.time, r.dataset.kind]),
  notes: [...document.querySelectorAll('#outage-list .start-note')].map((n) => n.getAttribute('title')),
  banner: document.querySelector('#saved-banner')?.textContent ?? null,
  bannerValue: document.querySelector('#saved-banner')?.dataset.value ?? null,
})"""


def test_a_first_run_lists_interruptions_and_disturbances_apart(page, hub):
    page.open("outages")
    page.wait_for("document.querySelector('#saved-banner') && document.querySelector('#disturbances-h')")
    report = hub.get("/api/v1/outages")
    seen = page.page.evaluate(READ)
    events, lone = report["events"], report["disturbances"]
    # the first week tells the story: an interruption, one under a minute, and a disturbance
    assert events and any(e["duration_s"] < 60 for e in events) and lone, report
    assert len(seen["interruptions"]) == len(events) == report["interruptions"]
    assert sorted(seen["interruptions"]) == sorted(e["start"] for e in events)
    assert sorted(t for t, _ in seen["disturbances"]) == sorted(d["time"] for d in lone)
    assert {k for _, k in seen["disturbances"]} == {d["kind"] for d in lone}
    assert not set(seen["interruptions"]) & {t for t, _ in seen["disturbances"]}
    headings = page.page.evaluate("() => [document.querySelector('#interruptions-h').dataset.count, "
                                  "document.querySelector('#disturbances-h').dataset.count]")
    assert headings == [str(len(events)), str(len(lone))]
    # "saved you from N interruptions": N is the API's count of this month's interruptions the battery carried
    month = hub.today.isoformat()[:7]
    this_month = [m for m in report["months"] if m["month"] == month]
    if this_month:
        m = this_month[0]
        mine = [e for e in events if e["start"].startswith(month) and not e["intentional"] and e["saved"]]
        assert m["saved"] == len(mine) and m["count"] == len([e for e in events if e["start"].startswith(month)])
        said = re.search(r"saved you from (\d+) interruption", seen["banner"])
        assert said and int(said.group(1)) == m["saved"] and seen["bannerValue"] == str(m["saved"])
    else:  # no interruption yet this month: the banner names the days recorded, never the whole month
        assert "No grid interruptions recorded" in seen["banner"] and "(the hub's records)" in seen["banner"]
    # simulated history is a reading a minute: a start between two readings says so, not that the hub was down
    assert seen["notes"] and all("hub was down" not in n and "not recording" not in n for n in seen["notes"])
    assert all(n.startswith("Began between two readings") for n in seen["notes"])
    page.shot("outages-disturbances")
