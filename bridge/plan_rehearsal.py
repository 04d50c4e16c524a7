"""What a rehearsal's plan (`bridge.messages.PlanSpec`) gives the simulator's model.

The station builds its model from it (`bridge.station.run_session`) and the shell rebuilds the
same model from the plan it sent to verify the recording (`clinical_shell.stations.services`):
one translation, so the two cannot drift apart and make every replay fail its digest.
"""

from typing import Any

from bridge.messages import PlanElementSpec, PlanSpec, ZoneSpec
from sim_core.case.annotations import Tube


def tubes_of(zones: tuple[ZoneSpec, ...]) -> tuple[Tube, ...]:
    """The plan's protected tubes as the simulator's ``Tube`` (case frame, mm)."""
    return tuple(
        Tube(
            name=z.name,
            kind=z.kind,
            points_mm=tuple((float(p[0]), float(p[1]), float(p[2])) for p in z.points_mm),
            radius_mm=float(z.radius_mm),
        )
        for z in zones
    )


def rehearsal_arguments(plan: PlanSpec, element: PlanElementSpec) -> dict[str, Any]:
    """``sim_core.rehearsal.rehearsal_model``'s (and ``model_for_rehearsal_recording``'s)
    keyword arguments for rehearsing ``element`` of ``plan``: its path and diameter (and a
    plane's normal), the plan's protected tubes and confirmed landmarks (case frame, mm)."""
    return {
        "entry_mm": tuple(float(x) for x in element.entry_mm),
        "target_mm": tuple(float(x) for x in element.target_mm),
        "diameter_mm": float(element.diameter_mm),
        "tubes": tubes_of(plan.zones),
        "landmarks": {m.name: tuple(float(c) for c in m.point_mm) for m in plan.landmarks},
        "normal": None if element.normal is None else tuple(float(x) for x in element.normal),
    }
