"""Django auth backend that applies the lockout and TOTP rules of `accounts.services`."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.http import HttpRequest

from clinical_shell.accounts.services import check_sign_in
from clinical_shell.errors import DomainError


class LockoutModelBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if username is None or password is None:
            return None
        try:
            return check_sign_in(
                username=username, password=password, totp_code=str(kwargs.get("totp_code", ""))
            )
        except DomainError:
            return None
