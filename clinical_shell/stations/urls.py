from django.urls import URLPattern, path

from clinical_shell.stations import replay_views, views

app_name = "stations"
urlpatterns: list[URLPattern] = [
    path("", views.station_list, name="station_list"),
    path("states.json", views.station_states, name="station_states"),
    path("<int:station_id>/", views.station_detail, name="station_detail"),
    path("<int:station_id>/revoke/", views.station_revoke, name="station_revoke"),
    path("<int:station_id>/stream/start/", views.station_stream_start, name="stream_start"),
    path("<int:station_id>/stream/stop/", views.station_stream_stop, name="stream_stop"),
    path("enrolment-codes/", views.enrolment_codes, name="enrolment_codes"),
    path("sessions/", views.session_list, name="session_list"),
    path("sessions/new/", views.session_new, name="session_new"),
    path("sessions/<int:session_id>/", views.session_detail, name="session_detail"),
    path("sessions/<int:session_id>/state.json", views.session_state, name="session_state"),
    path("sign-in-code/", views.sign_in_code, name="sign_in_code"),
    path("results/<int:result_id>/replay/", replay_views.result_replay, name="result_replay"),
    path(
        "results/<int:result_id>/replay/render/",
        replay_views.result_replay_render,
        name="result_replay_render",
    ),
    path(
        "results/<int:result_id>/replay/state.json",
        replay_views.result_replay_state,
        name="result_replay_state",
    ),
    path(
        "results/<int:result_id>/replay/timeline.json",
        replay_views.result_replay_timeline,
        name="result_replay_timeline",
    ),
    path(
        "results/<int:result_id>/replay.mp4",
        replay_views.result_replay_mp4,
        name="result_replay_mp4",
    ),
]
