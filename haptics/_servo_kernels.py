"""Force kernels the servo loop can call: a simple density-weighted sphere-overlap force.

Every servo force kernel has the same signature, so the loop takes it as an argument:

    kernel(density, geometry, pose, params, force_out) -> None

- density: float32[i, j, k], C-contiguous, bone density 0..1 per voxel (read only here).
- geometry: float64[6]: origin_mm (centre of voxel 0,0,0) x, y, z, then spacing_mm x, y, z;
  voxel (i, j, k) has its centre at origin + (i, j, k) * spacing (axes i->x, j->y, k->z).
- pose: float64[N_POSE], the tool pose row in world (case) mm, layout in `haptics.channel`.
- params: float64[...], the kernel's own parameters.
- force_out: float64[3], written: the force on the user's hand in N, world frame.

The engine's own kernel (`sim_core._kernels._contact_force`, with a proxy against
pop-through) replaces this one once present; this one exists so the loop can be built and
tested on its own.
"""

import math

import numpy as np
import numpy.typing as npt
from numba import njit

# sphere_overlap_force params
RADIUS_MM = 0  # burr radius
GAIN_N = 1  # force at full overlap (sphere entirely inside density-1 bone), N
DAMPING_N_S_PER_MM = 2  # viscous term while in contact, N per (mm/s)
N_SPHERE_PARAMS = 3


@njit(
    "void(f4[:, :, ::1], f8[::1], f8[::1], f8[::1], f8[::1])",
    cache=True,
    nogil=True,
)
def sphere_overlap_force(
    density: npt.NDArray[np.float32],
    geometry: npt.NDArray[np.float64],
    pose: npt.NDArray[np.float64],
    params: npt.NDArray[np.float64],
    force_out: npt.NDArray[np.float64],
) -> None:
    """Forsslund-style: F = gain * (overlap volume / sphere volume) * mean normal - D v.

    Each voxel centre inside the burr sphere adds its density times its volume along the
    direction from that voxel to the tip, so the sum pushes the tip out of the bone. Damping
    acts only while something is overlapped (no drag in free air).
    """
    radius = params[RADIUS_MM]
    tip_x, tip_y, tip_z = pose[1], pose[2], pose[3]
    sx, sy, sz = geometry[3], geometry[4], geometry[5]
    # voxel index box around the sphere, clipped to the grid
    i0 = max(math.floor((tip_x - radius - geometry[0]) / sx), 0)
    i1 = min(math.ceil((tip_x + radius - geometry[0]) / sx), density.shape[0] - 1)
    j0 = max(math.floor((tip_y - radius - geometry[1]) / sy), 0)
    j1 = min(math.ceil((tip_y + radius - geometry[1]) / sy), density.shape[1] - 1)
    k0 = max(math.floor((tip_z - radius - geometry[2]) / sz), 0)
    k1 = min(math.ceil((tip_z + radius - geometry[2]) / sz), density.shape[2] - 1)
    fx = np.float64(0.0)
    fy = np.float64(0.0)
    fz = np.float64(0.0)
    overlap = np.float64(0.0)
    r2 = radius * radius
    for i in range(i0, i1 + 1):
        dx = tip_x - (geometry[0] + i * sx)
        for j in range(j0, j1 + 1):
            dy = tip_y - (geometry[1] + j * sy)
            for k in range(k0, k1 + 1):
                rho = density[i, j, k]
                if rho <= 0.0:
                    continue
                dz = tip_z - (geometry[2] + k * sz)
                d2 = dx * dx + dy * dy + dz * dz
                if d2 > r2:
                    continue
                overlap += rho
                d = math.sqrt(d2)
                if d > 1e-12:
                    fx += rho * dx / d
                    fy += rho * dy / d
                    fz += rho * dz / d
    voxel_mm3 = sx * sy * sz
    sphere_mm3 = 4.0 / 3.0 * math.pi * radius * radius * radius
    scale = params[GAIN_N] * voxel_mm3 / sphere_mm3
    force_out[0] = scale * fx
    force_out[1] = scale * fy
    force_out[2] = scale * fz
    if overlap > 0.0:
        damping = params[DAMPING_N_S_PER_MM]
        force_out[0] -= damping * pose[11]
        force_out[1] -= damping * pose[12]
        force_out[2] -= damping * pose[13]
