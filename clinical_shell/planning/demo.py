"""The demo's surgical plans: on each demo case whose bundle has the landmarks, a draft plan by
the surgeon who built the case, so `make run` opens on something to check, approve and rehearse:
the lumbar case's L4 pedicle screws (left and right), the hip case's femoral neck guide wire.
Made through the planning service (checks computed and stored, audited); skipped when any plan
exists or no case has the landmarks.

A demo case is built from its DICOM alone, like any CT: no landmarks, no nerve. So that the demo
plan can be rehearsed at the local station, each planned case also gets a first version of
confirmed annotations, saved through the imaging service in the case's builder's name and noted
as taken from the phantom's truth: its landmarks, and on a spine the spinal canal as a nerve
tube through the levels' canal centres. A surgeon annotates a real CT on the case's annotation
page instead."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from clinical_shell.imaging.annotation_models import CaseAnnotationVersion
from clinical_shell.imaging.annotation_services import save_case_annotations
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


def _landmarks(
    case: SimulationCase, given: list[dict[str, Any]]
) -> tuple[dict[str, np.ndarray], tuple[int, ...]]:
    # the case's own landmarks (a phantom built with its truth), else the ones given; and the
    # case grid's shape
    try:
        bundle = load_bundle(case.path, verify=False)
    except BundleError:
        return {}, ()
    marks = bundle.meta.get("landmarks") or given
    points = {
        str(m["name"]): np.asarray(bundle.case_from_patient_mm(m["lps_mm"]), dtype=np.float64)
        for m in marks
    }
    return points, tuple(int(n) for n in bundle.meta["shape"])


# the dural sac's half-width in the lumbar phantom is 6.5-8 mm: a tube a little inside it
CANAL_RADIUS_MM = 6.0
DEMO_ANNOTATION_NOTE = (
    "演示数据：标志点与椎管取自体模真值 / demo: landmarks and canal from the phantom's truth"
)


def _annotate(case: SimulationCase, marks: dict[str, np.ndarray], shape: tuple[int, ...]) -> None:
    # what the demo's surgeon confirms on the case (see the module's docstring); skipped when
    # the case already has a version
    if CaseAnnotationVersion.objects.filter(case=case).exists():
        return
    limit = [(n - 0.5) * case.spacing_mm for n in shape]
    inside = {
        name: [round(float(c), 2) for c in p]
        for name, p in marks.items()
        if all(-0.5 * case.spacing_mm <= c <= hi for c, hi in zip(p, limit, strict=True))
    }
    canal = [inside[n] for n in sorted(inside) if n.endswith("_canal_centre")]
    zones = []
    if len(canal) >= 2:
        zones.append(
            {"name": "椎管", "kind": "nerve", "points_mm": canal, "radius_mm": CANAL_RADIUS_MM}
        )
    save_case_annotations(
        actor=case.created_by,
        patient_id=case.patient_id,
        case_id=case.pk,
        base_number=0,
        content={
            "levels": [],
            "bones": [],
            "landmarks": [{"name": n, "point_mm": p} for n, p in sorted(inside.items())],
            "zones": zones,
        },
        note=DEMO_ANNOTATION_NOTE,
    )


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
        marks, shape = _landmarks(case, (landmarks or {}).get(case.pk, []))
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
        _annotate(case, marks, shape)
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
