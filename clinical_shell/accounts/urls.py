from django.urls import URLPattern, path

from clinical_shell.accounts import token_views, views

app_name = "accounts"
urlpatterns: list[URLPattern] = [
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-in/code/", views.second_factor_page, name="second_factor"),
    path("unlock/", views.unlock, name="unlock"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("password/", views.password_change, name="password_change"),
    path("security/", views.security, name="security"),
    path("locks/", views.locks, name="locks"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token_revoke"),
]
