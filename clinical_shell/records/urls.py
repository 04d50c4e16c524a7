from django.urls import URLPattern, path

from clinical_shell.records import views

app_name = "records"
urlpatterns: list[URLPattern] = [
    path("", views.patient_search, name="patient_search"),
    path("duplicates/", views.duplicate_queue, name="duplicate_queue"),
    path("duplicates/<int:candidate_id>/", views.duplicate_review, name="duplicate_review"),
    path("<int:patient_id>/", views.patient_timeline, name="patient_timeline"),
    path("<int:patient_id>/encounters/new/", views.encounter_new, name="encounter_new"),
]
