"""A synthetic bone block for benchmarks and tests: no case bundle needed.

Grid (48, 48, 64) at 0.5 mm. Bone fills i, j in [4, 44) and k in [16, 56) (z 8..28 mm) with a
3-voxel cortex (1.8 g/cm³) around cancellous bone (0.4 g/cm³); a nerve runs along i under the
block (j = 24, k = 10, radius 3 voxels). The plan goes straight down (-z) through the top; a
target sphere sits under the top cortex and a protected sphere under that.
"""

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from sim_core.instruments import Instrument, load_instrument
from sim_core.model import CaseModel, DeviceLimits, model_from_grids
from sim_core.scenarios import Plan, PointSpec, Scenario, Sphere, Threshold
from sim_core.trajectories import Waypoint, rows_from_waypoints

SPACING_MM = 0.5
SHAPE = (48, 48, 64)
CORTEX_G_CM3 = 1.8
CANCELLOUS_G_CM3 = 0.4
TOP_Z_MM = 27.5  # highest bone voxel centre


def block_grids() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """(density g/cm³, tissue) of the block; soft-tissue density is 1.0 and must not cut."""
    tissue = np.zeros(SHAPE, dtype=np.uint8)
    density = np.zeros(SHAPE, dtype=np.float32)
    tissue[4:44, 4:44, 16:56] = 1
    tissue[7:41, 7:41, 19:53] = 2
    density[tissue == 1] = CORTEX_G_CM3
    density[tissue == 2] = CANCELLOUS_G_CM3
    _, j, k = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    nerve = np.broadcast_to((j - 24) ** 2 + (k - 10) ** 2 <= 9, SHAPE)
    tissue[nerve] = 4
    density[nerve] = 1.0
    return density, tissue


def block_scenario(instrument: str = "burr_sphere_4mm", *, force_limit_n: float = 4.0) -> Scenario:
    return Scenario(
        name="synthetic",
        title="合成骨块 / synthetic block",
        scoring="burr_target",
        instrument=instrument,
        entry=PointSpec("entry"),
        target=PointSpec("target"),
        force_limit_n=force_limit_n,
        time_limit_s=60.0,
        thresholds=(Threshold("time_s", "max", 60.0),),
        screw_diameter_mm=3.0,
        seed=12345,
    )


def block_plan() -> Plan:
    return Plan(
        entry_mm=(12.0, 12.0, 28.0),
        target_mm=(12.0, 12.0, 14.0),
        target_zone=Sphere((12.0, 12.0, 24.0), 4.0),
        protected_zone=Sphere((12.0, 12.0, 16.0), 2.5),
    )


def bench_model(
    instrument: str | Instrument = "burr_sphere_4mm", *, device: DeviceLimits | None = None
) -> CaseModel:
    """The block with one instrument."""
    density, tissue = block_grids()
    if isinstance(instrument, str):
        instrument = load_instrument(instrument)
    return model_from_grids(
        density_g_cm3=density,
        tissue=tissue,
        spacing_mm=SPACING_MM,
        scenario=replace(block_scenario(), instrument=instrument.name),
        instrument=instrument,
        plan=block_plan(),
        device=device,
        case_name="synthetic-block",
    )


def contact_rows(model: CaseModel, ticks: int) -> npt.NDArray[np.float64]:
    """Typical contact: powered, pressed 1 mm into the top, sweeping 6 mm to and fro."""
    down = (0.0, 0.0, -1.0)
    z = TOP_Z_MM - 1.0
    seconds = ticks / 1000.0
    points = [Waypoint(0.0, (12.0, 12.0, TOP_Z_MM + 3.0), down, True)]
    t = 0.2
    points.append(Waypoint(t, (12.0, 12.0, z), down, True))
    x = 15.0
    while t < seconds:
        t = min(t + 0.6, seconds)
        points.append(Waypoint(t, (x, 12.0, z), down, True))
        x = 9.0 if x > 12.0 else 15.0
    rows = rows_from_waypoints(points, normal=(1.0, 0.0, 0.0))
    return rows[:ticks]
