"""Imaging report pages, mounted at /imaging/reports/ (namespace "radiology")."""

from django.urls import URLPattern, path

from clinical_shell.imaging import report_views as views

app_name = "radiology"
urlpatterns: list[URLPattern] = [
    path("", views.worklist, name="worklist"),
    path("studies/<int:study_id>/", views.study_report, name="study_report"),
    path("<int:report_id>/sign/", views.sign, name="sign"),
    path("<int:report_id>/print/", views.print_report, name="print"),
    path("<int:report_id>/amend/", views.amend, name="amend"),
]
