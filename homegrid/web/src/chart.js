// The power chart of a day, by the minute (energy per hour, day or month is drawn as bars: bars.js): sources
// stacked above zero, sinks below, battery charge on the right axis, outages shaded, and a readout of the exact
// figures at the cursor (uPlot).
import { html } from "htm/preact";
import { useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { clock, kw, pct, tick, wallTicks, zone } from "./format.js";
import { memo } from "./memo.js";
import { knownWidth, rememberWidth } from "./width.js";

// [field of /api/v1/energy, label, css colour variable, sign]
export const LAYERS = [
  ["solar_w", "Solar", "--solar", 1],
  ["battery_discharge_w", "Battery out", "--battery", 1],
  ["grid_import_w", "Grid in", "--grid", 1],
  ["house_w", "House", "--home", -1],
  ["ev_w", "Car", "--car", -1],
  ["battery_charge_w", "Battery in", "--battery-in", -1],
  ["grid_export_w", "Grid out", "--grid-out", -1],
];

// what the chart asks /api/v1/energy for ("house_w" is home_w less ev_w)
export const CHART_FIELDS = ["solar_w", "battery_discharge_w", "grid_import_w", "home_w", "ev_w", "battery_charge_w",
  "grid_export_w", "soc_mean"];

/** The page's colours, read once per chart: css("--solar"). */
function colours() {
  const style = getComputedStyle(document.documentElement);
  return (name) => style.getPropertyValue(name).trim() || "#888";
}

function columns(energy) {
  const x = energy.start.map((s) => Date.parse(s) / 1000);
  const v = energy.values;
  const raw = {};
  for (const [f] of LAYERS) {
    raw[f] = f === "house_w" ? v.home_w.map((h, i) => (h == null ? null : h - (v.ev_w[i] ?? 0))) : v[f];
  }
  raw.soc_mean = v.soc_mean;
  // cumulative stacks, in kW, outermost drawn first so inner layers paint over it
  const stacks = [];
  for (const sign of [1, -1]) {
    const layers = LAYERS.filter((l) => l[3] === sign);
    let acc = x.map(() => 0);
    const cum = layers.map(([f]) => {
      acc = acc.map((a, i) => (raw[f][i] == null || a == null ? null : a + (sign * raw[f][i]) / 1000));
      return acc;
    });
    layers.forEach((l, i) => stacks.push({ layer: l, data: cum[i], depth: i }));
  }
  stacks.sort((a, b) => b.depth - a.depth);
  return { x, raw, stacks };
}

/** Drawn once its energy and outages are in: the parent's renders with the same replies leave it alone. */
export const PowerChart = memo(function PowerChart({ energy, outages, step, theme }) {
  const box = useRef(null);
  const plot = useRef(null);
  const [idx, setIdx] = useState(null);
  const cols = useMemo(() => (energy ? columns(energy) : null), [energy]);

  // built in the same frame as its element (a plain effect would wait for a paint)
  useLayoutEffect(() => {
    if (!cols || !box.current) return undefined;
    const css = colours();
    const tz = zone();
    const width = knownWidth("chart") ?? rememberWidth("chart", box.current.clientWidth);
    const from = new Date(energy.from).getTime() / 1000, to = new Date(energy.to).getTime() / 1000;
    const spans = (outages || []).map((o) => [new Date(o.start).getTime() / 1000, new Date(o.end ?? energy.to).getTime() / 1000]);
    const opts = {
      width,
      height: Math.max(220, Math.min(340, Math.round(width * 0.5))),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      scales: { x: { time: true, range: [from, to] }, kw: { auto: true }, soc: { range: [0, 100] } },
      axes: [
        { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") },
          // a few days: ticks on the site's wall clock, evenly across a DST change (uPlot's own may skip)
          ...(to - from <= 4 * 86400 ? { splits: (u, i, min, max, incr) => wallTicks(min, max, incr) } : {}),
          values: (u, splits, ax, space, incr) => splits.map((ts) => tick(new Date(ts * 1000), incr)) },
        { scale: "kw", label: "kW", stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") },
          values: (u, vals) => vals.map((v) => Math.abs(v).toString()) },
        { scale: "soc", side: 1, label: "battery %", stroke: css("--muted"), grid: { show: false }, values: (u, vals) => vals.map((v) => `${v}`) },
      ],
      series: [
        {},
        ...cols.stacks.map((s) => ({ label: s.layer[1], scale: "kw", stroke: css(s.layer[2]), fill: css(s.layer[2]),
          width: 0, points: { show: false } })),
        { label: "Battery charge", scale: "soc", stroke: css("--soc"), width: 2, points: { show: false } },
      ],
      hooks: {
        drawClear: [(u) => {
          const { ctx, bbox } = u;
          ctx.save();
          ctx.fillStyle = css("--outage");
          for (const [a, b] of spans) {
            const x0 = Math.max(bbox.left, u.valToPos(a, "x", true));
            const x1 = Math.min(bbox.left + bbox.width, u.valToPos(b, "x", true));
            if (x1 > x0 - 1) ctx.fillRect(x0, bbox.top, Math.max(2, x1 - x0), bbox.height);
          }
          ctx.restore();
        }],
        setCursor: [(u) => setIdx(u.cursor.idx ?? null)],
        // what is drawn, for tests and tools: the x range [s] and the time axis' ticks with their labels
        draw: [(u) => {
          const el = box.current, ax = u.axes[0];
          if (!el) return;
          el.dataset.xMin = String(u.scales.x.min);
          el.dataset.xMax = String(u.scales.x.max);
          el.dataset.xTicks = JSON.stringify((ax._splits ?? []).map((s, k) => [s, ax._values?.[k] ?? null]));
        }],
      },
    };
    const data = [cols.x, ...cols.stacks.map((s) => s.data), cols.raw.soc_mean];
    plot.current = new uPlot(opts, data, box.current);
    const ro = new ResizeObserver(() => {
      const w = box.current && rememberWidth("chart", box.current.clientWidth);
      if (w && plot.current && Math.abs(w - plot.current.width) > 2) {
        plot.current.setSize({ width: w, height: Math.max(220, Math.min(340, Math.round(w * 0.5))) });
      }
    });
    ro.observe(box.current);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [energy, outages, step, theme]);

  const i = idx ?? null;
  return html`<div class="chart-block">
    <div ref=${box} class="chart" role="img" aria-label="Power over the period: sources above zero, where it went below, battery charge as a line. Hover or tap for exact figures."></div>
    <div class="readout" aria-live="polite">
      ${cols && i != null && cols.x[i] != null
        ? html`<b>${clock(new Date(cols.x[i] * 1000), true)}</b>
          ${LAYERS.map(([f, label, color]) => html`<span class="key"><i style=${`background:var(${color})`}></i>${label}
            <b data-api="/api/v1/energy" data-field=${f}>${cols.raw[f][i] == null ? "–" : kw(cols.raw[f][i])}</b></span>`)}
          <span class="key"><i class="line" style="background:var(--soc)"></i>Battery <b data-api="/api/v1/energy" data-field="soc_mean">${pct(cols.raw.soc_mean[i])}</b></span>`
        : html`<span class="muted">${LAYERS.map(([, label, color]) => html`<span class="key"><i style=${`background:var(${color})`}></i>${label}</span>`)}
          <span class="key"><i class="line" style="background:var(--soc)"></i>Battery %</span>
          <span class="key"><i style="background:var(--outage)"></i>Outage</span></span>`}
    </div>
  </div>`;
});
