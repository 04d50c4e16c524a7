"""API token issue/revoke; the sign-in rules are in `accounts.signin` (re-exported here)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.accounts.models import ApiToken
from clinical_shell.accounts.signin import AccountLockedError, SignInError, check_sign_in
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError

TOKEN_PREFIX = "ost_"


# the sign-in rules live in accounts.signin; these names stay importable from here
__all__ = ["AccountLockedError", "SignInError", "check_sign_in"]


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
