/* netspec report: the page of one network (after common.js, in the same scope). */
// ------------------------------------------------------------------ header and summary
function summaryChips(sum, root) {
  const chips = [
    ["params", human(sum.params)], ["MACs", human(sum.macs)], ["mem access", human(sum.mem_access)],
    ["peak activations", human(sum.peak_bytes, "B")], ["RF", sum.rf], ["input", shape(sum.input_shape)],
  ];
  if (sum.params_with_aux !== sum.params) chips.splice(1, 0, ["with aux", human(sum.params_with_aux)]);
  for (const [k, v] of chips) root.append(el("span", { class: "chip" }, k + " ", el("b", { text: v })));
  if (sum.reference) root.append(el("span", { class: "chip", "data-field": "reference" }, "reference ", el("b", { text: sum.reference })));
}

// ------------------------------------------------------------------ the diagram
function Diagram(net, root) {
  const views = {};
  for (const v of net.views) views[v.id] = v;
  const items = net.items;
  const canvas = $(".canvas", root), details = $("aside.details", root), crumbs = $(".crumbs", root);
  const cache = {};
  let current = null, svgEl = null, box = null, full0 = null, selected = null, token = 0;

  function expandTarget(id) {
    if (id === "body") return "stage";
    const v = views["open:" + id];
    return v && v.id !== current ? v.id : null;
  }
  function closeTarget(scope) {       // the view where `scope` is drawn closed
    const it = items[scope];
    if (!it) return null;
    if (it.level === "stage") return "stage";
    const home = net.home[scope];
    return home && home !== current ? home : null;
  }

  async function show(viewId, focus) {
    const v = views[viewId];
    if (!v) return;
    const my = ++token;
    canvas.dataset.view = viewId;
    if (!cache[viewId]) {
      canvas.replaceChildren(el("div", { class: "loading", text: "laying out…" }));
      cache[viewId] = await inflate(v.svg);
    }
    if (my !== token) return;
    const doc = new DOMParser().parseFromString(cache[viewId], "image/svg+xml");
    const s = document.importNode(doc.documentElement, true);
    s.removeAttribute("width"); s.removeAttribute("height");
    s.setAttribute("preserveAspectRatio", "xMidYMin meet");
    for (const a of s.querySelectorAll("a")) a.removeAttribute("xlink:href");
    canvas.replaceChildren(s, el("div", { class: "hint", text: "drag to pan · wheel or +/− to zoom · click a stage or block to open it, its frame to close it" }));
    svgEl = s; current = viewId;
    const vb = s.viewBox.baseVal;
    full0 = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    wire(s);
    fit(false);
    renderCrumbs();
    for (const b of root.querySelectorAll("[data-level]")) b.classList.toggle("on", b.dataset.level === viewId);
    $("[data-act=close]", root).disabled = !v.parent;
    canvas.dataset.ready = viewId;
    if (focus) highlight(focus);
    else if (selected) mark(selected);
    if (selected && !details.dataset.hover) showDetails(selected, false);  // its "open" button may be gone
  }

  function titleOf(g) {
    const t = g.querySelector(":scope > title");
    return t ? t.textContent : "";
  }
  function wire(s) {
    for (const g of s.querySelectorAll("g.node")) {
      const id = titleOf(g);
      g.dataset.id = id;
      if (expandTarget(id)) g.classList.add("expandable");
      g.addEventListener("mouseenter", () => showDetails(id, true));
      g.addEventListener("mouseleave", () => showDetails(selected, false));
      g.addEventListener("click", (ev) => {
        if (dragged) return;
        ev.stopPropagation();
        select(id);
        const t = expandTarget(id);
        if (t) show(t, id);
      });
    }
    for (const g of s.querySelectorAll("g.cluster")) {
      const scope = titleOf(g).replace(/^cluster_/, "");
      g.dataset.id = scope;
      if (!closeTarget(scope)) continue;
      g.classList.add("closable");
      const frame = g.querySelector(":scope > path, :scope > polygon");
      if (frame) {
        frame.addEventListener("click", (ev) => {
          if (dragged) return;
          ev.stopPropagation();
          select(scope);
          show(closeTarget(scope), scope);
        });
      }
    }
  }

  function renderCrumbs() {
    const chain = [];
    for (let v = views[current]; v; v = views[v.parent]) chain.unshift(v);
    crumbs.replaceChildren();
    chain.forEach((v, i) => {
      if (i) crumbs.append(" › ");
      const label = v.id.startsWith("open:") ? (items[v.id.slice(5)] || {}).label || v.id.slice(5) : v.title;
      const name = v.id.startsWith("open:") && items[v.id.slice(5)] && items[v.id.slice(5)].level === "block" ? v.id.slice(5) : label;
      if (i === chain.length - 1) crumbs.append(el("b", { text: name }));
      else crumbs.append(el("a", { text: name, onclick: () => show(v.id) }));
    });
  }

  // pan and zoom: the SVG's viewBox
  function apply() { svgEl.setAttribute("viewBox", `${box.x} ${box.y} ${box.w} ${box.h}`); }
  function fit(whole) {
    const cw = canvas.clientWidth || 800, ch = canvas.clientHeight || 500;
    const f = full0;
    let scale = Math.min(cw / f.w, ch / f.h);
    const tall = f.h * (cw / f.w) > 3 * ch;
    if (!whole && tall) scale = Math.min(cw / f.w, 1.2);
    scale = Math.min(scale, 1.6);
    const w = cw / scale, h = ch / scale;
    box = { x: f.x + (f.w - w) / 2, y: whole || !tall ? f.y + Math.min(0, (f.h - h) / 2) : f.y, w, h };
    apply();
  }
  function zoom(factor, cx, cy) {
    const r = canvas.getBoundingClientRect();
    const px = cx == null ? 0.5 : (cx - r.left) / r.width, py = cy == null ? 0.5 : (cy - r.top) / r.height;
    const w = Math.min(Math.max(box.w / factor, full0.w / 200), full0.w * 20);
    const h = box.h * (w / box.w);
    box = { x: box.x + (box.w - w) * px, y: box.y + (box.h - h) * py, w, h };
    apply();
  }
  let dragged = false, start = null;
  canvas.addEventListener("wheel", (ev) => { if (!svgEl) return; ev.preventDefault(); zoom(Math.exp(-ev.deltaY * 0.0015), ev.clientX, ev.clientY); }, { passive: false });
  canvas.addEventListener("pointerdown", (ev) => {
    if (!svgEl || ev.button !== 0) return;
    start = { x: ev.clientX, y: ev.clientY, box: { ...box } };
    dragged = false;
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!start) return;
    const dx = ev.clientX - start.x, dy = ev.clientY - start.y;
    if (!dragged && Math.hypot(dx, dy) < 5) return;
    if (!dragged) { dragged = true; canvas.classList.add("dragging"); canvas.setPointerCapture(ev.pointerId); }
    const k = box.w / canvas.clientWidth;
    box = { ...box, x: start.box.x - dx * k, y: start.box.y - dy * k };
    apply();
  });
  const end = () => { start = null; canvas.classList.remove("dragging"); setTimeout(() => { dragged = false; }, 0); };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  function centreOn(g) {
    const b = g.getBBox();
    const m = g.getCTM(), sm = svgEl.getCTM();
    // getBBox is in the node's user space; map its centre into the SVG's viewBox space
    const p = svgEl.createSVGPoint();
    p.x = b.x + b.width / 2; p.y = b.y + b.height / 2;
    const q = p.matrixTransform(sm.inverse().multiply(m));
    box = { ...box, x: q.x - box.w / 2, y: q.y - box.h / 2 };
    apply();
  }
  function mark(id) {
    if (!svgEl) return null;
    for (const g of svgEl.querySelectorAll(".selected, .found")) g.classList.remove("selected", "found");
    const g = [...svgEl.querySelectorAll("g.node, g.cluster")].find((x) => x.dataset.id === id);
    if (g) g.classList.add(g.classList.contains("node") ? "selected" : "found");
    return g;
  }
  function highlight(id) {
    const g = mark(id);
    if (g && g.classList.contains("cluster")) frame(g);
    else if (g) centreOn(g);
  }
  function frame(g) {             // an opened scope: zoom to show all of it (never beyond 1.6×)
    const b = g.getBBox(), m = svgEl.getCTM().inverse().multiply(g.getCTM());
    const p = svgEl.createSVGPoint();
    p.x = b.x; p.y = b.y; const a = p.matrixTransform(m);
    p.x = b.x + b.width; p.y = b.y + b.height; const z = p.matrixTransform(m);
    const cw = canvas.clientWidth || 800, ch = canvas.clientHeight || 500;
    const scale = Math.min(1.6, cw / ((z.x - a.x) * 1.1), ch / ((z.y - a.y) * 1.1));
    const w = cw / scale, h = ch / scale;
    box = { x: (a.x + z.x) / 2 - w / 2, y: (a.y + z.y) / 2 - h / 2, w, h };
    apply();
  }

  // details
  function row(dl, label, field, text, value) {
    const dd = el("dd", { "data-field": field }, text);
    if (value != null) dd.dataset.value = String(value);
    dl.append(el("dt", { text: label }), dd);
  }
  function showDetails(id, hover) {
    const it = items[id];
    details.dataset.item = it ? id : "";
    details.dataset.hover = hover ? "1" : "";
    if (!it) {
      details.replaceChildren(el("h3", { text: "Details" }),
        el("p", { class: "note", text: "Hover over or click a node. Click a stage or block to open it; click its frame to close it again." }));
      return;
    }
    const colour = DATA.network.colours[it.colour] || "#fff";
    const kind = el("span", { class: "kind", text: it.level === "op" ? it.type + " · " + ((DATA.network.kind_names || {})[it.colour] || it.colour) : it.level + " · " + it.type });
    kind.style.background = colour;
    const dl = el("dl");
    row(dl, "name", "id", it.id);
    if (it.label && it.label !== it.id && !/^\d+$/.test(it.label)) row(dl, "what", "label", it.label);
    if (it.where) row(dl, "spec", "where", it.where);
    row(dl, "input", "inputs", it.inputs.length ? it.inputs.map(shape).join(", ") : "—");
    row(dl, "output", "output", shape(it.output));
    const num = (label, field, unit) => row(dl, label, field,
      el("span", {}, full(it[field]) + " ", el("small", { text: "(" + human(it[field], unit) + ")" })), it[field]);
    num("params", "params"); num("MACs", "macs"); num("mem access", "mem_access");
    row(dl, "MACs/elem", "intensity", it.mem_access ? (it.macs / it.mem_access).toFixed(2) : "—");
    row(dl, "RF", "rf", it.rf || "—");
    row(dl, it.level === "op" ? "output size" : "outputs, sum", "act_bytes", human(it.act_bytes, "B"), it.act_bytes);
    row(dl, it.level === "op" ? "live while it runs" : "live peak inside", "live_bytes",
        it.live_bytes == null ? "— (not in the inference pass)" : human(it.live_bytes, "B"), it.live_bytes);
    if (it.level !== "op") row(dl, "ops", "ops", String(it.ops), it.ops);
    if (it.aux) row(dl, "aux", "aux", "auxiliary head (not in the network totals)");
    const parts = [el("h3", { text: it.id }), kind, dl];
    const t = expandTarget(id);
    if (t) parts.push(el("div", { class: "action" }, el("button", { class: "on", text: "open " + (it.level === "block" ? id : it.label || id), onclick: () => show(t, id) })));
    details.replaceChildren(...parts);
  }
  function select(id) { selected = id; mark(id); showDetails(id, false); }

  // search
  const input = $(".search input", root), list = $(".search ul", root);
  const ids = Object.keys(items);
  function find(q) {
    q = q.trim().toLowerCase();
    if (!q) return [];
    const hits = [];
    for (const id of ids) {
      const it = items[id];
      const hay = (id + " " + it.type + " " + (it.label || "")).toLowerCase();
      const at = hay.indexOf(q);
      if (at >= 0) hits.push([id.toLowerCase() === q ? -1 : at, id.length, id]);
    }
    hits.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return hits.slice(0, 30).map((h) => h[2]);
  }
  function go(id) {
    list.hidden = true;
    input.value = id;
    select(id);
    const home = net.home[id] || "stage";
    if (home === current) highlight(id); else show(home, id);
  }
  input.addEventListener("input", () => {
    const hits = find(input.value);
    list.replaceChildren(...hits.map((id, i) => el("li", { "data-id": id, class: i ? "" : "active", onclick: () => go(id) },
      id, el("span", { text: items[id].label || items[id].type }))));
    list.hidden = !hits.length;
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { const first = $("li", list); if (first) go(first.dataset.id); }
    if (ev.key === "Escape") list.hidden = true;
  });

  // toolbar
  for (const b of root.querySelectorAll("[data-level]")) b.addEventListener("click", () => show(b.dataset.level));
  $("[data-act=close]", root).addEventListener("click", () => { const v = views[current]; if (v && v.parent) show(v.parent, v.id.slice(5)); });
  $("[data-act=in]", root).addEventListener("click", () => zoom(1.4));
  $("[data-act=out]", root).addEventListener("click", () => zoom(1 / 1.4));
  $("[data-act=fit]", root).addEventListener("click", () => fit(true));

  showDetails(null);
  return { show, select, go };
}

function legend(root, colours, names) {
  for (const [k, c] of Object.entries(colours)) {
    if (!(k in names) || k === "input") continue;
    const i = el("i"); i.style.background = c;
    root.append(el("span", {}, i, names[k]));
  }
}

// ------------------------------------------------------------------ charts (plain SVG)
const METRICS = [["params", "params", ""], ["macs", "MACs", ""], ["mem_access", "memory access (elements)", ""],
                 ["live_bytes", "activation memory (peak live bytes)", "B"]];
function stageCharts(root, stages, onclick) {
  for (const [key, title, unit] of METRICS) {
    const bars = stages.map((s) => ({ id: s.id, label: s.label, value: s[key],
      colour: s.aux ? "#b9c2cc" : "#4a86c5", tip: `${s.label}: ${full(s[key])}${unit ? " " + unit : ""} (${human(s[key], unit)})` }));
    const c = barChart(title + " per stage", bars, { unit, onclick });
    c.dataset.metric = key;
    root.append(c);
  }
}

function scatter(title, points, xKey, yKey, xLabel, yLabel) {
  const W = 560, H = 320, L = 58, B = 40, T = 12, R = 90;  // room on the right for the labels
  const xs = points.map((p) => p[xKey]), ys = points.map((p) => p[yKey]);
  const lx = (v) => Math.log10(v);
  const x0 = lx(Math.min(...xs)) - 0.05, x1 = lx(Math.max(...xs)) + 0.05;
  const y0 = lx(Math.min(...ys)) - 0.05, y1 = lx(Math.max(...ys)) + 0.05;
  const px = (v) => L + (W - L - R) * (lx(v) - x0) / (x1 - x0), py = (v) => H - B - (H - T - B) * (lx(v) - y0) / (y1 - y0);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  for (let i = 0; i <= 4; i++) {
    const xv = Math.pow(10, x0 + (x1 - x0) * i / 4), yv = Math.pow(10, y0 + (y1 - y0) * i / 4);
    s.append(svg("line", { class: "grid", x1: px(xv), x2: px(xv), y1: T, y2: H - B }),
             svg("line", { class: "grid", x1: L, x2: W - R, y1: py(yv), y2: py(yv) }),
             svg("text", { x: px(xv), y: H - B + 14, "text-anchor": "middle", text: human(xv) }),
             svg("text", { x: L - 4, y: py(yv) + 3, "text-anchor": "end", text: human(yv) }));
  }
  s.append(svg("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", text: xLabel + " (log)" }),
           svg("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(T + H - B) / 2})`, text: yLabel + " (log)" }));
  for (const p of points) {
    s.append(svg("circle", { class: "point", cx: px(p[xKey]), cy: py(p[yKey]), r: p.current ? 6 : 4.5,
                             fill: p.current ? "#e6550d" : "#2c6fb7", "data-id": p.name },
                 svg("title", { text: `${p.name}: ${full(p[xKey])} ${xLabel}, ${full(p[yKey])} ${yLabel}` })),
             svg("text", { x: px(p[xKey]) + 7, y: py(p[yKey]) + 3, text: p.name, class: p.current ? "value" : "" }));
  }
  return el("div", { class: "chart" }, el("h3", { text: title }), s);
}

function lineChart(title, rows, series, unit) {
  const W = 460, H = 240, L = 52, B = 36, T = 14, R = 12;
  const ep = rows.map((r) => r.epoch);
  const vals = [];
  for (const [k] of series) for (const r of rows) if (r[k] != null) vals.push(r[k]);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  if (!vals.length) return el("div", { class: "chart" }, el("h3", { text: title }), el("p", { class: "note", text: "not logged" }));
  const ymin = Math.min(0, ...vals), ymax = Math.max(...vals) || 1;
  const e0 = Math.min(...ep), e1 = Math.max(...ep, e0 + 1);
  const px = (e) => L + (W - L - R) * (e - e0) / (e1 - e0), py = (v) => H - B - (H - T - B) * (v - ymin) / (ymax - ymin || 1);
  for (let i = 0; i <= 4; i++) {
    const v = ymin + (ymax - ymin) * i / 4;
    s.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: py(v), y2: py(v) }),
             svg("text", { x: L - 4, y: py(v) + 3, "text-anchor": "end", text: unit === "%" ? (100 * v).toFixed(0) + "%" : v.toPrecision(3) }));
  }
  s.append(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", text: "epoch" }));
  const step = Math.max(1, Math.ceil((e1 - e0) / 8));
  for (let e = Math.ceil(e0); e <= e1; e += step) s.append(svg("text", { x: px(e), y: H - B + 13, "text-anchor": "middle", text: String(e) }));
  series.forEach(([k, label, colour], i) => {
    const pts = rows.filter((r) => r[k] != null).map((r) => `${px(r.epoch)},${py(r[k])}`);
    s.append(svg("polyline", { class: "curve", "data-key": k, points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 2 }),
             svg("rect", { x: L + 10 + i * 110, y: T, width: 12, height: 4, fill: colour }),
             svg("text", { x: L + 26 + i * 110, y: T + 5, text: label }));
  });
  return el("div", { class: "chart" }, el("h3", { text: title }), s);
}

// ------------------------------------------------------------------ sections
function auditCards(root, audit) {
  for (const a of audit) {
    const flagged = !/\bok\b|passes|none\b|no /i.test(a.verdict);
    const card = el("div", { class: "card" + (flagged ? " flag" : ""), "data-key": a.key },
      el("h3", { text: a.key }), el("div", { text: a.verdict }));
    if (a.worst.length) card.append(el("ul", {}, ...a.worst.map((w) => el("li", { text: w }))));
    root.append(card);
  }
}

function reportPage() {
  const net = DATA.network;
  summaryChips(net.summary, $("#chips"));
  const diag = Diagram(net, $("#diagram"));
  legend($("#legend"), net.colours, net.kind_names);
  diag.show(DATA.initial_view || "stage");
  stageCharts($("#charts .charts"), net.stages, (id) => { diag.go(id); $("#diagram").scrollIntoView(); });
  auditCards($("#audit .audit"), net.audit);
  const t = net.tables;
  $("#frag").append(table(["block", "type", "fragments", "parallel"],
    t.fragmentation.map((f) => ({ cells: [f.block, f.type, String(f.fragments), String(f.parallel)] })), { left: [0, 1] }));
  $("#ew").append(table(["bucket", "count", "mem access", "share", "time share"],
    t.elementwise.map((b) => ({ cells: [b.bucket, String(b.count), full(b.mem_access), pct(b.mem_share), pct(b.time_share)] }))),
    el("p", { class: "note", text: `bias: ${t.bias.nodes} fused, ${full(t.bias.macs)} MACs` }));
  if (DATA.family) {
    const f = DATA.family;
    const rows = f.rows.map((r) => ({ current: r.name === f.current,
      cells: [r.name, r.width, r.depth, String(r.resolution), full(r.params), full(r.macs), r.ratio.toFixed(2) + "×"] }));
    $("#family-table").append(table(["variant", "width", "depth", "res", "params", "MACs", "MACs / base"], rows, { left: [0] }));
    const pts = [];  // one point per distinct (params, MACs): "(base)" is usually a variant too
    for (const r of f.rows) {
      const same = pts.find((p) => p.params === r.params && p.macs === r.macs && p.latency_ms === r.latency_ms);
      if (same) { same.name += " = " + r.name; same.current = same.current || r.name === f.current; }
      else pts.push({ ...r, current: r.name === f.current });
    }
    const plots = $("#family-plot");
    plots.append(scatter("MACs against params", pts, "params", "macs", "params", "MACs"));
    const timed = pts.filter((p) => p.latency_ms != null);  // filled only where a latency predictor exists
    if (timed.length > 1) plots.append(scatter("MACs against predicted latency", timed, "latency_ms", "macs", "ms", "MACs"));
  }
  if (DATA.run) {
    const r = DATA.run;
    $("#run-dir").textContent = "from " + r.dir + "/metrics.jsonl";
    $("#run-curves").append(
      lineChart("loss", r.rows, [["train_loss", "train", "#2c6fb7"], ["val_loss", "val", "#e6550d"]], ""),
      lineChart("validation accuracy", r.rows, [["val_acc1", "top-1", "#2f7d32"], ["val_acc5", "top-5", "#8e44ad"]], "%"));
    const f = r.final;
    $("#run-final").append(table(["metric", "final"], [
      ["epochs", full(f.epoch)], ["top-1", f.val_acc1 == null ? "—" : pct(f.val_acc1)],
      ["top-5", f.val_acc5 == null ? "—" : pct(f.val_acc5)], ["best top-1", r.best_acc1 == null ? "—" : pct(r.best_acc1)],
      ["train loss", f.train_loss == null ? "—" : f.train_loss.toFixed(4)], ["val loss", f.val_loss == null ? "—" : f.val_loss.toFixed(4)],
      ["images/s", f.images_per_s == null ? "—" : f.images_per_s.toFixed(1)], ["seconds", f.seconds == null ? "—" : f.seconds.toFixed(0)],
    ].map((c) => ({ cells: c }))));
  }
}

onReady(reportPage);
