"""Each engine kernel against its numpy twin (tests/sim_core/naive.py) on random inputs."""

import math

import naive
import numpy as np
import numpy.typing as npt
import pytest

from sim_core import _kernels, kernels
from sim_core.slots import (
    KIND_BLADE,
    KIND_CYLINDER,
    KIND_SPHERE,
    N_OVERLAP,
    N_PARAMS,
    N_POSE,
    N_REMOVED,
    N_TOOL,
    O_BONE_VOXELS,
    O_NERVE_VOXELS,
    O_PROTECTED_VOXELS,
    P_DAMPING_N_S_PER_MM,
    P_GAIN_N,
    T_CUT_MM,
    T_KIND,
    T_LENGTH_MM,
    T_RADIUS_MM,
    T_REF_RADIUS_MM,
    T_WIDTH_MM,
    ZONE_PROTECTED,
    ZONE_TARGET,
)

SHAPE = (22, 18, 26)
KINDS = (KIND_SPHERE, KIND_CYLINDER, KIND_BLADE)
CASES_PER_KIND = 40
REL = 1e-9  # float sums: same terms, another order


def random_grids(
    rng: np.random.Generator, *, empty: bool = False
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    density0 = rng.uniform(0.05, 2.0, SHAPE).astype(np.float32)
    density0[rng.random(SHAPE) < 0.3] = 0.0
    if empty:
        density0[:] = 0.0
    density = (density0 * rng.uniform(0.0, 1.0, SHAPE)).astype(np.float32)
    density[rng.random(SHAPE) < 0.1] = 0.0
    label = rng.integers(0, 6, SHAPE).astype(np.uint8)
    label |= np.where(rng.random(SHAPE) < 0.3, ZONE_TARGET, 0).astype(np.uint8)
    label |= np.where(rng.random(SHAPE) < 0.2, ZONE_PROTECTED, 0).astype(np.uint8)
    return density, density0, label


def random_tool(rng: np.random.Generator, kind: int) -> npt.NDArray[np.float64]:
    tool = np.zeros(N_TOOL)
    tool[T_KIND] = kind
    tool[T_RADIUS_MM] = rng.uniform(0.3, 3.0)
    tool[T_REF_RADIUS_MM] = rng.uniform(0.5, 3.0)
    tool[T_LENGTH_MM] = 0.0 if kind == KIND_SPHERE else rng.uniform(0.5, 20.0)
    tool[T_WIDTH_MM] = rng.uniform(1.0, 10.0) if kind == KIND_BLADE else 0.0
    tool[T_CUT_MM] = rng.uniform(0.2, 6.0)
    return tool


def random_pose(rng: np.random.Generator, spacing_mm: float) -> npt.NDArray[np.float64]:
    pose = np.zeros(N_POSE)
    # tips anywhere in and around the grid: borders and outside count too
    extent = np.array(SHAPE) * spacing_mm
    pose[0:3] = rng.uniform(-0.3, 1.3, 3) * extent
    d = rng.normal(size=3)
    if rng.random() < 0.3:  # axis-aligned tools hit the degenerate branches
        d = np.zeros(3)
        d[rng.integers(3)] = rng.choice([-1.0, 1.0])
    d /= np.linalg.norm(d)
    n = np.cross(d, rng.normal(size=3))
    n /= np.linalg.norm(n)
    pose[3:6] = d
    pose[6:9] = n
    pose[9:12] = rng.normal(0, 20, 3)
    return pose


def cases(seed: int) -> list[tuple[int, float, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for kind in KINDS:
        for _ in range(CASES_PER_KIND):
            spacing = float(rng.choice([0.3, 0.5, 0.7]))
            out.append((kind, spacing, random_tool(rng, kind), random_pose(rng, spacing)))
    return out


@pytest.mark.parametrize("empty", [False, True])
def test_overlap_matches_its_naive_twin(empty: bool) -> None:
    rng = np.random.default_rng(1)
    density, _, label = random_grids(rng, empty=empty)
    touched = 0
    for _kind, spacing, tool, pose in cases(2):
        out = np.zeros(N_OVERLAP)
        _kernels._overlap(density, label, spacing, tool, pose, out)
        expected = naive.overlap(density, label, spacing, tool, pose)
        for slot in (O_BONE_VOXELS, O_NERVE_VOXELS, O_PROTECTED_VOXELS):
            assert out[slot] == expected[slot]
        np.testing.assert_allclose(out, expected, rtol=REL, atol=1e-12)
        touched += out[O_BONE_VOXELS] > 0
    assert touched > 20  # the random poses do reach the voxels


def test_occupied_matches_its_twin_and_stops_only_past_the_limit() -> None:
    rng = np.random.default_rng(3)
    density, _, _ = random_grids(rng)
    for _kind, spacing, tool, pose in cases(4):
        tip = pose[0:3] + rng.normal(0, 1.0, 3)
        full = _kernels._occupied(density, spacing, tool, pose, *tip, math.inf)
        expected = naive.occupied(density, spacing, tool, pose, tip)
        assert full == pytest.approx(expected, rel=REL, abs=1e-12)
        limit = 0.5 * expected
        capped = _kernels._occupied(density, spacing, tool, pose, *tip, limit)
        assert (capped > limit) == (expected > limit)


def test_contact_force_matches_forsslund_twin() -> None:
    rng = np.random.default_rng(5)
    density, _, _ = random_grids(rng)
    params = np.zeros(N_PARAMS)
    params[P_GAIN_N] = 2.0
    params[P_DAMPING_N_S_PER_MM] = 0.003
    pushed = 0
    for _kind, spacing, tool, pose in cases(6):
        got = _kernels._contact_force(density, spacing, tool, pose, params)
        expected = naive.contact_force(density, spacing, tool, pose, params)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
        pushed += got[3] > 0
    assert pushed > 20


def test_contact_force_is_zero_in_empty_space() -> None:
    density = np.zeros(SHAPE, dtype=np.float32)
    params = np.zeros(N_PARAMS)
    params[P_GAIN_N] = 2.0
    params[P_DAMPING_N_S_PER_MM] = 0.003
    for _kind, spacing, tool, pose in cases(8)[:30]:
        assert _kernels._contact_force(density, spacing, tool, pose, params) == (0, 0, 0, 0)


def test_erode_matches_its_naive_twin() -> None:
    rng = np.random.default_rng(9)
    base, density0, label = random_grids(rng)
    density0 = np.maximum(density0, base)  # a voxel never holds more than it started with
    cut_any = 0
    for _kind, spacing, tool, pose in cases(10):
        amount = float(rng.uniform(0.001, 0.5))
        got_grid = base.copy()
        want_grid = base.copy()
        got_removed = np.zeros(N_REMOVED)
        want_removed = np.zeros(N_REMOVED)
        got = _kernels._erode(got_grid, density0, label, spacing, tool, pose, amount, got_removed)
        want = naive.erode(want_grid, density0, label, spacing, tool, pose, amount, want_removed)
        assert np.array_equal(got_grid, want_grid)
        assert got == pytest.approx(want, rel=REL, abs=1e-12)
        np.testing.assert_allclose(got_removed, want_removed, rtol=REL, atol=1e-12)
        assert np.all(got_grid >= 0)
        cut_any += got > 0
    assert cut_any > 20


def test_public_contact_force_checks_its_inputs() -> None:
    density = np.zeros(SHAPE, dtype=np.float64)  # wrong dtype
    with pytest.raises(ValueError, match="float32"):
        kernels.checked_contact_force(
            density, 0.5, np.zeros(N_TOOL), np.zeros(N_POSE), np.zeros(N_PARAMS)
        )
    with pytest.raises(ValueError, match="pose"):
        kernels.checked_contact_force(
            density.astype(np.float32), 0.5, np.zeros(N_TOOL), np.zeros(3), np.zeros(N_PARAMS)
        )
