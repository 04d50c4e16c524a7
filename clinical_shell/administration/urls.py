from django.urls import URLPattern, path

from clinical_shell.administration import views

app_name = "administration"
urlpatterns: list[URLPattern] = [
    path("", views.index, name="index"),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export.csv", views.audit_export, name="audit_export"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_create, name="user_create"),
    path("users/<int:user_id>/", views.user_detail, name="user_detail"),
    path("users/<int:user_id>/roles/", views.role_add, name="role_add"),
    path(
        "users/<int:user_id>/roles/<int:membership_id>/remove/",
        views.role_remove,
        name="role_remove",
    ),
    path("users/<int:user_id>/<slug:action>/", views.user_action, name="user_action"),
    path("institutions/", views.institution_list, name="institutions"),
    path("institutions/new/", views.institution_create, name="institution_create"),
    path(
        "institutions/<int:institution_id>/",
        views.institution_detail,
        name="institution_detail",
    ),
    path(
        "institutions/<int:institution_id>/edit/",
        views.institution_edit,
        name="institution_edit",
    ),
    path("departments/<int:department_id>/", views.department_edit, name="department_edit"),
    path("stations/", views.station_list, name="stations"),
    path("stations/<int:station_id>/revoke/", views.station_revoke, name="station_revoke"),
]
