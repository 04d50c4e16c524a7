// Confirming a case's proposed parts: three slice views across the case axes, click to place
// landmarks and tube centre points, tables for levels, bones, landmarks and protected tubes,
// and one save that sends everything as the case's next annotation version.
(function () {
  "use strict";
  const root = document.getElementById("annotate");
  if (!root) return;
  const cfg = JSON.parse(document.getElementById("annotate-config").textContent);
  const t = (key) => root.dataset["t" + key] || key;
  const geo = cfg.geometry;
  const s = geo.spacing_mm;
  const VIEW_PX = 300;
  const saved = cfg.annotations.content;
  const prop = cfg.proposal;
  const round2 = (x) => Math.round(x * 100) / 100;
  // what the surgeon edits; starts from the latest confirmed version, else from the proposal
  const state = {
    version: cfg.annotations.version,
    mode: null, // {kind: "landmark"} or {kind: "tube", index}
    levels: saved ? saved.levels.map((l) => ({ ...l, keep: true, confidence: null, reason: "" }))
      : prop.levels.map((l) => ({ name: l.name, centre_mm: l.centre_mm, bone_ids: l.bone_ids,
        keep: true, confidence: l.confidence, reason: l.reason })),
    bones: cfg.bones.map((b) => {
      const named = saved && saved.bones.find((x) => x.id === b.id);
      const c = prop.components.find((x) => x.id === b.id);
      return { id: b.id, name: named ? named.name : b.name, confidence: c ? c.confidence : null,
        reason: c ? c.reason : "", volume: c ? c.volume_mm3 : null };
    }),
    landmarks: saved ? saved.landmarks.map((m) => ({ ...m })) : [],
    zones: saved ? saved.zones.map((z) => ({ ...z, points_mm: z.points_mm.map((p) => p.slice()) }))
      : prop.canal ? [{ name: t("CanalName"), kind: "nerve", radius_mm: prop.canal.radius_mm,
        points_mm: prop.canal.points_mm.map((p) => p.slice()), proposed: true }] : [],
    status: "", conflict: null,
  };
  // slice views: one per case axis, starting at the canal's middle (else the volume centre)
  const start = prop.canal ? prop.canal.points_mm[Math.floor(prop.canal.points_mm.length / 2)]
    : geo.shape.map((n) => (n / 2) * s);
  const views = [0, 1, 2].map((axis) => {
    const [r, c] = [0, 1, 2].filter((a) => a !== axis);
    const box = root.querySelector(`[data-view="${axis}"]`);
    const canvas = box.querySelector("canvas");
    const slider = box.querySelector("input[type=range]");
    const scale = VIEW_PX / Math.max(geo.shape[r], geo.shape[c]);
    canvas.width = Math.round(geo.shape[c] * scale);
    canvas.height = Math.round(geo.shape[r] * scale);
    slider.max = String(geo.shape[axis] - 1);
    slider.value = String(Math.round(start[axis] / s));
    // superior up: a view whose rows run towards superior is drawn upside down
    const flip = geo.axes[r].plus === "S";
    box.querySelector("[data-role=right]").textContent = geo.axes[c].plus;
    box.querySelector("[data-role=down]").textContent = flip ? geo.axes[r].minus : geo.axes[r].plus;
    const view = { axis, r, c, canvas, slider, scale, flip, image: new Image(), box };
    view.image.onload = () => draw(view);
    slider.addEventListener("input", () => load(view));
    canvas.addEventListener("click", (ev) => click(view, ev));
    return view;
  });
  function load(view) {
    view.box.querySelector("[data-role=index]").textContent = view.slider.value;
    view.image.src = cfg.sliceUrl.replace("/9/999999", `/${view.axis}/${view.slider.value}`);
  }
  // a voxel centre sits in the middle of its pixel box on the canvas
  function toCanvas(view, p) {
    const y = (p[view.r] / s + 0.5) * view.scale;
    return [(p[view.c] / s + 0.5) * view.scale, view.flip ? view.canvas.height - y : y];
  }
  function fromCanvas(view, x, y) {
    const row = view.flip ? view.canvas.height - y : y;
    return [(x / view.scale - 0.5) * s, (row / view.scale - 0.5) * s];
  }
  function draw(view) {
    const g = view.canvas.getContext("2d");
    g.imageSmoothingEnabled = true;
    g.save();
    if (view.flip) {
      g.translate(0, view.canvas.height);
      g.scale(1, -1);
    }
    g.drawImage(view.image, 0, 0, view.canvas.width, view.canvas.height);
    g.restore();
    const here = Number(view.slider.value) * s;
    const px = view.scale / s;
    for (const z of state.zones) {
      const colour = z.kind === "vessel" ? "239,68,68" : "250,204,21";
      const line = z.points_mm.map((p) => toCanvas(view, p));
      // the tube projected on the view (its full width), then its centre line
      for (const [width, style] of [[2 * z.radius_mm * px, `rgba(${colour},0.25)`], [1.5, `rgb(${colour})`]]) {
        g.strokeStyle = style;
        g.lineWidth = Math.max(width, 1);
        g.lineCap = "round";
        g.lineJoin = "round";
        g.beginPath();
        line.forEach(([x, y], i) => (i === 0 ? g.moveTo(x, y) : g.lineTo(x, y)));
        if (line.length === 1) g.lineTo(line[0][0] + 0.01, line[0][1]);
        g.stroke();
      }
      g.fillStyle = `rgb(${colour})`;
      for (const [x, y] of line) g.fillRect(x - 2, y - 2, 4, 4);
      // where this slice cuts the centre line: the tube's cross-section
      g.lineWidth = 1.5;
      g.strokeStyle = `rgb(${colour})`;
      for (let i = 0; i + 1 < z.points_mm.length; i += 1) {
        const a = z.points_mm[i];
        const b = z.points_mm[i + 1];
        const da = a[view.axis] - here;
        const db = b[view.axis] - here;
        if (da * db > 0 || da === db) continue;
        const f = da / (da - db);
        const [x, y] = toCanvas(view, a.map((v, k) => v + f * (b[k] - v)));
        g.beginPath();
        g.arc(x, y, z.radius_mm * px, 0, 2 * Math.PI);
        g.stroke();
      }
    }
    g.font = "11px sans-serif";
    for (const l of state.levels.filter((x) => x.keep)) {
      const [x, y] = toCanvas(view, l.centre_mm);
      g.fillStyle = "#38bdf8";
      g.fillRect(x - 3, y - 3, 6, 6);
      g.fillText(l.name, x + 5, y - 4);
    }
    for (const m of state.landmarks) {
      const [x, y] = toCanvas(view, m.point_mm);
      g.fillStyle = Math.abs(m.point_mm[view.axis] - here) < 2 ? "#22c55e" : "rgba(34,197,94,0.45)";
      g.beginPath();
      g.arc(x, y, 3.5, 0, 2 * Math.PI);
      g.fill();
      g.fillText(m.name, x + 5, y + 12);
    }
  }
  function redraw() {
    views.forEach(draw);
    render();
  }
  function click(view, ev) {
    if (!state.mode) return;
    const rect = view.canvas.getBoundingClientRect();
    const x = ((ev.clientX - rect.left) / rect.width) * view.canvas.width;
    const y = ((ev.clientY - rect.top) / rect.height) * view.canvas.height;
    const p = [0, 0, 0];
    p[view.axis] = Number(view.slider.value) * s;
    const [pc, pr] = fromCanvas(view, x, y);
    p[view.c] = round2(pc);
    p[view.r] = round2(pr);
    if (state.mode.kind === "landmark") {
      const name = root.querySelector("#landmark-name").value.trim() || `${t("Landmark")} ${state.landmarks.length + 1}`;
      state.landmarks.push({ name, point_mm: p });
      root.querySelector("#landmark-name").value = "";
      setMode(null);
    } else {
      state.zones[state.mode.index].points_mm.push(p);
    }
    redraw();
  }
  function setMode(mode) {
    state.mode = mode;
    root.classList.toggle("picking", !!mode);
    root.querySelector("#annotate-mode").textContent = !mode ? ""
      : mode.kind === "landmark" ? t("PickLandmark") : t("PickTube").replace("%(name)s", state.zones[mode.index].name);
  }
  function cell(tr, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content); else td.textContent = content;
    tr.append(td);
    return td;
  }
  function input(value, onChange, attrs = {}) {
    const el = document.createElement("input");
    el.value = value;
    Object.assign(el, attrs);
    // only the pictures: rebuilding the tables here would replace the box being typed in
    el.addEventListener("change", () => { onChange(el.value); views.forEach(draw); });
    return el;
  }
  function button(label, onClick, attrs = {}) {
    const el = document.createElement("button");
    el.type = "button";
    el.textContent = label;
    Object.assign(el, attrs);
    el.addEventListener("click", onClick);
    return el;
  }
  const fmt = (p) => p.map((v) => v.toFixed(1)).join(", ");
  const conf = (c) => (c === null || c === undefined ? "—" : `${Math.round(c * 100)}%`);
  function render() {
    const levels = root.querySelector("#levels-table tbody");
    levels.replaceChildren(...state.levels.map((l, i) => {
      const tr = document.createElement("tr");
      const keep = input("", () => {}, { type: "checkbox", checked: l.keep });
      keep.addEventListener("change", () => { l.keep = keep.checked; redraw(); });
      cell(tr, keep);
      cell(tr, input(l.name, (v) => { l.name = v; }, { name: `level-${i}`, size: 8 }));
      cell(tr, fmt(l.centre_mm));
      cell(tr, l.bone_ids.join(", "));
      cell(tr, conf(l.confidence));
      cell(tr, l.reason).className = "muted";
      return tr;
    }));
    root.querySelector("#levels-none").hidden = state.levels.length > 0;
    const bones = root.querySelector("#bones-table tbody");
    bones.replaceChildren(...state.bones.map((b) => {
      const tr = document.createElement("tr");
      cell(tr, `#${b.id}`);
      cell(tr, input(b.name, (v) => { b.name = v; }, { name: `bone-${b.id}`, size: 12 }));
      cell(tr, b.volume === null ? "—" : `${(b.volume / 1000).toFixed(1)} cm³`);
      cell(tr, conf(b.confidence));
      cell(tr, b.reason).className = "muted";
      return tr;
    }));
    const marks = root.querySelector("#landmarks-table tbody");
    marks.replaceChildren(...state.landmarks.map((m, i) => {
      const tr = document.createElement("tr");
      cell(tr, input(m.name, (v) => { m.name = v; }, { size: 18 }));
      cell(tr, fmt(m.point_mm));
      cell(tr, button(t("Remove"), () => { state.landmarks.splice(i, 1); redraw(); }));
      return tr;
    }));
    const zones = root.querySelector("#zones-table tbody");
    zones.replaceChildren(...state.zones.map((z, i) => {
      const tr = document.createElement("tr");
      tr.dataset.zone = z.name;
      cell(tr, input(z.name, (v) => { z.name = v; }, { size: 10 }));
      const kind = document.createElement("select");
      for (const [value, label] of [["nerve", t("Nerve")], ["vessel", t("Vessel")]]) {
        kind.append(new Option(label, value, false, z.kind === value));
      }
      kind.addEventListener("change", () => { z.kind = kind.value; redraw(); });
      cell(tr, kind);
      cell(tr, input(String(z.radius_mm), (v) => { z.radius_mm = Number(v); }, { type: "number", step: "0.5", min: "0.5", className: "zone-radius", style: "width:5em" }));
      cell(tr, String(z.points_mm.length));
      const tools = document.createElement("span");
      tools.append(
        button(t("AddPoints"), () => setMode(state.mode && state.mode.index === i ? null : { kind: "tube", index: i }), { className: "zone-add-points" }),
        " ",
        button(t("UndoPoint"), () => { z.points_mm.pop(); redraw(); }),
        " ",
        button(t("Remove"), () => { state.zones.splice(i, 1); setMode(null); redraw(); }),
      );
      cell(tr, tools);
      cell(tr, z.proposed ? `${t("Proposed")} ${conf(prop.canal.confidence)}: ${prop.canal.reason}` : "").className = "muted";
      return tr;
    }));
    root.querySelector("#annotate-version").textContent = String(state.version);
  }
  root.querySelector("#add-landmark").addEventListener("click", () => setMode({ kind: "landmark" }));
  root.querySelector("#add-zone").addEventListener("click", () => {
    state.zones.push({ name: `${t("Zone")} ${state.zones.length + 1}`, kind: "nerve", radius_mm: 3, points_mm: [] });
    setMode({ kind: "tube", index: state.zones.length - 1 });
    redraw();
  });
  const saveButton = root.querySelector("#annotate-save");
  if (saveButton) saveButton.addEventListener("click", save);
  async function save() {
    const body = {
      patient_id: cfg.patientId,
      base_version: state.version,
      levels: state.levels.filter((l) => l.keep).map((l) => ({ name: l.name, centre_mm: l.centre_mm, bone_ids: l.bone_ids })),
      bones: state.bones.map((b) => ({ id: b.id, name: b.name })),
      landmarks: state.landmarks,
      zones: state.zones.map((z) => ({ name: z.name, kind: z.kind, radius_mm: z.radius_mm, points_mm: z.points_mm })),
      note: root.querySelector("#annotate-note").value,
    };
    const out = root.querySelector("#annotate-status");
    const response = await fetch(cfg.saveUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": root.dataset.csrfToken },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    out.classList.toggle("error", !response.ok);
    out.replaceChildren();
    if (response.ok) {
      state.version = data.version;
      state.conflict = null;
      state.zones.forEach((z) => { z.proposed = false; });
      out.textContent = t("Saved").replace("%(version)s", String(data.version));
      state.status = "saved";
    } else {
      const where = data && data.errors ? ` (${data.errors.map((e) => e.field).join(", ")})` : "";
      out.textContent = (data && data.detail ? data.detail : String(response.status)) + where;
      state.status = data && data.code ? data.code : String(response.status);
      if (state.status === "annotation_version_conflict") {
        const a = document.createElement("a");
        a.href = window.location.pathname;
        a.textContent = t("Reload");
        out.append(" ", a);
      }
    }
    root.dataset.status = state.status;
    render();
  }
  views.forEach(load);
  render();
  root.dataset.ready = "true";
  Object.defineProperty(window, "osteonAnnotate", {
    value: Object.freeze({
      get version() { return state.version; },
      get status() { return state.status; },
      get zones() { return JSON.parse(JSON.stringify(state.zones)); },
      get landmarks() { return JSON.parse(JSON.stringify(state.landmarks)); },
      // where a case point [mm] shows on a view's canvas, in page pixels (for tests)
      screenPoint(axis, p) {
        const v = views[axis];
        v.canvas.scrollIntoView({ block: "center" });
        const rect = v.canvas.getBoundingClientRect();
        const [x, y] = toCanvas(v, p);
        return { x: rect.left + (x / v.canvas.width) * rect.width, y: rect.top + (y / v.canvas.height) * rect.height };
      },
      setSlice(axis, index) { views[axis].slider.value = String(index); load(views[axis]); },
    }),
  });
})();
