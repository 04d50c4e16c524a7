// The plan page's 3D view: the case's bones (binary glTF from the planning API, case-frame mm)
// and the plan's elements as the checks saw them (a screw: a cylinder of its radius from the
// entry to where its tip sits), coloured by their checks. Orbit controls, orientation letters
// (from the case's patient_from_case), a scale bar; an element clicked here marks its row in the
// elements table and a row clicked there marks the element. With "set entry" pressed, a click
// on the bone surface fills the add form's entry point with the hit point.
//
// Every word on screen comes from the template's data- attributes (Django's translations).
// window.osteonPlanner is a read-only view of the state for tests and benchmarks.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

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
    this.state = { ready: false, elements: [], selected: null, triangles: 0, firstFrameMs: null, error: null };
    this.objects = new Map();
    this.rows = new Map();
    this.picking = false;
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
      const [planResponse, meshResponse] = await Promise.all([
        fetch(this.root.dataset.planUrl, { credentials: 'same-origin', headers: { Accept: 'application/json' } }),
        fetch(this.root.dataset.meshUrl, { credentials: 'same-origin' }),
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

    // the elements, coloured by their checks
    for (const element of plan.elements || []) {
      const status = elementStatus(element.checks);
      const material = new THREE.MeshStandardMaterial({
        color: COLOURS[status],
        roughness: 0.4,
        metalness: 0.3,
        // drawn after the bone (render order 1 in the transparent pass): over a translucent bone
        // an element keeps its own colour; an opaque bone still hides what lies inside it
        transparent: true,
        opacity: element.kind === 'osteotomy_plane' || element.kind === 'burr_region' ? 0.55 : 1,
        side: THREE.DoubleSide,
      });
      const object = elementObject(element, material);
      object.traverse((o) => { o.renderOrder = 1; });
      object.userData.material = material;
      caseRoot.add(object);
      this.objects.set(element.id, object);
      this.state.elements.push(Object.freeze({ id: element.id, kind: element.kind, label: element.label, status }));
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

  // ---- picking and the elements table ----

  wireInteraction() {
    const canvas = this.renderer.domElement;
    let down = null;
    canvas.addEventListener('pointerdown', (e) => { down = [e.clientX, e.clientY]; });
    canvas.addEventListener('pointerup', (e) => {
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
    const entryButton = document.getElementById('planner-set-entry');
    if (entryButton && document.getElementById('id_entry_x')) {
      entryButton.addEventListener('click', () => this.setPicking(!this.picking));
    } else if (entryButton) {
      entryButton.hidden = true;
    }
    document.getElementById('planner-translucent')?.addEventListener('change', (e) => {
      this.setTranslucent(e.target.checked);
      this.render();
    });
    document.getElementById('planner-reset')?.addEventListener('click', () => this.resetView());
  }

  setPicking(on) {
    this.picking = on;
    this.root.classList.toggle('picking', on);
    document.getElementById('planner-set-entry')?.setAttribute('aria-pressed', String(on));
    this.showNote(on ? this.words.tEntryPrompt : '');
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
    if (this.picking) {
      // the entry snaps to the bone surface: the nearest hit of the ray on the mesh
      const hit = caster.intersectObject(this.bones, true)[0];
      if (!hit) return;
      this.fillEntry(this.caseRoot.worldToLocal(hit.point.clone()));
      return;
    }
    const hit = caster.intersectObjects([...this.objects.values()], true).find((h) => h.object.isMesh);
    if (!hit) return;
    let o = hit.object;
    while (o && o.userData.elementId === undefined) o = o.parent;
    if (o) this.select(o.userData.elementId, { scroll: true });
  }

  fillEntry(point) {
    const values = [point.x, point.y, point.z];
    ['x', 'y', 'z'].forEach((axis, i) => {
      const input = document.getElementById(`id_entry_${axis}`);
      input.value = values[i].toFixed(2);
      input.dispatchEvent(new Event('input', { bubbles: true }));
      input.dispatchEvent(new Event('change', { bubbles: true }));
    });
    if (!this.marker) {
      this.marker = new THREE.Mesh(new THREE.SphereGeometry(1.2, 16, 12), new THREE.MeshBasicMaterial({ color: 0x4fc3f7 }));
      this.caseRoot.add(this.marker);
    }
    this.marker.position.copy(point);
    this.setPicking(false);
    this.showNote(`${this.words.tEntrySet} (${values.map((v) => v.toFixed(1)).join(', ')})`);
    this.state.entry = values.map((v) => Number(v.toFixed(2)));
    this.render();
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
