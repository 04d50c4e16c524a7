"""Account locks: a made-up name answers like a locked account; the owner is notified and lifts
the lock with a second factor, or an administrator of their institution lifts it."""

import re
from collections.abc import Callable

import pyotp
import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell.accounts import second_factor, signin
from clinical_shell.accounts.models import SignInThrottle
from clinical_shell.accounts.throttle import account_key
from clinical_shell.audit.models import AuditEvent
from clinical_shell.notifications.models import Notification

SIGN_IN = "/accounts/sign-in/"


@pytest.fixture
def quick_lock(settings: Settings) -> int:
    """Lock after 3 failures, no delays (the delays are tested in test_signin_throttle)."""
    settings.OSTEON_SIGNIN_LOCK_FAILURES = 3
    settings.OSTEON_SIGNIN_MAX_DELAY_S = 0
    return 3


def _banner(html: str) -> str:
    found = re.search(r'id="sign-in-error">([^<]*)<', html)
    return found.group(1) if found else ""


def _fail(username: str, times: int, ip: str) -> None:
    client = Client()
    for _ in range(times):
        client.post(SIGN_IN, {"username": username, "password": "wrong-password-1"}, REMOTE_ADDR=ip)


def test_a_locked_account_and_a_made_up_name_answer_alike(
    personas: Personas, quick_lock: int
) -> None:
    real, made_up = personas.county_surgeon.username, "made.up.name"
    # before any lock: a wrong password and a made-up name get the same page
    first_real = Client().post(SIGN_IN, {"username": real, "password": "x1-wrong-pass"})
    first_fake = Client().post(SIGN_IN, {"username": made_up, "password": "x1-wrong-pass"})
    assert first_real.status_code == first_fake.status_code == 200
    assert _banner(first_real.content.decode()) == _banner(first_fake.content.decode()) != ""
    _fail(real, quick_lock, "10.7.0.1")
    _fail(made_up, quick_lock, "10.7.0.2")
    # the real account is locked: even its right password is refused ...
    locked = Client().post(
        SIGN_IN, {"username": real, "password": PERSONA_PASSWORD}, REMOTE_ADDR="10.7.0.3"
    )
    fake = Client().post(
        SIGN_IN, {"username": made_up, "password": PERSONA_PASSWORD}, REMOTE_ADDR="10.7.0.4"
    )
    # ... and the made-up name gets the very same answer
    assert locked.status_code == fake.status_code == 423
    assert _banner(locked.content.decode()) == _banner(fake.content.decode())
    assert "已锁定" in _banner(locked.content.decode())
    with pytest.raises(signin.AccountLockedError) as real_exc:
        signin.check_sign_in(username=real, password=PERSONA_PASSWORD)
    with pytest.raises(signin.AccountLockedError) as fake_exc:
        signin.check_sign_in(username=made_up, password=PERSONA_PASSWORD)
    assert (real_exc.value.code, real_exc.value.message) == (
        fake_exc.value.code,
        fake_exc.value.message,
    )


def test_the_owner_is_notified_and_lifts_the_lock_with_a_recovery_code(
    personas: Personas, quick_lock: int
) -> None:
    user = personas.center_surgeon
    enrolment = second_factor.begin_totp(user=user)
    codes = second_factor.confirm_totp(user=user, code=pyotp.TOTP(enrolment.secret).now())
    _fail(user.username, quick_lock, "10.8.0.1")
    assert SignInThrottle.objects.get(key=account_key(user.username)).locked_at is not None
    note = Notification.objects.get(recipient=user, kind="account_locked")
    assert "锁定" in note.title_zh and "locked" in note.title_en.lower()
    assert AuditEvent.objects.filter(action="auth.account_lock").count() == 1
    client = Client()
    # a wrong code with the right password does not unlock and says nothing more
    wrong = client.post(
        "/accounts/unlock/",
        {"username": user.username, "password": PERSONA_PASSWORD, "code": "aaaa-bbbb-cccc-dddd"},
    )
    assert wrong.status_code == 200 and "错误" in wrong.content.decode()
    assert SignInThrottle.objects.get(key=account_key(user.username)).locked_at is not None
    ok = client.post(
        "/accounts/unlock/",
        {"username": user.username, "password": PERSONA_PASSWORD, "code": codes[0]},
    )
    assert ok.status_code == 302
    assert not SignInThrottle.objects.filter(key=account_key(user.username)).exists()
    assert AuditEvent.objects.filter(action="auth.account_unlock", outcome="success").exists()


def test_an_administrator_of_the_users_institution_lifts_the_lock(
    personas: Personas, quick_lock: int, signed_in_client: Callable[[User], Client]
) -> None:
    surgeon, outsider = personas.center_surgeon, personas.outsider
    _fail(surgeon.username, quick_lock, "10.9.0.1")
    _fail(outsider.username, quick_lock, "10.9.0.2")
    make = signed_in_client
    # not an administrator: refused
    assert make(personas.county_surgeon).get("/accounts/locks/").status_code == 403
    admin = make(personas.admin)
    page = admin.get("/accounts/locks/").content.decode()
    # the center's administrator sees the center surgeon, not the 永仁-only outsider
    assert surgeon.username in page and outsider.username not in page
    assert admin.post("/accounts/locks/", {"user_id": outsider.pk}).status_code == 404
    response = admin.post("/accounts/locks/", {"user_id": surgeon.pk})
    assert response.status_code == 200
    assert not signin.locked_users(personas.admin)
    assert signin.check_sign_in(username=surgeon.username, password=PERSONA_PASSWORD) == surgeon
    assert Notification.objects.filter(recipient=surgeon, kind="account_unlocked").exists()
    # the outsider is still locked
    with pytest.raises(signin.AccountLockedError):
        signin.check_sign_in(username=outsider.username, password=PERSONA_PASSWORD)
