"""Issue 5: the web app's budgets, in Debian's Chromium against ``homegrid serve`` on two years of data.

Budgets (issue 5):
- first load of the Now view under 1 s on loopback, page weight under 500 kB compressed;
- any day / week / month / year view under 300 ms from click to drawn, on two years of data;
- 50 browsers watching live at once cost the hub under 10 % of one core.

The store: two years (``--days``, default 730) of 1-minute history ending two minutes ago,
written by ``homegrid simulate --start <today - days> --days <to now>`` (the virtual home,
the same model the hub then keeps polling live; ``--source synthetic``: ``synth.py``'s
readings as canonical CSV through ``homegrid import``). Then ``homegrid serve --data-dir
<tmp> --port <free>`` with all defaults (virtual home polled every 5 s; raw readings kept
forever, so nothing is pruned: ``[store] raw_retention_days`` is unset; the views read the
minute, hour and day rollups either way).

1. First load: ``--repeats`` times (default 20) a new browser context (empty cache, and
   ``Network.setCacheDisabled`` over CDP) opens ``/#/now``. An init script polls on every
   animation frame for the Now view drawn (``section.now [data-node=solar]`` with a value and
   its kW text); the time is ``performance.now()`` then, i.e. from navigation start. Also
   recorded: first contentful paint, DOMContentLoaded, and the bytes of every response as
   Chromium counted them (``Network.loadingFinished.encodedDataLength``: on the wire, headers
   included, compressed as the hub sent it) and decoded (``Network.dataReceived``). The page
   weight is the sum over the page's requests up to the drawn view; the live stream's bytes are
   shown apart (it never finishes). The hub gzips the static files (level 9, kept in memory)
   and its JSON API (level 3, replies over 1 kB); ``gzip -9`` of every body is shown beside them.
2. Views: one desktop page (1280x860) on ``#/history/...``. For each range, an init script
   (a) stamps every ``<canvas>`` the moment it enters the DOM (MutationObserver), (b) stamps
   when each fetched JSON body has been parsed (``Response.prototype.json`` wrapped), and (c)
   polls on every animation frame after the action until: ``section.history`` shows the new
   ``data-from``/``data-to``, the totals (``.totals[data-report-from][data-report-to]``,
   ``#total-solar``) are filled, the report, energy and outages bodies of the new range are
   parsed, and (day) a chart canvas exists that entered the DOM after both the energy and outages
   bodies were parsed (the chart is built once both are in, so an older canvas may still show
   the previous range), or (week, month, year) a bar of the energy bars holds the new range's
   data.
   The figure is that frame's ``performance.now()`` minus the action's time.
   Actions: a route change (``location.hash = '#/history/<kind>/<date>'``, timed just before it)
   over ``--dates`` (default 20) dates spread across the stored span per kind (years: each
   calendar year once, so only 2-3 samples), then the same ranges again, then real mouse clicks
   (Playwright) on the Day/Week/Month/Year buttons from ``--dates`` other days (timed from the
   click event's ``timeStamp``). A sample is *cold* when the hub serves its range for the first
   time since it started, *warm* when it served it before. The browser's cache is emptied before
   each sample (``Network.clearBrowserCache``), so each sample fetches again, as a browser that
   has not shown the range does; it is not turned off, because a browser with its cache off
   sends ``Cache-Control: no-cache``, which has the hub work out an energy reply again instead
   of taking it from its reply cache (``homegrid/api/energy.py``). So *warm* is a range some
   browser had the hub work out before: its energy replies from the hub's cache, the report
   and outages worked out again (SQLite's page cache and the OS file cache are warm: the store
   was just written). Also recorded per sample: the energy request's time (request start to
   response end: the hub and loopback) and its bytes.
3. Live watchers: plain HTTP clients (threads with sockets) hold ``GET /api/v1/stream`` open
   and count the ``live`` events they receive; with all connected (and 2 s to settle), the
   hub's utime + stime from ``/proc/<pid>/stat`` over ``--seconds`` (default 60) gives its CPU
   in % of one core. Windows: 0 clients, 1 client, 50 clients, ``--pages`` (default 5) real
   headless Chromium pages on ``#/now``, and 0 clients again; the baseline is the mean of both
   idle windows, and the cost of 50 watchers is their window minus it. The hub polls the
   virtual home every 5 s (``[server] poll_interval_s``), and one loop looks for a new
   reading every 0.25 s for all streams (``STREAM_CHECK_S``; each stream looked every 1 s before issue 10).

No peer: the issue names none, and the natural one, Powerwall-Dashboard's Grafana, cannot be
installed here (no ``grafana`` server package in Debian's archive, none on PyPI or npm; the
PyPI name ``grafana`` is a 0.0.1 placeholder). So each figure is reported against its budget,
as the ratio figure / budget (below 1 is within budget).

Prints a Markdown section (and writes it to ``bench/out/web.md``, the figures to
``bench/out/web.json``); progress goes to standard error.

    .venv/bin/python bench/bench_web.py            # full: 730 days, 20 loads, 20 dates, 60 s windows (~8 min)
    .venv/bin/python bench/bench_web.py --quick    # 60 days, 5 loads, 5 dates, 10 s windows (< 2 min)
    .venv/bin/python bench/bench_web.py --profile /tmp/hub.prof   # the hub under cProfile
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import influx
import synth
from budgets import limit
from common import (
    MIB,
    OUT,
    PYTHON,
    child_env,
    file_size,
    fmt,
    homegrid_cmd,
    log,
    machine,
    run_child,
    stop_process,
    verdict,
)

BUDGET_FIRST_LOAD_MS = limit("web.first_load_p95_ms")
BUDGET_PAGE_BYTES = limit("web.page_kb") * 1000  # "500 kB" read as 10^3 bytes
BUDGET_VIEW_MS = limit("web.day_cold_p95_ms")
BUDGET_WATCH_CPU_PERCENT = limit("web.watchers_cpu_percent")
WATCHERS = 50
KINDS = ("day", "week", "month", "year")
#: the energy request each view waits for, as homegrid/web/src/history.js: a day's power by the minute (its chart is a
#: canvas); kWh bars per local day (week, month) or month (year), drawn as SVG
STEP = {"day": "minute", "week": "day", "month": "day", "year": "month"}
#: ``--quick``: under two minutes
QUICK = {"days": 60, "repeats": 5, "dates": 5, "seconds": 10.0, "pages": 2}
CHROMIUM = "/usr/bin/chromium"
# as tests/test_web.py: the closed network refuses Chromium's own background connections
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 860}
TIMEOUT_MS = 20_000

# Now drawn: polled on every animation frame from the document's start (the time is from navigation start).
NOW_PROBE = """(() => {
  const check = () => {
    const n = document.querySelector("section.now [data-node=solar]");
    const kw = n && n.querySelector("[data-role=node-kw]");
    if (n && n.dataset.value !== "" && kw && kw.textContent.trim()) { window.__hgDrawn = performance.now(); return; }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();"""

# History drawn: canvas and JSON stamps, and a checker armed per range (see the module docstring).
VIEW_PROBE = """(() => {
  performance.setResourceTimingBufferSize(100000);
  const canvasT = new WeakMap();
  const jsonT = new Map();
  const json = Response.prototype.json;
  Response.prototype.json = function () {
    const url = this.url;
    return json.call(this).then((v) => { jsonT.set(url, performance.now()); return v; });
  };
  new MutationObserver((records) => {
    const t = performance.now();
    for (const r of records) for (const n of r.addedNodes) {
      if (n.nodeType !== 1) continue;
      const found = n.tagName === "CANVAS" ? [n] : n.querySelectorAll("canvas");
      for (const c of found) if (!canvasT.has(c)) canvasT.set(c, t);
    }
  }).observe(document, { childList: true, subtree: true });
  addEventListener("click", (e) => {
    if (window.__hgArmedClick) { window.__hgArmedClick = false; window.__hgT0 = e.timeStamp; }
  }, true);
  window.__hgArm = (from, to, step, click) => {
    window.__hgResult = null;
    window.__hgT0 = null;
    window.__hgArmedClick = !!click;
    jsonT.clear();
    performance.clearResourceTimings();
    const q = `${location.origin}/api/v1/`;
    const urls = { report: `${q}report?from=${from}&to=${to}`, outages: `${q}outages?from=${from}&to=${to}` };
    // the energy request: this span and step, with the fields the view asks for (homegrid/web/src/history.js)
    const energy = `${q}energy?from=${from}&to=${to}&step=${step}`;
    const isEnergy = (u) => u === energy || u.startsWith(`${energy}&`);
    const energyEntry = () => performance.getEntriesByType("resource").filter((e) => isEnergy(e.name)).pop() ?? null;
    const check = () => {
      const t0 = window.__hgT0;
      if (t0 != null) {
        const now = performance.now();
        const s = document.querySelector(`section.history[data-from="${from}"][data-to="${to}"]`);
        const tiles = s && s.querySelector(`.totals[data-report-from="${from}"][data-report-to="${to}"]`);
        const solar = tiles && tiles.querySelector("#total-solar .tile-value");
        const canvas = s && s.querySelector(".chart canvas");
        // bars: drawn once one bar holds the new range's data (the old range's points fill none of its bins)
        const bar = step !== "minute" && s && s.querySelector(`.bars[data-step="${step}"] svg g.bar:not(.empty)`);
        const ct = step === "minute" ? (canvas ? canvasT.get(canvas) : undefined) : bar ? now : undefined;
        const je = [...jsonT].find(([u]) => isEnergy(u))?.[1];
        const jo = jsonT.get(urls.outages), jr = jsonT.get(urls.report);
        if (solar && solar.textContent.trim() && je != null && jo != null && jr != null && ct != null
            && ct >= Math.max(je, step === "minute" ? jo : 0)) {
          const e = energyEntry();
          window.__hgResult = { ms: now - t0, canvas_ms: ct - t0, energy_parsed_ms: je - t0,
            energy_request_ms: e ? e.responseEnd - e.requestStart : null, energy_bytes: e ? e.transferSize : null,
            energy_decoded_bytes: e ? e.decodedBodySize : null, solar: solar.textContent.trim() };
          return;
        }
        if (now - t0 > 15000) {
          window.__hgResult = { error: "not drawn in 15 s", section: !!s, tiles: !!tiles, canvas: ct, je, jo, jr };
          return;
        }
      }
      requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  };
})();"""


# the store and the hub ----------------------------------------------------------------------------------------


def build_store(data_dir: Path, days: int, source: str, tmp: Path, tz: ZoneInfo) -> dict[str, Any]:
    """``days`` of 1-minute history ending two minutes ago; returns how it was made and how long it took."""
    from homegrid.readings import from_ms
    from homegrid.timezones import local_day_bounds

    end = datetime.now(UTC) - timedelta(minutes=2)
    first = end.astimezone(tz).date() - timedelta(days=days)
    start = from_ms(local_day_bounds(first, tz)[0])
    span_days = (end - start).total_seconds() / 86_400
    t0 = time.perf_counter()
    if source == "simulate":
        cmd = homegrid_cmd("simulate", "--start", first.isoformat(), "--days", f"{span_days:.6f}",
                           "--create", "--data-dir", str(data_dir))
    else:
        csv_path = tmp / "readings.csv"
        rows = int((end - start).total_seconds() // 60)
        synth.write_csv(csv_path, start, rows, 60, seed=2024)
        cmd = homegrid_cmd("import", str(csv_path), "--create", "--data-dir", str(data_dir))
    run = run_child(cmd, env=child_env(tmp))
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {run.stderr[-2000:]}")
    db = data_dir / "homegrid.db"
    info = {"source": source, "first_date": first.isoformat(), "days": span_days, "build_s": time.perf_counter() - t0,
            "command": " ".join(Path(c).name if i == 0 else c.replace(str(tmp), "<tmp>") for i, c in enumerate(cmd)),
            "output": run.stdout.strip(), "disk_bytes": file_size(db, Path(f"{db}-wal"))}
    log(f"web: store of {span_days:.1f} days ({source}) in {info['build_s']:.1f} s, "
        f"{info['disk_bytes'] / MIB:.0f} MiB: {info['output']}")
    return info


@dataclass
class Hub:
    """A running ``homegrid serve``."""

    proc: subprocess.Popen
    port: int
    log_path: Path
    ready_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 10.0) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def raw(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return r.read()

    def cpu_s(self) -> float:
        return influx.cpu_seconds(self.proc.pid)

    def rss_mb(self) -> float:
        return influx.rss_kib(self.proc.pid)[0] * 1024 / 1e6


def start_hub(data_dir: Path, tmp: Path, profile: str | None = None) -> Hub:
    """``homegrid serve`` on a free port; wait until it answers and has polled."""
    port = influx.free_port()
    args = ["serve", "--create", "--data-dir", str(data_dir), "--port", str(port)]
    cmd = [PYTHON, "-m", "cProfile", "-o", profile, "-m", "homegrid.cli", *args] if profile else homegrid_cmd(*args)
    log_path = tmp / "serve.log"
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=child_env(tmp), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    hub = Hub(proc, port, log_path)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"homegrid serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            if (hub.get("/api/v1/live", timeout=2).get("health") or {}).get("device", {}).get("polls", 0) >= 1:
                break
        except OSError:
            pass
        if time.monotonic() - t0 > 300:
            raise RuntimeError(f"homegrid serve did not answer:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    hub.ready_s = time.monotonic() - t0
    time.sleep(2.0)
    # raw readings are kept forever by default: the pruner (at start, then hourly) deletes nothing and says nothing
    pruned = [x for x in log_path.read_text().splitlines() if "pruned" in x]
    hub.notes += [x.split(": ", 1)[-1] for x in pruned]
    log(f"web: hub on port {port} ready after {hub.ready_s:.1f} s; {'; '.join(hub.notes) or 'nothing pruned'}")
    return hub


def stop_hub(hub: Hub) -> None:
    stop_process(hub.proc, signal.SIGINT, 60)


# 1. first load ----------------------------------------------------------------------------------------------


def wait_js(page: Any, expression: str, timeout_s: float = TIMEOUT_MS / 1000) -> None:
    """Wait until a JavaScript expression is true, polling with evaluate() every 5 ms: Playwright's
    ``wait_for_function`` evaluates a string in the page, which the hub's CSP refuses (no ``unsafe-eval``)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(f"() => Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"never true: {expression}")
        time.sleep(0.005)


def first_load(browser: Any, hub: Hub, repeats: int) -> dict[str, Any]:
    """Cold contexts opening ``/#/now``: navigation start to drawn, and the bytes of every response."""
    samples: list[dict[str, Any]] = []
    requests: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for k in range(repeats):
        ctx = browser.new_context(viewport=DESKTOP)
        ctx.add_init_script(NOW_PROBE)
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        cdp = ctx.new_cdp_session(page)
        seen: dict[str, dict[str, Any]] = {}

        def on_response(ev: dict, seen: dict = seen) -> None:
            r = ev["response"]
            seen.setdefault(ev["requestId"], {}).update(
                url=r["url"], status=r["status"], encoding=(r.get("headers") or {}).get("content-encoding", ""),
                type=r.get("mimeType", ""))

        def on_data(ev: dict, seen: dict = seen) -> None:
            s = seen.setdefault(ev["requestId"], {})
            s["decoded"] = s.get("decoded", 0) + ev["dataLength"]
            s["wire_so_far"] = s.get("wire_so_far", 0) + ev.get("encodedDataLength", 0)

        def on_finished(ev: dict, seen: dict = seen) -> None:
            seen.setdefault(ev["requestId"], {})["wire"] = ev["encodedDataLength"]

        cdp.on("Network.responseReceived", on_response)
        cdp.on("Network.dataReceived", on_data)
        cdp.on("Network.loadingFinished", on_finished)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        wall0 = time.perf_counter()
        page.goto(f"{hub.url}/#/now", wait_until="commit")
        wait_js(page, "window.__hgDrawn")
        wall = time.perf_counter() - wall0
        t = page.evaluate("""() => {
          const nav = performance.getEntriesByType("navigation")[0];
          const fcp = performance.getEntriesByName("first-contentful-paint")[0];
          const js = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/static/app.js"));
          return { drawn_ms: window.__hgDrawn, fcp_ms: fcp ? fcp.startTime : null,
                   dcl_ms: nav ? nav.domContentLoadedEventEnd : null, app_js_end_ms: js ? js.responseEnd : null };
        }""")
        t["wall_ms"] = wall * 1000  # Playwright's side: goto() sent to the probe seen (adds the polling's delay)
        deadline = time.monotonic() + 3  # the finished events of the page's requests (not the stream's)
        while time.monotonic() < deadline and any(
                "wire" not in s and "/api/v1/stream" not in s.get("url", "") for s in seen.values()):
            page.wait_for_timeout(20)
        samples.append(t)
        if k == repeats - 1:
            requests = {s["url"].replace(hub.url, ""): s for s in seen.values() if "url" in s}
        log(f"web: first load {k + 1}/{repeats}: drawn {t['drawn_ms']:.0f} ms (fcp {t['fcp_ms'] or 0:.0f} ms)")
        ctx.close()
    drawn = np.array([s["drawn_ms"] for s in samples])
    weight = page_weight(hub, requests)
    return {"repeats": repeats, "samples": samples, "drawn_ms": _stats(drawn),
            "first_ms": float(drawn[0]), "fcp_ms": _stats(np.array([s["fcp_ms"] or np.nan for s in samples])),
            "dcl_ms": _stats(np.array([s["dcl_ms"] or np.nan for s in samples])),
            "app_js_end_ms": _stats(np.array([s["app_js_end_ms"] or np.nan for s in samples])),
            "wall_ms": _stats(np.array([s["wall_ms"] for s in samples])), "weight": weight, "errors": errors}


def page_weight(hub: Hub, requests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Bytes of the first load's requests: on the wire as served, decoded, and gzip -9 of what was sent raw."""
    rows = []
    for path, s in sorted(requests.items()):
        stream = path.startswith("/api/v1/stream")
        body = None if stream else hub.raw(path)
        rows.append({"path": path, "status": s.get("status"), "encoding": s.get("encoding") or "none",
                     "wire": s.get("wire_so_far", 0) if stream else s.get("wire"), "decoded": s.get("decoded", 0),
                     "gzip9": None if body is None else len(gzip.compress(body, 9)), "stream": stream})
    page = [r for r in rows if not r["stream"]]
    return {"requests": rows,
            "wire_bytes": sum(r["wire"] or 0 for r in page),
            "decoded_bytes": sum(r["decoded"] for r in page),
            "static_wire_bytes": sum(r["wire"] or 0 for r in page if not r["path"].startswith("/api/")),
            "api_wire_bytes": sum(r["wire"] or 0 for r in page if r["path"].startswith("/api/")),
            "all_gzip9_bytes": sum(r["gzip9"] or 0 for r in page),
            "static_compressed": all(r["encoding"] == "gzip" for r in page
                                     if not r["path"].startswith("/api/") and r["path"].endswith((".js", ".css", "/"))),
            "api_compressed": any(r["encoding"] != "none" for r in page if r["path"].startswith("/api/"))}


# 2. views ----------------------------------------------------------------------------------------------------


def span(kind: str, d: date) -> tuple[date, date]:
    """The range a view shows around a date, as ``span()`` in homegrid/web/src/dates.js."""
    if kind == "week":
        monday = d - timedelta(days=d.weekday())
        return monday, monday + timedelta(days=6)
    if kind == "month":
        return d.replace(day=1), d.replace(day=monthrange(d.year, d.month)[1])
    if kind == "year":
        return date(d.year, 1, 1), date(d.year, 12, 31)
    return d, d


def spread(first: date, last: date, n: int, offset: float = 0.0) -> list[date]:
    """``n`` dates evenly over ``[first, last]``, shifted by ``offset`` of a spacing."""
    gap = (last - first).days / max(1, n)
    return [first + timedelta(days=min((last - first).days, round((k + offset) * gap))) for k in range(n)]


class Views:
    """One page on ``#/history``; each sample times an action to the new range drawn."""

    def __init__(self, browser: Any, hub: Hub, cache_off: bool = False) -> None:
        self.ctx = browser.new_context(viewport=DESKTOP)
        self.ctx.add_init_script(VIEW_PROBE)
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.cdp = self.ctx.new_cdp_session(self.page)
        self.cdp.send("Network.enable")
        self.cache_off = cache_off  # as before this bench emptied the cache instead: every request says no-cache
        if cache_off:
            self.cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        self.hub = hub
        self.served: set[tuple[str, str]] = set()  # ranges the hub has served
        self.samples: list[dict[str, Any]] = []
        self.kind = ""
        self.date = date.min

    def open(self, kind: str, d: date) -> None:
        self.page.goto(f"{self.hub.url}/#/history/{kind}/{d.isoformat()}")
        self.page.wait_for_selector(f"section.history[data-from='{span(kind, d)[0]}'] .chart canvas")
        self.page.wait_for_selector("#total-solar")
        self.served.add(tuple(x.isoformat() for x in span(kind, d)))
        self.kind, self.date = kind, d

    def measure(self, kind: str, d: date, action: str, tag: str) -> dict[str, Any]:
        """``action``: "route" (set location.hash) or "click" (the kind's button, from the current view)."""
        a, b = (x.isoformat() for x in span(kind, d))
        if not self.cache_off:
            self.cdp.send("Network.clearBrowserCache")  # fetched again, without the no-cache of a cache turned off
        self.page.evaluate("([a, b, s, c]) => window.__hgArm(a, b, s, c)", [a, b, STEP[kind], action == "click"])
        if action == "route":
            self.page.evaluate("(h) => { window.__hgT0 = performance.now(); location.hash = h; }",
                               f"#/history/{kind}/{d.isoformat()}")
        else:
            self.page.get_by_role("group", name="Range").get_by_role("button", name=kind.title(), exact=True).click()
        wait_js(self.page, "window.__hgResult")
        r = self.page.evaluate("window.__hgResult")
        if "error" in r:
            raise RuntimeError(f"{kind} {a}..{b} ({action}): {r}")
        r.update(kind=kind, first=a, last=b, action=action, tag=tag, cold=(a, b) not in self.served)
        self.served.add((a, b))
        self.samples.append(r)
        self.kind, self.date = kind, d
        self.page.wait_for_timeout(50)  # let the view settle (late renders, the Sankey) before the next action
        return r

    def close(self) -> None:
        self.ctx.close()


def views(browser: Any, hub: Hub, first: date, today: date, n: int, cache_off: bool = False) -> dict[str, Any]:
    """Route changes over dates spread across the span (cold, then again), then clicks on the kind buttons."""
    v = Views(browser, hub, cache_off)
    lo, hi = first + timedelta(days=1), today - timedelta(days=1)
    try:
        v.open("day", today)
        picks: dict[str, list[date]] = {}
        for kind in KINDS:
            ranges: dict[tuple[date, date], date] = {}
            for d in spread(lo, hi, n) if kind != "year" else [date(y, 7, 1) for y in range(lo.year, hi.year + 1)]:
                ranges.setdefault(span(kind, d), d)
            picks[kind] = list(ranges.values())
        for tag in ("route", "route again"):
            for kind in KINDS:
                for d in picks[kind]:
                    r = v.measure(kind, d, "route", tag)
                    log(f"web: {tag} {kind} {r['first']}: {r['ms']:.0f} ms "
                        f"(energy request {r['energy_request_ms'] or 0:.0f} ms, {r['energy_bytes'] or 0:,} B)")
        for d in spread(lo, hi, n, offset=0.5):  # other days: by clicks Week, Day (its Monday), Month, Year
            v.measure("day", d, "route", "route before clicks")
            from_ = d
            for kind in ("week", "day", "month", "year"):
                r = v.measure(kind, from_, "click", "click")
                from_ = date.fromisoformat(r["first"])
            log(f"web: clicks from {d}: " + ", ".join(
                f"{s['kind']} {s['ms']:.0f} ms" for s in v.samples[-4:]))
    finally:
        v.close()
    return {"samples": v.samples, "errors": v.errors, "summary": view_summary(v.samples)}


def view_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = [s for s in samples if s["kind"] == kind]
        groups = {"cold": [s for s in mine if s["cold"]], "warm": [s for s in mine if not s["cold"]],
                  "click": [s for s in mine if s["action"] == "click"], "all": mine}
        out[kind] = {g: {"ms": _stats(np.array([s["ms"] for s in ss])),
                         "energy_request_ms": _stats(np.array([s["energy_request_ms"] or np.nan for s in ss])),
                         "energy_bytes": _stats(np.array([s["energy_bytes"] or np.nan for s in ss]))}
                     for g, ss in groups.items()}
    return out


# 3. live watchers --------------------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """One client of ``/api/v1/stream``: counts the live events and bytes it receives."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.connected = threading.Event()
        self.events = 0
        self.bytes = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
                tail = b""
                while not self.stop.is_set():
                    try:
                        chunk = s.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        self.error = "closed by the hub"
                        break
                    self.bytes += len(chunk)
                    buf = tail + chunk
                    if not self.connected.is_set() and buf.startswith(b"HTTP/1.1 200"):
                        self.connected.set()
                    self.events += buf.count(b"event: live")
                    tail = buf[-10:]  # shorter than the marker: never counted twice
        except OSError as exc:
            self.error = repr(exc)


def cpu_window(hub: Hub, seconds: float) -> dict[str, float]:
    c0, w0 = hub.cpu_s(), time.monotonic()
    rss = [hub.rss_mb()]
    while time.monotonic() - w0 < seconds:
        time.sleep(min(1.0, seconds - (time.monotonic() - w0)))
        rss.append(hub.rss_mb())
    c1, w1 = hub.cpu_s(), time.monotonic()
    return {"seconds": w1 - w0, "cpu_s": c1 - c0, "cpu_percent": 100 * (c1 - c0) / (w1 - w0), "rss_max_mb": max(rss)}


def watch_window(hub: Hub, clients: int, seconds: float) -> dict[str, Any]:
    stop = threading.Event()
    ws = [Watcher(hub.port, stop) for _ in range(clients)]
    for w in ws:
        w.start()
    for w in ws:
        w.connected.wait(10)
    time.sleep(2.0)  # the first event of each stream (sent at connect) and the connection set-up are not counted
    e0 = [w.events for w in ws]
    out: dict[str, Any] = {"clients": clients, "connected": sum(w.connected.is_set() for w in ws)}
    out.update(cpu_window(hub, seconds))
    events = [w.events - e for w, e in zip(ws, e0, strict=True)]
    stop.set()
    for w in ws:
        w.join(5)
    out["events_per_client"] = _stats(np.array(events, dtype=float)) if events else None
    out["bytes_per_client_per_s"] = float(np.mean([w.bytes for w in ws])) / seconds if ws else 0.0
    out["errors"] = sorted({w.error for w in ws if w.error})
    return out


def pages_window(browser: Any, hub: Hub, pages: int, seconds: float) -> dict[str, Any]:
    ctxs = [browser.new_context(viewport=DESKTOP) for _ in range(pages)]
    try:
        for ctx in ctxs:
            page = ctx.new_page()
            page.goto(f"{hub.url}/#/now")
            page.wait_for_selector("section.now [data-node=solar]", timeout=TIMEOUT_MS)
        t0 = [c.pages[0].evaluate("document.querySelector('section.now').dataset.time") for c in ctxs]
        time.sleep(2.0)
        out: dict[str, Any] = {"clients": pages, "kind": "chromium pages on #/now"}
        out.update(cpu_window(hub, seconds))
        t1 = [c.pages[0].evaluate("document.querySelector('section.now').dataset.time") for c in ctxs]
        out["pages_updated"] = sum(b > a for a, b in zip(t0, t1, strict=True))
    finally:
        for ctx in ctxs:
            ctx.close()
    return out


def watchers(browser: Any, hub: Hub, seconds: float, pages: int) -> dict[str, Any]:
    windows: list[dict[str, Any]] = []
    plan: list[tuple[str, int]] = [("http", 0), ("http", 1), ("http", WATCHERS)]
    if pages:
        plan.append(("pages", pages))
    plan.append(("http", 0))
    for kind, n in plan:
        w = watch_window(hub, n, seconds) if kind == "http" else pages_window(browser, hub, n, seconds)
        w.setdefault("kind", "SSE clients (threads)")
        windows.append(w)
        log(f"web: {n} {w['kind']}: hub CPU {w['cpu_percent']:.2f} % over {w['seconds']:.0f} s"
            + (f", {w['events_per_client']['median']:.0f} events each" if w.get("events_per_client") else ""))
    idle = [w["cpu_percent"] for w in windows if w["clients"] == 0]
    base = float(np.mean(idle))
    fifty = next(w for w in windows if w["clients"] == WATCHERS)
    return {"windows": windows, "idle_cpu_percent": base, "fifty_cpu_percent": fifty["cpu_percent"],
            "fifty_increment_percent": fifty["cpu_percent"] - base, "seconds": seconds}


# the whole run -----------------------------------------------------------------------------------------------


def _stats(a: np.ndarray) -> dict[str, float] | None:
    a = a[~np.isnan(a)] if a.size else a
    if not a.size:
        return None
    return {"n": int(a.size), "median": float(np.median(a)), "p95": float(np.percentile(a, 95)),
            "min": float(a.min()), "max": float(a.max())}


def chromium_version() -> str:
    try:
        out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return ""
    return out.strip()


def run(days: int = 730, repeats: int = 20, dates: int = 20, seconds: float = 60.0, pages: int = 5,
        source: str = "simulate", tmp_root: str | None = None, profile: str | None = None,
        cache_off: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {"days": days, "repeats": repeats, "dates": dates, "seconds": seconds, "pages": pages,
                           "cache_off": cache_off,
                           "budgets": {"first_load_ms": BUDGET_FIRST_LOAD_MS, "page_bytes": BUDGET_PAGE_BYTES,
                                       "view_ms": BUDGET_VIEW_MS, "watch_cpu_percent": BUDGET_WATCH_CPU_PERCENT},
                           "peer": "none: Grafana (Powerwall-Dashboard's) is not installable here"}
    if not Path(CHROMIUM).exists():
        res["skipped"] = f"{CHROMIUM} is missing (apt-get install chromium)"
        log(f"web: skipped: {res['skipped']}")
        return res
    from playwright.sync_api import sync_playwright

    res["chromium"] = chromium_version()
    res["playwright"] = metadata.version("playwright")
    tz = ZoneInfo("America/New_York")  # the default site, as ``homegrid serve`` runs it with no config
    tmp = Path(tempfile.mkdtemp(prefix="hg-web-", dir=tmp_root))
    hub = None
    try:
        res["store"] = build_store(tmp / "data", days, source, tmp, tz)
        hub = start_hub(tmp / "data", tmp, profile)
        res["hub"] = {"ready_s": hub.ready_s, "notes": hub.notes}
        site = hub.get("/api/v1/site")
        today = date.fromisoformat(site["today"])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                res["first_load"] = first_load(browser, hub, repeats)
                res["views"] = views(browser, hub, date.fromisoformat(res["store"]["first_date"]), today, dates,
                                     cache_off)
                res["watch"] = watchers(browser, hub, seconds, pages)
            finally:
                browser.close()
        logged = hub.log_path.read_text().splitlines()
        res["hub"]["log_warnings"] = sum(" WARNING " in x or " ERROR " in x for x in logged)
    finally:
        if hub is not None:
            stop_hub(hub)
        shutil.rmtree(tmp, ignore_errors=True)
    return res


# the report --------------------------------------------------------------------------------------------------


def _ms(s: dict[str, float] | None) -> str:
    return "-" if not s else f"{fmt(s['median'])} / {fmt(s['p95'])}"


def summary_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(what, measured, budget, ratio figure/budget, verdict) for the main table (and run_all.py)."""
    rows: list[tuple[str, str, str, str, str]] = []
    fl = r.get("first_load")
    if fl:
        d = fl["drawn_ms"]
        rows.append((f"first load of #/now, navigation start to drawn, median / p95 [ms] (n={d['n']})",
                     _ms(d), f"< {BUDGET_FIRST_LOAD_MS:g} ms", f"{d['p95'] / BUDGET_FIRST_LOAD_MS:.3f}",
                     verdict(d["p95"], BUDGET_FIRST_LOAD_MS)))
        w = fl["weight"]
        rows.append(("page weight of that load, as served (gzip where the hub compresses) [kB]",
                     f"{w['wire_bytes'] / 1000:.1f}", f"< {BUDGET_PAGE_BYTES / 1000:g} kB",
                     f"{w['wire_bytes'] / BUDGET_PAGE_BYTES:.3f}", verdict(w["wire_bytes"], BUDGET_PAGE_BYTES)))
    vs = r.get("views")
    if vs:
        for kind in KINDS:
            s = vs["summary"][kind]
            for group, label in (("cold", "first time the hub serves the range"), ("warm", "range served before")):
                st = s[group]["ms"]
                if not st:
                    continue
                rows.append((f"{kind} view ({STEP[kind]} steps), {label}: median / p95 [ms] (n={st['n']})", _ms(st),
                             f"< {BUDGET_VIEW_MS:g} ms", f"{st['p95'] / BUDGET_VIEW_MS:.3f}",
                             verdict(st["p95"], BUDGET_VIEW_MS)))
    wt = r.get("watch")
    if wt:
        fifty = wt["fifty_cpu_percent"]
        rows.append((f"{WATCHERS} SSE watchers: hub CPU [% of one core] ({fmt(wt['seconds'])} s)", f"{fifty:.2f}",
                     f"< {BUDGET_WATCH_CPU_PERCENT:g} %", f"{fifty / BUDGET_WATCH_CPU_PERCENT:.3f}",
                     verdict(fifty, BUDGET_WATCH_CPU_PERCENT)))
        inc = wt["fifty_increment_percent"]
        rows.append((f"{WATCHERS} SSE watchers: increment over the idle hub [% of one core]", f"{inc:.2f}",
                     f"< {BUDGET_WATCH_CPU_PERCENT:g} %", f"{inc / BUDGET_WATCH_CPU_PERCENT:.3f}",
                     verdict(inc, BUDGET_WATCH_CPU_PERCENT)))
    return rows


def render(r: dict[str, Any], argv: list[str]) -> str:
    m = r.get("machine", {})
    cmd = " ".join([".venv/bin/python", "bench/bench_web.py", *argv])
    lines = ["## Issue 5: the web app (`bench_web.py`)", ""]
    if "skipped" in r:
        return "\n".join([*lines, f"Skipped: {r['skipped']}."])
    st = r["store"]
    lines += [
        f"- Machine: {m.get('nproc')} cores ({m.get('cpu')}), {m.get('ram_gib')} GiB RAM, Linux {m.get('kernel')}, "
        f"Python {m.get('python')}, SQLite {m.get('sqlite')}; {r['chromium']} (Debian), Playwright {r['playwright']}.",
        f"- {m.get('date')}, commit `{m.get('git_head')}`"
        + (f" (uncommitted in homegrid/: {', '.join(m['homegrid_uncommitted'])})"
           if m.get("homegrid_uncommitted") else ", clean homegrid/") + ".",
        f"- Command: `{cmd}` ({r['bench_s']:.0f} s); load average (1, 5, 15 min) before it "
        f"{', '.join(f'{x:.2f}' for x in r['loadavg']['start'])}, after it "
        f"{', '.join(f'{x:.2f}' for x in r['loadavg']['end'])}.",
        f"- Store: {st['days']:.1f} days at 1 min from {st['first_date']} to two minutes before the run "
        f"(`{st['command']}`, {st['build_s']:.1f} s, {st['disk_bytes'] / MIB:.0f} MiB): {st['output']}",
        f"- Hub: `homegrid serve --data-dir <tmp> --port <free>`, all defaults (virtual home polled every 5 s, "
        f"America/New_York); answering after {r['hub']['ready_s']:.1f} s; "
        f"{'; '.join(r['hub']['notes']) or 'nothing pruned'} (raw readings kept forever by default).",
        "- Peer: none. The issue names none, and Powerwall-Dashboard's Grafana is not installable here (no "
        "`grafana` server package in Debian's archive, none on PyPI or npm). Each figure is given against its "
        "budget: ratio = figure / budget (p95 where there are samples).",
        "",
        "| what | measured | budget | figure / budget | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(r)]
    fl = r["first_load"]
    w = fl["weight"]
    lines += ["", f"First load, {fl['repeats']} cold contexts (cache disabled), median / p95 [ms] from navigation "
              f"start: app.js received {_ms(fl['app_js_end_ms'])}, first contentful paint {_ms(fl['fcp_ms'])}, "
              f"DOMContentLoaded {_ms(fl['dcl_ms'])}, Now drawn {_ms(fl['drawn_ms'])} (the very first load after "
              f"the hub started: {fl['first_ms']:.0f} ms; Playwright's own goto-to-seen {_ms(fl['wall_ms'])}).",
              "", "| request | encoding | on the wire [B] | decoded [B] | gzip -9 of the body [B] |",
              "|---|---|---|---|---|"]
    for q in w["requests"]:
        wire = "(open)" if q["stream"] else fmt(q["wire"])
        lines.append(f"| `{q['path']}`{' (stream, received up to drawn)' if q['stream'] else ''} | {q['encoding']} | "
                     f"{wire} | {fmt(q['decoded'])} | {fmt(q['gzip9'])} |")
    lines.append(f"| total, without the stream | | {w['wire_bytes']:,} | {w['decoded_bytes']:,} | "
                 f"{w['all_gzip9_bytes']:,} |")
    lines += ["", "The hub gzips the static files" + (" (checked: every .js/.css/html response above is gzip)"
              if w["static_compressed"] else " (NOT seen in this run)") + "; its JSON API is sent "
              + ("compressed." if w["api_compressed"] else "uncompressed (its gzip -9 size is shown beside it).")]
    vs = r["views"]["summary"]
    cache = ("the browser's cache off (`--cache-off`: every request says no-cache, so the hub works out even a warm "
             "energy reply again)" if r.get("cache_off") else "the browser's cache emptied before each sample")
    lines += ["", f"Views ({cache}), click or route change to drawn [ms], median / p95 (n), and the energy request "
              "inside it (request start to response end: the hub and loopback) and its size:", "",
              "| view | cold | warm | clicks | all | energy request [ms] | energy JSON [kB] |",
              "|---|---|---|---|---|---|---|"]
    for kind in KINDS:
        s = vs[kind]

        def cell(g: str, s: dict = s) -> str:
            x = s[g]["ms"]
            return "-" if not x else f"{_ms(x)} ({x['n']})"

        eb = s["all"]["energy_bytes"]
        lines.append(f"| {kind} ({STEP[kind]}) | {cell('cold')} | {cell('warm')} | {cell('click')} | {cell('all')} | "
                     f"{_ms(s['all']['energy_request_ms'])} | {fmt(eb['median'] / 1000) if eb else '-'} |")
    wt = r["watch"]
    lines += ["", f"Live watchers, {fmt(wt['seconds'])} s windows, hub CPU (utime + stime) in % of one core:", "",
              "| window | connected | hub CPU [%] | hub RSS max [MB] | live events per client, median | errors |",
              "|---|---|---|---|---|---|"]
    for x in wt["windows"]:
        ev = x.get("events_per_client")
        conn = x.get("connected", x.get("pages_updated"))
        shown = fmt(ev["median"]) if ev else (f"(pages updated: {x['pages_updated']})" if "pages_updated" in x else "-")
        lines.append(f"| {x['clients']} {x['kind']} | {conn} | {x['cpu_percent']:.2f} | {x['rss_max_mb']:.0f} | "
                     f"{shown} | "
                     f"{', '.join(x.get('errors', [])) or '-'} |")
    lines += ["", f"Idle baseline (mean of both idle windows) {wt['idle_cpu_percent']:.2f} %; "
              f"{WATCHERS} watchers {wt['fifty_cpu_percent']:.2f} %, i.e. +{wt['fifty_increment_percent']:.2f} % "
              f"(+{wt['fifty_increment_percent'] / WATCHERS:.3f} % per watcher)."]
    errs = r["first_load"]["errors"] + r["views"]["errors"]
    if errs:
        lines += ["", f"Page errors: {errs[:5]}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="60 days, 5 loads, 5 dates, 10 s windows, 2 pages (< 2 min)")
    p.add_argument("--days", type=int, help="days of stored history (default 730)")
    p.add_argument("--repeats", type=int, help="cold first loads (default 20)")
    p.add_argument("--dates", type=int, help="dates per view kind, and days for the clicks (default 20)")
    p.add_argument("--seconds", type=float, help="each CPU window of the live watchers (default 60)")
    p.add_argument("--pages", type=int, help="real Chromium pages on #/now in a window of their own (default 5)")
    p.add_argument("--source", choices=("simulate", "synthetic"), default="simulate",
                   help="the store: homegrid simulate (default) or synth.py's CSV through homegrid import")
    p.add_argument("--tmp", help="folder for the store (default the system temp folder)")
    p.add_argument("--profile", help="run the hub under cProfile and write its stats here")
    p.add_argument("--cache-off", action="store_true",
                   help="views: the browser's cache off (every request says no-cache: the hub's energy reply cache "
                        "is bypassed), as this bench did before 2026-12-06, instead of emptied before each sample")
    p.add_argument("--out", type=Path, default=OUT / "web.md", help="the Markdown section (JSON beside it)")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    sizes = dict(QUICK if args.quick else {})
    for k in ("days", "repeats", "dates", "seconds", "pages"):
        if getattr(args, k) is not None:
            sizes[k] = getattr(args, k)
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    res = run(**sizes, source=args.source, tmp_root=args.tmp, profile=args.profile, cache_off=args.cache_off)
    res["bench_s"] = time.perf_counter() - t0
    res["loadavg"] = {"start": load0, "end": os.getloadavg()}  # other work on the machine shows here
    res["machine"] = machine()
    res["argv"] = argv
    text = render(res, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str))
    print(text)
    log(f"web: {res['bench_s']:.0f} s; wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
