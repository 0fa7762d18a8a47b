"""Where the web app's day view spends its time (a diagnostic, issue 15): the hub against the browser.

``homegrid serve`` on a copy of a data dir (a store made by ``homegrid simulate``), then:

- ``burst``: the day view's five requests (its minute chart, outages, report, hourly bars, prices) sent at once from
  Python on five keep-alive connections, ``no-cache`` (worked out), over 60 days; the median time of each reply and
  of the last one, which is what the view waits for when the browser takes no CPU.
- ``browser``: Debian's Chromium (the flags of ``bench_web.py``) on ``#/history/day/...``, 24 route changes to the
  next day; per change, the CPU of Chromium's processes by kind and of the hub, when the last reply was in, when the
  canvas was drawn and when the view was whole (chart, totals and bars of the new day); and for the first three
  changes, when each request started and got its first and last byte after the route change::

    .venv/bin/homegrid simulate --data-dir /tmp/y1 --create --start 2025-01-01 --days 365
    .venv/bin/python bench/diag_dayview.py /tmp/y1 burst
    .venv/bin/python bench/diag_dayview.py /tmp/y1 browser
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import shutil
import statistics
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import bench_web
from bench_store import BAR_FIELDS, DAY_FIELDS

CANVAS_PROBE = """(() => { window.__cv = null;
  new MutationObserver((rs) => { for (const r of rs) for (const n of r.addedNodes)
    if (n.nodeType === 1 && (n.tagName === 'CANVAS' || n.querySelector?.('canvas'))) window.__cv = performance.now(); })
  .observe(document, {childList: true, subtree: true}); })();"""


# the route change, then every animation frame until the new day's chart, totals and hourly bars are all drawn
# (bench_web.py's test, less its wait for parsed bodies): [the change's time, that frame's time] (performance.now)
GO_AND_WAIT = """(d) => new Promise((done) => { const t0 = performance.now(); location.hash = '#/history/day/' + d;
  const frame = () => document.querySelector(`section.history[data-from='${d}'] .chart canvas`)
    && document.querySelector(`.totals[data-report-from='${d}'] #total-solar`)
    && document.querySelector(`section.history[data-from='${d}'] .bars[data-step=hour] svg g.bar`)
    ? done([t0, performance.now()]) : requestAnimationFrame(frame);
  requestAnimationFrame(frame); })"""


def day_paths(d: date) -> list[str]:
    """The day view's requests (``homegrid/web/src/history.js``, ``prices.js``), in the order it asks them."""
    day, bars = "&fields=" + ",".join(DAY_FIELDS), "&fields=" + ",".join(BAR_FIELDS)
    return [f"/api/v1/energy?from={d}&to={d}&step=minute{day}", f"/api/v1/outages?from={d}&to={d}",
            f"/api/v1/report?from={d}&to={d}", f"/api/v1/energy?from={d}&to={d}&step=hour{bars}",
            f"/api/v1/prices?day={d}"]


def burst(hub: bench_web.Hub, first: date) -> str:
    conns = [http.client.HTTPConnection("127.0.0.1", hub.port) for _ in range(5)]

    def one(i: int, path: str, out: list[float], t0: float) -> None:
        conns[i].request("GET", path, headers={"Accept-Encoding": "gzip", "Cache-Control": "no-cache"})
        conns[i].getresponse().read()
        out[i] = time.perf_counter() - t0

    lasts: list[float] = []
    each: list[list[float]] = [[] for _ in range(5)]
    for k in range(63):
        out = [0.0] * 5
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one, args=(i, p, out, t0))
                   for i, p in enumerate(day_paths(first + timedelta(days=3 * k)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if k >= 3:  # the first three warm the connections
            lasts.append(max(out))
            for i in range(5):
                each[i].append(out[i])
        time.sleep(0.05)
    names = ("minutes", "outages", "report", "hours", "prices")
    return (f"burst of five: the last reply {statistics.median(lasts) * 1e3:.1f} ms (median of {len(lasts)}); "
            + ", ".join(f"{n} {statistics.median(e) * 1e3:.1f}" for n, e in zip(names, each, strict=True)))


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _chromium_cpu_s() -> dict[str, float]:
    """CPU time [s] of every Chromium process, summed by its kind (browser, renderer, gpu-process, network...)."""
    kinds: dict[str, float] = {}
    for d in glob.glob("/proc/[0-9]*"):
        try:
            cmd = Path(d, "cmdline").read_text(errors="replace")
            if "chromium" not in cmd:
                continue
            kind = re.search(r"--type=([a-z-]+)", cmd)
            name = "network" if "network.mojom" in cmd else kind.group(1) if kind else "browser"
            kinds[name] = kinds.get(name, 0.0) + _cpu_s(int(d[6:]))
        except (OSError, ValueError, IndexError):
            pass
    return kinds


def _spent(before: dict[str, float], after: dict[str, float], per: float) -> str:
    """Each kind's CPU between two readings [ms per ``per``], the largest first."""
    got = {k: (v - before.get(k, 0.0)) / per * 1e3 for k, v in after.items()}
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(got.items(), key=lambda kv: -kv[1]) if v >= 0.5)


def browser(hub: bench_web.Hub, first: date) -> list[str]:
    from playwright.sync_api import sync_playwright

    lines, canvas, last_reply, whole = [], [], [], []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=bench_web.CHROMIUM, args=bench_web.CHROMIUM_FLAGS)
        page = b.new_page(viewport=bench_web.DESKTOP)
        page.add_init_script(CANVAS_PROBE)
        page.goto(f"{hub.url}/#/history/day/{first}")
        page.wait_for_selector("section.history .chart canvas")
        page.wait_for_timeout(1500)
        idle = _chromium_cpu_s()
        page.wait_for_timeout(5000)
        lines.append(f"idle on the day view, Chromium's CPU [ms a second]: {_spent(idle, _chromium_cpu_s(), 5)}")
        c0, h0, changes = _chromium_cpu_s(), _cpu_s(hub.proc.pid), 24
        for k in range(1, changes + 1):
            d = first + timedelta(days=k)
            page.evaluate("() => { performance.clearResourceTimings(); window.__cv = null; }")
            t0, drawn = page.evaluate(GO_AND_WAIT, str(d))
            whole.append(drawn - t0)
            page.wait_for_timeout(300)
            got = page.evaluate("() => ({cv: window.__cv, r: performance.getEntriesByType('resource')"
                                ".filter(e => e.name.includes('/api/v1/')).map(e => [e.name.split('/api/v1/')[1]"
                                ".split('?')[0], e.startTime, e.responseStart, e.responseEnd])})")
            canvas.append(got["cv"] - t0)
            last_reply.append(max(e for *_, e in got["r"]) - t0)
            if k <= 3:
                lines.append(f"{d}: canvas {got['cv'] - t0:.0f} ms, whole {drawn - t0:.0f} ms; " + "; ".join(
                    f"{n} start {s - t0:.0f} first byte {f - t0:.0f} end {e - t0:.0f}" for n, s, f, e in got["r"]))
        c1, h1 = _chromium_cpu_s(), _cpu_s(hub.proc.pid)
        lines.append(f"per change of day, CPU [ms]: Chromium {_spent(c0, c1, changes)}; "
                     f"the hub {(h1 - h0) / changes * 1e3:.1f}")
        lines.append(f"after the route change (median of {changes}): the last reply in "
                     f"{statistics.median(last_reply):.0f} ms, the canvas drawn {statistics.median(canvas):.0f} ms, "
                     f"the view whole {statistics.median(whole):.0f} ms")
        b.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", type=Path, help="a store made by homegrid simulate (copied, not changed)")
    p.add_argument("what", choices=("burst", "browser"))
    p.add_argument("--first", type=date.fromisoformat, default=date(2025, 1, 5), help="the first day asked for")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hg-dayview-"))
    shutil.copytree(args.data_dir, tmp / "data")
    hub = bench_web.start_hub(tmp / "data", tmp)
    try:
        for line in [burst(hub, args.first)] if args.what == "burst" else browser(hub, args.first):
            print(line, flush=True)
    finally:
        bench_web.stop_hub(hub)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
