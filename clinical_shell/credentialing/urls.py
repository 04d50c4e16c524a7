from django.urls import URLPattern, path

from clinical_shell.credentialing import views

app_name = "credentialing"
urlpatterns: list[URLPattern] = [
    path("", views.index, name="index"),
    path("requirements/<int:requirement_id>/apply/", views.apply, name="apply"),
    path("applications/<int:application_id>/", views.application, name="application"),
    path("applications/<int:application_id>/vote/", views.vote, name="vote"),
    path("applications/<int:application_id>/decide/", views.decide, name="decide"),
    path("applications/<int:application_id>/withdraw/", views.withdraw, name="withdraw"),
    path("privileges/", views.privileges, name="privileges"),
    path("privileges/<int:privilege_id>/status/", views.privilege_status, name="privilege_status"),
]
