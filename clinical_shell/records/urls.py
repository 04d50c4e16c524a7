from django.urls import URLPattern, path

from clinical_shell.records import views

app_name = "records"
urlpatterns: list[URLPattern] = [
    path("", views.patient_search, name="patient_search"),
    path("new/", views.patient_new, name="patient_new"),
    path("duplicates/", views.duplicate_queue, name="duplicate_queue"),
    path("duplicates/<int:candidate_id>/", views.duplicate_review, name="duplicate_review"),
    path("<int:patient_id>/", views.patient_timeline, name="patient_timeline"),
    path("<int:patient_id>/edit/", views.patient_edit, name="patient_edit"),
    path("<int:patient_id>/problems/", views.patient_chart, name="patient_chart"),
    path("<int:patient_id>/encounters/new/", views.encounter_new, name="encounter_new"),
    path(
        "<int:patient_id>/encounters/<int:encounter_id>/",
        views.encounter_detail,
        name="encounter_detail",
    ),
]
