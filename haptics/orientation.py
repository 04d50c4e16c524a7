"""Quaternion helpers for tool orientation (w, x, y, z; unit; device frame).

With the identity orientation the tool axis (handle to tip) points along -z.
"""

import math

import numpy as np

from haptics.channel import FloatArray

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


def quaternion_from_matrix(rotation: FloatArray) -> FloatArray:
    """Unit quaternion (w, x, y, z) of a 3x3 rotation matrix (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = float(m[0, 0] + m[1, 1] + m[2, 2])
    if trace > 0.0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    out = np.array(q, dtype=np.float64)
    return np.asarray(out / np.linalg.norm(out), dtype=np.float64)


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
