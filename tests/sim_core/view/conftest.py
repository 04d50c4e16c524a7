"""Session-wide case bundles for the view tests (built once, small)."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from view_cases import patient_grid, write_case

from sim_core.case.bundle import TISSUE_NERVE, TISSUE_VESSEL


@pytest.fixture(scope="session")
def spine_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two vertebra-like bones, the wider one superior; a vessel in front of it, left of the
    midline; a nerve column behind, running past both ends of the bones."""
    x, y, z = patient_grid()  # x patient left, y posterior, z superior (LPS, mm)
    upper = ((x / 18) ** 2 + (y / 12) ** 2 < 1) & (np.abs(z - 12) < 9)
    lower = ((x / 11) ** 2 + (y / 9) ** 2 < 1) & (np.abs(z + 12) < 9)
    vessel = ((x - 6) ** 2 + (y + 18) ** 2 < 4**2) & (np.abs(z - 12) < 8)
    nerve = (x**2 + (y - 20) ** 2) < 4**2
    landmarks: list[dict[str, Any]] = [{"name": "upper_body_centre", "lps_mm": [0.0, 0.0, 12.0]}]
    return write_case(
        tmp_path_factory.mktemp("cases") / "spine",
        {"upper": upper, "lower": lower},
        {TISSUE_VESSEL: vessel, TISSUE_NERVE: nerve},
        landmarks,
    )


@pytest.fixture(scope="session")
def long_bone_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One oblique shaft with a round head, no protected zones."""
    x, y, z = patient_grid()
    a, b = np.array([-12.0, 0.0, -24.0]), np.array([6.0, 0.0, 14.0])
    axis = (b - a) / np.linalg.norm(b - a)
    t = np.clip(
        (x - a[0]) * axis[0] + (y - a[1]) * axis[1] + (z - a[2]) * axis[2], 0, np.linalg.norm(b - a)
    )
    shaft = (x - a[0] - t * axis[0]) ** 2 + (y - a[1] - t * axis[1]) ** 2 + (
        z - a[2] - t * axis[2]
    ) ** 2 < 5**2
    head = (x - 10) ** 2 + y**2 + (z - 18) ** 2 < 8**2
    return write_case(
        tmp_path_factory.mktemp("cases") / "long-bone", {"femur": shaft | head}, {}, []
    )
