"""Issue 10: the hub under load on loopback: 200 concurrent API clients, then 50 live-stream watchers.

``homegrid serve`` (all defaults: the virtual home polled every 5 s) on ``--days`` (default 30) of
1-minute history written by ``homegrid simulate``. The hub's CPU (utime + stime from
``/proc/<pid>/stat``, in % of one core) and resident memory (VmRSS each second, and VmHWM at the end)
are measured over windows of ``--seconds`` (default 30):

1. idle (no client);
2. ``--clients`` (default 200) concurrent HTTP/1.1 clients (aiohttp, one keep-alive connection each,
   in this process) each looping over the dashboard's reads: ``/api/v1/live``, a day of minutes and a
   week of hours from ``/api/v1/energy``, a week's ``/api/v1/report``, ``/api/v1/outages``,
   ``/api/v1/backup``, ``/static/app.js``; and some of the hostile ones the issue found costly
   (``export.csv`` from 0001-01-01 to 9999-12-31, dates at 9999-12-31, a 20-digit quarantine
   limit, a path outside the bundle). Reported: requests per second, latency p50/p95/p99 per kind,
   status codes (any 5xx or refused connection is a failure), the hub's CPU and memory;
3. ``--watchers`` (default 50) clients holding ``/api/v1/stream`` open (``bench_web.Watcher``);
4. idle again.

No peer program: the issue names none. ``--homegrid EXE`` runs another build's ``homegrid`` (for
example a checkout of the commit before a change, with its own venv) so that two builds can be put
side by side in one run: ``--homegrid`` may be given twice, and every figure is then shown for each.

    .venv/bin/python bench/bench_load.py                  # ~3 min
    .venv/bin/python bench/bench_load.py --quick          # 7 days, 10 s windows
    .venv/bin/python bench/bench_load.py --homegrid /tmp/old/.venv/bin/homegrid --homegrid .venv/bin/homegrid
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_web
import influx
from common import OUT, child_env, fmt, homegrid_cmd, log, machine, stop_process

TZ = ZoneInfo("America/New_York")
QUICK = {"days": 7, "seconds": 10.0}

#: the first HOSTILE_FROM kinds of the mix are the dashboard's reads, the rest the hostile ones
HOSTILE_FROM = 7
#: the fields the web app's day chart and its bars ask /api/v1/energy for (homegrid/web/src/chart.js, bars.js)
CHART_FIELDS = "solar_w,battery_discharge_w,grid_import_w,home_w,ev_w,battery_charge_w,grid_export_w,soc_mean"
BAR_FIELDS = "solar,battery_discharge,grid_import,home,ev,battery_charge,grid_export"


def requests_mix(today: str, week_ago: str) -> list[tuple[str, str, int]]:
    """(kind, path, weight): what 200 dashboards and a few hostile clients ask for."""
    return [
        ("live", "/api/v1/live", 6),
        ("day of minutes", f"/api/v1/energy?from={today}&to={today}&step=minute&fields={CHART_FIELDS}", 2),
        ("week of hours", f"/api/v1/energy?from={week_ago}&to={today}&step=hour&fields={BAR_FIELDS}", 2),
        ("report", f"/api/v1/report?from={week_ago}&to={today}", 2),
        ("outages", "/api/v1/outages", 1),
        ("backup", "/api/v1/backup", 1),
        ("app.js", "/static/app.js", 1),
        ("export 0001..9999", "/api/v1/export.csv?from=0001-01-01&to=9999-12-31", 1),
        ("report at 9999-12-31", "/api/v1/report?from=9999-12-31&to=9999-12-31", 1),
        ("quarantine limit 1e20", "/api/v1/quarantine?limit=99999999999999999999", 1),
        ("file outside the bundle", "/static//etc/hostname.json", 1),
    ]


async def _client(session: Any, base: str, plan: list[tuple[str, str]], stop_at: float,
                  seen: dict[str, list[float]], codes: dict[str, int], offset: int) -> None:
    i = offset
    while time.monotonic() < stop_at:
        kind, path = plan[i % len(plan)]
        i += 1
        t0 = time.perf_counter()
        try:
            async with session.get(base + path) as r:
                await r.read()
                code = str(r.status)
        except Exception as exc:  # a refused or reset connection is a failure to report, not to hide
            code = type(exc).__name__
        seen.setdefault(kind, []).append((time.perf_counter() - t0) * 1000)
        codes[code] = codes.get(code, 0) + 1


async def _load(port: int, clients: int, seconds: float, plan: list[tuple[str, str]]) -> dict[str, Any]:
    import aiohttp

    seen: dict[str, list[float]] = {}
    codes: dict[str, int] = {}
    conn = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as session:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(session, f"http://127.0.0.1:{port}", plan, stop_at, seen, codes, k)
                               for k in range(clients)))
    return {"latency_ms": {k: _stats(np.array(v)) for k, v in sorted(seen.items())},
            "requests": int(sum(len(v) for v in seen.values())), "codes": codes}


def _stats(a: np.ndarray) -> dict[str, float]:
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def load_window(hub: bench_web.Hub, clients: int, seconds: float, plan: list[tuple[str, str]]) -> dict[str, Any]:
    import threading

    out: dict[str, Any] = {}
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.update(asyncio.run(_load(hub.port, clients, seconds, plan))))
    t.start()
    time.sleep(min(2.0, seconds / 4))  # connections set up before the window opens
    out.update(bench_web.cpu_window(hub, seconds - min(2.0, seconds / 4)))
    t.join()
    out.update(box)
    out["clients"] = clients
    out["requests_per_s"] = out["requests"] / seconds
    return out


def start(exe: str | None, data_dir: Path, tmp: Path) -> bench_web.Hub:
    """``homegrid serve`` of this environment, or of ``exe``, on a free port."""
    port = influx.free_port()
    args = ["serve", "--create", "--data-dir", str(data_dir), "--port", str(port)]
    cmd = [exe, *args] if exe else homegrid_cmd(*args)
    log_path = tmp / f"serve-{port}.log"
    proc = subprocess.Popen(cmd, env=child_env(tmp), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    hub = bench_web.Hub(proc, port, log_path)
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"homegrid serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            if ((hub.get("/api/v1/live", timeout=2).get("health") or {}).get("device") or {}).get("polls", 0) >= 1:
                break
        except OSError:
            pass
        if time.monotonic() - t0 > 300:
            raise RuntimeError(f"homegrid serve did not answer:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)
    hub.ready_s = time.monotonic() - t0
    time.sleep(3.0)
    return hub


def run_one(exe: str | None, store: Path, tmp: Path, clients: int, watchers: int, seconds: float,
            mix: str = "all") -> dict[str, Any]:
    data = tmp / f"data-{abs(hash(exe))}"
    shutil.copytree(store, data)
    hub = start(exe, data, tmp)
    res: dict[str, Any] = {"homegrid": exe or homegrid_cmd()[0], "ready_s": hub.ready_s}
    try:
        site = hub.get("/api/v1/site")
        today = site["today"]
        from datetime import date, timedelta

        week_ago = (date.fromisoformat(today) - timedelta(days=6)).isoformat()
        kinds = requests_mix(today, week_ago)
        kinds = {"all": kinds, "dashboard": kinds[:HOSTILE_FROM], "hostile": kinds[HOSTILE_FROM:]}[mix]
        plan = [(k, p) for k, p, w in kinds for _ in range(w)]
        res["idle"] = bench_web.cpu_window(hub, seconds)
        log(f"load: idle: hub CPU {res['idle']['cpu_percent']:.2f} %")
        res["api"] = load_window(hub, clients, seconds, plan)
        a = res["api"]
        log(f"load: {clients} API clients: {a['requests_per_s']:.0f} req/s, hub CPU {a['cpu_percent']:.1f} %, "
            f"RSS max {a['rss_max_mb']:.0f} MB, codes {a['codes']}")
        res["after_api"] = bench_web.cpu_window(hub, min(seconds, 10.0))
        res["watch"] = bench_web.watch_window(hub, watchers, seconds)
        w = res["watch"]
        log(f"load: {watchers} watchers: hub CPU {w['cpu_percent']:.2f} %, {w['connected']} connected")
        res["idle_end"] = bench_web.cpu_window(hub, seconds)
        res["hwm_mb"] = influx.rss_kib(hub.proc.pid)[1] * 1024 / 1e6
        alive = hub.proc.poll() is None
        res["alive_after"] = alive
    finally:
        stop_process(hub.proc, __import__("signal").SIGINT, 60)
    logged = hub.log_path.read_text().splitlines()
    res["log_errors"] = [x for x in logged if " ERROR " in x or "Traceback" in x][:10]
    return res


def render(r: dict[str, Any], argv: list[str]) -> str:
    lines = ["### Issue 10: the hub under load (`bench/bench_load.py`)", "",
             f"`.venv/bin/python bench/bench_load.py {' '.join(argv)}`; {r['days']} days stored, "
             f"{fmt(r['seconds'])} s windows, {r['clients']} API clients ({r['mix']} requests), "
             f"{r['watchers']} stream watchers; "
             f"machine {r['machine']}; load average {r['loadavg']['start'][0]:.2f} at start.", ""]
    heads = [Path(x["homegrid"]).parents[2].name or x["homegrid"] for x in r["runs"]]  # the checkout of its venv
    lines += ["| figure | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]

    def row(label: str, f: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(f(x) for x in r["runs"]) + " |")

    row("hub CPU idle [% of one core]", lambda x: f"{x['idle']['cpu_percent']:.2f}")
    row(f"{r['clients']} API clients: requests/s", lambda x: f"{x['api']['requests_per_s']:.0f}")
    row(f"{r['clients']} API clients: hub CPU [% of one core]", lambda x: f"{x['api']['cpu_percent']:.1f}")
    row(f"{r['clients']} API clients: hub RSS max [MB]", lambda x: f"{x['api']['rss_max_mb']:.0f}")
    row(f"{r['clients']} API clients: status codes", lambda x: ", ".join(f"{k}: {v}" for k, v in
                                                                        sorted(x['api']['codes'].items())))
    for kind in sorted({k for x in r["runs"] for k in x["api"]["latency_ms"]}):
        row(f"latency p50 / p95 [ms]: {kind}",
            lambda x, kind=kind: (lambda s: f"{s['p50']:.0f} / {s['p95']:.0f}" if s else "-")(
                x["api"]["latency_ms"].get(kind)))
    row(f"{r['watchers']} watchers: hub CPU [% of one core]", lambda x: f"{x['watch']['cpu_percent']:.2f}")
    row(f"{r['watchers']} watchers: over idle [% of one core]",
        lambda x: f"{x['watch']['cpu_percent'] - (x['idle']['cpu_percent'] + x['idle_end']['cpu_percent']) / 2:.2f}")
    row(f"{r['watchers']} watchers: events each (median)",
        lambda x: f"{(x['watch'].get('events_per_client') or {}).get('median', 0):.0f}")
    row("hub peak RSS, VmHWM [MB]", lambda x: f"{x['hwm_mb']:.0f}")
    row("hub alive after, errors in its log", lambda x: f"{x['alive_after']}, {len(x['log_errors'])}")
    return "\n".join(lines)


def run(days: int = 30, seconds: float = 30.0, clients: int = 200, watchers: int = 50, mix: str = "all",
        homegrids: list[str] | None = None, tmp_root: str | None = None) -> dict[str, Any]:
    """One store of ``days`` (``homegrid simulate``), then each build's hub under the load windows in turn."""
    tmp = Path(tempfile.mkdtemp(prefix="hg-load-", dir=tmp_root))
    res: dict[str, Any] = {"days": days, "seconds": seconds, "mix": mix, "clients": clients, "watchers": watchers,
                           "loadavg": {"start": os.getloadavg()}, "machine": machine(), "runs": []}
    try:
        res["store"] = bench_web.build_store(tmp / "store", days, "simulate", tmp, TZ)
        for exe in homegrids or [None]:
            res["runs"].append(run_one(exe, tmp / "store", tmp, clients, watchers, seconds, mix))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["loadavg"]["end"] = os.getloadavg()
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="7 days stored, 10 s windows")
    p.add_argument("--days", type=int, help="days of stored history (default 30)")
    p.add_argument("--seconds", type=float, help="each window (default 30)")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--watchers", type=int, default=50)
    p.add_argument("--mix", choices=("all", "dashboard", "hostile"), default="all",
                   help="the API clients' requests: the dashboard's reads, the hostile ones, or both (default)")
    p.add_argument("--homegrid", action="append", help="a homegrid executable to run (repeat for side by side)")
    p.add_argument("--out", type=Path, default=OUT / "load.md")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    sizes: dict[str, Any] = {"days": 30, "seconds": 30.0, **(QUICK if args.quick else {})}
    for k in ("days", "seconds"):
        if getattr(args, k) is not None:
            sizes[k] = getattr(args, k)
    res = run(sizes["days"], sizes["seconds"], args.clients, args.watchers, args.mix, args.homegrid)
    text = render(res, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2, default=str))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
