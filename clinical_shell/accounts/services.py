"""Sign-in rules (lockout after repeated failures, TOTP) and API token issue/revoke."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from clinical_shell.accounts.models import ApiToken, SignInState
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError

TOKEN_PREFIX = "ost_"


class AccountLockedError(DomainError):
    status = 423


class SignInError(DomainError):
    status = 401


def _state_for(user: User) -> SignInState:
    state, _created = SignInState.objects.select_for_update().get_or_create(user_id=user.pk)
    return state


def check_sign_in(*, username: str, password: str, totp_code: str = "") -> User:
    """Verify credentials under the lockout rule; audit success and failure alike.

    Raises AccountLockedError (423) while locked, SignInError (401) on a wrong password or code.
    The same message for unknown users and wrong passwords: no account enumeration.
    """
    outcome = _attempt_sign_in(username=username, password=password, totp_code=totp_code)
    if isinstance(outcome, DomainError):
        # raised after the commit: the failure count and the audit event must survive the refusal
        raise outcome
    return outcome


@transaction.atomic
def _attempt_sign_in(*, username: str, password: str, totp_code: str) -> User | DomainError:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None or not user.is_active:
        # still spend a hash so timing does not reveal whether the account exists
        user_model().set_password(password)
        audit.record(
            actor=None,
            action="auth.sign_in",
            success=False,
            username=username,
            detail={"why": "unknown_user"},
        )
        return SignInError("bad_credentials", _("用户名或密码错误"))
    state = _state_for(user)
    now = timezone.now()
    if state.locked_until is not None and state.locked_until > now:
        audit.record(
            actor=None,
            action="auth.sign_in",
            success=False,
            username=username,
            detail={"why": "locked"},
        )
        minutes = int((state.locked_until - now).total_seconds() // 60) + 1
        return AccountLockedError(
            "account_locked",
            ngettext(
                "账户已锁定，请 %(minutes)d 分钟后再试",
                "账户已锁定，请 %(minutes)d 分钟后再试",
                minutes,
            )
            % {"minutes": minutes},
        )
    ok = user.check_password(password)
    why = "bad_password"
    if ok and state.totp_secret:
        ok, why = _verify_totp(state, totp_code), "bad_totp"
    if not ok:
        state.failed_attempts += 1
        fields = ["failed_attempts"]
        if state.failed_attempts >= settings.OSTEON_LOCKOUT_FAILURES:
            state.locked_until = now + timedelta(seconds=settings.OSTEON_LOCKOUT_SECONDS)
            state.failed_attempts = 0
            fields.append("locked_until")
        state.save(update_fields=fields)
        audit.record(
            actor=None,
            action="auth.sign_in",
            success=False,
            username=username,
            detail={"why": why, "locked": "locked_until" in fields},
        )
        if why == "bad_totp":
            return SignInError("bad_totp", _("动态验证码错误"))
        return SignInError("bad_credentials", _("用户名或密码错误"))
    state.failed_attempts = 0
    state.locked_until = None
    state.save(update_fields=["failed_attempts", "locked_until", "totp_last_step"])
    audit.record(actor=user, action="auth.sign_in")
    return user


def _verify_totp(state: SignInState, code: str) -> bool:
    totp = pyotp.TOTP(state.totp_secret)
    now_step = int(timezone.now().timestamp()) // totp.interval
    # one step either side for clock drift; a step already used is refused (replay)
    for step in (now_step - 1, now_step, now_step + 1):
        if step > state.totp_last_step and secrets.compare_digest(totp.generate_otp(step), code):
            state.totp_last_step = step
            return True
    return False


@transaction.atomic
def enrol_totp(*, actor: User) -> str:
    """Give the user a new TOTP secret and return its otpauth:// URI (shown once as a QR/text)."""
    state = _state_for(actor)
    state.totp_secret = pyotp.random_base32()
    state.totp_last_step = 0
    state.save(update_fields=["totp_secret", "totp_last_step"])
    audit.record(actor=actor, action="auth.totp_enrol")
    return pyotp.TOTP(state.totp_secret).provisioning_uri(
        name=actor.get_username(), issuer_name="Osteon"
    )


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("ascii", errors="replace")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # the only time the secret exists outside the caller's copy


@transaction.atomic
def issue_api_token(*, actor: User, name: str) -> IssuedToken:
    if not name.strip():
        raise DomainError("token_name_required", _("令牌名称不能为空"))
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user_id=actor.pk, name=name.strip()[:100], prefix=raw[:10], token_sha256=hash_token(raw)
    )
    audit.record(actor=actor, action="auth.token_issue", target=token)
    return IssuedToken(token=token, raw=raw)


@transaction.atomic
def revoke_api_token(*, actor: User, token_id: int) -> ApiToken:
    token = ApiToken.objects.select_for_update().filter(id=token_id, user_id=actor.pk).first()
    if token is None:
        raise DomainError("token_not_found", _("未找到该令牌"), status=404)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(actor=actor, action="auth.token_revoke", target=token)
    return token


def user_for_token(raw: str) -> User | None:
    """The active user a bearer token belongs to, or None (unknown, revoked or inactive)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_sha256=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # record use at most once a minute: a busy station must not write a row per request
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
