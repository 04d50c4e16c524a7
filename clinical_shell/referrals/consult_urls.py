from django.urls import URLPattern, path

from clinical_shell.referrals import consult_views as views

urlpatterns: list[URLPattern] = [
    path("", views.consult_list, name="consult_list"),
    path("new/<int:patient_id>/", views.consult_new, name="consult_new"),
    path("<int:consultation_id>/", views.consult_detail, name="consult_detail"),
    path("<int:consultation_id>/print/", views.consult_print, name="consult_print"),
    path("mdt/<int:meeting_id>/", views.mdt_detail, name="mdt_detail"),
    path("mdt/<int:meeting_id>/studies/<int:study_id>/", views.mdt_study, name="mdt_study"),
]
