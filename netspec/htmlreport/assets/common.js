/* netspec report pages: what the report and the compare page share. page.py inlines this file and
   then report.js or compare.js inside one function scope. All data comes from the JSON in
   #netspec-data; every string of it reaches the page through textContent or setAttribute, never
   through innerHTML. */
const DATA = JSON.parse(document.getElementById("netspec-data").textContent);
const SVGNS = "http://www.w3.org/2000/svg";
const $ = (sel, root) => (root || document).querySelector(sel);

// ------------------------------------------------------------------ small helpers
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}
const full = (n) => (n == null ? "—" : Number(n).toLocaleString("en-US"));
function human(n, unit) {
  if (n == null) return "—";
  const u = unit || "";
  for (const [s, suf] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "K"]]) {
    if (Math.abs(n) >= s) return (n / s).toPrecision(3) + " " + suf + u;
  }
  return String(Math.round(n * 1000) / 1000) + (u ? " " + u : "");
}
const shape = (s) => (s && s.length ? s.join("×") : "—");
const pct = (x) => (100 * x).toFixed(1) + "%";

function table(header, rows, opts) {
  const t = el("table", { class: "data" });
  const tr = el("tr");
  header.forEach((h, i) => tr.append(el("th", { text: h, class: (opts && opts.left || []).includes(i) ? "l" : "" })));
  t.append(el("thead", {}, tr));
  const body = el("tbody");
  for (const r of rows) {
    const row = el("tr", r.current ? { class: "current" } : {});
    r.cells.forEach((c, i) => row.append(el("td", { text: c, class: (opts && opts.left || []).includes(i) ? "l" : "" })));
    body.append(row);
  }
  t.append(body);
  return t;
}

// gzip + base64 -> SVG text, with the browser's own inflater (no library)
async function inflate(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

// ------------------------------------------------------------------ bar charts (plain SVG)
function barChart(title, bars, opts) {
  // bars: [{id, label, value, colour, tip}] ; opts.series > 1 gives grouped bars
  const W = 460, H = 230, L = 52, B = 62, T = 14, R = 8;
  const max = Math.max(1, ...bars.map((b) => b.value || 0));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  for (let i = 0; i <= 4; i++) {
    const y = T + (H - T - B) * (1 - i / 4);
    s.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y }),
             svg("text", { x: L - 4, y: y + 3, "text-anchor": "end", text: human(max * i / 4, opts.unit) }));
  }
  const groups = opts.groups || bars.map((b) => [b]);
  const gw = (W - L - R) / groups.length;
  groups.forEach((grp, gi) => {
    const bw = Math.max(2, (gw * 0.78) / grp.length);
    grp.forEach((b, bi) => {
      const h = (H - T - B) * (b.value || 0) / max;
      const x = L + gi * gw + gw * 0.11 + bi * bw;
      const r = svg("rect", { class: "bar", x, y: H - B - h, width: Math.max(1, bw - 1), height: Math.max(0, h),
                              fill: b.colour, "data-id": b.id }, svg("title", { text: b.tip }));
      if (opts.onclick) r.addEventListener("click", () => opts.onclick(b.id));
      s.append(r);
    });
    const lx = L + gi * gw + gw / 2;
    const label = grp[0].group || grp[0].label;
    s.append(svg("text", { x: lx, y: H - B + 10, "text-anchor": "end", transform: `rotate(-40 ${lx} ${H - B + 10})`,
                           text: label.length > 16 ? label.slice(0, 15) + "…" : label }));
  });
  s.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  return el("div", { class: "chart" }, el("h3", { text: title }), s);
}

// the page script (report.js or compare.js) calls this with its own page function
function onReady(page) {
  window.addEventListener("DOMContentLoaded", () => {
    page();
    document.body.dataset.ready = "1";
  });
}
