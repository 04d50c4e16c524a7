"""Shared builders for the teleconsultation tests (imported by name, not through conftest)."""

from datetime import date, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from shell_personas import Network, Personas

from clinical_shell.imaging.models import Study
from clinical_shell.records import services as records
from clinical_shell.records.models import Document, Patient
from clinical_shell.referrals import consult_services as consult
from clinical_shell.referrals.consult_models import ExpertSlot


def hip_patient(net: Network, personas: Personas, name: str = "杨秀英") -> Patient:
    return records.register_patient(
        actor=personas.township_doctor,
        institution=net.tuodian,
        name=name,
        sex="F",
        birth_date=date(1944, 6, 2),
    )


def study_of(patient: Patient, net: Network, uploader: User, uid: str) -> Study:
    return Study.objects.create(
        study_uid=uid,
        patient=patient,
        linked_by=Study.LinkedBy.UPLOADER,
        uploaded_at=net.tuodian,
        uploaded_by=uploader,
        description="骨盆正位 X 线",
    )


def note_of(patient: Patient, personas: Personas) -> Document:
    return records.add_document(
        actor=personas.township_doctor,
        patient=patient,
        institution=patient.registered_at,
        title="首诊记录",
        kind="note",
        body="右髋外旋短缩畸形",
    )


def expert_slot(net: Network, personas: Personas, specialty: str = "orthopedics") -> ExpertSlot:
    return consult.publish_slot(
        actor=personas.center_surgeon,
        institution_id=net.center.pk,
        specialty=specialty,
        starts_at=timezone.now() + timedelta(hours=3),
    )


def full_request(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "priority": "routine",
        "specialty": "orthopedics",
        "question": "是否需要关节置换？能否在县级医院手术？",
        "history": "82 岁，跌倒后右髋疼痛 6 小时，不能行走",
        "findings": "右下肢短缩外旋，X 线示右股骨颈骨折 Garden IV",
        "diagnosis_treatment": "右股骨颈骨折；皮牵引、镇痛",
        "consent_by": "张建国",
        "consent_relationship": "子",
        "consent_at": timezone.now() - timedelta(minutes=10),
        "consent_signature": "张建国（手写签名已扫描）",
    }
    data.update(overrides)
    return data
