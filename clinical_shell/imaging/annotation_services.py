"""Saving a surgeon's annotations of a simulation case as a new version; atomic and audited.

Rules: the writer opens the patient (write) and the case (write: the study's uploading
institution, as for any change of the record); a case of another patient is refused (400) before
it is opened. The content is checked against the case's bundle (``sim_core.case.annotations``):
any problem is 422 with its code and field, and nothing is written. The save names the version
it started from; when another version was saved since, 409 ``annotation_version_conflict``.
"""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError
from clinical_shell.imaging.access import access_case
from clinical_shell.imaging.annotation_models import CaseAnnotationVersion
from clinical_shell.imaging.annotation_selectors import case_meta
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.records.access import access_patient
from sim_core.case.annotations import AnnotationError, parse_annotations

MAX_NOTE_CHARS = 300


class AnnotationInputError(DomainError):
    """Input the case cannot take; ``field`` names where (``zones[0].radius_mm``)."""

    status = 422

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(code, message)
        self.field = field


def _messages() -> dict[str, str]:
    # per sim_core.case.annotations code, in the request's language
    return {
        "name_required": _("名称不能为空"),
        "name_too_long": _("名称过长"),
        "invalid_point": _("点须为三个数"),
        "non_finite_point": _("点含无效数值"),
        "point_outside_volume": _("点在影像范围之外"),
        "invalid_list": _("格式错误"),
        "invalid_item": _("格式错误"),
        "too_many": _("条目过多"),
        "invalid_bone": _("骨骼编号无效"),
        "unknown_bone": _("病例中无此骨骼"),
        "duplicate_level": _("节段名称重复"),
        "duplicate_bone": _("骨骼名称重复"),
        "duplicate_landmark": _("标志点名称重复"),
        "duplicate_zone": _("保护区名称重复"),
        "unknown_zone_kind": _("保护区类型须为神经或血管"),
        "invalid_radius": _("半径须大于 0 且不超过 30 mm"),
        "invalid_points": _("保护区须有 1 至 200 个中心点"),
    }


def open_case_to_annotate(actor: User, patient_id: int, case_id: int) -> SimulationCase:
    """The patient (opened to write), then one of their cases opened to write."""
    access_patient(actor, patient_id, write=True, reason="case annotations")
    owner = SimulationCase.objects.filter(pk=case_id).values_list("patient_id", flat=True).first()
    if owner is None:
        raise NotFoundError(
            "case_not_found", _("未找到编号为 %(case_id)s 的仿真病例") % {"case_id": case_id}
        )
    if owner != patient_id:
        raise DomainError("case_of_another_patient", _("该仿真病例不属于此患者"), status=400)
    return access_case(actor, case_id, write=True, reason="case annotations")


def save_case_annotations(
    *,
    actor: User,
    patient_id: int,
    case_id: int,
    base_number: int,
    content: dict[str, Any],
    note: str = "",
) -> CaseAnnotationVersion:
    """Store ``content`` (levels, bones, landmarks, zones) as the case's next version.

    ``base_number`` is the latest version the author saw (0: none). The access checks run
    before the transaction so that a refusal's audit event stays written.
    """
    case = open_case_to_annotate(actor, patient_id, case_id)
    if len(note) > MAX_NOTE_CHARS:
        raise AnnotationInputError("note_too_long", _("备注过长"), "note")
    meta = case_meta(case)
    shape = tuple(int(n) for n in meta["shape"])
    try:
        parsed = parse_annotations(
            content,
            shape=(shape[0], shape[1], shape[2]),
            spacing_mm=float(meta["spacing_mm"]),
            bone_ids={int(b["id"]) for b in meta.get("bones", [])},
        )
    except AnnotationError as exc:
        raise AnnotationInputError(
            exc.code, _messages().get(exc.code, _("格式错误")), exc.field
        ) from None
    with transaction.atomic():
        # the case row is the lock that keeps two saves apart
        SimulationCase.objects.select_for_update().filter(pk=case.pk).first()
        latest = (
            CaseAnnotationVersion.objects.filter(case=case).aggregate(n=Max("number"))["n"] or 0
        )
        if base_number != latest:
            raise DomainError(
                "annotation_version_conflict",
                _("标注已被他人更新（当前版本 %(current)s，您编辑的是版本 %(seen)s），请刷新")
                % {"current": latest, "seen": base_number},
            )
        version = CaseAnnotationVersion.objects.create(
            case=case,
            number=latest + 1,
            content=parsed.as_dict(),
            note=note.strip(),
            created_by=actor,
        )
        audit.record(
            actor=actor,
            action="case_annotation.save",
            patient_id=case.patient_id,
            target=version,
            detail={
                "case": case.pk,
                "number": version.number,
                "levels": len(parsed.levels),
                "bones": len(parsed.bones),
                "landmarks": len(parsed.landmarks),
                "zones": len(parsed.zones),
            },
        )
    return version
