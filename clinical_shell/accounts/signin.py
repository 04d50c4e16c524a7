"""Sign-in: the password step, the second-factor step, account locks and their lifting.

Rules (docs/security.md "Sign-in"):
- before any password is looked at: the client's address and everyone together are throttled
  (django-axes), and the name typed and the client wait out a progressive delay;
- a name that does not exist costs the same password hash and gets the same answer as a wrong
  password; its failures are counted and it is delayed and locked like a real account;
- after OSTEON_SIGNIN_LOCK_FAILURES failures in a row an account is locked: its owner lifts the
  lock with password + TOTP or recovery code, or an administrator of one of their institutions
  lifts it; the owner is notified;
- refused attempts go to `SignInFailure` (kept OSTEON_SIGNIN_FAILURE_RETENTION_DAYS), not the
  audit chain; successes, locks and unlocks go to the chain.
"""

import secrets
import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, get_hasher, make_password
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.accounts import second_factor, throttle
from clinical_shell.accounts.models import SignInFailure, SignInThrottle
from clinical_shell.audit import services as audit
from clinical_shell.audit.context import current_origin
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.network.models import Membership, Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.notifications.services import notify


class AccountLockedError(DomainError):
    status = 423


class SignInError(DomainError):
    status = 401


def _bad_credentials() -> SignInError:
    return SignInError("bad_credentials", _("用户名或密码错误"))


def _locked() -> AccountLockedError:
    return AccountLockedError(
        "account_locked",
        _("该账户已锁定：账户所有人可用密码加动态验证码或恢复码解锁，或请管理员解锁"),
    )


# ---- timing: a name with no account costs the same hash ---------------------------------------

_dummy_lock = threading.Lock()
_dummy_hashes: dict[str, str] = {}


def _dummy_hash() -> str:
    """A hash made by the current default hasher with its current cost (one per hasher setup)."""
    hasher = get_hasher("default")
    key = f"{type(hasher).__qualname__}:{getattr(hasher, 'memory_cost', '')}"
    key += f":{getattr(hasher, 'time_cost', '')}:{getattr(hasher, 'iterations', '')}"
    with _dummy_lock:
        if key not in _dummy_hashes:
            _dummy_hashes[key] = make_password(secrets.token_urlsafe(24), hasher=hasher)
        return _dummy_hashes[key]


# ---- the password step --------------------------------------------------------------------------


def password_step(
    *, username: str, password: str, client: str, channel: str, request: HttpRequest | None
) -> User:
    """The active user whose password this is, or raise (throttled, locked, bad credentials).

    Does not finish the sign-in: the caller asks for the second factor when the user has one
    (`second_factor.has_totp`) and then calls `signed_in`.
    """
    account = throttle.account_key(username)
    keys = [account] + ([throttle.client_key(client)] if client else [])
    try:
        if request is not None:
            throttle.check_client_allowed(request)
        else:
            throttle.check_overall()
        throttle.check_delay(*keys)
    except throttle.ThrottledError:
        _log_failure(username, "throttled", channel)
        raise
    user = get_user_model().objects.filter(username=username).first()
    with throttle.hashing_slot():
        if user is None or not user.is_active:
            check_password(password, _dummy_hash())
            ok = False
        else:
            ok = user.check_password(password)
    if throttle.is_locked(account):
        _failed(username, user, client, channel, request, "locked")
        raise _locked()
    if not ok or user is None:
        _failed(username, user, client, channel, request, "bad_credentials")
        raise _bad_credentials()
    return user


def second_factor_step(
    *, user: User, code: str, client: str, channel: str, request: HttpRequest | None
) -> None:
    """Check the TOTP or recovery code of a user whose password was right, or raise."""
    keys = [throttle.account_key(user.get_username())]
    keys += [throttle.client_key(client)] if client else []
    try:
        if request is not None:
            throttle.check_client_allowed(request)
        else:
            throttle.check_overall()
        throttle.check_delay(*keys)
    except throttle.ThrottledError:
        _log_failure(user.get_username(), "throttled", channel)
        raise
    if not second_factor.verify_second_factor(user=user, code=code):
        _failed(user.get_username(), user, client, channel, request, "bad_second_factor")
        raise SignInError("bad_totp", _("动态验证码或恢复码错误"))


def signed_in(user: User, *, channel: str) -> None:
    """Record a finished sign-in: the name's failures are forgotten, the chain gets the event."""
    throttle.clear(throttle.account_key(user.get_username()))
    audit.record(actor=user, action="auth.sign_in", detail={"channel": channel})


def check_sign_in(
    *, username: str, password: str, totp_code: str = "", client: str = "", channel: str = "api"
) -> User:
    """Password and, when the account has TOTP, the code in one call (stations, services).

    `client` names the caller for the per-client delay (e.g. "station:<id>"). An account with
    TOTP and no code given is refused with `second_factor_required`.
    """
    user = password_step(
        username=username, password=password, client=client, channel=channel, request=None
    )
    if second_factor.has_totp(user):
        if not totp_code:
            raise SignInError("second_factor_required", _("该账户已启用动态验证码，请输入验证码"))
        second_factor_step(user=user, code=totp_code, client=client, channel=channel, request=None)
    signed_in(user, channel=channel)
    return user


def unlock_with_second_factor(
    *, username: str, password: str, code: str, client: str, request: HttpRequest | None
) -> User:
    """The owner lifts their own lock: password and TOTP or recovery code, all right at once.

    Any wrong part gets the same answer, so a locked account does not confirm a guessed password.
    """
    account = throttle.account_key(username)
    try:
        if request is not None:
            throttle.check_client_allowed(request)
        throttle.check_delay(account, throttle.client_key(client))
    except throttle.ThrottledError:
        _log_failure(username, "throttled", "unlock")
        raise
    user = get_user_model().objects.filter(username=username).first()
    with throttle.hashing_slot():
        if user is None or not user.is_active:
            check_password(password, _dummy_hash())
            ok = False
        else:
            ok = user.check_password(password)
    ok = ok and user is not None and second_factor.verify_second_factor(user=user, code=code)
    if not ok or user is None:
        _failed(username, user, client, "unlock", request, "bad_unlock")
        raise SignInError("bad_unlock", _("用户名、密码或验证码错误"))
    was_locked = throttle.is_locked(account)
    throttle.clear(account)
    if was_locked:
        audit.record(actor=user, action="auth.account_unlock", detail={"by": "owner"})
    signed_in(user, channel="unlock")
    return user


# ---- failures -------------------------------------------------------------------------------


def _log_failure(username: str, reason: str, channel: str) -> None:
    origin = current_origin()
    SignInFailure.objects.create(
        at=timezone.now(),
        username=username[:150],
        source_ip=origin.source_ip,
        user_agent=origin.user_agent,
        reason=reason,
        channel=channel,
    )


def _failed(
    username: str,
    user: User | None,
    client: str,
    channel: str,
    request: HttpRequest | None,
    reason: str,
) -> None:
    newly_locked = throttle.count_failure(
        throttle.account_key(username),
        free=settings.OSTEON_SIGNIN_ACCOUNT_FREE_FAILURES,
        window_s=settings.OSTEON_SIGNIN_FAILURE_WINDOW_S,
        lock_at=settings.OSTEON_SIGNIN_LOCK_FAILURES,
    )
    if client:
        # a client's run is forgotten after the cool-off: a hospital behind one NAT address
        # must not carry a morning's typing errors into the afternoon
        throttle.count_failure(
            throttle.client_key(client),
            free=settings.OSTEON_SIGNIN_CLIENT_FREE_FAILURES,
            window_s=settings.OSTEON_SIGNIN_CLIENT_COOLOFF_S,
        )
    if request is not None:
        throttle.record_client_failure(request, username)
    _log_failure(username, reason, channel)
    if newly_locked and user is not None:
        audit.record(
            actor=None,
            action="auth.account_lock",
            success=False,
            username=user.get_username(),
            detail={"failures": settings.OSTEON_SIGNIN_LOCK_FAILURES},
        )
        notify(
            [user],
            title=gettext_lazy("你的账户因多次登录失败已被锁定"),
            body=format_lazy(
                gettext_lazy(
                    "连续 {} 次登录失败。可在解锁页用密码加动态验证码或恢复码解锁，"
                    "或请本机构管理员解锁；如非本人操作，请尽快修改密码。"
                ),
                settings.OSTEON_SIGNIN_LOCK_FAILURES,
            ),
            url="/accounts/unlock/",
            kind="account_locked",
        )


# ---- administrators -------------------------------------------------------------------------


def lockable_user_ids(actor: User) -> set[int]:
    """Users whose lock `actor` may lift: members of an institution `actor` administers."""
    institutions = institution_ids_with_roles(int(actor.pk), frozenset({Role.ADMINISTRATOR}))
    return set(
        Membership.objects.filter(institution_id__in=institutions).values_list(
            "person__user_id", flat=True
        )
    )


def locked_users(actor: User) -> list[tuple[User, SignInThrottle]]:
    """Locked accounts `actor` may unlock, most recently locked first."""
    ids = lockable_user_ids(actor)
    if not ids:
        return []
    users = {
        throttle.account_key(u.get_username()): u
        for u in get_user_model().objects.filter(pk__in=ids)
    }
    rows = SignInThrottle.objects.filter(key__in=list(users), locked_at__isnull=False).order_by(
        "-locked_at"
    )
    return [(users[row.key], row) for row in rows]


def unlock_by_administrator(*, actor: User, user_id: int) -> User:
    """An administrator of one of the user's institutions lifts the lock; the owner is told."""
    if not institution_ids_with_roles(int(actor.pk), frozenset({Role.ADMINISTRATOR})):
        audit.record(actor=actor, action="auth.account_unlock", success=False)
        raise PermissionDeniedError("not_administrator", _("只有管理员可以解锁账户"))
    if user_id not in lockable_user_ids(actor):
        audit.record(
            actor=actor, action="auth.account_unlock", success=False, detail={"user": user_id}
        )
        raise NotFoundError("user_not_found", _("未找到该账户"))
    user = get_user_model().objects.get(pk=user_id)
    throttle.clear(throttle.account_key(user.get_username()))
    audit.record(actor=actor, action="auth.account_unlock", target=user, detail={"by": "admin"})
    notify(
        [user],
        title=gettext_lazy("你的账户已由管理员解锁"),
        url="/accounts/sign-in/",
        kind="account_unlocked",
    )
    return user
