"""The header's links that only some users may follow: /administration/ (administrators and the
center's quality office) and /quality/ (the quality office and department heads). A link a user
would only be refused at is not shown.

The flags are cached per user (Django's cache, in memory by default) so that ordinary pages keep
their query count: the first page after sign-in asks once, later pages ask nothing. Role changes
made through administration.services drop the cached flags; one made elsewhere shows within
NAV_CACHE_S. The links are only a convenience: every page checks access itself.
"""

from django.contrib.auth.models import User
from django.core.cache import cache
from django.http import HttpRequest

from clinical_shell.administration import access
from clinical_shell.administration.services import nav_cache_key
from clinical_shell.errors import PermissionDeniedError

NAV_CACHE_S = 300


def _may_open_quality(user: User) -> bool:
    from clinical_shell.quality import dashboard

    try:
        dashboard.home_scope(user)
    except PermissionDeniedError:
        return False
    return True


def administration_nav(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    key = nav_cache_key(user)
    shown = cache.get(key)
    if not isinstance(shown, dict):
        shown = {
            "show_administration_nav": access.is_admin_area_user(user),
            "show_quality_nav": _may_open_quality(user),
        }
        cache.set(key, shown, NAV_CACHE_S)
    return {name: bool(value) for name, value in shown.items()}
