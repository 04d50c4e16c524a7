from django.apps import AppConfig


class StationsConfig(AppConfig):
    """Simulator stations joined over the bridge: enrolment, presence, sessions, verified scores."""

    name = "clinical_shell.stations"
    label = "stations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # live topics: "stations" (all presence), "station.<id>", "session.<id>"
        from clinical_shell.realtime.events import register_topic
        from clinical_shell.stations.live import can_subscribe

        for prefix in ("stations", "station", "session"):
            register_topic(prefix, can_subscribe)
