"""The demo's surgical plans: on each demo case whose bundle has the landmarks, a draft plan by
the surgeon who built the case, so `make run` opens on something to check, approve and rehearse:
the lumbar case's L4 pedicle screws (left and right), the hip case's femoral neck guide wire.
Made through the planning service (checks computed and stored, audited); skipped when any plan
exists or no case has the landmarks."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning import services
from clinical_shell.planning.models import Plan
from sim_core.case.bundle import BundleError, load_bundle


@dataclass(frozen=True)
class _DemoElement:
    kind: str
    label: str
    entry: str  # the case landmark the element enters at
    target: str  # ... and aims at
    implant_id: str
    # the target moved this far back toward the entry (a guide wire stops short of the apex)
    short_mm: float = 0.0


@dataclass(frozen=True)
class _DemoPlan:
    title: str
    elements: tuple[_DemoElement, ...]


DEMO_PLANS = (
    _DemoPlan(
        "L4 椎弓根螺钉内固定（演示）",
        (
            _DemoElement(
                "pedicle_screw",
                "L4 左",
                "L4_pedicle_entry_left",
                "L4_pedicle_target_left",
                "pedicle_screw_6.5x45",
            ),
            _DemoElement(
                "pedicle_screw",
                "L4 右",
                "L4_pedicle_entry_right",
                "L4_pedicle_target_right",
                "pedicle_screw_6.5x45",
            ),
        ),
    ),
    _DemoPlan(
        "股骨颈骨折 导针置入（演示）",
        (
            _DemoElement(
                "guide_wire",
                "导针",
                "lateral_cortex_entry",
                "femoral_head_apex",
                "guide_wire_3.2",
                short_mm=8.0,
            ),
        ),
    ),
)


def _landmarks(case: SimulationCase, given: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    # the case's own landmarks (a phantom built with its truth), else the ones given
    try:
        bundle = load_bundle(case.path, verify=False)
    except BundleError:
        return {}
    marks = bundle.meta.get("landmarks") or given
    return {
        str(m["name"]): np.asarray(bundle.case_from_patient_mm(m["lps_mm"]), dtype=np.float64)
        for m in marks
    }


def load_planning_demo(landmarks: dict[int, list[dict[str, Any]]] | None = None) -> int:
    """The demo plans that fit the built demo cases; returns how many were made.

    `landmarks`: by case id, the phantom landmarks (patient LPS mm) of a case built without
    them (the shell builds from the DICOM only, as for any CT)."""
    if Plan.objects.exists():
        return 0
    made = 0
    cases = SimulationCase.objects.select_related("patient", "created_by").order_by("pk")
    remaining = list(DEMO_PLANS)
    for case in cases:
        marks = _landmarks(case, (landmarks or {}).get(case.pk, []))
        demo = next(
            (
                p
                for p in remaining
                if all(e.entry in marks and e.target in marks for e in p.elements)
            ),
            None,
        )
        if demo is None:
            continue
        remaining.remove(demo)
        plan = services.create_plan(
            actor=case.created_by, patient=case.patient, case=case, title=demo.title
        )
        for e in demo.elements:
            entry, target = marks[e.entry], marks[e.target]
            if e.short_mm:
                target = target + e.short_mm * (entry - target) / np.linalg.norm(entry - target)
            # add_element moves plan.version on (services._bump)
            services.add_element(
                actor=case.created_by,
                plan=plan,
                version=plan.version,
                data=services.ElementData(
                    kind=e.kind,
                    label=e.label,
                    entry_mm=[round(float(x), 2) for x in entry],
                    target_mm=[round(float(x), 2) for x in target],
                    implant_id=e.implant_id,
                ),
            )
        made += 1
    return made
