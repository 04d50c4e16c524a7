"""Property-based fuzzing of /api/v1 (Schemathesis, from the API's own OpenAPI document).

Every operation gets generated requests, valid by the schema (positive) and invalid (negative),
sent through the real WSGI application in-process with a signed-in session (cookie and CSRF
token, as a browser's script sends them). Whatever the input: no 500, every error is RFC 9457
problem details, and no answer names a server path. Bounded: a few examples per operation and
mode, no shrinking database, ~a minute on the shared machine.
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode
from shell_personas import Personas

import clinical_shell
from clinical_shell.records.models import Patient

SERVER_DIR = str(Path(clinical_shell.__file__).resolve().parent.parent)
EXAMPLES_PER_MODE = 4
CSRF_TOKEN = "f" * 32  # a well-formed token: the cookie and the header carry the same one


def _signed_in_cookies(user: User) -> dict[str, str]:
    client = Client()
    client.force_login(user, backend="clinical_shell.accounts.backends.LockoutModelBackend")
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF_TOKEN}


def _header(headers: Any, name: str) -> str:
    # schemathesis keeps headers as lists under lower-case names; a plain mapping is accepted
    for key, value in dict(headers).items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return ""


def _check(case: Any, response: Any, failures: list[str]) -> None:
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    text = response.text if hasattr(response, "text") else response.content.decode()
    if response.status_code >= 500:
        failures.append(f"{where}: server error {text[:200]}")
    if response.status_code >= 400:
        content_type = _header(response.headers, "content-type")
        if not content_type.startswith("application/problem+json"):
            failures.append(f"{where}: not problem details ({content_type}) {text[:120]}")
    if SERVER_DIR in text:
        failures.append(f"{where}: names a server path")


def _fuzz(strategy: Any, label: str, send: Callable[[Any], None], counted: dict[str, int]) -> None:
    """Send EXAMPLES_PER_MODE generated cases of one operation (no shrinking: a failure is
    reported as found, the run stays bounded)."""

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        counted[label] = counted.get(label, 0) + 1
        send(case)

    run()


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """The production WSGI handler, minus closing the connection after each request (which
    would close the test's transaction; Django's own test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_fuzzed_requests_get_no_500_and_every_error_is_problem_details(
    personas: Personas, patient_in_shuangbai: Patient, wsgi_app: WSGIHandler
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    cookies = _signed_in_cookies(personas.county_surgeon)
    headers = {"X-CSRFToken": CSRF_TOKEN, "Accept-Language": "en"}
    failures: list[str] = []
    counted: dict[str, int] = {}

    def send(case: Any) -> None:
        _check(case, case.call(headers=headers, cookies=cookies), failures)

    started = time.monotonic()
    # (an operation the schema cannot describe raises here, and fails the test)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 10, "the API's schema lost its operations"
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation.as_strategy(generation_mode=mode), operation.label, send, counted)
    elapsed_s = time.monotonic() - started
    assert failures == [], "\n".join(sorted(set(failures))[:40])
    # every operation was exercised
    assert set(counted) == {op.label for op in operations}
    print(
        f"fuzzed {sum(counted.values())} requests over {len(counted)} operations in "
        f"{elapsed_s:.0f} s"
    )


def test_the_fuzz_check_catches_what_it_must(db: None) -> None:
    # the check itself: an HTML 404 and a 500 are both caught
    class FakeCase:
        method = "GET"
        formatted_path = "/api/v1/x"

    class FakeResponse:
        def __init__(self, status: int, content_type: str, text: str) -> None:
            self.status_code, self.headers, self.text = status, {"Content-Type": content_type}, text

    failures: list[str] = []
    _check(FakeCase(), FakeResponse(404, "text/html", "<h1>Not Found</h1>"), failures)
    _check(FakeCase(), FakeResponse(500, "application/problem+json", "{}"), failures)
    _check(FakeCase(), FakeResponse(200, "application/json", f'"{SERVER_DIR}/x"'), failures)
    assert len(failures) == 3
