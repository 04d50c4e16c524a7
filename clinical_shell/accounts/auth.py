"""django-ninja authentication: bearer tokens for machines, the session (with CSRF) for pages."""

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from clinical_shell.accounts import tokens


class BearerTokenAuth(HttpBearer):
    """A live token (not expired, idle, revoked or locked out) with the scope the call needs;
    a live token without that scope is refused with 403 (audited), not passed to session auth."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = tokens.authenticate(token, method=request.method or "GET", path=request.path)
        if user is None:
            return None
        request.user = user
        request.auth_by_token = True  # type: ignore[attr-defined]
        return user


class SessionAuthWithCsrf(SessionAuth):
    """Ninja's session auth (CSRF checked on unsafe methods)."""
