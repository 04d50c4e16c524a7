"""Password policy on every path that sets one, the forced change after an administrator set
it, and the end of other sessions when a password changes."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell import demo
from clinical_shell.accounts import passwords, tokens
from clinical_shell.audit.models import AuditEvent
from clinical_shell.network import services as network

WEAK = ("short1A", "password123", "12345678901234")


def _sign_in(username: str, password: str) -> Client:
    client = Client()
    response = client.post("/accounts/sign-in/", {"username": username, "password": password})
    assert response.status_code == 302, response.content.decode()[:500]
    return client


@pytest.mark.parametrize("weak", WEAK)
def test_validators_refuse_a_weak_password_on_every_path(
    personas: Personas, weak: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an account created by the network service (loaders, administration)
    with pytest.raises(passwords.WeakPasswordError):
        network.create_person(
            actor=personas.admin, username="new.person", password=weak, full_name="新人"
        )
    assert not User.objects.filter(username="new.person").exists()
    # the owner's change, the service and the page
    with pytest.raises(passwords.WeakPasswordError):
        passwords.change_password(
            user=personas.county_surgeon, old_password=PERSONA_PASSWORD, new_password=weak
        )
    client = _sign_in("wang.county", PERSONA_PASSWORD)
    page = client.post(
        "/accounts/password/",
        {"old_password": PERSONA_PASSWORD, "new_password": weak, "new_password_again": weak},
    )
    assert page.status_code == 200 and 'id="password-error"' in page.content.decode()
    # an administrator's reset
    with pytest.raises(passwords.WeakPasswordError):
        passwords.reset_by_administrator(
            actor=personas.admin, user=personas.county_surgeon, password=weak
        )
    # the demo loader's passwords
    monkeypatch.setattr(demo, "ROLE_PASSWORDS", {**demo.ROLE_PASSWORDS, "surgeon": weak})
    with pytest.raises(passwords.WeakPasswordError):
        demo.load_demo(patients=1, ct_cases=0)
    # nothing changed: the old password still works
    assert User.objects.get(username="wang.county").check_password(PERSONA_PASSWORD)


def test_an_account_an_administrator_created_must_change_its_password_first(
    personas: Personas,
) -> None:
    network.create_person(
        actor=personas.admin,
        username="new.nurse",
        password="Temp-chosen-by-admin-1",
        full_name="新",
    )
    client = Client()
    response = client.post(
        "/accounts/sign-in/", {"username": "new.nurse", "password": "Temp-chosen-by-admin-1"}
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password/"
    # every other page sends them back to the change, the API refuses
    assert client.get("/patients/")["Location"] == "/accounts/password/"
    api = client.get("/api/v1/notifications")
    assert api.status_code == 403 and api.json()["code"] == "password_change_required"
    assert 'id="forced-change"' in client.get("/accounts/password/").content.decode()
    new = "My-own-choice-2026"
    done = client.post(
        "/accounts/password/",
        {
            "old_password": "Temp-chosen-by-admin-1",
            "new_password": new,
            "new_password_again": new,
        },
    )
    assert done.status_code == 200 and 'id="password-changed"' in done.content.decode()
    assert client.get("/patients/").status_code == 200
    # a loader's account (no administrator involved) is not forced
    assert _sign_in("wang.county", PERSONA_PASSWORD).get("/patients/").status_code == 200


def test_an_administrators_reset_forces_a_change_too(personas: Personas) -> None:
    passwords.reset_by_administrator(
        actor=personas.admin, user=personas.county_surgeon, password="Reset-by-admin-2026"
    )
    client = Client()
    response = client.post(
        "/accounts/sign-in/", {"username": "wang.county", "password": "Reset-by-admin-2026"}
    )
    assert response["Location"] == "/accounts/password/"
    assert AuditEvent.objects.filter(action="auth.password_reset").count() == 1


def test_changing_the_password_ends_the_other_sessions(personas: Personas) -> None:
    laptop = _sign_in("wang.county", PERSONA_PASSWORD)
    ward_pc = _sign_in("wang.county", PERSONA_PASSWORD)
    assert ward_pc.get("/patients/").status_code == 200
    machine = tokens.issue(actor=personas.county_surgeon, name="ward script")
    new = "Changed-on-laptop-2026"
    laptop.post(
        "/accounts/password/",
        {"old_password": PERSONA_PASSWORD, "new_password": new, "new_password_again": new},
    )
    # this session goes on, the other one is signed out
    assert laptop.get("/patients/").status_code == 200
    gone = ward_pc.get("/patients/")
    assert gone.status_code == 302 and "/accounts/sign-in/" in gone["Location"]
    # machine tokens die with the old password (accounts.tokens.revoke_all_for)
    machine.token.refresh_from_db()
    assert machine.token.revoked_at is not None
    # a wrong current password changes nothing
    with pytest.raises(Exception, match="当前密码错误"):
        passwords.change_password(
            user=User.objects.get(username="wang.county"),
            old_password="not-the-password",
            new_password="Another-new-one-2026",
        )
    assert User.objects.get(username="wang.county").check_password(new)
