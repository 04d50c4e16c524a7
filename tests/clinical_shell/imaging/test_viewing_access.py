"""Studies and image files follow the patient's access rule; every file read is audited."""

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from dicom_samples import ct_series
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services
from clinical_shell.imaging.models import Instance, Series
from clinical_shell.records.models import Patient

# persona -> may view the study of the patient registered at 妥甸 and seen at 双柏, uploaded at
# 双柏 (the township, which opens the patient, is tested apart below)
MAY_VIEW = {
    "county_surgeon": True,
    "radiologist": True,
    "center_surgeon": False,
    "outsider": False,
    "committee_member": False,
    "quality_manager": False,
    "admin": False,
}


@pytest.fixture
def ct_of_patient(
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
        files=[(f"{i}.dcm", io.BytesIO(data)) for i, data in enumerate(ct_series(4))],
        patient=patient_in_shuangbai,
    )
    return Series.objects.get()


@pytest.mark.parametrize("persona", sorted(MAY_VIEW))
def test_viewer_page_and_files_follow_the_patient_rule(
    personas: Personas,
    ct_of_patient: Series,
    patient_in_shuangbai: Patient,
    persona: str,
    signed_in_client: Callable[[User], Client],
) -> None:
    user = personas.all()[persona]
    client = signed_in_client(user)
    instance = Instance.objects.filter(series=ct_of_patient).order_by("slice_position_mm").first()
    assert instance is not None
    # ids, not counts: PostgreSQL sequences are not reset between tests
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    page = client.get(f"/imaging/series/{ct_of_patient.pk}/")
    file = client.get(f"/imaging/instances/{instance.pk}/file")
    studies = client.get(f"/imaging/patients/{patient_in_shuangbai.pk}/")
    events = list(AuditEvent.objects.filter(id__gt=before).order_by("id"))
    assert len(events) == 3
    assert all(
        e.actor_user_id == user.pk and e.patient_id == patient_in_shuangbai.pk for e in events
    )
    if MAY_VIEW[persona]:
        assert (page.status_code, file.status_code, studies.status_code) == (200, 200, 200)
        assert file["Content-Type"] == "application/dicom"
        assert file.getvalue() == services.instance_path(instance).read_bytes()
        # the page hands the viewer the four slices in order along the slice normal
        assert page.content.decode().count("/file") == 4
        assert all(e.outcome == "success" for e in events)
    else:
        assert (page.status_code, file.status_code, studies.status_code) == (403, 403, 403)
        assert all(e.outcome == "failure" for e in events)


def test_the_registering_township_sees_the_patient_but_not_the_county_study(
    personas: Personas,
    ct_of_patient: Series,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    # a study belongs to the institution that uploaded it: the township that registered the
    # patient reads it only while a referral or consultation shares it
    client = signed_in_client(personas.township_doctor)
    instance = Instance.objects.filter(series=ct_of_patient).first()
    assert instance is not None
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    page = client.get(f"/imaging/series/{ct_of_patient.pk}/")
    file = client.get(f"/imaging/instances/{instance.pk}/file")
    studies = client.get(f"/imaging/patients/{patient_in_shuangbai.pk}/")
    assert (page.status_code, file.status_code, studies.status_code) == (403, 403, 200)
    assert "其他机构上传，未通过转诊或会诊共享" in page.content.decode()
    assert f"/imaging/series/{ct_of_patient.pk}/" not in studies.content.decode()
    refusals = AuditEvent.objects.filter(
        id__gt=before, actor_user_id=personas.township_doctor.pk, outcome="failure"
    )
    assert list(refusals.values_list("action", flat=True)) == ["study.read", "study.read"]
