"""A station's own view, streamed live: the services (start, stop, the station's answers) and
the commands the bridge pushes for them (`bridge.messages.StartStream` / `StopStream`).

The shell decides who streams what: it signs a publish token for exactly this station's relay
room and stream (`streaming.tokens.issue_publish_token`, 60 s, fresh on every push), the
station encodes its Panda3D view and publishes it (`bridge.station_stream`), and a live
session in that room (`clinical_shell.live`) lets its invitees watch it on the watch page.
What the station answers (publishing, stopped, failed) comes over the bridge and is checked
like any message from outside: a stream id of another station's changes nothing and is
audited as refused.

How a stream ends besides its stop button: ending its live session stops it
(`live_session_ended`, called by `live.services.end_live_session`); a station that goes
offline fails it (`fail_streams_of_offline_stations`, from `services.mark_offline` and the
minute job); a station that restarted says so itself (`bridge.station` reports the stream it
was publishing as failed). Stopping the stream ends nothing else: its live session goes on.

Each of those stops the shell makes also revokes publishing (`_revoke_publishing`): the relay
drops the station's publisher at once and refuses the publish tokens issued for the stream so
far, though unexpired, so a station that is gone, or slow to hear the stop over the bridge,
cannot go on publishing or come back; a stream started again gets a fresh token, which admits.
"""

import logging
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from bridge.messages import StartStream, StopStream, StreamStatus
from clinical_shell.audit import services as audit
from clinical_shell.live import services as live_services
from clinical_shell.live.relay import relay_secret, send_control
from clinical_shell.stations import selectors
from clinical_shell.stations.access import admin_institution_ids
from clinical_shell.stations.models import Station, StationStream
from clinical_shell.stations.services import StationError
from streaming.tokens import issue_publish_token

log = logging.getLogger("clinical_shell.stations")

# the relay stream a station publishes into, in its own room `station_room`
STREAM_NAME = "view"
STREAM_QUALITY = "360p"
# what the station renders and encodes: 640x360 at 10 frames a second is what a station
# without a GPU draws beside its engine (software GL, see docs/station.md)
STREAM_FPS = 10
STREAM_SIZE = (640, 360)
# a publish token only bridges "the shell pushed the command" and "the station connected" [s]
PUBLISH_TOKEN_TTL_S = 60


def station_room(station: Station) -> str:
    """The relay room of a station's view (the relay's config declares it, kind "publish")."""
    return f"station-{station.pk}"


def may_stream(user: User, station: Station) -> bool:
    """The person signed in at the station, or an administrator of its institution."""
    if station.institution_id in admin_institution_ids(user):
        return True
    return station.signed_in_user_id is not None and station.signed_in_user_id == user.pk


def _check_may_stream(actor: User, station: Station, action: str) -> None:
    if may_stream(actor, station):
        return
    audit.record(
        actor=actor, action=action, success=False, target=station, detail={"why": "may_not_stream"}
    )
    raise StationError(
        "may_not_stream",
        _("只有在该工作站登录的人员或其机构的系统管理员可以直播工作站画面"),
        status=403,
    )


def start_station_stream(*, actor: User, station: Station, invitees: list[User]) -> StationStream:
    """Ask the station to publish its view, and open a live session (invitees: who watches)."""
    # the refusal is audited outside the transaction, so it outlives the refusal
    _check_may_stream(actor, station, "station.stream_start")
    return _start(actor=actor, station=station, invitees=invitees)


@transaction.atomic
def _start(*, actor: User, station: Station, invitees: list[User]) -> StationStream:
    # one stream per station: the row lock orders two clicks at once
    station = Station.objects.select_for_update().get(pk=station.pk)
    if selectors.presence_of(station) == Station.Presence.OFFLINE:
        raise StationError("station_offline", _("工作站离线，无法直播画面"), status=409)
    if StationStream.objects.filter(
        station=station, state__in=StationStream.ACTIVE_STATES
    ).exists():
        raise StationError("already_streaming", _("该工作站的画面已在直播"), status=409)
    session = live_services.create_live_session(
        actor=actor,
        data=live_services.LiveSessionIn(
            title=_("工作站“%(name)s”实时画面") % {"name": station.name},
            room=station_room(station),
            streams=[STREAM_NAME],
            invitees=invitees,
        ),
    )
    stream = StationStream.objects.create(
        station=station,
        uid=uuid.uuid4().hex,
        room=station_room(station),
        stream=STREAM_NAME,
        quality=STREAM_QUALITY,
        live_session=session,
        started_by=actor,
    )
    audit.record(
        actor=actor,
        action="station.stream_start",
        target=stream,
        detail={"station": station.pk, "room": stream.room, "live_session": session.pk},
    )
    return stream


def stop_station_stream(*, actor: User, stream: StationStream) -> StationStream:
    """Ask the station to stop publishing; its ``stopped`` answer ends the row."""
    _check_may_stream(actor, stream.station, "station.stream_stop")
    return _stop(actor=actor, stream=stream)


@transaction.atomic
def _stop(*, actor: User, stream: StationStream) -> StationStream:
    stream = StationStream.objects.select_for_update().get(pk=stream.pk)
    if stream.state not in (StationStream.State.REQUESTED, StationStream.State.PUBLISHING):
        raise StationError("not_streaming", _("该工作站的画面没有在直播"), status=409)
    stream.state = StationStream.State.STOPPING
    stream.save(update_fields=["state", "updated_at"])
    audit.record(actor=actor, action="station.stream_stop", target=stream)
    _revoke_publishing(stream)
    return stream


def live_session_ended(*, actor: User, session: Any) -> list[StationStream]:
    """The live session ``session`` was ended: ask its station to stop publishing (the bridge
    pushes the stop; the station's ``stopped`` ends the row). Returns the streams stopped.

    Precondition: called inside the transaction that ends the session (`end_live_session`).
    """
    stopped = []
    rows = StationStream.objects.select_for_update().filter(
        live_session_id=session.pk,
        state__in=[StationStream.State.REQUESTED, StationStream.State.PUBLISHING],
    )
    for stream in rows:
        stream.state = StationStream.State.STOPPING
        stream.save(update_fields=["state", "updated_at"])
        audit.record(
            actor=actor,
            action="station.stream_stop",
            target=stream,
            detail={"why": "live_session_ended", "live_session": session.pk},
        )
        _revoke_publishing(stream)
        stopped.append(stream)
    return stopped


def _revoke_publishing(stream: StationStream) -> None:
    # after commit, like every side effect: a rolled-back stop must leave the stream on air
    message = {"kind": "revoke_publish", "room": stream.room, "stream": stream.stream}
    transaction.on_commit(lambda: send_control(message))


def fail_streams_of_offline_stations(
    *, station_id: int | None = None, now: datetime | None = None
) -> list[int]:
    """Mark failed every active stream whose station is offline (the bridge said so, or it has
    been silent for OSTEON_STATION_OFFLINE_AFTER_S): nothing publishes it any more. Audited,
    one entry per stream. ``station_id``: only that station's. Returns the streams' ids."""
    now = now or timezone.now()
    rows = StationStream.objects.filter(state__in=StationStream.ACTIVE_STATES)
    if station_id is not None:
        rows = rows.filter(station_id=station_id)
    failed = []
    for stream_id in rows.values_list("pk", flat=True):
        with transaction.atomic():
            stream = (
                StationStream.objects.select_for_update()
                .select_related("station")
                .filter(pk=stream_id, state__in=StationStream.ACTIVE_STATES)
                .first()
            )
            if stream is None:
                continue
            if selectors.presence_of(stream.station, now=now) != Station.Presence.OFFLINE:
                continue
            _set_state(stream, StationStream.State.FAILED, STATION_OFFLINE_ERROR)
            # a station cut off from the bridge (or revoked) may still reach the relay
            _revoke_publishing(stream)
            failed.append(stream.pk)
    return failed


# the reason a stream of a station that went offline ends with (kept as the station's own
# errors are: English, in the row's error field)
STATION_OFFLINE_ERROR = "the station went offline"


def _set_state(stream: StationStream, state: str, error: str, *, reported: str = "") -> None:
    # the row's new state, audited as the station's answer (or the shell's finding); `reported`:
    # what the station said, where the row says something else
    stream.state = state
    stream.error = error[:1000]
    stream.save(update_fields=["state", "error", "updated_at"])
    detail = {"station": stream.station_id, "state": state, "error": stream.error[:200]}
    if reported:
        detail["reported"] = reported[:200]
    audit.record(actor=None, action="station.stream_status", target=stream, detail=detail)


# what each answer may follow: a late "publishing" after a stop changes nothing
_NEXT_STATE = {
    "publishing": {StationStream.State.REQUESTED},
    "failed": set(StationStream.ACTIVE_STATES),
    "stopped": set(StationStream.ACTIVE_STATES),
}


@transaction.atomic
def record_stream_status(*, station_id: int, status: StreamStatus) -> None:
    """The station's answer to a stream command (from the bridge: hostile until checked)."""
    stream = (
        StationStream.objects.select_for_update()
        .filter(uid=status.stream_id, station_id=station_id)
        .first()
    )
    if stream is None:
        # another station's stream, or none: nothing changes, and it is on the record
        log.warning("station %s: status for unknown stream %r", station_id, status.stream_id)
        audit.record(
            actor=None,
            action="station.stream_status",
            success=False,
            detail={"station": station_id, "stream": status.stream_id[:64], "why": "unknown"},
        )
        return
    if stream.state not in _NEXT_STATE[status.state]:
        return
    if stream.state == StationStream.State.STOPPING and status.state == "failed":
        # the stop revoked publishing, so the relay may cut the station off (4403) before the
        # bridge's StopStream reaches it: the stop taking effect, not a failure
        _set_state(stream, StationStream.State.STOPPED, "", reported=status.error)
        return
    _set_state(stream, status.state, status.error)


def stream_commands(station_id: int) -> list[StartStream | StopStream]:
    """Stream commands the station has not answered: a start (with a fresh publish token)
    for a requested stream, a stop for one being stopped."""
    commands: list[StartStream | StopStream] = []
    rows = StationStream.objects.filter(
        station_id=station_id,
        state__in=[StationStream.State.REQUESTED, StationStream.State.STOPPING],
    ).order_by("pk")
    for row in rows:
        if row.state == StationStream.State.STOPPING:
            commands.append(StopStream(stream_id=row.uid))
            continue
        token = issue_publish_token(
            secret=relay_secret(),
            station_id=str(station_id),
            room=row.room,
            stream=row.stream,
            ttl_s=PUBLISH_TOKEN_TTL_S,
        )
        commands.append(
            StartStream(
                stream_id=row.uid,
                publish_url=f"{publish_base()}/publish/rooms/{row.room}/streams/{row.stream}"
                f"/{row.quality}",
                token=token,
                fps=STREAM_FPS,
                width=STREAM_SIZE[0],
                height=STREAM_SIZE[1],
            )
        )
    return commands


def publish_base() -> str:
    """Where stations reach the relay: the browsers' address (OSTEON_STREAM_RELAY_URL)."""
    base: str = settings.OSTEON_STREAM_RELAY_URL
    return base.rstrip("/")


def current_stream(station: Station) -> StationStream | None:
    """The station's latest stream (active or how the last one ended)."""
    return (
        StationStream.objects.filter(station=station)
        .select_related("live_session")
        .order_by("-created_at", "-pk")
        .first()
    )
