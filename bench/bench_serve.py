"""Budget 4: the hub running the virtual home in under 150 MB resident and 2 % of one core.

Starts ``homegrid serve --data-dir <tmp> --port <free port>`` (a fresh store, so it
first backfills 7 days of virtual history), waits until the API answers, then for
``--seconds`` (default 120) samples the process's resident set (VmRSS) and CPU
time (utime + stime) from /proc once a second. One dashboard is open meanwhile:
like ``index.html``, it fetches ``/api/v1/live`` and today's ``/api/v1/report``
every 5 s (``--no-dashboard`` for an idle hub).

The peer, in the same window: ``influxd`` 1.6 with Powerwall-Dashboard's
retention policies and continuous queries (cq_autogen, cq_kwh, cq_daily,
cq_monthly), 3 days of 1-minute raw history written and downsampled first, then
one reading written every 5 s (as its telegraf does) and the same dashboard
queries every 5 s (last values, today's kWh). Only influxd is measured: the
stack's telegraf, pypowerwall and grafana processes are not counted.

    .venv/bin/python bench/bench_serve.py
    .venv/bin/python bench/bench_serve.py --seconds 30
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import influx
import synth
from bench_queries import virtual_home_available
from budgets import limit
from common import child_env, homegrid_cmd, log, ratio

BUDGET_RSS_MB = limit("serve.rss_max_mb")  # the MB, read as 10^6 bytes (150 MB = 143 MiB); both are reported
BUDGET_CPU_PERCENT = limit("serve.cpu_percent")
TZ = ZoneInfo("America/New_York")
POLL_S = 5.0


def _get(port: int, path: str, timeout: float = 10.0) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _span(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/api/v1/live")
        health = json.loads(conn.getresponse().read()).get("health") or {}
    except (OSError, ValueError):
        return {}
    finally:
        conn.close()
    return {"first_reading": health.get("first_reading"), "last_reading": health.get("last_reading")}


class Sampler:
    """RSS and CPU time of one process, once a second."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_kib: list[int] = []
        self.cpu: list[tuple[float, float]] = []  # (wall, cpu seconds)

    def sample(self) -> None:
        try:
            rss, _ = influx.rss_kib(self.pid)
            cpu = influx.cpu_seconds(self.pid)
        except (OSError, ValueError, IndexError):
            return
        self.rss_kib.append(rss)
        self.cpu.append((time.monotonic(), cpu))

    def summary(self) -> dict:
        if len(self.cpu) < 2:
            return {"error": "too few samples"}
        (w0, c0), (w1, c1) = self.cpu[0], self.cpu[-1]
        rss = np.array(self.rss_kib) * 1024
        hwm = influx.rss_kib(self.pid)[1] * 1024
        return {
            "seconds": w1 - w0,
            "cpu_s": c1 - c0,
            "cpu_percent": 100.0 * (c1 - c0) / (w1 - w0),
            "rss_max_mb": float(rss.max()) / 1e6,
            "rss_max_mib": float(rss.max()) / (1 << 20),
            "rss_median_mb": float(np.median(rss)) / 1e6,
            "rss_end_mb": float(rss[-1]) / 1e6,
            "peak_rss_incl_startup_mb": hwm / 1e6,
            "samples": len(rss),
        }


def start_serve(args: list[str], port: int, tmp: Path, log_path: Path, timeout_s: float
                ) -> tuple[subprocess.Popen[bytes], float]:
    """``homegrid serve ARGS --port PORT`` (its output to ``log_path``), once its API answers; and how long that
    took [s]."""
    t0 = time.monotonic()
    hub = subprocess.Popen(homegrid_cmd("serve", *args, "--port", str(port)), env=child_env(tmp),
                           stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    while True:
        try:
            if _get(port, "/api/v1/live", timeout=2) == 200:
                return hub, time.monotonic() - t0
        except OSError:
            pass
        if hub.poll() is not None or time.monotonic() - t0 > timeout_s:
            raise RuntimeError(f"homegrid serve did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def stop_serve(hub: subprocess.Popen[bytes] | None) -> None:
    """Stop a hub :func:`start_serve` started as the owner would (Ctrl-C), killed after 30 s."""
    if hub is not None and hub.poll() is None:
        hub.send_signal(signal.SIGINT)
        try:
            hub.wait(30)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()


def run(seconds: float = 120, dashboard: bool = True, use_influx: bool = True, tmp_root: str | None = None,
        log=log) -> dict:
    res: dict = {"seconds": seconds, "dashboard": dashboard, "budget_rss_mb": BUDGET_RSS_MB,
                 "budget_cpu_percent": BUDGET_CPU_PERCENT}
    ok, why = virtual_home_available()
    if not ok:
        res["homegrid"] = {"skipped": why}
        log(f"serve: skipped: {why}")
        return res
    tmp = Path(tempfile.mkdtemp(prefix="hg-serve-", dir=tmp_root))
    hub = None
    try:
        port = influx.free_port()
        hub, res["homegrid_ready_s"] = start_serve(["--create", "--data-dir", str(tmp / "data")], port, tmp,
                                                   tmp / "serve.log", 600)
        res["homegrid_span"] = _span(port)  # evidence of the backfill: first and last stored reading
        log(f"serve: homegrid answering after {res['homegrid_ready_s']:.1f} s (backfill included), "
            f"readings {res['homegrid_span']}")

        peer = None
        if not use_influx:
            res["influx"] = {"skipped": "--no-influx"}
        elif not influx.available()[0]:
            res["influx"] = {"skipped": influx.available()[1]}
            log(res["influx"]["skipped"])
        else:
            peer = _InfluxPeer(tmp, seconds)
            peer.start()
        try:
            res["homegrid"] = _measure(hub.pid, port, seconds, dashboard, peer)
        finally:
            if peer is not None:
                res["influx"] = peer.stop()
        h = res["homegrid"]
        log(f"serve: homegrid RSS max {h['rss_max_mb']:.1f} MB, CPU {h['cpu_percent']:.2f} % "
            f"over {h['seconds']:.0f} s, {h.get('dashboard_requests', 0)} dashboard requests")
        if "rss_max_mb" in res.get("influx", {}):
            i = res["influx"]
            log(f"serve: influxd RSS max {i['rss_max_mb']:.1f} MB, CPU {i['cpu_percent']:.2f} %")
    finally:
        stop_serve(hub)
        shutil.rmtree(tmp, ignore_errors=True)
    i = res.get("influx", {})
    res["ratios"] = {
        "rss": ratio(res["homegrid"].get("rss_max_mb"), i.get("rss_max_mb")),
        "cpu": ratio(res["homegrid"].get("cpu_percent"), i.get("cpu_percent")),
    }
    return res


def _measure(pid: int, port: int, seconds: float, dashboard: bool, peer: _InfluxPeer | None) -> dict:
    hub = Sampler(pid)
    other = Sampler(peer.ix.pid) if peer is not None else None
    if peer is not None:
        peer.sampler = other
    requests = errors = 0
    t_end = time.monotonic() + seconds
    next_dash = time.monotonic()
    while True:
        now = time.monotonic()
        hub.sample()
        if other is not None:
            other.sample()
        if now >= t_end:
            break
        if dashboard and now >= next_dash:
            today = datetime.now(TZ).date().isoformat()
            for path in ("/api/v1/live", f"/api/v1/report?from={today}&to={today}"):
                try:
                    requests += 1
                    if _get(port, path) != 200:
                        errors += 1
                except OSError:
                    errors += 1
            next_dash += POLL_S
        time.sleep(max(0.0, min(1.0, t_end - time.monotonic())))
    out = hub.summary()
    out["dashboard_requests"] = requests
    out["dashboard_errors"] = errors
    return out


class _InfluxPeer:
    """influxd with Powerwall-Dashboard's CQs, a reading every 5 s and a dashboard every 5 s."""

    def __init__(self, tmp: Path, seconds: float) -> None:
        self.tmp = tmp
        self.seconds = seconds
        self.sampler: Sampler | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.ix = influx.Influx(cq=True, cold="10m", full_cold="4h", root=str(self.tmp)).__enter__()  # defaults
        ix = self.ix
        ix.setup_powerwall(raw_duration="3d")
        for q in influx.PWD_CQS:
            ix.query(q)
        now = datetime.now(UTC).replace(microsecond=0)
        start = now - timedelta(days=3)
        self.plan = synth.Plan.make(start, 3 * 86_400 + int(self.seconds) + 3600, seed=5)
        rows = 3 * 1440
        lp = self.tmp / "backfill.lp"
        with open(lp, "wb") as f:
            for t, cols in synth.chunks(start, rows, 60, seed=5):
                f.write(synth._lines_bytes(synth.line_protocol(t, cols)))
        ix.write_file(lp)
        ix.downsample(int(start.timestamp()), int(now.timestamp()))
        self.thread = threading.Thread(target=self._live, daemon=True)
        self.thread.start()

    def _live(self) -> None:
        ix = self.ix
        fields = ", ".join(f"last({f})" for f in synth.INFLUX_FIELDS.values())
        energy = ", ".join(f"sum({f})" for f in ("home", "solar", "from_pw", "to_pw", "from_grid", "to_grid"))
        self.writes = self.queries = self.errors = 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            now = int(time.time())
            cols = self.plan.rows(np.array([now]), now)
            try:
                ix.write(synth._lines_bytes(synth.line_protocol(np.array([now]), cols)))
                self.writes += 1
                midnight = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
                ix.query(f"SELECT {fields} FROM raw.http")
                ix.query(f"SELECT {energy} FROM kwh.http WHERE time >= {int(midnight.timestamp())}s")
                self.queries += 2
            except (OSError, RuntimeError):
                self.errors += 1
            self._stop.wait(max(0.0, POLL_S - (time.monotonic() - t0)))

    def stop(self) -> dict:
        self._stop.set()
        self.thread.join(30)
        out = self.sampler.summary() if self.sampler is not None else {}
        out.update({"writes": self.writes, "dashboard_queries": self.queries, "errors": self.errors})
        self.ix.__exit__(None, None, None)
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=120.0, help="measuring window (default 120)")
    p.add_argument("--no-dashboard", action="store_true", help="no API requests during the window")
    p.add_argument("--no-influx", action="store_true", help="skip the InfluxDB side")
    p.add_argument("--tmp", help="folder for the stores (default the system temp folder)")
    args = p.parse_args(argv)
    print(json.dumps(run(args.seconds, not args.no_dashboard, not args.no_influx, args.tmp), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
