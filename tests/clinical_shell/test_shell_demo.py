"""The demo loader: the whole Chuxiong network, valid records, working sign-ins, idempotent."""

import pytest

from clinical_shell.accounts.services import check_sign_in
from clinical_shell.audit.selectors import verify_chain
from clinical_shell.demo import load_demo
from clinical_shell.network.models import Institution, Membership, Person
from clinical_shell.records.identity import normalize_resident_id, pinyin_initials
from clinical_shell.records.models import CareRelationship, DuplicateCandidate, Encounter, Patient


@pytest.mark.django_db
def test_demo_builds_the_network_with_valid_records_and_is_idempotent() -> None:
    result = load_demo(patients=300, seed=7)
    assert result.created
    assert Institution.objects.filter(level="center").get().name == "楚雄彝族自治州人民医院"
    counties = set(Institution.objects.filter(level="county").values_list("county", flat=True))
    assert len(counties) == 10 and {"双柏县", "永仁县", "禄丰市"} <= counties
    assert Institution.objects.filter(level="township").count() == 20
    assert 180 <= Person.objects.count() <= 220
    assert Membership.objects.values("person").distinct().count() < Membership.objects.count()
    assert Patient.objects.count() == 305
    for patient in Patient.objects.exclude(resident_id="")[:200]:
        assert normalize_resident_id(patient.resident_id).startswith("5323")
        assert patient.name_pinyin_initials == pinyin_initials(patient.name)
    # every encounter's institution has a care relationship with its patient
    for e in Encounter.objects.all()[:200]:
        assert CareRelationship.objects.filter(patient=e.patient_id, institution=e.institution_id)
    assert DuplicateCandidate.objects.filter(status="open").count() == 5
    assert verify_chain().intact

    again = load_demo(patients=300, seed=7)
    assert not again.created and Patient.objects.count() == 305
    roles = {s.role for s in again.sign_ins}
    assert {"surgeon", "township_doctor", "quality_manager", "administrator"} <= roles
    for sign_in in again.sign_ins[:3]:
        assert check_sign_in(username=sign_in.username, password=sign_in.password).is_active
