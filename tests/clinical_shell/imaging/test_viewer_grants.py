"""A study shared by an open referral, consultation or meeting opens in the viewer for the other
side, without a care relationship, only while it is open; each read is audited with its grant."""

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from dicom_samples import ct_series
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import PermissionDeniedError
from clinical_shell.imaging import access, services
from clinical_shell.imaging.models import Instance, Series
from clinical_shell.records.models import Patient
from clinical_shell.referrals import consult_services as consult
from clinical_shell.referrals import services as referrals
from clinical_shell.referrals.models import Direction

pytestmark = pytest.mark.django_db


@pytest.fixture
def ct(
    settings: object,
    tmp_path: Path,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
) -> Series:
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    services.import_upload(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        files=[(f"{i}.dcm", io.BytesIO(data)) for i, data in enumerate(ct_series(3))],
        patient=patient_in_shuangbai,
    )
    return Series.objects.get()


def _opens(client: Client, series: Series) -> tuple[int, int]:
    instance = Instance.objects.filter(series=series).first()
    assert instance is not None
    page = client.get(f"/imaging/series/{series.pk}/")
    file = client.get(f"/imaging/instances/{instance.pk}/file")
    return page.status_code, file.status_code


def test_an_open_referral_lets_the_receiving_side_view_what_it_shares(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    ct: Series,
    signed_in_client: Callable[[User], Client],
) -> None:
    center, outsider = (
        signed_in_client(personas.center_surgeon),
        signed_in_client(personas.outsider),
    )
    assert _opens(center, ct) == (403, 403)
    referral = referrals.create_draft(
        actor=personas.county_surgeon,
        patient_id=patient_in_shuangbai.pk,
        direction=Direction.UP,
        from_institution=shell_network.shuangbai,
        to_institution=shell_network.center,
        urgency="urgent",
        reason="股骨颈骨折移位，需关节置换",
        criteria=["up_hip_fracture_elderly"],
    )
    referrals.share(
        actor=personas.county_surgeon, referral_id=referral.pk, kind="study", object_id=ct.study_id
    )
    assert _opens(center, ct) == (403, 403)  # a draft shares nothing yet
    referrals.send(actor=personas.county_surgeon, referral_id=referral.pk)

    # the referral's page opens the shared study in the viewer
    assert (
        f'href="/imaging/series/{ct.pk}/"'
        in center.get(f"/referrals/{referral.pk}/").content.decode()
    )
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    assert _opens(center, ct) == (200, 200)
    reads = AuditEvent.objects.filter(id__gt=before, actor_user_id=personas.center_surgeon.pk)
    assert reads.count() == 2
    assert all(e.detail == {"via": f"referral:{referral.pk}"} for e in reads)
    assert all(e.patient_id == patient_in_shuangbai.pk for e in reads)
    assert _opens(outsider, ct) == (403, 403)  # nobody else
    with pytest.raises(PermissionDeniedError):  # reading, never changing
        access.access_study(personas.center_surgeon, ct.study_id, write=True)

    referrals.decline(actor=personas.center_surgeon, referral_id=referral.pk, reason="床位已满")
    assert _opens(center, ct) == (403, 403)


def test_the_expert_views_while_the_consultation_is_open(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    ct: Series,
    signed_in_client: Callable[[User], Client],
) -> None:
    consult.publish_slot(
        actor=personas.center_surgeon,
        institution_id=shell_network.center.pk,
        specialty="orthopedics",
        starts_at=timezone.now() + timedelta(hours=3),
    )
    request = consult.request_consultation(
        actor=personas.county_surgeon,
        patient_id=patient_in_shuangbai.pk,
        requesting_institution_id=shell_network.shuangbai.pk,
        data={
            "priority": "routine",
            "specialty": "orthopedics",
            "question": "能否在县级医院行半髋置换？",
            "history": "66 岁，跌倒后右髋痛",
            "findings": "右股骨颈骨折 Garden III",
            "diagnosis_treatment": "右股骨颈骨折；皮牵引",
            "consent_by": "张三丰",
            "consent_relationship": "本人",
            "consent_at": timezone.now() - timedelta(minutes=5),
            "consent_signature": "张三丰（手写签名已扫描）",
        },
        study_ids=[ct.study_id],
    )
    expert = signed_in_client(personas.center_surgeon)
    page = expert.get(f"/referrals/consult/{request.pk}/").content.decode()
    assert f'href="/imaging/series/{ct.pk}/"' in page
    assert _opens(expert, ct) == (200, 200)
    assert _opens(signed_in_client(personas.outsider), ct) == (403, 403)
    consult.close(actor=personas.county_surgeon, consultation_id=request.pk)
    assert _opens(expert, ct) == (403, 403)


def test_meeting_participants_view_until_the_meeting_ends(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    ct: Series,
    signed_in_client: Callable[[User], Client],
) -> None:
    meeting = consult.create_meeting(
        actor=personas.county_surgeon,
        institution_id=shell_network.shuangbai.pk,
        title="髋部骨折多学科讨论",
        scheduled_at=timezone.now(),
        specialties=["orthopedics", "radiology"],
        participant_ids=[personas.outsider.pk],
    )
    case = consult.add_case(
        actor=personas.county_surgeon,
        meeting_id=meeting.pk,
        patient_id=patient_in_shuangbai.pk,
        summary="右股骨颈骨折，合并心衰",
        study_ids=[ct.study_id],
    )
    guest = signed_in_client(personas.outsider)
    assert _opens(guest, ct) == (200, 200)
    assert _opens(signed_in_client(personas.center_surgeon), ct) == (403, 403)  # not invited
    consult.decide_case(actor=personas.county_surgeon, case_id=case.pk, decision="限期半髋置换")
    consult.end_meeting(actor=personas.county_surgeon, meeting_id=meeting.pk)
    assert _opens(guest, ct) == (403, 403)
