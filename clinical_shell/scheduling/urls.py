from django.urls import URLPattern, path

from clinical_shell.scheduling import views

app_name = "scheduling"
urlpatterns: list[URLPattern] = [
    path("", views.booking_list, name="booking_list"),
    path("new/", views.booking_new, name="booking_new"),
    path("overrides/", views.override_review, name="override_review"),
    path("<int:booking_id>/", views.booking_detail, name="booking_detail"),
    path("<int:booking_id>/cancel/", views.booking_cancel, name="booking_cancel"),
    path("<int:booking_id>/performed/", views.booking_performed, name="booking_performed"),
]
