"""Opening a form is a read: the GET of the new-encounter and duplicate-review pages is audited
as `patient.read` (nothing was written), is still refused to those who may not write, and the
POST that writes is audited as `patient.write`."""

from datetime import date
from typing import Any

from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, Patient


def _actions(user: Any, patient: Patient, *, after: int) -> list[tuple[str, str]]:
    events = AuditEvent.objects.filter(pk__gt=after, actor_user_id=user.pk, patient_id=patient.pk)
    return [(e.action, e.outcome) for e in events.order_by("id")]


def _last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_the_encounter_form_is_audited_as_a_read_and_its_save_as_a_write(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    surgeon = personas.county_surgeon
    client = signed_in_client(surgeon)
    url = f"/patients/{patient_in_shuangbai.pk}/encounters/new/"
    start = _last_id()
    assert client.get(url).status_code == 200
    assert _actions(surgeon, patient_in_shuangbai, after=start) == [("patient.read", "success")]
    form = {
        "institution": shell_network.shuangbai.pk,
        "kind": "outpatient",
        "started_at": "2026-01-05T09:30",
        "chief_complaint": "复查",
    }
    assert client.post(url, form).status_code == 302
    assert ("patient.write", "success") in _actions(surgeon, patient_in_shuangbai, after=start)


def test_a_reader_who_may_not_write_is_still_refused_the_form_and_that_is_audited(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    radiologist = personas.radiologist
    url = f"/patients/{patient_in_shuangbai.pk}/encounters/new/"
    start = _last_id()
    refused = signed_in_client(radiologist).get(url)
    # the reason says what is missing: she reads this record, she may not write in it
    assert refused.status_code == 403
    assert "没有录入或修改病历的权限" in refused.content.decode()
    assert _actions(radiologist, patient_in_shuangbai, after=start) == [("patient.read", "failure")]


def test_the_duplicate_review_page_is_audited_as_reads_of_both_patients(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    twin = records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
    )
    candidate = DuplicateCandidate.objects.get(patient=twin)
    doctor = personas.township_doctor
    # the newest event's id, not the count: on PostgreSQL ids go on across flushed tests
    before = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    response = signed_in_client(doctor).get(f"/patients/duplicates/{candidate.pk}/")
    assert response.status_code == 200
    opened = AuditEvent.objects.filter(pk__gt=before, action__startswith="patient.")
    assert sorted((e.action, e.patient_id) for e in opened) == sorted(
        [("patient.read", candidate.patient_id), ("patient.read", candidate.other_id)]
    )
