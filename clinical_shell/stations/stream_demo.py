"""The demo's station view, live (`osteon demo`, i.e. `make run`): the local station streams
its Panda3D view into a live session, started through the service by an administrator of the
station's institution, with the center's surgeons and a county surgeon invited, so its watch
page plays the station's own picture.

`osteon demo` writes the relay's config with the station's room declared published
(`osteon.demo.start_relay`) and runs the station with the demo case as its view.
"""

import time

from django.contrib.auth.models import User

from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.stations import selectors, streams
from clinical_shell.stations.models import Station, StationStream


def _members(role: str, **where: object) -> list[User]:
    rows = (
        Membership.objects.filter(role=role, active=True, **where)
        .select_related("person__user")
        .order_by("pk")
    )
    return [row.person.user for row in rows]


def stream_station(station_id: int, *, wait_online_s: float = 60.0) -> StationStream:
    """Start streaming ``station_id``'s view (waiting for it to come online); an active stream
    of it is returned as it is. Raises LookupError without a station or an administrator."""
    station = Station.objects.filter(pk=station_id).first()
    if station is None:
        raise LookupError(f"no station {station_id}")
    active = StationStream.objects.filter(
        station=station, state__in=StationStream.ACTIVE_STATES
    ).first()
    if active is not None:
        return active
    admins = _members(Role.ADMINISTRATOR, institution_id=station.institution_id)
    if not admins:
        raise LookupError(f"no administrator at the institution of station {station_id}")
    # the station was just started: its first heartbeat makes it online
    deadline = time.monotonic() + wait_online_s
    while selectors.presence_of(station) == Station.Presence.OFFLINE:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
        station.refresh_from_db()
    surgeons = _members(Role.SURGEON, institution__level=Institution.Level.CENTER)[:3]
    county = _members(Role.SURGEON, institution__level=Institution.Level.COUNTY)[:1]
    invitees = [u for u in surgeons + county if u.pk != admins[0].pk]
    return streams.start_station_stream(actor=admins[0], station=station, invitees=invitees)
