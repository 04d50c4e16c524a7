"""Planning's writes: create a plan, add / change / remove its elements, approve it; and the checks
of an element, computed by `sim_core.plan_checks` on the case's model (cached per content hash).

Every write names the plan version its client last saw: another version is a 409
"plan_version_conflict" and nothing changes. Only a draft is changed. An element's checks are
computed on every write and stored with it; `check_element` computes them without writing.
"""

import math
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.imaging import annotation_selectors
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.network.models import Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.planning.models import Plan, PlanElement
from clinical_shell.records.models import Patient
from sim_core import plan_checks
from sim_core.case.bundle import BundleError
from sim_core.implants import Implant, ImplantError, get_implant, load_catalog

# the implant kind each element kind takes (a drill hole may name its drill bit)
IMPLANT_KIND_OF = {
    PlanElement.Kind.PEDICLE_SCREW: "pedicle_screw",
    PlanElement.Kind.K_WIRE: "k_wire",
    PlanElement.Kind.GUIDE_WIRE: "guide_wire",
    PlanElement.Kind.DRILL_HOLE: "drill_bit",
}


@dataclass(frozen=True)
class ElementData:
    """An element as the client sends it (schemas.ElementIn), before it is checked."""

    kind: str
    label: str
    entry_mm: list[float]
    target_mm: list[float]
    implant_id: str = ""
    plane_normal: list[float] | None = None
    radius_mm: float | None = None


def implant_catalog() -> tuple[Implant, ...]:
    return load_catalog()


def _invalid(code: str) -> DomainError:
    # the checks' own codes, in the reader's language (sim_core's messages are for logs)
    messages = {
        "invalid_point": _("坐标须为三个数"),
        "non_finite_point": _("坐标含无效数值（NaN 或无穷大）"),
        "point_outside_volume": _("入点或靶点在影像范围之外"),
        "zero_length_path": _("入点与靶点重合，无法确定方向"),
        "invalid_length": _("螺钉长度无效"),
        "invalid_diameter": _("直径无效"),
        "unknown_kind": _("未知的规划要素类型"),
    }
    return DomainError(code, str(messages.get(code, _("规划要素无效"))), status=422)


def _implant_for(data: ElementData) -> Implant | None:
    wanted = IMPLANT_KIND_OF.get(PlanElement.Kind(data.kind))
    if not data.implant_id:
        if data.kind in PlanElement.IMPLANT_KINDS:
            raise DomainError("implant_required", _("该类型须选择内植物"), status=422)
        return None
    try:
        implant = get_implant(data.implant_id)
    except ImplantError:
        raise DomainError(
            "unknown_implant",
            _("内植物目录中没有 %(implant_id)s") % {"implant_id": data.implant_id},
            status=422,
        ) from None
    if implant.kind != wanted:
        raise DomainError("implant_kind_mismatch", _("所选内植物与要素类型不符"), status=422)
    return implant


def _diameter_mm(data: ElementData, implant: Implant | None) -> float:
    if data.kind == PlanElement.Kind.OSTEOTOMY_PLANE:
        normal = data.plane_normal
        if normal is None or len(normal) != 3 or not all(math.isfinite(x) for x in normal):
            raise DomainError("plane_normal_required", _("截骨平面须给出法向"), status=422)
        if math.hypot(*normal) < 1e-6:
            raise DomainError("plane_normal_required", _("截骨平面须给出法向"), status=422)
        return 0.0
    if data.kind == PlanElement.Kind.BURR_REGION:
        radius = data.radius_mm
        if radius is None or not (math.isfinite(radius) and radius > 0):
            raise DomainError("radius_required", _("磨钻区域须给出正的半径"), status=422)
        return 2.0 * radius
    return implant.diameter_mm if implant is not None else 0.0


def compute_checks(*, case: SimulationCase, data: ElementData) -> dict[str, Any]:
    """The checks of `data` on `case` (plan_checks.ElementChecks.as_dict); 422 for bad input,
    409 "case_unavailable" when the case's bundle cannot be loaded as registered."""
    if data.kind not in PlanElement.Kind.values:
        raise _invalid("unknown_kind")
    implant = _implant_for(data)
    diameter = _diameter_mm(data, implant)
    try:
        # with the protected tubes the surgeon confirmed on the case (docs/annotations.md)
        model = plan_checks.cached_planning_model(
            case.path, case.content_hash, tubes=annotation_selectors.confirmed_tubes(case.pk)
        )
    except (BundleError, OSError, plan_checks.PlanCheckError):
        raise DomainError(
            "case_unavailable", _("仿真病例文件无法读取或已被改动"), status=409
        ) from None
    try:
        checks = plan_checks.check_element(
            model,
            kind=data.kind,
            entry_mm=data.entry_mm,
            target_mm=data.target_mm,
            diameter_mm=diameter,
            length_mm=implant.length_mm if implant is not None else None,
        )
    except plan_checks.PlanCheckError as exc:
        raise _invalid(exc.code) from None
    result = checks.as_dict()
    result["implant_id"] = implant.id if implant is not None else None
    return result


def _lock_draft(plan: Plan, version: int) -> Plan:
    """The plan's row, locked, when it is a draft at `version` (else 409, nothing changed)."""
    locked = Plan.objects.select_for_update().get(pk=plan.pk)
    if locked.version != version:
        raise DomainError(
            "plan_version_conflict",
            _("规划已被修改（当前版本 %(current)s，您编辑的是版本 %(seen)s），请刷新后重试")
            % {"current": locked.version, "seen": version},
        )
    if locked.status != Plan.Status.DRAFT:
        raise DomainError("plan_not_draft", _("规划已批准或已被取代，不能再修改"))
    return locked


def _bump(plan: Plan) -> None:
    Plan.objects.filter(pk=plan.pk).update(version=F("version") + 1, updated_at=timezone.now())
    plan.refresh_from_db(fields=["version", "updated_at"])


def _element_fields(data: ElementData, checks: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": data.kind,
        "label": data.label,
        "entry_mm": [float(x) for x in data.entry_mm],
        "target_mm": [float(x) for x in data.target_mm],
        "implant_id": data.implant_id,
        "plane_normal": (
            [float(x) for x in data.plane_normal]
            if data.kind == PlanElement.Kind.OSTEOTOMY_PLANE and data.plane_normal is not None
            else None
        ),
        "radius_mm": data.radius_mm if data.kind == PlanElement.Kind.BURR_REGION else None,
        "checks": checks,
    }


@transaction.atomic
def create_plan(*, actor: User, patient: Patient, case: SimulationCase, title: str) -> Plan:
    """A draft plan on one of the patient's cases.

    Preconditions: the caller opened both with `access.access_case_for_plan`.
    """
    if case.patient_id != patient.pk:
        raise DomainError("case_of_another_patient", _("该仿真病例不属于此患者"), status=400)
    if not title.strip():
        raise DomainError("title_required", _("请填写规划标题"), status=422)
    plan = Plan.objects.create(patient=patient, case=case, title=title.strip(), created_by=actor)
    audit.record(actor=actor, action="plan.create", patient_id=patient.pk, target=plan)
    return plan


@transaction.atomic
def add_element(*, actor: User, plan: Plan, version: int, data: ElementData) -> PlanElement:
    """Add an element (its checks computed and stored) to a draft at `version`."""
    checks = compute_checks(case=plan.case, data=data)
    locked = _lock_draft(plan, version)
    element = PlanElement.objects.create(plan=locked, **_element_fields(data, checks))
    _bump(plan)
    audit.record(
        actor=actor,
        action="plan.element.add",
        patient_id=plan.patient_id,
        target=plan,
        detail={"element_id": element.pk, "version": plan.version},
    )
    return element


@transaction.atomic
def update_element(
    *, actor: User, element: PlanElement, version: int, data: ElementData
) -> PlanElement:
    """Replace an element's kind, points and implant (its checks recomputed)."""
    plan = element.plan
    checks = compute_checks(case=plan.case, data=data)
    _lock_draft(plan, version)
    fields = _element_fields(data, checks)
    for name, value in fields.items():
        setattr(element, name, value)
    element.save(update_fields=[*fields, "updated_at"])
    _bump(plan)
    audit.record(
        actor=actor,
        action="plan.element.update",
        patient_id=plan.patient_id,
        target=plan,
        detail={"element_id": element.pk, "version": plan.version},
    )
    return element


@transaction.atomic
def delete_element(*, actor: User, element: PlanElement, version: int) -> Plan:
    plan = element.plan
    _lock_draft(plan, version)
    element_id = element.pk
    element.delete()
    _bump(plan)
    audit.record(
        actor=actor,
        action="plan.element.delete",
        patient_id=plan.patient_id,
        target=plan,
        detail={"element_id": element_id, "version": plan.version},
    )
    return plan


def may_approve(user: User | AnonymousUser) -> bool:
    """Whether `user` holds the surgeon role somewhere (the plan's patient access is the caller's
    check): who may approve an operative plan."""
    if not user.is_authenticated:
        return False
    return bool(institution_ids_with_roles(int(user.pk), frozenset({Role.SURGEON})))


def check_may_approve(*, actor: User, plan: Plan) -> None:
    """Only a surgeon approves an operative plan (others with write access to the patient, a
    resident or a township doctor, may draft it): else 403 "approve_not_surgeon", audited
    (outside any approval transaction, so the refusal's row is kept)."""
    if may_approve(actor):
        return
    audit.record(
        actor=actor,
        action="plan.approve",
        success=False,
        patient_id=plan.patient_id,
        target=plan,
        reason="approve_not_surgeon",
    )
    raise PermissionDeniedError(
        "approve_not_surgeon",
        _("只有外科医生可以批准手术规划；您可以起草和修改，请由主刀医生批准。"),
    )


def approve_plan(*, actor: User, plan: Plan, version: int) -> Plan:
    """Approve a draft at `version`; the case's earlier approved plan becomes superseded.
    Refused unless `actor` may approve (`check_may_approve`)."""
    check_may_approve(actor=actor, plan=plan)
    return _approve(actor=actor, plan=plan, version=version)


@transaction.atomic
def _approve(*, actor: User, plan: Plan, version: int) -> Plan:
    locked = _lock_draft(plan, version)
    if not locked.elements.exists():
        raise DomainError("plan_empty", _("规划中还没有任何要素，不能批准"))
    earlier = list(
        Plan.objects.select_for_update()
        .filter(case_id=plan.case_id, status=Plan.Status.APPROVED)
        .values_list("pk", flat=True)
    )
    if earlier:
        Plan.objects.filter(pk__in=earlier).update(
            status=Plan.Status.SUPERSEDED, version=F("version") + 1, updated_at=timezone.now()
        )
    now = timezone.now()
    Plan.objects.filter(pk=plan.pk).update(
        status=Plan.Status.APPROVED,
        approved_by=actor,
        approved_at=now,
        version=F("version") + 1,
        updated_at=now,
    )
    plan.refresh_from_db(fields=["status", "approved_by", "approved_at", "version", "updated_at"])
    audit.record(
        actor=actor,
        action="plan.approve",
        patient_id=plan.patient_id,
        target=plan,
        detail={"version": plan.version, "superseded": earlier},
    )
    return plan
