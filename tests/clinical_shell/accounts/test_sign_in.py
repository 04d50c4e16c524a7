"""Sign-in: argon2 hashes, lockout after 5 failures for 15 min, TOTP, idle timeout, API tokens."""

from datetime import timedelta

import pyotp
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell.accounts import services as accounts
from clinical_shell.accounts.models import ApiToken, SignInState
from clinical_shell.audit.models import AuditEvent


def test_passwords_are_stored_as_argon2(personas: Personas) -> None:
    assert personas.county_surgeon.password.startswith("argon2$argon2id$")


def test_five_failures_lock_the_account_for_15_minutes(personas: Personas) -> None:
    user = personas.county_surgeon
    for _ in range(5):
        with pytest.raises(accounts.SignInError):
            accounts.check_sign_in(username=user.username, password="wrong-password")
    # now even the right password is refused
    with pytest.raises(accounts.AccountLockedError):
        accounts.check_sign_in(username=user.username, password=PERSONA_PASSWORD)
    state = SignInState.objects.get(user=user)
    assert state.locked_until is not None
    remaining = state.locked_until - timezone.now()
    assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)
    failures = AuditEvent.objects.filter(
        action="auth.sign_in", actor_username=user.username, outcome="failure"
    )
    assert failures.count() == 6
    # after the lock expires the right password works again
    SignInState.objects.filter(user=user).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert accounts.check_sign_in(username=user.username, password=PERSONA_PASSWORD) == user


def test_four_failures_then_success_resets_the_count(personas: Personas) -> None:
    user = personas.county_surgeon
    for _ in range(4):
        with pytest.raises(accounts.SignInError):
            accounts.check_sign_in(username=user.username, password="nope-nope-nope")
    accounts.check_sign_in(username=user.username, password=PERSONA_PASSWORD)
    assert SignInState.objects.get(user=user).failed_attempts == 0


def test_unknown_user_gets_the_same_message_as_a_wrong_password(personas: Personas) -> None:
    with pytest.raises(accounts.SignInError) as unknown:
        accounts.check_sign_in(username="nobody", password="whatever-123")
    with pytest.raises(accounts.SignInError) as wrong:
        accounts.check_sign_in(username=personas.admin.username, password="whatever-123")
    assert unknown.value.message == wrong.value.message


def test_totp_is_required_once_enrolled_and_a_code_is_not_reusable(personas: Personas) -> None:
    user = personas.center_surgeon
    uri = accounts.enrol_totp(actor=user)
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    with pytest.raises(accounts.SignInError) as wrong_code:
        accounts.check_sign_in(
            username=user.username, password=PERSONA_PASSWORD, totp_code="000000"
        )
    assert wrong_code.value.code == "bad_totp"
    code = totp.now()
    assert (
        accounts.check_sign_in(username=user.username, password=PERSONA_PASSWORD, totp_code=code)
        == user
    )
    with pytest.raises(accounts.SignInError):
        accounts.check_sign_in(username=user.username, password=PERSONA_PASSWORD, totp_code=code)


def test_sign_in_page_signs_in_and_shows_lockout(personas: Personas) -> None:
    client = Client()
    response = client.post(
        "/accounts/sign-in/", {"username": "wang.county", "password": PERSONA_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/patients/"
    locked = Client()
    for _ in range(6):
        response = locked.post("/accounts/sign-in/", {"username": "li.township", "password": "x"})
    assert "账户已锁定" in response.content.decode()


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
