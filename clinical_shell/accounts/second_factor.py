"""The second factor: TOTP (RFC 6238) enrolment with a confirmation code, and one-time recovery
codes (shown once, stored as digests, each accepted once)."""

import hashlib
import secrets
from dataclasses import dataclass

import pyotp
import segno
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.accounts.models import RecoveryCode, SignInState
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


def state_for(user: User, *, for_update: bool = False) -> SignInState:
    rows = SignInState.objects.select_for_update() if for_update else SignInState.objects
    state, _created = rows.get_or_create(user_id=user.pk)
    return state


def has_totp(user: User) -> bool:
    return SignInState.objects.filter(user_id=user.pk).exclude(totp_secret="").exists()


@dataclass(frozen=True)
class Enrolment:
    secret: str  # shown on this page only
    uri: str
    qr_svg: str  # an <svg> element, rendered here: the secret never leaves for a QR service


@transaction.atomic
def begin_totp(*, user: User) -> Enrolment:
    """Offer a new secret; the account's TOTP (if any) is unchanged until a code confirms it."""
    state = state_for(user, for_update=True)
    state.totp_pending_secret = pyotp.random_base32()
    state.save(update_fields=["totp_pending_secret"])
    uri = pyotp.TOTP(state.totp_pending_secret).provisioning_uri(
        name=user.get_username(), issuer_name="Osteon"
    )
    svg = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP", dark="#111", light="#fff")
    return Enrolment(secret=state.totp_pending_secret, uri=uri, qr_svg=svg)


@transaction.atomic
def confirm_totp(*, user: User, code: str) -> list[str]:
    """Activate the offered secret if `code` comes from it; return new recovery codes (once)."""
    state = state_for(user, for_update=True)
    if not state.totp_pending_secret:
        raise DomainError("no_enrolment", _("请先开始设置动态验证码"))
    step = _matching_step(state.totp_pending_secret, code, after=0)
    if step is None:
        raise DomainError("bad_totp", _("动态验证码错误"), status=422)
    state.totp_secret = state.totp_pending_secret
    state.totp_pending_secret = ""
    state.totp_last_step = step
    state.save(update_fields=["totp_secret", "totp_pending_secret", "totp_last_step"])
    audit.record(actor=user, action="auth.totp_enrol")
    return _new_recovery_codes(user)


@transaction.atomic
def regenerate_recovery_codes(*, user: User, code: str) -> list[str]:
    """New recovery codes (the old ones stop working), on a current TOTP code."""
    state = state_for(user, for_update=True)
    if not state.totp_secret or not verify_totp(state, code):
        raise DomainError("bad_totp", _("动态验证码错误"), status=422)
    state.save(update_fields=["totp_last_step"])
    audit.record(actor=user, action="auth.recovery_codes_regenerate")
    return _new_recovery_codes(user)


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user_id=user.pk, used_at__isnull=True).count()


def _new_recovery_codes(user: User) -> list[str]:
    RecoveryCode.objects.filter(user_id=user.pk).delete()
    codes = [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(4)) for _ in range(4))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user_id=user.pk, code_sha256=_digest(code)) for code in codes
    )
    return codes


def _digest(code: str) -> str:
    normal = "".join(ch for ch in code.casefold() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def _matching_step(secret: str, code: str, *, after: int) -> int | None:
    totp = pyotp.TOTP(secret)
    now_step = int(timezone.now().timestamp()) // totp.interval
    code = code.strip().replace(" ", "")
    # one step either side for clock drift; a step already used is refused (replay)
    for step in (now_step - 1, now_step, now_step + 1):
        if step > after and secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(state: SignInState, code: str) -> bool:
    """Check a TOTP code and remember its step on `state` (the caller saves `totp_last_step`)."""
    step = _matching_step(state.totp_secret, code, after=state.totp_last_step)
    if step is None:
        return False
    state.totp_last_step = step
    return True


@transaction.atomic
def verify_second_factor(*, user: User, code: str) -> bool:
    """A current TOTP code or an unused recovery code (then spent). False for anything else."""
    state = state_for(user, for_update=True)
    if not state.totp_secret or not code.strip():
        return False
    if verify_totp(state, code):
        state.save(update_fields=["totp_last_step"])
        return True
    spent = RecoveryCode.objects.filter(
        user_id=user.pk, code_sha256=_digest(code), used_at__isnull=True
    ).update(used_at=timezone.now())
    if spent:
        audit.record(actor=user, action="auth.recovery_code_use")
    return bool(spent)
