"""Every error under /api/ is RFC 9457 problem details, with no server internals in it."""

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from shell_personas import Network, Personas

import clinical_shell
from clinical_shell.records.models import Patient

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
# where the server's code lies: never to appear in an answer
SERVER_DIR = str(Path(clinical_shell.__file__).resolve().parent.parent)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(response.content)
    assert body.keys() >= PROBLEM_KEYS and body["status"] == status
    text = response.content.decode()
    # no server paths, no tracebacks
    assert str(SERVER_DIR) not in text and "Traceback" not in text
    return body


def _patient_body(shell_network: Network, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "institution_id": shell_network.tuodian.pk,
        "name": "李四",
        "sex": "M",
        "birth_date": date(1970, 1, 2).isoformat(),
    }
    body.update(changes)
    return body


def test_an_unknown_api_path_is_a_404_problem(db: None) -> None:
    body = assert_problem(Client().get("/api/v1/no-such-thing"), 404)
    assert body["code"] == "http_404"


def test_an_unsupported_method_is_a_405_problem_that_says_what_is_allowed(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    response = signed_in_client(personas.county_surgeon).delete("/api/v1/patients")
    assert_problem(response, 405)
    assert "GET" in response["Allow"]


@pytest.mark.parametrize("patient_id", ["999999", "99999999999999999999999"])
def test_an_unknown_or_out_of_range_id_is_a_404_problem(
    personas: Personas, signed_in_client: Callable[[User], Client], patient_id: str
) -> None:
    response = signed_in_client(personas.county_surgeon).get(f"/api/v1/patients/{patient_id}")
    # beyond the database's integer range: SQLite's driver overflows (no such row, 404),
    # PostgreSQL refuses the value (422); either way a problem, never a 500
    assert_problem(response, 404 if len(patient_id) < 19 or connection.vendor == "sqlite" else 422)


def test_a_5000_character_address_is_refused_with_422_and_nothing_is_stored(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.township_doctor)
    response = client.post(
        "/api/v1/patients",
        _patient_body(shell_network, address="楚" * 5000),
        content_type="application/json",
    )
    body = assert_problem(response, 422)
    assert any("address" in error["loc"] for error in body["errors"])
    assert not Patient.objects.exists()
    # the same body with an address that fits goes in: the limit is the only reason
    ok = client.post(
        "/api/v1/patients",
        _patient_body(shell_network, address="楚" * 200),
        content_type="application/json",
    )
    assert ok.status_code == 201, ok.content


def test_a_choice_outside_the_model_choices_is_a_422_problem(
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    shell_network: Network,
    patient_in_shuangbai: Patient,
) -> None:
    response = signed_in_client(personas.county_surgeon).post(
        f"/api/v1/patients/{patient_in_shuangbai.pk}/encounters",
        {
            "institution_id": shell_network.shuangbai.pk,
            "kind": "x" * 40,
            "started_at": "2026-01-02T03:04:05Z",
            "chief_complaint": "跌倒",
        },
        content_type="application/json",
    )
    body = assert_problem(response, 422)
    assert any("kind" in error["loc"] for error in body["errors"])


def test_a_csrf_failure_on_a_session_request_is_a_403_problem(
    shell_network: Network, personas: Personas
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        personas.township_doctor, backend="clinical_shell.accounts.backends.LockoutModelBackend"
    )
    response = client.post(
        "/api/v1/patients", _patient_body(shell_network), content_type="application/json"
    )
    assert_problem(response, 403)
    assert not Patient.objects.exists()


def test_an_oversized_json_body_is_a_problem_not_a_server_error(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    body = _patient_body(shell_network, notes="x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10))
    response = signed_in_client(personas.township_doctor).post(
        "/api/v1/patients", body, content_type="application/json"
    )
    assert_problem(response, 413)


def test_an_unexpected_error_is_a_500_problem_without_internals(
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clinical_shell.records import selectors

    def broken(**_: Any) -> Any:
        raise RuntimeError(f"boom in {SERVER_DIR}/secret.py")

    monkeypatch.setattr(selectors, "search_patients", broken)
    body = assert_problem(signed_in_client(personas.county_surgeon).get("/api/v1/patients"), 500)
    assert "boom" not in json.dumps(body)


@pytest.mark.parametrize("patient_id", ["999999", "99999999999999999999999"])
def test_a_page_outside_the_api_keeps_its_html_404(
    personas: Personas, signed_in_client: Callable[[User], Client], patient_id: str
) -> None:
    response = signed_in_client(personas.county_surgeon).get(f"/patients/{patient_id}/")
    # as in the API: beyond the integer range, 404 on SQLite, 422 on PostgreSQL; never a 500
    assert response.status_code == (
        404 if len(patient_id) < 19 or connection.vendor == "sqlite" else 422
    )
    assert response["Content-Type"].startswith("text/html")


def test_a_throttled_api_request_is_a_429_problem_with_retry_after(
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ninja.errors import Throttled

    from clinical_shell.records import selectors

    def throttled(**_: Any) -> Any:
        raise Throttled(wait=30)

    monkeypatch.setattr(selectors, "search_patients", throttled)
    response = signed_in_client(personas.county_surgeon).get("/api/v1/patients")
    assert_problem(response, 429)
    assert response["Retry-After"] == "30"
