"""Idle timeout: the last-seen time is written at most once a step, and still ends the session."""

import time

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from shell_personas import Personas

from clinical_shell.accounts.middleware import LAST_SEEN_KEY, LAST_SEEN_WRITE_STEP_SECONDS


def _stored_last_seen(client: Client) -> float:
    """The last-seen time as the database holds it (not the client's copy of the session)."""
    session = Session.objects.get(session_key=client.session.session_key)
    return float(session.get_decoded()[LAST_SEEN_KEY])


def _set_last_seen(client: Client, seconds_ago: float) -> None:
    session = client.session
    session[LAST_SEEN_KEY] = time.time() - seconds_ago
    session.save()


def _session_writes(queries: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in queries.captured_queries
        if "django_session" in q["sql"] and not q["sql"].lstrip().upper().startswith("SELECT")
    ]


def test_a_second_request_within_the_step_does_not_write_the_session(
    personas: Personas,
) -> None:
    client = Client()
    client.force_login(
        personas.county_surgeon, backend="clinical_shell.accounts.backends.LockoutModelBackend"
    )
    assert client.get("/patients/").status_code == 200  # first request: last seen written
    first = _stored_last_seen(client)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/patients/").status_code == 200
    assert _session_writes(queries) == []
    assert _stored_last_seen(client) == first


def test_the_last_seen_time_is_written_again_once_it_moved_by_more_than_the_step(
    personas: Personas,
) -> None:
    client = Client()
    client.force_login(
        personas.county_surgeon, backend="clinical_shell.accounts.backends.LockoutModelBackend"
    )
    _set_last_seen(client, LAST_SEEN_WRITE_STEP_SECONDS + 5)
    before = time.time()
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/patients/").status_code == 200
    assert len(_session_writes(queries)) == 1
    assert _stored_last_seen(client) >= before


def test_the_idle_timeout_still_signs_out_and_a_session_just_inside_it_stays(
    personas: Personas,
) -> None:
    timeout = settings.OSTEON_IDLE_TIMEOUT_SECONDS
    client = Client()
    client.force_login(
        personas.county_surgeon, backend="clinical_shell.accounts.backends.LockoutModelBackend"
    )
    _set_last_seen(client, timeout - 30)  # idle, but not long enough
    assert client.get("/patients/").status_code == 200
    _set_last_seen(client, timeout + 1)
    response = client.get("/patients/")
    assert response.status_code == 302 and "/accounts/sign-in/" in response["Location"]
    # signed out for good: the next request is not let in either
    again = client.get("/patients/")
    assert again.status_code == 302 and "/accounts/sign-in/" in again["Location"]
