from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "clinical_shell.accounts"
    label = "accounts"
    verbose_name = "账户 / Accounts"
