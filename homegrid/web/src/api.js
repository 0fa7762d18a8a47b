// The API the app reads: every figure on screen names the endpoint it came from (data-api).
import { useEffect, useLayoutEffect, useState } from "preact/hooks";

/** An Error carrying the HTTP status (401: the owner must sign in). */
function failure(message, status) {
  const e = new Error(message);
  e.status = status;
  return e;
}

// The page's inline script asks the first view's answers (the session, the site, the Money view's figures) while
// this script is still loading; each such answer is taken once, by the first get of its URL.
function asked(url) {
  const e = window.homegridEarly;
  const r = e && e[url];
  if (r) delete e[url];
  return r;
}

export async function get(url) {
  const r = await (asked(url) ?? fetch(url, { headers: { Accept: "application/json" } }));
  if (!r.ok) {
    let detail = r.statusText;
    try {
      detail = (await r.json()).detail ?? detail;
    } catch (_) {}
    throw failure(`${url}: ${r.status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`, r.status);
  }
  return r.json();
}

/** A change (JSON body; the session cookie goes with it, same origin); the reply's JSON, or an Error with its status. */
export async function send(url, body, method = "POST") {
  const r = await fetch(url, { method, headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body ?? {}) });
  const out = await r.json().catch(() => ({}));
  if (!r.ok) throw failure(typeof out.detail === "string" ? out.detail : `${r.status} ${JSON.stringify(out.detail ?? r.statusText)}`, r.status);
  return out;
}

// Bodies asked for before a view needs them (the app's start asks the tariff beside the site, a route change the
// history view's replies): a view's first useFetch of that URL takes the answer already on its way, once, if it
// was asked for in the last few seconds (an answer never taken is not shown much later as new).
const EARLY_MS = 5000;
const early = new Map();
/** Ask for a URL now, for the first view that will want it. */
export function prefetch(url) {
  const p = get(url);
  p.catch(() => {}); // a failure is the view's to show, when it asks
  early.set(url, { p, at: performance.now() });
}
function first(url) {
  const e = early.get(url);
  early.delete(url);
  return e && performance.now() - e.at < EARLY_MS ? e.p : get(url);
}

/** Fetch a URL (null: nothing) again whenever it changes; { data, error, loading }. */
export function useFetch(url, refreshMs = 0, { keep = false } = {}) {
  // the data belong to the URL they came from: a new URL (another period) shows nothing until its own data come,
  // never the last period's figures under the new title (a refresh of the same URL keeps them while it loads;
  // `keep`: a new URL is the same thing asked again, e.g. after a change, and keeps them too)
  const [state, setState] = useState({ url, data: null, error: null, loading: !!url });
  const mine = (s) => keep || s.url === url;
  // asked as soon as the view is in the page, not after its first paint (a frame later)
  useLayoutEffect(() => {
    if (!url) return undefined;
    let live = true;
    let once = true;
    const load = () =>
      (once ? ((once = false), first(url)) : get(url)).then(
        (data) => live && setState({ url, data, error: null, loading: false }),
        (error) => live && setState((s) => ({ url, data: mine(s) ? s.data : null, error, loading: false })),
      );
    setState((s) => ({ url, data: mine(s) ? s.data : null, error: null, loading: true }));
    load();
    const timer = refreshMs ? setInterval(load, refreshMs) : null;
    return () => {
      live = false;
      if (timer) clearInterval(timer);
    };
  }, [url, refreshMs]);
  return mine(state) ? state : { url, data: null, error: null, loading: !!url };
}

// Live values: one EventSource ("live" events of /api/v1/stream) shared by every view.
let live = null;
let source = null;
let connected = false;
const listeners = new Set();
const tell = () => listeners.forEach((f) => f());

function accept(body) {
  body._at = Date.now(); // when it came: "last seen" keeps counting between events
  live = body;
  tell();
}

function open() {
  if (source) return;
  get("/api/v1/live").then(accept, () => {});
  source = new EventSource("/api/v1/stream");
  source.addEventListener("live", (e) => accept(JSON.parse(e.data)));
  source.onopen = () => {
    connected = true;
    tell();
  };
  source.onerror = () => {
    connected = false;
    tell();
  };
}

/** { live, connected }: the newest /api/v1/live body, pushed by /api/v1/stream. */
export function useLive() {
  const [, setTick] = useState(0);
  useEffect(() => {
    open();
    const f = () => setTick((n) => n + 1);
    listeners.add(f);
    return () => listeners.delete(f);
  }, []);
  return { live, connected };
}

/** A figure with its source: <Fig api="/api/v1/live" field="values.solar_power" value={w}>text</Fig>. */
export const src = (api, field, value) => ({
  "data-api": api,
  "data-field": field,
  "data-value": value == null ? "" : String(value),
  title: `${api} → ${field}`,
});
