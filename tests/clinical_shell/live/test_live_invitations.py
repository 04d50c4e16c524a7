"""After a live session is created: inviting more people (they are notified), starting a scheduled
session, the sessions API, and the relay never told to record a real operation before the
patient's consent is recorded."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks
from shell_personas import Network, Personas, make_persona

from clinical_shell.audit.models import AuditEvent
from clinical_shell.live import invitations, services
from clinical_shell.live.models import LiveSession
from clinical_shell.network.models import Role
from clinical_shell.notifications.models import Notification
from clinical_shell.records.models import Patient

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], Client]


@pytest.fixture
def controls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The control messages the shell sends the relay (what the relay would act on)."""
    sent: list[dict[str, Any]] = []

    def record(message: dict[str, Any]) -> bool:
        sent.append(message)
        return True

    monkeypatch.setattr(invitations, "send_control", record)
    return sent


def _scheduled(personas: Personas, patient: Patient | None = None) -> LiveSession:
    return services.create_live_session(
        actor=personas.county_surgeon,
        data=services.LiveSessionIn(
            title="膝关节镜 半月板缝合",
            room="or-5",
            streams=["field", "arthroscope"],
            invitees=[personas.center_surgeon],
            patient=patient,
            scheduled_start=timezone.now() + timedelta(hours=2),
        ),
    )


def test_invitees_are_notified_when_invited_and_the_creator_invites_more_later(
    personas: Personas, shell_network: Network, signed_in_client: ClientFor
) -> None:
    session = _scheduled(personas)
    [told] = Notification.objects.filter(kind="live.invite")
    assert told.recipient == personas.center_surgeon
    assert told.url == f"/live/{session.pk}/" and "膝关节镜" in told.title_zh
    assert "invited" in told.title_en

    late = make_persona("li.center", "李医生", "attending", (shell_network.center, Role.SURGEON))
    creator = signed_in_client(personas.county_surgeon)
    page = creator.get(f"/live/{session.pk}/invitees/")
    assert page.status_code == 200 and 'id="live-invite-form"' in page.content.decode()
    # an unknown name: nobody is added, the page says which
    refused = creator.post(f"/live/{session.pk}/invitees/", {"invitees": "li.center, nobody.x"})
    assert refused.status_code == 422 and "nobody.x" in refused.content.decode()
    assert list(session.invitees.all()) == [personas.center_surgeon]
    added = creator.post(f"/live/{session.pk}/invitees/", {"invitees": "li.center, zhao.center"})
    assert added.status_code == 302
    assert set(session.invitees.all()) == {personas.center_surgeon, late}
    # only the newly invited is told (again nothing for the one already on the list)
    assert sorted(
        Notification.objects.filter(kind="live.invite").values_list("recipient", flat=True)
    ) == sorted([personas.center_surgeon.pk, late.pk])
    assert AuditEvent.objects.filter(
        action="live.invite", target_id=str(session.pk), detail__users=[late.pk]
    ).exists()
    assert signed_in_client(late).get(f"/live/{session.pk}/").status_code == 200

    # an invitee does not manage the list; an ended session takes nobody new
    expert = signed_in_client(personas.center_surgeon)
    assert expert.post(f"/live/{session.pk}/invitees/", {"invitees": "li.center"}).status_code == (
        403
    )
    services.end_live_session(actor=personas.county_surgeon, session=session)
    ended = creator.post(f"/live/{session.pk}/invitees/", {"invitees": "sun.yongren"})
    assert ended.status_code == 422 and "已经结束" in ended.content.decode()
    assert personas.outsider not in session.invitees.all()


def test_the_creator_starts_a_scheduled_session_and_the_relay_records_from_then(
    personas: Personas,
    signed_in_client: ClientFor,
    controls: list[dict[str, Any]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        session = _scheduled(personas)
    assert session.status == LiveSession.Status.SCHEDULED and controls == []
    listed = signed_in_client(personas.county_surgeon).get("/live/").content.decode()
    assert f'action="/live/{session.pk}/start/"' in listed
    # the invitee sees no start button and may not start it
    expert = signed_in_client(personas.center_surgeon)
    assert f'action="/live/{session.pk}/start/"' not in expert.get("/live/").content.decode()
    assert expert.post(f"/live/{session.pk}/start/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        started = signed_in_client(personas.county_surgeon).post(f"/live/{session.pk}/start/")
    assert started.status_code == 302
    session.refresh_from_db()
    assert session.status == LiveSession.Status.LIVE
    assert controls == [
        {
            "kind": "session_live",
            "room": "or-5",
            "session": str(session.pk),
            "streams": ["field", "arthroscope"],
        }
    ]
    assert Notification.objects.filter(
        kind="live.start", recipient=personas.center_surgeon
    ).exists()
    assert AuditEvent.objects.filter(action="live.start", target_id=str(session.pk)).exists()


def test_a_real_operation_is_not_recorded_before_the_patients_consent(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: ClientFor,
    controls: list[dict[str, Any]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # ad hoc (live at once) with a patient and no consent: the relay is not told to record
    with django_capture_on_commit_callbacks(execute=True):
        session = services.create_live_session(
            actor=personas.county_surgeon,
            data=services.LiveSessionIn(
                title="股骨颈骨折 空心钉",
                room="or-3",
                streams=["field"],
                invitees=[personas.center_surgeon],
                patient=patient_in_shuangbai,
            ),
        )
    assert session.status == LiveSession.Status.LIVE and controls == []
    # ... until the creator records the consent
    with django_capture_on_commit_callbacks(execute=True):
        services.record_consent(actor=personas.county_surgeon, session=session)
    assert [c["kind"] for c in controls] == ["session_live"]

    # a scheduled one is not started without consent either
    scheduled = _scheduled(personas, patient=patient_in_shuangbai)
    creator = signed_in_client(personas.county_surgeon)
    refused = creator.post(f"/api/v1/live/sessions/{scheduled.pk}/start")
    assert refused.status_code == 403 and refused.json()["code"] == "consent_missing"
    scheduled.refresh_from_db()
    assert scheduled.status == LiveSession.Status.SCHEDULED and len(controls) == 1


def test_the_sessions_api_creates_lists_invites_and_refuses_like_the_pages(
    personas: Personas,
    shell_network: Network,
    signed_in_client: ClientFor,
    patient_in_shuangbai: Patient,
) -> None:
    creator = signed_in_client(personas.county_surgeon)
    body = {
        "title": "腰椎椎弓根螺钉 远程指导",
        "room": "or-3",
        "streams": ["field", "fluoro"],
        "invitees": ["zhao.center"],
    }
    created = creator.post("/api/v1/live/sessions", body, content_type="application/json")
    assert created.status_code == 201, created.content
    out = created.json()
    assert out["status"] == "live" and out["invitees"] == ["zhao.center"]
    assert out["real_operation"] is False
    assert Notification.objects.filter(kind="live.invite", url=f"/live/{out['id']}/").exists()

    # every bad field at once, nothing stored
    bad = creator.post(
        "/api/v1/live/sessions",
        body | {"room": "或 3", "streams": ["a", "b", "c", "d", "e"], "invitees": ["nobody.x"]},
        content_type="application/json",
    )
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
    assert {e["loc"][1] for e in bad.json()["errors"]} == {"room", "streams", "invitees"}
    assert LiveSession.objects.count() == 1

    # a patient the outsider has no care relationship with: refused, audited, nothing stored
    outsider = signed_in_client(personas.outsider)
    forbidden = outsider.post(
        "/api/v1/live/sessions",
        body | {"patient_id": patient_in_shuangbai.pk, "consent_recorded": True},
        content_type="application/json",
    )
    assert forbidden.status_code == 403 and LiveSession.objects.count() == 1

    # the invitee lists it and reads it without the invitation list; the outsider does neither
    expert = signed_in_client(personas.center_surgeon)
    [listed] = expert.get("/api/v1/live/sessions").json()["items"]
    assert listed["id"] == out["id"] and listed["invitees"] is None
    assert expert.get(f"/api/v1/live/sessions/{out['id']}").json()["invitees"] is None
    assert outsider.get("/api/v1/live/sessions").json()["items"] == []
    assert outsider.get(f"/api/v1/live/sessions/{out['id']}").status_code == 403

    # the creator invites through the API; an invitee may not
    make_persona("li.center", "李医生", "attending", (shell_network.center, Role.SURGEON))
    invited = creator.post(
        f"/api/v1/live/sessions/{out['id']}/invitees",
        {"invitees": ["li.center"]},
        content_type="application/json",
    )
    assert invited.status_code == 200
    assert invited.json()["invitees"] == ["li.center", "zhao.center"]
    assert (
        expert.post(
            f"/api/v1/live/sessions/{out['id']}/invitees",
            {"invitees": ["zhao.center"]},
            content_type="application/json",
        ).status_code
        == 403
    )
