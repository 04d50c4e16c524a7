"""TOTP enrolment in the pages: QR code as inline SVG, the secret shown once, active only after a
confirming code; sign-in asks for the code in a second step; recovery codes work once."""

import re
from collections.abc import Callable
from datetime import timedelta

import pyotp
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell.accounts import second_factor
from clinical_shell.accounts.models import RecoveryCode, SignInState


def _secret(html: str) -> str:
    found = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)
    assert found, html[:2000]
    return found.group(1)


def _codes(html: str) -> list[str]:
    block = html.split('id="recovery-codes"', 1)[1].split("</ul>", 1)[0]
    return re.findall(r"<li>([a-z2-9-]+)</li>", block)


def _previous_step_code(secret: str) -> str:
    # a code other than the one just used (codes are accepted once): the step before
    totp = pyotp.TOTP(secret)
    return totp.at(timezone.now() - timedelta(seconds=totp.interval))


def test_enrol_then_sign_in_in_two_steps_with_a_recovery_code_once(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    user = personas.county_surgeon
    client = signed_in_client(user)
    started = client.post("/accounts/security/", {"action": "begin"}).content.decode()
    assert "<svg" in started and "<script" not in started.split("<main", 1)[-1].split("</main")[0]
    secret = _secret(started)
    # not active yet, and the secret is not shown again
    assert not second_factor.has_totp(user)
    assert "totp-secret" not in client.get("/accounts/security/").content.decode()
    wrong = client.post("/accounts/security/", {"action": "confirm", "code": "000000"})
    assert wrong.status_code == 422 and not second_factor.has_totp(user)
    confirmed = client.post(
        "/accounts/security/", {"action": "confirm", "code": pyotp.TOTP(secret).now()}
    ).content.decode()
    codes = _codes(confirmed)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert second_factor.has_totp(user)
    stored = set(RecoveryCode.objects.filter(user=user).values_list("code_sha256", flat=True))
    assert not stored & set(codes)  # digests only
    assert "recovery-codes" not in client.get("/accounts/security/").content.decode()

    # sign-in: the password page does not ask for a code; the account's second step does
    browser = Client()
    page = browser.get("/accounts/sign-in/").content.decode()
    assert 'name="password"' in page and "code" not in page.split('name="password"')[1]
    step1 = browser.post(
        "/accounts/sign-in/", {"username": user.username, "password": PERSONA_PASSWORD}
    )
    assert step1.status_code == 302 and step1["Location"] == "/accounts/sign-in/code/"
    assert browser.get("/patients/").status_code == 302  # not signed in yet
    bad = browser.post("/accounts/sign-in/code/", {"code": "123456"})
    assert bad.status_code == 200 and "错误" in bad.content.decode()
    good = browser.post("/accounts/sign-in/code/", {"code": codes[3]})
    assert good.status_code == 302 and good["Location"] == "/patients/"
    assert browser.get("/patients/").status_code == 200

    # the recovery code is spent: a second use fails
    again = Client()
    again.post("/accounts/sign-in/", {"username": user.username, "password": PERSONA_PASSWORD})
    reused = again.post("/accounts/sign-in/code/", {"code": codes[3]})
    assert reused.status_code == 200 and again.get("/patients/").status_code == 302
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1
    # a made-up name never reaches the second step
    fake = Client().post(
        "/accounts/sign-in/", {"username": "nobody.x", "password": "Whatever-2026"}
    )
    assert fake.status_code == 200

    # new recovery codes on a current code; the old ones stop working
    state = SignInState.objects.get(user=user)
    state.totp_last_step = 0
    state.save()
    fresh = _codes(
        client.post(
            "/accounts/security/", {"action": "regenerate", "code": _previous_step_code(secret)}
        ).content.decode()
    )
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    assert not second_factor.verify_second_factor(user=user, code=codes[0])
    assert second_factor.verify_second_factor(user=user, code=fresh[0])
