// The planner's three slice views (axial, sagittal, coronal) of the case's CT grid, served one
// slice at a time as bone-windowed PNG by the planning API (planning/slices.py), in the case
// frame of the plan's points. Each view shows its slice number of total, the patient's
// directions on four sides (from the server's layout), a scale bar, the crosshair shared with
// the other views and the 3D view, and the plan's elements (and rehearsed paths) projected onto
// it: a line for the whole path, a dot where it crosses the slice shown.
//
// Words come from the template's data- attributes; this file only fills in numbers.

const SCALE_STEPS_MM = [1, 2, 5, 10, 20, 50, 100, 200];
const CROSS_COLOUR = '#ffd166';
const CLICK_SLOP_PX = 4;

function format(template, values) {
  return template.replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m));
}

export class SliceViews {
  // geometry: the API's slice geometry; urlOf(view, index): the slice's URL; onPoint(p, view):
  // a click at case point p (mm) in a view
  constructor(root, geometry, { urlOf, words, onPoint }) {
    this.root = root;
    this.geometry = geometry;
    this.spacing = geometry.spacing_mm;
    this.shape = geometry.shape;
    this.urlOf = urlOf;
    this.words = words;
    this.onPoint = onPoint;
    this.paths = []; // {entry, end, colour, dashed}
    this.views = {};
    // the crosshair starts in the middle of the volume
    this.cross = this.shape.map((n) => ((n - 1) / 2) * this.spacing);
    for (const figure of root.querySelectorAll('[data-slice-view]')) {
      this.views[figure.dataset.sliceView] = this.makeView(figure, geometry.views[figure.dataset.sliceView]);
    }
    new ResizeObserver(() => this.drawAll()).observe(root);
  }

  makeView(figure, layout) {
    const canvas = document.createElement('canvas');
    figure.querySelector('.planner-slice-box').append(canvas);
    const view = {
      figure, layout, canvas, image: null, index: null, wanted: null, loaded: 0,
      label: figure.querySelector('[data-role="slice-number"]'),
      scale: figure.querySelector('.planner-scale'),
    };
    for (const side of ['left', 'right', 'top', 'bottom']) {
      const letter = figure.querySelector(`[data-side="${side}"]`);
      letter.textContent = layout.letters[side];
      letter.dataset.letter = layout.letters[side];
    }
    let down = null;
    canvas.addEventListener('pointerdown', (e) => { down = [e.clientX, e.clientY]; });
    canvas.addEventListener('pointerup', (e) => {
      if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > CLICK_SLOP_PX) return;
      down = null;
      const p = this.caseAt(view, e.clientX, e.clientY);
      if (p) this.onPoint(p, layout.name);
    });
    canvas.addEventListener('wheel', (e) => {
      // the wheel steps the view's slice: the crosshair moves along the view's normal
      e.preventDefault();
      const k = layout.normal_axis;
      const index = Math.min(Math.max(this.sliceIndex(view) + Math.sign(e.deltaY), 0), layout.count - 1);
      const p = this.cross.slice();
      p[k] = index * this.spacing;
      this.setCross(p);
    }, { passive: false });
    return view;
  }

  sliceIndex(view) {
    const k = view.layout.normal_axis;
    return Math.min(Math.max(Math.round(this.cross[k] / this.spacing), 0), view.layout.count - 1);
  }

  setCross(p) {
    this.cross = p.map((v, k) => Math.min(Math.max(v, 0), (this.shape[k] - 1) * this.spacing));
    this.root.dataset.cross = this.cross.map((v) => v.toFixed(2)).join(',');
    this.drawAll();
  }

  setPaths(paths) {
    this.paths = paths;
    this.drawAll();
  }

  // image pixel (column, row; centres at +0.5) of a case point, and its depth along the normal
  pixelOf(view, p) {
    const { layout } = view;
    const i = p.map((v) => v / this.spacing);
    const col = layout.right_flip ? layout.width - 1 - i[layout.right_axis] : i[layout.right_axis];
    const row = layout.down_flip ? layout.height - 1 - i[layout.down_axis] : i[layout.down_axis];
    return { x: col + 0.5, y: row + 0.5, depth: i[layout.normal_axis] };
  }

  caseAt(view, clientX, clientY) {
    const rect = view.canvas.getBoundingClientRect();
    const s = view.canvas.width / view.layout.width;
    const col = ((clientX - rect.left) * (view.canvas.width / rect.width)) / s - 0.5;
    const row = ((clientY - rect.top) * (view.canvas.height / rect.height)) / s - 0.5;
    const { layout } = view;
    if (col < -0.5 || row < -0.5 || col > layout.width - 0.5 || row > layout.height - 0.5) return null;
    const i = [0, 0, 0];
    i[layout.right_axis] = layout.right_flip ? layout.width - 1 - col : col;
    i[layout.down_axis] = layout.down_flip ? layout.height - 1 - row : row;
    i[layout.normal_axis] = this.sliceIndex(view);
    return i.map((v) => v * this.spacing);
  }

  // screen point (client px) of a case point in a view, for tests
  screenPoint(name, p) {
    const view = this.views[name];
    const rect = view.canvas.getBoundingClientRect();
    const s = view.canvas.width / view.layout.width;
    const q = this.pixelOf(view, p);
    return { x: rect.left + (q.x * s * rect.width) / view.canvas.width, y: rect.top + (q.y * s * rect.height) / view.canvas.height };
  }

  drawAll() {
    for (const view of Object.values(this.views)) this.draw(view);
  }

  draw(view) {
    const { layout, canvas } = view;
    const box = canvas.parentElement;
    const fit = Math.min(box.clientWidth / layout.width, box.clientHeight / layout.height);
    if (!(fit > 0)) return;
    const ratio = Math.min(window.devicePixelRatio || 1, 2);
    const w = Math.round(layout.width * fit);
    const h = Math.round(layout.height * fit);
    if (canvas.width !== Math.round(w * ratio)) canvas.width = Math.round(w * ratio);
    if (canvas.height !== Math.round(h * ratio)) canvas.height = Math.round(h * ratio);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    const index = this.sliceIndex(view);
    view.label.textContent = format(this.words.sliceNumber, { n: index + 1, total: layout.count });
    view.figure.dataset.slice = String(index);
    this.load(view, index);
    const g = canvas.getContext('2d');
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.fillStyle = '#000';
    g.fillRect(0, 0, canvas.width, canvas.height);
    const s = canvas.width / layout.width;
    if (view.image && view.index === index) {
      g.imageSmoothingEnabled = true;
      g.drawImage(view.image, 0, 0, canvas.width, canvas.height);
    }
    // the elements: the path projected, bold and with a dot where it crosses this slice
    for (const path of this.paths) {
      const a = this.pixelOf(view, path.entry);
      const b = this.pixelOf(view, path.end);
      g.strokeStyle = path.colour;
      // the implant's own width (its diameter at this zoom), see-through, then its axis
      g.lineWidth = Math.max(1.5 * ratio, ((2 * (path.radius_mm || 0)) / this.spacing) * s);
      g.globalAlpha = 0.45;
      g.beginPath();
      g.moveTo(a.x * s, a.y * s);
      g.lineTo(b.x * s, b.y * s);
      g.stroke();
      g.globalAlpha = 1;
      g.lineWidth = 1.5 * ratio;
      g.setLineDash(path.dashed ? [4 * ratio, 3 * ratio] : []);
      g.beginPath();
      g.moveTo(a.x * s, a.y * s);
      g.lineTo(b.x * s, b.y * s);
      g.stroke();
      g.setLineDash([]);
      const t = (index - a.depth) / (b.depth - a.depth);
      if (Number.isFinite(t) && t >= 0 && t <= 1) {
        g.globalAlpha = 1;
        g.fillStyle = path.colour;
        g.beginPath();
        g.arc((a.x + t * (b.x - a.x)) * s, (a.y + t * (b.y - a.y)) * s, 3.5 * ratio, 0, 2 * Math.PI);
        g.fill();
      }
      // the entry as a ring
      g.globalAlpha = 1;
      g.lineWidth = 1.5 * ratio;
      g.beginPath();
      g.arc(a.x * s, a.y * s, 4 * ratio, 0, 2 * Math.PI);
      g.stroke();
    }
    g.globalAlpha = 1;
    // the crosshair: where the other two views cut this one
    const c = this.pixelOf(view, this.cross);
    g.strokeStyle = CROSS_COLOUR;
    g.lineWidth = 1 * ratio;
    g.setLineDash([6 * ratio, 4 * ratio]);
    g.beginPath();
    g.moveTo(c.x * s, 0);
    g.lineTo(c.x * s, canvas.height);
    g.moveTo(0, c.y * s);
    g.lineTo(canvas.width, c.y * s);
    g.stroke();
    g.setLineDash([]);
    view.figure.dataset.crossX = (c.x * s / ratio).toFixed(1);
    view.figure.dataset.crossY = (c.y * s / ratio).toFixed(1);
    // the scale bar: the longest step that fits a quarter of the view
    const pxPerMm = (s / ratio) / this.spacing;
    const step = SCALE_STEPS_MM.filter((mm) => mm * pxPerMm <= w / 4).pop() || SCALE_STEPS_MM[0];
    view.scale.firstChild.style.width = `${step * pxPerMm}px`;
    view.scale.lastChild.textContent = `${step} mm`;
    view.scale.dataset.mm = String(step);
  }

  load(view, index) {
    if (view.wanted === index) return;
    view.wanted = index;
    const image = new Image();
    image.onload = () => {
      // latest wins: an older slice arriving late is dropped
      if (view.wanted !== index) return;
      view.image = image;
      view.index = index;
      view.loaded += 1;
      view.figure.dataset.loaded = String(index);
      this.draw(view);
    };
    image.onerror = () => { if (view.wanted === index) view.figure.dataset.loaded = 'error'; };
    image.src = this.urlOf(view.layout.name, index);
  }
}
