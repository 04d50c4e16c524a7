"""Where the camera stands: named anatomical views and framing a sphere in the lens.

Directions are in the view's world frame (patient LPS axes: +x left, +y posterior, +z
superior). A view is an azimuth about the superior axis and an elevation above the axial
plane, measured from the anterior direction (-y).
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ViewAngles:
    azimuth_deg: float  # positive turns the camera towards the patient's left
    elevation_deg: float  # positive raises it towards superior


# anterior-facing views come first: the default is a slightly oblique frontal view, which
# keeps the anterior surface towards the viewer but shows depth (pedicles, facets) too
CAMERA_VIEWS: dict[str, ViewAngles] = {
    "anterior": ViewAngles(25.0, 12.0),
    "frontal": ViewAngles(0.0, 0.0),
    "left": ViewAngles(90.0, 0.0),
    "right": ViewAngles(-90.0, 0.0),
    "posterior": ViewAngles(180.0, 12.0),
    "superior": ViewAngles(0.0, 80.0),
}
DEFAULT_VIEW = "anterior"


def view_direction(angles: ViewAngles) -> npt.NDArray[np.float64]:
    """Unit vector from the target to the camera."""
    az = math.radians(angles.azimuth_deg)
    el = math.radians(angles.elevation_deg)
    return np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])


def framing_distance_mm(
    radius_mm: float, fov_deg: tuple[float, float], *, margin: float = 1.08
) -> float:
    """Camera distance at which a sphere of ``radius_mm`` fits the narrower field of view."""
    half = math.radians(min(fov_deg)) / 2.0
    return margin * radius_mm / math.sin(half)


def up_vector(angles: ViewAngles) -> npt.NDArray[np.float64]:
    """Screen-up direction: superior, except looking nearly straight down, where anterior is."""
    if abs(angles.elevation_deg) < 75.0:
        return np.array([0.0, 0.0, 1.0])
    return np.array([0.0, -1.0, 0.0])
