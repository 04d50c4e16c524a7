"""POST /api/v1/live/sessions/{id}/token: a relay token for the session's room, for its creator
and invitees only; problem details for everyone else."""

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from live_relay import RELAY_SECRET, RELAY_URL
from pytest_django.fixtures import Settings
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.live.models import LiveSession
from clinical_shell.records.models import Patient
from streaming.tokens import CLOSE_FORBIDDEN, TokenError, verify_token

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], Client]


def _token_url(session: LiveSession | int) -> str:
    return f"/api/v1/live/sessions/{getattr(session, 'pk', session)}/token"


def test_an_invitee_gets_a_token_the_relay_accepts_for_that_room_only(
    personas: Personas, signed_in_client: ClientFor, make_session: Callable[..., LiveSession]
) -> None:
    session = make_session(room="or-3")
    response = signed_in_client(personas.center_surgeon).post(_token_url(session))
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "url", "expires_at"}
    assert body["url"] == f"{RELAY_URL}/rooms/or-3"
    grant = verify_token(secret=RELAY_SECRET.encode(), token=body["token"], room="or-3")
    assert grant.user_id == str(personas.center_surgeon.pk)
    expires = datetime.fromisoformat(body["expires_at"]).timestamp()
    assert grant.expires_at_s == expires
    assert 0 < expires - time.time() <= 60
    with pytest.raises(TokenError) as refused:
        verify_token(secret=RELAY_SECRET.encode(), token=body["token"], room="or-4")
    assert refused.value.close_code == CLOSE_FORBIDDEN
    assert AuditEvent.objects.filter(
        action="live.join",
        outcome="success",
        actor_user_id=personas.center_surgeon.pk,
        target_id=str(session.pk),
    ).exists()


def test_an_uninvited_user_gets_problem_details_and_no_token(
    personas: Personas, signed_in_client: ClientFor, make_session: Callable[..., LiveSession]
) -> None:
    session = make_session()
    response = signed_in_client(personas.outsider).post(_token_url(session))
    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "not_invited"
    assert "token" not in body
    assert not AuditEvent.objects.filter(action="live.join").exists()
    assert AuditEvent.objects.filter(
        action="live.watch", outcome="failure", actor_user_id=personas.outsider.pk
    ).exists()


def test_no_token_for_a_real_operation_without_consent(
    personas: Personas,
    signed_in_client: ClientFor,
    make_session: Callable[..., LiveSession],
    patient_in_shuangbai: Patient,
) -> None:
    session = make_session(patient=patient_in_shuangbai)
    response = signed_in_client(personas.center_surgeon).post(_token_url(session))
    assert response.status_code == 403
    assert response.json()["code"] == "consent_missing"
    with_consent = make_session(patient=patient_in_shuangbai, consent=True)
    assert (
        signed_in_client(personas.center_surgeon).post(_token_url(with_consent)).status_code == 200
    )


def test_token_problems_for_no_session_and_no_sign_in(
    personas: Personas, signed_in_client: ClientFor, make_session: Callable[..., LiveSession]
) -> None:
    missing = signed_in_client(personas.center_surgeon).post(_token_url(999999))
    assert missing.status_code == 404
    assert missing.json()["code"] == "live_session_not_found"
    anonymous = Client().post(_token_url(make_session()))
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"


def test_the_secret_comes_from_a_file_created_on_first_use(
    personas: Personas,
    signed_in_client: ClientFor,
    make_session: Callable[..., LiveSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "stream_relay_secret"
    settings.OSTEON_STREAM_RELAY_SECRET = None
    settings.OSTEON_STREAM_RELAY_SECRET_PATH = path
    session = make_session()
    body = signed_in_client(personas.center_surgeon).post(_token_url(session)).json()
    assert path.stat().st_mode & 0o777 == 0o600
    verify_token(secret=path.read_bytes().strip(), token=body["token"], room=session.room)
    # the same secret the next time
    again = signed_in_client(personas.center_surgeon).post(_token_url(session)).json()
    verify_token(secret=path.read_bytes().strip(), token=again["token"], room=session.room)
