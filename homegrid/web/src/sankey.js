// Where the period's energy went: sources (left) to sinks (right), from /api/v1/report (d3-sankey).
import { html } from "htm/preact";
import { useWidth } from "./width.js";
import { sankey, sankeyJustify, sankeyLinkHorizontal } from "d3-sankey";
import { kwh } from "./format.js";
import { memo } from "./memo.js";

const NODES = [
  ["solar", "Solar", "--solar"], ["battery_out", "Battery", "--battery"], ["grid_in", "Grid", "--grid"],
  ["house", "House", "--home"], ["car", "Car", "--car"], ["battery_in", "Battery", "--battery-in"], ["grid_out", "Grid", "--grid-out"],
];

export function linksOf(report) {
  const f = report.flows_wh, ev = report.ev_sources_wh;
  return [
    ["solar", "house", f.solar_to_home - ev.solar], ["solar", "car", ev.solar],
    ["solar", "battery_in", f.solar_to_battery], ["solar", "grid_out", f.solar_to_grid],
    ["battery_out", "house", f.battery_to_home - ev.battery], ["battery_out", "car", ev.battery],
    ["battery_out", "grid_out", f.battery_to_grid],
    ["grid_in", "house", f.grid_to_home - ev.grid], ["grid_in", "car", ev.grid], ["grid_in", "battery_in", f.grid_to_battery],
  ].filter((l) => l[2] > 1);
}

export const Sankey = memo(function Sankey({ report }) {
  // drawn at the width it is shown at, so that its labels are as big on a phone as the text around them (a fixed
  // 640-wide drawing scaled down to a phone's 330 px made them 6 px)
  const [box, width] = useWidth("sankey");
  const links = linksOf(report);
  return html`<div ref=${box} class="sankey-box">${!links.length
    ? html`<p class="muted">No energy recorded in this period.</p>`
    : width > 0 && html`<${SankeyDrawing} links=${links} W=${Math.min(760, Math.max(280, width))} />`}</div>`;
});

function SankeyDrawing({ links, W }) {
  const H = W < 500 ? 280 : 300;
  const used = new Set(links.flatMap((l) => [l[0], l[1]]));
  const nodes = NODES.filter((n) => used.has(n[0])).map(([id, name, color]) => ({ id, name, color }));
  const graph = sankey().nodeId((d) => d.id).nodeAlign(sankeyJustify).nodeWidth(14).nodePadding(18)
    .extent([[4, 8], [W - 4, H - 8]])({ nodes, links: links.map(([source, target, value]) => ({ source, target, value })) });
  const path = sankeyLinkHorizontal();
  const names = (l) => `${l.source.name} → ${l.target.name === "Battery" ? "Battery (charge)" : l.target.name}: ${kwh(l.value)}`;
  return html`<svg width=${W} height=${H} viewBox=${`0 0 ${W} ${H}`} class="sankey" role="img"
      aria-label=${`Energy flows: ${graph.links.map(names).join("; ")}`} data-api="/api/v1/report" data-field="flows_wh, ev_sources_wh">
    <g fill="none">
      ${graph.links.map((l) => html`<path d=${path(l)} stroke=${`var(${l.source.color})`} stroke-width=${Math.max(1, l.width)}
          class="sankey-link" data-value=${l.value}><title>${names(l)}</title></path>`)}
    </g>
    ${graph.nodes.map((n) => html`<g>
      <rect x=${n.x0} y=${n.y0} width=${n.x1 - n.x0} height=${Math.max(1, n.y1 - n.y0)} fill=${`var(${n.color})`} />
      <text x=${n.x0 < W / 2 ? n.x1 + 6 : n.x0 - 6} y=${(n.y0 + n.y1) / 2} dy="0.35em"
        text-anchor=${n.x0 < W / 2 ? "start" : "end"} class="sankey-label">${n.name} ${kwh(n.value)}</text></g>`)}
  </svg>`;
}
