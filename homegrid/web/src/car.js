// Car: level, range, charging state and power, time to full, and where its charge came from.
import { html } from "htm/preact";
import { src, useFetch, useLive } from "./api.js";
import { addDays, span } from "./dates.js";
import { distance, duration, kw, kwh, pct } from "./format.js";
import { EV_STATES, Tile } from "./now.js";

const LIVE = "/api/v1/live";
const SOURCES = [["solar", "Sun", "--solar"], ["battery", "Battery", "--battery"], ["grid", "Grid", "--grid"],
  ["unknown", "Unknown", null]];

/** Whole units ``parts`` (summing to ``total``) rounded so that they still add up to ``total`` rounded: the
 * largest remainders take the units left over (Hamilton's method). */
export function roundParts(parts, total, scale) {
  const want = Math.round(total * scale);
  const floors = parts.map((p) => Math.floor(Math.max(0, p) * scale));
  let left = want - floors.reduce((a, b) => a + b, 0);
  const order = parts.map((p, i) => [Math.max(0, p) * scale - floors[i], i]).sort((a, b) => b[0] - a[0]);
  for (let j = 0; left > 0 && order.length; j = (j + 1) % order.length, left--) floors[order[j][1]] += 1;
  return floors.map((f) => f / scale);
}

function Sources({ label, from, to, id }) {
  const url = `/api/v1/report?from=${from}&to=${to}`;
  const { data, error } = useFetch(url);
  const s = data?.ev_sources_wh;
  const total = data?.energy_wh?.ev ?? 0; // the car's energy: its sources and the unknown part add up to it
  const shown = SOURCES.filter(([k]) => k !== "unknown" || (s?.unknown ?? 0) > 0.5);
  const keys = shown.map(([k]) => k);
  const values = s ? keys.map((k) => s[k] ?? 0) : [];
  const decimals = total / 1000 < 1 ? 2 : total / 1000 < 100 ? 1 : 0;
  const kwhShown = roundParts(values.map((v) => v / 1000), total / 1000, 10 ** decimals);
  const pctShown = total > 0 ? roundParts(values.map((v) => (100 * v) / total), 100, 1) : [];
  return html`<div class="card sources" id=${id} data-from=${from} data-to=${to} data-ev=${total}>
    <h2>${label}</h2>
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
    ${s && (total > 1
      ? html`<div class="bar" role="img" aria-label=${shown.map(([, n], i) => `${n} ${pctShown[i]} %`).join(", ")}>
          ${shown.map(([k, , c], i) => html`<span class=${c ? null : "unknown"} style=${`width:${(100 * values[i]) / total}%${c ? `;background:var(${c})` : ""}`}></span>`)}
        </div>
        <ul class="legend">
          ${shown.map(([k, n, c], i) => html`<li data-source=${k}><i class=${c ? null : "unknown"} style=${c ? `background:var(${c})` : ""}></i>${n}
            <b ...${src("/api/v1/report", `ev_sources_wh.${k}`, s[k])}>${pctShown[i]} %</b>
            <span class="muted" data-kwh=${kwhShown[i].toFixed(decimals)}>${kwhShown[i].toFixed(decimals)} kWh</span></li>`)}
        </ul>
        <p class="muted small"><span ...${src("/api/v1/report", "energy_wh.ev", total)} class="car-total">${kwh(total)}</span> charged at home${
          keys.includes("unknown") ? "; unknown: charge no source can be named for (a gap in the home's readings, meters that disagree)" : ""}. Charging away from home is not metered here.</p>`
      : html`<p class="muted">The car did not charge at home in this period.</p>`)}
  </div>`;
}

export function CarView({ today }) {
  const { live } = useLive();
  const v = live?.values || {};
  const [weekFrom] = span("week", today);
  const [monthFrom] = span("month", today);
  if (!live) return html`<p class="muted" role="status">Waiting for the hub…</p>`;
  if (v.ev_soc == null) return html`<section><h1>Car</h1><p class="muted">No car is configured or it has not been read yet.</p></section>`;
  const state = v.ev_charging_state ?? "unknown";
  const charging = state === "charging" || state === "starting";
  const range = v.ev_range;
  return html`<section class="car" aria-labelledby="car-h" data-time=${live.time}>
    <div class="view-head"><h1 id="car-h">Car</h1>
      <p class="muted">${v.ev_at_home === false ? "Away from home" : "At home"}</p></div>
    <div class="card car-card" id="car-card" data-state=${state}>
      <div class="car-level">
        <div class="level-bar" role="meter" aria-label="Charge level" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(v.ev_soc)}>
          <span class=${charging ? "fill charging" : "fill"} style=${`width:${v.ev_soc}%`}></span>
          ${v.ev_charge_limit != null && html`<span class="limit" style=${`left:${v.ev_charge_limit}%`} title=${`charge limit ${pct(v.ev_charge_limit)}`}></span>`}
        </div>
        <b class="big" id="car-soc" ...${src(LIVE, "values.ev_soc", v.ev_soc)}>${pct(v.ev_soc)}</b>
        <span class="muted">limit <span ...${src(LIVE, "values.ev_charge_limit", v.ev_charge_limit)}>${pct(v.ev_charge_limit)}</span></span>
      </div>
      <div class="tiles">
        <${Tile} id="car-state" label="State" value=${EV_STATES[state] ?? state} field="values.ev_charging_state" raw=${state} />
        <${Tile} id="car-power" label="Charging power" value=${kw(v.ev_power ?? 0)} field="values.ev_power" raw=${v.ev_power ?? 0} />
        <${Tile} id="car-range" label="Range" value=${distance(range)} field="values.ev_range" raw=${range} />
        <${Tile} id="car-ttf" label="Time to full" value=${charging ? duration(v.ev_time_to_full) : "–"} field="values.ev_time_to_full" raw=${v.ev_time_to_full} />
      </div>
    </div>
    <h2 class="section">Where its charge came from</h2>
    <div class="two">
      <${Sources} id="car-week" label="This week" from=${weekFrom} to=${today} />
      <${Sources} id="car-month" label="This month" from=${monthFrom} to=${today} />
    </div>
    <p class="muted small">Each minute the car's share of the home's sources, from <code>/api/v1/report</code> (<code>ev_sources_wh</code>, whose parts add up to <code>energy_wh.ev</code>). Last 30 days: <a href=${`#/history/custom/${addDays(today, -29)}/${today}`}>history</a>.</p>
  </section>`;
}
