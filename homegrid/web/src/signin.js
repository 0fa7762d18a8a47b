// Signing in: the owner's token, traded once for a session cookie (HttpOnly, SameSite=Strict) by /api/v1/session.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { send } from "./api.js";

/** The sign-in prompt: where the token is found, and a field to paste it. `onDone` runs once signed in. */
export function SignIn({ why, onDone, id = "signin" }) {
  const [token, setToken] = useState("");
  const [msg, setMsg] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = (e) => {
    e.preventDefault();
    setBusy(true);
    send("/api/v1/session", { token: token.trim() }).then(
      () => { setToken(""); setMsg(null); onDone?.(); },
      (err) => setMsg(err.status === 401 ? "That is not the owner's token (it may have been renewed)." : err.message),
    ).finally(() => setBusy(false));
  };
  return html`<div class="card signin" id=${id} role="region" aria-labelledby=${`${id}-h`}>
    <h2 id=${`${id}-h`}>Sign in as the owner</h2>
    <p>${why ?? "Changing the home needs the owner's key."} Open the sign-in link printed by <code>homegrid serve</code>,
      or run <code>homegrid token</code> on the hub's machine and paste the token here.</p>
    <form onSubmit=${submit}>
      <label for=${`${id}-token`}>Owner token</label>
      <input id=${`${id}-token`} type="password" autocomplete="off" spellcheck="false" required value=${token}
        onInput=${(e) => setToken(e.target.value)} />
      <button type="submit" disabled=${busy || !token.trim()}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
    ${msg && html`<p class="error" role="alert" id=${`${id}-msg`}>${msg}</p>`}
  </div>`;
}
