"""The C-arm in the live view: ``f`` takes a fluoroscopy shot, ``c`` turns the C-arm to its
next pose; the last image shows in the HUD, at the left, with its view and tick.

A shot is cast in the view's own process from what it draws: the live density grid and the
last snapshot's tool tip and axis (``sim_core.fluoro``). Each shot is kept as a
``ShotRecord`` (the snapshot's tick, the view) for the session's recording and score; a
replay casts it again from the state at that tick (the live image may hold up to one frame,
~16 ms, more cutting). Keys work with every input device, since they are the window's: the
mouse device leaves ``f`` and ``c`` alone.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from panda3d.core import CardMaker, NodePath, TextNode, Texture

from sim_core.fluoro import Fluoroscope, Radiograph, ShotRecord, View
from sim_core.view.hud import DIM_TEXT_COLOUR, text_node

SHOT_KEY = "f"
POSE_KEY = "c"
POSES = ("ap", "lateral", "oblique:30", "oblique:-30", "inlet", "outlet")
_POSE_NAMES = {
    "ap": "正位 / AP",
    "lateral": "侧位 / lateral",
    "oblique": "斜位 / oblique",
    "inlet": "入口位 / inlet",
    "outlet": "出口位 / outlet",
}
IMAGE_SIZE = 0.9  # aspect2d units: the image's side on screen


def pose_name(view: View) -> str:
    name = _POSE_NAMES[view.name]
    return name if view.name in ("ap", "lateral") else f"{name} {view.angle_deg:+g}°"


class FluoroPanel:
    """Keys, shots and the HUD image of one live view (a ``SceneView`` in a session)."""

    def __init__(self, view: Any, scope: Fluoroscope | Callable[[], Fluoroscope]) -> None:
        """``scope``: the case's C-arm, or what makes it on the first shot (its soft-tissue
        grid takes a few hundred ms: a session that takes no shot does not pay for it)."""
        self.view = view
        self._scope = scope
        self.pose = 0
        self.shots: list[ShotRecord] = []
        self.last: Radiograph | None = None
        self._wanted = False
        anchor = view._hud_anchor(view.a2dLeftCenter, "fluoro")
        self.root: NodePath = anchor.attach_new_node("fluoro-panel")
        self.texture = Texture("fluoro-shot")
        self.card = self._card(self.root)
        self.card.hide()
        self.caption = text_node(
            self.root, "fluoro-caption", "", view.font, pos=(0.06, IMAGE_SIZE / 2 + 0.03),
            scale=0.04,
        )  # fmt: skip
        self.hint = text_node(
            self.root, "fluoro-hint", "", view.font, pos=(0.06, -IMAGE_SIZE / 2 - 0.07),
            scale=0.035, colour=DIM_TEXT_COLOUR, align=TextNode.A_left,
        )  # fmt: skip
        self._show_hint()
        view.accept(SHOT_KEY, self.request_shot)
        view.accept(POSE_KEY, self.next_pose)
        view.task_mgr.add(self._frame, "osteon-fluoro", sort=20)

    def _card(self, parent: NodePath) -> NodePath:
        maker = CardMaker("fluoro-image")
        half = IMAGE_SIZE / 2
        maker.set_frame(0.06, 0.06 + IMAGE_SIZE, -half, half)
        card = parent.attach_new_node(maker.generate())
        card.set_texture(self.texture)
        card.set_light_off()
        return card

    @property
    def scope(self) -> Fluoroscope:
        if not isinstance(self._scope, Fluoroscope):
            self._scope = self._scope()
        return self._scope

    @property
    def current_view(self) -> View:
        return View.parse(POSES[self.pose])

    def _show_hint(self) -> None:
        self.hint.node().set_text(
            f"[f] 透视 / shot    [c] C 臂 / C-arm: {pose_name(self.current_view)}    "
            f"{len(self.shots)} 次 / shots"
        )

    def request_shot(self) -> None:
        # the frame task takes it: key events only record what was asked for
        self._wanted = True

    def next_pose(self) -> None:
        self.pose = (self.pose + 1) % len(POSES)
        self._show_hint()

    def _frame(self, task: Any) -> Any:
        if self._wanted:
            self._wanted = False
            self.take_shot()
        return task.cont

    def take_shot(self) -> Radiograph | None:
        """Cast a shot now (from the last snapshot); None before the first snapshot."""
        snapshot = self.view.last_snapshot
        density = self.view.density
        if snapshot is None or density is None:
            return None
        axis = np.asarray(snapshot.tool_axis, dtype=np.float64)
        normal = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
        view = self.current_view
        shot = self.scope.shot_at(density, snapshot.tool_tip_mm, axis, normal, view)
        self.shots.append(ShotRecord(int(snapshot.tick), view.label))
        self.last = shot
        self._show_image(shot)
        self.caption.node().set_text(
            f"透视 / fluoro  {pose_name(view)}   {snapshot.elapsed_s:.1f} s"
        )
        self._show_hint()
        return shot

    def _show_image(self, shot: Radiograph) -> None:
        image = np.ascontiguousarray(np.flipud(shot.image()))  # textures start at the bottom
        n = image.shape[0]
        self.texture.setup_2d_texture(n, n, Texture.T_unsigned_byte, Texture.F_luminance)
        self.texture.set_ram_image(image.tobytes())
        self.card.show()
