"""Coded diagnoses and procedures on the encounter detail page: several per encounter, with
laterality, checked against the code tables, audited and versioned."""

from typing import Any

import pytest
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.records import services as records
from clinical_shell.records.models import Diagnosis, Encounter, Patient, Procedure, RecordVersion


@pytest.fixture
def encounter(patient_in_shuangbai: Patient) -> Encounter:
    return Encounter.objects.get(patient=patient_in_shuangbai)


def _url(encounter: Encounter) -> str:
    return f"/patients/{encounter.patient_id}/encounters/{encounter.pk}/"


def _added(encounter: Encounter) -> Any:
    """Diagnoses added on the page (the fixture recorded S72.0 with the encounter)."""
    return Diagnosis.objects.filter(encounter=encounter).exclude(description__contains="/")


def _dx(**fields: str) -> dict[str, str]:
    return {"action": "add_diagnosis", **{f"dx-{k}": v for k, v in fields.items()}}


def test_a_writer_adds_several_coded_diagnoses_with_laterality(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    url = _url(encounter)
    first = client.post(
        url, _dx(code="s72.1", laterality="right", ao_ota_code="31-A2.2", primary="on")
    )
    assert first.status_code == 302 and first["Location"] == url
    client.post(url, _dx(code="S82.6", laterality="left", description="左外踝骨折"))
    client.post(url, _dx(code="M81.0", laterality="na"))
    coded = _added(encounter).order_by("id")
    assert {d.code_system for d in coded} == {"icd10"}
    assert [(d.icd10_code, d.laterality, d.ao_ota_code) for d in coded] == [
        ("S72.1", "right", "31A2.2"),
        ("S82.6", "left", ""),
        ("M81.0", "na", ""),
    ]
    # an empty description takes the table's name; a typed one is kept
    assert [d.description for d in coded] == ["经转子骨折", "左外踝骨折", "绝经后骨质疏松"]
    # the new primary diagnosis demoted the one recorded with the encounter
    assert list(encounter.diagnoses.filter(primary=True)) == [coded[0]]
    html = client.get(url).content.decode()
    assert "经转子骨折" in html and "右侧" in html and "左侧" in html and "31A2.2" in html
    assert AuditEvent.objects.filter(action="diagnosis.create", outcome="success").count() == 3


def test_a_procedure_is_coded_from_icd9cm3_with_its_side(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    response = client.post(
        _url(encounter),
        {
            "action": "add_procedure",
            "px-code": "79.35",
            "px-laterality": "right",
            "px-performed_at": "2026-01-05T09:30",
        },
    )
    assert response.status_code == 302
    procedure = Procedure.objects.get(encounter=encounter)
    assert (procedure.icd9cm3_code, procedure.code_system, procedure.laterality) == (
        "79.35",
        "icd9cm3",
        "right",
    )
    assert procedure.description == "股骨骨折切开复位内固定术"
    assert procedure.surgeon is not None and procedure.surgeon.user_id == personas.county_surgeon.pk


def test_codes_outside_the_tables_are_refused_with_every_error_at_once(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    before = Diagnosis.objects.count()
    response = client.post(_url(encounter), _dx(code="S72.05", ao_ota_code="31Z9"))
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="id_dx-code-errors"' in html and "编码表中没有该 ICD-10 编码" in html
    assert 'id="id_dx-ao_ota_code-errors"' in html and 'id="id_dx-laterality-errors"' in html
    assert Diagnosis.objects.count() == before
    # a heading is not a procedure code; nothing is written by the service either
    with pytest.raises(records.RecordValidationError) as refused:
        records.add_procedure(
            actor=personas.county_surgeon,
            encounter=encounter,
            data=records.CodedProcedureIn(code="79.3", laterality="up", performed_at=None),
        )
    assert set(refused.value.field_errors) == {"code", "laterality", "performed_at"}
    assert not Procedure.objects.exists()


def test_an_outsider_is_refused_and_the_refusal_audited(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.outsider)
    assert client.get(_url(encounter)).status_code == 403
    posted = client.post(_url(encounter), _dx(code="S72.0", laterality="left"))
    assert posted.status_code == 403
    refusals = AuditEvent.objects.filter(
        actor_user_id=personas.outsider.pk, patient_id=encounter.patient_id, outcome="failure"
    )
    assert set(refusals.values_list("action", flat=True)) == {"patient.read", "patient.write"}
    assert not _added(encounter).exists()


def test_a_reader_elsewhere_neither_reads_nor_codes_the_encounter(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    # the township doctor treats the patient (registration) but the encounter is the county's
    # and not shared with the township
    client = signed_in_client(personas.township_doctor)
    page = client.get(_url(encounter))
    assert page.status_code == 403 and "添加诊断" not in page.content.decode()
    refused = client.post(_url(encounter), _dx(code="S72.0", laterality="left"))
    assert refused.status_code == 403
    assert AuditEvent.objects.filter(
        actor_user_id=personas.township_doctor.pk, action="encounter.write", outcome="failure"
    ).exists()


def test_removal_needs_a_reason_and_keeps_the_history(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    url = _url(encounter)
    client.post(url, _dx(code="S72.0", laterality="right"))
    diagnosis = _added(encounter).get()
    without = client.post(url, {"action": "remove_diagnosis", "item": diagnosis.pk, "reason": ""})
    assert without.status_code == 422
    diagnosis.refresh_from_db()
    assert diagnosis.deleted_at is None
    removed = client.post(
        url, {"action": "remove_diagnosis", "item": diagnosis.pk, "reason": "侧别录错"}
    )
    assert removed.status_code == 302
    diagnosis.refresh_from_db()
    assert diagnosis.deleted_at is not None and diagnosis.deleted_reason == "侧别录错"
    versions = RecordVersion.objects.filter(
        model_label="records.diagnosis", object_id=diagnosis.pk
    ).order_by("version")
    assert [(v.version, v.reason, v.snapshot["laterality"]) for v in versions] == [
        (1, "recorded", "right"),
        (2, "侧别录错", "right"),
    ]
    assert versions[1].changed_by_id == personas.county_surgeon.pk
    assert AuditEvent.objects.filter(
        action="diagnosis.delete", reason="侧别录错", patient_id=encounter.patient_id
    ).exists()
    assert "侧别录错" not in client.get(url).content.decode()  # gone from the page, kept in history


def test_the_timeline_links_each_encounter_to_its_page(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    html = (
        signed_in_client(personas.county_surgeon)
        .get(f"/patients/{encounter.patient_id}/")
        .content.decode()
    )
    assert f'href="{_url(encounter)}"' in html


def test_the_page_renders_in_english(
    personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.post("/i18n/setlang/", {"language": "en", "next": "/patients/"})
    html = client.get(_url(encounter)).content.decode()
    assert "Add diagnosis" in html and "Laterality" in html and "添加诊断" not in html


def test_quick_form_codes_are_marked_checked_only_when_the_table_lists_them(
    shell_network: Any, personas: Personas, encounter: Encounter, signed_in_client: Any
) -> None:
    # the fixture's S72.0 is in the table; a well-formed code outside it is kept, unmarked
    assert encounter.diagnoses.get().code_system == "icd10"
    other = records.record_encounter(
        actor=personas.county_surgeon,
        patient=encounter.patient,
        institution=shell_network.shuangbai,
        data=records.EncounterIn(
            kind="outpatient",
            started_at=encounter.started_at,
            chief_complaint="复查",
            diagnoses=[records.DiagnosisIn("S72.05", "股骨颈骨折(院内扩展码)")],
        ),
    )
    assert other.diagnoses.get().code_system == ""
    html = signed_in_client(personas.county_surgeon).get(_url(other)).content.decode()
    assert "未经编码表核对" in html
