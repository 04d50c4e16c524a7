"""Live events of stations and sessions for browser pages (clinical_shell.realtime topics).

Topics: "stations" (every station's presence), "station.<id>" (one station), "session.<id>"
(one session: state, live metrics, result and its verification). Who may subscribe to which is
registered in `StationsConfig.ready()` (see `can_subscribe`).
"""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from clinical_shell.realtime import events
from clinical_shell.stations import access, selectors
from clinical_shell.stations.models import SessionResult, Station, StationSession


def station_event(station: Station) -> dict[str, Any]:
    session = station.current_session
    user = station.signed_in_user
    return {
        "kind": "station",
        "id": station.pk,
        "name": station.name,
        "room": station.room,
        "status": station.status,
        "presence": selectors.presence_of(station),
        "last_contact_at": station.last_contact_at.isoformat() if station.last_contact_at else None,
        # in the shell's time zone, as the server-rendered pages show it: a browser set to
        # another zone must not show the same station's contact at two different times
        "last_contact_local": (
            timezone.localtime(station.last_contact_at).strftime("%Y-%m-%d %H:%M:%S")
            if station.last_contact_at
            else None
        ),
        "signed_in_user": display_name(user) if user is not None else "",
        "current_session": (
            {"id": session.pk, "scenario": session.scenario, "state": session.state}
            if session is not None
            else None
        ),
    }


def display_name(user: User) -> str:
    person = getattr(user, "person", None)
    return person.full_name if person is not None else user.get_username()


def session_event(session: StationSession) -> dict[str, Any]:
    result: SessionResult | None = getattr(session, "result", None)
    return {
        "kind": "session",
        "id": session.pk,
        "state": session.state,
        "abort_reason": session.abort_reason,
        "abort_code": session.abort_code,
        "abort_params": session.abort_params,
        "result": (
            {
                "id": result.pk,
                "score": result.score,
                "passed": result.passed,
                "verification": result.verification,
                "rejection_reason": result.rejection_reason,
                "rejection_code": result.rejection_code,
                "rejection_params": result.rejection_params,
                "arrived_late": result.arrived_late,
            }
            if result is not None
            else None
        ),
    }


def publish_station(station_id: int) -> None:
    station = (
        Station.objects.select_related("signed_in_user__person", "current_session")
        .filter(pk=station_id)
        .first()
    )
    if station is None:
        return
    event = station_event(station)
    events.publish("stations", event)
    events.publish(f"station.{station_id}", event)


def publish_session(session_id: int) -> None:
    session = StationSession.objects.select_related("result").filter(pk=session_id).first()
    if session is not None:
        events.publish(f"session.{session_id}", session_event(session))


def publish_telemetry(session_id: int, sample: dict[str, Any]) -> None:
    """One live sample (tick, tool position, force, metrics) to the session's page."""
    events.publish(f"session.{session_id}", {"kind": "telemetry", "id": session_id, **sample})


def can_subscribe(user: User | AnonymousUser, topic: str) -> bool:
    """Whether `user` may follow `topic` (no audit: what it carries is seen on the pages)."""
    if not user.is_authenticated:
        return False
    if topic == "stations":
        return bool(access.member_institution_ids(user))
    prefix, _, raw_id = topic.partition(".")
    if not raw_id.isdigit():
        return False
    if prefix == "station":
        return Station.objects.filter(
            pk=int(raw_id), institution_id__in=access.member_institution_ids(user)
        ).exists()
    if prefix == "session":
        return StationSession.objects.filter(access.visible_sessions(user), pk=int(raw_id)).exists()
    return False
