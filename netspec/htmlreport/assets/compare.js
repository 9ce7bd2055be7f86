/* netspec compare --html: the side-by-side page (after common.js, in the same scope). */
function comparePage() {
  const c = DATA.compare, nets = c.network.networks, labels = c.labels;
  const crow = c.stages.map((r) => ({ key: r.row, sides: r.networks }));
  const letters = labels.map((_, i) => String.fromCharCode(65 + (i % 26)) + (i >= 26 ? i : ""));
  const palette = ["#4a86c5", "#e6550d", "#2f7d32", "#8e44ad", "#b5530b", "#17becf"];
  const chips = $("#chips");
  labels.forEach((l, i) => chips.append(el("span", { class: "chip" }, letters[i] + " ", el("b", { text: l }))));
  // side-by-side diagram: pan and zoom, hover shows the aligned stage
  const wrap = $("#diagram");
  const canvas = $(".canvas", wrap);
  inflate(DATA.diagram).then((text) => {
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const s = document.importNode(doc.documentElement, true);
    s.removeAttribute("width"); s.removeAttribute("height");
    s.setAttribute("preserveAspectRatio", "xMidYMin meet");
    canvas.replaceChildren(s);
    canvas.dataset.ready = "compare";
    const vb = s.viewBox.baseVal;
    let box = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    const f0 = { ...box };
    const apply = () => s.setAttribute("viewBox", `${box.x} ${box.y} ${box.w} ${box.h}`);
    const zoom = (k) => { const w = box.w / k, h = box.h / k; box = { x: box.x + (box.w - w) / 2, y: box.y + (box.h - h) / 2, w, h }; apply(); };
    $("[data-act=in]", wrap).onclick = () => zoom(1.4);
    $("[data-act=out]", wrap).onclick = () => zoom(1 / 1.4);
    $("[data-act=fit]", wrap).onclick = () => { box = { ...f0 }; apply(); };
    canvas.addEventListener("wheel", (ev) => { ev.preventDefault(); zoom(Math.exp(-ev.deltaY * 0.0015)); }, { passive: false });
    let start = null;
    canvas.addEventListener("pointerdown", (ev) => { start = { x: ev.clientX, y: ev.clientY, box: { ...box } }; canvas.setPointerCapture(ev.pointerId); });
    canvas.addEventListener("pointermove", (ev) => { if (!start) return; const k = box.w / canvas.clientWidth;
      box = { ...box, x: start.box.x - (ev.clientX - start.x) * k, y: start.box.y - (ev.clientY - start.y) * k }; apply(); });
    canvas.addEventListener("pointerup", () => { start = null; });
  });
  // whole-network table
  const keys = [["params", "params", full], ["macs", "MACs", full], ["mem_access", "mem access", full],
                ["intensity", "MACs/element", (v) => v.toFixed(1)], ["activation_peak_bytes", "activation peak", (v) => human(v, "B")],
                ["rf", "RF (features)", String], ["blocks", "blocks", String],
                ["fragments_per_block", "fragments/block", (v) => v.toFixed(1)], ["parallel", "parallel (max)", String],
                ["elementwise_share", "element-wise share", pct], ["depthwise_share", "depthwise share", pct]];
  const head = ["network", ...letters, ...letters.slice(1).map((k) => `${k}/${letters[0]}`)];
  const rows = keys.map(([k, label, f]) => ({ cells: [label, ...nets.map((n) => f(n[k])),
    ...nets.slice(1).map((n) => (typeof n[k] === "number" && nets[0][k] ? (n[k] / nets[0][k]).toFixed(3) + "×" : ""))] }));
  $("#net-table").append(table(head, rows));
  // per aligned row: grouped bars, one per network
  const charts = $("#charts .charts");
  for (const [key, title] of [["params", "params"], ["macs", "MACs"], ["mem_access", "memory access (elements)"]]) {
    const groups = crow.map((r) => r.sides.map((s, i) => ({ id: r.key, group: r.key, label: r.key, value: s ? s[key] : 0,
      colour: palette[i % palette.length], tip: `${r.key} · ${letters[i]} ${s ? s.names.join(", ") : "—"}: ${s ? full(s[key]) : "—"}` })));
    const ch = barChart(title + " per aligned stage", groups.flat(), { groups, unit: "" });
    ch.dataset.metric = key;
    charts.append(ch);
  }
  const key = el("div", { class: "legend" });
  labels.forEach((l, i) => { const sw = el("i"); sw.style.background = palette[i % palette.length]; key.append(el("span", {}, sw, letters[i] + " " + l)); });
  $("#charts").append(key);
  // stage table
  const sh = ["row", ...letters.flatMap((k) => [`${k} stage`, `${k} output`, `${k} params`, `${k} MACs`, `${k} RF`])];
  const sr = crow.map((r) => ({ cells: [r.key, ...r.sides.flatMap((s) => (s ? [s.names.join(", "), shape(s.shape), human(s.params), human(s.macs), s.rf] : ["—", "", "", "", ""]))] }));
  $("#stage-table").append(table(sh, sr, { left: [0] }));
  // guidelines
  const audit = $("#audit .audit");
  for (const g of Object.keys(nets[0].guidelines)) {
    audit.append(el("div", { class: "card", "data-key": g }, el("h3", { text: g }),
      el("ul", {}, ...nets.map((n, i) => el("li", { text: `${letters[i]}: ${n.guidelines[g]}` })))));
  }
  if (c.notes && c.notes.length) $("#notes").append(...c.notes.map((n) => el("p", { class: "note", text: "note: " + n })));
}

onReady(comparePage);
