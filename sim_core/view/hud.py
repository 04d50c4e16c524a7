"""The 2D overlay: title, legend, force bar and live metrics text, in Chinese then English.

Builders here make plain nodes under a parent given by the view (its aspect2d corners); the
view keeps the returned handles and updates them from snapshots.
"""

from dataclasses import dataclass

from panda3d.core import CardMaker, DynamicTextFont, Filename, NodePath, TextFont, TextNode

from sim_core.view.fonts import find_cjk_font

Rgba = tuple[float, float, float, float]

TEXT_COLOUR: Rgba = (0.93, 0.95, 0.97, 1.0)
DIM_TEXT_COLOUR: Rgba = (0.70, 0.75, 0.80, 1.0)
_TEXT_SCALE = 0.052
_SMALL_SCALE = 0.042


def load_cjk_font() -> TextFont | None:
    """The CJK font as a Panda3D font, rendered crisp at HUD sizes; None if the system has none."""
    face = find_cjk_font()
    if face is None:
        return None
    font = DynamicTextFont(Filename.from_os_specific(str(face.path)), face.face_index)
    if not font.is_valid():
        return None
    font.set_pixels_per_unit(64)
    return font


def text_node(
    parent: NodePath,
    name: str,
    text: str,
    font: TextFont | None,
    *,
    pos: tuple[float, float],
    scale: float = _TEXT_SCALE,
    colour: Rgba = TEXT_COLOUR,
    align: int = TextNode.A_left,
) -> NodePath:
    """A text line (or lines) placed in the parent's 2D coordinates (x right, z up)."""
    node = TextNode(name)
    if font is not None:
        node.set_font(font)
    node.set_text(text)
    node.set_text_color(colour)
    node.set_align(align)
    node.set_shadow(0.06, 0.06)
    node.set_shadow_color(0.0, 0.0, 0.0, 0.8)
    path = parent.attach_new_node(node)
    path.set_scale(scale)
    path.set_pos(pos[0], 0.0, pos[1])
    return path


def swatch(parent: NodePath, colour: Rgba, *, pos: tuple[float, float], size: float) -> NodePath:
    """A small coloured square, for legend entries."""
    maker = CardMaker("swatch")
    maker.set_frame(0.0, size, 0.0, size)
    card = parent.attach_new_node(maker.generate())
    card.set_pos(pos[0], 0.0, pos[1])
    card.set_color(colour[0], colour[1], colour[2], 1.0)
    return card


def legend(
    parent: NodePath,
    entries: list[tuple[str, Rgba]],
    font: TextFont | None,
    *,
    origin: tuple[float, float],
) -> NodePath:
    """Colour swatches with their labels, stacked upwards from ``origin`` (bottom-left)."""
    root = parent.attach_new_node("legend")
    x, z = origin
    for i, (label, colour) in enumerate(reversed(entries)):
        row_z = z + i * 0.075
        swatch(root, colour, pos=(x, row_z - 0.005), size=0.045)
        text_node(root, f"legend-{i}", label, font, pos=(x + 0.07, row_z), scale=_SMALL_SCALE)
    return root


@dataclass
class ForceBar:
    """A horizontal gauge of |F| / force limit, green to red, with its caption."""

    root: NodePath
    fill: NodePath
    caption: NodePath
    width: float

    def show(self, force_n: float, limit_n: float) -> None:
        fraction = min(max(force_n / limit_n, 0.0), 1.0) if limit_n > 0 else 0.0
        self.fill.set_scale(max(fraction, 1e-3), 1.0, 1.0)
        # green when light, amber past half, red near the limit
        if fraction < 0.5:
            colour = (0.25, 0.80, 0.35, 1.0)
        elif fraction < 0.85:
            colour = (0.95, 0.70, 0.15, 1.0)
        else:
            colour = (0.95, 0.20, 0.15, 1.0)
        self.fill.set_color(colour)
        text = self.caption.node()
        assert isinstance(text, TextNode)
        text.set_text(f"力 / force  {force_n:4.1f} / {limit_n:.1f} N")


def force_bar(
    parent: NodePath, font: TextFont | None, *, origin: tuple[float, float], width: float
) -> ForceBar:
    """Build the force gauge with its bottom-left corner at ``origin``."""
    root = parent.attach_new_node("force-bar")
    root.set_pos(origin[0], 0.0, origin[1])
    height = 0.05
    frame = CardMaker("force-frame")
    frame.set_frame(-0.008, width + 0.008, -0.008, height + 0.008)
    back = root.attach_new_node(frame.generate())
    back.set_color(0.12, 0.13, 0.15, 0.9)
    maker = CardMaker("force-fill")
    maker.set_frame(0.0, width, 0.0, height)
    fill = root.attach_new_node(maker.generate())
    caption = text_node(
        root, "force-caption", "", font, pos=(0.0, height + 0.03), scale=_SMALL_SCALE
    )
    bar = ForceBar(root, fill, caption, width)
    bar.show(0.0, 1.0)
    return bar
