"""The Panda3D view of a case, and of a running session on it: the one ShowBase of Osteon.

``SceneView`` shows a case's bones, protected zones and landmarks (``setup_case``); given the
live density grid and a snapshot mailbox it also shows the instrument, the planned trajectory,
bone remeshed where it was cut, warnings near protected zones and a HUD. It only reads: the
frame task takes the newest snapshot and redraws; key and mouse events only set input state.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from direct.showbase.ShowBase import ShowBase
from direct.task.Task import Task
from panda3d.core import (
    AmbientLight,
    AntialiasAttrib,
    Camera,
    DirectionalLight,
    Filename,
    NodePath,
    OrthographicLens,
    Point3,
    TextNode,
    TransparencyAttrib,
    Vec3,
)

from sim_core.case.bundle import TISSUE_NERVE, TISSUE_VESSEL, CaseBundle
from sim_core.metric_labels import metric_label
from sim_core.view.camera_rig import (
    CAMERA_VIEWS,
    DEFAULT_VIEW,
    ViewAngles,
    framing_distance_mm,
    up_vector,
    view_direction,
)
from sim_core.view.case_geometry import CaseGeometry, case_geometry
from sim_core.view.chunk_mesher import (
    CHUNK_VOXELS,
    all_chunks,
    chunk_counts,
    chunks_touching,
    remesh_chunks,
)
from sim_core.view.display import configure_display
from sim_core.view.hud import (
    DIM_TEXT_COLOUR,
    ForceBar,
    Rgba,
    force_bar,
    legend,
    load_cjk_font,
    text_node,
)
from sim_core.view.mesh_nodes import (
    mesh_geom_node,
    transform_points,
    uv_sphere,
)
from sim_core.view.session_geometry import (
    CANCELLOUS_COLOUR,
    TRAJECTORY_COLOUR,
    chunk_world_mesh,
    instrument_parts,
    trajectory_mesh,
)
from sim_core.view.shading import apply_lighting
from sim_core.view.snapshot import TOOL_SAW, ChunkIndex, SnapshotMailbox, ViewSnapshot
from sim_core.view.snapshot import Vec3 as Vec3Mm

BACKGROUND_TOP: Rgba = (0.20, 0.24, 0.30, 1.0)
BACKGROUND_BOTTOM: Rgba = (0.04, 0.05, 0.07, 1.0)
# cortical bone is ivory; neighbouring bones alternate slightly so their borders read
BONE_COLOURS: tuple[Rgba, ...] = ((0.91, 0.86, 0.74, 1.0), (0.86, 0.82, 0.71, 1.0))
ZONE_COLOURS: dict[int, Rgba] = {
    TISSUE_NERVE: (1.00, 0.84, 0.10, 0.55),
    TISSUE_VESSEL: (0.90, 0.12, 0.12, 0.45),
}
LANDMARK_COLOUR: Rgba = (0.15, 0.80, 1.00, 1.0)
LANDMARK_RADIUS_MM = 1.6
TOOL_GHOST_ALPHA = 0.5

_ZONE_LABELS = {TISSUE_NERVE: "神经 / nerve", TISSUE_VESSEL: "血管 / vessel"}
# protected zones start to glow when the tool comes this close; full alarm at contact
ZONE_WARNING_MM = 5.0
_TOOL_NAMES = {
    "spherical_burr": "球形磨钻 / spherical burr",
    "cylindrical_burr": "柱形磨钻 / cylindrical burr",
    "twist_drill": "麻花钻 / twist drill",
    "k_wire": "克氏针 / K-wire",
    "pedicle_awl": "椎弓根开路锥 / pedicle awl",
    "pedicle_probe": "椎弓根探子 / pedicle probe",
    "screw": "螺钉 / screw",
    "oscillating_saw": "摆锯 / oscillating saw",
}
_ORBIT_DEG_PER_S = 60.0
_ZOOM_PER_S = 1.6


@dataclass
class OrbitInput:
    """What the keys and mouse ask for; the frame task turns it into camera motion."""

    turn: dict[str, bool] = field(
        default_factory=lambda: dict.fromkeys(("left", "right", "up", "down", "in", "out"), False)
    )
    preset: str | None = None
    zoom_steps: int = 0
    dragging: bool = False
    quit: bool = False


@dataclass
class Orbit:
    """The camera around its target: angles in degrees, distance in mm."""

    target_mm: npt.NDArray[np.float64]
    radius_mm: float
    azimuth_deg: float
    elevation_deg: float
    distance_mm: float


class SceneView(ShowBase):  # type: ignore[misc]  # panda3d ships no type information
    """One window (or offscreen buffer) showing one case at a time."""

    def __init__(
        self,
        *,
        offscreen: bool,
        size: tuple[int, int] = (1280, 800),
        mailbox: SnapshotMailbox | None = None,
    ) -> None:
        configure_display(offscreen=offscreen, size=size, title="Osteon 骨科手术模拟")
        super().__init__(windowType="offscreen" if offscreen else "onscreen")
        self.disable_mouse()
        self.mailbox = mailbox
        self.font = load_cjk_font()
        self.input = OrbitInput()
        self.orbit: Orbit | None = None
        self.geometry: CaseGeometry | None = None
        self.case_root: NodePath | None = None
        # overlay nodes hang under aspect2d's corner anchors, which follow the window's shape
        self.hud_nodes: list[NodePath] = []
        # session state: what the last snapshot showed
        self.density: npt.NDArray[np.float32] | None = None
        # the density as last meshed: tells which voxels of a flagged chunk really changed
        self.meshed_density: npt.NDArray[np.float32] | None = None
        self.tissue: npt.NDArray[np.uint8] | None = None
        self.world_from_index: npt.NDArray[np.float64] | None = None
        self.chunk_nodes: dict[ChunkIndex, NodePath] = {}
        self.bone_root: NodePath | None = None
        self.zones_root: NodePath | None = None
        self.instrument: NodePath | None = None
        self.instrument_shape: tuple[str, float] | None = None
        self.force_gauge: ForceBar | None = None
        self.status_text: NodePath | None = None
        self.warning_text: NodePath | None = None
        self.last_snapshot: ViewSnapshot | None = None
        self._drag_from: tuple[float, float] | None = None

        self._make_background()
        self._make_lights()
        self.per_pixel_lighting = apply_lighting(self.render, self.win.get_gsg())
        self.render.set_antialias(AntialiasAttrib.M_multisample)
        self._bind_input()
        self.task_mgr.add(self._update_frame, "osteon-view-frame")

    # ---------------------------------------------------------------- scene set-up

    def _make_background(self) -> None:
        # a vertical gradient drawn in its own display region before the 3D one
        self.win.set_clear_color(BACKGROUND_BOTTOM)
        region = self.win.make_display_region()
        region.set_sort(-20)
        lens = OrthographicLens()
        lens.set_film_size(2.0, 2.0)
        lens.set_near_far(-10.0, 10.0)
        camera = Camera("background-camera", lens)
        root = NodePath("background")
        region.set_camera(root.attach_new_node(camera))
        vertices = np.array([[-1, 0, -1], [1, 0, -1], [1, 0, 1], [-1, 0, 1]], dtype=np.float32)
        faces = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
        colours = np.array([BACKGROUND_BOTTOM, BACKGROUND_BOTTOM, BACKGROUND_TOP, BACKGROUND_TOP])
        quad = root.attach_new_node(mesh_geom_node("background", vertices, faces, colours))
        quad.set_depth_write(False)
        quad.set_depth_test(False)
        quad.set_light_off()
        quad.set_two_sided(True)
        self._background_root = root

    def _make_lights(self) -> None:
        # lights ride with the camera (a surgical headlight): whatever side is shown is lit
        key = DirectionalLight("key-light")
        key.set_color((0.78, 0.76, 0.72, 1.0))
        key_path = self.camera.attach_new_node(key)
        key_path.set_hpr(-25.0, -30.0, 0.0)
        fill = DirectionalLight("fill-light")
        fill.set_color((0.30, 0.33, 0.38, 1.0))
        fill_path = self.camera.attach_new_node(fill)
        fill_path.set_hpr(40.0, 20.0, 0.0)
        rim = DirectionalLight("rim-light")
        rim.set_color((0.22, 0.22, 0.24, 1.0))
        rim_path = self.camera.attach_new_node(rim)
        rim_path.set_hpr(180.0, -10.0, 0.0)
        ambient = AmbientLight("ambient-light")
        ambient.set_color((0.20, 0.20, 0.22, 1.0))
        for light in (key_path, fill_path, rim_path, self.render.attach_new_node(ambient)):
            self.render.set_light(light)

    def _bind_input(self) -> None:
        # events only record what was asked for; the frame task acts on it
        keys = {
            "arrow_left": "left",
            "arrow_right": "right",
            "arrow_up": "up",
            "arrow_down": "down",
            "=": "in",
            "-": "out",
        }
        for key, turn in keys.items():
            self.accept(key, self._set_turn, [turn, True])
            self.accept(f"{key}-up", self._set_turn, [turn, False])
        for number, name in enumerate(CAMERA_VIEWS, start=1):
            self.accept(str(number), self._set_preset, [name])
        self.accept("wheel_up", self._add_zoom, [1])
        self.accept("wheel_down", self._add_zoom, [-1])
        self.accept("escape", self._set_quit)
        self.accept("mouse1", self._set_dragging, [True])
        self.accept("mouse1-up", self._set_dragging, [False])

    def _set_turn(self, turn: str, pressed: bool) -> None:
        self.input.turn[turn] = pressed

    def _set_preset(self, name: str) -> None:
        self.input.preset = name

    def _add_zoom(self, steps: int) -> None:
        self.input.zoom_steps += steps

    def _set_dragging(self, dragging: bool) -> None:
        self.input.dragging = dragging

    def _set_quit(self) -> None:
        self.input.quit = True

    # ---------------------------------------------------------------- the case

    def setup_case(
        self,
        bundle: CaseBundle,
        *,
        camera_view: str = DEFAULT_VIEW,
        density: npt.NDArray[np.float32] | None = None,
        trajectory: tuple[Vec3Mm, Vec3Mm] | None = None,
    ) -> None:
        """Show a case: bones, protected zones, landmarks, title and legend.

        With ``density`` (the session's live bone density grid, float32 g/cm^3, read and never
        written) the bone is meshed from it per chunk and remeshed where snapshots say it
        changed, and the session overlay (instrument, force bar, metrics) is shown.
        ``trajectory`` is the planned (entry, target) in the case frame (mm).
        """
        if camera_view not in CAMERA_VIEWS:
            raise ValueError(f"camera view {camera_view!r}: expected one of {sorted(CAMERA_VIEWS)}")
        if density is not None and density.shape != bundle.tissue.shape:
            raise ValueError(
                f"density grid {density.shape} does not match the case grid {bundle.tissue.shape}"
            )
        self.teardown_case()
        geometry = case_geometry(bundle)
        self.geometry = geometry
        self.case_root = self.render.attach_new_node("case")

        self.bone_root = self.case_root.attach_new_node("bones")
        if density is None:
            for i, bone in enumerate(geometry.bones):
                colour = BONE_COLOURS[i % len(BONE_COLOURS)]
                node = mesh_geom_node(bone.name, bone.vertices_mm, bone.faces, colour)
                self.bone_root.attach_new_node(node)
        else:
            self._start_session(bundle, geometry, density)
        self._add_zones(geometry)
        if density is None:
            # in a session the plan and the tool matter; landmark balls would hide the cut
            self._add_landmarks(geometry)
        if trajectory is not None:
            self._add_trajectory(geometry, trajectory)
        self._add_case_hud(bundle, geometry)

        angles = CAMERA_VIEWS[camera_view]
        target, radius = geometry.centre_mm.astype(np.float64), geometry.radius_mm
        if trajectory is not None:
            # a session looks at the planned path, from its entry side and a little above
            target, radius, angles = _trajectory_framing(geometry, trajectory)
        self.orbit = Orbit(
            target_mm=target,
            radius_mm=radius,
            azimuth_deg=angles.azimuth_deg,
            elevation_deg=angles.elevation_deg,
            distance_mm=framing_distance_mm(radius, self._fov_deg()),
        )
        self._place_camera()

    def _start_session(
        self, bundle: CaseBundle, geometry: CaseGeometry, density: npt.NDArray[np.float32]
    ) -> None:
        self.density = density
        self.meshed_density = density.copy()
        self.tissue = bundle.tissue
        scale = np.diag([bundle.spacing_mm, bundle.spacing_mm, bundle.spacing_mm, 1.0])
        self.world_from_index = geometry.world_from_case @ scale
        self._remesh(all_chunks(density.shape))
        assert self.case_root is not None
        self.instrument = self.case_root.attach_new_node("instrument")
        self.instrument.hide()
        bottom_right = self._hud_anchor(self.a2dBottomRight, "session-bottom-right")
        self.force_gauge = force_bar(bottom_right, self.font, origin=(-0.66, 0.14), width=0.6)
        top_right = self._hud_anchor(self.a2dTopRight, "session-top-right")
        self.status_text = text_node(
            top_right,
            "status",
            "",
            self.font,
            pos=(-0.06, -0.1),
            scale=0.045,
            align=TextNode.A_right,
        )
        top = self._hud_anchor(self.a2dTopCenter, "session-top")
        self.warning_text = text_node(
            top,
            "warning",
            "",
            self.font,
            pos=(0.0, -0.3),
            scale=0.06,
            colour=(1.0, 0.35, 0.25, 1.0),
            align=TextNode.A_center,
        )

    def _chunks_reached(self, flagged: tuple[ChunkIndex, ...]) -> list[ChunkIndex]:
        # compare each flagged chunk with what was meshed: a cut deep inside one chunk
        # remeshes that chunk alone, one at its border its neighbours too
        assert self.density is not None and self.meshed_density is not None
        counts = chunk_counts(self.density.shape)
        reached: dict[ChunkIndex, None] = {}
        for index in flagged:
            if any(not 0 <= c < n for c, n in zip(index, counts, strict=True)):
                raise ValueError(f"snapshot chunk {index} is outside the grid's {counts} chunks")
            box = tuple(slice(c * CHUNK_VOXELS, (c + 1) * CHUNK_VOXELS) for c in index)
            now = self.density[box].copy()  # the engine may write on while we compare
            changed = np.argwhere(now != self.meshed_density[box])
            if len(changed) == 0:
                continue
            self.meshed_density[box] = now
            origin = np.asarray(index) * CHUNK_VOXELS
            lo, hi = origin + changed.min(axis=0), origin + changed.max(axis=0)
            reached.update(dict.fromkeys(chunks_touching(lo, hi, self.density.shape)))
        return list(reached)

    def _remesh(self, chunks: list[ChunkIndex] | tuple[ChunkIndex, ...]) -> None:
        # replace each listed chunk's node; chunks a cut emptied lose theirs
        assert self.density is not None and self.tissue is not None
        assert self.world_from_index is not None and self.bone_root is not None
        for index, mesh in remesh_chunks(self.density, chunks).items():
            old = self.chunk_nodes.pop(index, None)
            if old is not None:
                old.remove_node()
            if len(mesh.faces) == 0:
                continue
            vertices, faces, normals, colours = chunk_world_mesh(
                mesh, self.tissue, self.world_from_index
            )
            node = mesh_geom_node(f"chunk-{index}", vertices, faces, colours, normals)
            self.chunk_nodes[index] = self.bone_root.attach_new_node(node)

    def teardown_case(self) -> None:
        """Remove the shown case and its overlay; the view stays open for another case."""
        for root in [self.case_root, *self.hud_nodes]:
            if root is not None:
                root.remove_node()
        self.case_root = None
        self.hud_nodes = []
        self.geometry = None
        self.orbit = None
        self.density = None
        self.meshed_density = None
        self.tissue = None
        self.world_from_index = None
        self.chunk_nodes = {}
        self.bone_root = None
        self.zones_root = None
        self.instrument = None
        self.instrument_shape = None
        self.force_gauge = None
        self.status_text = None
        self.warning_text = None
        self.last_snapshot = None

    def _add_zones(self, geometry: CaseGeometry) -> None:
        assert self.case_root is not None
        zones = self.case_root.attach_new_node("protected-zones")
        self.zones_root = zones
        # translucent hulls drawn after the bones; only their near side, so one layer tints
        zones.set_transparency(TransparencyAttrib.M_alpha)
        zones.set_depth_write(False)
        for label, hull in geometry.zones:
            zones.attach_new_node(
                mesh_geom_node(hull.name, hull.vertices_mm, hull.faces, ZONE_COLOURS[label])
            )

    def _add_landmarks(self, geometry: CaseGeometry) -> None:
        assert self.case_root is not None
        if not geometry.landmarks:
            return
        marks = self.case_root.attach_new_node("landmarks")
        vertices, faces = uv_sphere(LANDMARK_RADIUS_MM, rings=8, segments=12)
        sphere = mesh_geom_node("landmark", vertices, faces, LANDMARK_COLOUR)
        for mark in geometry.landmarks:
            marks.attach_new_node(sphere.make_copy()).set_pos(*mark.world_mm)

    def _add_trajectory(self, geometry: CaseGeometry, trajectory: tuple[Vec3Mm, Vec3Mm]) -> None:
        assert self.case_root is not None
        vertices, faces, entry, target = trajectory_mesh(
            trajectory[0], trajectory[1], geometry.world_from_case
        )
        plan = self.case_root.attach_new_node("trajectory")
        plan.set_transparency(TransparencyAttrib.M_alpha)
        # drawn through the bone, last, as navigation systems do: the plan inside the vertebra
        # is what the surgeon steers by
        plan.set_depth_test(False)
        plan.set_depth_write(False)
        plan.set_bin("fixed", 50)
        plan.attach_new_node(mesh_geom_node("trajectory-rod", vertices, faces, TRAJECTORY_COLOUR))
        ball_v, ball_f = uv_sphere(1.2, rings=8, segments=12)
        for name, point in (("entry", entry), ("target", target)):
            ball = plan.attach_new_node(mesh_geom_node(name, ball_v, ball_f, TRAJECTORY_COLOUR))
            ball.set_pos(float(point[0]), float(point[1]), float(point[2]))

    def _hud_anchor(self, corner: NodePath, name: str) -> NodePath:
        anchor = corner.attach_new_node(name)
        self.hud_nodes.append(anchor)
        return anchor

    def _add_case_hud(self, bundle: CaseBundle, geometry: CaseGeometry) -> None:
        name = str(bundle.meta.get("name") or bundle.path.name)
        top_left = self._hud_anchor(self.a2dTopLeft, "top-left")
        heading = "模拟 / Simulation" if self.density is not None else "病例 / Case"
        text_node(top_left, "title", f"{heading}  {name}", self.font, pos=(0.06, -0.1), scale=0.065)
        n_bones = len(geometry.bones)
        subtitle = f"骨 {n_bones} 块 / {n_bones} bones    上 = 头侧 / superior up"
        if self.density is None:
            subtitle += "    前面朝向观察者 / anterior towards viewer"
        text_node(
            top_left,
            "subtitle",
            subtitle,
            self.font,
            pos=(0.06, -0.17),
            scale=0.04,
            colour=DIM_TEXT_COLOUR,
        )
        entries: list[tuple[str, Rgba]] = [("骨 / bone", BONE_COLOURS[0])]
        if self.density is not None:
            entries.append(("松质骨 / cancellous", CANCELLOUS_COLOUR))
        entries += [(_ZONE_LABELS[label], ZONE_COLOURS[label]) for label, _ in geometry.zones]
        if self.case_root is not None and not self.case_root.find("trajectory").is_empty():
            entries.append(("计划路径 / planned path", TRAJECTORY_COLOUR))
        if geometry.landmarks and self.density is None:
            entries.append(("标志点 / landmark", LANDMARK_COLOUR))
        bottom_left = self._hud_anchor(self.a2dBottomLeft, "bottom-left")
        legend(bottom_left, entries, self.font, origin=(0.06, 0.08))
        bottom_right = self._hud_anchor(self.a2dBottomRight, "bottom-right")
        keys = (
            "拖动或方向键 旋转 / drag or arrows orbit   滚轮 缩放 / wheel zoom   1-6 视图 / views"
        )
        text_node(
            bottom_right,
            "keys",
            keys,
            self.font,
            pos=(-0.06, 0.06),
            scale=0.035,
            colour=DIM_TEXT_COLOUR,
            align=TextNode.A_right,
        )

    # ---------------------------------------------------------------- camera

    def _fov_deg(self) -> tuple[float, float]:
        fov = self.camLens.get_fov()
        return float(fov[0]), float(fov[1])

    def _place_camera(self) -> None:
        orbit = self.orbit
        if orbit is None:
            return
        angles = ViewAngles(orbit.azimuth_deg, orbit.elevation_deg)
        position = orbit.target_mm + view_direction(angles) * orbit.distance_mm
        self.camera.set_pos(*position)
        self.camera.look_at(tuple(orbit.target_mm), tuple(up_vector(angles)))
        self.camLens.set_near_far(
            max(orbit.distance_mm * 0.05, 0.5), orbit.distance_mm + 6.0 * orbit.radius_mm
        )

    def _apply_input(self, dt_s: float) -> None:
        orbit = self.orbit
        if orbit is None:
            return
        turn = self.input.turn
        self._apply_drag(orbit)
        if self.input.preset is not None:
            angles = CAMERA_VIEWS[self.input.preset]
            orbit.azimuth_deg, orbit.elevation_deg = angles.azimuth_deg, angles.elevation_deg
            self.input.preset = None
        step = _ORBIT_DEG_PER_S * dt_s
        orbit.azimuth_deg += step * (turn["right"] - turn["left"])
        orbit.elevation_deg = min(
            max(orbit.elevation_deg + step * (turn["up"] - turn["down"]), -85.0), 85.0
        )
        zoom = (turn["in"] - turn["out"]) * dt_s * math.log(
            _ZOOM_PER_S
        ) + 0.1 * self.input.zoom_steps
        self.input.zoom_steps = 0
        orbit.distance_mm = min(
            max(orbit.distance_mm * math.exp(-zoom), orbit.radius_mm * 0.3), orbit.radius_mm * 20
        )

    def _apply_drag(self, orbit: Orbit) -> None:
        # a left-button drag across the whole window turns the view 180 degrees
        watcher = self.mouseWatcherNode
        if not self.input.dragging or watcher is None or not watcher.has_mouse():
            self._drag_from = None
            return
        mouse = watcher.get_mouse()
        here = (float(mouse.get_x()), float(mouse.get_y()))
        if self._drag_from is not None:
            orbit.azimuth_deg -= (here[0] - self._drag_from[0]) * 90.0
            elevation = orbit.elevation_deg - (here[1] - self._drag_from[1]) * 90.0
            orbit.elevation_deg = min(max(elevation, -85.0), 85.0)
        self._drag_from = here

    def _update_frame(self, task: Task) -> int:
        # the only per-frame work: follow the input, then show the newest snapshot
        if self.input.quit:
            # ends run() and hands control back to the caller (which closes the view)
            self.task_mgr.stop()
        self._apply_input(float(self.clock.get_dt()))
        self._place_camera()
        if self.mailbox is not None and self.case_root is not None:
            snapshot = self.mailbox.take()
            if snapshot is not None:
                self.show_snapshot(snapshot)
        return int(Task.cont)

    # ---------------------------------------------------------------- session

    def show_snapshot(self, snapshot: ViewSnapshot) -> None:
        """Draw one moment of the session: cut bone, tool, zone warning, HUD."""
        if self.density is not None and snapshot.removed_chunks:
            self._remesh(self._chunks_reached(snapshot.removed_chunks))
        self._show_instrument(snapshot)
        self._show_zone_alert(snapshot.nearest_protected_mm)
        self._show_hud(snapshot)
        self.last_snapshot = snapshot

    def _show_instrument(self, snapshot: ViewSnapshot) -> None:
        if self.instrument is None or self.geometry is None:
            return
        shape = (snapshot.tool_kind, snapshot.tool_radius_mm)
        if shape != self.instrument_shape:
            self.instrument.get_children().detach()
            solid = self.instrument.attach_new_node("tool-solid")
            # a faint copy drawn through the bone keeps a buried burr or drill tip in sight
            ghost = self.instrument.attach_new_node("tool-ghost")
            ghost.set_transparency(TransparencyAttrib.M_alpha)
            ghost.set_depth_test(False)
            ghost.set_depth_write(False)
            ghost.set_bin("fixed", 40)
            ghost.set_alpha_scale(TOOL_GHOST_ALPHA)
            for i, (vertices, faces, colour) in enumerate(instrument_parts(*shape)):
                node = mesh_geom_node(f"tool-{i}", vertices, faces, colour)
                solid.attach_new_node(node)
                ghost.attach_new_node(node.make_copy())
            self.instrument_shape = shape
        to_world = self.geometry.world_from_case
        tip = transform_points(to_world, snapshot.tool_tip_mm)[0]
        axis = np.asarray(to_world[:3, :3] @ np.asarray(snapshot.tool_axis, dtype=np.float64))
        axis /= max(float(np.linalg.norm(axis)), 1e-12)
        up = (0.0, 0.0, 1.0) if abs(float(axis[2])) < 0.95 else (0.0, -1.0, 0.0)
        self.instrument.set_pos(float(tip[0]), float(tip[1]), float(tip[2]))
        ahead = tip + axis
        self.instrument.look_at(
            Point3(float(ahead[0]), float(ahead[1]), float(ahead[2])), Vec3(*up)
        )
        self.instrument.show()

    def _show_zone_alert(self, nearest_mm: float) -> None:
        if self.zones_root is None:
            return
        alert = min(max((ZONE_WARNING_MM - nearest_mm) / ZONE_WARNING_MM, 0.0), 1.0)
        # yellow and red warm to an opaque red-orange as the tool closes in
        self.zones_root.set_color_scale(
            1.0, 1.0 - 0.7 * alert, 1.0 - 0.7 * alert, 1.0 + 0.8 * alert
        )
        if self.warning_text is not None:
            text = self.warning_text.node()
            if alert > 0.0:
                text.set_text(f"接近保护区 / near protected zone  {max(nearest_mm, 0.0):.1f} mm")
            else:
                text.set_text("")

    def _show_hud(self, snapshot: ViewSnapshot) -> None:
        if self.force_gauge is not None:
            self.force_gauge.show(snapshot.force_magnitude_n, snapshot.force_limit_n)
        if self.status_text is not None:
            tool = _TOOL_NAMES.get(snapshot.tool_kind, snapshot.tool_kind)
            lines = [
                f"时间 / time  {snapshot.elapsed_s:6.1f} s",
                tool
                if snapshot.tool_kind == TOOL_SAW
                else f"{tool}  Ø {2 * snapshot.tool_radius_mm:.1f} mm",
            ]
            if math.isfinite(snapshot.nearest_protected_mm):
                lines.append(
                    f"距保护区 / to protected zone  {snapshot.nearest_protected_mm:.1f} mm"
                )
            for key in sorted(snapshot.metrics):
                lines.append(f"{metric_label(key)}  {snapshot.metrics[key]:.1f}")
            self.status_text.node().set_text("\n".join(lines))

    def finalizeExit(self) -> None:  # noqa: N802 - ShowBase's own name for this hook
        """Closing the window ends ``run()`` instead of the whole program (ShowBase's default)."""
        self.input.quit = True
        self.task_mgr.stop()

    # ---------------------------------------------------------------- output

    def render_frames(self, count: int) -> None:
        """Run ``count`` frames (tasks and drawing) without a main loop."""
        for _ in range(count):
            self.task_mgr.step()

    def save_png(self, path: Path) -> Path:
        """Write the last rendered frame to ``path`` (PNG)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.win.save_screenshot(Filename.from_os_specific(str(path))):
            raise OSError(f"{path}: the view could not write its screenshot")
        return path


def _trajectory_framing(
    geometry: CaseGeometry, trajectory: tuple[Vec3Mm, Vec3Mm]
) -> tuple[npt.NDArray[np.float64], float, ViewAngles]:
    # centre on the planned path with the bone around it, seen from the entry side turned
    # 50 degrees and raised 25, so the tool does not hide the path behind itself
    ends = transform_points(geometry.world_from_case, np.asarray(trajectory, dtype=np.float64))
    entry, target = ends[0].astype(np.float64), ends[1].astype(np.float64)
    centre = (entry + target) / 2.0
    back = entry - target
    length = float(np.linalg.norm(back))
    back = back / length if length > 0 else np.array([0.0, -1.0, 0.0])
    azimuth = math.degrees(math.atan2(back[0], -back[1])) + 50.0
    elevation = min(max(math.degrees(math.asin(max(min(back[2], 1.0), -1.0))) + 25.0, -70.0), 70.0)
    radius = max(length / 2.0 + 25.0, 40.0)
    return centre, radius, ViewAngles(azimuth, elevation)
