// The width an element is shown at, followed as it changes: drawings sized to it keep their text at the size of
// the text around them (a fixed-size drawing scaled down to a phone is unreadable).
import { useLayoutEffect, useRef, useState } from "preact/hooks";

// the last width of each kind of drawing [CSS px]: a drawing made again (another day's bars) starts at it, and
// needs no layout forced in the middle of a render to learn it; its ResizeObserver, told after the frame's
// layout and before its paint, corrects it in the rare case it changed meanwhile
const known = new Map();

/** [ref, width]: put the ref on the element; width is 0 until it is laid out [CSS px]. ``kind`` names the
 * drawing ("bars", "sankey" ...): drawings of one kind are as wide as each other. */
export function useWidth(kind) {
  const box = useRef(null);
  const [width, setWidth] = useState(() => known.get(kind) ?? 0);
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const measure = () => setWidth(rememberWidth(kind, el.clientWidth));
    if (!known.has(kind)) measure(); // the first of its kind: before the first paint, no empty frame
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [box, width];
}

/** The last width a drawing of this kind was shown at [CSS px], or undefined. */
export const knownWidth = (kind) => known.get(kind);

/** Keep a drawing's width as the last of its kind; returns it [CSS px]. */
export function rememberWidth(kind, width) {
  known.set(kind, width);
  return width;
}
