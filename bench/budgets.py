"""The performance budgets the issues set, as data: one table, read by ``run_all.py --check``.

Each row names the issue that set the budget, the figure it bounds (a name ``check.figures`` gives a
value from ``run_all.py``'s results), how it compares and the size of run it is stated for. Change a
budget here, with the issue that changed it; nothing else in ``bench/`` holds a limit for the check.

- ``against``: ``"absolute"``, a limit on the figure itself; ``"peer"``, the ratio homegrid / InfluxDB 1.6
  measured side by side in the same run (not measured under ``--no-influx`` or without ``influxd``);
  ``"reference"``, the ratio against an older commit of homegrid, run side by side outside ``run_all.py``.
- ``binding``: False for a stated goal that is reported but does not fail the check (issue 2: "ahead of it
  on every figure is the goal"; RESULTS.md shows where homegrid is not yet ahead).
- ``size``/``size_unit``: the size the budget is stated for. A figure from a smaller run (``--quick``) is
  shown with its verdict in parentheses and does not decide the exit status; with ``scale``, a time is
  first scaled in proportion to the size (a quick year's import is scaled to 31.5 M rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Op = Literal["<", "<=", ">", ">=", "=="]
Against = Literal["absolute", "peer", "reference"]


@dataclass(frozen=True)
class Budget:
    figure: str
    issue: int
    what: str
    op: Op
    limit: float
    unit: str = ""
    against: Against = "absolute"
    binding: bool = True
    size: float | None = None
    size_unit: str = ""
    scale: bool = False
    note: str = ""

    def met(self, value: float) -> bool:
        if self.op == "<":
            return value < self.limit
        if self.op == "<=":
            return value <= self.limit
        if self.op == ">":
            return value > self.limit
        if self.op == ">=":
            return value >= self.limit
        return value == self.limit

    def text(self) -> str:
        """The budget as written in a table, e.g. ``< 10 s`` or ``homegrid / InfluxDB < 1``."""
        lhs = {"peer": "homegrid / InfluxDB ", "reference": "this / old commit "}.get(self.against, "")
        unit = f" {self.unit}" if self.unit else ""
        return f"{lhs}{self.op} {self.limit:g}{unit}"


def _peer_goals(issue: int, pairs: tuple[tuple[str, str], ...]) -> tuple[Budget, ...]:
    return tuple(Budget(fig, issue, f"{what}: ahead of InfluxDB 1.6", "<", 1.0, against="peer", binding=False)
                 for fig, what in pairs)


_QUERY_KINDS = (("day", "day at 1 min"), ("month", "month of hours"), ("year", "year of days"),
                ("report", "year report"))
_VIEWS = ("day", "week", "month", "year")

BUDGETS: tuple[Budget, ...] = (
    # issue 2: the store (bench_simulate, bench_import, bench_queries, bench_serve)
    Budget("simulate.wall_s", 2, "simulate a year at 1 min", "<", 10.0, "s", size=365, size_unit="days",
           scale=True),
    Budget("import.wall_s", 2, "import a year of 1-s readings (31.5 M rows)", "<", 300.0, "s", size=31_536_000,
           size_unit="rows", scale=True),
    Budget("import.peak_rss_mib", 2, "import: peak RSS", "<", 1024.0, "MiB", size=31_536_000, size_unit="rows"),
    *(Budget(f"queries.{k}.{stat}_ms", 2, f"{label}, {stat}, two years stored", "<", limit, "ms", size=730,
             size_unit="days")
      for k, label in _QUERY_KINDS for stat, limit in (("median", 20.0), ("p95", 50.0))),
    Budget("serve.rss_max_mb", 2, "hub on the virtual home: RSS max", "<", 150.0, "MB"),
    Budget("serve.cpu_percent", 2, "hub on the virtual home: CPU", "<", 2.0, "% of a core"),
    *_peer_goals(2, (
        ("simulate.vs_influx", "simulate a year: wall (Influx: write + downsample)"),
        ("import.vs_influx", "import: wall (Influx: /write)"),
        ("import.rss_vs_influx", "import: peak RSS (Influx: influxd VmHWM)"),
        ("import.disk_vs_influx", "import: on disk"),
        *((f"queries.{k}.p95_vs_influx_pwd", f"{label}: p95 (Influx: PWD rollups)") for k, label in _QUERY_KINDS),
        ("queries.disk_vs_influx", "two years stored: on disk"),
        ("serve.rss_vs_influx", "serve: RSS max (Influx: influxd)"),
        ("serve.cpu_vs_influx", "serve: CPU (Influx: influxd)"),
    )),
    # issue 12: back to the speed of the commit issue 2's figures were taken at, side by side
    Budget("simulate.vs_beb8b1f", 12, "simulate a year at 1 min: as fast as `beb8b1f`", "<=", 1.0,
           against="reference", size=365, size_unit="days",
           note="run side by side outside run_all.py; see RESULTS.md, issue 12"),
    Budget("import.vs_beb8b1f", 12, "import: as fast as `beb8b1f`", "<=", 1.0, against="reference",
           note="run side by side outside run_all.py; see RESULTS.md, issue 12"),
    # issue 3: device polling (bench_gateways), no peer
    Budget("gateways.latency_p95_ms", 3, "poll-to-store on loopback, p95", "<", 100.0, "ms"),
    Budget("gateways.fleet_missed_or_errors", 3, "200 gateways at 5 s: missed cycles and errors", "==", 0.0,
           size=200, size_unit="gateways"),
    Budget("gateways.fleet_interval_dev_s", 3, "200 gateways: largest distance of a poll interval from 5 s", "<=",
           0.25, "s", size=200, size_unit="gateways", note="the tolerance of bench/README.md"),
    Budget("gateways.fleet_lag_growth_s", 3, "200 gateways: growth of the lag behind schedule, steady state", "<=",
           0.25, "s", size=200, size_unit="gateways", note="the tolerance of bench/README.md"),
    Budget("gateways.fleet_store_max_ms", 3, "200 gateways: poll-to-store max (committed before the next poll)",
           "<", 5000.0, "ms", size=200, size_unit="gateways"),
    # issue 4: outage detection on a simulated year (bench_outages), ground truth, no peer
    Budget("outages.long_5s_log_pr", 4, "outages >= 10 s at 5 s polls, status + log: min(precision, recall)",
           ">=", 0.99, size=365, size_unit="days"),
    Budget("outages.blips_in_log_missed", 4, "blips with a fault-log entry not caught (full and 70 % log)",
           "==", 0.0, size=365, size_unit="days"),
    Budget("outages.months_disagreeing", 4, "polls at which a month's count, saved, not saved differ from truth",
           "==", 0.0, size=365, size_unit="days"),
    Budget("outages.restart_events_lost", 4, "true events lost or split across restarts (pure, store, live)",
           "==", 0.0, size=365, size_unit="days"),
    # issue 11: interruptions and blips apart
    *(Budget(f"outages.{kind}_{step}s_pr", 11, f"{label} at {step} s polls: min(precision, recall)", ">=", 0.99,
             size=365, size_unit="days")
      for step in (5, 30) for kind, label in (("interruptions", "interruptions"),
                                              ("blips", "blips shorter than a poll"))),
    # issue 5: the web app (bench_web), no peer
    Budget("web.first_load_p95_ms", 5, "first load of the Now view, p95", "<", 1000.0, "ms", size=730,
           size_unit="days"),
    Budget("web.page_kb", 5, "page weight, compressed", "<", 500.0, "kB", size=730, size_unit="days"),
    *(Budget(f"web.{v}_{g}_p95_ms", 5, f"{v} view, {g} range, click to drawn, p95", "<", 300.0, "ms", size=730,
             size_unit="days")
      for v in _VIEWS for g in ("cold", "warm")),
    Budget("web.watchers_cpu_percent", 5, "50 browsers watching live: hub CPU", "<", 10.0, "% of a core",
           size=730, size_unit="days"),
    # issue 10: under load (bench_load) and fuzz (bench_fuzz)
    Budget("load.failed_requests", 10, "200 API clients: 5xx replies and refused or reset connections", "==", 0.0,
           size=200, size_unit="clients"),
    Budget("load.hub_down", 10, "the hub alive after the load (1 = it died)", "==", 0.0, size=200,
           size_unit="clients"),
    Budget("fuzz.failed_files", 10, "fuzz test files failing", "==", 0.0, size=100_000, size_unit="cases a test"),
    # issue 13: the bill (bench_bill), side by side with NREL SAM's PySAM.Utilityrate5 (ratios in its table)
    Budget("bill.minute_ms", 13, "a year's bill at 1-minute data, TOU + tiers + demand, median", "<", 200.0, "ms",
           size=525_600, size_unit="minutes"),
    Budget("bill.hour_ms", 13, "a year's bill from the hourly rollups, TOU + tiers + demand, median", "<", 20.0,
           "ms", size=8_760, size_unit="hours"),
    Budget("money.first_paint_p95_ms", 13, "the Money view's first paint, p95 of cold loads", "<", 300.0, "ms",
           size=730, size_unit="days"),
    Budget("bill.minute_sam_months_off", 13, "months of the 1-minute bill off SAM's by more than 0.5 % or 1 cent",
           "==", 0.0, size=525_600, size_unit="minutes"),
    # issue 14: the planner's backtest (bench_planner, planner.json's "figures"), emhass side by side; over every
    # case (data set x tariff x battery); a year of each data set (emhass's household: 364 whole local days)
    Budget("planner.mpc_share_min", 14, "homegrid mpc's share of the perfect-foresight saving, lowest case", ">=",
           0.92, size=364, size_unit="days"),
    Budget("planner.mpc_above_emhass", 14, "mpc's share minus the best emhass persistence-forecast share, lowest "
           "case with an emhass run", ">", 0.0, size=364, size_unit="days"),
    Budget("planner.mpc_vs_self_consumption", 14, "mpc's net above self-consumption's, relative to it, highest "
           "case", "<=", 0.005, size=364, size_unit="days"),
    Budget("planner.perfect_vs_lp", 14, "perfect's net off an independent LP's, relative, highest case", "<=", 0.01,
           size=364, size_unit="days"),
    # issue 15: the store and the API at the physical limit (bench_store): at every size from 1 to 10 years, so the
    # figure is the worst over the sizes measured; InfluxDB 1.6 and a Parquet file (zstd) of the same rows beside it
    Budget("store.bytes_per_row", 15, "bytes per stored row of the virtual home's minute readings, whole data dir",
           "<", 50.0, "B", size=10, size_unit="years"),
    Budget("store.vs_parquet", 15, "bytes per row: homegrid / a Parquet file (zstd) of the same columns", "<=", 1.2,
           size=10, size_unit="years"),
    Budget("store.vs_influx_raw", 15, "bytes per row: at most InfluxDB's raw retention policy", "<=", 1.0,
           against="peer", size=10, size_unit="years"),
    Budget("store.day_http_median_ms", 15, "day at 1 min over HTTP (gzip, parsed), median", "<", 10.0, "ms", size=10,
           size_unit="years"),
    Budget("store.day_http_p95_ms", 15, "day at 1 min over HTTP (gzip, parsed), p95", "<", 25.0, "ms", size=10,
           size_unit="years"),
    Budget("store.month_http_median_ms", 15, "month of hours over HTTP, median", "<", 5.0, "ms", size=10,
           size_unit="years"),
    Budget("store.year_http_median_ms", 15, "year of days over HTTP, median", "<", 5.0, "ms", size=10,
           size_unit="years"),
    *(Budget(f"store.{k}_http_vs_influx_pwd", 15, f"{label} over HTTP, median: faster than InfluxDB's rollups",
             "<", 1.0, against="peer", size=10, size_unit="years")
      for k, label in (("day", "day at 1 min"), ("month", "month of hours"), ("year", "year of days"))),
    Budget("store.day_wire_kb", 15, "the day body on the wire (gzip), largest", "<", 40.0, "kB", size=10,
           size_unit="years"),
    Budget("store.import_bytes_per_row", 15, "1-s import benchmark: bytes per stored row, whole data dir", "<", 50.0,
           "B", size=31_536_000, size_unit="rows"),
    Budget("store.import_vs_parquet", 15, "1-s import: bytes per row, homegrid / Parquet (zstd)", "<=", 1.2,
           size=31_536_000, size_unit="rows"),
    Budget("store.import_vs_influx_raw", 15, "1-s import: bytes per row, at most InfluxDB's raw retention policy",
           "<=", 1.0, against="peer", size=31_536_000, size_unit="rows"),
    # issue 14: the live hub with the planner on (bench_serve_planner), no peer
    Budget("planner.serve_rss_mb", 14, "hub on the virtual home, planner on (5-min re-plans): RSS max", "<", 150.0,
           "MB"),
    Budget("planner.serve_cpu_idle_percent", 14, "hub on the virtual home, planner on: CPU between re-plans", "<",
           2.0, "% of a core"),
)


def limit(figure: str) -> float:
    """The limit of the (first) budget on a figure: the bench scripts print their verdicts against it."""
    return next(b.limit for b in BUDGETS if b.figure == figure)


def text(figure: str) -> str:
    """The (first) budget on a figure as a table writes it, e.g. ``< 10 s``."""
    return next(b.text() for b in BUDGETS if b.figure == figure)
