"""Shared helpers: the machine, child processes with wall time and peak RSS, percentiles, tables."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
PYTHON = sys.executable
#: Generated input files (CSV, line protocol) are cached here between runs; never in the repo.
DATA_CACHE = Path(os.environ.get("HOMEGRID_BENCH_CACHE", "/tmp/homegrid-bench"))

MIB = 1 << 20


def log(msg: str) -> None:
    """Progress, on standard error (standard output carries the JSON)."""
    print(msg, file=sys.stderr, flush=True)


def homegrid_cmd(*args: str) -> list[str]:
    """The ``homegrid`` CLI of this interpreter's environment."""
    exe = Path(PYTHON).with_name("homegrid")
    if exe.exists():
        return [str(exe), *args]
    return [PYTHON, "-m", "homegrid.cli", *args]


def child_env(tmp: Path) -> dict[str, str]:
    """An environment that ignores the user's homegrid config and data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOMEGRID_")}
    env["XDG_CONFIG_HOME"] = str(tmp / "xdg-config")  # no homegrid.toml there: all defaults
    env["XDG_DATA_HOME"] = str(tmp / "xdg-data")
    return env


@dataclass
class ChildRun:
    wall_s: float
    max_rss_kib: int
    user_s: float
    sys_s: float
    returncode: int
    stdout: str
    stderr: str


def run_child(cmd: list[str], env: dict[str, str] | None = None, timeout_s: float = 3600) -> ChildRun:
    """Run a command; wall time, and peak RSS and CPU of exactly that child (``wait4``)."""
    out_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"hg-bench-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"{out_path}.out", "w+b") as out, open(f"{out_path}.err", "w+b") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    for suffix in (".out", ".err"):
        Path(f"{out_path}{suffix}").unlink(missing_ok=True)
    return ChildRun(wall, usage.ru_maxrss, usage.ru_utime, usage.ru_stime, proc.returncode, stdout, stderr)


def stop_process(proc: subprocess.Popen, sig: int, timeout_s: float = 30) -> None:
    """Ask a child to stop with a signal; kill it if it has not within the timeout."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def percentiles(samples_s: list[float]) -> dict[str, float]:
    a = np.asarray(samples_s) * 1000.0
    return {
        "n": len(a),
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def file_size(*paths: Path) -> int:
    return sum(p.stat().st_size for p in paths if p.exists())


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kib = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines()
                       if x.startswith("MemTotal:"))
    except (OSError, StopIteration):
        mem_kib = 0
    try:
        influx_version = subprocess.run(["influxd", "version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        influx_version = ""
    sqlite_version = __import__("sqlite3").sqlite_version
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--short", "--", "homegrid"],
                               capture_output=True, text=True, timeout=10).stdout.split("\n")
        tree_dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                         capture_output=True, text=True, timeout=10).stdout.strip())
    except OSError:
        head, commit, dirty, tree_dirty = "", "", [], False
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kib / (1 << 20), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite_version,
        "numpy": np.__version__,
        "influxdb": influx_version.strip(),
        "git_head": head,
        "git_commit": commit,
        "git_dirty": tree_dirty,  # any tracked file changed (the whole work tree, not only homegrid/)
        "homegrid_uncommitted": [x for x in dirty if x.strip()],
    }


def fmt(v: object, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(v)


def verdict(value: float | None, budget: float) -> str:
    if value is None:
        return "n/a"
    if value <= budget:
        return "PASS"
    return f"MISS (x{value / budget:.2f})"


def command_figures(run: ChildRun, db: Path) -> dict[str, object]:
    """Wall time, peak RSS, CPU and store size of a finished homegrid command."""
    return {
        "wall_s": run.wall_s,
        "peak_rss_mib": run.max_rss_kib / 1024,
        "cpu_s": run.user_s + run.sys_s,
        "disk_bytes": file_size(db, Path(f"{db}-wal"), Path(f"{db}-shm")),
        "output": run.stdout.strip(),
    }
