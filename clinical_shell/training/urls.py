from django.urls import URLPattern, path

from clinical_shell.training import views

app_name = "training"
urlpatterns: list[URLPattern] = [
    path("", views.progress, name="progress"),
    path("groups/<int:group_id>/", views.group, name="group"),
    path("groups/<int:group_id>/assign/", views.assign, name="assign"),
    path("modules/<int:module_id>/start/", views.start, name="start"),
]
