// Outages: what the battery saved you from this month, and every event, each a link into its day.
import { html } from "htm/preact";
import { src, useFetch } from "./api.js";
import { clock, duration, kw, kwh, pct, zone } from "./format.js";

const API = "/api/v1/outages";

export function localDate(iso) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone(), year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(iso));
}

export function OutagesView({ today }) {
  const { data, error } = useFetch(API, 60000);
  const month = today.slice(0, 7);
  const m = data?.months?.find((x) => x.month === month);
  const events = data ? [...data.events].reverse() : [];
  return html`<section class="outages" aria-labelledby="out-h">
    <div class="view-head"><h1 id="out-h">Outages</h1>
      ${data && html`<p class="muted">${data.from} to ${data.to}</p>`}</div>
    ${error && html`<p class="error" role="alert">${error.message}</p>`}
    ${data && html`<div class="card banner-saved" id="saved-banner" ...${src(API, `months[${month}].sentence`, m?.saved ?? 0)}>
      <span class="shield" aria-hidden="true">⚡</span>
      <p>${m ? m.sentence : "No grid interruptions this month."}</p>
    </div>`}
    ${data && (events.length
      ? html`<div class="card table-wrap"><table class="events" id="outage-list">
          <caption class="sr">Grid interruptions, newest first</caption>
          <thead><tr><th scope="col">Started</th><th scope="col">Lasted</th><th scope="col">Home</th>
            <th scope="col">From battery</th><th scope="col">From solar</th><th scope="col">Lowest battery</th><th scope="col">Peak load</th></tr></thead>
          <tbody>${events.map((e) => {
            const day = localDate(e.start);
            return html`<tr data-start=${e.start} data-day=${day}>
              <th scope="row"><a href=${`#/history/day/${day}`} title=${`Open ${day}`}>${clock(e.start, true)}</a>
                ${e.parts > 1 && html` <span class="pill">${e.parts} parts</span>`}${!e.start_exact && html` <span class="pill" title="the hub was down at its start">≈</span>`}</th>
              <td ...${src(API, "events[].duration_s", e.duration_s)}>${e.end ? duration(e.duration_s) : html`<b>ongoing</b>`}</td>
              <td>${e.saved ? html`<span class="ok">kept powered</span>` : html`<span class="bad">went dark</span>`}</td>
              <td ...${src(API, "events[].battery_wh", e.battery_wh)}>${kwh(e.battery_wh)}</td>
              <td ...${src(API, "events[].solar_wh", e.solar_wh)}>${kwh(e.solar_wh)}</td>
              <td ...${src(API, "events[].min_soc", e.min_soc)}>${pct(e.min_soc)}</td>
              <td ...${src(API, "events[].peak_load_w", e.peak_load_w)}>${kw(e.peak_load_w)}</td>
            </tr>`;
          })}</tbody></table></div>`
      : html`<p class="muted">No interruptions recorded in this period.</p>`)}
    ${data?.months?.length > 0 && html`<div class="card"><h2>By month</h2><ul class="months">
      ${[...data.months].reverse().map((x) => html`<li><b>${x.month}</b> ${x.count} interruption${x.count === 1 ? "" : "s"}, ${Math.round(x.minutes)} min${x.under_1_min ? `, ${x.under_1_min} under a minute` : ""}</li>`)}
    </ul></div>`}
  </section>`;
}
