// Car: level, range, charging state and power, time to full, and where its charge came from.
import { html } from "htm/preact";
import { src, useFetch, useLive } from "./api.js";
import { addDays, span } from "./dates.js";
import { duration, km, kw, kwh, pct } from "./format.js";
import { EV_STATES, Tile } from "./now.js";

const LIVE = "/api/v1/live";
const SOURCES = [["solar", "Sun", "--solar"], ["battery", "Battery", "--battery"], ["grid", "Grid", "--grid"]];

function Sources({ label, from, to, id }) {
  const url = `/api/v1/report?from=${from}&to=${to}`;
  const { data, error } = useFetch(url);
  const s = data?.ev_sources_wh;
  const total = s ? s.solar + s.battery + s.grid : 0;
  return html`<div class="card sources" id=${id} data-from=${from} data-to=${to}>
    <h2>${label}</h2>
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
    ${s && (total > 1
      ? html`<div class="bar" role="img" aria-label=${SOURCES.map(([k, n]) => `${n} ${Math.round((100 * s[k]) / total)} %`).join(", ")}>
          ${SOURCES.map(([k, , c]) => html`<span style=${`width:${(100 * s[k]) / total}%;background:var(${c})`}></span>`)}
        </div>
        <ul class="legend">
          ${SOURCES.map(([k, n, c]) => html`<li data-source=${k}><i style=${`background:var(${c})`}></i>${n}
            <b ...${src("/api/v1/report", `ev_sources_wh.${k}`, s[k])}>${Math.round((100 * s[k]) / total)} %</b>
            <span class="muted">${kwh(s[k])}</span></li>`)}
        </ul>
        <p class="muted small">${kwh(total)} charged at home.</p>`
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
        <${Tile} id="car-range" label="Range" value=${km(range)} field="values.ev_range" raw=${range} />
        <${Tile} id="car-ttf" label="Time to full" value=${charging ? duration(v.ev_time_to_full) : "–"} field="values.ev_time_to_full" raw=${v.ev_time_to_full} />
      </div>
    </div>
    <h2 class="section">Where its charge came from</h2>
    <div class="two">
      <${Sources} id="car-week" label="This week" from=${weekFrom} to=${today} />
      <${Sources} id="car-month" label="This month" from=${monthFrom} to=${today} />
    </div>
    <p class="muted small">Each minute the car's share of the home's sources, from <code>/api/v1/report</code> (<code>ev_sources_wh</code>). Last 30 days: <a href=${`#/history/custom/${addDays(today, -29)}/${today}`}>history</a>.</p>
  </section>`;
}
