"""Every persona against every access rule of `records.access`, and the audit of each decision."""

import pytest
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import NotFoundError, PermissionDeniedError
from clinical_shell.records import services as records
from clinical_shell.records.access import access_encounter, access_patient
from clinical_shell.records.models import DuplicateCandidate, Patient

# persona -> (may read, may write) for a patient registered at 妥甸 and seen at 双柏
EXPECTED = {
    "township_doctor": (True, True),  # registered the patient at the township centre
    "county_surgeon": (True, True),  # treated the patient at the county hospital
    "radiologist": (True, False),  # 双柏 radiologist: reads, writes no encounters
    "center_surgeon": (False, False),  # no referral to the center yet
    "outsider": (False, False),
    "committee_member": (False, False),  # separation of duties: no identified records
    "quality_manager": (False, False),
    "admin": (False, False),
}


@pytest.mark.parametrize("persona", sorted(EXPECTED))
@pytest.mark.parametrize("write", [False, True])
def test_access_patient_follows_care_relationship_and_role(
    personas: Personas, patient_in_shuangbai: Patient, persona: str, write: bool
) -> None:
    user = personas.all()[persona]
    allowed = EXPECTED[persona][1 if write else 0]
    before = AuditEvent.objects.count()
    if allowed:
        assert access_patient(user, patient_in_shuangbai.pk, write=write) == patient_in_shuangbai
    else:
        with pytest.raises(PermissionDeniedError):
            access_patient(user, patient_in_shuangbai.pk, write=write)
    event = AuditEvent.objects.order_by("-id").first()
    assert AuditEvent.objects.count() == before + 1
    assert event is not None
    assert event.actor_user_id == user.pk
    assert event.patient_id == patient_in_shuangbai.pk
    assert event.action == ("patient.write" if write else "patient.read")
    assert event.outcome == ("success" if allowed else "failure")


def test_a_referral_opens_access_for_the_center_surgeon(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    with pytest.raises(PermissionDeniedError):
        access_patient(personas.center_surgeon, patient_in_shuangbai.pk)
    records.open_care_relationship(
        actor=personas.county_surgeon,
        patient=patient_in_shuangbai,
        institution=shell_network.center,
        kind="referral",
    )
    assert access_patient(personas.center_surgeon, patient_in_shuangbai.pk) == patient_in_shuangbai


def test_an_inactive_membership_gives_no_access(
    personas: Personas, patient_in_shuangbai: Patient
) -> None:
    personas.county_surgeon.person.memberships.update(active=False)
    with pytest.raises(PermissionDeniedError):
        access_patient(personas.county_surgeon, patient_in_shuangbai.pk)


def test_a_missing_patient_is_not_found_and_audited(personas: Personas, db: None) -> None:
    with pytest.raises(NotFoundError):
        access_patient(personas.county_surgeon, 999_999)
    event = AuditEvent.objects.order_by("-id").first()
    assert event is not None and event.outcome == "failure" and event.patient_id == 999_999


def test_encounters_are_writable_only_at_their_own_institution(
    personas: Personas, patient_in_shuangbai: Patient
) -> None:
    encounter = patient_in_shuangbai.encounters.get()
    assert access_encounter(personas.county_surgeon, encounter.pk, write=True) == encounter
    # the township doctor may open the patient, but the county hospital's encounter is the
    # county's: not read (unless shared by a referral) and never changed
    with pytest.raises(PermissionDeniedError) as read:
        access_encounter(personas.township_doctor, encounter.pk)
    assert read.value.code == "encounter_not_shared"
    with pytest.raises(PermissionDeniedError):
        access_encounter(personas.township_doctor, encounter.pk, write=True)


def test_a_merged_patient_resolves_to_the_survivor(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    twin = records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="张三丰",
        sex="M",
        birth_date=patient_in_shuangbai.birth_date,
    )
    request = records.request_merge(
        actor=personas.county_surgeon,
        candidate=DuplicateCandidate.objects.get(patient=twin),
        survivor=patient_in_shuangbai,
        merged=twin,
        reason="同一人 / same person",
    )
    records.approve_merge(actor=personas.township_doctor, merge_request=request)
    assert access_patient(personas.township_doctor, twin.pk) == patient_in_shuangbai
