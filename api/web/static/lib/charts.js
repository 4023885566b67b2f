// Hand-written SVG charts for the data pages (no library). Each chart is an <svg role="img"> named by its
// <title> and described by its <desc>, and each comes with a data table beside it (the accessible
// alternative, and what a person who wants the numbers reads). Text is set as text nodes only.
import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
// Eight colours distinguishable with the common colour-vision deficiencies (Okabe-Ito), then grey.
export const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"];
export const OTHER_COLOUR = "#8a8a8a";

/** An SVG element: attributes set as attributes, children as nodes or text nodes. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let serial = 0;
function ids(prefix) {
  serial += 1;
  return { title: `${prefix}-title-${serial}`, desc: `${prefix}-desc-${serial}` };
}

/** A "nice" upper bound of an axis (1, 2, 2.5 or 5 times a power of ten) at or above `max`. */
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/**
 * Stacked columns, one per day: `days` [{day, parts: [{series, value}]}], `series` [{name, colour}].
 * Returns the <svg> (its <desc> says the total and the busiest day).
 */
export function stackedColumns({ title, description, days, series, width = 720, height = 240 }) {
  const id = ids("chart");
  const pad = { left: 48, right: 8, top: 12, bottom: 28 };
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const totals = days.map((d) => d.parts.reduce((n, p) => n + p.value, 0));
  const top = niceMax(Math.max(0, ...totals));
  const step = innerW / Math.max(1, days.length);
  const barW = Math.max(1, step * 0.8);
  const y = (v) => pad.top + innerH - (v / top) * innerH;
  const colour = new Map(series.map((x) => [x.name, x.colour]));
  const svg = s("svg", { role: "img", viewBox: `0 0 ${width} ${height}`, width: "100%",
    "aria-labelledby": id.title, "aria-describedby": id.desc, class: "chart" },
  s("title", { id: id.title }, title), s("desc", { id: id.desc }, description));
  for (const tick of [0, top / 2, top]) {
    svg.appendChild(s("line", { x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick), stroke: "#d0d0d0" }));
    svg.appendChild(s("text", { x: pad.left - 6, y: y(tick) + 4, "text-anchor": "end", "font-size": 11, fill: "#333" },
      formatTick(tick)));
  }
  days.forEach((d, i) => {
    const x = pad.left + i * step + (step - barW) / 2;
    let base = 0;
    for (const part of d.parts) {
      if (!part.value) continue;
      svg.appendChild(s("rect", { x, width: barW, y: y(base + part.value), height: y(base) - y(base + part.value),
        fill: colour.get(part.series) || OTHER_COLOUR, "data-day": d.day, "data-series": part.series },
      s("title", {}, `${d.day}, ${part.series}: ${part.value}`)));
      base += part.value;
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 8) === 0) {
      svg.appendChild(s("text", { x: x + barW / 2, y: height - 8, "text-anchor": "middle", "font-size": 11, fill: "#333" },
        d.day.slice(5)));
    }
  });
  return svg;
}

function formatTick(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}

/** A legend: a list of colour swatches and names. */
export function legend(series) {
  return h("ul", { class: "legend", "aria-label": "Legend" },
    series.map((x) => h("li", {}, swatch(x.colour), " ", x.name)));
}

function swatch(colour) {
  return s("svg", { width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true", focusable: "false" },
    s("rect", { width: 12, height: 12, fill: colour }));
}

/**
 * Points with intervals on a shared horizontal axis: `rows` [{label, value, low, high}] (value may be null:
 * "no data"), in [min, max]; `zero` draws a reference line there (for differences).
 */
export function intervalChart({ title, description, rows, min, max, zero = null, format = pct, width = 640 }) {
  const id = ids("intervals");
  const rowH = 34;
  const pad = { left: 140, right: 24, top: 10, bottom: 28 };
  const height = pad.top + pad.bottom + rowH * rows.length;
  const span = max - min || 1;
  const x = (v) => pad.left + ((Math.min(max, Math.max(min, v)) - min) / span) * (width - pad.left - pad.right);
  const svg = s("svg", { role: "img", viewBox: `0 0 ${width} ${height}`, width: "100%",
    "aria-labelledby": id.title, "aria-describedby": id.desc, class: "chart intervals" },
  s("title", { id: id.title }, title), s("desc", { id: id.desc }, description));
  const axisY = height - pad.bottom;
  svg.appendChild(s("line", { x1: pad.left, x2: width - pad.right, y1: axisY, y2: axisY, stroke: "#999" }));
  for (const tick of [min, (min + max) / 2, max]) {
    svg.appendChild(s("text", { x: x(tick), y: axisY + 16, "text-anchor": "middle", "font-size": 11, fill: "#333" },
      format(tick)));
  }
  if (zero !== null) {
    svg.appendChild(s("line", { x1: x(zero), x2: x(zero), y1: pad.top, y2: axisY, stroke: "#555",
      "stroke-dasharray": "4 3", class: "zero" }));
  }
  rows.forEach((r, i) => {
    const cy = pad.top + rowH * i + rowH / 2;
    svg.appendChild(s("text", { x: pad.left - 8, y: cy + 4, "text-anchor": "end", "font-size": 12, fill: "#111" },
      r.label));
    if (r.value === null || r.value === undefined) {
      svg.appendChild(s("text", { x: pad.left + 4, y: cy + 4, "font-size": 12, fill: "#555" }, "no data yet"));
      return;
    }
    const g = s("g", { class: "interval", "data-label": r.label },
      s("title", {}, `${r.label}: ${format(r.value)} (95% interval ${format(r.low)} to ${format(r.high)})`));
    if (r.low !== null && r.high !== null) {
      g.appendChild(s("line", { x1: x(r.low), x2: x(r.high), y1: cy, y2: cy, stroke: "#0072b2", "stroke-width": 3,
        class: "whisker" }));
      for (const end of [r.low, r.high]) {
        g.appendChild(s("line", { x1: x(end), x2: x(end), y1: cy - 6, y2: cy + 6, stroke: "#0072b2", "stroke-width": 2 }));
      }
    }
    g.appendChild(s("circle", { cx: x(r.value), cy, r: 5, fill: "#d55e00", class: "point" }));
    svg.appendChild(g);
  });
  return svg;
}

/** A proportion as a percentage with one decimal ("12.5%"); differences get a sign. */
export function pct(v) {
  return v === null || v === undefined ? "n/a" : `${(v * 100).toFixed(1)}%`;
}

export function signedPct(v) {
  return v === null || v === undefined ? "n/a" : `${v > 0 ? "+" : ""}${(v * 100).toFixed(1)}%`;
}

/** A table from column headings and rows of cells (strings or nodes); the first cell of a row is its header. */
export function dataTable(caption, headings, rows, attrs = {}) {
  return h("table", { class: "data", ...attrs },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headings.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((cells) => h("tr", {},
      cells.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c)))))));
}
