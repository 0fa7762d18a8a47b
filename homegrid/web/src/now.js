// Now: the live power flow between Solar, Battery, Grid, Home and Car (pushed by /api/v1/stream).
import { html } from "htm/preact";
import { src, useLive } from "./api.js";
import { liveFlows } from "./flows.js";
import { clock, kw, pct } from "./format.js";

const LIVE = "/api/v1/live";
const NODES = {
  solar: { x: 200, y: 52, label: "Solar", cls: "solar" },
  grid: { x: 58, y: 170, label: "Grid", cls: "grid" },
  home: { x: 342, y: 170, label: "Home", cls: "home" },
  battery: { x: 200, y: 288, label: "Battery", cls: "battery" },
  car: { x: 342, y: 318, label: "Car", cls: "car" },
};
// Each path: from, to, where its label sits (0..1 along it), and its name in liveFlows.
const PATHS = [
  ["solar_to_home", "solar", "home", 0.5],
  ["solar_to_grid", "solar", "grid", 0.5],
  ["solar_to_battery", "solar", "battery", 0.3],
  ["grid_to_home", "grid", "home", 0.3],
  ["battery_to_home", "battery", "home", 0.5],
  ["battery_to_grid", "battery", "grid", 0.5],
  ["grid_to_battery", "grid", "battery", 0.5],
  ["home_to_car", "home", "car", 0.5],
];
const R = 40;
const ACTIVE_W = 10;

function ends(a, b) {
  const dx = b.x - a.x, dy = b.y - a.y, d = Math.hypot(dx, dy);
  const ux = dx / d, uy = dy / d;
  return [a.x + ux * R, a.y + uy * R, b.x - ux * R, b.y - uy * R];
}

function FlowPath({ name, from, to, at, w }) {
  const a = NODES[from], b = NODES[to];
  let [x1, y1, x2, y2] = ends(a, b);
  // battery <-> grid share a line: the label says which way
  const reverse = name === "grid_to_battery";
  const active = w > ACTIVE_W;
  const lx = x1 + (x2 - x1) * at, ly = y1 + (y2 - y1) * at;
  if (reverse && !active) return null;
  const label = `${NODES[from].label} to ${NODES[to].label}: ${kw(w)}`;
  return html`<g class=${`flow ${NODES[from].cls}${active ? " active" : ""}`} data-flow=${name}
      ...${src(LIVE, `flow.${name}`, Math.round(w * 1000) / 1000)}>
    <title>${label} (from ${LIVE})</title>
    <line x1=${x1} y1=${y1} x2=${x2} y2=${y2} class="track" />
    ${active && html`<line x1=${x1} y1=${y1} x2=${x2} y2=${y2} class="dash" />`}
    ${active && html`<g class="flow-label" aria-label=${label}>
      <rect x=${lx - 29} y=${ly - 11} width="58" height="22" rx="11" />
      <text x=${lx} y=${ly + 4.5} text-anchor="middle" data-role="flow-kw">${kw(w)}</text></g>`}
  </g>`;
}

function Node({ id, main, sub, field, value, children }) {
  const n = NODES[id];
  return html`<g class=${`node ${n.cls}`} data-node=${id} ...${src(LIVE, field, value)}>
    <circle cx=${n.x} cy=${n.y} r=${R} class="disc" />
    ${children}
    <text x=${n.x} y=${n.y - 8} text-anchor="middle" class="node-name">${n.label}</text>
    <text x=${n.x} y=${n.y + 10} text-anchor="middle" class="node-kw" data-role="node-kw">${main}</text>
    ${sub && html`<text x=${n.x} y=${n.y + 25} text-anchor="middle" class="node-sub">${sub}</text>`}
  </g>`;
}

function SocRing({ soc, reserve }) {
  const n = NODES.battery, r = R + 5, c = 2 * Math.PI * r;
  const frac = Math.max(0, Math.min(1, (soc ?? 0) / 100));
  const angle = ((reserve ?? 0) / 100) * 2 * Math.PI - Math.PI / 2;
  return html`<g class="soc-ring">
    <circle cx=${n.x} cy=${n.y} r=${r} class="ring-bg" />
    <circle cx=${n.x} cy=${n.y} r=${r} class="ring" stroke-dasharray=${`${c * frac} ${c}`}
      transform=${`rotate(-90 ${n.x} ${n.y})`} />
    ${reserve != null && html`<line class="reserve-tick" x1=${n.x + Math.cos(angle) * (r - 6)}
      y1=${n.y + Math.sin(angle) * (r - 6)} x2=${n.x + Math.cos(angle) * (r + 6)} y2=${n.y + Math.sin(angle) * (r + 6)} />`}
  </g>`;
}

export const EV_STATES = {
  disconnected: "Not plugged in", stopped: "Plugged in, not charging", starting: "Starting to charge",
  charging: "Charging", complete: "Charged", no_power: "Plugged in, no power", unknown: "Unknown",
};

export function NowView() {
  const { live, connected } = useLive();
  if (!live) return html`<p class="muted" role="status">Waiting for the hub…</p>`;
  const v = live.values || {};
  if (!live.time) return html`<p class="muted" role="status">No readings yet: the hub has not recorded anything.</p>`;
  const f = liveFlows(v);
  const batt = v.battery_power ?? 0, grid = v.grid_power ?? 0;
  const down = v.grid_status && v.grid_status !== "connected";
  const battWord = batt < -ACTIVE_W ? "Charging" : batt > ACTIVE_W ? "Discharging" : "Idle";
  const gridWord = down ? "Grid down" : grid > ACTIVE_W ? "Importing" : grid < -ACTIVE_W ? "Exporting" : "Idle";
  const summary = `Solar ${kw(v.solar_power)}, home ${kw(v.home_power)}, battery ${battWord.toLowerCase()} ` +
    `${kw(batt)} at ${pct(v.battery_soc)}, grid ${gridWord.toLowerCase()} ${kw(grid)}` +
    (v.ev_power != null ? `, car ${kw(v.ev_power)}` : "");
  return html`<section class="now" data-time=${live.time} aria-labelledby="now-h">
    <div class="view-head">
      <h1 id="now-h">Now</h1>
      <p class="muted" role="status">
        <span class=${`dot ${connected ? "on" : "off"}`} aria-hidden="true"></span>
        ${connected ? "Live" : "Reconnecting…"} · updated <time datetime=${live.time}
          ...${src(LIVE, "time", live.time)}>${clock(live.time)}</time>
      </p>
    </div>
    <div class="flow-wrap card">
      <svg viewBox="0 0 400 370" class="flow-svg" role="img" aria-label=${summary}>
        ${PATHS.map(([name, from, to, at]) => html`<${FlowPath} key=${name} name=${name} from=${from} to=${to} at=${at} w=${f[name]} />`)}
        <${Node} id="solar" main=${kw(v.solar_power)} field="values.solar_power" value=${v.solar_power} />
        <${Node} id="grid" main=${kw(grid)} sub=${gridWord} field="values.grid_power" value=${grid} />
        <${Node} id="home" main=${kw(v.home_power)} field="values.home_power" value=${v.home_power} />
        <${Node} id="battery" main=${pct(v.battery_soc)} sub=${battWord}
            field="values.battery_soc" value=${v.battery_soc}>
          <${SocRing} soc=${v.battery_soc} reserve=${v.battery_reserve} />
        </${Node}>
        ${v.ev_soc != null && html`<${Node} id="car" main=${kw(v.ev_power ?? 0)} sub=${pct(v.ev_soc)}
            field="values.ev_power" value=${v.ev_power ?? 0} />`}
      </svg>
    </div>
    <div class="tiles">
      <${Tile} label="Battery" value=${pct(v.battery_soc)} field="values.battery_soc" raw=${v.battery_soc}
        note=${`${battWord}${batt ? ` ${kw(batt)}` : ""} · reserve ${pct(v.battery_reserve)}`} />
      <${Tile} label="Backup reserve" value=${pct(v.battery_reserve)} field="values.battery_reserve" raw=${v.battery_reserve}
        note="kept for outages" />
      <${Tile} label="Grid" value=${gridWord} field="values.grid_status" raw=${v.grid_status}
        note=${down ? "your battery is powering the home" : `${kw(grid)} ${grid >= 0 ? "in" : "out"}`} />
      ${v.ev_soc != null && html`<${Tile} label="Car" value=${pct(v.ev_soc)} field="values.ev_soc" raw=${v.ev_soc}
        note=${`${EV_STATES[v.ev_charging_state] ?? v.ev_charging_state ?? ""}${v.ev_power > ACTIVE_W ? ` · ${kw(v.ev_power)}` : ""}`}
        href="#/car" />`}
    </div>
  </section>`;
}

export function Tile({ label, value, note, field, raw, api = LIVE, href, id }) {
  const body = html`<span class="tile-label">${label}</span>
    <b class="tile-value" ...${src(api, field, raw)}>${value}</b>
    ${note && html`<span class="tile-note">${note}</span>`}`;
  return href
    ? html`<a class="tile card" href=${href} id=${id}>${body}</a>`
    : html`<div class="tile card" id=${id}>${body}</div>`;
}
