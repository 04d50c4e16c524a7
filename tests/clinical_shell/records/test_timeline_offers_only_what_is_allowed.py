"""The timeline offers "new encounter" only to someone whose entry would be accepted: a record
writer at an institution in care of the patient, not a reader here who writes elsewhere."""

from typing import Any

from shell_personas import Network, Personas

from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records.models import Patient


def test_a_reader_here_who_writes_elsewhere_is_not_offered_new_encounter(
    shell_network: Network, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    # reads images at 双柏 (in care of the patient), writes records at 永仁 (not in care)
    person = network.create_person(
        actor=None, username="two.hats", password="Two-hats-2026!", full_name="杨两岗"
    )
    network.add_membership(
        actor=None, person=person, institution=shell_network.shuangbai, role=Role.RADIOLOGIST
    )
    network.add_membership(
        actor=None, person=person, institution=shell_network.yongren, role=Role.SURGEON
    )
    client = signed_in_client(person.user)
    timeline = client.get(f"/patients/{patient_in_shuangbai.pk}/")
    assert timeline.status_code == 200
    assert f"/patients/{patient_in_shuangbai.pk}/encounters/new/" not in timeline.content.decode()
    # and the page it would have led to refuses, with the reason
    refused = client.get(f"/patients/{patient_in_shuangbai.pk}/encounters/new/")
    assert refused.status_code == 403
    assert "没有录入或修改病历的权限" in refused.content.decode()


def test_a_writer_in_care_is_offered_new_encounter(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    html = signed_in_client(personas.county_surgeon).get(f"/patients/{patient_in_shuangbai.pk}/")
    assert f"/patients/{patient_in_shuangbai.pk}/encounters/new/" in html.content.decode()
