// System: each device's health, the settings that matter, the tariff, the data export.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { send, src, useFetch, useLive } from "./api.js";
import { addDays } from "./dates.js";
import { ago, clock, duration, money, pct, unitPrice } from "./format.js";
import { TARIFF } from "./money.js";
import { SignIn } from "./signin.js";

const LIVE = "/api/v1/live";

function Device({ d, i }) {
  const ok = !d.failing_since && d.consecutive_errors === 0;
  const f = (k) => `health.devices[${i}].${k}`;
  return html`<div class="card device" data-device=${d.name}>
    <h3><span class=${`dot ${ok ? "on" : "off"}`} aria-hidden="true"></span>${d.name}
      <span class=${ok ? "ok" : "bad"}>${ok ? "working" : `failing since ${clock(d.failing_since, true)}`}</span></h3>
    <dl>
      <dt>Last reading</dt><dd ...${src(LIVE, f("last_ok"), d.last_ok)}>${d.last_ok ? `${clock(d.last_ok, true)} (${ago(d.last_ok)})` : "never"}</dd>
      <dt>Polls</dt><dd ...${src(LIVE, f("polls"), d.polls)}>${d.polls}</dd>
      <dt>Errors</dt><dd ...${src(LIVE, f("errors"), d.errors)}>${d.errors}${d.last_error ? html` <span class="muted small">${d.last_error}</span>` : ""}</dd>
      ${d.backoff_s > 0 && html`<dt>Backing off</dt><dd>${duration(d.backoff_s)}</dd>`}
      <dt>Gaps</dt><dd ...${src(LIVE, f("gaps"), d.gaps?.length ?? 0)}>${d.gaps?.length
        ? html`<ul class="gaps">${d.gaps.slice(-5).reverse().map((g) => html`<li>${clock(g.from, true)} – ${clock(g.to, true)} (${duration((new Date(g.to) - new Date(g.from)) / 1000)}, ${g.failed_polls} failed polls)</li>`)}</ul>`
        : "none"}</dd>
      ${d.refused > 0 && html`<dt>Refused for their time</dt><dd ...${src(LIVE, f("refused"), d.refused)}>${d.refused} readings${d.refusing_since ? ` (still, since ${clock(d.refusing_since, true)}: the device's or the hub's clock jumped)` : ""}, kept in the quarantine</dd>`}
      ${d.partial && Object.keys(d.partial).length > 0 && html`<dt>Partly failing</dt><dd>${Object.entries(d.partial).map(([k, v]) => html`<div><code>${k}</code> ${typeof v === "object" ? JSON.stringify(v) : v}</div>`)}</dd>`}
      ${d.status && typeof d.status === "object" && Object.entries(d.status).filter(([, v]) => v != null && typeof v !== "object")
        .map(([k, v]) => html`<dt>${k.replaceAll("_", " ")}</dt><dd ...${src(LIVE, f(`status.${k}`), v)}>${String(v)}</dd>`)}
      ${Object.entries(d).filter(([k, v]) => !["name", "polls", "errors", "consecutive_errors", "last_ok", "last_error", "backoff_s", "failing_since", "refused", "refusing_since", "gaps", "partial"].includes(k) && v != null && typeof v !== "object")
        .map(([k, v]) => html`<dt>${k.replaceAll("_", " ")}</dt><dd ...${src(LIVE, f(k), v)}>${String(v)}</dd>`)}
    </dl>
  </div>`;
}

function Storm() {
  const { data, error } = useFetch("/api/v1/storm", 30000);
  const [msg, setMsg] = useState(null);
  const [signIn, setSignIn] = useState(false);
  if (error || !data) return null;
  if (!data.enabled) return html`<p class="muted small">Storm mode is off (<code>[storm] enabled = true</code> turns it on).</p>`;
  const set = (mode) => send("/api/v1/storm", { mode }).then(() => { setSignIn(false); setMsg(`Storm mode: ${mode}`); },
    (e) => { setSignIn(e.status === 401); setMsg(e.status === 401 ? "Not changed: sign in first." : e.message); });
  return html`<div><p>Storm mode: <b data-api="/api/v1/storm" data-field="storm">${data.storm ? "on" : "off"}</b></p>
    <div class="seg" role="group" aria-label="Storm mode">${["on", "off", "auto"].map((m) => html`<button type="button" onClick=${() => set(m)}>${m}</button>`)}</div>
    ${msg && html`<p role="status" class="muted small">${msg}</p>`}
    ${signIn && html`<${SignIn} id="storm-signin" onDone=${() => { setSignIn(false); setMsg("Signed in: choose again."); }} />`}</div>`;
}

const PLANNER = "/api/v1/planner/commands";

// The planner's commands to the battery and the car, why, and the owner's hand-back after a change by hand.
function Planner() {
  const [version, setVersion] = useState(0);
  const { data, error } = useFetch(`${PLANNER}?v=${version}`, 30000, { keep: true });
  const [msg, setMsg] = useState(null);
  const [signIn, setSignIn] = useState(false);
  if (error || !data || !data.enabled) return null;
  const owner = Object.entries(data.owner_override ?? {}).filter(([, why]) => why);
  const state = data.dry_run ? "dry run: it works the commands out and sends none"
    : owner.length ? "standing aside: you changed it by hand" : data.standby ? `standing aside: ${data.standby}` : "acting";
  const handBack = () => send("/api/v1/planner/hand-back", {}).then(() => { setSignIn(false); setMsg("Handed back to the planner."); setVersion((v) => v + 1); },
    (e) => { setSignIn(e.status === 401); setMsg(e.status === 401 ? "Not handed back: sign in first." : e.message); });
  const recent = (data.commands ?? []).slice(-8).reverse();
  return html`<div class="card planner" id="planner" data-acting=${String(!!data.acting)}>
    <h2>Planner</h2>
    <p><b data-api=${PLANNER} data-field="acting">${state}</b></p>
    ${data.planning && html`<p class="small" id="planner-planning"><span ...${src(PLANNER, "planning.plans", data.planning.plans)}>${data.planning.plans}</span> plans made,
      <span ...${src(PLANNER, "planning.errors", data.planning.errors)}>${data.planning.errors}</span> failed${data.planning.last_error
        ? html`; the last: <span class="error">${data.planning.last_error}</span>` : ""}. <a href="#/plan">See the plan</a>.</p>`}
    ${owner.map(([device, why]) => html`<p class="small">${device}: ${why}</p>`)}
    ${owner.length > 0 && html`<button type="button" id="planner-hand-back" onClick=${handBack}>Hand control back</button>`}
    ${msg && html`<p role="status" class="muted small">${msg}</p>`}
    ${signIn && html`<${SignIn} id="planner-signin" onDone=${() => { setSignIn(false); setMsg("Signed in: hand back again."); }} />`}
    ${recent.length ? html`<ul class="commands">${recent.map((c) => html`<li><span class="muted small">${clock(c.time, true)}</span>
      ${c.device}: <b>${c.command}</b> <span class="muted small">(${c.outcome})</span><div class="muted small">${c.reason}</div></li>`)}</ul>`
      : html`<p class="muted small">No command yet.</p>`}
  </div>`;
}

const SETTINGS = "/api/v1/settings";

// The reserve and operation mode, changed through the device adapter where the device allows it.
function Settings() {
  const [version, setVersion] = useState(0);
  const { data, error } = useFetch(`${SETTINGS}?v=${version}`, 0, { keep: true });
  const [reserve, setReserve] = useState(null);
  const [mode, setMode] = useState(null);
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  const [signIn, setSignIn] = useState(false);
  if (error) return html`<div class="card"><h2>Settings</h2><p class="error" role="alert">${error.message}</p></div>`;
  if (!data) return html`<div class="card"><h2>Settings</h2><p class="muted">Reading the battery's settings…</p></div>`;
  if (!data.available) return html`<div class="card"><h2>Settings</h2><p class="muted">${data.why_not}.</p><${Storm} /></div>`;
  const r = reserve ?? data.battery_reserve ?? 0;
  const m = mode ?? data.operation_mode ?? "";
  const off = !data.can_control || busy;
  const save = (e) => {
    e.preventDefault();
    const body = {};
    if (reserve != null && reserve !== data.battery_reserve) body.battery_reserve = Number(reserve);
    if (mode != null && mode !== data.operation_mode) body.operation_mode = mode;
    if (!Object.keys(body).length) return setMsg({ ok: true, text: "Nothing to change." });
    setBusy(true);
    send(SETTINGS, body).then(
      (out) => { setMsg({ ok: true, text: `Saved: reserve ${pct(out.battery_reserve)}, ${labelOf(out, out.operation_mode)}.` });
        setSignIn(false); setReserve(null); setMode(null); setVersion((n) => n + 1); },
      (err) => { setSignIn(err.status === 401);
        setMsg({ ok: false, text: err.status === 401 ? "Not saved: only the owner changes the battery. Sign in, then save again." : err.message }); },
    ).finally(() => setBusy(false));
  };
  return html`<div class="card settings" id="settings" data-can-control=${String(data.can_control)}>
    <h2>Settings</h2>
    ${data.error && html`<p class="error" role="alert">${data.error}</p>`}
    <form onSubmit=${save}>
      <label for="set-reserve">Backup reserve <b id="reserve-now" ...${src(SETTINGS, "battery_reserve", data.battery_reserve)}>${pct(data.battery_reserve)}</b></label>
      <div class="reserve-row">
        <input id="set-reserve" type="range" min="0" max="100" step="1" value=${Math.round(r)} disabled=${off}
          aria-describedby="reserve-help" onInput=${(e) => setReserve(Number(e.target.value))} />
        <output for="set-reserve">${pct(r)}</output>
      </div>
      <p id="reserve-help" class="muted small">Kept in the battery for outages; the rest covers the home.</p>
      <label for="set-mode">Operation mode</label>
      <select id="set-mode" value=${m} disabled=${off} onChange=${(e) => setMode(e.target.value)}
        ...${src(SETTINGS, "operation_mode", data.operation_mode)}>
        ${data.operation_mode && !data.modes.some((x) => x.mode === data.operation_mode) && html`<option value=${data.operation_mode}>${data.operation_mode}</option>`}
        ${data.modes.map((x) => html`<option value=${x.mode}>${x.label}</option>`)}
      </select>
      <button type="submit" disabled=${off}>${busy ? "Saving…" : "Save"}</button>
    </form>
    ${!data.can_control && html`<p class="muted small" id="settings-why">Read only: ${data.why_not}.</p>`}
    ${data.storm && html`<p class="muted small">Storm mode holds the reserve now; a reserve you set here stays after the storm.</p>`}
    ${msg && html`<p role=${msg.ok ? "status" : "alert"} class=${msg.ok ? "ok small" : "error"} id="settings-msg">${msg.text}</p>`}
    ${signIn && html`<${SignIn} onDone=${() => { setSignIn(false); setMsg({ ok: true, text: "Signed in: save again." }); }} />`}
    <${Storm} />
    <${Owner} key=${signIn ? "out" : "in"} />
  </div>`;
}

/** Whether this browser is signed in as the owner, and the way out. */
function Owner() {
  const [version, setVersion] = useState(0);
  const { data } = useFetch(`/api/v1/session?v=${version}`, 0, { keep: true });
  if (!data) return null;
  const out = () => send("/api/v1/session", {}, "DELETE").then(() => setVersion((n) => n + 1), () => {});
  return html`<p class="muted small" id="owner-session" data-signed-in=${String(data.signed_in)}>${data.signed_in
    ? html`This browser is signed in as the owner. <button type="button" onClick=${out}>Sign out</button>`
    : "This browser is not signed in: a change asks for the owner's token first."}</p>`;
}

/** The site's tariff in brief, and the owner's upload (homegrid's TOML or a URDB JSON record) with a reason. */
function TariffCard() {
  const [version, setVersion] = useState(0);
  const { data, error } = useFetch(version ? `${TARIFF}?v=${version}` : TARIFF, 0, { keep: true });
  const [text, setText] = useState("");
  const [reason, setReason] = useState("");
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  const [signIn, setSignIn] = useState(false);
  if (error) return html`<div class="card" id="tariff"><h2>Tariff</h2><p class="error" role="alert">${error.message}</p></div>`;
  if (!data) return html`<div class="card" id="tariff"><h2>Tariff</h2><p class="muted">Reading the tariff…</p></div>`;
  const t = data.tariff;
  const c = t?.currency;
  const upload = (e) => {
    e.preventDefault();
    if (!text.trim()) return setMsg({ ok: false, text: "Paste the tariff's text or choose its file first." });
    setBusy(true);
    send(TARIFF, { text, reason }, "PUT").then(
      (out) => { setSignIn(false); setText(""); setReason(""); setVersion((n) => n + 1);
        setMsg({ ok: true, text: `Saved: ${out.tariff.name}${out.warnings.length ? `, with ${out.warnings.length} warning${out.warnings.length > 1 ? "s" : ""} (below)` : ""}.` }); },
      (err) => { setSignIn(err.status === 401);
        setMsg({ ok: false, text: err.status === 401 ? "Not saved: only the owner changes the tariff. Sign in, then upload again." : err.message }); },
    ).finally(() => setBusy(false));
  };
  const file = (e) => { const f = e.target.files?.[0]; if (f) f.text().then(setText); };
  return html`<div class="card" id="tariff" data-configured=${String(data.configured)}>
    <h2>Tariff</h2>
    ${t ? html`<dl>
      <dt>Name</dt><dd id="tariff-name" ...${src(TARIFF, "tariff.name", t.name)}>${t.name}</dd>
      ${t.source && html`<dt>Source</dt><dd class="small">${t.source}</dd>`}
      <dt>From</dt><dd>${data.origin === "upload" ? `uploaded ${data.uploaded?.at ?? ""}${data.uploaded?.by ? ` by ${data.uploaded.by}` : ""}${data.uploaded?.reason ? ` (${data.uploaded.reason})` : ""}` : "the config's [tariff]"}</dd>
      <dt>Currency</dt><dd ...${src(TARIFF, "tariff.currency", c)}>${c}</dd>
      <dt>Export</dt><dd>${t.export_rule}${t.sell_price != null ? `, sold at ${unitPrice(t.sell_price, c)}` : ""}</dd>
      ${(t.fixed_monthly > 0 || t.fixed_daily > 0) && html`<dt>Fixed</dt><dd>${t.fixed_monthly > 0 ? `${money(t.fixed_monthly, c)} a month` : ""}${t.fixed_monthly > 0 && t.fixed_daily > 0 ? " + " : ""}${t.fixed_daily > 0 ? `${money(t.fixed_daily, c)} a day` : ""}</dd>`}
      ${t.minimum_monthly > 0 && html`<dt>Minimum</dt><dd>${money(t.minimum_monthly, c)} a month</dd>`}
      ${t.demand && html`<dt>Demand</dt><dd>charged on the peak over ${t.demand_window_min} min</dd>`}
      ${t.tax_percent > 0 && html`<dt>Taxes</dt><dd>${t.tax_percent} %</dd>`}
      <dt>Energy</dt><dd>${t.dynamic ? "dynamic prices from a series" : html`<ul class="gaps" id="tariff-periods">${t.periods.map((p) => html`<li data-period=${p.period}>${p.name}: ${p.tiers.map((x) =>
        `${unitPrice(x.buy, c)}${x.max_kwh != null ? ` up to ${x.max_kwh} ${t.tier_unit}` : ""}`).join(", then ")}</li>`)}</ul>`}</dd>
    </dl>` : html`<p id="tariff-none">No tariff is set, so nothing is priced. Upload your utility's rate below (homegrid's TOML,
      or a rate's JSON from the <a href="https://openei.org/wiki/Utility_Rate_Database" rel="noreferrer">Utility Rate Database</a>),
      or name one in the config's <code>[tariff]</code> table.</p>`}
    ${data.error && html`<p class="error small" role="alert">${data.error}</p>`}
    ${data.warnings?.length > 0 && html`<div id="tariff-warnings"><p class="small">What the reader left out:</p><ul class="gaps small">${data.warnings.map((w) => html`<li>${w}</li>`)}</ul></div>`}
    ${data.can_upload ? html`<form class="tariff-form" onSubmit=${upload}>
      <label for="tariff-file">Upload a tariff</label>
      <input id="tariff-file" type="file" accept=".toml,.json,application/json,text/plain" onChange=${file} />
      <label for="tariff-text" class="small muted">or paste it</label>
      <textarea id="tariff-text" spellcheck="false" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
      <label for="tariff-reason">Why <span class="muted small">(kept with the tariff)</span></label>
      <input id="tariff-reason" type="text" maxlength="500" value=${reason} onInput=${(e) => setReason(e.target.value)} />
      <button type="submit" disabled=${busy}>${busy ? "Uploading…" : "Upload tariff"}</button>
    </form>` : html`<p class="muted small">This hub takes no tariff uploads; set one in the config's <code>[tariff]</code> table.</p>`}
    ${msg && html`<p role=${msg.ok ? "status" : "alert"} class=${msg.ok ? "ok small" : "error"} id="tariff-msg">${msg.text}</p>`}
    ${signIn && html`<${SignIn} id="tariff-signin" onDone=${() => { setSignIn(false); setMsg({ ok: true, text: "Signed in: upload again." }); }} />`}
  </div>`;
}

const labelOf = (data, mode) => data.modes?.find((x) => x.mode === mode)?.label ?? mode;

export function SystemView({ today }) {
  const { live } = useLive();
  const [from, setFrom] = useState(addDays(today, -6));
  const [to, setTo] = useState(today);
  const [resolution, setResolution] = useState("raw");
  const h = live?.health;
  const q = useFetch("/api/v1/quarantine?limit=5");
  return html`<section class="system" aria-labelledby="sys-h">
    <div class="view-head"><h1 id="sys-h">System</h1></div>
    <h2 class="section">Devices</h2>
    ${h ? h.devices.map((d, i) => html`<${Device} d=${d} i=${i} key=${d.name} />`) : html`<p class="muted">Waiting for the hub…</p>`}
    ${h && html`<div class="card"><h2>Hub</h2><dl>
      <dt>Readings</dt><dd ...${src(LIVE, "health.first_reading", h.first_reading)}>${clock(h.first_reading, true)} to ${clock(h.last_reading, true)}</dd>
      <dt>Poll to stored</dt><dd ...${src(LIVE, "health.poll_to_store_ms.p95", h.poll_to_store_ms?.p95)}>${h.poll_to_store_ms?.count ? `${h.poll_to_store_ms.p50.toFixed(0)} ms median, ${h.poll_to_store_ms.p95.toFixed(0)} ms p95` : "–"}</dd>
      <dt>Store errors</dt><dd ...${src(LIVE, "health.store_errors", h.store_errors)}>${h.store_errors}${h.last_store_error ? ` (${h.last_store_error})` : ""}</dd>
      <dt>Refused values</dt><dd ...${src(LIVE, "health.quarantined", h.quarantined)}>${h.quarantined}${q.data?.items?.length ? html` <span class="muted small">newest: ${q.data.items[0].field} ${q.data.items[0].reason}</span>` : ""}</dd>
      <dt>Counter resets</dt><dd>${h.counter_resets}</dd>
      <dt>MQTT</dt><dd>${h.mqtt ? (h.mqtt.connected ? "connected" : "not connected") : "not configured"}</dd>
      <dt>Notifications</dt><dd>${h.notifications ? `${h.notifications.sent} sent, ${h.notifications.failures} failed` : "–"}</dd>
    </dl></div>`}
    <${Settings} />
    <${Planner} />
    <${TariffCard} />
    <div class="card"><h2>Export data</h2>
      <form class="export" onSubmit=${(e) => e.preventDefault()}>
        <label>From <input type="date" name="from" value=${from} max=${today} onChange=${(e) => setFrom(e.target.value)} /></label>
        <label>To <input type="date" name="to" value=${to} max=${today} onChange=${(e) => setTo(e.target.value)} /></label>
        <label>Resolution <select name="resolution" value=${resolution} onChange=${(e) => setResolution(e.target.value)}>
          <option value="raw">readings</option><option value="minute">minutes</option><option value="hour">hours</option>
        </select></label>
        <a class="button" id="export-link" href=${`/api/v1/export.csv?from=${from}&to=${to}${resolution === "raw" ? "" : `&resolution=${resolution}`}`} download>Download CSV</a>
      </form>
      <p class="muted small">Readings as canonical CSV (<code>/api/v1/export.csv</code>), the format <code>homegrid import</code> reads;
        they are kept forever unless <code>[store] raw_retention_days</code> is set (a sealed day of minute readings is compressed to about 15 kB). Minutes and hours: energy per bucket, kept for ever.</p>
    </div>
    <p class="muted small">API: <a href="/docs">/docs</a> · <a href="/openapi.json">/openapi.json</a></p>
  </section>`;
}
