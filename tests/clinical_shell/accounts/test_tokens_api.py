"""Machine tokens: scoped, expiring, idle-limited, revoked at sign-out and password change,
minted only by roles allowed to (with TOTP when the account has it), shown once, stored keyed."""

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyotp
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell.accounts import tokens
from clinical_shell.accounts.models import ApiToken, SignInState, SignInThrottle
from clinical_shell.audit.models import AuditEvent

MINT = "/api/v1/accounts/tokens"


def _mint(client: Client, **body: Any) -> Any:
    return client.post(MINT, {"name": "HIS 接口", **body}, content_type="application/json")


def _bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_minted_token_is_shown_once_stored_keyed_and_listed_without_secret(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    response = _mint(client, scopes=["read:patients"], expires_in_s=3600)
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    stored = ApiToken.objects.get(pk=response.json()["id"])
    assert stored.scopes == ["read:patients"]
    assert stored.token_sha256 != hashlib.sha256(raw.encode()).hexdigest()  # keyed, not plain
    assert raw not in str(ApiToken.objects.filter(pk=stored.pk).values().first())
    assert stored.expires_at is not None
    assert timedelta(minutes=59) < stored.expires_at - timezone.now() <= timedelta(hours=1)
    listed = client.get(MINT).json()
    assert [t["id"] for t in listed] == [stored.pk] and "token" not in listed[0]
    assert _bearer(raw).get("/api/v1/patients").status_code == 200


def test_a_token_only_does_what_its_scopes_say(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    raw = _mint(client, scopes=["read:patients"]).json()["token"]
    assert _bearer(raw).get("/api/v1/patients").status_code == 200
    wrong_area = _bearer(raw).get("/api/v1/imaging/cases")
    assert wrong_area.status_code == 403 and wrong_area.json()["code"] == "insufficient_scope"
    write = _bearer(raw).post("/api/v1/patients", {}, content_type="application/json")
    assert write.status_code == 403
    # a token never mints tokens
    assert _bearer(raw).post(MINT, {"name": "x"}, content_type="application/json").status_code in (
        401,
        403,
    )
    assert (
        AuditEvent.objects.filter(action="auth.token_scope_refused", outcome="failure").count() == 2
    )


def test_a_role_without_the_mint_right_gets_403_and_is_audited(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    for user in (personas.quality_manager, personas.committee_member):
        response = _mint(signed_in_client(user))
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "token_mint_forbidden"
    # a role that may mint, asking for more than its role allows
    beyond = _mint(signed_in_client(personas.radiologist), scopes=["write:patients"])
    assert beyond.status_code == 403 and beyond.json()["code"] == "token_scope_forbidden"
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.filter(action="auth.token_issue", outcome="failure").count() == 3


def test_expiry_default_is_short_and_the_maximum_is_bounded(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    default = ApiToken.objects.get(pk=_mint(client).json()["id"])
    assert default.expires_at is not None
    assert default.expires_at - timezone.now() <= tokens.default_ttl()
    too_long = _mint(client, expires_in_s=int(tokens.max_ttl().total_seconds()) + 1)
    assert too_long.status_code == 422


def test_tokens_die_when_expired_or_idle(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    expiring = _mint(client).json()
    idle = _mint(client).json()
    assert _bearer(expiring["token"]).get("/api/v1/patients").status_code == 200
    now = timezone.now()
    ApiToken.objects.filter(pk=expiring["id"]).update(expires_at=now - timedelta(seconds=1))
    assert _bearer(expiring["token"]).get("/api/v1/patients").status_code == 401
    ApiToken.objects.filter(pk=idle["id"]).update(
        created_at=now - tokens.idle_timeout() - timedelta(minutes=2),
        last_used_at=now - tokens.idle_timeout() - timedelta(minutes=1),
    )
    assert _bearer(idle["token"]).get("/api/v1/patients").status_code == 401


def test_sign_out_revokes_the_users_tokens(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    raw = _mint(client).json()["token"]
    other = tokens.issue(actor=personas.center_surgeon, name="其他人").raw
    assert _bearer(raw).get("/api/v1/patients").status_code == 200
    client.post("/accounts/sign-out/")
    assert _bearer(raw).get("/api/v1/patients").status_code == 401
    assert ApiToken.objects.get(user=personas.county_surgeon).revoke_reason == "sign_out"
    assert _bearer(other).get("/api/v1/patients").status_code == 200  # others' tokens live on


def test_password_change_revokes_the_users_tokens(personas: Personas) -> None:
    from clinical_shell.accounts import passwords

    user = personas.county_surgeon
    raw = tokens.issue(actor=user, name="HIS").raw
    passwords.change_password(
        user=user, old_password=PERSONA_PASSWORD, new_password="Another-Long-Passphrase-2026"
    )
    assert _bearer(raw).get("/api/v1/patients").status_code == 401
    assert ApiToken.objects.get(user=user).revoked_at is not None


def test_a_token_does_not_bypass_lockout_or_totp(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    user = personas.county_surgeon
    raw = tokens.issue(actor=user, name="HIS").raw
    lock = SignInThrottle.objects.create(key="account:wang.county", locked_at=timezone.now())
    assert _bearer(raw).get("/api/v1/patients").status_code == 401
    locked_mint = _mint(signed_in_client(user))
    assert locked_mint.status_code == 423
    lock.delete()
    assert _bearer(raw).get("/api/v1/patients").status_code == 200
    # with TOTP on the account, minting needs a current code
    secret = pyotp.random_base32()
    SignInState.objects.update_or_create(user=user, defaults={"totp_secret": secret})
    client = signed_in_client(user)
    without = _mint(client)
    assert without.status_code == 401 and without.json()["code"] == "totp_required"
    assert _mint(client, totp_code="000000").status_code == 401
    assert _mint(client, totp_code=pyotp.TOTP(secret).now()).status_code == 201


def test_the_session_idle_timeout_sign_out_revokes_the_tokens_too(
    personas: Personas, signed_in_client: Callable[[User], Client], settings: Any
) -> None:
    import time

    from clinical_shell.accounts.middleware import LAST_SEEN_KEY

    client = signed_in_client(personas.county_surgeon)
    raw = _mint(client).json()["token"]
    session = client.session
    session[LAST_SEEN_KEY] = time.time() - settings.OSTEON_IDLE_TIMEOUT_SECONDS - 120
    session.save()
    assert client.get("/patients/").status_code == 302  # signed out for idleness
    assert _bearer(raw).get("/api/v1/patients").status_code == 401
    assert ApiToken.objects.get(user=personas.county_surgeon).revoke_reason == "sign_out"
