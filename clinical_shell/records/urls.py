from django.urls import URLPattern, path

from clinical_shell.records import views

app_name = "records"
urlpatterns: list[URLPattern] = [
    path("", views.patient_search, name="patient_search"),
    path("<int:patient_id>/", views.patient_timeline, name="patient_timeline"),
    path("<int:patient_id>/encounters/new/", views.encounter_new, name="encounter_new"),
]
