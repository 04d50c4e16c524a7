"""The demo's draft plans: made on the demo cases that have the landmarks, through the planning
service (checks stored, audited), once."""

import numpy as np
import pytest
from planning_cases import LumbarCase

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning.demo import load_planning_demo
from clinical_shell.planning.models import Plan

pytestmark = pytest.mark.django_db


def test_the_lumbar_demo_case_gets_a_draft_plan_with_both_l4_screws_once(
    lumbar_case: SimulationCase, lumbar_bundle: LumbarCase
) -> None:
    assert load_planning_demo() == 1
    plan = Plan.objects.get()
    assert plan.case == lumbar_case and plan.status == Plan.Status.DRAFT
    assert plan.created_by == lumbar_case.created_by
    screws = list(plan.elements.order_by("label"))
    assert [e.label for e in screws] == ["L4 右", "L4 左"]
    for screw, side in zip(screws, ("right", "left"), strict=True):
        assert np.allclose(
            screw.entry_mm, lumbar_bundle.marks[f"L4_pedicle_entry_{side}"], atol=0.01
        )
        assert screw.implant_id == "pedicle_screw_6.5x45"
        # checks computed by the same service a surgeon's save runs
        assert screw.checks["gr_grade"] in {"A", "B", "C", "D", "E"}
    assert plan.version == 3
    assert (
        AuditEvent.objects.filter(action="plan.element.add", patient_id=plan.patient_id).count()
        == 2
    )
    # the hip plan needs a case with femoral landmarks: none here, so it is not made
    assert load_planning_demo() == 0 and Plan.objects.count() == 1
