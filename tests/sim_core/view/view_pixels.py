"""Reading the view's screenshots back: pixel classes by colour, and the overlay to leave out."""

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image


def load_rgb(path: Path) -> npt.NDArray[np.int32]:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int32)


def bone_pixels(rgb: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    # lit ivory: warm (red >= green >= blue), not saturated, not dark
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 90) & (r >= g) & (g >= b) & (r - b > 8) & (r - b < 0.35 * r)


def red_pixels(rgb: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 90) & (r > 1.5 * g) & (r > 1.5 * b)


def yellow_pixels(rgb: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 90) & (g > 0.6 * r) & (b < 0.55 * g)


def background_pixels(rgb: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    # the gradient is a cool blue-grey: blue above red everywhere
    r, b = rgb[..., 0], rgb[..., 2]
    return (b > r) & (b < 90)


def scene_only(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """The mask without the overlay: title rows, the legend corner, the key-hint row."""
    h, w = mask.shape
    out = mask.copy()
    out[: h // 8] = False
    out[-h // 3 :, : int(w * 0.35)] = False
    out[-h // 12 :] = False
    return out
