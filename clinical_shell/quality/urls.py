from django.urls import URLPattern, path

from clinical_shell.quality import views

app_name = "quality"
urlpatterns: list[URLPattern] = [
    path("", views.index, name="index"),
    path("cases/<slug:code>/", views.cases, name="cases"),
    path("funnel/<slug:code>/", views.funnel, name="funnel"),
    path("warnings/", views.warning_list, name="warnings"),
    path("warnings/<int:warning_id>/", views.warning_detail, name="warning"),
    path("export.xlsx", views.export_xlsx, name="export"),
    path("report/", views.report, name="report"),
]
