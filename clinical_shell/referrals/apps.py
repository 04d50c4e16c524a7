from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    """Two-way referral, transfer-out approval, teleconsultation and MDT across the network."""

    name = "clinical_shell.referrals"
    label = "referrals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clinical_shell.realtime.events import register_topic
        from clinical_shell.referrals.access import may_hear_institution

        # "referrals.<institution id>": emergency pre-notifications for that receiving team
        register_topic("referrals", may_hear_institution)
