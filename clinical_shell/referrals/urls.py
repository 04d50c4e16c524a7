from django.urls import URLPattern, URLResolver, include, path

from clinical_shell.referrals import views

app_name = "referrals"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.inbox, name="inbox"),
    path("new/", views.new_referral, name="new"),
    path("<int:referral_id>/", views.detail, name="detail"),
    path("<int:referral_id>/letter/", views.letter, name="letter"),
    path("<int:referral_id>/act/<str:action>/", views.act, name="act"),
    path("consult/", include("clinical_shell.referrals.consult_urls")),
]
