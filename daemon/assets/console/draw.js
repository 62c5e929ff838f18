// Drawing for the cfgd console: the revision timeline and the retry
// schedule, as plain SVG (no library). Everything shown goes in as text
// nodes or attributes, never as markup.
(() => {
"use strict";

const SVG = "http://www.w3.org/2000/svg";

const ORIGINS = [
  ["set", "set"], ["unset", "unset"], ["file", "file"], ["profile", "profile"],
  ["rollback", "rollback"], ["startup", "start-up"], ["profiles_file", "profiles file"],
  ["shared_state", "the fleet"],
];

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function originColor(origin) {
  const known = ORIGINS.some(([o]) => o === origin) ? origin : "unknown";
  return getComputedStyle(document.documentElement).getPropertyValue("--" + known).trim() || "#495057";
}

// What a revision's detail means, in words.
function describe(c) {
  if (c.origin === "rollback") return `to revision ${c.detail}`;
  return c.detail;
}

function clear(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
}

// The timeline: one node per revision, evenly spaced, coloured by origin;
// a dashed link where revisions are missing (older than the history kept).
function drawTimeline(svg, changes, selected, onSelect) {
  clear(svg);
  const left = 24, y = 34;
  const room = svg.parentElement.clientWidth - 4;
  // Spread out while there is room; beyond it the strip scrolls.
  const step = Math.min(72, Math.max(30, (room - 2 * left) / Math.max(changes.length - 1, 1)));
  const width = Math.max(room, left * 2 + step * Math.max(changes.length - 1, 0));
  svg.setAttribute("width", width);
  svg.setAttribute("viewBox", `0 0 ${width} 86`);
  if (changes.length === 0) {
    svg.appendChild(el("text", { x: left, y: y + 4, class: "muted" }, "no revisions recorded yet"));
    return;
  }
  changes.forEach((c, i) => {
    if (i === 0) return;
    const gap = c.revision - changes[i - 1].revision > 1;
    svg.appendChild(el("line", {
      x1: left + (i - 1) * step, y1: y, x2: left + i * step, y2: y, class: gap ? "gap" : "link",
    }));
  });
  // A revision number every ~28 px; a time (about 66 px wide) every
  // ~100 px, the first from the left edge, the last to the right one.
  const numberEvery = Math.ceil(28 / step), timeEvery = Math.ceil(100 / step);
  const lastIndex = changes.length - 1;
  changes.forEach((c, i) => {
    const x = left + i * step;
    const g = el("g", { "data-revision": c.revision, "data-origin": c.origin });
    const node = el("circle", {
      cx: x, cy: y, r: 9, fill: originColor(c.origin),
      class: "node" + (c.revision === selected ? " selected" : ""),
    });
    node.appendChild(el("title", {}, `revision ${c.revision}: ${c.origin}` +
      (c.detail ? ` (${describe(c)})` : "") + ` at ${new Date(c.time_ms).toLocaleString()}, ` +
      `${c.changes.length} setting(s) changed`));
    g.appendChild(node);
    const last = i === lastIndex;
    if (i % numberEvery === 0 || last || c.revision === selected) {
      g.appendChild(el("text", { x, y: y + 26, "text-anchor": "middle" }, String(c.revision)));
    }
    if ((i % timeEvery === 0 && (lastIndex - i) * step >= 100) || last) {
      const anchor = i === 0 ? "start" : last ? "end" : "middle";
      g.appendChild(el("text", { x: x + (i === 0 ? -9 : last ? 9 : 0), y: y + 40, "text-anchor": anchor, class: "muted" },
        new Date(c.time_ms).toLocaleTimeString()));
    }
    g.addEventListener("click", () => onSelect(c.revision));
    svg.appendChild(g);
  });
  svg.parentElement.scrollLeft = svg.parentElement.scrollWidth;
}

function drawLegend(div) {
  div.textContent = "";
  for (const [origin, label] of ORIGINS) {
    const span = document.createElement("span");
    const dot = document.createElement("i");
    dot.style.background = originColor(origin);
    span.append(dot, label);
    div.appendChild(span);
  }
}

function seconds(s) {
  if (s === 0) return "0 s";
  if (s >= 100) return `${s.toFixed(0)} s`;
  if (s >= 10) return `${s.toFixed(1).replace(/\.0$/, "")} s`;
  return `${s.toPrecision(3).replace(/\.?0+$/, "")} s`;
}

// The retry schedule: one row per retry, the delay as a tick and the
// jitter band (Prefect's clamped bounds, from the daemon) as a bar. A log
// axis when the delays span more than a factor of 30, so [1, 10, 100]
// reads at every scale.
function drawSchedule(svg, sched) {
  clear(svg);
  const rows = sched.waits;
  const rowH = 22, top = 8, left = 64, right = 150;
  const width = Math.max(svg.parentElement.clientWidth - 4, 380);
  const plotW = width - left - right;
  const height = top + rowH * Math.max(rows.length, 1) + 30;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", height);
  if (rows.length === 0) {
    svg.appendChild(el("text", { x: 4, y: top + 14, class: "muted" },
      "no retries: a failed run ends Failed at once"));
    return;
  }
  const positive = rows.flatMap((w) => [w.low, w.delay, w.high]).filter((v) => v > 0);
  const max = Math.max(...positive, 1e-3);
  const min = Math.min(...positive, max);
  const log = positive.length > 0 && max / min > 30;
  const lo = log ? min / 2 : 0;
  const x = (v) => {
    if (!log) return left + (v / (max * 1.05)) * plotW;
    const c = Math.max(v, lo);
    return left + (Math.log10(c / lo) / Math.log10((max * 1.2) / lo)) * plotW;
  };
  const axisY = top + rowH * rows.length + 4;
  svg.appendChild(el("line", { x1: left, y1: axisY, x2: left + plotW, y2: axisY, class: "axis" }));
  const ticks = log
    ? (() => { const t = []; for (let p = Math.floor(Math.log10(lo)); Math.pow(10, p) <= max * 1.2; p++) if (Math.pow(10, p) >= lo) t.push(Math.pow(10, p)); return t; })()
    : [0, max / 4, max / 2, (3 * max) / 4, max];
  for (const t of ticks) {
    svg.appendChild(el("line", { x1: x(t), y1: axisY, x2: x(t), y2: axisY + 4, class: "axis" }));
    svg.appendChild(el("text", { x: x(t), y: axisY + 16, "text-anchor": "middle", class: "muted" }, seconds(t)));
  }
  svg.appendChild(el("text", { x: left + plotW, y: axisY + 28, "text-anchor": "end", class: "muted" },
    log ? "delay before the retry (log scale)" : "delay before the retry"));
  rows.forEach((w, i) => {
    const cy = top + i * rowH + rowH / 2;
    const g = el("g", { "data-retry": w.retry, "data-low": w.low, "data-high": w.high, "data-delay": w.delay });
    g.appendChild(el("text", { x: left - 8, y: cy + 4, "text-anchor": "end" }, `retry ${w.retry}`));
    if (w.delay === 0) {
      g.appendChild(el("text", { x: left + 2, y: cy + 4, class: "muted" }, "immediately"));
    } else {
      if (w.high > w.low) {
        g.appendChild(el("rect", {
          x: x(w.low), y: cy - 7, width: Math.max(x(w.high) - x(w.low), 1), height: 14, rx: 3, class: "band",
        }));
      }
      g.appendChild(el("line", { x1: x(w.delay), y1: cy - 9, x2: x(w.delay), y2: cy + 9, class: "delay" }));
    }
    const label = w.high > w.low ? `${seconds(w.delay)}  (${seconds(w.low)} – ${seconds(w.high)})` : seconds(w.delay);
    g.appendChild(el("text", { x: left + plotW + 8, y: cy + 4 }, label));
    svg.appendChild(g);
  });
}

window.cfgdDraw = { drawTimeline, drawLegend, drawSchedule, seconds, describe };
})();
