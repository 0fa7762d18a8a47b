// Now: the live power flow between Solar, Battery, Grid, Home and Car (pushed by /api/v1/stream).
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { src, useFetch, useLive } from "./api.js";
import { liveFlows } from "./flows.js";
import { clock, duration, kw, kwh, pct } from "./format.js";

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
// What each node shows: when the device that measures one of these is not live, the node is greyed.
const NODE_QUANTITIES = {
  solar: ["solar_power"], grid: ["grid_power", "grid_status"], home: ["home_power"],
  battery: ["battery_soc", "battery_power"], car: ["ev_power", "ev_soc"],
};
const DEVICE_NAMES = { powerwall: "Powerwall", tesla: "Car", mqtt: "MQTT meters", virtual: "Virtual home" };

/** How long ago the device was last seen [s], on the hub's clock (live.now) plus the time since the event came. */
export function seenAgo(live, lastSeen, nowMs = Date.now()) {
  if (!lastSeen) return null;
  const hubNow = live.now ? Date.parse(live.now) : nowMs;
  return Math.max(0, (hubNow - Date.parse(lastSeen) + (nowMs - (live._at ?? nowMs))) / 1000);
}

/** The quantities no live device vouches for: those of stale or offline devices (all of them when such a device
 * has not said what it measures). */
function unvouched(live) {
  const out = new Set();
  for (const d of live.devices || []) {
    if (d.state === "live") continue;
    const names = d.quantities?.length ? d.quantities : Object.keys(live.values || {});
    names.forEach((n) => out.add(n));
  }
  return out;
}

const worst = (devices) => devices.some((d) => d.state === "offline") ? "offline"
  : devices.some((d) => d.state !== "live") ? "stale" : "live";

function ends(a, b) {
  const dx = b.x - a.x, dy = b.y - a.y, d = Math.hypot(dx, dy);
  const ux = dx / d, uy = dy / d;
  return [a.x + ux * R, a.y + uy * R, b.x - ux * R, b.y - uy * R];
}

function FlowPath({ name, from, to, at, w, stale }) {
  const a = NODES[from], b = NODES[to];
  let [x1, y1, x2, y2] = ends(a, b);
  // battery <-> grid share a line: the label says which way
  const reverse = name === "grid_to_battery";
  const active = w > ACTIVE_W;
  const lx = x1 + (x2 - x1) * at, ly = y1 + (y2 - y1) * at;
  if (reverse && !active) return null;
  const label = `${NODES[from].label} to ${NODES[to].label}: ${kw(w)}`;
  return html`<g class=${`flow ${NODES[from].cls}${active ? " active" : ""}${stale ? " stale" : ""}`} data-flow=${name}
      data-stale=${stale ? "true" : "false"} ...${src(LIVE, `flow.${name}`, Math.round(w * 1000) / 1000)}>
    <title>${label}${stale ? " (old figure: its device is not answering)" : ""} (from ${LIVE})</title>
    <line x1=${x1} y1=${y1} x2=${x2} y2=${y2} class="track" />
    ${active && html`<line x1=${x1} y1=${y1} x2=${x2} y2=${y2} class="dash" />`}
    ${active && html`<g class="flow-label" aria-label=${label}>
      <rect x=${lx - 29} y=${ly - 11} width="58" height="22" rx="11" />
      <text x=${lx} y=${ly + 4.5} text-anchor="middle" data-role="flow-kw">${kw(w)}</text></g>`}
  </g>`;
}

function Node({ id, main, sub, field, value, stale, children }) {
  const n = NODES[id];
  return html`<g class=${`node ${n.cls}${stale ? " stale" : ""}`} data-node=${id} data-stale=${stale ? "true" : "false"}
      ...${src(LIVE, field, value)}>
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

/** The line under the title: "● Live" only while every device is live and the stream is open; else what is old. */
function LiveStatus({ live, connected }) {
  const devices = live.devices || [];
  const bad = devices.filter((d) => d.state !== "live");
  const state = worst(devices);
  const newest = seenAgo(live, live.time);
  if (!bad.length && connected) {
    return html`<p class="muted" role="status" data-state="live">
      <span class="dot on" aria-hidden="true"></span>Live · updated <time datetime=${live.time}
        ...${src(LIVE, "time", live.time)}>${clock(live.time)}</time></p>`;
  }
  const parts = bad.map((d) => {
    const s = seenAgo(live, d.last_seen);
    const name = DEVICE_NAMES[d.name] ?? d.name;
    const what = d.state === "offline" ? "offline" : d.failing_since ? "not answering" : "no new reading";
    return html`<span class="seen" data-device=${d.name} data-state=${d.state}>${name} ${what} · <time
      datetime=${d.last_seen ?? ""} ...${src(LIVE, "devices.last_seen", d.last_seen)}>last seen ${
        s == null ? "never" : `${duration(s)} ago`}</time>${d.last_seen ? ` (${clock(d.last_seen, true)})` : ""}</span>`;
  });
  return html`<p class="muted" role="status" data-state=${connected ? state : "disconnected"}>
    <span class=${`dot ${state === "live" && !connected ? "off" : state === "offline" ? "off" : "stale"}`} aria-hidden="true"></span>
    ${!connected && html`<span>Reconnecting… · </span>`}
    ${parts.length ? parts : html`<span>last seen <time datetime=${live.time}>${duration(newest)} ago</time></span>`}
  </p>`;
}

/** Re-render every second, so that "last seen" keeps counting between events. */
function useSecondTick() {
  const [, set] = useState(0);
  useEffect(() => {
    const t = setInterval(() => set((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, []);
}

function StormLine() {
  const { data } = useFetch("/api/v1/storm", 15000);
  if (!data || !data.enabled) return null;
  const alert = data.alerts?.[0];
  const why = data.storm
    ? `holding the backup reserve at ${pct(data.set_reserve_percent ?? data.reserve_percent)}${alert ? ` for ${alert.event}` : ""}`
    : data.manual === false ? "switched off by you" : alert ? `watching: ${alert.event}` : "no alert for your area";
  return html`<a class=${`storm-line card${data.storm ? " on" : ""}`} href="#/system" id="now-storm" data-storm=${data.storm ? "on" : "off"}>
    <b data-api="/api/v1/storm" data-field="storm" data-value=${String(!!data.storm)}>Storm mode ${data.storm ? "on" : "off"}</b>
    <span class="muted">${why}${data.problem || data.device_error ? ` · ${data.device_error || data.problem}` : ""}</span></a>`;
}

const SUMMARY = "/api/v1/summary";
// Today's and lifetime energy rows: [label, energy_wh key]
const MADE = [["From the sun", "solar"], ["From the battery", "battery_discharge"], ["From the grid", "grid_import"]];
const USED = [["Used by the home", "home"], ["Of that, the car", "ev"], ["Into the battery", "battery_charge"],
  ["Sent to the grid", "grid_export"]];

function EnergyCard({ title, part, which, id }) {
  const e = part?.energy_wh || {};
  const row = ([label, key]) => html`<tr><th scope="row">${label}</th>
    <td ...${src(SUMMARY, `${which}.energy_wh.${key}`, e[key])}>${kwh(e[key])}</td></tr>`;
  return html`<div class="card energy-card" id=${id}><h2 class="small-h">${title}</h2>
    <table class="energy-table"><tbody>${MADE.map(row)}${USED.map(row)}</tbody></table></div>`;
}

function SummaryCards() {
  const { data } = useFetch(SUMMARY, 60000);
  if (!data) return null;
  const b = data.battery;
  return html`<div class="summary">
    <${EnergyCard} title="Today" part=${data.today} which="today" id="now-today" />
    <${EnergyCard} title=${`Since ${data.lifetime.since}`} part=${data.lifetime} which="lifetime" id="now-lifetime" />
    ${b && html`<${Tile} id="now-health" label="Battery health" api=${SUMMARY}
      value=${b.health_percent != null ? `${b.health_percent.toFixed(1)} %` : kwh(b.capacity_wh)}
      field=${b.health_percent != null ? "battery.health_percent" : "battery.capacity_wh"}
      raw=${b.health_percent ?? b.capacity_wh}
      note=${`${kwh(b.capacity_wh)}${b.rated_wh ? ` of ${kwh(b.rated_wh)} rated` : " full"}${b.read ? ` · read ${clock(b.read, true)}` : ""}`} />`}
  </div>`;
}

export function NowView() {
  const { live, connected } = useLive();
  useSecondTick();
  if (!live) return html`<p class="muted" role="status">Waiting for the hub…</p>`;
  const v = live.values || {};
  if (!live.time) return html`<p class="muted" role="status">No readings yet: the hub has not recorded anything.</p>`;
  const old = unvouched(live);
  const stale = Object.fromEntries(Object.entries(NODE_QUANTITIES).map(([id, names]) => [id, names.some((n) => old.has(n))]));
  const f = liveFlows(v);
  const batt = v.battery_power ?? 0, grid = v.grid_power ?? 0;
  const down = v.grid_status && v.grid_status !== "connected";
  const battWord = batt < -ACTIVE_W ? "Charging" : batt > ACTIVE_W ? "Discharging" : "Idle";
  const gridWord = down ? "Grid down" : grid > ACTIVE_W ? "Importing" : grid < -ACTIVE_W ? "Exporting" : "Idle";
  const summary = `Solar ${kw(v.solar_power)}, home ${kw(v.home_power)}, battery ${battWord.toLowerCase()} ` +
    `${kw(batt)} at ${pct(v.battery_soc)}, grid ${gridWord.toLowerCase()} ${kw(grid)}` +
    (v.ev_power != null ? `, car ${kw(v.ev_power)}` : "");
  return html`<section class="now" data-time=${live.time} data-state=${worst(live.devices || [])} aria-labelledby="now-h">
    <div class="view-head">
      <h1 id="now-h">Now</h1>
      <${LiveStatus} live=${live} connected=${connected} />
    </div>
    <${StormLine} />
    <div class="flow-wrap card">
      <svg viewBox="0 0 400 370" class="flow-svg" role="img" aria-label=${summary}>
        ${PATHS.map(([name, from, to, at]) => html`<${FlowPath} key=${name} name=${name} from=${from} to=${to} at=${at}
            w=${f[name]} stale=${stale[from] || stale[to]} />`)}
        <${Node} id="solar" main=${kw(v.solar_power)} field="values.solar_power" value=${v.solar_power} stale=${stale.solar} />
        <${Node} id="grid" main=${kw(grid)} sub=${gridWord} field="values.grid_power" value=${grid} stale=${stale.grid} />
        <${Node} id="home" main=${kw(v.home_power)} field="values.home_power" value=${v.home_power} stale=${stale.home} />
        <${Node} id="battery" main=${pct(v.battery_soc)} sub=${battWord}
            field="values.battery_soc" value=${v.battery_soc} stale=${stale.battery}>
          <${SocRing} soc=${v.battery_soc} reserve=${v.battery_reserve} />
        </${Node}>
        ${v.ev_soc != null && html`<${Node} id="car" main=${kw(v.ev_power ?? 0)} sub=${pct(v.ev_soc)}
            field="values.ev_power" value=${v.ev_power ?? 0} stale=${stale.car} />`}
      </svg>
    </div>
    <div class="tiles">
      <${Tile} label="Battery" value=${pct(v.battery_soc)} field="values.battery_soc" raw=${v.battery_soc} stale=${old.has("battery_soc")}
        note=${`${battWord}${batt ? ` ${kw(batt)}` : ""} · reserve ${pct(v.battery_reserve)}`} />
      <${Tile} label="Backup reserve" value=${pct(v.battery_reserve)} field="values.battery_reserve" raw=${v.battery_reserve}
        stale=${old.has("battery_reserve")}
        note="kept for outages" />
      <${Tile} label="Grid" value=${gridWord} field="values.grid_status" raw=${v.grid_status} stale=${old.has("grid_status")}
        note=${down ? "your battery is powering the home" : `${kw(grid)} ${grid >= 0 ? "in" : "out"}`} />
      ${v.ev_soc != null && html`<${Tile} label="Car" value=${pct(v.ev_soc)} field="values.ev_soc" raw=${v.ev_soc} stale=${old.has("ev_soc")}
        note=${`${EV_STATES[v.ev_charging_state] ?? v.ev_charging_state ?? ""}${v.ev_power > ACTIVE_W ? ` · ${kw(v.ev_power)}` : ""}`}
        href="#/car" />`}
    </div>
    <${SummaryCards} />
  </section>`;
}

export function Tile({ label, value, note, field, raw, api = LIVE, href, id, stale = false }) {
  const body = html`<span class="tile-label">${label}${stale ? html` <span class="pill">old</span>` : ""}</span>
    <b class="tile-value" ...${src(api, field, raw)}>${value}</b>
    ${note && html`<span class="tile-note">${note}</span>`}`;
  const cls = `tile card${stale ? " stale" : ""}`;
  return href
    ? html`<a class=${cls} href=${href} id=${id} data-stale=${stale ? "true" : undefined}>${body}</a>`
    : html`<div class=${cls} id=${id} data-stale=${stale ? "true" : undefined}>${body}</div>`;
}
