"""Bookings follow their privileges: a privilege saved suspended or revoked flags, in the same
transaction, the bookings not yet performed that rested on it (`services.flag_bookings_for`).

Listening to the privilege's save (rather than waiting for credentialing to call in) means no
way of changing a privilege, page, API or console, can leave bookings that no longer hold.
Expiries change no row; the daily sweep (`tasks.flag_lapsed_bookings`) catches those.
"""

from typing import Any

from django.db.models.signals import post_save


def _on_privilege_saved(sender: type, instance: Any, **kwargs: Any) -> None:
    from clinical_shell.scheduling import services

    status = str(instance.status)
    if status not in ("suspended", "revoked"):
        return
    services.flag_bookings_for(
        int(instance.pk), str(instance.status_reason or status), code=f"privilege_{status}"
    )


def connect() -> None:
    post_save.connect(
        _on_privilege_saved,
        sender="credentialing.Privilege",
        dispatch_uid="scheduling.flag_on_privilege_saved",
    )
