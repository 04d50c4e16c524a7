// The plan page's 3D view: the case's bones (binary glTF from the planning API, case-frame mm)
// and the plan's elements as the checks saw them (a screw: a cylinder of its radius from the
// entry to where its tip sits), coloured by their checks. Orbit controls, orientation letters
// (from the case's patient_from_case), a scale bar; an element clicked here marks its row in the
// elements table and a row clicked there marks the element. With "set entry" pressed, a click
// on the bone surface fills the add form's entry point with the hit point; with "set target", a
// click on the bone fills the target with the point midway through the bone under the cursor.
//
// On a draft the selected element's entry and target handles can be dragged: the entry slides
// on the bone surface (the ray's first hit on the mesh), the target in the plane facing the
// camera. While dragging, the planning API's live check endpoint is called (throttled, the
// newest answer wins) and the element's readings and warnings are shown; releasing saves the
// element with the plan version the page loaded (a stale version: the server's conflict
// message, nothing changed). The case's protected zones (nerve, vessel labels) are drawn
// see-through; three slice views (slices.js) share a crosshair with the 3D view.
//
// Every word on screen comes from the template's data- attributes (Django's translations).
// window.osteonPlanner is a read-only view of the state for tests and benchmarks.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { SliceViews } from './slices.js';

const COLOURS = { ok: 0x2e9d57, warning: 0xe0a100, breach: 0xd93025 };
const BONE_COLOUR = 0xe8dcc2;
// flags that mean the implant leaves the bone or touches a nerve or vessel (the others: warning)
const BREACH_FLAGS = ['cortical_breach', 'protected_zone_contact'];
const SCALE_STEPS_MM = [1, 2, 5, 10, 20, 50, 100, 200];
const CLICK_SLOP_PX = 5;
// LPS unit vectors of the six orientation letters
const LETTERS = {
  L: [1, 0, 0], R: [-1, 0, 0], P: [0, 1, 0], A: [0, -1, 0], S: [0, 0, 1], I: [0, 0, -1],
};
// the achieved (rehearsed) paths: cyan, apart from the check colours
const ACHIEVED_COLOUR = 0x22d3ee;
// protected zones: see-through, nerve yellow, vessel magenta (red is the breach colour)
const ZONE_COLOURS = { nerve: 0xffd54f, vessel: 0xd946ef };
const HANDLE_COLOURS = { entry: 0x4fc3f7, target: 0xf472b6 };
const CROSS_COLOUR = 0xffd166;
// the live check: at most one request in flight, at most one every CHECK_INTERVAL_MS
const CHECK_INTERVAL_MS = 120;
const CSS_COLOURS = { ok: '#2e9d57', warning: '#e0a100', breach: '#d93025' };

function fmt(template, values) {
  // Django's python-format placeholders, as the templates pass them: %(name)s
  return String(template || '').replace(/%\((\w+)\)s/g, (m, key) => (key in values ? String(values[key]) : m));
}

function mm(value) {
  return value === null || value === undefined ? '—' : `${Number(value).toFixed(1)} mm`;
}

function readAchieved() {
  // the page's json_script (planning/_view3d.html): [{element_id, entry_mm, tip_mm}, ...]
  const node = document.getElementById('planner-achieved');
  if (!node) return [];
  try {
    const paths = JSON.parse(node.textContent || '[]');
    return paths.filter((p) => Array.isArray(p.entry_mm) && Array.isArray(p.tip_mm)
      && [...p.entry_mm, ...p.tip_mm].every((v) => Number.isFinite(v)));
  } catch (e) {
    return [];
  }
}

export function elementStatus(checks) {
  const flags = (checks && checks.flags) || [];
  if (flags.some((f) => BREACH_FLAGS.includes(f))) return 'breach';
  return flags.length ? 'warning' : 'ok';
}

function vec(p) {
  return new THREE.Vector3(Number(p[0]), Number(p[1]), Number(p[2]));
}

function webgl2Available() {
  try {
    const probe = document.createElement('canvas');
    return Boolean(window.WebGL2RenderingContext && probe.getContext('webgl2'));
  } catch (e) {
    return false;
  }
}

// a mesh whose local +y runs from a to b, centred between them
function alongSegment(geometry, a, b, material) {
  const dir = new THREE.Vector3().subVectors(b, a);
  const mesh = new THREE.Mesh(geometry, material);
  mesh.position.copy(a).addScaledVector(dir, 0.5);
  if (dir.lengthSq() > 0) {
    mesh.quaternion.setFromUnitVectors(new THREE.Vector3(0, 1, 0), dir.normalize());
  }
  return mesh;
}

function elementObject(element, material) {
  const checks = element.checks || {};
  const entry = vec(element.entry_mm);
  const target = vec(element.target_mm);
  const tip = checks.span_end_mm ? vec(checks.span_end_mm) : target;
  const radius = Number(checks.radius_mm) || 0;
  const group = new THREE.Group();
  const length = Math.max(entry.distanceTo(tip), 0.1);
  if (element.kind === 'osteotomy_plane') {
    // the cut: a plane through entry -> target, 30 mm across, facing its normal
    const axis = new THREE.Vector3().subVectors(target, entry);
    const normal = element.plane_normal ? vec(element.plane_normal).normalize() : new THREE.Vector3(0, 0, 1);
    const across = new THREE.Vector3().crossVectors(normal, axis).normalize();
    const up = new THREE.Vector3().crossVectors(across, normal).normalize();
    const plane = new THREE.Mesh(new THREE.PlaneGeometry(30, Math.max(axis.length(), 1)), material);
    plane.matrix.makeBasis(across, up, normal);
    plane.matrix.setPosition(entry.clone().add(target).multiplyScalar(0.5));
    plane.matrixAutoUpdate = false;
    group.add(plane);
  } else if (element.kind === 'burr_region') {
    // a sphere of the region's radius swept from entry to target
    const r = Math.max(Number(element.radius_mm) || radius, 0.5);
    const sweep = Math.max(entry.distanceTo(target), 0.01);
    group.add(alongSegment(new THREE.CapsuleGeometry(r, sweep, 8, 20), entry, target, material));
  } else {
    // screws at their radius; wires and holes thin, but never thinner than can be seen
    const r = element.kind === 'pedicle_screw' ? Math.max(radius, 0.5) : Math.max(radius, 0.6);
    group.add(alongSegment(new THREE.CylinderGeometry(r, r, length, 20), entry, tip, material));
    // the planned trajectory to the target, as a line
    const line = new THREE.Line(
      new THREE.BufferGeometry().setFromPoints([entry, target]),
      new THREE.LineBasicMaterial({ color: material.color }),
    );
    group.add(line);
  }
  group.userData.elementId = element.id;
  group.userData.mid = entry.clone().add(tip).multiplyScalar(0.5);
  return group;
}

class Planner {
  constructor(root) {
    this.root = root;
    this.words = root.dataset;
    this.orientWords = JSON.parse(root.dataset.tOrient || '{}');
    this.message = root.querySelector('#planner-message');
    this.state = {
      ready: false, elements: [], selected: null, triangles: 0, firstFrameMs: null, error: null,
      zones: [], live: null, checks: 0, saved: null, conflict: null, target: null, cancelled: 0,
    };
    // the live panel's words (data-t-* of #planner-live): tBreachGraded -> breachGraded
    const words = (document.getElementById('planner-live') || {}).dataset || {};
    this.live = Object.fromEntries(Object.entries(words)
      .filter(([k]) => /^t[A-Z]/.test(k))
      .map(([k, v]) => [k[1].toLowerCase() + k.slice(2), v]));
    this.objects = new Map();
    this.planElements = new Map();
    this.rows = new Map();
    this.picking = false;
    this.drag = null;
    this.checkSeq = 0;
    this.checkShown = 0;
    this.checkBusy = false;
    this.checkPending = null;
    this.checkLastSent = 0;
  }

  say(text, error = false) {
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.classList.toggle('error', error);
  }

  async start() {
    if (!webgl2Available()) {
      this.state.error = 'no-webgl';
      this.say(this.words.tNoWebgl, true);
      this.root.dataset.ready = 'no-webgl';
      return;
    }
    this.say(this.words.tLoading);
    let plan;
    let gltf;
    try {
      const [planResponse, meshResponse, zoneResponse, sliceResponse] = await Promise.all([
        fetch(this.root.dataset.planUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } }),
        fetch(this.root.dataset.meshUrl, { credentials: 'same-origin' }),
        fetch(this.root.dataset.zoneUrl, { credentials: 'same-origin' }),
        fetch(this.root.dataset.slicesUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } }),
      ]);
      if (!planResponse.ok) throw new Error(`${planResponse.status}`);
      if (!meshResponse.ok) {
        let detail = `${meshResponse.status}`;
        try {
          detail = (await meshResponse.json()).detail || detail;
        } catch (e) { /* not problem details */ }
        throw new Error(detail);
      }
      plan = await planResponse.json();
      const buffer = await meshResponse.arrayBuffer();
      gltf = await new GLTFLoader().parseAsync(buffer, '');
      // zones and slices are extras: the bones and elements still show without them
      if (zoneResponse.ok) {
        this.zoneGltf = await new GLTFLoader().parseAsync(await zoneResponse.arrayBuffer(), '');
      }
      if (sliceResponse.ok) this.sliceGeometry = await sliceResponse.json();
    } catch (err) {
      this.state.error = String(err.message || err);
      this.say(`${this.words.tFailed}：${this.state.error}`, true);
      this.root.dataset.ready = 'failed';
      return;
    }
    try {
      this.build(gltf, plan);
    } catch (err) {
      this.state.error = String(err.message || err);
      this.say(`${this.words.tFailed}：${this.state.error}`, true);
      this.root.dataset.ready = 'failed';
      throw err;
    }
  }

  build(gltf, plan) {
    const root = this.root;
    const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    renderer.setClearColor(0x1d232b);
    root.prepend(renderer.domElement);
    this.renderer = renderer;

    const scene = new THREE.Scene();
    this.scene = scene;
    const camera = new THREE.PerspectiveCamera(35, 1, 1, 5000);
    this.camera = camera;
    scene.add(camera);
    scene.add(new THREE.HemisphereLight(0xffffff, 0x444444, 1.6));
    const headlight = new THREE.DirectionalLight(0xffffff, 1.8);
    headlight.position.set(0.3, 0.5, 1);
    camera.add(headlight);

    // the bones, in the case frame as served
    this.boneMaterial = new THREE.MeshStandardMaterial({ color: BONE_COLOUR, roughness: 0.85, metalness: 0 });
    const bones = gltf.scene;
    let triangles = 0;
    bones.traverse((o) => {
      if (o.isMesh) {
        if (!o.geometry.attributes.normal) o.geometry.computeVertexNormals();
        o.material = this.boneMaterial;
        triangles += o.geometry.index ? o.geometry.index.count / 3 : o.geometry.attributes.position.count / 3;
      }
    });
    // the case frame is index order (its handedness may differ from the patient's): everything
    // in case mm hangs under one group placed by patient_from_case, so the world is the
    // patient's LPS frame and left stays left
    const caseRoot = new THREE.Group();
    const m = (bones.userData || {}).patient_from_case;
    if (Array.isArray(m) && m.length === 4) {
      caseRoot.matrix.set(...m.flat().map(Number));
    }
    caseRoot.matrixAutoUpdate = false;
    caseRoot.updateMatrixWorld(true);
    scene.add(caseRoot);
    this.caseRoot = caseRoot;
    caseRoot.add(bones);
    this.bones = bones;
    this.state.triangles = triangles;
    this.setTranslucent(document.getElementById('planner-translucent')?.checked ?? true);

    // the protected zones, see-through, drawn before the elements
    this.addZones();

    // the elements, coloured by their checks
    this.plan = plan;
    this.mayDrag = root.dataset.mayWrite === 'true' && plan.status === 'draft';
    for (const element of plan.elements || []) {
      this.planElements.set(element.id, element);
      this.placeElement(element);
      this.state.elements.push(Object.freeze({
        id: element.id, kind: element.kind, label: element.label, status: elementStatus(element.checks),
      }));
    }

    // the paths the newest verified rehearsals drilled, beside the planned ones: a thin cyan rod
    // from the achieved entry to the achieved tip, drawn over everything (no depth test) in the
    // transparent pass after the elements, so a path inside its planned screw still shows
    const achieved = readAchieved();
    const achievedMaterial = new THREE.MeshBasicMaterial({
      color: ACHIEVED_COLOUR, depthTest: false, transparent: true, opacity: 0.9,
    });
    for (const path of achieved) {
      const entry = vec(path.entry_mm);
      const tip = vec(path.tip_mm);
      const rod = new THREE.CylinderGeometry(0.6, 0.6, Math.max(entry.distanceTo(tip), 0.1), 12);
      // a group's renderOrder orders its whole subtree (the elements' groups have 1)
      const drawn = new THREE.Group();
      drawn.renderOrder = 2;
      drawn.add(alongSegment(rod, entry, tip, achievedMaterial));
      caseRoot.add(drawn);
    }
    this.state.achieved = achieved.map((p) => Object.freeze({ element: p.element_id, entry_mm: p.entry_mm, tip_mm: p.tip_mm }));
    this.achieved = achieved;

    // framing: the bones' box
    caseRoot.updateMatrixWorld(true);
    const box = new THREE.Box3().setFromObject(bones);
    this.centre = box.getCenter(new THREE.Vector3());
    this.radius = Math.max(box.getSize(new THREE.Vector3()).length() / 2, 10);
    this.directions = {};
    for (const [letter, lps] of Object.entries(LETTERS)) {
      this.directions[letter] = new THREE.Vector3(...lps);
    }
    this.addOverlays();
    this.addHandles();
    this.startSlices();
    this.controls = new OrbitControls(camera, renderer.domElement);
    this.controls.addEventListener('change', () => this.render());
    this.resetView();
    this.wireInteraction();
    new ResizeObserver(() => this.resize()).observe(root);
    this.resize();
    this.say('');
    this.render();
    // the first frame with the mesh has been drawn once the browser paints after it
    requestAnimationFrame(() => {
      this.state.firstFrameMs = performance.now();
      this.state.ready = true;
      root.dataset.ready = 'true';
    });
    // back from saving a drag: the saved element stays selected, and the page says it was saved
    const saved = Number(sessionStorage.getItem('osteon-planner-saved'));
    sessionStorage.removeItem('osteon-planner-saved');
    if (saved && this.planElements.has(saved)) {
      this.select(saved);
      this.liveStatus(this.live.saved, false);
    } else if (this.slices) {
      // the slices start through the first element's entry (or the volume's middle)
      const first = (plan.elements || [])[0];
      this.setCross(first ? first.entry_mm.map(Number) : this.slices.cross);
    }
  }

  resetView() {
    const fov = THREE.MathUtils.degToRad(this.camera.fov);
    const distance = (this.radius / Math.sin(fov / 2)) * 0.85;
    // from behind and a little above, as the surgeon stands at the prone patient: the screws'
    // entries and their paths into the pedicles in sight
    const from = this.directions.P.clone().multiplyScalar(0.85).addScaledVector(this.directions.S, 0.5).normalize();
    this.camera.up.copy(this.directions.S);
    this.camera.position.copy(this.centre).addScaledVector(from, distance);
    this.camera.near = Math.max(distance / 100, 0.5);
    this.camera.far = distance * 10;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(this.centre);
    this.controls.update();
  }

  setTranslucent(on) {
    // translucent: the screws inside the bone stay visible
    this.boneMaterial.transparent = on;
    this.boneMaterial.opacity = on ? 0.4 : 1;
    this.boneMaterial.depthWrite = !on;
    this.boneMaterial.needsUpdate = true;
  }

  addOverlays() {
    this.letters = {};
    for (const letter of Object.keys(LETTERS)) {
      const label = document.createElement('div');
      label.className = 'planner-orient';
      label.dataset.letter = letter;
      label.textContent = this.orientWords[letter] || letter;
      this.root.append(label);
      this.letters[letter] = label;
    }
    this.scale = document.createElement('div');
    this.scale.className = 'planner-scale';
    this.scale.innerHTML = '<div class="bar"></div><span></span>';
    this.root.append(this.scale);
    this.note = document.createElement('div');
    this.note.className = 'planner-note';
    this.note.setAttribute('role', 'status');
    this.note.hidden = true;
    this.root.append(this.note);
  }

  updateOverlays() {
    const w = this.root.clientWidth;
    const h = this.root.clientHeight;
    const sight = new THREE.Vector3().subVectors(this.controls.target, this.camera.position).normalize();
    const margin = 22;
    for (const [letter, label] of Object.entries(this.letters)) {
      // a letter along the line of sight has no place on the screen
      const dir = this.directions[letter];
      label.hidden = Math.abs(dir.dot(sight)) > 0.8;
      const p = this.centre.clone().addScaledVector(dir, this.radius * 0.9).project(this.camera);
      const x = Math.min(Math.max(((p.x + 1) / 2) * w, margin), w - margin);
      const y = Math.min(Math.max(((1 - p.y) / 2) * h, margin / 1.5), h - margin / 1.5);
      label.style.left = `${x}px`;
      label.style.top = `${y}px`;
    }
    // mm on screen at the orbit centre's depth
    const distance = this.camera.position.distanceTo(this.controls.target);
    const pxPerMm = h / (2 * distance * Math.tan(THREE.MathUtils.degToRad(this.camera.fov) / 2));
    const step = SCALE_STEPS_MM.filter((mm) => mm * pxPerMm <= 140).pop() || SCALE_STEPS_MM[0];
    this.scale.firstChild.style.width = `${step * pxPerMm}px`;
    this.scale.lastChild.textContent = `${step} mm`;
    this.scale.dataset.mm = String(step);
  }

  resize() {
    const w = Math.max(this.root.clientWidth, 1);
    const h = Math.max(this.root.clientHeight, 1);
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.render();
  }

  render() {
    if (!this.renderer) return;
    this.renderer.render(this.scene, this.camera);
    this.updateOverlays();
  }

  // ---- elements, zones, handles, slices ----

  placeElement(element, checks = element.checks) {
    // (re)draws one element from its points and checks, coloured by their status
    const old = this.objects.get(element.id);
    if (old) {
      this.caseRoot.remove(old);
      old.traverse((o) => { if (o.geometry) o.geometry.dispose(); });
    }
    const status = elementStatus(checks);
    const material = old ? old.userData.material : new THREE.MeshStandardMaterial({
      roughness: 0.4,
      metalness: 0.3,
      // drawn after the bone (render order 1 in the transparent pass): over a translucent bone
      // an element keeps its own colour; an opaque bone still hides what lies inside it
      transparent: true,
      opacity: element.kind === 'osteotomy_plane' || element.kind === 'burr_region' ? 0.55 : 1,
      side: THREE.DoubleSide,
    });
    material.color.setHex(COLOURS[status]);
    const object = elementObject({ ...element, checks }, material);
    object.traverse((o) => { o.renderOrder = 1; });
    object.userData.material = material;
    object.userData.status = status;
    this.caseRoot.add(object);
    this.objects.set(element.id, object);
    return object;
  }

  addZones() {
    this.state.zones = [];
    if (!this.zoneGltf) return;
    this.zoneGltf.scene.traverse((o) => {
      if (!o.isMesh) return;
      const kind = o.name in ZONE_COLOURS ? o.name : (o.parent && o.parent.name in ZONE_COLOURS ? o.parent.name : null);
      if (!kind) return;
      if (!o.geometry.attributes.normal) o.geometry.computeVertexNormals();
      o.material = new THREE.MeshStandardMaterial({
        color: ZONE_COLOURS[kind], transparent: true, opacity: 0.45, depthWrite: false, roughness: 0.7,
      });
      if (!this.state.zones.includes(kind)) this.state.zones.push(kind);
    });
    this.caseRoot.add(this.zoneGltf.scene);
    // the legend names only the zones this case has
    for (const item of document.querySelectorAll('[data-zone-legend]')) {
      item.hidden = !this.state.zones.includes(item.dataset.zoneLegend);
    }
    const none = document.getElementById('planner-zones-none');
    if (none) none.hidden = this.state.zones.length > 0;
  }

  addHandles() {
    // the selected element's entry and target, drawn over everything so they can be grabbed: a
    // group's renderOrder orders its whole subtree, so they and the crosshair's marker hang
    // under one drawn after the elements' groups (1) and the rehearsed paths' (2); wider than
    // the widest screw's radius so they show around it
    const overlay = new THREE.Group();
    overlay.renderOrder = 3;
    this.caseRoot.add(overlay);
    this.handles = {};
    for (const [name, colour] of Object.entries(HANDLE_COLOURS)) {
      const handle = new THREE.Mesh(
        new THREE.SphereGeometry(3.2, 20, 14),
        new THREE.MeshBasicMaterial({ color: colour, depthTest: false, transparent: true, opacity: 0.95 }),
      );
      handle.renderOrder = 3;
      handle.visible = false;
      handle.userData.handle = name;
      overlay.add(handle);
      this.handles[name] = handle;
    }
    this.crossMarker = new THREE.Mesh(
      new THREE.SphereGeometry(1.1, 12, 10),
      new THREE.MeshBasicMaterial({ color: CROSS_COLOUR, depthTest: false, transparent: true }),
    );
    this.crossMarker.visible = false;
    overlay.add(this.crossMarker);
  }

  showHandles() {
    const element = this.planElements.get(this.state.selected);
    const on = Boolean(this.mayDrag && element);
    for (const [name, handle] of Object.entries(this.handles)) {
      handle.visible = on;
      if (on) handle.position.copy(vec(this.drag && this.drag.id === element.id ? this.drag[name] : element[`${name}_mm`]));
    }
  }

  startSlices() {
    const root = document.getElementById('planner-slices');
    if (!root || !this.sliceGeometry) {
      if (root) root.hidden = true;
      return;
    }
    const template = root.dataset.sliceUrl;
    this.slices = new SliceViews(root, this.sliceGeometry, {
      urlOf: (view, index) => template.replace('VIEW', view).replace('999999', String(index)),
      words: { sliceNumber: root.dataset.tSliceNumber },
      onPoint: (p) => {
        // on a slice the surgeon sees the cortex's edge: the point is taken as clicked
        if (this.picking) this.fillPoint(this.picking, new THREE.Vector3(...p));
        else this.setCross(p);
      },
    });
    this.slicePaths();
    root.dataset.ready = 'true';
  }

  slicePaths() {
    // what the slices draw: each element (the dragged one where it is now) and rehearsed paths
    if (!this.slices) return;
    const paths = [];
    for (const element of this.planElements.values()) {
      const dragged = this.drag && this.drag.id === element.id;
      const checks = dragged && this.drag.checks ? this.drag.checks : element.checks || {};
      const entry = dragged ? this.drag.entry : element.entry_mm;
      const target = dragged ? this.drag.target : element.target_mm;
      const end = !dragged && checks.span_end_mm ? checks.span_end_mm : target;
      paths.push({
        entry: entry.map(Number), end: end.map(Number), radius_mm: Number(checks.radius_mm) || 0,
        colour: CSS_COLOURS[elementStatus(checks)], dashed: false,
      });
    }
    for (const path of this.achieved || []) {
      paths.push({ entry: path.entry_mm, end: path.tip_mm, radius_mm: 0, colour: '#22d3ee', dashed: true });
    }
    this.slices.setPaths(paths);
  }

  setCross(p) {
    // the crosshair shared by the slices and the 3D view (case mm)
    if (this.slices) this.slices.setCross(p);
    const shown = this.slices ? this.slices.cross : p;
    this.state.cross = shown.map((v) => Number(v.toFixed(2)));
    this.crossMarker.position.set(...shown);
    this.crossMarker.visible = true;
    this.render();
  }

  // ---- dragging and the live check ----

  beginDrag(name, pointerId) {
    const element = this.planElements.get(this.state.selected);
    this.drag = {
      id: element.id, handle: name, pointerId, moved: false,
      entry: element.entry_mm.map(Number), target: element.target_mm.map(Number), checks: null,
      // the target moves in the plane through it facing the camera
      plane: new THREE.Plane().setFromNormalAndCoplanarPoint(
        this.camera.getWorldDirection(new THREE.Vector3()),
        this.caseRoot.localToWorld(vec(element.target_mm)),
      ),
    };
    this.controls.enabled = false;
    this.root.classList.add('dragging');
    this.showNote(this.words.tDragging);
  }

  moveDrag(clientX, clientY) {
    const drag = this.drag;
    const caster = this.ray(clientX, clientY);
    let point = null;
    if (drag.handle === 'entry') {
      // the entry snaps to the bone surface
      const hit = caster.intersectObject(this.bones, true)[0];
      if (hit) point = this.caseRoot.worldToLocal(hit.point.clone());
    } else {
      const world = caster.ray.intersectPlane(drag.plane, new THREE.Vector3());
      if (world) point = this.caseRoot.worldToLocal(world);
    }
    if (!point) return;
    drag[drag.handle] = [point.x, point.y, point.z].map((v) => Number(v.toFixed(2)));
    drag.moved = true;
    const element = this.planElements.get(drag.id);
    // until the check answers, the implant keeps its length along the new axis
    const shown = { ...element, entry_mm: drag.entry, target_mm: drag.target };
    const checks = drag.checks || { ...element.checks, span_end_mm: null };
    this.placeElement(shown, checks);
    this.showHandles();
    this.slicePaths();
    this.render();
    this.requestCheck();
  }

  elementPayload(element, entry, target) {
    return {
      kind: element.kind,
      label: element.label,
      entry_mm: entry,
      target_mm: target,
      implant_id: element.implant_id || '',
      plane_normal: element.plane_normal,
      radius_mm: element.radius_mm,
    };
  }

  requestCheck() {
    const drag = this.drag;
    if (!drag) return;
    const element = this.planElements.get(drag.id);
    this.checkPending = { id: drag.id, seq: ++this.checkSeq, body: { element: this.elementPayload(element, drag.entry, drag.target) } };
    this.pumpCheck();
  }

  pumpCheck() {
    // one request in flight, spaced by CHECK_INTERVAL_MS; the newest position waits its turn,
    // older ones are dropped (latest wins)
    if (this.checkBusy || !this.checkPending) return;
    const wait = this.checkLastSent + CHECK_INTERVAL_MS - performance.now();
    if (wait > 0) {
      if (!this.checkTimer) this.checkTimer = setTimeout(() => { this.checkTimer = null; this.pumpCheck(); }, wait);
      return;
    }
    const job = this.checkPending;
    this.checkPending = null;
    this.checkBusy = true;
    this.checkLastSent = performance.now();
    this.api(this.root.dataset.checkUrl, 'POST', job.body)
      .then(({ ok, body }) => {
        // an answer for a drag already released (saved or refused) no longer describes the page
        if (!ok || job.seq < this.checkShown || !this.drag || this.drag.id !== job.id) return;
        this.checkShown = job.seq;
        this.state.checks += 1;
        this.drag.checks = body;
        const element = this.planElements.get(job.id);
        this.placeElement({ ...element, entry_mm: this.drag.entry, target_mm: this.drag.target }, body);
        this.slicePaths();
        this.render();
        this.showLive(element, body, job.body.element);
      })
      .catch(() => {})
      .finally(() => { this.checkBusy = false; this.pumpCheck(); });
  }

  cancelDrag() {
    // Esc while dragging: the element goes back to where it is saved and nothing is sent
    const drag = this.drag;
    this.drag = null;
    this.checkPending = null;
    this.checkShown = this.checkSeq + 1;
    this.controls.enabled = true;
    this.root.classList.remove('dragging');
    this.showNote('');
    const canvas = this.renderer.domElement;
    if (canvas.hasPointerCapture(drag.pointerId)) canvas.releasePointerCapture(drag.pointerId);
    const element = this.planElements.get(drag.id);
    this.showLive(element, element.checks || {}, element);
    this.placeElement(element);
    this.showHandles();
    this.slicePaths();
    this.render();
    this.state.cancelled += 1;
    this.liveStatus(this.words.tDragCancelled, false);
  }

  async endDrag() {
    const drag = this.drag;
    // checks still queued or in flight for this drag are dropped
    this.checkPending = null;
    this.checkShown = this.checkSeq + 1;
    this.controls.enabled = true;
    this.root.classList.remove('dragging');
    this.showNote('');
    if (!drag.moved) {
      this.drag = null;
      return;
    }
    const element = this.planElements.get(drag.id);
    this.say('');
    this.liveStatus(this.live.saving, false);
    const url = this.root.dataset.elementUrl.replace('999999', String(drag.id));
    const { ok, status, body } = await this.api(url, 'PUT', {
      version: this.plan.version, element: this.elementPayload(element, drag.entry, drag.target),
    });
    this.drag = null;
    if (ok) {
      // the page's table and readings are the server's: load it again with the saved plan
      this.state.saved = body.version;
      this.liveStatus(this.live.saved, false);
      this.root.dataset.saved = String(body.version);
      sessionStorage.setItem('osteon-planner-saved', String(drag.id));
      window.location.reload();
      return;
    }
    // refused (a stale version, a point outside the volume): the element goes back, nothing changed
    this.state.conflict = (body && body.code) || String(status);
    this.showLive(element, element.checks || {}, element);
    this.placeElement(element);
    this.showHandles();
    this.slicePaths();
    this.render();
    const detail = (body && body.detail) || String(status);
    this.liveStatus(detail, true, body && body.code === 'plan_version_conflict');
  }

  async api(url, method, payload) {
    const response = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: {
        Accept: 'application/json', 'Content-Type': 'application/json', 'X-CSRFToken': this.root.dataset.csrfToken,
      },
      body: JSON.stringify(payload),
    });
    let body = null;
    try { body = await response.json(); } catch (e) { /* no body */ }
    return { ok: response.ok, status: response.status, body };
  }

  // ---- the live readings (words from the template, numbers from the check) ----

  showLive(element, checks, placed) {
    const panel = document.getElementById('planner-live');
    if (!panel || !element) return;
    const t = this.live;
    const status = elementStatus(checks);
    const flags = new Set(checks.flags || []);
    const zoneName = { nerve: t.nerve, vessel: t.vessel, protected_zone: t.protectedZone };
    const parts = [];
    for (const key of ['nerve', 'vessel', 'protected_zone']) {
      const zone = (checks.zones || {})[key];
      if (!zone || (key === 'protected_zone' && zone.clearance_mm === null)) continue;
      parts.push({ key: `zone-${key}`, text: `${zoneName[key]} ${zone.clearance_mm === null ? t.none15 : mm(zone.clearance_mm)}`, bad: zone.clearance_mm !== null && zone.clearance_mm <= 0 });
    }
    parts.push({ key: 'breach', text: `${t.breach} ${mm(checks.breach_mm)}`, bad: flags.has('cortical_breach') });
    parts.push({ key: 'grade', text: `${t.grade} ${checks.gr_grade || '—'}`, bad: flags.has('cortical_breach') });
    const diameter = checks.radius_mm ? `Ø${(2 * checks.radius_mm).toFixed(1)} mm` : '—';
    parts.push({ key: 'width', text: `${t.width} ${mm(checks.bone_width_mm)} / ${diameter}`, bad: flags.has('wider_than_bone') });
    parts.push({ key: 'depth', text: `${t.depth} ${mm(checks.bone_depth_mm)} / ${mm(checks.span_length_mm)}`, bad: flags.has('longer_than_bone') });
    // each flag as the sentence the table uses (check_readings.py)
    const warnings = [];
    const screw = element.kind === 'pedicle_screw';
    if (flags.has('protected_zone_contact')) {
      for (const key of ['nerve', 'vessel', 'protected_zone']) {
        const zone = (checks.zones || {})[key];
        if (zone && zone.clearance_mm !== null && zone.clearance_mm <= 0) {
          warnings.push(fmt(t.touches, { zone: zoneName[key], at: (zone.at_mm || 0).toFixed(1), depth: (-zone.clearance_mm).toFixed(1) }));
        }
      }
    }
    if (flags.has('cortical_breach')) {
      const breach = (checks.breach_mm || 0).toFixed(1);
      warnings.push(checks.gr_grade ? fmt(t.breachGraded, { breach, grade: checks.gr_grade }) : fmt(t.breachOnly, { breach }));
    }
    if (flags.has('wider_than_bone')) {
      warnings.push(fmt(screw ? t.widerScrew : t.wider, { diameter: (2 * (checks.radius_mm || 0)).toFixed(1), width: (checks.bone_width_mm || 0).toFixed(1) }));
    }
    if (flags.has('longer_than_bone')) {
      warnings.push(fmt(screw ? t.longerScrew : t.longer, { length: (checks.span_length_mm || 0).toFixed(1), depth: (checks.bone_depth_mm || 0).toFixed(1) }));
    }
    panel.hidden = false;
    panel.dataset.status = status;
    panel.dataset.elementId = String(element.id);
    panel.querySelector('[data-role="live-title"]').textContent = `${element.label || '—'} · ${t.title}`;
    panel.querySelector('[data-role="live-points"]').textContent = `${t.entry} (${placed.entry_mm.map((v) => v.toFixed(1)).join(', ')}) · ${t.target} (${placed.target_mm.map((v) => v.toFixed(1)).join(', ')})`;
    const list = panel.querySelector('[data-role="live-readings"]');
    list.replaceChildren(...parts.map((part) => {
      const item = document.createElement('span');
      item.className = `reading${part.bad ? ' flagged' : ''}`;
      item.dataset.check = part.key;
      item.textContent = part.text;
      return item;
    }));
    const ul = panel.querySelector('[data-role="live-warnings"]');
    ul.replaceChildren(...warnings.map((w) => {
      const li = document.createElement('li');
      li.textContent = w;
      return li;
    }));
    ul.hidden = warnings.length === 0;
    this.state.live = Object.freeze({ id: element.id, status, flags: [...flags], warnings: warnings.slice() });
    this.rows.get(element.id)?.setAttribute('data-live', status);
  }

  liveStatus(text, error, conflict = false) {
    const node = document.getElementById('planner-live-status');
    if (!node) return;
    node.hidden = !text;
    node.classList.toggle('error', error);
    node.setAttribute('role', error ? 'alert' : 'status');
    node.replaceChildren(document.createTextNode(text || ''));
    if (conflict) {
      const link = document.createElement('a');
      link.href = window.location.pathname;
      link.textContent = this.live.reload;
      link.id = 'planner-reload';
      node.append(' ', link);
    }
  }

  // ---- picking and the elements table ----

  wireInteraction() {
    const canvas = this.renderer.domElement;
    let down = null;
    // capture phase: a press on a handle starts a drag and never reaches the orbit controls
    canvas.addEventListener('pointerdown', (e) => {
      down = [e.clientX, e.clientY];
      if (!this.mayDrag || e.button !== 0 || this.picking || this.state.selected === null) return;
      const shown = Object.values(this.handles).filter((h) => h.visible);
      const hit = this.ray(e.clientX, e.clientY).intersectObjects(shown, false)[0];
      if (!hit) return;
      e.stopImmediatePropagation();
      e.preventDefault();
      canvas.setPointerCapture(e.pointerId);
      this.beginDrag(hit.object.userData.handle, e.pointerId);
    }, { capture: true });
    canvas.addEventListener('pointermove', (e) => {
      if (this.drag && e.pointerId === this.drag.pointerId) this.moveDrag(e.clientX, e.clientY);
    });
    canvas.addEventListener('pointerup', (e) => {
      if (this.drag && e.pointerId === this.drag.pointerId) {
        down = null;
        this.endDrag();
        return;
      }
      if (!down || Math.hypot(e.clientX - down[0], e.clientY - down[1]) > CLICK_SLOP_PX) return;
      down = null;
      this.pick(e.clientX, e.clientY);
    });
    for (const row of document.querySelectorAll('#elements-table tbody tr[data-element-id]')) {
      const id = Number(row.dataset.elementId);
      this.rows.set(id, row);
      row.addEventListener('click', (e) => {
        if (e.target.closest('a, button, input, select')) return;
        this.select(id);
      });
    }
    for (const which of ['entry', 'target']) {
      const button = document.getElementById(`planner-set-${which}`);
      if (button && document.getElementById(`id_${which}_x`)) {
        button.addEventListener('click', () => this.setPicking(this.picking === which ? false : which));
      } else if (button) {
        button.hidden = true;
      }
    }
    document.getElementById('planner-translucent')?.addEventListener('change', (e) => {
      this.setTranslucent(e.target.checked);
      this.render();
    });
    document.getElementById('planner-reset')?.addEventListener('click', () => this.resetView());
    window.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.drag) {
        e.preventDefault();
        this.cancelDrag();
      }
    });
  }

  setPicking(mode) {
    // mode: 'entry', 'target' or false
    this.picking = mode;
    this.root.classList.toggle('picking', Boolean(mode));
    document.getElementById('planner-set-entry')?.setAttribute('aria-pressed', String(mode === 'entry'));
    document.getElementById('planner-set-target')?.setAttribute('aria-pressed', String(mode === 'target'));
    this.showNote(mode === 'entry' ? this.words.tEntryPrompt : mode === 'target' ? this.words.tTargetPrompt : '');
  }

  showNote(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  ray(clientX, clientY) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const ndc = new THREE.Vector2(
      ((clientX - rect.left) / rect.width) * 2 - 1,
      -((clientY - rect.top) / rect.height) * 2 + 1,
    );
    const caster = new THREE.Raycaster();
    caster.setFromCamera(ndc, this.camera);
    return caster;
  }

  pick(clientX, clientY) {
    const caster = this.ray(clientX, clientY);
    const boneHits = caster.intersectObject(this.bones, true);
    if (this.picking === 'entry') {
      // the entry snaps to the bone surface: the nearest hit of the ray on the mesh
      if (!boneHits[0]) return;
      this.fillPoint('entry', this.caseRoot.worldToLocal(boneHits[0].point.clone()));
      return;
    }
    if (this.picking === 'target') {
      // a target lies inside the bone: midway between where the ray enters and leaves it
      if (!boneHits[0]) return;
      const inside = boneHits[0].point.clone().add((boneHits[1] || boneHits[0]).point).multiplyScalar(0.5);
      this.fillPoint('target', this.caseRoot.worldToLocal(inside));
      return;
    }
    const hit = caster.intersectObjects([...this.objects.values()], true).find((h) => h.object.isMesh);
    if (hit) {
      let o = hit.object;
      while (o && o.userData.elementId === undefined) o = o.parent;
      if (o) this.select(o.userData.elementId, { scroll: true });
      return;
    }
    // a click on the bone moves the slices' crosshair there
    if (boneHits[0]) {
      const p = this.caseRoot.worldToLocal(boneHits[0].point.clone());
      this.setCross([p.x, p.y, p.z]);
    }
  }

  fillPoint(which, point) {
    const values = [point.x, point.y, point.z];
    ['x', 'y', 'z'].forEach((axis, i) => {
      const input = document.getElementById(`id_${which}_${axis}`);
      input.value = values[i].toFixed(2);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    });
    this.markers = this.markers || {};
    if (!this.markers[which]) {
      this.markers[which] = new THREE.Mesh(new THREE.SphereGeometry(1.2, 16, 12), new THREE.MeshBasicMaterial({ color: HANDLE_COLOURS[which] }));
      this.caseRoot.add(this.markers[which]);
    }
    this.markers[which].position.copy(point);
    this.setPicking(false);
    const said = which === 'entry' ? this.words.tEntrySet : this.words.tTargetSet;
    this.showNote(`${said} (${values.map((v) => v.toFixed(1)).join(', ')})`);
    this.state[which] = values.map((v) => Number(v.toFixed(2)));
    this.setCross(values);
  }

  select(id, { scroll = false } = {}) {
    this.state.selected = this.objects.has(id) ? id : null;
    for (const [elementId, object] of this.objects) {
      object.userData.material.emissive.setHex(elementId === id ? 0x6a6a6a : 0x000000);
    }
    for (const [rowId, row] of this.rows) {
      row.classList.toggle('planner-selected', rowId === id);
      if (rowId === id) row.setAttribute('aria-current', 'true');
      else row.removeAttribute('aria-current');
    }
    const row = this.rows.get(id);
    if (scroll && row) row.scrollIntoView({ block: 'nearest' });
    // the selected element's handles, its stored readings, and the slices through its entry
    this.showHandles();
    const element = this.planElements.get(id);
    if (element) {
      this.showLive(element, element.checks || {}, element);
      this.liveStatus(this.mayDrag ? this.words.tDragHint : '', false);
      this.setCross(element.entry_mm.map(Number));
    }
    this.render();
  }

  screenPoint(world) {
    const rect = this.renderer.domElement.getBoundingClientRect();
    const p = world.clone().project(this.camera);
    return { x: rect.left + ((p.x + 1) / 2) * rect.width, y: rect.top + ((1 - p.y) / 2) * rect.height };
  }
}

function debugView(planner) {
  const s = planner.state;
  return Object.freeze({
    get ready() { return s.ready; },
    get error() { return s.error; },
    get elements() { return s.elements.slice(); },
    get achieved() { return (s.achieved || []).slice(); },
    get selected() { return s.selected; },
    get triangles() { return s.triangles; },
    get firstFrameMs() { return s.firstFrameMs; },
    get entry() { return s.entry ? s.entry.slice() : null; },
    get target() { return s.target ? s.target.slice() : null; },
    get zones() { return s.zones.slice(); },
    get live() { return s.live; },
    get checks() { return s.checks; },
    get conflict() { return s.conflict; },
    get cross() { return s.cross ? s.cross.slice() : null; },
    get dragging() { return Boolean(planner.drag); },
    get cancelled() { return s.cancelled; },
    // where an element's entry / target handle is on screen (client px), once it is selected
    handleScreenPoint(name) {
      const h = planner.handles && planner.handles[name];
      return h && h.visible ? planner.screenPoint(planner.caseRoot.localToWorld(h.position.clone())) : null;
    },
    // where a case point (mm) is on screen, in the 3D view or in a slice view
    caseScreenPoint(p) {
      return planner.screenPoint(planner.caseRoot.localToWorld(new THREE.Vector3(...p)));
    },
    sliceScreenPoint(view, p) {
      return planner.slices ? planner.slices.screenPoint(view, p) : null;
    },
    // where an element's middle, or the bones' centre, is on screen (client px)
    elementScreenPoint(id) {
      const o = planner.objects.get(id);
      return o ? planner.screenPoint(planner.caseRoot.localToWorld(o.userData.mid.clone())) : null;
    },
    boneScreenPoint() {
      return planner.centre ? planner.screenPoint(planner.centre) : null;
    },
  });
}

function main() {
  const root = document.getElementById('planner-3d');
  if (!root) return;
  const planner = new Planner(root);
  Object.defineProperty(window, 'osteonPlanner', { value: debugView(planner), writable: false, configurable: false });
  planner.start();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
