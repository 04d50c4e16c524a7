"""Patient registration, pinyin/ID search, duplicates and merge, versions, soft delete."""

from datetime import date, timedelta
from typing import Any

import pytest
from django.utils import timezone
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.records import selectors
from clinical_shell.records import services as records
from clinical_shell.records.access import RecordScope
from clinical_shell.records.models import DuplicateCandidate, Encounter, Patient, RecordVersion


def _register(network: Network, personas: Personas, name: str, **kw: object) -> Patient:
    fields: dict[str, Any] = {"sex": "F", "birth_date": date(1980, 5, 6), **kw}
    return records.register_patient(
        actor=personas.township_doctor, institution=network.tuodian, name=name, **fields
    )


def _search(network: Network, text: str) -> list[str]:
    ids = [network.tuodian.pk, network.shuangbai.pk]
    return [p.name for p in selectors.search_patients(institution_ids=ids, text=text)]


def test_search_by_chinese_prefix_pinyin_initials_spelling_and_id(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    _register(shell_network, personas, "张丽")
    _register(shell_network, personas, "李小龙")
    # order among equal prefixes follows the database collation: compare as a set
    assert sorted(_search(shell_network, "张")) == sorted(["张三丰", "张丽"])
    assert _search(shell_network, "张三") == ["张三丰"]
    assert _search(shell_network, "zsf") == ["张三丰"]
    assert _search(shell_network, "ZS") == ["张三丰"]
    assert _search(shell_network, "lxl") == ["李小龙"]
    assert _search(shell_network, "zhangli") == ["张丽"]
    assert _search(shell_network, SHUANGBAI_MAN_ID) == ["张三丰"]
    # a number failing its check character finds nothing rather than a near miss
    assert _search(shell_network, SHUANGBAI_MAN_ID[:-1] + "9") == []


def test_search_never_shows_patients_of_other_institutions(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    assert (
        list(selectors.search_patients(institution_ids=[shell_network.yongren.pk], text="")) == []
    )


def test_the_id_must_agree_with_birth_date_and_sex(
    shell_network: Network, personas: Personas
) -> None:
    with pytest.raises(records.RecordValidationError) as exc:
        _register(
            shell_network,
            personas,
            "王五",
            sex="M",
            birth_date=date(1958, 3, 15),
            resident_id=SHUANGBAI_MAN_ID,
        )
    assert "birth_date" in exc.value.field_errors
    with pytest.raises(records.RecordValidationError) as exc:
        _register(
            shell_network,
            personas,
            "王五",
            sex="F",
            birth_date=date(1958, 3, 14),
            resident_id=SHUANGBAI_MAN_ID,
        )
    assert "sex" in exc.value.field_errors


def test_same_id_or_same_demographics_go_to_the_review_queue(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    by_id = _register(
        shell_network,
        personas,
        "张三峰",
        sex="M",
        birth_date=date(1958, 3, 14),
        resident_id=SHUANGBAI_MAN_ID,
    )
    by_people = _register(shell_network, personas, "张三丰", sex="M", birth_date=date(1958, 3, 14))
    queue = {(c.patient_id, c.other_id, c.reason) for c in selectors.open_duplicates()}
    assert (by_id.pk, patient_in_shuangbai.pk, "same_resident_id") in queue
    assert (by_people.pk, patient_in_shuangbai.pk, "same_demographics") in queue
    unrelated = _register(shell_network, personas, "张三丰", sex="M", birth_date=date(1959, 3, 14))
    assert not DuplicateCandidate.objects.filter(patient=unrelated).exists()


def test_merge_moves_records_and_keeps_the_merged_row_and_history(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    twin = _register(shell_network, personas, "张三丰", sex="M", birth_date=date(1958, 3, 14))
    records.record_encounter(
        actor=personas.township_doctor,
        patient=twin,
        institution=shell_network.tuodian,
        data=records.EncounterIn(
            kind="outpatient",
            started_at=timezone.now() - timedelta(days=1),
            chief_complaint="换药 / dressing change",
        ),
    )
    records.add_allergy(
        actor=personas.township_doctor, patient=twin, substance="青霉素", severity="severe"
    )
    request = records.request_merge(
        actor=personas.county_surgeon,
        candidate=DuplicateCandidate.objects.get(patient=twin),
        survivor=patient_in_shuangbai,
        merged=twin,
        reason="同一人 / same person",
    )
    survivor = records.approve_merge(actor=personas.township_doctor, merge_request=request)
    twin.refresh_from_db()
    assert twin.merged_into_id == survivor.pk  # the merged row stays
    assert survivor.encounters.count() == 2 and survivor.allergies.count() == 1
    assert not selectors.open_duplicates().filter(patient=twin).exists()
    reasons = list(
        RecordVersion.objects.filter(model_label="records.patient", object_id=twin.pk).values_list(
            "reason", flat=True
        )
    )
    assert reasons[0] == "registered" and reasons[-1].startswith(f"merged into {survivor.pk}")
    assert "张三丰" in [p.name for p in selectors.live_patients()]
    assert twin.pk not in selectors.live_patients().values_list("pk", flat=True)


def test_an_encounter_is_soft_deleted_with_a_reason_and_versioned(
    personas: Personas, patient_in_shuangbai: Patient
) -> None:
    encounter = patient_in_shuangbai.encounters.get()
    with pytest.raises(records.RecordValidationError):
        records.delete_encounter(actor=personas.county_surgeon, encounter=encounter, reason=" ")
    records.delete_encounter(
        actor=personas.county_surgeon, encounter=encounter, reason="录错患者 / wrong patient"
    )
    stored = Encounter.objects.get(pk=encounter.pk)
    assert stored.deleted_at is not None and stored.deleted_reason.startswith("录错患者")
    scope = RecordScope(own=frozenset({encounter.institution_id}))
    assert list(selectors.patient_timeline(patient_in_shuangbai.pk, scope)) == []
    versions = RecordVersion.objects.filter(model_label="records.encounter", object_id=encounter.pk)
    assert list(versions.values_list("version", flat=True).order_by("version")) == [1, 2]


def test_updates_need_a_reason_and_write_a_version(
    personas: Personas, patient_in_shuangbai: Patient
) -> None:
    records.update_patient(
        actor=personas.county_surgeon,
        patient=patient_in_shuangbai,
        reason="电话变更 / new phone",
        phone="13800000000",
    )
    patient = Patient.objects.get(pk=patient_in_shuangbai.pk)
    assert patient.version == 2 and patient.phone == "13800000000"
    snapshot = RecordVersion.objects.get(
        model_label="records.patient", object_id=patient.pk, version=2
    ).snapshot
    assert snapshot["phone"] == "13800000000"


@pytest.mark.parametrize(
    ("field", "dx", "px"),
    [
        ("diagnoses.0.icd10_code", records.DiagnosisIn("S7", "x"), None),
        ("diagnoses.0.ao_ota_code", records.DiagnosisIn("S72.0", "x", "99Z9"), None),
        ("procedures.0.icd9cm3_code", None, "7935"),
    ],
)
def test_encounter_codes_are_validated(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    field: str,
    dx: records.DiagnosisIn | None,
    px: str | None,
) -> None:
    now = timezone.now() - timedelta(hours=1)
    data = records.EncounterIn(
        kind="inpatient",
        started_at=now,
        chief_complaint="骨折",
        diagnoses=[dx] if dx else [],
        procedures=[records.ProcedureIn(px, "切开复位内固定", now)] if px else [],
    )
    with pytest.raises(records.RecordValidationError) as exc:
        records.record_encounter(
            actor=personas.county_surgeon,
            patient=patient_in_shuangbai,
            institution=shell_network.shuangbai,
            data=data,
        )
    assert field in exc.value.field_errors


def test_valid_ao_ota_and_icd_codes_are_accepted() -> None:
    from clinical_shell.records.models import AO_OTA_PATTERN, ICD9CM3_PATTERN, ICD10_PATTERN

    for code in ("31A2.1", "31-B2", "42A1", "2R3A2.1", "44B2.3", "33C1"):
        assert AO_OTA_PATTERN.match(code), code
    for code in ("S72.0", "S72.00", "M16.1", "S82"):
        assert ICD10_PATTERN.match(code), code
    for code in ("79.35", "81.51", "78"):
        assert ICD9CM3_PATTERN.match(code), code
