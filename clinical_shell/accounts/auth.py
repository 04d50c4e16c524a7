"""django-ninja authentication: bearer tokens for machines, the session (with CSRF) for pages."""

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from clinical_shell.accounts.services import user_for_token


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = user_for_token(token)
        if user is None:
            return None
        request.user = user
        return user


class SessionAuthWithCsrf(SessionAuth):
    """Ninja's session auth (CSRF checked on unsafe methods)."""
