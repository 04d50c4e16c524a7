"""Records follow their provenance: another institution's encounter or study is read only while a
referral shares it, and only its own institution can share it (records.access.RecordScope)."""

from typing import Any

import pytest
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError
from clinical_shell.records.access import record_scope
from clinical_shell.records.models import Encounter, Patient
from clinical_shell.referrals import rules, services
from clinical_shell.referrals.models import Direction, State

pytestmark = pytest.mark.django_db

HANDOVER = {field: "术后康复交接内容" for field in rules.HANDOVER_FIELDS}


def _down_with_encounter(net: Network, personas: Personas, patient: Patient) -> int:
    """The county sends the patient back to the township with its encounter attached."""
    encounter = Encounter.objects.get(patient=patient)
    draft = services.create_draft(
        actor=personas.county_surgeon,
        patient_id=patient.pk,
        direction=Direction.DOWN,
        from_institution=net.shuangbai,
        to_institution=net.tuodian,
        reason="术后稳定，回乡镇康复",
        criteria=["down_rehabilitation"],
        handover=HANDOVER,
    )
    services.share(
        actor=personas.county_surgeon,
        referral_id=draft.pk,
        kind="encounter",
        object_id=encounter.pk,
    )
    assert services.send(actor=personas.county_surgeon, referral_id=draft.pk).state == State.SENT
    return draft.pk


def test_a_shared_encounter_is_read_while_the_referral_is_open_and_not_after(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    township = signed_in_client(personas.township_doctor)
    encounter = Encounter.objects.get(patient=patient_in_shuangbai)
    timeline = f"/patients/{patient_in_shuangbai.pk}/"
    detail = f"/patients/{patient_in_shuangbai.pk}/encounters/{encounter.pk}/"
    assert "S72.0" not in township.get(timeline).content.decode()
    assert township.get(detail).status_code == 403

    referral_id = _down_with_encounter(shell_network, personas, patient_in_shuangbai)
    scope = record_scope(personas.township_doctor, patient_in_shuangbai.pk)
    assert scope.shared_ids("encounter") == [encounter.pk]
    page = township.get(timeline).content.decode()
    assert "S72.0" in page and 'id="unshared-encounters"' not in page
    assert township.get(detail).status_code == 200
    # shared to read, never to change
    refused = township.post(detail, {"action": "add_diagnosis", "dx-code": "S72.0"})
    assert refused.status_code == 403

    for step in (services.accept, services.arrive, services.complete):
        step(actor=personas.township_doctor, referral_id=referral_id)
    assert "S72.0" not in township.get(timeline).content.decode()
    assert township.get(detail).status_code == 403
    assert AuditEvent.objects.filter(
        actor_user_id=personas.township_doctor.pk,
        action="encounter.read",
        outcome="failure",
        detail__why="not_shared",
    ).exists()
    # the county's own reader is not affected by any of it
    county = signed_in_client(personas.county_surgeon)
    assert "S72.0" in county.get(timeline).content.decode()


def test_only_the_institution_that_wrote_a_record_shares_it(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    net = shell_network
    encounter = Encounter.objects.get(patient=patient_in_shuangbai)
    up = services.create_draft(
        actor=personas.township_doctor,
        patient_id=patient_in_shuangbai.pk,
        direction=Direction.UP,
        from_institution=net.tuodian,
        to_institution=net.center,
        urgency="urgent",
        reason="跌倒后右髋疼痛，不能行走",
        criteria=["up_hip_fracture_elderly"],
    )
    # the township registered the patient, but the encounter is the county's to share
    with pytest.raises(DomainError) as refused:
        services.share(
            actor=personas.township_doctor,
            referral_id=up.pk,
            kind="encounter",
            object_id=encounter.pk,
        )
    assert refused.value.code == "share_not_own_record"
    assert not up.shares.exists()
    assert AuditEvent.objects.filter(
        action="referral.share", outcome="failure", detail__why="not_own_record"
    ).exists()
