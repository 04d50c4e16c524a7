"""Sign-in: argon2 hashes, same answer for unknown names, idle timeout, API tokens.

Throttling, locks, TOTP and passwords: test_signin_*.py, test_totp_*.py, test_password_*.py.
"""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell.accounts import services as accounts
from clinical_shell.accounts.models import ApiToken


def test_passwords_are_stored_as_argon2(personas: Personas) -> None:
    assert personas.county_surgeon.password.startswith("argon2$argon2id$")


def test_unknown_user_gets_the_same_message_as_a_wrong_password(personas: Personas) -> None:
    with pytest.raises(accounts.SignInError) as unknown:
        accounts.check_sign_in(username="nobody", password="whatever-123")
    with pytest.raises(accounts.SignInError) as wrong:
        accounts.check_sign_in(username=personas.admin.username, password="whatever-123")
    assert unknown.value.message == wrong.value.message


def test_sign_in_page_signs_in(personas: Personas) -> None:
    client = Client()
    response = client.post(
        "/accounts/sign-in/", {"username": "wang.county", "password": PERSONA_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/patients/"


def test_the_sign_in_page_names_the_institution_and_has_an_icon(personas: Personas) -> None:
    page = Client().get("/accounts/sign-in/").content.decode()
    # the personas' network has its prefecture center: its name greets the user
    assert '<p id="sign-in-institution">' in page and "州" in page
    assert 'rel="icon"' in page and 'autocomplete="current-password"' in page


def test_an_idle_session_is_signed_out_after_30_minutes(
    personas: Personas, signed_in_client: object
) -> None:
    client = Client()
    client.post("/accounts/sign-in/", {"username": "wang.county", "password": PERSONA_PASSWORD})
    assert client.get("/patients/").status_code == 200
    session = client.session
    session["osteon_last_seen"] = timezone.now().timestamp() - 31 * 60
    session.save()
    response = client.get("/patients/")
    assert response.status_code == 302 and "/accounts/sign-in/" in response["Location"]


def test_api_token_is_shown_once_stored_hashed_and_revocable(personas: Personas) -> None:
    issued = accounts.issue_api_token(actor=personas.county_surgeon, name="双柏 station 1")
    stored = ApiToken.objects.get(pk=issued.token.pk)
    assert issued.raw not in (stored.token_sha256, stored.prefix)
    assert stored.token_sha256 == accounts.hash_token(issued.raw)
    assert accounts.user_for_token(issued.raw) == personas.county_surgeon
    accounts.revoke_api_token(actor=personas.county_surgeon, token_id=stored.pk)
    assert accounts.user_for_token(issued.raw) is None


def test_tokens_of_inactive_users_are_refused(personas: Personas) -> None:
    issued = accounts.issue_api_token(actor=personas.outsider, name="system")
    User.objects.filter(pk=personas.outsider.pk).update(is_active=False)
    assert accounts.user_for_token(issued.raw) is None
