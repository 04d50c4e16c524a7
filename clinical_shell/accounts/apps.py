from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "clinical_shell.accounts"
    label = "accounts"
    verbose_name = "账户 / Accounts"

    def ready(self) -> None:
        # connects the sign-out receiver that revokes the user's tokens (idle timeout included)
        from clinical_shell.accounts import tokens  # noqa: F401
