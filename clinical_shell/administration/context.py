"""The header's link to /administration/, for administrators and the center's quality office.

The flag is cached per user (Django's cache, in memory by default) so that ordinary pages keep
their query count: the first page after sign-in asks once, later pages ask nothing. Role changes
made through administration.services drop the cached flag; one made elsewhere shows within
NAV_CACHE_S. The link is only a convenience: every administration page checks access itself.
"""

from django.core.cache import cache
from django.http import HttpRequest

from clinical_shell.administration import access
from clinical_shell.administration.services import nav_cache_key

NAV_CACHE_S = 300


def administration_nav(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    key = nav_cache_key(user)
    shown = cache.get(key)
    if shown is None:
        shown = access.is_admin_area_user(user)
        cache.set(key, shown, NAV_CACHE_S)
    return {"show_administration_nav": bool(shown)}
