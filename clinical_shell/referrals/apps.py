from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    """Two-way referral, transfer-out approval, teleconsultation and MDT across the network."""

    name = "clinical_shell.referrals"
    label = "referrals"
    default_auto_field = "django.db.models.BigAutoField"
