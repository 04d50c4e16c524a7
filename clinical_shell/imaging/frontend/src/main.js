// Osteon imaging viewer: Cornerstone3D stack view for radiographs and CT slices, MPR for CT volumes.
//
// The page renders <div id="osteon-viewer" data-config="ID"> and a json_script element ID holding
// {modality, imageUrls: [...], mpr: bool}. Every image is fetched from the shell's own
// /imaging/instances/<id>/file endpoint (access-checked and audited there); nothing comes from a CDN.
import * as core from '@cornerstonejs/core';
import * as tools from '@cornerstonejs/tools';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';

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
};

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

async function showStack(engine, element, imageIds) {
  engine.enableElement({
    viewportId: 'stack',
    type: CoreEnums.ViewportType.STACK,
    element,
    defaultOptions: { background: [0, 0, 0] },
  });
  const viewport = engine.getViewport('stack');
  await viewport.setStack(imageIds, Math.floor((imageIds.length - 1) / 2));
  viewport.render();
  return [viewport];
}

async function showMpr(engine, elements, imageIds) {
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
  // a volume needs every slice's geometry before it can be laid out: load the slices first.
  // Through the registered loader, not dicomImageLoader.wadouri.loadImage: that one is the
  // legacy loader, whose metadata provider is not registered, and it fails on every slice.
  await Promise.all(imageIds.map((id) => core.imageLoader.loadAndCacheImage(id)));
  const volume = await volumeLoader.createAndCacheVolume(VOLUME_ID, { imageIds });
  volume.load();
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

function listMeasurements(root) {
  // lengths are shown in mm beside the image so they can be read and copied
  const list = root.querySelector('[data-role="measurements"]');
  if (!list) return;
  const annotations = tools.annotation.state.getAllAnnotations();
  list.replaceChildren(
    ...annotations
      .filter((a) => a.metadata?.toolName === tools.LengthTool.toolName)
      .map((a) => {
        const stats = Object.values(a.data?.cachedStats ?? {})[0] ?? {};
        const item = document.createElement('li');
        const length = typeof stats.length === 'number' ? stats.length.toFixed(1) : '?';
        item.textContent = `${length} ${stats.unit ?? 'mm'}`;
        item.dataset.lengthMm = length;
        return item;
      }),
  );
}

export async function startViewer(root) {
  const config = JSON.parse(document.getElementById(root.dataset.config).textContent);
  const imageIds = makeImageIds(config.imageUrls);
  setState(root, 'loading');
  if (imageIds.length === 0) throw new Error('no images');

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
  const stackEl = root.querySelector('[data-viewport="stack"]');
  const mprEls = {
    axial: root.querySelector('[data-viewport="axial"]'),
    sagittal: root.querySelector('[data-viewport="sagittal"]'),
    coronal: root.querySelector('[data-viewport="coronal"]'),
  };
  let viewports;
  root.dataset.step = 'loading-images';
  if (wantMpr) {
    root.dataset.layout = 'mpr';
    viewports = await showMpr(engine, mprEls, imageIds);
  } else {
    root.dataset.layout = 'stack';
    viewports = await showStack(engine, stackEl, imageIds);
  }
  root.dataset.step = 'tools';
  const group = setupTools(viewports.map((v) => v.id));

  for (const button of root.querySelectorAll('[data-preset]')) {
    button.addEventListener('click', () => {
      applyPreset(viewports, button.dataset.preset);
      root.dataset.preset = button.dataset.preset;
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
  });
  window.addEventListener('resize', () => engine.resize(true, true));

  // a test or a person can tell the image is drawn, and how
  root.dataset.renderer = core.getShouldUseCPURendering() ? 'cpu' : 'webgl';
  window.osteonViewer = { engine, viewports, group, presets: PRESETS };
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
