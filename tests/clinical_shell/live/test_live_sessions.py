"""Live sessions in the pages: creating one (every error at once), my sessions, the watch page
for the creator and invitees only, and the patient's consent before a real operation is shown."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.live.models import LiveSession
from clinical_shell.records.models import Patient

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], Client]


def _form(**overrides: str) -> dict[str, str]:
    return {
        "title": "右髋股骨颈骨折 空心钉内固定",
        "room": "or-3",
        "streams": "field, endoscope",
        "invitees": "zhao.center",
        "patient": "",
        "scheduled_start": "",
    } | overrides


def test_it_creates_an_ad_hoc_session_inviting_an_expert(
    personas: Personas, signed_in_client: ClientFor
) -> None:
    client = signed_in_client(personas.county_surgeon)
    response = client.post("/live/new/", _form())
    assert response.status_code == 302
    session = LiveSession.objects.get()
    assert session.streams == ["field", "endoscope"]
    assert session.status == LiveSession.Status.LIVE
    assert list(session.invitees.all()) == [personas.center_surgeon]
    assert AuditEvent.objects.filter(action="live.create", target_id=str(session.pk)).exists()
    # both see it in their list
    for user in (personas.county_surgeon, personas.center_surgeon):
        page = signed_in_client(user).get("/live/")
        assert f'data-session-id="{session.pk}"' in page.content.decode()
    assert (
        "data-session-id" not in signed_in_client(personas.outsider).get("/live/").content.decode()
    )


def test_it_shows_every_error_of_the_new_session_form_at_once(
    personas: Personas, signed_in_client: ClientFor, patient_in_shuangbai: Patient
) -> None:
    # the outsider has no care relationship with the patient
    client = signed_in_client(personas.outsider)
    response = client.post(
        "/live/new/",
        _form(
            title="",
            room="或 3",
            streams="field, 内镜",
            invitees="zhao.center, nobody.here",
            patient=str(patient_in_shuangbai.pk),
            scheduled_start="2020-01-01T08:00",
        ),
    )
    assert response.status_code == 422
    html = response.content.decode()
    for field in ("title", "room", "streams", "invitees", "patient", "scheduled_start"):
        assert f'id="id_{field}-errors"' in html, field
    assert "nobody.here" in html
    assert "内镜" in html
    assert not LiveSession.objects.exists()
    # the refused patient read is in the audit log
    assert AuditEvent.objects.filter(
        action="patient.read", outcome="failure", patient_id=patient_in_shuangbai.pk
    ).exists()


def test_the_creator_and_invitees_open_the_watch_page(
    personas: Personas, signed_in_client: ClientFor, make_session: Callable[..., LiveSession]
) -> None:
    session = make_session()
    for user in (personas.county_surgeon, personas.center_surgeon):
        response = signed_in_client(user).get(f"/live/{session.pk}/")
        assert response.status_code == 200
        html = response.content.decode()
        assert 'data-stream="field"' in html and 'data-stream="endoscope"' in html
        assert "live/watch.js" in html
        # the page asks the API for a token; it never carries the secret
        assert f"/api/v1/live/sessions/{session.pk}/token" in html
        assert "live-test-relay-secret" not in html


def test_an_uninvited_user_gets_the_refusal_page_and_the_refusal_is_audited(
    personas: Personas, signed_in_client: ClientFor, make_session: Callable[..., LiveSession]
) -> None:
    session = make_session()
    response = signed_in_client(personas.outsider).get(f"/live/{session.pk}/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "您不在这场直播的邀请名单中" in html
    assert "watch.js" not in html
    assert AuditEvent.objects.filter(
        action="live.watch",
        outcome="failure",
        actor_user_id=personas.outsider.pk,
        target_id=str(session.pk),
        detail__why="not_invited",
    ).exists()


def test_a_real_operation_without_consent_cannot_be_watched_until_the_creator_records_it(
    personas: Personas,
    signed_in_client: ClientFor,
    make_session: Callable[..., LiveSession],
    patient_in_shuangbai: Patient,
) -> None:
    session = make_session(patient=patient_in_shuangbai)
    expert = signed_in_client(personas.center_surgeon)
    response = expert.get(f"/live/{session.pk}/")
    assert response.status_code == 403
    assert "尚未记录患者的知情同意" in response.content.decode()
    assert AuditEvent.objects.filter(
        action="live.watch", outcome="failure", detail__why="consent_missing"
    ).exists()
    # only the creator records consent
    assert expert.post(f"/live/{session.pk}/consent/").status_code == 403
    creator = signed_in_client(personas.county_surgeon)
    assert creator.post(f"/live/{session.pk}/consent/").status_code == 302
    session.refresh_from_db()
    assert session.consent_recorded and session.consent_recorded_by == personas.county_surgeon
    assert AuditEvent.objects.filter(
        action="live.consent", patient_id=patient_in_shuangbai.pk
    ).exists()
    assert expert.get(f"/live/{session.pk}/").status_code == 200


def test_an_ended_session_is_not_watched(
    personas: Personas, signed_in_client: ClientFor, make_session: Callable[..., LiveSession]
) -> None:
    session = make_session()
    LiveSession.objects.filter(pk=session.pk).update(status=LiveSession.Status.ENDED)
    response = signed_in_client(personas.center_surgeon).get(f"/live/{session.pk}/")
    assert response.status_code == 409
    assert "这场直播已经结束" in response.content.decode()
