"""Quaternion helpers for tool orientation (w, x, y, z; unit; device frame).

With the identity orientation the tool axis (handle to tip) points along -z.
"""

import numpy as np

from haptics.channel import FloatArray

# the engine's scripts need it too, so it lives in sim_core (haptics -> sim_core, never back)
from sim_core.rotation import quaternion_from_matrix as quaternion_from_matrix

TOOL_AXIS_AT_REST = (0.0, 0.0, -1.0)


def quaternion_from_axis(axis: FloatArray) -> FloatArray:
    """The shortest rotation taking the rest axis (0, 0, -1) to `axis` (any length > 0)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    rest = np.array(TOOL_AXIS_AT_REST)
    w = 1.0 + float(rest @ a)
    if w < 1e-9:
        # opposite directions: any half turn about an axis normal to z works; take x
        return np.array([0.0, 1.0, 0.0, 0.0])
    q = np.concatenate(([w], np.cross(rest, a)))
    return np.asarray(q / np.linalg.norm(q), dtype=np.float64)


def matrix_from_quaternion(q: FloatArray) -> FloatArray:
    """3x3 rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def axis_from_quaternion(q: FloatArray) -> FloatArray:
    """The tool axis (handle to tip) for orientation `q`."""
    return np.asarray(matrix_from_quaternion(q) @ np.array(TOOL_AXIS_AT_REST), dtype=np.float64)
