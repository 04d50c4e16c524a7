from django.urls import URLPattern, path

from clinical_shell.planning import rehearsal_views, views

app_name = "planning"
urlpatterns: list[URLPattern] = [
    path("patients/<int:patient_id>/", views.patient_plans, name="patient_plans"),
    path("<int:plan_id>/", views.plan_detail, name="plan_detail"),
    path("<int:plan_id>/elements/<int:element_id>/edit/", views.element_edit, name="element_edit"),
    path(
        "<int:plan_id>/elements/<int:element_id>/delete/",
        views.element_delete,
        name="element_delete",
    ),
    path("<int:plan_id>/approve/", views.approve, name="approve"),
    path("<int:plan_id>/print/", views.plan_print, name="plan_print"),
    path("<int:plan_id>/rehearse/", rehearsal_views.rehearse, name="rehearse"),
]
