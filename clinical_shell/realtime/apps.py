from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """Live pages: websocket consumers and the events other apps publish to them."""

    name = "clinical_shell.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from clinical_shell.realtime import notices

        notices.register()
        user_logged_in.connect(notices.announce_sign_in, dispatch_uid="realtime.announce_sign_in")
        user_logged_out.connect(
            notices.close_session_sockets, dispatch_uid="realtime.close_session_sockets"
        )
