from django.urls import URLPattern, path

from clinical_shell.imaging import annotation_views, views

app_name = "imaging"
urlpatterns: list[URLPattern] = [
    path("", views.index, name="index"),
    path("upload/", views.upload, name="upload"),
    path("patients/<int:patient_id>/", views.patient_studies, name="patient_studies"),
    path("studies/<int:study_id>/link/", views.link, name="link"),
    path("link-requests/<int:link_request_id>/decide/", views.link_decision, name="link_decision"),
    path("series/<int:series_id>/", views.viewer, name="viewer"),
    path("series/<int:series_id>/build-case/", views.build_case, name="build_case"),
    path("case-builds/<int:job_id>/", views.case_build, name="case_build"),
    path("case-builds/<int:job_id>/retry/", views.retry_case_build, name="retry_case_build"),
    path("case-builds/<int:job_id>/cancel/", views.cancel_case_build, name="cancel_case_build"),
    path("cases/<int:case_id>/annotate/", annotation_views.annotate_case, name="annotate_case"),
    path(
        "cases/<int:case_id>/slices/<int:axis>/<int:index>.png",
        annotation_views.case_slice,
        name="case_slice",
    ),
    path("instances/<int:instance_id>/file", views.instance_file, name="instance_file"),
]
