"""The daily sweep that flags bookings a privilege no longer covers (expiries above all: nobody
calls `services.flag_bookings_for` when a date passes)."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.scheduling import services


@db_periodic_task(crontab(hour="0", minute="10"))  # type: ignore[untyped-decorator]
def flag_lapsed_bookings() -> None:
    services.flag_lapsed_bookings()
