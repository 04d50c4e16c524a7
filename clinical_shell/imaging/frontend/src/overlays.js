// Safety overlays of each view: name, orientation letters, slice n of N, position and thickness,
// window/level, scale bar, and the crosshair that links the three MPR views.
//
// Everything here is drawn in the frame around a view's canvas (header, margins, footer), never
// on the image itself, so a reader sees the pixels undisturbed; only the crosshair lies over the
// image, once the reader has placed it with a click. The words come from the page (data-text-*
// attributes on #osteon-viewer, translated by Django); this module fills in numbers.
import * as core from '@cornerstonejs/core';

const { utilities: coreUtilities } = core;

// scale bar lengths a reader expects (mm); the longest that fits a quarter of the view is drawn
const SCALE_BAR_MM = [1, 2, 5, 10, 20, 50, 100, 200, 500];

// fill "{name}" placeholders of a translated sentence from the page
export function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in values ? values[key] : whole));
}

const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [
  a[1] * b[2] - a[2] * b[1],
  a[2] * b[0] - a[0] * b[2],
  a[0] * b[1] - a[1] * b[0],
];

// the patient direction a world (LPS) vector points to, as DICOM letters: +x left, +y posterior,
// +z superior; an oblique direction gets up to three letters, strongest first (e.g. "LA")
export function orientationLetters(vector) {
  const letters = [
    ['L', 'R'],
    ['P', 'A'],
    ['S', 'I'],
  ];
  return [0, 1, 2]
    .filter((axis) => Math.abs(vector[axis]) > 0.25)
    .sort((a, b) => Math.abs(vector[b]) - Math.abs(vector[a]))
    .map((axis) => letters[axis][vector[axis] > 0 ? 0 : 1])
    .join('');
}

// the patient axis (0 x, 1 y, 2 z) a view normal runs along: its position is read on that axis
const dominantAxis = (normal) =>
  [0, 1, 2].reduce((best, axis) => (Math.abs(normal[axis]) > Math.abs(normal[best]) ? axis : best));

function isVolumeViewport(viewport) {
  return typeof viewport.getVolumeId === 'function' && Boolean(viewport.getVolumeId());
}

// slice index (0-based), slice count, position along the view's normal and thickness, all in mm
function sliceFacts(viewport) {
  const { viewPlaneNormal, focalPoint } = viewport.getCamera();
  const axis = dominantAxis(viewPlaneNormal);
  if (isVolumeViewport(viewport)) {
    const { imageIndex, numberOfSlices } =
      coreUtilities.getImageSliceDataForVolumeViewport(viewport) ?? {};
    const { sliceRangeInfo } = coreUtilities.getVolumeViewportScrollInfo(
      viewport,
      viewport.getVolumeId(),
    );
    return {
      index: imageIndex,
      total: numberOfSlices,
      positionMm: focalPoint[axis],
      thicknessMm: sliceRangeInfo.spacingInNormalDirection,
    };
  }
  const imageIds = viewport.getImageIds();
  const index = viewport.getCurrentImageIdIndex();
  const plane = core.metaData.get('imagePlaneModule', imageIds[index]) ?? {};
  return {
    index,
    total: imageIds.length,
    positionMm: plane.imagePositionPatient ? plane.imagePositionPatient[axis] : undefined,
    thicknessMm: plane.sliceThickness || undefined,
  };
}

// mm per CSS pixel of the canvas, measured through the camera (pan and zoom included)
function mmPerPixel(viewport) {
  const a = viewport.canvasToWorld([0, 0]);
  const b = viewport.canvasToWorld([100, 0]);
  return Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]) / 100;
}

export class ViewOverlay {
  // `figure`: the view's <figure data-view=...>; `texts`: the page's translated templates;
  // `showOrientation`: false where the image carries no patient orientation (a radiograph);
  // `imageIds`: the series in viewing order, to number an acquired slice as the rest of the
  // shell does (key images, the report page) whatever the view's direction
  constructor(figure, texts, { showOrientation = true, imageIds = null } = {}) {
    this.figure = figure;
    this.texts = texts;
    this.showOrientation = showOrientation;
    this.imageIds = imageIds;
    this.part = (role) => figure.querySelector(`[data-role="${role}"]`);
  }

  update(viewport) {
    this.viewport = viewport;
    const camera = viewport.getCamera();
    const facts = sliceFacts(viewport);
    const figure = this.figure;
    // a view in the plane the slices were acquired in shows one of them: its number in the
    // series (the volume counts along the camera, which may run the other way)
    const acquired = this.imageIds && viewport.getCurrentImageId?.();
    if (acquired && this.imageIds.includes(acquired)) {
      facts.index = this.imageIds.indexOf(acquired);
      facts.total = this.imageIds.length;
    }

    // slice n of N, position and thickness (mm)
    if (Number.isInteger(facts.index) && facts.total) {
      figure.dataset.slice = String(facts.index + 1);
      figure.dataset.slices = String(facts.total);
      this.part('slice').textContent = fill(this.texts.slice, {
        n: facts.index + 1,
        total: facts.total,
      });
    }
    const position = Number.isFinite(facts.positionMm) ? facts.positionMm.toFixed(1) : '—';
    const thickness = Number.isFinite(facts.thicknessMm) ? facts.thicknessMm.toFixed(2) : '—';
    this.part('position').textContent = fill(this.texts.position, { position, thickness });

    // orientation letters: screen right is viewUp x viewPlaneNormal (Cornerstone's camera)
    const up = camera.viewUp;
    const right = cross(camera.viewUp, camera.viewPlaneNormal);
    const sides = {
      top: up,
      bottom: up.map((c) => -c),
      right,
      left: right.map((c) => -c),
    };
    for (const [side, vector] of Object.entries(sides)) {
      this.part(`orient-${side}`).textContent = this.showOrientation
        ? orientationLetters(vector)
        : '';
    }

    // window / level of what is shown
    const { voiRange } = viewport.getProperties();
    if (voiRange) {
      const { windowWidth, windowCenter } = coreUtilities.windowLevel.toWindowLevel(
        voiRange.lower,
        voiRange.upper,
      );
      figure.dataset.windowWidth = String(Math.round(windowWidth));
      figure.dataset.windowCenter = String(Math.round(windowCenter));
      this.part('wl').textContent = fill(this.texts.windowLevel, {
        width: Math.round(windowWidth),
        center: Math.round(windowCenter),
      });
    }

    // scale bar: the longest round length that fits a quarter of the view's width
    const width = viewport.element.clientWidth;
    const perPixel = mmPerPixel(viewport);
    if (width > 0 && perPixel > 0) {
      const fits = SCALE_BAR_MM.filter((mm) => mm / perPixel <= width / 4);
      const mm = fits.length ? fits[fits.length - 1] : SCALE_BAR_MM[0];
      this.part('scalebar-line').style.width = `${Math.round(mm / perPixel)}px`;
      this.part('scalebar-label').textContent = `${mm} mm`;
      figure.dataset.scaleBarMm = String(mm);
    }
  }

  // the crosshair: where each other view's plane cuts this one, through `point` (world, mm)
  drawCrosshair(point, otherNormals) {
    const svg = this.part('crosshair');
    const viewport = this.viewport;
    // an <svg> has no `hidden` property (HTMLElement has): the attribute itself
    if (!point || !viewport) {
      svg.setAttribute('hidden', '');
      return;
    }
    const { viewPlaneNormal } = viewport.getCamera();
    const width = viewport.element.clientWidth;
    const height = viewport.element.clientHeight;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const lines = svg.querySelectorAll('line');
    otherNormals.forEach((normal, i) => {
      // the line runs along normal x this view's normal, through the point
      const along = cross(normal, viewPlaneNormal);
      const a = viewport.worldToCanvas(point);
      const b = viewport.worldToCanvas(point.map((c, k) => c + 100 * along[k]));
      const line = lines[i];
      const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
      if (!line || length < 1e-6) return;
      // extended across the whole canvas
      const reach = (width + height) / length;
      line.setAttribute('x1', String(a[0] - reach * (b[0] - a[0])));
      line.setAttribute('y1', String(a[1] - reach * (b[1] - a[1])));
      line.setAttribute('x2', String(a[0] + reach * (b[0] - a[0])));
      line.setAttribute('y2', String(a[1] + reach * (b[1] - a[1])));
    });
    svg.removeAttribute('hidden');
  }
}

// the point where three mutually crossing planes meet: this view's focal plane and the others'
export function crosshairPoint(viewports) {
  const [first, ...others] = viewports.map((v) => v.getCamera());
  const point = [...first.focalPoint];
  // move the point onto each other plane along that plane's normal (the MPR planes are orthogonal)
  for (const { focalPoint, viewPlaneNormal } of others) {
    const offset = dot(
      focalPoint.map((c, k) => c - point[k]),
      viewPlaneNormal,
    );
    for (let k = 0; k < 3; k++) point[k] += offset * viewPlaneNormal[k];
  }
  return point;
}
