from django.urls import URLPattern, path

from clinical_shell.live import views

app_name = "live"
urlpatterns: list[URLPattern] = [
    path("", views.session_list, name="session_list"),
    path("new/", views.session_new, name="session_new"),
    path("<int:session_id>/", views.session_watch, name="session_watch"),
    path("<int:session_id>/consent/", views.session_consent, name="session_consent"),
    path("<int:session_id>/end/", views.session_end, name="session_end"),
    path("<int:session_id>/start/", views.session_start, name="session_start"),
    path("<int:session_id>/invitees/", views.session_invitees, name="session_invitees"),
    path(
        "<int:session_id>/invitees/<int:user_id>/remove/",
        views.session_uninvite,
        name="session_uninvite",
    ),
    path("<int:session_id>/recordings/", views.session_recordings, name="session_recordings"),
    path(
        "<int:session_id>/recordings/attach/",
        views.session_recordings_attach,
        name="session_recordings_attach",
    ),
    path("recordings/<int:recording_id>.mp4", views.recording_mp4, name="recording_mp4"),
]
