from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    """Two-way referral, transfer-out approval, teleconsultation and MDT across the network."""

    name = "clinical_shell.referrals"
    label = "referrals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clinical_shell.imaging.access import register_study_grant
        from clinical_shell.realtime.events import register_topic
        from clinical_shell.records.access import register_share_source
        from clinical_shell.referrals import record_shares, study_grants
        from clinical_shell.referrals.access import may_hear_institution

        # "referrals.<institution id>": emergency pre-notifications for that receiving team
        register_topic("referrals", may_hear_institution)
        # studies a referral, a consultation or a meeting shares open in the viewer
        for grant in (
            study_grants.through_referral,
            study_grants.through_consultation,
            study_grants.through_meeting,
        ):
            register_study_grant(grant)
        # and the encounters, documents and studies they share appear on the patient's pages
        register_share_source(record_shares.shared_with)
