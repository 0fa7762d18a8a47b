// The width an element is shown at, followed as it changes: drawings sized to it keep their text at the size of
// the text around them (a fixed-size drawing scaled down to a phone is unreadable).
import { useEffect, useRef, useState } from "preact/hooks";

/** [ref, width]: put the ref on the element; width is 0 until it is laid out [CSS px]. */
export function useWidth() {
  const box = useRef(null);
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    setWidth(el.clientWidth);
    const ro = new ResizeObserver(() => setWidth(el.clientWidth));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return [box, width];
}
