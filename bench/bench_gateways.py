"""Issue 3: device polling. Poll-to-store latency on loopback, and 200 gateways polled by one hub process.

Both parts poll simulated Powerwall gateways (``python -m
homegrid.devices.powerwall.simulator``, local HTTPS API, self-signed certificate)
running in their own process, through the real pypowerwall client as ``homegrid
serve`` builds it (``homegrid.hub.devices.build_powerwall``, password
``simulated``, cookie file in the site's data dir). The hub side runs in a fresh
child process (this script with ``--worker``), so its CPU and memory are the
hub's alone.

1. **latency**: one ``Hub(config, data_dir, devices=[(gateway, interval)])`` polls
   one gateway at ``--latency-interval`` (default 2 s) until ``--polls`` readings
   (default 300) are committed; the figures are the hub's own
   ``status()["poll_to_store_ms"]``: poll start to committed in SQLite
   (``synchronous=FULL``, the live hub's setting, checked with ``PRAGMA``).
   Budget: p95 < 100 ms. Poll start to reply parsed is reported beside it, and the
   first poll (TLS connect and login) on its own.

2. **fleet**: ``--gateways`` (default 200) simulated gateways in one simulator
   process; one Python process runs as many sites on one asyncio loop, each its own
   ``Hub(config, data_dir_i, devices=[(gateway_i, 5.0)])`` with its own SQLite file
   (a fleet is many homes; sites never share a store), for ``--seconds`` (default
   180) from the first site's start. Sites start spread evenly over one interval
   (``--start spread``, as homes that came online at different times) or all in the
   same instant (``--start together``, the worst case: every poll of a cycle in one
   burst). Measured: every gateway's intervals between poll starts, polls achieved
   against expected, errors, poll-to-store across all sites (whole run, and the
   steady state after one interval of staggered starts plus ``--warmup`` seconds),
   the hub process's CPU (``getrusage``, all threads, over the steady state) and
   peak RSS (VmHWM), the event loop's lag, the simulator's CPU, and how long
   building the sites took.

   "Without falling behind" means, for every gateway over the whole run:
   (a) no missed cycle: polls achieved >= 1 + floor((stop - first poll - tol) / 5 s);
   (b) every interval between poll starts within 5 s +- tol;
   (c) no growing lag: over the steady state, the lag of each poll start behind the schedule
       first poll + k x 5 s changes by at most tol (the drift per cycle is reported too);
   (d) every reading committed before the gateway's next poll is due
       (poll-to-store max < 5 s: no backlog);
   (e) no device error and no store error;
   with tol = ``--tolerance`` (default 0.25 s, 5 % of the interval).

The issue names no peer program for these budgets: the figures are absolute,
against the budget.

    .venv/bin/python bench/bench_gateways.py                   # both parts, full size (~14 min)
    .venv/bin/python bench/bench_gateways.py --quick           # 60 polls, 60 s fleet (~4 min)
    .venv/bin/python bench/bench_gateways.py --only fleet --start together
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from budgets import limit
from common import MIB, PYTHON, REPO, child_env, log, machine, stop_process

BUDGET_P95_MS = limit("gateways.latency_p95_ms")
PASSWORD = "simulated"  # the simulator's default customer password
FLEET_INTERVAL_S = 5.0
PARTS = ("latency", "fleet")


# -- the simulator process ----------------------------------------------------------------------------


class SimulatorProcess:
    """``python -m homegrid.devices.powerwall.simulator --count N`` in its own process."""

    def __init__(self, count: int, tmp: Path, timeout_s: float = 120.0) -> None:
        self.count = count
        self.tmp = tmp
        self.timeout_s = timeout_s
        self.addresses: list[str] = []

    def __enter__(self) -> SimulatorProcess:
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "homegrid.devices.powerwall.simulator", "--count", str(self.count), "--base-port", "0"],
            stdout=subprocess.PIPE, stderr=open(self.tmp / "simulator.log", "wb"), text=True, cwd=REPO,
            env=child_env(self.tmp),
        )
        done = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.strip():
                    self.addresses.append(line.strip())
                if len(self.addresses) >= self.count:
                    break
            done.set()

        threading.Thread(target=read, daemon=True).start()
        if not done.wait(self.timeout_s) or len(self.addresses) < self.count:
            self.__exit__(None, None, None)
            raise RuntimeError(f"the simulator started {len(self.addresses)} of {self.count} gateways:\n"
                               f"{(self.tmp / 'simulator.log').read_text()[-3000:]}")
        self.ready_s = time.monotonic() - t0
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, signal.SIGTERM)  # it stops its gateways and exits


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process [s] from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _vm(field: str) -> float:
    """A /proc/self/status memory field (VmRSS, VmHWM) [bytes]."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024.0
    return float("nan")


# -- the hub side (runs in the worker process) ---------------------------------------------------------


def _timed_device(inner):
    """The gateway as the hub sees it, noting when each poll starts and ends (monotonic [s])."""
    from homegrid.devices import Device

    class Timed(Device):
        name = inner.name

        def __init__(self) -> None:
            self.inner = inner
            self.starts: list[float] = []
            self.ends: list[float] = []
            self.ok: list[bool] = []

        def __getattr__(self, attr: str):  # problems, status, ...: the gateway's own
            return getattr(self.inner, attr)

        async def poll(self):
            self.starts.append(time.monotonic())
            try:
                reading = await self.inner.poll()
            except BaseException:
                self.ok.append(False)
                raise
            finally:
                self.ends.append(time.monotonic())
            self.ok.append(True)
            return reading

        async def close(self) -> None:
            await self.inner.close()

    return Timed()


def _site(address: str, data_dir: Path, interval_s: float):
    """One home: a gateway built as ``homegrid serve`` builds it, and its own hub and store."""
    from homegrid.config import Config, PowerwallConfig
    from homegrid.hub.devices import build_powerwall
    from homegrid.hub.service import Hub

    pw = PowerwallConfig(host=address, poll_interval_s=interval_s)
    config = Config(powerwall=pw)
    t0 = time.perf_counter()
    device = _timed_device(build_powerwall(pw, PASSWORD, config.site.timezone, data_dir))
    t1 = time.perf_counter()
    hub = Hub(config, data_dir, devices=[(device, interval_s)])
    t2 = time.perf_counter()
    return hub, device, (t1 - t0, t2 - t1)


def _pct(a, ms: bool = False) -> dict:
    a = np.asarray(a, dtype=np.float64)
    if not len(a):
        return {"n": 0}
    k = 1000.0 if ms else 1.0
    return {"n": len(a), "p50": float(np.percentile(a, 50)) * k, "p95": float(np.percentile(a, 95)) * k,
            "max": float(a.max()) * k, "min": float(a.min()) * k, "mean": float(a.mean()) * k}


def _samples(hub, device) -> list[tuple[float, float, float]]:
    """(poll start, poll end [monotonic s], poll-to-store [ms]) of each committed reading.

    The latencies are the hub's own samples behind ``status()["poll_to_store_ms"]``,
    committed in poll order; each belongs to one successful poll.
    """
    lat = list(hub._latency_ms)
    polls = [(s, e) for s, e, ok in zip(device.starts, device.ends, device.ok, strict=False) if ok]
    if len(polls) < len(lat):
        return []
    polls = polls[len(polls) - len(lat):]  # the hub keeps the newest LATENCY_SAMPLES
    return [(s, e, x) for (s, e), x in zip(polls, lat, strict=True)]


class LoopLag:
    """How late the event loop wakes a 100 ms sleeper [s]: a busy or blocked loop shows here."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.1)
            self.lags.append(time.monotonic() - t - 0.1)


async def _latency_worker(spec: dict) -> dict:
    root = Path(spec["root"])
    interval, polls = spec["interval_s"], spec["polls"]
    hub, device, build = _site(spec["addresses"][0], root / "site", interval)
    sync = hub.store._db.execute("PRAGMA synchronous").fetchone()[0]
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    task = asyncio.create_task(hub.run_pollers())
    deadline = time.monotonic() + polls * interval * 1.5 + 60
    next_log = time.monotonic() + 30
    while len(hub._latency_ms) < polls and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if time.monotonic() >= next_log:
            log(f"gateways/latency: {len(hub._latency_ms)} of {polls} readings committed")
            next_log += 30
    hub.stop()
    await task
    lag_task.cancel()
    await device.close()
    status = hub.status()
    samples = _samples(hub, device)
    hub.store.close()
    st = np.array([s for s, _, _ in samples])
    return {
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync)),
        "build_device_s": build[0], "build_hub_s": build[1],
        "poll_to_store_ms": status["poll_to_store_ms"],
        "poll_to_store_excl_first_ms": _pct([x for _, _, x in samples[1:]]),
        "first_poll_to_store_ms": samples[0][2] if samples else None,
        "poll_ms": _pct([e - s for s, e, _ in samples[1:]], ms=True),  # start to reply parsed
        "intervals_s": _pct(np.diff(st)) if len(st) > 1 else {"n": 0},
        "device": status["device"] | {"gaps": len(status["device"]["gaps"])},
        "store_errors": status["store_errors"],
        "loop_lag_ms": _pct(lag.lags, ms=True),
        "samples": len(samples),
    }


async def _fleet_worker(spec: dict) -> dict:
    root = Path(spec["root"])
    addresses, interval, seconds = spec["addresses"], spec["interval_s"], spec["seconds"]
    tol, together = spec["tolerance_s"], spec["start"] == "together"
    n = len(addresses)
    if spec.get("executor_workers"):
        from concurrent.futures import ThreadPoolExecutor

        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(spec["executor_workers"]))
    log(f"gateways/fleet: building {n} sites")
    rss0 = _vm("VmRSS")
    t0 = time.perf_counter()
    sites = [_site(a, root / f"site{i:03d}", interval) for i, a in enumerate(addresses)]
    build_s = time.perf_counter() - t0
    rss_built = _vm("VmRSS")
    log(f"gateways/fleet: {n} sites built in {build_s:.2f} s; starting them "
        f"{'together' if together else f'spread over {interval:g} s'}")
    lag = LoopLag()
    lag_task = asyncio.create_task(lag.run())
    first = time.monotonic()
    tasks = []
    for i, (hub, _, _) in enumerate(sites):
        if not together:
            await asyncio.sleep(max(0.0, first + i * interval / n - time.monotonic()))
        tasks.append(asyncio.create_task(hub.run_pollers()))
    steady_from = first + (0.0 if together else interval) + spec["warmup_s"]
    await asyncio.sleep(max(0.0, steady_from - time.monotonic()))
    cpu0, w0, sim0 = _self_cpu(), time.monotonic(), _cpu_seconds(spec["simulator_pid"])
    lags_from = len(lag.lags)
    rss_timeline = [{"s": round(time.monotonic() - first, 1), "rss_mib": _vm("VmRSS") / MIB}]
    stop_at = first + seconds
    while time.monotonic() < stop_at:
        await asyncio.sleep(min(30.0, max(0.0, stop_at - time.monotonic())))
        polls = sum(len(d.starts) for _, d, _ in sites)
        rss_timeline.append({"s": round(time.monotonic() - first, 1), "rss_mib": _vm("VmRSS") / MIB})
        log(f"gateways/fleet: {time.monotonic() - first:.0f} s, {polls} polls, "
            f"{sum(h.pollers[0].health.errors for h, _, _ in sites)} errors")
    cpu1, w1, sim1 = _self_cpu(), time.monotonic(), _cpu_seconds(spec["simulator_pid"])
    rss_end, hwm = _vm("VmRSS"), _vm("VmHWM")
    threads = threading.active_count()
    stopped = time.monotonic()
    for hub, _, _ in sites:
        hub.stop()
    await asyncio.gather(*tasks)
    lag_task.cancel()
    for _, device, _ in sites:
        await device.close()

    per_gateway = []
    all_intervals: list[np.ndarray] = []
    pooled: list[tuple[float, float, float]] = []
    for i, (hub, device, _) in enumerate(sites):
        status = hub.status()
        starts = np.array(device.starts)
        iv = np.diff(starts)
        all_intervals.append(iv)
        k = np.arange(len(starts))
        lagk = starts - starts[0] - k * interval  # behind the schedule of the first poll [s]
        steady = starts >= steady_from
        ks, ls = k[steady], lagk[steady]
        growth = float(ls[-1] - ls[0]) if len(ls) > 1 else 0.0
        drift = float(np.polyfit(ks, ls, 1)[0]) if len(ls) > 2 else 0.0  # [s per cycle]
        expected = 1 + math.floor((stopped - starts[0] - tol) / interval) if len(starts) else 0
        samples = _samples(hub, device)
        pooled += samples
        lat = [x for _, _, x in samples]
        per_gateway.append({
            "site": i, "address": addresses[i], "polls": len(starts), "expected": expected,
            "errors": status["device"]["errors"], "store_errors": status["store_errors"],
            "quarantined": status["quarantined"],
            "interval_mean_s": float(iv.mean()) if len(iv) else None,
            "interval_p95_s": float(np.percentile(iv, 95)) if len(iv) else None,
            "interval_min_s": float(iv.min()) if len(iv) else None,
            "interval_max_s": float(iv.max()) if len(iv) else None,
            "final_lag_s": float(lagk[-1]), "max_abs_lag_s": float(np.abs(lagk).max()),
            "lag_growth_steady_s": growth, "drift_ms_per_cycle": drift * 1000.0,
            "steady_intervals": np.diff(starts[steady]).tolist(),
            "poll_to_store_ms": status["poll_to_store_ms"],
            "latency_samples": len(lat), "latency_samples_match": len(samples) == len(hub._latency_ms),
        })
        hub.store.close()
    iv = np.concatenate(all_intervals) if all_intervals else np.array([])
    iv_steady = np.concatenate([np.array(x.pop("steady_intervals")) for x in per_gateway])
    pooled.sort()
    lat_all = [x for _, _, x in pooled]
    lat_steady = [x for s, _, x in pooled if s >= steady_from]
    poll_steady = [e - s for s, e, _ in pooled if s >= steady_from]
    minutes = []
    for m in range(math.ceil(seconds / 60)):
        sel = [x for s, _, x in pooled if first + 60 * m <= s < first + 60 * (m + 1)]
        if sel:
            minutes.append({"minute": m, "readings": len(sel), "p50_ms": float(np.percentile(sel, 50)),
                            "p95_ms": float(np.percentile(sel, 95)), "max_ms": float(max(sel))})

    g = per_gateway
    checks = {
        "no_missed_cycle": all(x["polls"] >= x["expected"] for x in g),
        "intervals_within_tolerance": bool(len(iv)) and bool(np.all(np.abs(iv - interval) <= tol)),
        "no_growing_lag": all(abs(x["lag_growth_steady_s"]) <= tol for x in g),
        "committed_before_next_poll": bool(lat_all) and max(lat_all) < interval * 1000.0,
        "no_errors": all(x["errors"] == 0 and x["store_errors"] == 0 for x in g),
    }
    steady_wall = w1 - w0
    return {
        "gateways": n, "interval_s": interval, "seconds": seconds, "start": spec["start"],
        "tolerance_s": tol, "warmup_s": spec["warmup_s"],
        "executor_workers": spec.get("executor_workers") or min(32, (os.cpu_count() or 1) + 4),
        "executor_default": not spec.get("executor_workers"),
        "build_s": build_s,
        "build_device_ms": _pct([b[0] for _, _, b in sites], ms=True),
        "build_hub_ms": _pct([b[1] for _, _, b in sites], ms=True),
        "polls": int(sum(x["polls"] for x in g)), "expected": int(sum(x["expected"] for x in g)),
        "missed": int(sum(max(0, x["expected"] - x["polls"]) for x in g)),
        "gateways_short": [x["site"] for x in g if x["polls"] < x["expected"]],
        "errors": int(sum(x["errors"] for x in g)), "store_errors": int(sum(x["store_errors"] for x in g)),
        "quarantined": int(sum(x["quarantined"] for x in g)),
        "intervals_s": _pct(iv),
        "interval_mean_worst_s": max((x["interval_mean_s"] for x in g if x["interval_mean_s"]), default=None),
        "interval_p95_worst_s": max((x["interval_p95_s"] for x in g if x["interval_p95_s"]), default=None),
        "interval_max_s": float(iv.max()) if len(iv) else None,
        "interval_min_s": float(iv.min()) if len(iv) else None,
        "intervals_steady_s": _pct(iv_steady),
        "final_lag_max_s": max(x["final_lag_s"] for x in g),
        "lag_max_abs_s": max(x["max_abs_lag_s"] for x in g),
        "lag_growth_steady_max_s": max(abs(x["lag_growth_steady_s"]) for x in g),
        "drift_ms_per_cycle": _pct([x["drift_ms_per_cycle"] for x in g]),
        "poll_to_store_ms": _pct(lat_all),
        "poll_to_store_steady_ms": _pct(lat_steady),
        "poll_ms_steady": _pct(poll_steady, ms=True),  # start to reply parsed, executor queueing included
        "site_p95_worst_ms": max((x["poll_to_store_ms"].get("p95", 0.0) for x in g), default=None),
        "latency_by_minute": minutes,
        "steady_s": steady_wall,
        "cpu_percent": 100.0 * (cpu1 - cpu0) / steady_wall,
        "cpu_s_per_poll_ms": 1000.0 * (cpu1 - cpu0) / max(1, sum(
            sum(1 for s in d.starts if w0 <= s < w1) for _, d, _ in sites)),
        "simulator_cpu_percent": 100.0 * (sim1 - sim0) / steady_wall,
        "rss_start_mib": rss0 / MIB, "rss_built_mib": rss_built / MIB, "rss_end_mib": rss_end / MIB,
        "peak_rss_mib": hwm / MIB, "peak_rss_mb": hwm / 1e6, "rss_timeline": rss_timeline,
        "threads": threads,
        "loop_lag_ms": _pct(lag.lags, ms=True), "loop_lag_steady_ms": _pct(lag.lags[lags_from:], ms=True),
        "checks": checks, "pass": all(checks.values()),
        "per_gateway": per_gateway,
    }


def worker(spec_path: str) -> int:
    """The hub process: run one part as its spec says, write the figures as JSON."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    spec = json.loads(Path(spec_path).read_text())
    fn = _latency_worker if spec["part"] == "latency" else _fleet_worker
    out = asyncio.run(fn(spec))
    import homegrid

    out["homegrid_package"] = str(Path(homegrid.__file__).resolve().parent)  # which tree was measured
    Path(spec["out"]).write_text(json.dumps(out, indent=1))
    return 0


# -- the parent ---------------------------------------------------------------------------------------


def _run_part(part: str, tmp: Path, count: int, spec: dict, timeout_s: float) -> dict:
    with SimulatorProcess(count, tmp) as sim:
        log(f"gateways/{part}: {count} simulated gateway(s) up in {sim.ready_s:.1f} s (pid {sim.pid})")
        spec = {**spec, "part": part, "addresses": sim.addresses, "simulator_pid": sim.pid,
                "root": str(tmp / part), "out": str(tmp / f"{part}.json")}
        spec_path = tmp / f"{part}-spec.json"
        spec_path.write_text(json.dumps(spec))
        t0 = time.monotonic()
        proc = subprocess.run([PYTHON, str(Path(__file__).resolve()), "--worker", str(spec_path)], cwd=REPO,
                              env=child_env(tmp), timeout=timeout_s)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"the {part} worker exited with {proc.returncode}")
        out = json.loads(Path(spec["out"]).read_text())
    out["worker_wall_s"] = wall
    out["simulator_ready_s"] = sim.ready_s
    return out


def run(polls: int = 300, latency_interval_s: float = 2.0, gateways: int = 200, seconds: float = 180.0,
        start: str = "spread", only: tuple[str, ...] = PARTS, tmp_root: str | None = None,
        tolerance_s: float = 0.25, warmup_s: float = 10.0, executor_workers: int = 0, log=log) -> dict:
    res: dict = {"budget_p95_ms": BUDGET_P95_MS}
    tmp = Path(tempfile.mkdtemp(prefix="hg-gateways-", dir=tmp_root))
    try:
        if "latency" in only:
            log(f"gateways/latency: one hub, one gateway, {polls} polls at {latency_interval_s:g} s")
            lat = _run_part("latency", tmp, 1, {"polls": polls, "interval_s": latency_interval_s},
                            timeout_s=polls * latency_interval_s * 2 + 300)
            lat.update(polls=polls, interval_s=latency_interval_s)
            p = lat["poll_to_store_ms"]
            if p.get("count", 0) < polls:
                raise RuntimeError(f"only {p.get('count', 0)} of {polls} readings were committed: {lat['device']}")
            lat["pass"] = p["p95"] < BUDGET_P95_MS
            res["latency"] = lat
            log(f"gateways/latency: poll-to-store p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, "
                f"max {p['max']:.1f} ms over {p['count']} readings (store synchronous={lat['synchronous']}); "
                f"{'PASS' if lat['pass'] else 'MISS'} (< {BUDGET_P95_MS:g} ms)")
        if "fleet" in only:
            log(f"gateways/fleet: {gateways} sites, one hub process, {FLEET_INTERVAL_S:g} s, {seconds:g} s")
            fl = _run_part("fleet", tmp, gateways, {
                "interval_s": FLEET_INTERVAL_S, "seconds": seconds, "start": start, "tolerance_s": tolerance_s,
                "warmup_s": warmup_s, "executor_workers": executor_workers,
            }, timeout_s=seconds + 600)
            res["fleet"] = fl
            iv, lt = fl["intervals_s"], fl["poll_to_store_steady_ms"]
            log(f"gateways/fleet: {fl['polls']} polls, {fl['missed']} missed, {fl['errors']} errors; "
                f"intervals mean {iv['mean']:.4f} s, p95 {iv['p95']:.4f} s, max {iv['max']:.4f} s; "
                f"lag growth {fl['lag_growth_steady_max_s'] * 1000:.0f} ms, drift p50 "
                f"{fl['drift_ms_per_cycle']['p50']:.2f} ms/cycle; poll-to-store steady p50 {lt['p50']:.1f} ms, "
                f"p95 {lt['p95']:.1f} ms, max {lt['max']:.1f} ms (whole run max "
                f"{fl['poll_to_store_ms']['max']:.0f} ms); CPU {fl['cpu_percent']:.1f} % of a core, "
                f"peak RSS {fl['peak_rss_mib']:.0f} MiB; {'PASS' if fl['pass'] else 'MISS'} {fl['checks']}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="60 polls and a 60 s fleet run")
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--polls", type=int, help="latency: readings to commit (default 300; --quick 60)")
    p.add_argument("--latency-interval", type=float, default=2.0,
                   help="latency: poll interval [s] (default 2; the live default is 5)")
    p.add_argument("--gateways", type=int, default=200, help="fleet: sites and gateways (default 200)")
    p.add_argument("--seconds", type=float, help="fleet: run length from the first start [s] (default 180; "
                   "--quick 60)")
    p.add_argument("--start", choices=("spread", "together"), default="spread",
                   help="fleet: sites start spread over one interval (default) or all at once")
    p.add_argument("--tolerance", type=float, default=0.25, help="fleet: tolerance on intervals and lag [s]")
    p.add_argument("--warmup", type=float, default=10.0,
                   help="fleet: seconds after the last start before the steady state [s] (default 10)")
    p.add_argument("--executor-workers", type=int, default=0,
                   help="fleet: a default executor of this many threads (default: asyncio's own)")
    p.add_argument("--tmp", help="folder for the stores (default the system temp folder)")
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    only = tuple(x.strip() for x in args.only.split(",") if x.strip())
    if bad := [x for x in only if x not in PARTS]:
        p.error(f"unknown part(s) {bad}; expected {','.join(PARTS)}")
    res = run(args.polls or (60 if args.quick else 300), args.latency_interval, args.gateways,
              args.seconds or (60.0 if args.quick else 180.0), args.start, only, args.tmp, args.tolerance,
              args.warmup, args.executor_workers)
    res["machine"] = machine()
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
