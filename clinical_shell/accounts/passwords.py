"""Every password set goes through here: AUTH_PASSWORD_VALIDATORS, the forced first change, and
the end of other sessions and tokens when a password changes."""

import importlib

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.accounts import second_factor, throttle
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError


class WeakPasswordError(DomainError):
    status = 422

    def __init__(self, messages: list[str]) -> None:
        super().__init__("weak_password", " ".join(messages))
        self.messages = messages


def validate(password: str, *, user: User | None = None) -> None:
    """Raise WeakPasswordError with the validators' own messages when `password` is refused."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise WeakPasswordError([str(m) for m in exc.messages]) from None


def set_initial_password(user: User, password: str, *, by_administrator: bool) -> None:
    """The first password of a new account; one an administrator chose must be changed."""
    validate(password, user=user)
    _store(user, password, must_change=by_administrator)


@transaction.atomic
def reset_by_administrator(*, actor: User, user: User, password: str) -> None:
    """An administrator sets a temporary password: the owner must change it at next sign-in.

    Authorisation is the caller's (the account administration pages decide who may)."""
    validate(password, user=user)
    _store(user, password, must_change=True)
    audit.record(actor=actor, action="auth.password_reset", target=user)
    _revoke_other_credentials(user, reason="password_reset")


def change_password(*, user: User, old_password: str, new_password: str) -> None:
    """The owner changes their password: the old one must be right, the new one pass policy.

    Other sessions end (Django's session hash of the password no longer matches them); the
    caller keeps the current one with `update_session_auth_hash`."""
    with throttle.hashing_slot():
        old_ok = user.check_password(old_password)
    if not old_ok:
        # outside the transaction below: the refusal's audit event must survive the refusal
        audit.record(actor=user, action="auth.password_change", success=False)
        raise DomainError("bad_old_password", _("当前密码错误"), status=422)
    _change_checked(user=user, old_password=old_password, new_password=new_password)


@transaction.atomic
def _change_checked(*, user: User, old_password: str, new_password: str) -> None:
    if old_password == new_password:
        raise WeakPasswordError([_("新密码不能与当前密码相同")])
    validate(new_password, user=user)
    _store(user, new_password, must_change=False)
    audit.record(actor=user, action="auth.password_change")
    _revoke_other_credentials(user, reason="password_change")


def must_change(user: User) -> bool:
    return bool(second_factor.state_for(user).must_change_password)


def _store(user: User, password: str, *, must_change: bool) -> None:
    with throttle.hashing_slot():
        user.set_password(password)
    user.save(update_fields=["password"])
    state = second_factor.state_for(user, for_update=True)
    state.must_change_password = must_change
    state.password_changed_at = timezone.now()
    state.save(update_fields=["must_change_password", "password_changed_at"])


def _revoke_other_credentials(user: User, *, reason: str) -> None:
    """Machine tokens die with the old password, through the token module's own function
    (`accounts.tokens.revoke_all_for`) when that module provides one."""
    try:
        tokens = importlib.import_module("clinical_shell.accounts.tokens")
    except ModuleNotFoundError:
        return
    revoke_all_for = getattr(tokens, "revoke_all_for", None)
    if callable(revoke_all_for):
        revoke_all_for(user, reason)
