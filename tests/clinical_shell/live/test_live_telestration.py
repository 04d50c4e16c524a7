"""Telestration: drawings over a live session's streams. The checks on hostile messages, who may
draw (asked again on every message), storage with the stream's media time and author, clearing
one's own, the live fan-out over the drawing socket (the ASGI application in-process, the
in-memory channel layer), and the replay data on the recordings page."""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from session_socket import SessionSocket, open_socket
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError
from clinical_shell.live import consumers, services
from clinical_shell.live.models import LiveAnnotation, LiveRecording, LiveSession

ARROW = {
    "type": "draw",
    "stream": "field",
    "shape": "arrow",
    "points": [[0.2, 0.3], [0.5, 0.55]],
    "color": "#ff3b30",
    "media_time": 12.345,
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"stream": "ceiling"}, "没有这个画面"),
        ({"stream": ["field"]}, "没有这个画面"),
        ({"shape": "polygon"}, "形状"),
        ({"color": "red; background:url(x)"}, "颜色"),
        ({"media_time": -1}, "画面时间"),
        ({"media_time": float("nan")}, "画面时间"),
        ({"media_time": True}, "画面时间"),
        ({"media_time": "12"}, "画面时间"),
        ({"points": [[0.2, 0.3]]}, "坐标点数"),
        ({"points": [[0.2, 0.3], [0.5, 0.5], [0.6, 0.6]]}, "坐标点数"),
        ({"shape": "freehand", "points": [[0.1, 0.1]] * 513}, "坐标点数"),
        ({"points": [[0.2, 0.3], [1.5, 0.5]]}, "归一化"),
        ({"points": [[0.2, 0.3], [-0.01, 0.5]]}, "归一化"),
        ({"points": [[0.2, 0.3], [0.5]]}, "两个数字"),
        ({"points": [[0.2, 0.3], [0.5, None]]}, "两个数字"),
        ({"points": [[0.2, 0.3], [False, 0.5]]}, "两个数字"),
        ({"points": [[0.2, 0.3], [float("inf"), 0.5]]}, "两个数字"),
        ({"points": "0.2,0.3"}, "坐标点数"),
        ({"author": 1}, "字段"),
    ],
)
def test_a_hostile_drawing_message_is_refused_with_the_reason(
    make_session: Callable[..., LiveSession], change: dict[str, Any], why: str
) -> None:
    session = make_session()
    with pytest.raises(DomainError) as refused:
        services.parse_annotation(session, {**ARROW, **change})
    assert refused.value.code == "bad_annotation"
    assert why in refused.value.message
    # the message missing a field
    without = dict(ARROW)
    del without["media_time"]
    with pytest.raises(DomainError):
        services.parse_annotation(session, without)


@pytest.mark.django_db
def test_a_drawing_is_stored_with_its_media_time_and_author_and_cleared_by_its_author_only(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = make_session()
    expert, creator = personas.center_surgeon, personas.county_surgeon
    data = services.parse_annotation(session, {**ARROW, "points": [[0.123456, 0.3], [0.5, 0.55]]})
    mine = services.add_annotation(actor=expert, session=session, data=data)
    theirs = services.add_annotation(actor=creator, session=session, data=data)
    mine.refresh_from_db()
    assert (mine.author, mine.stream, mine.shape, mine.media_time_s) == (
        expert,
        "field",
        "arrow",
        12.345,
    )
    assert mine.points == [[0.1235, 0.3], [0.5, 0.55]]
    assert AuditEvent.objects.filter(
        action="live.draw", actor_user_id=expert.pk, detail__annotation=mine.pk
    ).exists()
    # clearing takes the author's own drawings away, never another's
    assert services.clear_annotations(actor=expert, session=session) == [mine.pk]
    assert services.clear_annotations(actor=expert, session=session) == []
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.cleared_at is not None and theirs.cleared_at is None
    assert AuditEvent.objects.filter(action="live.draw_clear", actor_user_id=expert.pk).count() == 1


async def joined(session: LiveSession, user: User | None) -> SessionSocket:
    return await open_socket(f"/ws/live/sessions/{session.pk}/draw/", user)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_drawing_reaches_every_viewer_and_an_outsider_is_shut_out(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = await sync_to_async(make_session)()
    expert = await joined(session, personas.center_surgeon)
    creator = await joined(session, personas.county_surgeon)
    assert await expert.next() == {"type": "snapshot", "annotations": []}
    assert await creator.next() == {"type": "snapshot", "annotations": []}
    await expert.send_text(json.dumps(ARROW))
    for socket in (expert, creator):
        frame = await socket.next()
        assert frame["type"] == "drawn"
        drawn = frame["annotation"]
        assert (drawn["stream"], drawn["shape"], drawn["points"]) == (
            "field",
            "arrow",
            ARROW["points"],
        )
        assert (drawn["media_time"], drawn["author"]) == (12.345, personas.center_surgeon.pk)
    # a hostile message goes back to its sender only, and nothing is stored
    await expert.send_text(json.dumps({**ARROW, "points": [[0, 0], [9, 9]]}))
    error = await expert.next()
    assert (error["type"], error["code"]) == ("error", "bad_annotation")
    await expert.send_text("{not json")
    assert (await expert.next())["code"] == "bad_frame"
    await expert.send_text("x" * (consumers.MAX_FRAME_BYTES + 1))
    assert (await expert.next())["code"] == "bad_frame"
    assert await creator.receive_nothing(timeout=0.3)
    assert await sync_to_async(LiveAnnotation.objects.count)() == 1
    # a late joiner gets what is shown
    late = await joined(session, personas.county_surgeon)
    snapshot = await late.next()
    assert [a["id"] for a in snapshot["annotations"]] == [drawn["id"]]
    # clearing: every viewer hears which drawings went
    await expert.send_text(json.dumps({"type": "clear"}))
    for socket in (expert, creator, late):
        assert await socket.next() == {
            "type": "cleared",
            "author": personas.center_surgeon.pk,
            "ids": [drawn["id"]],
        }
    # someone not invited is closed before they can send anything, the refusal audited
    outsider = await joined(session, personas.outsider)
    assert await outsider.next() == {"closed": consumers.CLOSE_FORBIDDEN}
    assert await sync_to_async(
        AuditEvent.objects.filter(
            action="live.watch", outcome="failure", actor_user_id=personas.outsider.pk
        ).exists
    )()
    anonymous = await joined(session, None)
    assert await anonymous.next() == {"closed": consumers.CLOSE_NOT_SIGNED_IN}
    for socket in (expert, creator, late):
        await socket.close_socket()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_invitee_removed_while_connected_can_draw_no_more(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = await sync_to_async(make_session)()
    expert = await joined(session, personas.center_surgeon)
    creator = await joined(session, personas.county_surgeon)
    await expert.next()
    await creator.next()
    # access checked on every message: taken off the list behind the socket's back (no notice)
    await sync_to_async(session.invitees.remove)(personas.center_surgeon)
    await expert.send_text(json.dumps(ARROW))
    assert await expert.next() == {"closed": consumers.CLOSE_FORBIDDEN}
    assert await creator.receive_nothing(timeout=0.3)
    assert not await sync_to_async(LiveAnnotation.objects.exists)()
    # the creator removes someone through the service: their socket closes at once
    await sync_to_async(session.invitees.add)(personas.radiologist)
    other = await joined(session, personas.radiologist)
    await other.next()
    await sync_to_async(services.remove_invitee)(
        actor=personas.county_surgeon, session=session, user_id=personas.radiologist.pk
    )
    assert await other.next() == {"closed": consumers.CLOSE_FORBIDDEN}
    # ending the session closes everybody's
    await sync_to_async(services.end_live_session)(actor=personas.county_surgeon, session=session)
    assert await creator.next() == {"closed": consumers.CLOSE_FORBIDDEN}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_drawing_is_rate_limited(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = await sync_to_async(make_session)()
    expert = await joined(session, personas.center_surgeon)
    await expert.next()
    frames = []
    for _ in range(consumers.RATE_BURST + 5):
        await expert.send_text(json.dumps(ARROW))
    for _ in range(consumers.RATE_BURST + 5):
        frames.append(await expert.next())
    limited = [f for f in frames if f.get("code") == "rate_limited"]
    assert 1 <= len(limited) <= 6
    stored = await sync_to_async(LiveAnnotation.objects.count)()
    assert stored == len(frames) - len(limited)
    await expert.close_socket()


@pytest.mark.django_db
def test_the_recordings_page_carries_the_drawings_at_their_time_in_each_file(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = make_session()
    now = timezone.now()
    # the field camera's file starts 30 s into the encoder's timeline and runs 20 s
    recording = LiveRecording.objects.create(
        session=session,
        stream="field",
        path=f"or-3/{session.pk}/field-x.mp4",
        started_at=now - timedelta(seconds=25),
        media_start_s=30.0,
        duration_s=20.0,
        size_bytes=1000,
    )

    def draw(stream: str, media_time: float) -> LiveAnnotation:
        data = services.parse_annotation(
            session, {**ARROW, "stream": stream, "media_time": media_time}
        )
        return services.add_annotation(actor=personas.center_surgeon, session=session, data=data)

    inside = draw("field", 42.5)
    draw("endoscope", 42.5)  # another stream
    draw("field", 55.0)  # after the file ends
    services.clear_annotations(actor=personas.center_surgeon, session=session)
    client = Client()
    client.force_login(personas.center_surgeon)
    html = client.get(f"/live/{session.pk}/recordings/").content.decode()
    start = html.index('<script id="live-replay-data" type="application/json">')
    data = json.loads(html[start:].split(">", 1)[1].split("</script>", 1)[0])
    (shown,) = data[str(recording.pk)]
    assert (shown["id"], shown["at"]) == (inside.pk, 12.5)
    # cleared: the replay hides it as long after as the author cleared it
    assert shown["shown_s"] is not None and shown["shown_s"] >= 0
