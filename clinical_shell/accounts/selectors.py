"""Reads about the signed-in user for views and API operations."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.utils.translation import gettext as _

from clinical_shell.errors import DomainError


def signed_in_user(request: HttpRequest) -> User:
    """The request's user, known to be signed in (views check first; this states it for types)."""
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise DomainError("not_authenticated", _("请先登录"), status=401)
    return user
