// Energy per local bin (hour, day or month) as bars: where it came from stacked above zero, where it went below,
// one slot per bin of the period (a 23- or 25-hour day is one bar with that day's energy), the bin still going
// drawn faded in a dashed outline. Every bar and segment carries its bin and value (data-bin, data-value).
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { useWidth } from "./width.js";
import { src } from "./api.js";
import { addDays, daysBetween } from "./dates.js";
import { dateFormat, kwh, zone } from "./format.js";
import { memo } from "./memo.js";
import { pointsOf } from "./series.js";

const API = "/api/v1/energy";
// [field of /api/v1/energy (home-ev: the home without the car), label, css colour variable]
export const SOURCES = [["solar", "Solar", "--solar"], ["battery_discharge", "Battery out", "--battery"],
  ["grid_import", "Grid in", "--grid"]];
export const USES = [["home-ev", "House", "--home"], ["ev", "Car", "--car"], ["battery_charge", "Battery in", "--battery-in"],
  ["grid_export", "Grid out", "--grid-out"]];
// what the bars ask /api/v1/energy for
export const BAR_FIELDS = ["solar", "battery_discharge", "grid_import", "home", "ev", "battery_charge", "grid_export"];

export function valueOf(point, field) {
  if (field === "home-ev") return point.home == null ? null : point.home - (point.ev ?? 0);
  return point[field];
}

const noon = (d) => new Date(`${d}T12:00:00Z`);
const utc = (opts) => dateFormat("UTC", opts);
const monthsOf = (from, to) => {
  const out = [];
  for (let y = +from.slice(0, 4), m = +from.slice(5, 7); `${y}-${String(m).padStart(2, "0")}` <= to.slice(0, 7); m === 12 ? (y++, m = 1) : m++) {
    out.push(`${y}-${String(m).padStart(2, "0")}`);
  }
  return out;
};

/** Every bin of a period, in order, as { key, bin, label, long }: ``key`` matches a point of /api/v1/energy (its
 * local date, its month "YYYY-MM", or for hours its start [s]), ``bin`` names it (for hours an ISO instant);
 * ``from``/``to`` are the period's local dates (hours: the reply's instants). */
export function binsOf(step, from, to, energy) {
  if (step === "hour") {
    const hour = dateFormat(zone(), { hour: "2-digit", hourCycle: "h23" });
    const full = dateFormat(zone(), { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23", timeZoneName: "short" });
    const a = new Date(energy.from).getTime() / 1000, b = new Date(energy.to).getTime() / 1000;
    const out = [];
    for (let t = a; t < b; t += 3600) out.push({ key: t, bin: new Date(t * 1000).toISOString(), label: hour.format(new Date(t * 1000)), long: full.format(new Date(t * 1000)) });
    return out;
  }
  if (step === "month") {
    return monthsOf(from, to).map((m) => ({ key: m, bin: m, label: utc({ month: "short" }).format(noon(`${m}-01`)),
      long: utc({ month: "long", year: "numeric" }).format(noon(`${m}-01`)) }));
  }
  const n = daysBetween(from, to) + 1;
  const short = n <= 7 ? { weekday: "short", day: "numeric" } : { day: "numeric" };
  return Array.from({ length: n }, (_, i) => addDays(from, i)).map((d) => ({
    key: d, bin: d, label: utc(short).format(noon(d)), long: utc({ weekday: "short", day: "numeric", month: "short", year: "numeric" }).format(noon(d)) }));
}

const keyOf = (step, p) => (step === "hour" ? new Date(p.start).getTime() / 1000 : p.start);

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

export const EnergyBars = memo(function EnergyBars({ energy, step, from, to, label }) {
  const [box, width] = useWidth("bars");
  const [idx, setIdx] = useState(null);

  const bins = binsOf(step, from, to, energy);
  const byKey = new Map(pointsOf(energy).map((p) => [keyOf(step, p), { p, i: p.i }]));
  const rows = bins.map((b) => ({ ...b, ...(byKey.get(b.key) ?? {}) }));
  const total = (p, layers) => layers.reduce((s, [f]) => s + Math.max(0, valueOf(p, f) ?? 0), 0);
  const up = Math.max(0, ...rows.filter((r) => r.p).map((r) => total(r.p, SOURCES))) / 1000; // [kWh]
  const down = Math.max(0, ...rows.filter((r) => r.p).map((r) => total(r.p, USES))) / 1000;

  const W = Math.max(240, width || 600), H = W < 600 ? 220 : 280;
  const left = 44, right = 8, top = 18;
  const bottom = 24; // the x labels' room (a second line of them, on a narrow week, adds 14 px below)
  const unit = niceStep(up + down || 1, H < 250 ? 4 : 6);
  const yMax = Math.max(unit, Math.ceil(up / unit) * unit), yMin = -Math.max(unit, Math.ceil(down / unit) * unit);
  const y = (v) => top + ((yMax - v) / (yMax - yMin)) * (H - top - bottom);
  const slot = (W - left - right) / Math.max(1, rows.length);
  const barW = Math.max(2, Math.min(48, slot * 0.72));
  // a label every n slots, so that none overlap; a narrow week's "Mon 30" on two lines
  const longest = Math.max(...rows.map((r) => r.label.length));
  const twoLines = longest > 4 && rows.every((r) => r.label.includes(" ")) && slot < longest * 7 + 8;
  const every = Math.max(1, Math.ceil((twoLines ? 34 : longest * 7 + 6) / slot));
  const ticks = [];
  for (let v = yMin; v <= yMax + 1e-9; v += unit) ticks.push(Math.round(v * 1000) / 1000);

  const segments = (p, layers, sign) => {
    let acc = 0;
    return layers.map(([f, name, color]) => {
      const v = valueOf(p, f);
      const kwhv = Math.max(0, v ?? 0) / 1000;
      const y0 = y(sign * acc), y1 = y(sign * (acc + kwhv));
      acc += kwhv;
      return html`<rect class="seg" data-layer=${f} x="0" y=${Math.min(y0, y1)} width=${barW} height=${Math.abs(y1 - y0)}
        fill=${`var(${color})`} ...${src(API, f, v)} />`;
    });
  };
  const words = (r) => `${r.long}${r.p?.partial ? " (so far)" : ""}: ${[...SOURCES, ...USES].map(([f, name]) =>
    `${name} ${kwh(valueOf(r.p, f))}`).join(", ")}`;
  const pick = (ev) => {
    const rect = box.current?.getBoundingClientRect();
    if (!rect) return;
    const i = Math.floor((ev.clientX - rect.left - left) / slot);
    setIdx(i >= 0 && i < rows.length ? i : null);
  };
  const key = (ev) => {
    const move = { ArrowRight: 1, ArrowLeft: -1, Home: -rows.length, End: rows.length }[ev.key];
    if (!move) return;
    ev.preventDefault();
    setIdx((i) => Math.max(0, Math.min(rows.length - 1, (i ?? (move > 0 ? -1 : rows.length)) + move)));
  };
  const shown = idx != null ? rows[idx] : null;

  return html`<div class="bars-block">
    <div ref=${box} class="bars" data-step=${step} data-bins=${rows.length} onPointerMove=${pick} onPointerLeave=${() => setIdx(null)}
        tabindex="0" role="group" aria-label=${`${label}; the arrow keys step through the bars`} onKeyDown=${key} onBlur=${() => setIdx(null)}>
      ${width > 0 && html`<svg width=${W} height=${H + (twoLines ? 14 : 0)} viewBox=${`0 0 ${W} ${H + (twoLines ? 14 : 0)}`} role="img"
          aria-label=${`${label}: where the energy came from above the line, where it went below. Hover or tap for exact figures.`}>
        ${ticks.map((v) => html`<g class="ytick"><line x1=${left} x2=${W - right} y1=${y(v)} y2=${y(v)} class=${v === 0 ? "zero" : "grid"} />
          <text x=${left - 6} y=${y(v)} dy="0.32em" text-anchor="end">${Math.abs(v)}</text></g>`)}
        <text class="unit" x="4" y="11">kWh</text>
        ${rows.map((r, i) => {
          const x = left + i * slot + (slot - barW) / 2;
          const [first, second] = twoLines ? r.label.split(" ") : [r.label, null];
          const lab = i % every === 0 && html`<text class="xtick" x=${x + barW / 2} y=${H - 7} text-anchor="middle">${first}${second
            && html`<tspan x=${x + barW / 2} dy="1.15em">${second}</tspan>`}</text>`;
          if (!r.p) return html`<g class="bar empty" data-bin=${r.bin} data-empty="true">${lab}</g>`;
          const ups = total(r.p, SOURCES) / 1000, downs = total(r.p, USES) / 1000;
          return html`<g class=${`bar${r.p.partial ? " partial" : ""}${idx === i ? " on" : ""}`} data-bin=${r.p.start}
              data-index=${r.i} data-start=${r.p.start} data-end=${r.p.end} data-partial=${r.p.partial ? "true" : "false"}
              data-api=${API} data-sources=${ups * 1000} data-uses=${downs * 1000}>
            <title>${words(r)}</title>
            <g transform=${`translate(${x},0)`}>
              ${segments(r.p, SOURCES, 1)}${segments(r.p, USES, -1)}
              ${r.p.partial && html`<rect class="partial-mark" x="-1.5" y=${y(ups) - 1.5} width=${barW + 3}
                height=${y(-downs) - y(ups) + 3} />`}
            </g>
            ${r.p.partial && slot >= 26 && html`<text class="so-far" x=${x + barW / 2} y=${y(ups) - 4} text-anchor="middle">so far</text>`}
            ${lab}
          </g>`;
        })}
      </svg>`}
    </div>
    <div class="readout" aria-live="polite">
      ${shown
        ? html`<b>${shown.long}${shown.p?.partial ? " (so far)" : ""}</b>
          ${shown.p
            ? [...SOURCES, ...USES].map(([f, name, color]) => html`<span class="key"><i style=${`background:var(${color})`}></i>${name}
              <b ...${src(API, f, valueOf(shown.p, f))}>${kwh(valueOf(shown.p, f))}</b></span>`)
            : html`<span class="muted">no data</span>`}`
        : html`<span class="muted">${[...SOURCES, ...USES].map(([, name, color]) => html`<span class="key"><i style=${`background:var(${color})`}></i>${name}</span>`)}
          <span class="key"><i class="partial-key"></i>So far (still going)</span></span>`}
    </div>
  </div>`;
});
