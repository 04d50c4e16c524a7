// Osteon imaging viewer: Cornerstone3D stack view for radiographs and CT slices, MPR for CT volumes.
//
// The page renders <div id="osteon-viewer" data-config="ID"> and a json_script element ID holding
// {modality, imageUrls: [...], instanceIds: [...], mpr: bool, geometryUrl, keyImagesUrl}, the
// URLs in viewing order (along the slice normal). Every image is fetched from the shell's own
// /imaging/instances/<id>/file endpoint (access-checked and audited there); nothing comes from a
// CDN. A URL ending in #slice=<instance id> (the report page's key images) opens on that slice.
//
// Loading on a slow link (docs/viewer.md): the start slice (the middle one) first, shown at once
// in the axial view; meanwhile the series' geometry (each slice's position, ~100 bytes each);
// with it the volume is laid out and the three reformats appear, filling in as the other slices
// arrive from the start slice outwards, counted on the progress bar. A series whose slices differ in
// orientation, spacing or size (geometry not uniform) waits for every slice, as a reformat of it
// cannot be laid out from one slice's header.
import * as core from '@cornerstonejs/core';
import * as tools from '@cornerstonejs/tools';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { ViewOverlay, crosshairPoint, fill } from './overlays.js';
import { KeyImagePanel } from './keyImages.js';

const { Enums: CoreEnums, RenderingEngine, volumeLoader, utilities: coreUtilities } = core;
const { ToolGroupManager, Enums: ToolEnums } = tools;
const MouseBindings = ToolEnums.MouseBindings;

// window/level presets in Hounsfield units (CT) or stored values (radiographs): width, centre
export const PRESETS = {
  bone: { windowWidth: 2000, windowCenter: 500 },
  soft: { windowWidth: 400, windowCenter: 40 },
};

const ENGINE_ID = 'osteon-engine';
const TOOL_GROUP_ID = 'osteon-tools';
const VOLUME_ID = 'cornerstoneStreamingImageVolume:osteon-series';
// tools a toolbar button can put on the primary (left) mouse button
const PRIMARY_TOOLS = {
  windowLevel: tools.WindowLevelTool.toolName,
  pan: tools.PanTool.toolName,
  zoom: tools.ZoomTool.toolName,
  length: tools.LengthTool.toolName,
  angle: tools.AngleTool.toolName,
  roi: tools.EllipticalROITool.toolName,
};
// tools whose click on an image starts a measurement (not a crosshair move)
const MEASURING = new Set(['length', 'angle', 'roi']);

function setState(root, state, message) {
  root.dataset.state = state;
  const status = root.querySelector('[data-role="status"]');
  if (status && message !== undefined) status.textContent = message;
}

// Some radiographs (e.g. RG1_J2KR.dcm from pydicom-data) carry Pixel Spacing "0\\0". Cornerstone
// takes it as given, the image plane collapses to zero size and the viewport shows only its
// black background. A zero, negative or non-numeric spacing means "not known": the image is
// drawn at 1 unit per pixel, as for a file with no spacing at all, and it is not calibrated.
const badSpacing = (value) => !(Number.isFinite(Number(value)) && Number(value) > 0);
let askingLowerProviders = false;

function unknownSpacingProvider(type, imageId, options) {
  if (askingLowerProviders || (type !== 'imagePlaneModule' && type !== 'calibratedPixelSpacing')) {
    return undefined;
  }
  askingLowerProviders = true;
  let found;
  try {
    found = core.metaData.get(type, imageId, options);
  } finally {
    askingLowerProviders = false;
  }
  if (!found || !(badSpacing(found.rowPixelSpacing) || badSpacing(found.columnPixelSpacing))) {
    return undefined; // the ordinary providers' answer stands
  }
  if (type === 'calibratedPixelSpacing') return null;
  return {
    ...found,
    rowPixelSpacing: 1,
    columnPixelSpacing: 1,
    pixelSpacing: [1, 1],
    usingDefaultValues: true,
  };
}

// Before a slice's file has arrived, the DICOM loader knows nothing of it, and a volume cannot be
// laid out. This provider answers for such a slice from the series' geometry (the server read it
// from the stored headers: position, rescale) and, for what every slice of a uniform series
// shares (orientation, spacing, size, pixel format), from a slice already loaded. It is asked
// last: once a slice's own file is in, the loader's answer from that file wins.
const FROM_TEMPLATE = new Set([
  'imagePlaneModule',
  'imagePixelModule',
  'modalityLutModule',
  'voiLutModule',
  'generalSeriesModule',
  'transferSyntax',
]);

function addGeometryProvider(imageIds, geometry, templateImageId) {
  const byImageId = new Map(imageIds.map((imageId, i) => [imageId, geometry.slices[i]]));
  const provider = (type, imageId) => {
    const slice = byImageId.get(imageId);
    if (!slice || imageId === templateImageId || !FROM_TEMPLATE.has(type)) return undefined;
    const template = core.metaData.get(type, templateImageId);
    if (!template) return undefined;
    if (type === 'imagePlaneModule') {
      return { ...template, imagePositionPatient: slice.position_mm, sliceLocation: undefined };
    }
    if (type === 'modalityLutModule') {
      return {
        ...template,
        rescaleSlope: slice.rescale_slope,
        rescaleIntercept: slice.rescale_intercept,
      };
    }
    return template;
  };
  core.metaData.addProvider(provider, -1000);
}

// the geometry, or null when the reformats must wait for every slice (not uniform, or unknown)
async function fetchGeometry(url, instanceIds) {
  if (!url) return null;
  try {
    const response = await fetch(url, {
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    if (!response.ok) return null;
    const geometry = await response.json();
    const same = geometry.slices.map((s) => s.instance_id).join() === instanceIds.join();
    return geometry.uniform && same ? geometry : null;
  } catch (error) {
    console.error(error);
    return null;
  }
}

// the slice to open on: #slice=<instance id> when the link names one of this series', else the
// middle one
function startIndex(instanceIds, total) {
  const named = Number(new URLSearchParams(window.location.hash.slice(1)).get('slice'));
  const index = instanceIds ? instanceIds.indexOf(named) : -1;
  return index >= 0 ? index : Math.floor((total - 1) / 2);
}

function makeImageIds(imageUrls) {
  // wadouri needs absolute URLs: the loader resolves them outside the page's base
  return imageUrls.map((url) => `wadouri:${new URL(url, window.location.href).href}`);
}

function setupTools(viewportIds) {
  for (const Tool of [
    tools.WindowLevelTool,
    tools.PanTool,
    tools.ZoomTool,
    tools.StackScrollTool,
    tools.LengthTool,
    tools.AngleTool,
    tools.EllipticalROITool,
  ]) {
    tools.addTool(Tool);
  }
  const group = ToolGroupManager.createToolGroup(TOOL_GROUP_ID);
  for (const name of Object.values(PRIMARY_TOOLS)) group.addTool(name);
  group.addTool(tools.StackScrollTool.toolName);
  // left = window/level (changed by the toolbar), middle = pan, right = zoom, wheel = slices
  group.setToolActive(tools.WindowLevelTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Primary }],
  });
  group.setToolActive(tools.PanTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Auxiliary }],
  });
  group.setToolActive(tools.ZoomTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Secondary }],
  });
  group.setToolActive(tools.StackScrollTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Wheel }],
  });
  group.setToolPassive(tools.LengthTool.toolName);
  group.setToolPassive(tools.AngleTool.toolName);
  group.setToolPassive(tools.EllipticalROITool.toolName);
  for (const viewportId of viewportIds) group.addViewport(viewportId, ENGINE_ID);
  return group;
}

function selectPrimaryTool(group, key) {
  const wanted = PRIMARY_TOOLS[key];
  // only one tool may own the left button; the others keep their other bindings
  for (const [otherKey, name] of Object.entries(PRIMARY_TOOLS)) {
    if (name === wanted) continue;
    if (otherKey === 'pan') {
      group.setToolActive(name, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
    } else if (otherKey === 'zoom') {
      group.setToolActive(name, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
    } else {
      group.setToolPassive(name);
    }
  }
  group.setToolActive(wanted, { bindings: [{ mouseButton: MouseBindings.Primary }] });
}

// slice indices from `start` outwards: start, start+1, start-1, start+2, ... (viewing order)
export function middleOut(count, start) {
  const order = [start];
  for (let d = 1; order.length < count; d++) {
    if (start + d < count) order.push(start + d);
    if (start - d >= 0) order.push(start - d);
  }
  return order;
}

// fetch and decode the images in `order`, `parallel` at a time (a browser opens six connections
// per host over HTTP/1.1); `onLoaded(count)` after each. The order holds within a few images.
async function loadInOrder(imageIds, order, onLoaded, parallel = 6) {
  let next = 0;
  let loaded = 0;
  async function fetchNext() {
    while (next < order.length) {
      const index = order[next];
      next += 1;
      // through the registered loader, not dicomImageLoader.wadouri.loadImage: that one is the
      // legacy loader, whose metadata provider is not registered, and it fails on every slice
      await core.imageLoader.loadAndCacheImage(imageIds[index]);
      loaded += 1;
      onLoaded(loaded);
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, order.length) }, fetchNext));
}

// the first image, in a stack viewport on `element`, while the rest of the series streams in
async function showFirstImage(engine, viewportId, element, imageIds, index) {
  engine.enableElement({
    viewportId,
    type: CoreEnums.ViewportType.STACK,
    element,
    defaultOptions: { background: [0, 0, 0] },
  });
  const viewport = engine.getViewport(viewportId);
  await viewport.setStack(imageIds, index);
  viewport.render();
  return viewport;
}

// the three reformats of the volume, laid out from the geometry before the slices arrive; they
// fill in as the slices come, fetched in `order` (indices into imageIds). `onLoaded(count)` after
// each slice; the returned `loaded` settles once every slice is in the volume.
async function showMprStreaming(engine, elements, imageIds, order, onLoaded) {
  // the loader fetches the first and last slices before it lays the volume out (the first image
  // stays on screen meanwhile)
  const volume = await volumeLoader.createAndCacheVolume(VOLUME_ID, { imageIds });
  // the request pool serves first in, first out, and load() queues its requests last first: so
  // sorted last-to-first in viewing order, the slices are fetched from the start slice outwards
  const rank = new Map(order.map((index, r) => [imageIds[index], r]));
  const requestsOf = volume.getImageLoadRequests.bind(volume);
  volume.getImageLoadRequests = (priority) =>
    requestsOf(priority).sort((a, b) => rank.get(b.imageId) - rank.get(a.imageId));
  const progress = (event) => {
    if (event.detail.volumeId === VOLUME_ID) onLoaded(event.detail.framesProcessed);
  };
  core.eventTarget.addEventListener(CoreEnums.Events.IMAGE_VOLUME_MODIFIED, progress);
  const ours = new Set(imageIds);
  const loaded = new Promise((resolve, reject) => {
    // a slice that cannot be had leaves a hole in every reformat: the reader must know
    const failed = (event) => {
      if (ours.has(event.detail.imageId)) reject(event.detail.error ?? new Error('image load'));
    };
    core.eventTarget.addEventListener(CoreEnums.Events.IMAGE_LOAD_ERROR, failed);
    volume.load(() => {
      core.eventTarget.removeEventListener(CoreEnums.Events.IMAGE_VOLUME_MODIFIED, progress);
      core.eventTarget.removeEventListener(CoreEnums.Events.IMAGE_LOAD_ERROR, failed);
      resolve();
    });
  });
  engine.disableElement('first');
  const viewports = await showMpr(engine, elements, imageIds, volume);
  return { viewports, loaded };
}

// the three reformats of the volume (created and loading, or built here from a full cache)
async function showMpr(engine, elements, imageIds, streamingVolume) {
  const orientations = {
    axial: CoreEnums.OrientationAxis.AXIAL,
    sagittal: CoreEnums.OrientationAxis.SAGITTAL,
    coronal: CoreEnums.OrientationAxis.CORONAL,
  };
  engine.setViewports(
    Object.entries(orientations).map(([viewportId, orientation]) => ({
      viewportId,
      type: CoreEnums.ViewportType.ORTHOGRAPHIC,
      element: elements[viewportId],
      defaultOptions: { orientation, background: [0, 0, 0] },
    })),
  );
  if (!streamingVolume) {
    const volume = await volumeLoader.createAndCacheVolume(VOLUME_ID, { imageIds });
    volume.load();
  }
  await core.setVolumesForViewports(engine, [{ volumeId: VOLUME_ID }], Object.keys(orientations));
  engine.renderViewports(Object.keys(orientations));
  return Object.keys(orientations).map((id) => engine.getViewport(id));
}

function applyPreset(viewports, key) {
  for (const viewport of viewports) {
    if (key === 'default') {
      viewport.resetProperties();
    } else {
      const { windowWidth, windowCenter } = PRESETS[key];
      const voiRange = coreUtilities.windowLevel.toLowHighRange(windowWidth, windowCenter);
      viewport.setProperties({ voiRange });
    }
    viewport.render();
  }
}

function describe(annotation) {
  // a length in mm, an angle in degrees, a region's mean and spread in HU with its area
  const stats = Object.values(annotation.data?.cachedStats ?? {})[0] ?? {};
  const num = (v, digits) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '?');
  switch (annotation.metadata?.toolName) {
    case tools.LengthTool.toolName:
      return { kind: 'length', value: num(stats.length, 1), text: `${num(stats.length, 1)} ${stats.unit ?? 'mm'}` };
    case tools.AngleTool.toolName:
      return { kind: 'angle', value: num(stats.angle, 1), text: `${num(stats.angle, 1)}°` };
    case tools.EllipticalROITool.toolName:
      return {
        kind: 'roi',
        value: num(stats.mean, 0),
        text: `${num(stats.mean, 0)} ± ${num(stats.stdDev, 0)} HU · ${num(stats.area, 1)} ${stats.areaUnit ?? 'mm²'}`,
      };
    default:
      return null;
  }
}

function listMeasurements(root) {
  // measurements are listed beside the image so they can be read and copied
  const list = root.querySelector('[data-role="measurements"]');
  if (!list) return;
  const found = tools.annotation.state.getAllAnnotations().map(describe).filter(Boolean);
  list.replaceChildren(
    ...found.map((m) => {
      const item = document.createElement('li');
      item.textContent = m.text;
      item.dataset.kind = m.kind;
      item.dataset.value = m.value;
      if (m.kind === 'length') item.dataset.lengthMm = m.value;
      return item;
    }),
  );
}

// the page's translated sentences for the overlays and the progress bar (viewer.html data-text-*)
function pageTexts(root) {
  const d = root.dataset;
  return {
    slice: d.textSlice ?? '{n}/{total}',
    position: d.textPosition ?? '{position} mm / {thickness} mm',
    windowLevel: d.textWindowLevel ?? 'W {width} L {center}',
    progress: d.textProgress ?? '{loaded}/{total}',
    progressDone: d.textProgressDone ?? '{total}',
    waiting: d.textWaiting ?? '{loaded}/{total}',
    filling: d.textFilling ?? '{loaded}/{total}',
    keySlice: d.textKeySlice ?? '{n}/{total}',
    keySaved: d.textKeySaved ?? 'saved',
    keyRemoved: d.textKeyRemoved ?? 'removed',
    keyFailed: d.textKeyFailed ?? 'not saved',
  };
}

function showProgress(root, texts, loaded, total) {
  const done = loaded >= total;
  const box = root.querySelector('[data-role="loading"]');
  const bar = root.querySelector('[data-role="progress"]');
  if (bar) {
    bar.max = total;
    bar.value = loaded;
  }
  if (box) box.dataset.done = String(done);
  root.dataset.loaded = String(loaded);
  const label = root.querySelector('[data-role="progress-label"]');
  if (label) label.textContent = fill(done ? texts.progressDone : texts.progress, { loaded, total });
  for (const placeholder of root.querySelectorAll('[data-role="placeholder"]')) {
    placeholder.textContent = fill(texts.waiting, { loaded, total });
  }
  // reformats shown while they fill: each says so until every slice is in
  for (const badge of root.querySelectorAll('[data-role="filling"]')) {
    badge.textContent = fill(texts.filling, { loaded, total });
    if (done) badge.hidden = true;
  }
}

// milliseconds since the page was requested (performance.now() counts from navigation start),
// once the frame that shows it has been drawn; benchmarks/viewer_load.py reads these
async function markDrawn(root, key) {
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  root.dataset[key] = String(Math.round(performance.now()));
}

export async function startViewer(root) {
  const config = JSON.parse(document.getElementById(root.dataset.config).textContent);
  const imageIds = makeImageIds(config.imageUrls);
  const texts = pageTexts(root);
  setState(root, 'loading');
  if (imageIds.length === 0) throw new Error('no images');
  // asked at once: it travels while the bundle initialises and the first slice is fetched
  const geometryPromise =
    config.mpr && imageIds.length >= 3 ? fetchGeometry(config.geometryUrl, config.instanceIds) : null;

  // each step is marked on the root, so a stalled start says where it stalled
  root.dataset.step = 'core-init';
  await core.init();
  root.dataset.step = 'loader-init';
  dicomImageLoader.init({ maxWebWorkers: 2 });
  // ahead of every other metadata provider (see unknownSpacingProvider)
  core.metaData.addProvider(unknownSpacingProvider, 100000);
  tools.init();
  volumeLoader.registerVolumeLoader(
    'cornerstoneStreamingImageVolume',
    core.cornerstoneStreamingImageVolumeLoader,
  );
  const engine = new RenderingEngine(ENGINE_ID);

  // MPR needs a volume (several parallel slices) and GPU rendering; otherwise one stack view
  const wantMpr = Boolean(config.mpr) && imageIds.length >= 3 && !core.getShouldUseCPURendering();
  root.dataset.layout = wantMpr ? 'mpr' : 'stack';
  const stackEl = root.querySelector('[data-viewport="stack"]');
  const mprEls = {
    axial: root.querySelector('[data-viewport="axial"]'),
    sagittal: root.querySelector('[data-viewport="sagittal"]'),
    coronal: root.querySelector('[data-viewport="coronal"]'),
  };
  const total = imageIds.length;
  const middle = startIndex(config.instanceIds, total);
  const order = middleOut(total, middle);
  const rest = order.slice(1);
  const progress = (loaded) => showProgress(root, texts, loaded, total);
  progress(0);

  // the start slice first: the reader sees the patient's image while the rest streams in
  root.dataset.step = 'first-image';
  let viewports;
  // settles once every slice is in (the reformats are then complete)
  let allLoaded;
  const overlays = {};
  // the axial view stays on the start slice the reader has been looking at
  const showStartSlice = (axial) => {
    const plane = core.metaData.get('imagePlaneModule', imageIds[middle]);
    if (plane?.imagePositionPatient) axial.jumpToWorld(plane.imagePositionPatient);
  };
  const hidePlaceholders = () => {
    for (const placeholder of root.querySelectorAll('[data-role="placeholder"]')) {
      placeholder.hidden = true;
    }
  };
  if (wantMpr) {
    const first = await showFirstImage(engine, 'first', mprEls.axial, imageIds, middle);
    overlays.axial = new ViewOverlay(root.querySelector('[data-view="axial"]'), texts, {
      imageIds,
    });
    overlays.axial.update(first);
    progress(1);
    await markDrawn(root, 'firstImageMs');
    const geometry = await geometryPromise;
    if (geometry) {
      // laid out now, filled as the slices arrive
      root.dataset.step = 'volume';
      root.dataset.reformats = 'streaming';
      addGeometryProvider(imageIds, geometry, imageIds[middle]);
      const streaming = await showMprStreaming(engine, mprEls, imageIds, order, (loaded) =>
        progress(Math.max(loaded, 1)),
      );
      viewports = streaming.viewports;
      showStartSlice(viewports[0]);
      for (const badge of root.querySelectorAll('[data-role="filling"]')) badge.hidden = false;
      hidePlaceholders();
      await markDrawn(root, 'reformatsMs');
      allLoaded = streaming.loaded.then(() => progress(total));
    } else {
      root.dataset.step = 'loading-images';
      root.dataset.reformats = 'after-all-slices';
      // without every slice's geometry the volume cannot be laid out before all have arrived
      await loadInOrder(imageIds, rest, (loaded) => progress(loaded + 1));
      root.dataset.step = 'volume';
      engine.disableElement('first');
      viewports = await showMpr(engine, mprEls, imageIds);
      showStartSlice(viewports[0]);
      hidePlaceholders();
      await markDrawn(root, 'reformatsMs');
      allLoaded = Promise.resolve();
    }
  } else {
    viewports = [await showFirstImage(engine, 'stack', stackEl, imageIds, middle)];
    progress(1);
    await markDrawn(root, 'firstImageMs');
    // the others are fetched ahead of the reader's scrolling, in the same order
    allLoaded = loadInOrder(imageIds, rest, (loaded) => progress(loaded + 1));
  }
  root.dataset.step = 'tools';
  const group = setupTools(viewports.map((v) => v.id));

  // overlays follow every camera (scroll, pan, zoom) and window change, once per frame
  const figureOf = (viewport) => root.querySelector(`[data-view="${viewport.id}"]`);
  for (const viewport of viewports) {
    // a radiograph says nothing of the patient's axes (no Image Orientation): no letters
    const plane = core.metaData.get('imagePlaneModule', imageIds[middle]) ?? {};
    const oriented = wantMpr || Boolean(plane.imageOrientationPatient);
    overlays[viewport.id] = new ViewOverlay(figureOf(viewport), texts, {
      showOrientation: oriented,
      // the axial (or only) view shows acquired slices; the reformats count their own
      imageIds: viewport === viewports[0] ? imageIds : null,
    });
  }
  let crosshairPlaced = false;
  let redrawPending = false;
  // the slice in view is the axial one (MPR) or the stack's
  const sliceView = viewports[0];
  const keyImages = new KeyImagePanel(root, config, texts, {
    currentIndex: () => imageIds.indexOf(sliceView.getCurrentImageId()),
    jumpTo: (index) => {
      if (index < 0) return;
      if (wantMpr) {
        const plane = core.metaData.get('imagePlaneModule', imageIds[index]);
        if (plane?.imagePositionPatient) sliceView.jumpToWorld(plane.imagePositionPatient);
      } else {
        sliceView.setImageIdIndex(index);
      }
      sliceView.render();
      scheduleRedraw();
    },
  });
  const redraw = () => {
    redrawPending = false;
    for (const viewport of viewports) overlays[viewport.id].update(viewport);
    keyImages.update();
    if (!wantMpr) return;
    const point = crosshairPlaced ? crosshairPoint(viewports) : null;
    for (const viewport of viewports) {
      const others = viewports.filter((v) => v !== viewport);
      overlays[viewport.id].drawCrosshair(
        point,
        others.map((v) => v.getCamera().viewPlaneNormal),
      );
    }
  };
  const scheduleRedraw = () => {
    if (redrawPending) return;
    redrawPending = true;
    requestAnimationFrame(redraw);
  };
  for (const viewport of viewports) {
    for (const eventName of [
      CoreEnums.Events.CAMERA_MODIFIED,
      CoreEnums.Events.VOI_MODIFIED,
      CoreEnums.Events.STACK_NEW_IMAGE,
    ]) {
      viewport.element.addEventListener(eventName, scheduleRedraw);
    }
  }
  // the crosshair: a click (no drag) in one view moves the other two through that point
  if (wantMpr) {
    for (const viewport of viewports) {
      viewport.element.addEventListener(tools.Enums.Events.MOUSE_CLICK, (event) => {
        if (MEASURING.has(root.dataset.tool)) return; // a click there starts a measurement
        const world = event.detail.currentPoints.world;
        for (const other of viewports) if (other !== viewport) other.jumpToWorld(world);
        crosshairPlaced = true;
        scheduleRedraw();
      });
    }
  }

  for (const button of root.querySelectorAll('[data-preset]')) {
    button.addEventListener('click', () => {
      applyPreset(viewports, button.dataset.preset);
      root.dataset.preset = button.dataset.preset;
      scheduleRedraw();
    });
  }
  for (const button of root.querySelectorAll('[data-tool]')) {
    button.addEventListener('click', () => {
      selectPrimaryTool(group, button.dataset.tool);
      for (const other of root.querySelectorAll('[data-tool]')) {
        other.setAttribute('aria-pressed', String(other === button));
      }
      root.dataset.tool = button.dataset.tool;
    });
  }
  for (const eventName of [
    tools.Enums.Events.ANNOTATION_COMPLETED,
    tools.Enums.Events.ANNOTATION_MODIFIED,
  ]) {
    core.eventTarget.addEventListener(eventName, () => listMeasurements(root));
  }
  const resetButton = root.querySelector('[data-action="reset"]');
  resetButton?.addEventListener('click', () => {
    for (const viewport of viewports) {
      viewport.resetCamera();
      viewport.resetProperties();
      viewport.render();
    }
    crosshairPlaced = false;
    scheduleRedraw();
  });
  window.addEventListener('resize', () => {
    engine.resize(true, true);
    scheduleRedraw();
  });
  redraw();
  root.dataset.renderer = core.getShouldUseCPURendering() ? 'cpu' : 'webgl';
  window.osteonViewer = { engine, viewports, group, presets: PRESETS };
  // the tools work on what has arrived; the key images list loads beside it
  root.dataset.step = 'filling';
  keyImages.start().catch((error) => {
    const status = root.querySelector('[data-role="key-status"]');
    if (status) status.textContent = `${texts.keyFailed}: ${error.message}`;
  });
  await allLoaded;
  scheduleRedraw();
  await markDrawn(root, 'allSlicesMs');
  // a test or a person can tell every slice is drawn, and how
  root.dataset.step = 'done';
  setState(root, 'ready', '');
}

const root = document.getElementById('osteon-viewer');
if (root) {
  startViewer(root).catch((error) => {
    console.error(error);
    // the DICOM loader rejects with {error, dataSet}, not an Error: say what is inside
    const reason = error?.message ?? error?.error?.message ?? String(error);
    // the page gives the words in the reader's language (viewer.html, data-error-text)
    setState(root, 'error', `${root.dataset.errorText ?? 'cannot display images'}: ${reason}`);
  });
}
