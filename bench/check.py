"""``run_all.py --check``: the figures of a run against ``budgets.BUDGETS``, and RESULTS.md's head section.

``figures(results)`` names each figure a budget bounds (the results are ``run_all.py``'s JSON);
``check`` gives every budget a verdict; ``exit_status`` is 1 when a binding budget is missed at the
size it is stated for, or a bench failed; ``head_section`` is the Markdown that ``write_head`` puts
between the markers in RESULTS.md, keeping the hand-written history below them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgets import BUDGETS, Budget

BEGIN = "<!-- head: begin. Written by `bench/run_all.py --check`; budgets in bench/budgets.py. Do not edit. -->"
END = "<!-- head: end -->"

PASS, MISS = "PASS", "MISS"
NOT_MEASURED, NOT_RUN, FAILED = "not measured", "not run", "FAILED"


@dataclass(frozen=True)
class Figure:
    value: float | None  # None: the bench ran but did not measure it (no InfluxDB, skipped part)
    size: float | None = None  # the size it was measured at, in its budget's size unit
    why: str = ""  # why there is no value


@dataclass(frozen=True)
class Verdict:
    budget: Budget
    figure: Figure | None
    status: str  # PASS, MISS, not measured, not run, FAILED
    value: float | None  # the value compared (scaled to the budget's size when the budget says so)
    full_size: bool  # measured at the size the budget is stated for (or the budget states none)

    @property
    def decides(self) -> bool:
        """Whether this verdict decides the exit status."""
        return self.status == FAILED or (self.status == MISS and self.budget.binding and self.full_size)

    def text(self) -> str:
        if self.status in (PASS, MISS):
            word = self.status if self.budget.binding else {PASS: "goal met", MISS: "goal not met"}[self.status]
            if not self.full_size and self.figure is not None:
                scaled = f", scaled to {_fmt(self.value)}" if self.value != self.figure.value else ""
                return f"({word} at {self.figure.size:g} of {self.budget.size:g} {self.budget.size_unit}{scaled})"
            return word
        why = self.figure.why if self.figure is not None and self.figure.why else ""
        return f"{self.status}: {why}" if why else self.status


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def figures(r: dict[str, Any]) -> dict[str, Figure]:
    """Every figure a budget names, from ``run_all.py``'s results; a bench that did not run gives none."""
    f: dict[str, Figure] = {}
    s = r.get("simulate", {})
    if "wall_s" in s.get("homegrid", {}):
        h, i, days = s["homegrid"], s.get("influx", {}), s["days"]
        why = i.get("skipped", "")
        f["simulate.wall_s"] = Figure(h["wall_s"], days)
        f["simulate.vs_influx"] = Figure(_ratio(h["wall_s"], i.get("store_s")), days, why)
        if "vs_reference" in s:  # a reference build run side by side (not done by run_all.py)
            f["simulate.vs_beb8b1f"] = Figure(s["vs_reference"], days)
    im = r.get("import", {})
    if "wall_s" in im.get("homegrid", {}):
        h, i, rows = im["homegrid"], im.get("influx", {}), im["rows"]
        why = i.get("skipped", "")
        f["import.wall_s"] = Figure(h["wall_s"], rows)
        f["import.peak_rss_mib"] = Figure(h["peak_rss_mib"], rows)
        f["import.vs_influx"] = Figure(_ratio(h["wall_s"], i.get("write_s")), rows, why)
        f["import.rss_vs_influx"] = Figure(_ratio(h["peak_rss_mib"], i.get("influxd_peak_rss_mib")), rows, why)
        f["import.disk_vs_influx"] = Figure(_ratio(h["disk_bytes"], i.get("disk_bytes")), rows, why)
    qs = r.get("queries", {})
    if "homegrid" in qs:
        days, i = qs["days"], qs.get("influx", {})
        why = i.get("skipped", "")
        for k, h in qs["homegrid"].items():
            if isinstance(h, dict) and "median_ms" in h:
                f[f"queries.{k}.median_ms"] = Figure(h["median_ms"], days)
                f[f"queries.{k}.p95_ms"] = Figure(h["p95_ms"], days)
                pwd = _get(i, "queries", "pwd", k, "p95_ms")
                f[f"queries.{k}.p95_vs_influx_pwd"] = Figure(_ratio(h["p95_ms"], pwd), days, why)
        f["queries.disk_vs_influx"] = Figure(_ratio(_get(qs, "store", "disk_bytes"), i.get("disk_bytes")), days, why)
    sv = r.get("serve", {})
    if "rss_max_mb" in sv.get("homegrid", {}):
        h, i = sv["homegrid"], sv.get("influx", {})
        why = i.get("skipped", "")
        f["serve.rss_max_mb"] = Figure(h["rss_max_mb"])
        f["serve.cpu_percent"] = Figure(h["cpu_percent"])
        f["serve.rss_vs_influx"] = Figure(_ratio(h["rss_max_mb"], i.get("rss_max_mb")), None, why)
        f["serve.cpu_vs_influx"] = Figure(_ratio(h["cpu_percent"], i.get("cpu_percent")), None, why)
    gw = r.get("gateways", {})
    lat = gw.get("latency")
    if lat:
        f["gateways.latency_p95_ms"] = Figure(lat["poll_to_store_ms"]["p95"])
    fl = gw.get("fleet")
    if fl:
        n, iv = fl["gateways"], fl["intervals_s"]
        f["gateways.fleet_missed_or_errors"] = Figure(fl["missed"] + fl["errors"] + fl["store_errors"], n)
        dev = max(abs(iv["max"] - fl["interval_s"]), abs(fl["interval_s"] - iv["min"])) if "max" in iv else None
        f["gateways.fleet_interval_dev_s"] = Figure(dev, n, "" if dev is not None else "no interval measured")
        f["gateways.fleet_lag_growth_s"] = Figure(fl["lag_growth_steady_max_s"], n)
        f["gateways.fleet_store_max_ms"] = Figure(_get(fl, "poll_to_store_ms", "max"), n)
    ou = r.get("outages", {})
    iv = ou.get("intervals", {})
    days = ou.get("days")
    if iv:
        def pr(m: dict[str, Any]) -> float:
            return float(min(m["precision"], m["recall"]))

        if "5" in iv:
            f["outages.long_5s_log_pr"] = Figure(pr(iv["5"]["status+log"]["long"]), days)
        for step in ("5", "30"):
            if step in iv:
                f[f"outages.interruptions_{step}s_pr"] = Figure(pr(iv[step]["status+log"]["all"]), days)
                f[f"outages.blips_{step}s_pr"] = Figure(pr(iv[step]["status+log"]["sub_poll"]), days)
        missed = sum(b["short_in_log"] - b["short_in_log_found"] for x in iv.values()
                     for b in (x["status+log"]["blips_by_log"], x["status+partial_log"]["blips_by_log"]))
        f["outages.blips_in_log_missed"] = Figure(missed, days)
        f["outages.months_disagreeing"] = Figure(
            sum(not x["status+log"]["monthly"]["counts_agree"] for x in iv.values()), days)
    if iv or "live" in ou:
        lost = 0
        for x in iv.values():
            for part in (x["restarts_status+log"], x.get("store")):
                for k in (part or {}).get("restarts", {}).values():
                    if isinstance(k, dict):  # one per kind of restart; beside them problems, problem_count, with_log
                        lost += k["lost"] + k["split"]
        if "live" in ou:
            lost += ou["live"]["outages"] - ou["live"]["ok"]
        f["outages.restart_events_lost"] = Figure(lost, days)
    web = r.get("web", {})
    days = web.get("days")
    if web.get("first_load"):
        fl = web["first_load"]
        f["web.first_load_p95_ms"] = Figure(fl["drawn_ms"]["p95"], days)
        f["web.page_kb"] = Figure(fl["weight"]["wire_bytes"] / 1000, days)
    for v, x in (_get(web, "views", "summary") or {}).items():
        for g in ("cold", "warm"):
            st = _get(x, g, "ms")
            f[f"web.{v}_{g}_p95_ms"] = Figure(st["p95"] if st else None, days, "" if st else "no sample")
    if web.get("watch"):
        f["web.watchers_cpu_percent"] = Figure(web["watch"]["fifty_cpu_percent"], days)
    ld = r.get("load", {})
    if ld.get("runs"):
        run = ld["runs"][-1]
        codes = run["api"]["codes"]
        failed = sum(n for c, n in codes.items() if not c.isdigit() or c.startswith("5"))
        f["load.failed_requests"] = Figure(failed, ld["clients"])
        f["load.hub_down"] = Figure(0 if run["alive_after"] else 1, ld["clients"])
    sp = r.get("serve_planner", {})
    if "rss_max_mb" in sp.get("homegrid", {}):
        f["planner.serve_rss_mb"] = Figure(sp["homegrid"]["rss_max_mb"])
        f["planner.serve_cpu_idle_percent"] = Figure(sp["homegrid"]["cpu_idle_percent"])
    mo = r.get("money", {})
    if mo.get("first_load"):
        f["money.first_paint_p95_ms"] = Figure(mo["first_load"]["drawn_ms"]["p95"], mo.get("days"))
    bl = r.get("bill", {})
    if "minute" in bl.get("homegrid", {}):
        f["bill.minute_ms"] = Figure(bl["homegrid"]["minute"]["median"], bl["minutes"])
        f["bill.hour_ms"] = Figure(bl["homegrid"]["hour"]["median"], bl["hours"])
        agreement = _get(bl, "sam", "minute_agreement")
        f["bill.minute_sam_months_off"] = Figure(
            agreement["months_off"] if agreement else None, bl["minutes"],
            "" if agreement else _get(bl, "sam", "skipped") or "SAM not run")
    pf = _get(r, "planner", "figures")
    if pf:
        for k in ("mpc_share_min", "mpc_above_emhass", "mpc_vs_self_consumption", "perfect_vs_lp"):
            f[f"planner.{k}"] = Figure(pf.get(k), pf.get("days"), "" if pf.get(k) is not None else "no case has it")
    st = r.get("store", {})
    if isinstance(st, dict) and ("sizes" in st or "import" in st):
        import bench_store

        for name, (value, size, why) in bench_store.figures(st).items():
            f[name] = Figure(value, size, why)
    fz = r.get("fuzz", {})
    if "failed_files" in fz:
        f["fuzz.failed_files"] = Figure(fz["failed_files"], fz["examples"])
    return f


def _bench(b: Budget) -> str:
    return b.figure.split(".", 1)[0]


def check(results: dict[str, Any], budgets: tuple[Budget, ...] = BUDGETS) -> list[Verdict]:
    """A verdict for every budget: PASS or MISS, or why there is no figure."""
    figs = figures(results)
    out = []
    for b in budgets:
        fig = figs.get(b.figure)
        bench = results.get(_bench(b))
        if fig is None:
            if isinstance(bench, dict) and "error" in bench:
                out.append(Verdict(b, Figure(None, why=str(bench["error"])[:200]), FAILED, None, False))
            elif isinstance(bench, dict):
                why = bench.get("skipped") or _get(bench, "homegrid", "skipped") or b.note or "not in this run"
                out.append(Verdict(b, Figure(None, why=str(why)), NOT_MEASURED, None, False))
            else:
                out.append(Verdict(b, None, NOT_RUN, None, False))
            continue
        if fig.value is None:
            out.append(Verdict(b, fig, NOT_MEASURED, None, False))
            continue
        full = b.size is None or fig.size is None or fig.size >= b.size
        value = float(fig.value)
        if b.scale and b.size is not None and fig.size:
            value *= b.size / fig.size
        out.append(Verdict(b, fig, PASS if b.met(value) else MISS, value, full))
    return out


def exit_status(verdicts: list[Verdict]) -> int:
    """1 when a binding budget is missed at its stated size or a bench failed, else 0."""
    return 1 if any(v.decides for v in verdicts) else 0


def _fmt(v: float | str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):  # a list of sizes, e.g. store_years "1,2,5,10"
        return v
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def head_section(results: dict[str, Any], verdicts: list[Verdict]) -> str:
    """RESULTS.md's generated head section: the commit, date, machine, and each budget's figure and verdict."""
    m = results.get("machine", {})
    dirty = m.get("git_dirty")
    commit = m.get("git_commit") or m.get("git_head") or "?"
    load = results.get("loadavg", {})
    status = exit_status(verdicts)
    lines = [
        "## At the head (`run_all.py --check`)",
        "",
        f"- Commit `{commit}`" + (" with uncommitted changes (dirty work tree)" if dirty else ", clean work tree")
        + f"; {m.get('date', '?')}.",
        f"- Machine: {m.get('nproc')} cores ({m.get('cpu')}), {m.get('ram_gib')} GiB RAM, Linux {m.get('kernel')}, "
        f"Python {m.get('python')}, SQLite {m.get('sqlite')}, numpy {m.get('numpy')}, "
        f"{m.get('influxdb') or 'no InfluxDB'}.",
        "- Command: `.venv/bin/python bench/run_all.py " + " ".join(results.get("argv", [])) + "`"
        + (f" ({results['total_s']:.0f} s)" if "total_s" in results else "")
        + (f"; load average {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end"
           if "start" in load and "end" in load else "") + ".",
        "- Sizes: " + ", ".join(f"{k} {_fmt(v)}" for k, v in results.get("sizes", {}).items()) + ".",
        f"- Check: **{'every binding budget met' if status == 0 else 'a budget missed or a bench failed'}** "
        f"(exit {status}). Goals (issue 2: ahead of InfluxDB) are reported and do not fail the check; a figure "
        "from a smaller run than its budget states is in parentheses and does not decide it.",
        "",
        "| issue | what | figure | budget | against | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        b = v.budget
        measured = v.figure.value if v.figure is not None else None
        lines.append(f"| {b.issue} | {b.what} | {_fmt(measured)} | {b.text()} | {b.against} | {v.text()} |")
    return "\n".join(lines)


def write_head(path: Path, section: str) -> None:
    """Put the section between the markers, or, the first time, right after the file's title."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = f"{BEGIN}\n\n{section}\n\n{END}"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, count=1, flags=re.S)
    else:
        head, sep, rest = text.partition("\n")
        text = f"{head}\n\n{block}\n{sep}{rest}" if sep else f"{head}\n\n{block}\n"
    path.write_text(text)
