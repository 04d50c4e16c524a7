"""Top-level URLs: pages per app, the API at /api/v1/, language switching at /i18n/."""

import importlib.util

from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView

from clinical_shell.api import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("", RedirectView.as_view(pattern_name="records:patient_search"), name="home"),
    path("accounts/", include("clinical_shell.accounts.urls")),
    path("patients/", include("clinical_shell.records.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
    path("stations/", include("clinical_shell.stations.urls")),
    path("notifications/", include("clinical_shell.notifications.urls")),
]

# apps written in parallel mount their pages as soon as their urls module exists
for _prefix, _app in (
    ("imaging/", "imaging"),
    ("training/", "training"),
    ("credentialing/", "credentialing"),
    ("scheduling/", "scheduling"),
    ("referrals/", "referrals"),
    ("quality/", "quality"),
    ("planning/", "planning"),
    ("live/", "live"),
    ("administration/", "administration"),
    # imaging reports: their own module beside the viewer's (namespace "radiology")
    ("imaging/reports/", "imaging.report_urls"),
):
    _module = f"clinical_shell.{_app}" + ("" if "." in _app else ".urls")
    if importlib.util.find_spec(_module) is not None:
        urlpatterns.append(path(_prefix, include(_module)))

handler403 = "clinical_shell.administration.error_pages.permission_denied"
handler404 = "clinical_shell.administration.error_pages.page_not_found"
handler500 = "clinical_shell.administration.error_pages.server_error"
