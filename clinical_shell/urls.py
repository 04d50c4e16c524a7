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
]

# imaging is written in parallel: its pages mount as soon as its urls module exists
if importlib.util.find_spec("clinical_shell.imaging.urls") is not None:
    urlpatterns.append(path("imaging/", include("clinical_shell.imaging.urls")))
