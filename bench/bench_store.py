"""Issue 15: the store and the API at the physical limit, side by side with InfluxDB 1.6 and a Parquet file.

For each size in ``--years`` (default 1, 2, 5, 10; ``--quick``: 0.1 year), one after the other:

1. **Build**: ``homegrid simulate --start S --days round(365 * N) --create --data-dir D`` (the virtual home at
   1-minute readings, timed in a child process). **Bytes per row** = every file in ``D`` (database, ``-wal``,
   ``-shm``, anything else) over the raw readings rows read back from the store.
2. **The same rows elsewhere**: the raw readings read back in chunks (``read_readings``, the columns the store
   wrote: ``written_columns()``) are written to
   - a **Parquet** file (pyarrow, zstd at pyarrow's default level, stated in the output; NaN as null,
     ``time`` as timestamp[ms, UTC], row groups of about 1 Mi rows) -> bytes per row;
   - **InfluxDB 1.6**'s ``raw`` retention policy (``powerwall.raw.http``, line protocol as ``bench_queries.py``
     writes it) -> bytes per row of data + WAL once the cache went to TSM files and the size stopped changing,
     before Powerwall-Dashboard's rollups are added (their size is reported beside it). At 10 years and more,
     a write that takes longer than ``--influx-max-write-s`` (default 600) is stopped and the InfluxDB side of
     that size is reported as skipped, with why.
3. **Queries**, the same seeded random picks across the stored span for every system, ``--repeats`` each
   (default 200; a kind stops after ``--max-seconds``), median and p95:
   - homegrid **over HTTP**: ``homegrid serve`` on that data dir (loopback, no credential needed there; raw
     retention set beyond the span so nothing is pruned; no virtual backfill), one keep-alive connection,
     ``Accept-Encoding: gzip``, the body decompressed and parsed with orjson (a C parser, as fast as a browser's
     ``JSON.parse``; the standard library's ``json`` takes 15 ms on a day with every field), timed
     whole, each pick first with ``Cache-Control: no-cache`` (the hub works every reply out: the budgets are
     judged on these), then again as a browser asks (the hub may answer from its cache of sealed periods): a
     day at 1 minute (``/api/v1/energy?from=D&to=D&step=minute``, with ``fields=`` the day view draws
     when the API answers it with 200), a month of hours, a year of days (365 days from the pick; with less
     than a year stored, from the first day). Wire bytes = the compressed body;
   - InfluxDB's Powerwall-Dashboard rollups over HTTP (``bench_queries.influx_queries``, ``pwd``);
   - homegrid **in process** (``bench_queries.homegrid_queries``: ``Queries.series``), to show growth is flat.
4. ``bench/out/store.json`` and ``bench/out/store.md`` (years as columns, ratios, budgets of ``budgets.py``).

``--import`` instead measures bytes per row on the 1-second import benchmark's file (``bench_import.py``'s
CSV, ``--import-rows``, default a year): ``homegrid import``, then the same Parquet and InfluxDB raw sizes.

Each side runs alone (one core at a time): homegrid's queries, then InfluxDB's.

    .venv/bin/python bench/bench_store.py --quick
    .venv/bin/python bench/bench_store.py --years 1,2,5,10
    .venv/bin/python bench/bench_store.py --import --import-rows 1000000
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_queries
import influx
import synth
from budgets import BUDGETS
from budgets import text as budget_text
from check import _get as _g
from common import (
    DATA_CACHE,
    OUT,
    child_env,
    fmt,
    homegrid_cmd,
    log,
    machine,
    ratio,
    run_child,
    stop_process,
)

YEARS = (1.0, 2.0, 5.0, 10.0)
QUICK_YEARS = (0.1,)
LAST_DAY = date(2025, 12, 31)  # every size ends here, so the sizes differ only in how far back they reach
KINDS = ("day", "month", "year")
#: what the web app's day view draws (homegrid/web/src/chart.js LAYERS and the battery line)
DAY_FIELDS = ("solar_w", "battery_discharge_w", "grid_import_w", "home_w", "ev_w", "battery_charge_w",
              "grid_export_w", "soc_mean")
BAR_FIELDS = ("solar", "battery_discharge", "grid_import", "home", "ev", "battery_charge", "grid_export")
ROW_GROUP_ROWS = 1 << 20
PARQUET_CODEC = "zstd"


# the stores --------------------------------------------------------------------------------------------------


def data_dir_bytes(path: Path) -> tuple[int, dict[str, int]]:
    """Every file under a data dir [B], and each file's size."""
    files = {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}
    return sum(files.values()), files


def simulate(data_dir: Path, years: float, tmp: Path) -> dict[str, Any]:
    """``homegrid simulate`` of ``years`` ending on LAST_DAY, timed in a child process."""
    days = round(365 * years)
    start = LAST_DAY - timedelta(days=days - 1)
    cmd = homegrid_cmd("simulate", "--start", start.isoformat(), "--days", str(days), "--create",
                       "--data-dir", str(data_dir))
    r = run_child(cmd, env=child_env(tmp))
    if r.returncode != 0:
        raise RuntimeError(f"homegrid simulate failed: {r.stderr[-2000:]}")
    return {"command": " ".join(["homegrid", *cmd[1:]]), "days": days, "first_day": start.isoformat(),
            "last_day": LAST_DAY.isoformat(), "wall_s": r.wall_s, "peak_rss_mib": r.max_rss_kib / 1024,
            "output": r.stdout.strip()}


def import_file(data_dir: Path, csv_path: Path, tmp: Path) -> dict[str, Any]:
    """``homegrid import FILE``, timed in a child process."""
    cmd = homegrid_cmd("import", str(csv_path), "--create", "--data-dir", str(data_dir))
    r = run_child(cmd, env=child_env(tmp))
    if r.returncode != 0:
        raise RuntimeError(f"homegrid import failed: {r.stderr[-2000:]}")
    return {"command": " ".join(["homegrid", *cmd[1:]]), "wall_s": r.wall_s, "peak_rss_mib": r.max_rss_kib / 1024,
            "output": r.stdout.strip()}


def frames(data_dir: Path, chunk_ms: int) -> Iterator[Any]:
    """The store's raw readings in time order, ``chunk_ms`` at a time, only the columns it wrote."""
    from homegrid.hub.service import open_store

    store = open_store(data_dir)
    try:
        span = store.time_range()
        if span is None:
            raise RuntimeError("the homegrid store is empty")
        columns = list(store.written_columns())
        t = span[0]
        while t <= span[1]:
            frame = store.read_readings(t, min(t + chunk_ms, span[1] + 1), columns)
            t += chunk_ms
            if len(frame):
                yield frame
    finally:
        store.close()


def _arrow_table(frame: Any) -> pa.Table:
    cols = {"time": pa.array(frame.time_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC"))}
    for name, col in frame.columns.items():
        cols[name] = pa.array(col, pa.float64(), from_pandas=True)  # NaN (not measured) as null
    return pa.table(cols)


def export_rows(data_dir: Path, lp_path: Path | None, parquet_path: Path, chunk_ms: int,
                parquet_level: int | None) -> dict[str, Any]:
    """The store's raw readings to a Parquet file and (unless ``lp_path`` is None) to line protocol."""
    level = pa.Codec.default_compression_level(PARQUET_CODEC) if parquet_level is None else parquet_level
    rows = lines = 0
    first_ms = last_ms = 0
    columns: list[str] = []
    pending: list[pa.Table] = []
    writer: pq.ParquetWriter | None = None
    lp = open(lp_path, "wb") if lp_path is not None else None
    t0 = time.perf_counter()
    try:
        for frame in frames(data_dir, chunk_ms):
            if rows == 0:
                first_ms, columns = int(frame.time_ms[0]), list(frame.columns)
            last_ms = int(frame.time_ms[-1])
            rows += len(frame)
            table = _arrow_table(frame)
            if writer is None:
                writer = pq.ParquetWriter(parquet_path, table.schema, compression=PARQUET_CODEC,
                                          compression_level=level)
            pending.append(table)
            if sum(len(x) for x in pending) >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                pending = []
            if lp is not None:
                arr = bench_queries._frame_lines(frame)
                lines += len(arr)
                lp.write(synth._lines_bytes(arr))
        if writer is not None and pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
    finally:
        if writer is not None:
            writer.close()
        if lp is not None:
            lp.close()
    return {"rows": rows, "lines": lines, "columns": columns, "first_ms": first_ms, "last_ms": last_ms,
            "export_s": time.perf_counter() - t0,
            "parquet": {"bytes": parquet_path.stat().st_size, "bytes_per_row": parquet_path.stat().st_size / rows,
                        "codec": PARQUET_CODEC, "level": level, "pyarrow": pa.__version__,
                        "row_group_rows": ROW_GROUP_ROWS}}


# homegrid over HTTP ------------------------------------------------------------------------------------------


def _hub_config(path: Path) -> None:
    """A config that keeps every raw reading (nothing pruned under the benchmark) and writes no virtual past."""
    from homegrid.config import StoreConfig

    lines = ["[server]", "backfill_days = 0"]
    retention = StoreConfig.model_fields.get("raw_retention_days")
    if retention is not None and retention.default is not None:  # a store that prunes by default
        lines += ["[store]", "raw_retention_days = 1000000"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


class Hub:
    """``homegrid serve`` on a data dir, on a free loopback port."""

    def __init__(self, data_dir: Path, tmp: Path) -> None:
        env = child_env(tmp)
        config = tmp / "xdg-config" / "homegrid" / "homegrid.toml"
        _hub_config(config)
        self.port = influx.free_port()
        self.log_path = tmp / "serve.log"
        cmd = homegrid_cmd("serve", "--config", str(config), "--data-dir", str(data_dir), "--port", str(self.port))
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"homegrid serve exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if self.get("/api/v1/site")[0] == 200:
                    break
            except OSError:
                self.conn.close()
            if time.monotonic() - t0 > 600:
                raise RuntimeError(f"homegrid serve did not answer:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        self.ready_s = time.monotonic() - t0
        self.settle_s = self._settle()
        self.conn.close()  # idle while settling: the first timed request opens a fresh one (in the warm-up)

    def _settle(self, quiet_percent: float = 5.0, max_s: float = 600.0) -> float:
        """Wait until the hub's start-up work (outage rebuild and the like) is done: under 5 % of a core for 3 s."""
        t0 = time.monotonic()
        quiet = 0
        while quiet < 3 and time.monotonic() - t0 < max_s:
            c0 = influx.cpu_seconds(self.proc.pid)
            time.sleep(1.0)
            quiet = quiet + 1 if (influx.cpu_seconds(self.proc.pid) - c0) * 100 < quiet_percent else 0
        return time.monotonic() - t0

    def get(self, path: str, retry: bool = True, fresh: bool = False) -> tuple[int, int, Any]:
        """(status, bytes of the body on the wire, the parsed body) of a GET taking gzip, as a browser does;
        ``fresh``: with ``Cache-Control: no-cache`` (a hard reload: the hub works the reply out again rather than
        answer from its cache of sealed periods' replies).

        A keep-alive connection the server closed while idle is opened again once (as a browser would)."""
        headers = {"Accept-Encoding": "gzip", **({"Cache-Control": "no-cache"} if fresh else {})}
        try:
            self.conn.request("GET", path, headers=headers)
            resp = self.conn.getresponse()
            body = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()
            if not retry:
                raise
            return self.get(path, retry=False, fresh=fresh)
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        wire = len(body)
        if resp.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return resp.status, wire, orjson.loads(body)  # a C parser, as fast as a browser's JSON.parse

    def close(self) -> list[str]:
        """Stop the hub; the lines of its log that say it pruned or failed."""
        self.conn.close()
        stop_process(self.proc, signal.SIGINT, 60)
        self._log.close()
        return [x for x in self.log_path.read_text().splitlines()
                if "pruned" in x or " ERROR " in x or "Traceback" in x][:10]


def energy_paths(picks: dict[str, list[date]], fields: str) -> dict[str, list[str]]:
    """The dashboard's three reads for each pick: a day of minutes (the fields of the web app's power chart), a
    month of hours and a year of days (the energies of its bar charts), ``fields`` when the API takes them."""
    bars = "&fields=" + ",".join(BAR_FIELDS) if fields else ""
    def q(a: date, b: date, step: str, extra: str = "") -> str:
        return f"/api/v1/energy?from={a.isoformat()}&to={b.isoformat()}&step={step}{extra}"

    return {
        "day": [q(d, d, "minute", fields) for d in picks["day"]],
        "month": [q(m, bench_queries._month_last(m), "hour", bars) for m in picks["month"]],
        "year": [q(y, y + timedelta(days=364), "day", bars) for y in picks["year"]],
    }


def day_fields_param(hub: Hub, day: date) -> tuple[str, dict[str, Any]]:
    """``&fields=...`` when the API answers it with 200, else ""; and the day body's size both ways."""
    base = energy_paths({"day": [day], "month": [], "year": []}, "")["day"][0]
    param = "&fields=" + ",".join(DAY_FIELDS)
    status, wire_all, body_all = hub.get(base)
    info: dict[str, Any] = {"all_fields_wire_bytes": wire_all,
                            "all_fields_json_bytes": len(json.dumps(body_all, separators=(",", ":")))}
    try:
        status_f, wire_f, body_f = hub.get(base + param)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        status_f, wire_f, body_f = 0, 0, None
        info["fields_error"] = repr(exc)
    info["fields_status"] = status_f
    if status != 200:
        raise RuntimeError(f"{base}: HTTP {status}: {body_all}")
    if status_f == 200:
        info.update(fields_wire_bytes=wire_f, fields_json_bytes=len(json.dumps(body_f, separators=(",", ":"))))
        return param, info
    return "", info


def _time_http(hub: Hub, paths: list[str], max_seconds: float, warmup: int = 3, fresh: bool = True) -> dict[str, Any]:
    wire: list[int] = []

    def one(path: str) -> None:
        status, n, _body = hub.get(path, fresh=fresh)
        if status != 200:
            raise RuntimeError(f"{path}: HTTP {status}")
        wire.append(n)

    out = bench_queries._time(one, paths, max_seconds, warmup)
    timed = wire[warmup:] if len(wire) > warmup else wire
    out["wire_bytes_median"] = float(sorted(timed)[len(timed) // 2])
    out["wire_bytes_max"] = max(timed)
    return out


def http_queries(data_dir: Path, tmp: Path, picks: dict[str, list[date]], max_seconds: float) -> dict[str, Any]:
    hub = Hub(data_dir, tmp)
    out: dict[str, Any] = {"ready_s": hub.ready_s, "settle_s": hub.settle_s}
    try:
        fields, out["day_body"] = day_fields_param(hub, picks["day"][0])
        out["fields_param"] = fields.removeprefix("&")
        for kind, paths in energy_paths(picks, fields).items():
            if paths:  # every reply worked out (no-cache), then as a browser gets them (the hub's cache allowed)
                out[kind] = _time_http(hub, paths, max_seconds, fresh=True)
                out[f"{kind}_kept"] = _time_http(hub, paths, max_seconds, fresh=False)
                for key in (kind, f"{kind}_kept"):
                    r = out[key]
                    log(f"store: homegrid HTTP {key:<10} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms, "
                        f"{r['wire_bytes_median'] / 1000:.1f} kB on the wire (n={r['n']})")
        out["hub_rss_mib"] = influx.rss_kib(hub.proc.pid)[1] / 1024
    finally:
        out["hub_log"] = hub.close()
    if any("pruned" in x for x in out["hub_log"]):
        out["warning"] = "the hub pruned raw readings while serving (see hub_log)"
    return out


# InfluxDB ----------------------------------------------------------------------------------------------------


def _wait_size_stable(ix: influx.Influx, timeout_s: float = 600.0, quiet_s: float = 40.0) -> float:
    """Wait for the WAL to empty and then the data size to stay the same for ``quiet_s`` (longer than the
    server's ``compact-full-write-cold-duration``, 20 s here: a cold shard's full compaction is done); seconds
    waited. Measured before that, InfluxDB's shards hold their level-1 TSM files, about twice the size."""
    t0 = time.monotonic()
    ix.wait_wal_flushed(timeout_s=timeout_s)
    last, same, polls = -1, 0, int(quiet_s / 2.0)
    while same < polls and time.monotonic() - t0 < timeout_s:
        time.sleep(2.0)
        size = sum(ix.size().values())
        same = same + 1 if size == last else 0
        last = size
    return time.monotonic() - t0


def influx_side(lp_path: Path | None, res: dict[str, Any], picks: dict[str, list[date]], max_seconds: float,
                tmp: Path, max_write_s: float | None) -> dict[str, Any]:
    """The rows of ``lp_path`` (``res``: rows, lines and span of the export) in InfluxDB: bytes per row of the raw
    retention policy; then, with picks, Powerwall-Dashboard's rollups and their queries over HTTP."""
    assert lp_path is not None
    rows, lines, first_s, last_s = res["rows"], res["lines"], res["first_ms"] // 1000, res["last_ms"] // 1000
    out: dict[str, Any] = {"lines": lines}
    with influx.Influx(root=str(tmp)) as ix:
        ix.setup_powerwall()
        t0 = time.perf_counter()
        written = ix.write_file(lp_path, stop_after_s=max_write_s)
        out["write_s"] = time.perf_counter() - t0
        if written < lines:
            out["skipped"] = (f"InfluxDB skipped at this size: writing took more than {max_write_s:g} s "
                              f"({written:,} of {lines:,} lines written in {out['write_s']:.0f} s)")
            log(f"store: {out['skipped']}")
            return out
        out["rows_per_s"] = lines / out["write_s"]
        out["settle_s"] = _wait_size_stable(ix)
        size = ix.size()
        out["raw_bytes"] = size["data"] + size["wal"]
        out["raw_detail"] = size
        out["bytes_per_row"] = out["raw_bytes"] / rows
        log(f"store: influx raw {out['bytes_per_row']:.1f} B/row (write {out['write_s']:.1f} s)")
        if not any(picks.values()):  # the import's sizes only: no rollups, no queries
            return out
        t0 = time.perf_counter()
        ix.downsample(first_s, last_s + 1)
        out["downsample_s"] = time.perf_counter() - t0
        _wait_size_stable(ix)
        size = ix.size()
        out["with_rollups_bytes"] = size["data"] + size["wal"]
        out["with_rollups_bytes_per_row"] = out["with_rollups_bytes"] / rows
        out["queries"] = bench_queries.influx_queries(ix, picks, max_seconds, variants=("pwd",))
        out["influxd_peak_rss_mib"] = influx.rss_kib(ix.pid)[1] / 1024
    for k, r in out.get("queries", {}).get("pwd", {}).items():
        log(f"store: influx PWD {k:<6} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms (n={r['n']})")
    return out


# one size ----------------------------------------------------------------------------------------------------


def picks_for(first: date, last: date, repeats: int, seed: int = 15) -> dict[str, list[date]]:
    """Seeded random days, months and year starts inside the span; with less than a year, the first day."""
    p = bench_queries._picks(first, last, repeats, seed)
    if not p["year"]:
        p["year"] = [first] * repeats
    return p


def measure_bytes(res: dict[str, Any], data_dir: Path, tmp: Path, chunk_ms: int, parquet_level: int | None,
                  use_influx: bool) -> tuple[Path | None, dict[str, Any] | None]:
    """Bytes per row of the data dir and the Parquet file (into ``res``); the line-protocol file for InfluxDB, or
    why InfluxDB does not run."""
    skip = influx.skipped(use_influx, log)
    total, files = data_dir_bytes(data_dir)
    lp = tmp / "readings.lp" if skip is None else None
    ex = export_rows(data_dir, lp, tmp / "readings.parquet", chunk_ms, parquet_level)
    (tmp / "readings.parquet").unlink()
    rows = ex["rows"]
    res.update(rows=rows, lines=ex["lines"], columns=ex["columns"], first_ms=ex["first_ms"], last_ms=ex["last_ms"],
               export_s=ex["export_s"], parquet=ex["parquet"])
    res["homegrid"].update(bytes=total, files=files, bytes_per_row=total / rows)
    log(f"store: {rows:,} rows, {len(ex['columns'])} columns; homegrid {total / rows:.1f} B/row "
        f"(whole data dir: {', '.join(f'{k} {v:,}' for k, v in files.items())}); "
        f"Parquet {PARQUET_CODEC} level {ex['parquet']['level']} {ex['parquet']['bytes_per_row']:.1f} B/row")
    return lp, skip


def _ratios(res: dict[str, Any]) -> dict[str, float | None]:
    h, i = res["homegrid"], res.get("influx", {})
    out = {"vs_parquet": ratio(h.get("bytes_per_row"), res.get("parquet", {}).get("bytes_per_row")),
           "vs_influx_raw": ratio(h.get("bytes_per_row"), i.get("bytes_per_row"))}
    pwd = i.get("queries", {}).get("pwd", {})
    for k in KINDS:
        hk = h.get("http", {}).get(k)
        if hk and k in pwd:
            out[f"{k}_http_median_vs_pwd"] = ratio(hk["median_ms"], pwd[k]["median_ms"])
            out[f"{k}_http_p95_vs_pwd"] = ratio(hk["p95_ms"], pwd[k]["p95_ms"])
    return out


def run_size(years: float, repeats: int, use_influx: bool, max_seconds: float, max_write_s: float,
             parquet_level: int | None, tmp_root: str | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="hg-store-", dir=tmp_root))
    res: dict[str, Any] = {"years": years, "homegrid": {}}
    try:
        data_dir = tmp / "data"
        res["homegrid"]["simulate"] = sim = simulate(data_dir, years, tmp)
        log(f"store: {years:g} years simulated in {sim['wall_s']:.1f} s: {sim['output']}")
        lp, skip = measure_bytes(res, data_dir, tmp, 31 * 86_400_000, parquet_level, use_influx)
        first, last = date.fromisoformat(sim["first_day"]), date.fromisoformat(sim["last_day"])
        picks = picks_for(first, last, repeats)
        res["picks"] = {k: len(v) for k, v in picks.items()}
        res["homegrid"]["in_process"] = bench_queries.homegrid_queries(data_dir, picks, max_seconds)
        for k in KINDS:
            r = res["homegrid"]["in_process"].get(k)
            if r:
                log(f"store: homegrid in process {k:<5} median {r['median_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms")
        res["homegrid"]["http"] = http_queries(data_dir, tmp, picks, max_seconds)
        shutil.rmtree(data_dir, ignore_errors=True)
        res["influx"] = skip or influx_side(lp, res, picks, max_seconds, tmp, max_write_s if years >= 10 else None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["ratios"] = _ratios(res)
    return res


def run_import(rows: int, use_influx: bool, parquet_level: int | None, tmp_root: str | None) -> dict[str, Any]:
    """Bytes per row on the 1-second import benchmark's CSV: homegrid, InfluxDB raw, Parquet."""
    import bench_import

    csv_path = synth.cached(DATA_CACHE, "csv", bench_import.START, rows, 1, 2025)
    tmp = Path(tempfile.mkdtemp(prefix="hg-store-import-", dir=tmp_root))
    res: dict[str, Any] = {"rows_in_file": rows, "csv": str(csv_path), "homegrid": {}}
    try:
        data_dir = tmp / "data"
        res["homegrid"]["import"] = imp = import_file(data_dir, csv_path, tmp)
        log(f"store: imported {rows:,} rows at 1 s in {imp['wall_s']:.1f} s")
        lp, skip = measure_bytes(res, data_dir, tmp, 3 * 86_400_000, parquet_level, use_influx)
        shutil.rmtree(data_dir, ignore_errors=True)
        res["influx"] = skip or influx_side(lp, res, {"day": [], "month": [], "year": []}, 0.0, tmp, None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["ratios"] = _ratios(res)
    return res


def run(years: tuple[float, ...] = YEARS, repeats: int = 200, use_influx: bool = True, max_seconds: float = 30.0,
        max_write_s: float = 600.0, parquet_level: int | None = None, import_rows: int = 0,
        tmp_root: str | None = None) -> dict[str, Any]:
    """Every size in turn; with ``import_rows``, the 1-second import's bytes per row too."""
    res: dict[str, Any] = {"years": list(years), "repeats": repeats, "max_seconds": max_seconds,
                           "influx_max_write_s": max_write_s, "sizes": {}, "loadavg": {"start": os.getloadavg()}}
    for y in years:
        log(f"--- store: {y:g} years")
        res["sizes"][f"{y:g}"] = run_size(y, repeats, use_influx, max_seconds, max_write_s, parquet_level, tmp_root)
    if import_rows:
        log(f"--- store: import of {import_rows:,} rows at 1 s")
        res["import"] = run_import(import_rows, use_influx, parquet_level, tmp_root)
    res["loadavg"]["end"] = os.getloadavg()
    return res


# the figures -------------------------------------------------------------------------------------------------


#: (budget figure, how to get it from one size's results)
SIZE_FIGURES: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "store.bytes_per_row": lambda s: _g(s, "homegrid", "bytes_per_row"),
    "store.vs_parquet": lambda s: _g(s, "ratios", "vs_parquet"),
    "store.vs_influx_raw": lambda s: _g(s, "ratios", "vs_influx_raw"),
    "store.day_http_median_ms": lambda s: _g(s, "homegrid", "http", "day", "median_ms"),
    "store.day_http_p95_ms": lambda s: _g(s, "homegrid", "http", "day", "p95_ms"),
    "store.month_http_median_ms": lambda s: _g(s, "homegrid", "http", "month", "median_ms"),
    "store.year_http_median_ms": lambda s: _g(s, "homegrid", "http", "year", "median_ms"),
    "store.day_http_vs_influx_pwd": lambda s: _g(s, "ratios", "day_http_median_vs_pwd"),
    "store.month_http_vs_influx_pwd": lambda s: _g(s, "ratios", "month_http_median_vs_pwd"),
    "store.year_http_vs_influx_pwd": lambda s: _g(s, "ratios", "year_http_median_vs_pwd"),
    "store.day_wire_kb": lambda s: (lambda b: b / 1000 if b is not None else None)(
        _g(s, "homegrid", "http", "day", "wire_bytes_max")),
}
IMPORT_FIGURES: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "store.import_bytes_per_row": lambda s: _g(s, "homegrid", "bytes_per_row"),
    "store.import_vs_parquet": lambda s: _g(s, "ratios", "vs_parquet"),
    "store.import_vs_influx_raw": lambda s: _g(s, "ratios", "vs_influx_raw"),
}


def figures(r: dict[str, Any]) -> dict[str, tuple[float | None, float | None, str]]:
    """Each budget's figure as (value, size, why none): the worst over the sizes measured, at the largest of them.

    Every store budget is an upper limit that holds at every size, so the figure is the largest value; its size
    (years, or rows for the import) is the largest size that measured it."""
    out: dict[str, tuple[float | None, float | None, str]] = {}
    sizes = list(r.get("sizes", {}).values())
    for name, get in SIZE_FIGURES.items():
        got = [(get(s), s["years"]) for s in sizes if get(s) is not None]
        why = next((str(s["influx"]["skipped"]) for s in sizes if "skipped" in s.get("influx", {})), "")
        if got:
            out[name] = (max(v for v, _ in got), max(y for _, y in got), "")
        elif sizes:
            out[name] = (None, None, why or "not measured")
    imp = r.get("import")
    if isinstance(imp, dict) and "rows" in imp:
        for name, get in IMPORT_FIGURES.items():
            v = get(imp)
            out[name] = (v, imp["rows"], "" if v is not None else str(_g(imp, "influx", "skipped") or "not measured"))
    return out


def _ms(x: dict[str, Any] | None) -> str:
    return f"{x['median_ms']:.2f} / {x['p95_ms']:.2f}" if x else "-"


def render(r: dict[str, Any], argv: list[str]) -> str:
    """The Markdown table: one column per size, a budget column."""
    sizes = list(r.get("sizes", {}).values())
    lines = ["### Issue 15: the store at the physical limit (`bench/bench_store.py`)", "",
             f"`.venv/bin/python bench/bench_store.py {' '.join(argv)}`; {r['repeats']} picks a query (seeded), "
             f"machine {r.get('machine', {}).get('cpu', '?')}, commit {r.get('machine', {}).get('git_head', '?')}; "
             f"load average {r['loadavg']['start'][0]:.2f} at start, {r['loadavg']['end'][0]:.2f} at the end "
             "(the machine's 2 cores are shared: times are of this load).", ""]
    if sizes:
        lines += ["| figure | " + " | ".join(f"{s['years']:g} y" for s in sizes) + " | budget |",
                  "|---|" + "---|" * len(sizes) + "---|"]

        def row(label: str, f: Callable[[dict[str, Any]], str], budget: str = "") -> None:
            lines.append(f"| {label} | " + " | ".join(f(s) for s in sizes) + f" | {budget} |")

        def num(*keys: str, scale: float = 1.0, digits: int = 3) -> Callable[[dict[str, Any]], str]:
            return lambda s: (lambda v: fmt(v * scale, digits) if isinstance(v, int | float) else
                              (v if isinstance(v, str) else "-"))(_g(s, *keys))

        def influx_or_why(*keys: str) -> Callable[[dict[str, Any]], str]:
            return lambda s: (f"skipped ({s['influx']['skipped'][:60]})" if "skipped" in s.get("influx", {})
                              else num(*keys)(s))

        pq_level = next((s["parquet"]["level"] for s in sizes if "parquet" in s), "?")
        row("raw readings rows", lambda s: f"{s.get('rows', 0):,}")
        row("columns", lambda s: str(len(s.get("columns", []))))
        row("homegrid simulate [s]", num("homegrid", "simulate", "wall_s"))
        row("**bytes/row homegrid** (whole data dir)", num("homegrid", "bytes_per_row"),
            budget_text("store.bytes_per_row"))
        row("bytes/row InfluxDB raw RP (data + wal)", influx_or_why("influx", "bytes_per_row"))
        row(f"bytes/row Parquet ({PARQUET_CODEC} level {pq_level})", num("parquet", "bytes_per_row"))
        row("homegrid / Parquet", num("ratios", "vs_parquet"), budget_text("store.vs_parquet"))
        row("homegrid / InfluxDB raw", num("ratios", "vs_influx_raw"), budget_text("store.vs_influx_raw"))
        row("bytes/row InfluxDB raw + PWD rollups", influx_or_why("influx", "with_rollups_bytes_per_row"))
        row("InfluxDB write / downsample [s]", lambda s: (f"{fmt(_g(s, 'influx', 'write_s'))} / "
                                                          f"{fmt(_g(s, 'influx', 'downsample_s'))}"))
        labels = {"day": "day at 1 min", "month": "month of hours", "year": "year of days"}
        for k, label in labels.items():
            row(f"HTTP {label}, median / p95 [ms]: homegrid, worked out (no-cache)",
                lambda s, k=k: _ms(_g(s, "homegrid", "http", k)),
                budget_text(f"store.{k}_http_median_ms") + (
                    f"; p95 {budget_text('store.day_http_p95_ms')}" if k == "day" else ""))
            row(f"HTTP {label}, median / p95 [ms]: homegrid, its cache of sealed replies allowed",
                lambda s, k=k: _ms(_g(s, "homegrid", "http", f"{k}_kept")))
            row(f"HTTP {label}, median / p95 [ms]: InfluxDB PWD rollups",
                lambda s, k=k: _ms(_g(s, "influx", "queries", "pwd", k)))
            row(f"HTTP {label}: homegrid / InfluxDB PWD, median", num("ratios", f"{k}_http_median_vs_pwd"),
                budget_text(f"store.{k}_http_vs_influx_pwd"))
            row(f"in process {label}, median / p95 [ms]", lambda s, k=k: _ms(_g(s, "homegrid", "in_process", k)))
        row("HTTP day body on the wire, gzip, max [kB]", num("homegrid", "http", "day", "wire_bytes_max",
                                                             scale=1e-3), budget_text("store.day_wire_kb"))
        row("day body, all fields: wire / JSON [kB]", lambda s: "{} / {}".format(
            fmt(_g(s, "homegrid", "http", "day_body", "all_fields_wire_bytes") / 1000),
            fmt(_g(s, "homegrid", "http", "day_body", "all_fields_json_bytes") / 1000))
            if _g(s, "homegrid", "http", "day_body") else "-")
        def fields_answer(s: dict[str, Any]) -> str:
            b = _g(s, "homegrid", "http", "day_body") or {}
            if "fields_status" not in b:
                return "-"
            smaller = b.get("fields_json_bytes", b["all_fields_json_bytes"]) < b["all_fields_json_bytes"]
            return f"HTTP {b['fields_status']}" + ("" if b["fields_status"] != 200 else
                                                   ", fewer fields" if smaller else ", ignored (same body)")

        row("`fields=` of the day view", fields_answer)
    imp = r.get("import")
    if isinstance(imp, dict) and "rows" in imp:
        i = imp.get("influx", {})
        lines += ["", f"1-second import benchmark, {imp['rows']:,} rows ({len(imp['columns'])} columns; "
                      f"`homegrid import` {imp['homegrid']['import']['wall_s']:.1f} s):", "",
                  "| bytes/row | homegrid (whole data dir) | InfluxDB raw RP | Parquet | homegrid / Parquet | "
                  "homegrid / InfluxDB raw |", "|---|---|---|---|---|---|",
                  f"| 1-s import | {fmt(imp['homegrid']['bytes_per_row'])} | "
                  f"{fmt(i.get('bytes_per_row')) if 'skipped' not in i else 'skipped: ' + i['skipped']} | "
                  f"{fmt(imp['parquet']['bytes_per_row'])} | {fmt(imp['ratios']['vs_parquet'])} | "
                  f"{fmt(imp['ratios']['vs_influx_raw'])} |"]
    return "\n".join(lines)


def summary_rows(r: dict[str, Any]) -> list[tuple[str, Any, Any, float | None, str, str]]:
    """Rows of ``run_all.py``'s table: (what, homegrid, InfluxDB, ratio, budget, verdict)."""
    rows: list[tuple[str, Any, Any, float | None, str, str]] = []

    def verdict(figure: str, value: float | None) -> str:
        if value is None:
            return "n/a"
        return "PASS" if next(b for b in BUDGETS if b.figure == figure).met(value) else "MISS"

    for s in r.get("sizes", {}).values():
        y, h, i, rt = f"{s['years']:g} y", s["homegrid"], s.get("influx", {}), s.get("ratios", {})
        rows.append((f"15 {y}: bytes/row (Influx: raw RP)", h.get("bytes_per_row"), i.get("bytes_per_row"),
                     rt.get("vs_influx_raw"), budget_text("store.bytes_per_row"),
                     verdict("store.bytes_per_row", h.get("bytes_per_row"))))
        rows.append((f"15 {y}: bytes/row vs Parquet (zstd)", h.get("bytes_per_row"),
                     _g(s, "parquet", "bytes_per_row"), rt.get("vs_parquet"), budget_text("store.vs_parquet"),
                     verdict("store.vs_parquet", rt.get("vs_parquet"))))
        for k in KINDS:
            hk, ik = _g(h, "http", k), _g(i, "queries", "pwd", k)
            if hk:
                rows.append((f"15 {y}: HTTP {k} median [ms] (Influx: PWD rollups)", hk["median_ms"],
                             ik["median_ms"] if ik else None, rt.get(f"{k}_http_median_vs_pwd"),
                             budget_text(f"store.{k}_http_median_ms"),
                             verdict(f"store.{k}_http_median_ms", hk["median_ms"])))
    imp = r.get("import")
    if isinstance(imp, dict) and "rows" in imp:
        rt = imp["ratios"]
        rows.append((f"15 1-s import {imp['rows']:,} rows: bytes/row (Influx: raw RP)",
                     imp["homegrid"]["bytes_per_row"], imp.get("influx", {}).get("bytes_per_row"),
                     rt.get("vs_influx_raw"), budget_text("store.import_bytes_per_row"),
                     verdict("store.import_bytes_per_row", imp["homegrid"]["bytes_per_row"])))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--years", help="comma-separated sizes in years (default 1,2,5,10)")
    p.add_argument("--quick", action="store_true", help=f"sizes {','.join(f'{y:g}' for y in QUICK_YEARS)} "
                                                         "years, 50 repeats")
    p.add_argument("--repeats", type=int, help="picks of each query (default 200; 50 with --quick)")
    p.add_argument("--max-seconds", type=float, default=30.0, help="stop timing a query kind after this")
    p.add_argument("--influx-max-write-s", type=float, default=600.0,
                   help="at 10 years and more, skip InfluxDB (and say so) when writing takes longer than this")
    p.add_argument("--parquet-level", type=int, help="zstd level of the Parquet file (default pyarrow's)")
    p.add_argument("--import", dest="import_mode", action="store_true",
                   help="the 1-second import benchmark's bytes per row instead of the sizes in years")
    p.add_argument("--import-rows", type=int, default=365 * 86_400,
                   help="rows of the 1-s import file (default a year: 31,536,000)")
    p.add_argument("--no-influx", action="store_true", help="skip the InfluxDB side")
    p.add_argument("--tmp", help="folder for the stores (default the system temp folder)")
    p.add_argument("--out", type=Path, default=OUT / "store.json")
    args = p.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    years = (tuple(float(x) for x in args.years.split(",")) if args.years
             else QUICK_YEARS if args.quick else YEARS)
    repeats = args.repeats or (50 if args.quick else 200)
    if args.import_mode:
        res = run((), repeats, not args.no_influx, args.max_seconds, args.influx_max_write_s, args.parquet_level,
                  args.import_rows, args.tmp)
    else:
        res = run(years, repeats, not args.no_influx, args.max_seconds, args.influx_max_write_s, args.parquet_level,
                  0, args.tmp)
    res["machine"] = machine()
    res["figures"] = {k: {"value": v, "size": s, "why": w} for k, (v, s, w) in figures(res).items()}
    text = render(res, argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str))
    args.out.with_suffix(".md").write_text(text + "\n")
    print(text)
    log(f"store: wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
