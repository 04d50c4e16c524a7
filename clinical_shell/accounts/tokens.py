"""Machine API tokens: scoped, short-lived, revocable, minted only by roles allowed to.

A token is shown once and stored as a keyed hash (HMAC-SHA-256 under a key derived from
SECRET_KEY; the previous keys in SECRET_KEY_FALLBACKS still match while a rotation settles). It
carries scopes (`read:<area>`, `write:<area>`, one area per API router), an expiry (default
OSTEON_TOKEN_DEFAULT_TTL_S, at most OSTEON_TOKEN_MAX_TTL_S), and dies when unused for the idle
timeout, when its owner signs out (also by the session idle timeout) or changes password, and
while the owner's account is locked. Minting needs a signed-in person whose role may mint (the
policy below) and, for an account with TOTP, a fresh TOTP code: a token is never an easier way
in than the sign-in page.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Concat, Lower
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from clinical_shell.accounts.models import ApiToken, SignInThrottle
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.network.models import Role
from clinical_shell.network.selectors import roles_of

TOKEN_PREFIX = "ost_"
_HASH_SALT = "clinical_shell.accounts.tokens"

# one area per router of /api/v1 (clinical_shell/api.py), except accounts: a token never mints
# or revokes tokens (that takes a signed-in person)
AREAS = (
    "network",
    "patients",
    "imaging",
    "stations",
    "training",
    "credentialing",
    "scheduling",
    "notifications",
)
ALL_SCOPES = frozenset(f"{verb}:{area}" for area in AREAS for verb in ("read", "write"))


def _scopes(*areas: str, read_only: tuple[str, ...] = ()) -> frozenset[str]:
    return frozenset(
        [f"{v}:{a}" for a in areas for v in ("read", "write")] + [f"read:{a}" for a in read_only]
    )


# who may mint, and with which scopes at most: the people who connect machines (a theatre or
# imaging system, a simulator station) for their department; other roles use the pages only
MINT_POLICY: dict[str, frozenset[str]] = {
    Role.ADMINISTRATOR: ALL_SCOPES,
    Role.SURGEON: _scopes(
        "patients", "imaging", "stations", "scheduling", read_only=("network", "training")
    ),
    # a township clinic's own system registers its patients and sends its X-rays
    Role.TOWNSHIP_DOCTOR: _scopes("patients", "imaging", read_only=("network",)),
    Role.RADIOLOGIST: _scopes("imaging", read_only=("patients", "network")),
    # residents, nurses, quality managers and committee members: none
}

DEFAULT_TTL_S = 8 * 3600  # a shift
MAX_TTL_S = 30 * 24 * 3600


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def default_ttl() -> timedelta:
    return timedelta(seconds=_setting("OSTEON_TOKEN_DEFAULT_TTL_S", DEFAULT_TTL_S))


def max_ttl() -> timedelta:
    return timedelta(seconds=_setting("OSTEON_TOKEN_MAX_TTL_S", MAX_TTL_S))


def idle_timeout() -> timedelta:
    # the same idle rule as a signed-in session (等保 level 3)
    return timedelta(
        seconds=_setting("OSTEON_TOKEN_IDLE_S", int(settings.OSTEON_IDLE_TIMEOUT_SECONDS))
    )


def hash_token(raw: str, *, secret: str | None = None) -> str:
    """Keyed digest of a raw token: the table alone does not let anyone test guesses."""
    return salted_hmac(
        _HASH_SALT, raw.encode("ascii", errors="replace"), secret=secret, algorithm="sha256"
    ).hexdigest()


def mintable_scopes(user: User) -> frozenset[str]:
    allowed: frozenset[str] = frozenset()
    for role in roles_of(int(user.pk)):
        allowed |= MINT_POLICY.get(role, frozenset())
    return allowed


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # the only time the secret exists outside the caller's copy


def _account_locked(user: User) -> bool:
    # the same key as the sign-in throttle's (accounts.throttle.account_key)
    key = "account:" + user.get_username().strip().casefold()[:150]
    return SignInThrottle.objects.filter(key=key, locked_at__isnull=False).exists()


def issue(
    *,
    actor: User,
    name: str,
    scopes: list[str] | None = None,
    ttl: timedelta | None = None,
    totp_code: str = "",
) -> IssuedToken:
    """Mint a token for `actor` (a person signed in on a page, never a token).

    `scopes` None means every scope the actor's roles may mint. Raises DomainError: 403 when
    the role may not mint or asks for more than it may, 401 when a TOTP code is needed and
    wrong, 423 while the account is locked, 422 for a bad name, scope or lifetime.
    """
    outcome = _issue_or_refusal(actor=actor, name=name, scopes=scopes, ttl=ttl, totp_code=totp_code)
    if isinstance(outcome, DomainError):
        # raised after the commit: the refusal's audit event must survive the refusal
        raise outcome
    return outcome


@transaction.atomic
def _issue_or_refusal(
    *, actor: User, name: str, scopes: list[str] | None, ttl: timedelta | None, totp_code: str
) -> IssuedToken | DomainError:
    from clinical_shell.accounts import second_factor

    if not name.strip():
        return DomainError("token_name_required", _("令牌名称不能为空"), status=422)
    allowed = mintable_scopes(actor)
    if not allowed:
        _refuse(actor, "role_may_not_mint")
        return DomainError("token_mint_forbidden", _("您的角色不能签发令牌"), status=403)
    wanted = set(allowed if scopes is None else scopes)
    unknown = wanted - ALL_SCOPES
    if unknown or not wanted:
        return DomainError(
            "token_scope_unknown", _("未知的令牌权限：%s") % ", ".join(sorted(unknown)), status=422
        )
    if not wanted <= allowed:
        _refuse(actor, "scope_not_allowed", scopes=sorted(wanted - allowed))
        return DomainError(
            "token_scope_forbidden",
            _("您的角色不能签发这些权限：%s") % ", ".join(sorted(wanted - allowed)),
            status=403,
        )
    lifetime = default_ttl() if ttl is None else ttl
    if lifetime <= timedelta(0) or lifetime > max_ttl():
        return DomainError(
            "token_ttl_invalid",
            _("有效期须在 1 秒到 %(days)d 天之间") % {"days": max_ttl().days},
            status=422,
        )
    if _account_locked(actor):
        _refuse(actor, "account_locked")
        return DomainError("account_locked", _("账户已锁定"), status=423)
    if second_factor.has_totp(actor) and not (
        totp_code and second_factor.verify_second_factor(user=actor, code=totp_code)
    ):
        _refuse(actor, "totp_required")
        return DomainError("totp_required", _("签发令牌需要有效的动态验证码"), status=401)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = timezone.now() + lifetime
    token = ApiToken.objects.create(
        user_id=actor.pk,
        name=name.strip()[:100],
        prefix=raw[:10],
        token_sha256=hash_token(raw),
        scopes=sorted(wanted),
        expires_at=expires_at,
    )
    audit.record(
        actor=actor,
        action="auth.token_issue",
        target=token,
        detail={"scopes": sorted(wanted), "expires_at": expires_at.isoformat()},
    )
    return IssuedToken(token=token, raw=raw)


def _refuse(actor: User, why: str, **detail: Any) -> None:
    audit.record(
        actor=actor, action="auth.token_issue", success=False, detail={"why": why, **detail}
    )


def revoke(*, actor: User, token_id: int) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(id=token_id, user_id=actor.pk).first()
        if token is not None and token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.revoke_reason = "owner"
            token.save(update_fields=["revoked_at", "revoke_reason"])
            audit.record(actor=actor, action="auth.token_revoke", target=token)
    if token is None:
        # someone else's token or none at all: refused, and the attempt is on record
        audit.record(
            actor=actor,
            action="auth.token_revoke",
            success=False,
            detail={"why": "not_found", "token_id": token_id},
        )
        raise DomainError("token_not_found", _("未找到该令牌"), status=404)
    return token


@transaction.atomic
def revoke_all_for(user: User, reason: str) -> int:
    """Revoke every live token of `user` (sign-out, password change, ...); returns how many."""
    now = timezone.now()
    live = ApiToken.objects.filter(user_id=user.pk, revoked_at__isnull=True)
    ids = list(live.values_list("id", flat=True))
    if ids:
        ApiToken.objects.filter(id__in=ids).update(revoked_at=now, revoke_reason=reason[:40])
        audit.record(
            actor=user,
            action="auth.token_revoke_all",
            detail={"reason": reason, "tokens": ids},
        )
    return len(ids)


@receiver(user_logged_out, dispatch_uid="accounts.tokens.revoke_on_sign_out")
def _revoke_on_sign_out(
    sender: Any, request: HttpRequest, user: User | None, **kwargs: Any
) -> None:
    # also called by the session idle timeout (accounts.middleware logs the session out)
    if user is not None and user.is_authenticated:
        revoke_all_for(user, "sign_out")


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at")


def is_live(token: ApiToken, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    last = token.last_used_at or token.created_at
    return (
        token.revoked_at is None
        and token.expires_at is not None
        and token.expires_at > now
        and now - last <= idle_timeout()
    )


def required_scope(method: str, path: str) -> str | None:
    """`read:patients` for GET /api/v1/patients/...; None outside a scoped area."""
    rest = path.split("/api/v1/", 1)[-1] if "/api/v1/" in path else ""
    area = rest.split("/", 1)[0]
    if area not in AREAS:
        return None
    verb = "read" if method in ("GET", "HEAD", "OPTIONS") else "write"
    return f"{verb}:{area}"


def _find(raw: str) -> ApiToken | None:
    locked = SignInThrottle.objects.filter(
        key=Concat(Value("account:"), Lower(OuterRef("user__username"))),
        locked_at__isnull=False,
    )
    candidates = [hash_token(raw)] + [
        hash_token(raw, secret=old) for old in getattr(settings, "SECRET_KEY_FALLBACKS", [])
    ]
    return (
        ApiToken.objects.select_related("user")
        .annotate(owner_locked=Exists(locked))
        .filter(token_sha256__in=candidates)
        .first()
    )


def authenticate(raw: str, *, method: str, path: str) -> User | None:
    """The user a bearer token acts for, or None (unknown, expired, idle, revoked, locked).

    Raises DomainError 403 when the token is valid but lacks the scope the request needs.
    """
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = _find(raw)
    now = timezone.now()
    if token is None or not is_live(token, now) or not token.user.is_active:
        return None
    if token.owner_locked:  # type: ignore[attr-defined]  # annotated in _find
        return None
    needed = required_scope(method, path)
    if needed is None or needed not in token.scopes:
        audit.record(
            actor=token.user,
            action="auth.token_scope_refused",
            success=False,
            target=token,
            detail={"needed": needed or "", "path": path[:200]},
        )
        raise DomainError(
            "insufficient_scope", _("令牌没有此操作的权限：%s") % (needed or path), status=403
        )
    # record use at most once a minute: a busy station must not write a row per request
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def user_for_token(raw: str) -> User | None:
    """The user of a live token, whatever its scopes (for callers outside the API)."""
    if not raw.startswith(TOKEN_PREFIX):
        return None
    token = _find(raw)
    if token is None or not is_live(token) or not token.user.is_active:
        return None
    if token.owner_locked:  # type: ignore[attr-defined]  # annotated in _find
        return None
    return token.user
