// visionloop dashboard: a few pages over the read API (/api/...), no framework, no CDN.
// Labels arrive in the core's JSON (absolute pixels of the upright image); an SVG whose viewBox
// is the image's own width and height lies over each picture, so every shape lands on its pixels
// at any display size. Text is only ever set through textContent.

const SVG = "http://www.w3.org/2000/svg";
const page = document.getElementById("page");
let schema = { classes: [], keypoints: [], skeleton_indices: [] };

class SignInNeeded extends Error {}

async function api(path) {
  const answer = await fetch(path, { headers: { Accept: "application/json" } });
  if (answer.status === 401) throw new SignInNeeded(path);
  if (!answer.ok) throw new Error(`${path}: ${answer.status} ${await answer.text()}`);
  return answer.json();
}

function signIn() {
  // The token buys an HttpOnly session cookie for reads; it is also kept for this tab, since
  // approvals, promotions and rollbacks send it as a header.
  const token = el("input", { type: "password", name: "sign-in-token", placeholder: "server token",
    autocomplete: "off" });
  const status = el("span", { class: "status" });
  const form = el("form", { class: "sign-in" }, el("label", {}, "Token ", token),
    el("button", { type: "submit", text: "Sign in" }), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await fetch("/api/session", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: token.value }) });
    if (!answer.ok) {
      status.className = "status error";
      status.textContent = "refused: that is not this server's token";
      return;
    }
    sessionStorage.setItem("visionloop-token", token.value);
    await start();
  });
  page.dataset.page = "sign-in";
  page.replaceChildren(el("h1", { text: "Sign in" }),
    el("p", { text: "This server shows its project to those who hold its token (printed by 'visionloop serve')." }),
    form);
  page.dataset.ready = "true";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "style") Object.assign(node.style, value); // CSSOM: allowed by the page's CSP
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function colour(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 85% 55%)`;
}

// -- overlays --------------------------------------------------------------------------------

// COCO RLE counts: a list, or the compact string form (6 bits a character, continuation bit
// 0x20, sign bit 0x10 on the last one; from the third run on, a delta to the run two before).
function rleCounts(counts) {
  if (Array.isArray(counts)) return counts;
  const out = [];
  for (let at = 0; at < counts.length;) {
    let value = 0, shift = 0, more = true, code = 0;
    while (more) {
      code = counts.charCodeAt(at++) - 48;
      value |= (code & 0x1f) << shift;
      more = (code & 0x20) !== 0;
      shift += 5;
    }
    if (code & 0x10) value |= -1 << shift;
    if (out.length > 2) value += out[out.length - 2];
    out.push(value);
  }
  return out;
}

// A mask as a translucent picture of the image's own size (column-major runs, zeros first).
function maskImage(rle, rgb) {
  const [height, width] = rle.size;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  let index = 0;
  rleCounts(rle.counts).forEach((run, k) => {
    if (k % 2 === 1) {
      for (let i = index; i < index + run; i++) {
        const x = Math.floor(i / height), y = i % height, at = 4 * (y * width + x);
        pixels.data.set([...rgb, 110], at);
      }
    }
    index += run;
  });
  context.putImageData(pixels, 0, 0);
  return svg("image", { href: canvas.toDataURL(), x: 0, y: 0, width, height, preserveAspectRatio: "none",
    class: "mask" });
}

function rgbOf(name) {
  const probe = document.createElement("span");
  probe.style.color = colour(name);
  document.body.append(probe);
  const values = getComputedStyle(probe).color.match(/\d+/g).slice(0, 3).map(Number);
  probe.remove();
  return values;
}

function drawLabel(layer, label, dashed) {
  if (!label || label.type !== "objects") return;
  const names = label.class_names || [];
  (label.boxes || []).forEach((box, i) => {
    const [x1, y1, x2, y2] = box;
    const stroke = colour(names[i]);
    const rect = svg("rect", {
      x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1),
      fill: "none", stroke, "stroke-width": 2, "vector-effect": "non-scaling-stroke",
      "data-class": names[i] ?? "",
    });
    if (dashed) rect.setAttribute("stroke-dasharray", "6 4");
    const mask = label.masks?.[i];
    if (mask && !dashed) layer.append(maskImage(mask, rgbOf(names[i])));
    layer.append(rect);
    (label.polygons?.[i] || []).forEach((ring) => {
      layer.append(svg("polygon", {
        points: ring.map((p) => p.join(",")).join(" "), fill: stroke, "fill-opacity": 0.3,
        stroke, "stroke-width": 1, "vector-effect": "non-scaling-stroke",
      }));
    });
    const points = label.keypoints?.[i];
    if (points) {
      for (const [a, b] of schema.skeleton_indices) {
        const [pa, pb] = [points[a], points[b]];
        if (pa && pb && pa[2] > 0 && pb[2] > 0) {
          layer.append(svg("line", {
            x1: pa[0], y1: pa[1], x2: pb[0], y2: pb[1], stroke, "stroke-width": 2,
            "vector-effect": "non-scaling-stroke", class: "bone",
          }));
        }
      }
      points.forEach(([x, y, v], k) => {
        if (v > 0) {
          layer.append(svg("circle", {
            cx: x, cy: y, r: 3, fill: stroke, stroke: "#000", "stroke-width": 1,
            "vector-effect": "non-scaling-stroke", class: "keypoint",
            "data-keypoint": schema.keypoints[k] ?? String(k),
          }));
        }
      });
    }
  });
}

function picture(item, { size = 256, prediction = true } = {}) {
  const box = el("div", { class: "picture", style: { aspectRatio: `${item.width} / ${item.height}` } });
  box.append(el("img", { src: `${item.thumbnail}?size=${size}`, alt: item.name, loading: "lazy" }));
  const layer = svg("svg", {
    viewBox: `0 0 ${item.width} ${item.height}`, preserveAspectRatio: "none", "data-item": item.id,
  });
  drawLabel(layer, item.annotation?.label, false);
  if (prediction) drawLabel(layer, item.prediction?.label, true);
  box.append(layer);
  return box;
}

function summaryOf(label) {
  if (!label) return "";
  if (label.type === "class") return label.class_name;
  const counts = {};
  for (const name of label.class_names || []) counts[name] = (counts[name] || 0) + 1;
  return Object.entries(counts).map(([name, n]) => `${n} ${name}`).join(", ");
}

function badge(annotation) {
  const kind = annotation?.provenance?.kind ?? "none";
  return el("span", { class: `badge ${kind}`, text: kind });
}

// -- pages -----------------------------------------------------------------------------------

function bars(counts) {
  const box = el("div", { class: "bars" });
  const top = Math.max(1, ...Object.values(counts));
  for (const [name, count] of Object.entries(counts)) {
    const fill = el("div", { class: "fill", style: { width: `${(100 * count) / top}%` } });
    box.append(el("div", { class: "bar-row" }, el("span", { text: name }), el("div", {}, fill),
      el("span", { class: "count", text: count.toLocaleString() })));
  }
  return box;
}

// A small line chart: one polyline per series of {x, y} points, axes labelled at their ends.
function lineChart(series, { xLabel, yLabel, name, colours = {} }) {
  const [width, height, pad] = [520, 200, 36];
  const points = Object.values(series).flat();
  const [xs, ys] = [points.map((p) => p.x), points.map((p) => p.y)];
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(0, ...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - ((y - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: `chart ${name}`, role: "img" });
  chart.append(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }),
    svg("line", { x1: pad, y1: pad, x2: pad, y2: height - pad, class: "axis" }));
  const label = (text, x, y, anchor) => {
    const node = svg("text", { x, y, "text-anchor": anchor, class: "tick" });
    node.textContent = text;
    chart.append(node);
  };
  label(`${x0}`, pad, height - pad + 14, "start");
  label(`${x1} ${xLabel}`, width - pad, height - pad + 14, "end");
  label(`${+y1.toFixed(3)} ${yLabel}`, pad + 4, pad - 6, "start");
  for (const [key, values] of Object.entries(series)) {
    chart.append(svg("polyline", { points: values.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "),
      fill: "none", stroke: colours[key] ?? colour(key), "stroke-width": 2, "data-series": key }));
    const last = values[values.length - 1];
    if (last) label(key, sx(last.x) - 4, sy(last.y) - 6, "end");
  }
  return chart;
}

async function overview() {
  const data = await api("/api/overview");
  const cards = el("div", { class: "cards" });
  const figures = { items: data.items, labelled: data.labelled, unlabelled: data.unlabelled,
    ...data.labelled_by_provenance };
  for (const [name, value] of Object.entries(figures)) {
    cards.append(el("div", { class: "card", "data-figure": name },
      el("div", { class: "value", text: value.toLocaleString() }), el("div", { class: "name", text: name })));
  }
  const parts = [el("h1", { text: `${data.project}: ${data.task}` }), cards,
    el("h2", { text: "Items by split" }), bars(data.items_by_split),
    el("h2", { text: "Class balance (current labels)" }), bars(data.class_balance)];
  if (data.progress.length) {
    const series = { human: [{ x: 0, y: 0 }], auto: [{ x: 0, y: 0 }] }; // from nothing labelled
    data.progress.forEach((day, index) => {
      series.human.push({ x: index + 1, y: day.human });
      series.auto.push({ x: index + 1, y: day.auto });
    });
    parts.push(el("h2", { text: `Labelled items over time (${data.progress[0].day} to ${
      data.progress[data.progress.length - 1].day})` }), lineChart(series, { xLabel: "days", yLabel: "items", name: "progress" }));
  }
  if (data.loop && data.loop.curve.length) {
    const loop = data.loop;
    const curve = { [loop.headline_metric]: loop.curve.map((r) => ({ x: r.labels, y: r.value })) };
    const saved = loop.auto_accepted ?? 0;
    parts.push(el("h2", { text: "The loop: learning curve and labels saved" }),
      lineChart(curve, { xLabel: "human labels", yLabel: loop.headline_metric, name: "learning-curve" }),
      el("p", { class: "savings", text: `${loop.human_labels} labels paid for, ${saved} auto-accepted${
        loop.auto_accuracy === null ? "" : ` (${(100 * loop.auto_accuracy).toFixed(1)}% right)`} out of a pool of ${loop.pool}: ${
        loop.pool ? ((100 * saved) / loop.pool).toFixed(1) : 0}% of the pool labelled without a human` }));
  }
  page.replaceChildren(...parts);
}

function filterForm(params) {
  const form = el("form", { class: "filters" });
  const select = (name, options, title) => {
    const field = el("select", { name });
    field.append(el("option", { value: "", text: "any" }));
    for (const option of options) {
      const node = el("option", { value: option, text: option });
      if (params.get(name) === option) node.selected = true;
      field.append(node);
    }
    return el("label", {}, title, field);
  };
  const confidence = el("input", { name: "max_confidence", type: "number", min: 0, max: 1, step: 0.05,
    value: params.get("max_confidence") ?? "" });
  const disagreement = el("input", { name: "disagreement", type: "checkbox" });
  disagreement.checked = params.get("disagreement") === "true";
  form.append(select("class", schema.classes, "class"), select("split", ["train", "val", "test"], "split"),
    select("provenance", ["human", "auto", "model", "none"], "provenance"),
    el("label", {}, "confidence at most", confidence),
    el("label", { class: "check" }, disagreement, "human and model disagree"),
    el("button", { type: "submit", text: "Apply" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (value !== "" && key !== "disagreement") chosen.set(key, value);
    }
    if (disagreement.checked) chosen.set("disagreement", "true");
    location.hash = `#/gallery?${chosen}`;
  });
  return form;
}

function tile(item) {
  const link = el("a", { class: "tile", href: `#/items/${item.id}`, "data-item": item.id });
  const label = item.annotation?.label ?? item.prediction?.label;
  link.append(picture(item), el("div", { class: "caption" }, el("span", { text: summaryOf(label) || item.name }),
    badge(item.annotation)));
  return link;
}

async function gallery(params) {
  const grid = el("div", { class: "grid" });
  const summary = el("div", { class: "summary" });
  const more = el("button", { type: "button", text: "More" });
  page.replaceChildren(el("h1", { text: "Gallery" }), filterForm(params), summary, grid, more);
  let after = null;
  const load = async () => {
    const query = new URLSearchParams(params);
    query.set("limit", "60");
    if (after !== null) query.set("after", after);
    const data = await api(`/api/gallery?${query}`);
    for (const item of data.items) grid.append(tile(item));
    summary.textContent = `${data.total.toLocaleString()} items match; ${grid.children.length} shown`;
    after = data.next_after;
    more.hidden = after === null;
  };
  more.addEventListener("click", load);
  await load();
}

async function item(id) {
  const data = await api(`/api/items/${encodeURIComponent(id)}`);
  const rows = el("tbody");
  for (const version of data.history.slice().reverse()) {
    const who = version.provenance.annotator ?? version.provenance.model_version ?? "";
    rows.append(el("tr", {}, el("td", { text: version.version }), el("td", {}, badge(version)),
      el("td", { text: who }), el("td", { text: summaryOf(version.label) }),
      el("td", { text: version.created_at.replace("T", " ").slice(0, 19) })));
  }
  const history = el("table", {}, el("thead", {}, el("tr", {}, ...["version", "kind", "by", "label", "when"]
    .map((name) => el("th", { text: name })))), rows);
  const facts = el("table", {}, el("tbody", {},
    ...[["file", data.name], ["size", `${data.width} x ${data.height}`], ["split", data.split ?? "none"],
      ["prediction", data.prediction ? `${summaryOf(data.prediction.label)} (${data.prediction.model_version})` : "none"]]
      .map(([key, value]) => el("tr", {}, el("th", { text: key }), el("td", { text: value })))));
  page.replaceChildren(el("h1", { text: data.name }), el("div", { class: "item-view" },
    picture(data, { size: 512 }), el("div", {}, facts, el("h2", { text: "Annotation history" }), history)));
}

// -- models: versions, gate, plots, and the registry's state changes (which need the token) --------

function tokenField() {
  const field = el("input", { type: "password", name: "token", placeholder: "server token",
    autocomplete: "off", value: sessionStorage.getItem("visionloop-token") ?? "" });
  field.addEventListener("change", () => sessionStorage.setItem("visionloop-token", field.value));
  return field;
}

async function act(path, body, token, status) {
  status.textContent = "...";
  const answer = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token.value}` },
    body: JSON.stringify({ by: "dashboard", ...body }),
  });
  if (answer.ok) {
    status.className = "status done";
    status.textContent = "done";
    await route();
    return;
  }
  status.className = "status error";
  const detail = await answer.json().catch(() => ({}));
  status.textContent = `refused (${answer.status}): ${detail.detail ?? answer.statusText}`;
}

function metricsText(metrics) {
  return Object.entries(metrics || {}).filter(([, value]) => typeof value === "number")
    .slice(0, 4).map(([key, value]) => `${key} ${value.toFixed(3)}`).join(", ");
}

function versionPanel(version, aliases, token) {
  const panel = el("section", { class: "version", "data-version": version.version });
  const gate = version.gate;
  const verdict = gate ? (gate.passed ? "gate passed" : `gate failed: ${gate.reasons.join("; ")}`) : "not evaluated";
  panel.append(el("h2", { text: `${version.name}  ${version.aliases.map((a) => `[${a}]`).join(" ")}` }),
    el("p", { text: `${version.task} / ${version.family}; ${verdict}; from ${
      version.parent_version ? `v${version.parent_version}` : "pretrained weights"}; run ${version.run_id ?? "none"}` }),
    el("p", { text: metricsText(version.metrics) }));
  const approvals = el("ul", { class: "approvals" });
  for (const [alias, decision] of Object.entries(version.approvals)) {
    approvals.append(el("li", { class: `approval ${decision.decision}`, "data-alias": alias,
      text: `${decision.decision} for ${alias} by ${decision.actor} at ${when(decision.at)}: ${decision.reason ?? ""}` }));
  }
  if (!approvals.childElementCount) approvals.append(el("li", { class: "approval none", text: "no approval decisions yet" }));
  panel.append(approvals);
  if (version.autolabel?.risk_coverage.length) panel.append(riskCoverage(version.autolabel));
  const plots = el("div", { class: "plots" });
  for (const name of version.plots) {
    plots.append(el("figure", {}, el("img", { src: `/api/models/${version.version}/plots/${name}.png`, alt: name }),
      el("figcaption", { text: name.replaceAll("_", " ") })));
  }
  panel.append(plots);
  const reason = el("input", { name: "reason", placeholder: "reason (recorded)", value: "reviewed on the dashboard" });
  const alias = el("select", { name: "alias" });
  for (const name of ["production", "staging", ...Object.keys(aliases)]) {
    if (![...alias.options].some((o) => o.value === name)) alias.append(el("option", { value: name, text: name }));
  }
  const status = el("span", { class: "status" });
  const button = (text, handler) => {
    const node = el("button", { type: "button", text, "data-action": text.split(" ")[0].toLowerCase() });
    node.addEventListener("click", handler);
    return node;
  };
  panel.append(el("div", { class: "actions" }, alias, reason,
    button("Approve for alias", () => act(`/v1/models/${version.version}/approve`,
      { for: alias.value, reason: reason.value }, token, status)),
    button("Promote to alias", () => act(`/v1/models/${version.version}/promote`,
      { alias: alias.value, reason: reason.value }, token, status)),
    status));
  return panel;
}

function riskCoverage(autolabel) {
  // Observed error and its upper bound as more of the calibration set is accepted, most confident first.
  const percent = (value) => Math.round(value * 1000) / 10;
  const curve = autolabel.risk_coverage;
  const series = {
    "observed error": curve.map((p) => ({ x: percent(p.coverage), y: percent(p.error) })),
    "upper bound": curve.map((p) => ({ x: percent(p.coverage), y: percent(p.bound) })),
  };
  const target = autolabel.target_accuracy;
  if (target) {
    const allowed = percent(1 - target);
    series["allowed error"] = [{ x: series["upper bound"][0].x, y: allowed }, { x: 100, y: allowed }];
  }
  const caption = `Risk-coverage of auto-labels (run ${autolabel.run_id.slice(0, 8)}): ${
    autolabel.accepted ?? 0} of ${autolabel.candidates ?? 0} pool items accepted (${
    percent(autolabel.coverage ?? 0)}%)${target ? `, target accuracy ${percent(target)}%` : ""}, from ${
    autolabel.calibration_items ?? 0} human-labelled calibration items`;
  return el("figure", { class: "risk-coverage" },
    lineChart(series, { xLabel: "% covered", yLabel: "% error", name: "risk-coverage",
      colours: { "observed error": "#2f6fed", "upper bound": "#e8590c", "allowed error": "#2b8a3e" } }),
    el("figcaption", { text: caption }));
}

async function models() {
  const data = await api("/api/models");
  const token = tokenField();
  const aliases = el("p", { class: "summary", text: Object.entries(data.aliases)
    .map(([name, version]) => `${name} -> v${version}`).join(", ") || "no aliases yet" });
  aliases.dataset.aliases = JSON.stringify(data.aliases);
  const rollbacks = el("div", { class: "actions" });
  for (const name of Object.keys(data.aliases)) {
    const status = el("span", { class: "status" });
    const node = el("button", { type: "button", text: `Roll back ${name}`, "data-action": "rollback" });
    node.addEventListener("click", () => act(`/v1/aliases/${encodeURIComponent(name)}/rollback`,
      { reason: "rolled back on the dashboard" }, token, status));
    rollbacks.append(node, status);
  }
  const history = el("tbody");
  for (const event of data.history.slice().reverse().slice(0, 30)) {
    history.append(el("tr", {}, ...[event.created_at.replace("T", " ").slice(0, 19), event.action,
      `v${event.version}`, event.alias ?? "", event.actor, event.reason ?? ""].map((text) => el("td", { text }))));
  }
  page.replaceChildren(el("h1", { text: "Models" }),
    el("label", { class: "token" }, "Token for approvals, promotions and rollbacks ", token), aliases, rollbacks,
    ...data.versions.map((version) => versionPanel(version, data.aliases, token)),
    el("h2", { text: "Registry history" }), el("table", {}, history));
}

// -- runs and pipelines: state, steps, per-epoch metrics; refreshed while something runs --------

let refresh = null;

function when(text) {
  return text ? text.replace("T", " ").slice(0, 19) : "";
}

function statusBadge(status) {
  return el("span", { class: `badge run-${status}`, text: status });
}

function keepFresh(running) {
  clearTimeout(refresh);
  if (running) refresh = setTimeout(route, 2000);
}

async function runs(params) {
  const query = new URLSearchParams({ limit: "100" });
  if (params.get("kind")) query.set("kind", params.get("kind"));
  const data = await api(`/api/runs?${query}`);
  const rows = el("tbody");
  for (const run of data.runs) {
    const link = el("a", { href: `#/runs/${run.id}`, text: run.id.slice(0, 12) });
    rows.append(el("tr", { "data-run": run.id }, el("td", {}, link), el("td", { text: run.pipeline ?? run.kind }),
      el("td", {}, statusBadge(run.status)), el("td", { text: when(run.created_at) }),
      el("td", { text: when(run.finished_at) }), el("td", { text: run.error ?? "" })));
  }
  page.replaceChildren(el("h1", { text: "Runs and pipelines" }), el("table", {},
    el("thead", {}, el("tr", {}, ...["run", "kind", "status", "started", "finished", "error"]
      .map((name) => el("th", { text: name })))), rows));
  keepFresh(data.runs.some((run) => ["running", "waiting"].includes(run.status)));
}

async function runPage(id) {
  const run = await api(`/api/runs/${encodeURIComponent(id)}`);
  const parts = [el("h1", { text: `${run.pipeline ?? run.kind} run ${run.id.slice(0, 12)}` }),
    el("p", {}, statusBadge(run.status), ` started ${when(run.created_at)}`,
      run.finished_at ? `, finished ${when(run.finished_at)}` : "")];
  if (run.error) parts.push(el("p", { class: "error", text: run.error }));
  if (run.progress) {
    const { done, total, unit } = run.progress;
    parts.push(el("p", { class: "progress" }, el("progress", { max: total, value: done }),
      ` ${done} of ${total} ${unit}`));
  }
  if (run.steps.length) {
    const rows = el("tbody");
    for (const step of run.steps) {
      rows.append(el("tr", { "data-step": step.name }, el("td", { text: step.position + 1 }),
        el("td", { text: step.name }), el("td", {}, statusBadge(step.status)),
        el("td", { text: step.attempts }), el("td", { text: step.error ?? "" })));
    }
    parts.push(el("h2", { text: "Steps" }), el("table", { class: "steps" }, rows));
  }
  const names = Object.keys(run.metrics);
  if (names.length) {
    const epochs = new Map();
    for (const name of names) {
      for (const point of run.metrics[name]) {
        const key = point.epoch ?? point.step;
        epochs.set(key, { ...(epochs.get(key) ?? {}), [name]: point.value });
      }
    }
    const rows = el("tbody");
    for (const [epoch, values] of epochs) {
      rows.append(el("tr", {}, el("td", { text: epoch }),
        ...names.map((name) => el("td", { text: values[name] === undefined ? "" : values[name].toFixed(4) }))));
    }
    parts.push(el("h2", { text: "Metrics by epoch" }), el("table", { class: "metrics" },
      el("thead", {}, el("tr", {}, el("th", { text: "epoch" }), ...names.map((name) => el("th", { text: name })))),
      rows));
  }
  if (run.children.length) {
    parts.push(el("h2", { text: "Runs it started" }), el("ul", {}, ...run.children.map((child) =>
      el("li", {}, el("a", { href: `#/runs/${child.id}`, text: `${child.kind} ${child.id.slice(0, 12)}` }),
        " ", statusBadge(child.status)))));
  }
  if (run.kind === "pipeline") {
    const log = await api(`/api/runs/${encodeURIComponent(id)}/log`);
    parts.push(el("h2", { text: "Log" }), el("pre", { class: "log", text: log.text || "(nothing logged yet)" }));
  }
  parts.push(el("h2", { text: "Configuration" }), el("pre", { text: JSON.stringify(run.config, null, 2) }));
  page.replaceChildren(...parts);
  const log = page.querySelector("pre.log");
  if (log) log.scrollTop = log.scrollHeight;
  keepFresh(["running", "waiting"].includes(run.status));
}

async function route() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const parts = (path || "/overview").split("/").filter(Boolean);
  const params = new URLSearchParams(query || "");
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.page === parts[0]);
  }
  clearTimeout(refresh);
  page.dataset.page = parts[0];
  page.dataset.ready = "false";
  try {
    if (parts[0] === "gallery") await gallery(params);
    else if (parts[0] === "items" && parts[1]) await item(parts[1]);
    else if (parts[0] === "models") await models();
    else if (parts[0] === "runs" && parts[1]) await runPage(parts[1]);
    else if (parts[0] === "runs") await runs(params);
    else await overview();
  } catch (error) {
    if (error instanceof SignInNeeded) return signIn();
    page.replaceChildren(el("p", { class: "error", text: String(error.message || error) }));
  }
  page.dataset.ready = "true";
}

let listening = false;

async function start() {
  let data;
  try {
    data = await api("/api/overview");
  } catch (error) {
    if (error instanceof SignInNeeded) return signIn();
    throw error;
  }
  schema = data.schema;
  document.getElementById("project-name").textContent = `visionloop: ${data.project}`;
  if (!listening) window.addEventListener("hashchange", route);
  listening = true;
  await route();
}

start();
