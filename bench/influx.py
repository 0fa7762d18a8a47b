"""InfluxDB 1.x as the benchmarks' peer: start and stop ``influxd``, write line protocol, query.

The server runs on loopback with everything in a temporary folder (meta, data,
wal), reporting and self-monitoring off, and is stopped by the context manager.
The schema follows Powerwall-Dashboard (``influxdb/influxdb.sql``): raw readings
in ``raw.http`` (one field per quantity), continuous-query style downsampling
into ``autogen.http`` (1-minute means, with the signed battery and grid powers
split into ``from_pw``/``to_pw`` and ``from_grid``/``to_grid``), ``kwh.http``
(hourly integrals [kWh]) and ``daily.http`` (daily sums in the site's zone).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from common import stop_process

__all__ = ["PWD_CQS", "Influx", "available", "free_port", "influxd_path"]

DB = "powerwall"
TZ = "America/New_York"
BATCH_LINES = 5000

_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  index-version = "inmem"
  cache-snapshot-write-cold-duration = "{cold}"
  compact-full-write-cold-duration = "{full_cold}"

[retention]
  enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  max-body-size = 0
  max-concurrent-write-limit = 0

[continuous_queries]
  enabled = {cq}
  log-enabled = false
  run-interval = "1s"

[subscriber]
  enabled = false
"""

# Powerwall-Dashboard's downsampling, for our field names (their raw fields are
# load/solar/battery/site_instant_power and percentage).
_SPLIT = (
    "home AS home, solar AS solar, "
    "abs((1+battery/abs(battery))*battery/2) AS from_pw, abs((1-battery/abs(battery))*battery/2) AS to_pw, "
    "abs((1+grid/abs(grid))*grid/2) AS from_grid, abs((1-grid/abs(grid))*grid/2) AS to_grid, "
    "ev AS ev, soc AS percentage"
)
_MEANS = (
    "mean(home) AS home, mean(solar) AS solar, mean(from_pw) AS from_pw, mean(to_pw) AS to_pw, "
    "mean(from_grid) AS from_grid, mean(to_grid) AS to_grid, mean(ev) AS ev, last(percentage) AS percentage"
)
_ENERGY = ("home", "solar", "from_pw", "to_pw", "from_grid", "to_grid", "ev")
_KWH = ", ".join(f"integral({f})/1000/3600 AS {f}" for f in _ENERGY)
_SUMS = ", ".join(f"sum({f}) AS {f}" for f in _ENERGY)

DOWNSAMPLE = {
    "autogen": f"SELECT {_MEANS} INTO {DB}.autogen.http FROM (SELECT {_SPLIT} FROM {DB}.raw.http "
               "WHERE {where}) WHERE {where} GROUP BY time(1m) fill(linear)",
    "kwh": f"SELECT {_KWH} INTO {DB}.kwh.http FROM {DB}.autogen.http WHERE {{where}} GROUP BY time(1h) tz('{TZ}')",
    "daily": f"SELECT {_SUMS} INTO {DB}.daily.http FROM {DB}.kwh.http WHERE {{where}} GROUP BY time(1d) tz('{TZ}')",
}

#: The continuous queries as Powerwall-Dashboard defines them (for the live-hub comparison).
PWD_CQS = [
    f"CREATE CONTINUOUS QUERY cq_autogen ON {DB} BEGIN SELECT {_MEANS} INTO {DB}.autogen.:MEASUREMENT "
    f"FROM (SELECT {_SPLIT} FROM raw.http) GROUP BY time(1m), month, year fill(linear) END",
    f"CREATE CONTINUOUS QUERY cq_kwh ON {DB} RESAMPLE EVERY 1m BEGIN SELECT {_KWH} INTO {DB}.kwh.:MEASUREMENT "
    f"FROM autogen.http GROUP BY time(1h), month, year tz('{TZ}') END",
    f"CREATE CONTINUOUS QUERY cq_daily ON {DB} RESAMPLE EVERY 1h BEGIN SELECT {_SUMS} INTO {DB}.daily.:MEASUREMENT "
    f"FROM {DB}.kwh.http GROUP BY time(1d), month, year tz('{TZ}') END",
    f"CREATE CONTINUOUS QUERY cq_monthly ON {DB} RESAMPLE EVERY 1h BEGIN SELECT {_SUMS} INTO "
    f"{DB}.monthly.:MEASUREMENT FROM {DB}.daily.http GROUP BY time(365d), month, year END",
]


def influxd_path() -> str | None:
    return shutil.which("influxd") or next(
        (p for p in ("/usr/bin/influxd", "/usr/sbin/influxd") if os.path.exists(p)), None
    )


def available() -> tuple[bool, str]:
    """Whether an InfluxDB 1.x server can be run here, and why not."""
    path = influxd_path()
    if path is None:
        return False, "influxd is not installed (apt-get install -y influxdb): InfluxDB side skipped"
    return True, path


def skipped(use_influx: bool, log) -> dict | None:
    """Why the InfluxDB side of a bench does not run (logged), or None when it does."""
    if not use_influx:
        return {"skipped": "--no-influx"}
    ok, why = available()
    if not ok:
        log(why)
        return {"skipped": why}
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dir_size(path: str | os.PathLike) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class Influx:
    """A private ``influxd`` (1.x) on loopback; use as a context manager.

    Parameters
    ----------
    cq : bool
        Run continuous queries (only the live-hub comparison needs them).
    cold : str
        ``cache-snapshot-write-cold-duration``: how soon an idle shard's cache is
        written to TSM files (shorter than the 10 m default, so the on-disk size is
        measured after the data left the WAL).
    """

    def __init__(self, cq: bool = False, cold: str = "5s", full_cold: str = "20s", root: str | None = None) -> None:
        ok, why = available()
        if not ok:
            raise RuntimeError(why)
        self.exe = why
        self.cq = cq
        self.cold = cold
        self.full_cold = full_cold
        self._root_arg = root
        self.proc: subprocess.Popen | None = None
        self.port = 0

    # lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Influx:
        self.root = Path(tempfile.mkdtemp(prefix="hg-influx-", dir=self._root_arg))
        self.port = free_port()
        cfg = self.root / "influxdb.conf"
        cfg.write_text(_CONFIG.format(
            root=self.root, port=self.port, rpc_port=free_port(), cq="true" if self.cq else "false",
            cold=self.cold, full_cold=self.full_cold,
        ))
        self.log = open(self.root / "influxd.log", "wb")
        self.proc = subprocess.Popen(
            [self.exe, "run", "-config", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "INFLUXDB_DATA_QUERY_LOG_ENABLED": "false"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = self._request("GET", "/ping")
                if status == 204:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"influxd did not start; see {self.root / 'influxd.log'}")
            time.sleep(0.1)
        self._local = threading.local()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # HTTP ---------------------------------------------------------------------------------

    def _conn(self) -> http.client.HTTPConnection:
        local = getattr(self, "_local", None)
        conn = getattr(local, "conn", None) if local else None
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            if local is not None:
                local.conn = conn
        return conn

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = self._conn()
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            conn.close()
            if getattr(self, "_local", None) is not None:
                self._local.conn = None
            raise
        if getattr(self, "_local", None) is None:
            conn.close()
        return resp.status, data

    def query(self, q: str, db: str = DB, epoch: str = "s") -> list[dict]:
        """Run InfluxQL; returns the parsed ``results`` (raises on an error)."""
        path = "/query?" + urllib.parse.urlencode({"db": db, "q": q, "epoch": epoch})
        status, data = self._request("POST", path)
        out = json.loads(data)
        if status != 200 or "error" in out:
            raise RuntimeError(f"influx query failed ({status}): {out} for {q[:200]}")
        for r in out.get("results", []):
            if "error" in r:
                raise RuntimeError(f"influx query failed: {r['error']} for {q[:200]}")
        return out["results"]

    def setup_powerwall(self, raw_duration: str = "INF") -> None:
        """Powerwall-Dashboard's database and retention policies (raw kept ``raw_duration``)."""
        self.query(f"CREATE DATABASE {DB}")
        self.query(f"CREATE RETENTION POLICY raw ON {DB} DURATION {raw_duration} REPLICATION 1")
        for rp in ("kwh", "daily", "monthly"):
            self.query(f"CREATE RETENTION POLICY {rp} ON {DB} DURATION INF REPLICATION 1")

    def write(self, body: bytes, db: str = DB, rp: str = "raw", precision: str = "s") -> None:
        path = "/write?" + urllib.parse.urlencode({"db": db, "rp": rp, "precision": precision})
        status, data = self._request("POST", path, body)
        if status != 204:
            raise RuntimeError(f"influx write failed ({status}): {data[:300]!r}")

    def write_file(self, path: str | os.PathLike, db: str = DB, rp: str = "raw", precision: str = "s",
                   batch_lines: int = BATCH_LINES, workers: int = 2, limit_lines: int | None = None,
                   stop_after_s: float | None = None) -> int:
        """POST a line-protocol file in batches of ``batch_lines`` from ``workers`` connections; returns lines.

        With ``stop_after_s``, no batch is sent after that many seconds: the lines returned are then fewer than
        the file's (the caller says so)."""
        q: queue.Queue = queue.Queue(maxsize=workers * 4)
        errors: list[BaseException] = []

        def work() -> None:
            while True:
                body = q.get()
                if body is None:
                    return
                if not errors:
                    try:
                        self.write(body, db, rp, precision)
                    except BaseException as exc:
                        errors.append(exc)

        threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        lines = 0
        deadline = None if stop_after_s is None else time.monotonic() + stop_after_s
        try:
            for body, n in batches(path, batch_lines, limit_lines):
                if errors or (deadline is not None and time.monotonic() > deadline):
                    break
                q.put(body)
                lines += n
        finally:
            for _ in threads:
                q.put(None)
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
        return lines

    def downsample(self, start_s: int, end_s: int, chunk_days: int = 31) -> None:
        """Fill autogen, kwh and daily from raw for ``[start_s, end_s)``, a month at a time (as CQs would)."""
        step = chunk_days * 86_400
        for stage in ("autogen", "kwh", "daily"):
            a = start_s
            while a < end_s:
                b = min(a + step, end_s)
                # kwh and daily buckets are local hours and days: widen by a day, rewrites are idempotent
                lo, hi = (a, b) if stage == "autogen" else (a - 86_400, b + 86_400)
                where = f"time >= {lo}s AND time < {hi}s"
                self.query(DOWNSAMPLE[stage].format(where=where))
                a = b

    def size(self) -> dict[str, int]:
        return {"data": dir_size(self.root / "data"), "wal": dir_size(self.root / "wal")}

    def wait_wal_flushed(self, timeout_s: float = 120.0, wal_below: int = 1 << 20) -> float:
        """Wait until the WAL is (nearly) empty, i.e. the cache went to TSM files; returns seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if dir_size(self.root / "wal") < wal_below:
                break
            time.sleep(1.0)
        return time.monotonic() - t0


def batches(path: str | os.PathLike, batch_lines: int, limit_lines: int | None = None,
            block_bytes: int = 32 << 20) -> Iterator[tuple[bytes, int]]:
    """Bodies of ``batch_lines`` whole lines each (the last one shorter) from a line-protocol file."""
    left = limit_lines
    carry = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(block_bytes)
            eof = not block
            data = carry + block if carry else block
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10) + 1
            if eof and len(data) and (len(ends) == 0 or ends[-1] != len(data)):
                ends = np.append(ends, len(data))
            if left is not None:
                ends = ends[:left]
            last = eof or (left is not None and len(ends) == left)
            n = len(ends) if last else len(ends) // batch_lines * batch_lines
            pos = 0
            for k in range(0, n, batch_lines):
                j = min(k + batch_lines, n)
                end = int(ends[j - 1])
                yield data[pos:end], j - k
                pos = end
            if last:
                return
            if left is not None:
                left -= n
            carry = data[pos:]


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process [KiB] from /proc."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its waited-for children [s] from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks
