"""No browser memory in a patient's boxes: the clinician's own name, phone and address (or the
last patient's) are never offered where a patient's details are typed, and the administrators'
filters are not filled with the signed-in user's own name."""

import re
from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Personas

from clinical_shell.records.models import Patient


def autocomplete_of(html: str, name: str) -> str | None:
    tag = re.search(rf'<(?:input|textarea)[^>]*name="{re.escape(name)}"[^>]*>', html, re.S)
    assert tag, f"a box named {name}"
    value = re.search(r'autocomplete="([^"]+)"', tag.group(0))
    return value.group(1) if value else None


def test_a_patients_details_are_never_filled_from_the_browser(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    registration = signed_in_client(personas.township_doctor).get("/patients/new/").content.decode()
    for name in ("name", "resident_id", "phone", "address"):
        assert autocomplete_of(registration, name) == "off", name
    surgeon = signed_in_client(personas.county_surgeon)
    edit = surgeon.get(f"/patients/{patient_in_shuangbai.pk}/edit/").content.decode()
    for name in ("name", "resident_id", "phone", "address"):
        assert autocomplete_of(edit, name) == "off", name
    chart = surgeon.get(f"/patients/{patient_in_shuangbai.pk}/problems/").content.decode()
    for name in ("problem-description", "allergy-substance", "allergy-reaction"):
        assert autocomplete_of(chart, name) == "off", name


def test_the_administrators_filters_are_not_filled_with_their_own_name(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    admin = signed_in_client(personas.admin)
    audit = admin.get("/administration/audit/").content.decode()
    for name in ("patient_id", "username", "action"):
        assert autocomplete_of(audit, name) == "off", name
    users = admin.get("/administration/users/").content.decode()
    assert autocomplete_of(users, "q") == "off"


def test_the_registration_button_says_what_it_does_in_english(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.township_doctor)
    assert (
        '<button class="primary" type="submit">建档</button>'
        in client.get("/patients/new/").content.decode()
    )
    client.cookies["django_language"] = "en"
    english = client.get("/patients/new/").content.decode()
    assert '<button class="primary" type="submit">Register</button>' in english
