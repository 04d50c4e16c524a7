"""Who may see or change which plan: a plan is its patient's record, on its case's CT.

Reading a plan needs what reading its case needs (`imaging.access.access_case`: the patient's
door, audited, and the case's study visible to the reader). Changing one also needs write access
to the patient (`records.access.access_patient(write=True)`, audited).
"""

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from clinical_shell.errors import DomainError, NotFoundError
from clinical_shell.imaging.access import access_case
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning.models import Plan, PlanElement
from clinical_shell.records.access import access_patient
from clinical_shell.records.models import Patient


def access_plan(
    user: User | AnonymousUser,
    plan_id: int,
    *,
    write: bool = False,
    reason: str = "",
    form_only: bool = False,
) -> Plan:
    """The plan if `user` may read it (with `write`, change it). `form_only`: the page that
    shows the change's form (GET) needs the right to change but writes nothing, so its audit
    entry is a read (records.access.access_patient)."""
    plan = Plan.objects.select_related("case").filter(pk=plan_id).first()
    if plan is None:
        raise NotFoundError(
            "plan_not_found", _("未找到编号为 %(plan_id)s 的手术规划") % {"plan_id": plan_id}
        )
    if write:
        access_patient(
            user,
            plan.patient_id,
            write=True,
            reason=reason or "plan write",
            form_only=form_only,
        )
    plan.case = access_case(user, plan.case_id)
    return plan


def access_plan_element(
    user: User | AnonymousUser,
    plan_id: int,
    element_id: int,
    *,
    reason: str = "",
    form_only: bool = False,
) -> PlanElement:
    """An element of a plan the user may change (elements are only ever opened to change)."""
    plan = access_plan(user, plan_id, write=True, reason=reason, form_only=form_only)
    element = PlanElement.objects.filter(pk=element_id, plan_id=plan.pk).first()
    if element is None:
        raise NotFoundError(
            "plan_element_not_found",
            _("未找到编号为 %(element_id)s 的规划要素") % {"element_id": element_id},
        )
    element.plan = plan
    return element


def access_case_for_plan(
    user: User | AnonymousUser, patient_id: int, case_id: int
) -> tuple[Patient, SimulationCase]:
    """The patient (opened to write) and one of their cases the user may read, to plan on.

    A case of another patient is refused (400 "case_of_another_patient") before the case is
    opened, so a refusal says nothing about that other patient.
    """
    patient = access_patient(user, patient_id, write=True, reason="plan create")
    owner = SimulationCase.objects.filter(pk=case_id).values_list("patient_id", flat=True).first()
    if owner is None:
        raise NotFoundError(
            "case_not_found", _("未找到编号为 %(case_id)s 的仿真病例") % {"case_id": case_id}
        )
    if owner != patient.pk:
        raise DomainError("case_of_another_patient", _("该仿真病例不属于此患者"), status=400)
    return patient, access_case(user, case_id)
