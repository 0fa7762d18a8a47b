// A component drawn again only when one of its props changes (compared with ===), as preact/compat's memo; the
// history view renders once per reply that comes in, and its charts need not follow each of those renders.
import { h } from "preact";

const differ = (a, b) => {
  for (const k in a) if (a[k] !== b[k]) return true;
  for (const k in b) if (!(k in a)) return true;
  return false;
};

/** ``component`` wrapped: its own state changes still draw it, a parent's render with the same props does not. */
export function memo(component) {
  function Memo(props) {
    this.shouldComponentUpdate = (next) => differ(this.props, next);
    return h(component, props);
  }
  Memo.displayName = `Memo(${component.name})`;
  return Memo;
}
