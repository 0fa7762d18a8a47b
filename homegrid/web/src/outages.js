// Outages: what the battery saved you from this month, every interruption (each a link into its day), and,
// apart, the grid disturbances the gateway logged while the home stayed on the grid.
import { html } from "htm/preact";
import { src, useFetch } from "./api.js";
import { clock, duration, kw, kwh, pct, zone } from "./format.js";
import { BatterySaved, TARIFF, monthUrl } from "./money.js";

const API = "/api/v1/outages";
const KINDS = {
  under_voltage: "Under-voltage", over_voltage: "Over-voltage", under_frequency: "Under-frequency",
  over_frequency: "Over-frequency", frequency_change_rate: "Fast frequency change", other: "Grid warning",
};

export function localDate(iso) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone(), year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(iso));
}

// What is known of an interruption's start when it is not exact: never more than the evidence says.
function startNote(e) {
  if (e.evidence?.includes("hub_down_at_start")) {
    return e.start_earliest_ms != null ? `The hub was not recording when it began: some time between ${clock(e.start_earliest_ms, true)} and ${clock(e.start, true)}`
      : "It began before the hub's first reading";
  }
  return e.start_earliest_ms != null ? `Began between two readings, ${clock(e.start_earliest_ms, true)} and ${clock(e.start)}` : "Began at or before this reading";
}

// "No interruptions" names the days the hub recorded, never more.
function quietMonth(data, month, today) {
  const c = data.covered;
  if (!c || c.to < `${month}-01`) return `No readings recorded this month, so nothing is known about grid interruptions.`;
  const from = c.from > `${month}-01` ? c.from : `${month}-01`;
  const to = c.to < today ? c.to : today;
  return from === to ? `No grid interruptions recorded on ${from} (the hub's records).`
    : `No grid interruptions recorded from ${from} to ${to} (the hub's records).`;
}

function magnitude(d) {
  return d.value == null ? "" : `${Math.round(d.value * 10) / 10} ${d.unit}`;
}

export function OutagesView({ today }) {
  const { data, error } = useFetch(API, 60000);
  const tariff = useFetch(TARIFF); // no tariff: no money sentence (and no 409 asked for)
  const bill = useFetch(tariff.data?.configured ? monthUrl(today) : null, 300000);
  const month = today.slice(0, 7);
  const m = data?.months?.find((x) => x.month === month);
  const events = data ? [...data.events].reverse() : [];
  const disturbances = data?.disturbances ? [...data.disturbances].reverse() : [];
  return html`<section class="outages" aria-labelledby="out-h">
    <div class="view-head"><h1 id="out-h">Outages</h1>
      ${data && html`<p class="muted">${data.from} to ${data.to}${data.covered ? `; the hub has readings from ${data.covered.from}` : ""}</p>`}</div>
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
    ${data && html`<div class="card banner-saved" id="saved-banner" ...${src(API, `months[${month}].saved`, m?.saved ?? 0)}>
      <span class="shield" aria-hidden="true">⚡</span>
      <div><p>${m ? m.sentence : quietMonth(data, month, today)}</p>
        ${bill.data && html`<${BatterySaved} bill=${bill.data} month=${month} id="outage-battery-saved" />`}</div>
    </div>`}
    ${data && html`<h2 class="section" id="interruptions-h" data-count=${events.length}>Interruptions <span class="muted small">the grid was down; the battery carried the home or it went dark</span></h2>`}
    ${data && (events.length
      ? html`<div class="card table-wrap"><table class="events" id="outage-list" aria-labelledby="interruptions-h">
          <caption class="sr">Grid interruptions, newest first</caption>
          <thead><tr><th scope="col">Started</th><th scope="col">Lasted</th><th scope="col">Home</th>
            <th scope="col">From battery</th><th scope="col">From solar</th><th scope="col">Lowest battery</th><th scope="col">Peak load</th></tr></thead>
          <tbody>${events.map((e) => {
            const day = localDate(e.start);
            const note = e.start_exact ? null : startNote(e);
            return html`<tr data-start=${e.start} data-day=${day}>
              <th scope="row"><a href=${`#/history/day/${day}`} title=${`Open ${day}`}>${clock(e.start, true)}</a>
                ${e.parts > 1 && html` <span class="pill">${e.parts} parts</span>`}${note && html` <span class="pill start-note" title=${note} aria-label=${note}>≈</span>`}</th>
              <td ...${src(API, "events[].duration_s", e.duration_s)}>${e.end ? duration(e.duration_s) : html`<b>ongoing</b>`}</td>
              <td>${e.saved ? html`<span class="ok">kept powered</span>` : e.saved === false ? html`<span class="bad">went dark</span>` : html`<span class="muted">not known</span>`}</td>
              <td ...${src(API, "events[].battery_wh", e.battery_wh)}>${kwh(e.battery_wh)}</td>
              <td ...${src(API, "events[].solar_wh", e.solar_wh)}>${kwh(e.solar_wh)}</td>
              <td ...${src(API, "events[].min_soc", e.min_soc)}>${pct(e.min_soc)}</td>
              <td ...${src(API, "events[].peak_load_w", e.peak_load_w)}>${kw(e.peak_load_w)}</td>
            </tr>`;
          })}</tbody></table></div>`
      : html`<p class="muted" id="no-interruptions">${data.sentence}</p>`)}
    ${data && html`<h2 class="section" id="disturbances-h" data-count=${disturbances.length}>Grid disturbances <span class="muted small">logged by the gateway while the home stayed on the grid; not interruptions</span></h2>`}
    ${data && (disturbances.length
      ? html`<div class="card table-wrap"><table class="events" id="disturbance-list" aria-labelledby="disturbances-h">
          <caption class="sr">Grid disturbances, newest first</caption>
          <thead><tr><th scope="col">When</th><th scope="col">What</th><th scope="col">Seen</th></tr></thead>
          <tbody>${disturbances.map((d) => html`<tr data-time=${d.time} data-kind=${d.kind}>
            <th scope="row">${clock(d.time, true)}</th>
            <td title=${d.name}>${KINDS[d.kind] ?? KINDS.other}</td>
            <td ...${src(API, "disturbances[].value", d.value)}>${magnitude(d)}</td>
          </tr>`)}</tbody></table></div>`
      : html`<p class="muted" id="no-disturbances">No grid disturbances logged in this period.</p>`)}
    ${data?.months?.length > 0 && html`<div class="card"><h2>By month</h2><ul class="months">
      ${[...data.months].reverse().map((x) => html`<li><b>${x.month}</b> ${x.count} interruption${x.count === 1 ? "" : "s"}, ${duration(x.minutes * 60)}${x.under_1_min ? `, ${x.under_1_min} under a minute` : ""}</li>`)}
    </ul></div>`}
  </section>`;
}
