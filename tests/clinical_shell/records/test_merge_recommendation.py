"""Merging duplicates: the record to keep is suggested (the more complete, then the older) and
preselected, and the confirmation lists what moves to the record kept."""

import re
from datetime import date
from typing import Any

from shell_personas import Network, Personas

from clinical_shell.records import selectors
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, Patient


def _twin(shell_network: Network, personas: Personas) -> Patient:
    """A second record of 张三丰 at the township centre: a phone number, no ID, no visit."""
    return records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
        phone="13800000000",
    )


def _checked_survivor(html: str) -> str:
    found = re.search(r'<input type="radio" name="survivor" value="(\d+)" checked>', html)
    assert found, "a record to keep is preselected"
    return found.group(1)


def test_the_more_complete_record_is_suggested_and_preselected(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    twin = _twin(shell_network, personas)
    candidate = DuplicateCandidate.objects.get(patient=twin)
    client = signed_in_client(personas.township_doctor)
    html = client.get(f"/patients/duplicates/{candidate.pk}/").content.decode()
    # the first record has the ID number and a visit; the twin only a phone number
    kept = patient_in_shuangbai
    card = re.search(rf'<div class="card" data-patient="{kept.pk}">(.*?)</h2>', html, re.S)
    assert card and 'data-role="recommended"' in card.group(1)
    other = re.search(rf'<div class="card" data-patient="{twin.pk}">(.*?)</h2>', html, re.S)
    assert other and 'data-role="recommended"' not in other.group(1)
    assert _checked_survivor(html) == str(kept.pk)


def test_of_two_as_complete_the_older_is_suggested(
    shell_network: Network, personas: Personas
) -> None:
    first = records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="李四",
        sex="F",
        birth_date=date(1960, 1, 2),
    )
    second = records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="李四",
        sex="F",
        birth_date=date(1960, 1, 2),
    )
    assert selectors.recommended_survivor(first, second) == first
    assert selectors.recommended_survivor(second, first) == first
    # one detail more outweighs age
    second.address = "云南省楚雄彝族自治州双柏县"
    second.save(update_fields=["address"])
    assert selectors.recommended_survivor(first, second) == second


def test_the_confirmation_lists_what_moves(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    twin = _twin(shell_network, personas)
    candidate = DuplicateCandidate.objects.get(patient=twin)
    client = signed_in_client(personas.township_doctor)
    # the reviewer keeps the twin: the first record's visit moves to it
    response = client.post(
        f"/patients/duplicates/{candidate.pk}/",
        {"action": "merge", "survivor": twin.pk, "reason": "本人到院核实"},
    )
    html = response.content.decode()
    moving = re.search(r'<ul data-role="moving">(.*?)</ul>', html, re.S)
    assert moving, "the confirmation lists what moves"
    items = [
        re.sub(r"\s+", " ", i).strip()
        for i in re.findall(r"<li data-table=\"[^\"]+\">(.*?)</li>", moving.group(1))
    ]
    assert items == ["过敏：0", "文书：0", "就诊：1", "问题：0"]
    client.cookies["django_language"] = "en"
    english = client.post(
        f"/patients/duplicates/{candidate.pk}/",
        {"action": "merge", "survivor": twin.pk, "reason": "本人到院核实"},
    ).content.decode()
    assert "Visits: 1" in english and "Allergies: 0" in english
