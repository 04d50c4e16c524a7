"""The audit log browser: filters, newest first, 50 a page, CSV export of the filtered rows;
only the center's administrators and quality office; reading the log is itself audited."""

import csv
import io
from collections.abc import Callable
from datetime import timedelta

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Personas

from clinical_shell.audit import services as audit
from clinical_shell.audit.models import AuditEvent
from clinical_shell.audit.selectors import verify_chain


def _seed(personas: Personas) -> None:
    for _ in range(60):
        audit.record(actor=personas.county_surgeon, action="patient.read", patient_id=4242)
    audit.record(actor=personas.outsider, action="patient.read", patient_id=7, success=False)
    audit.record(actor=personas.township_doctor, action="referral.create", patient_id=7)


def test_filters_newest_first_and_fifty_a_page(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    _seed(personas)
    client = signed_in_client(personas.admin)
    first = client.get("/administration/audit/", {"patient_id": "4242"})
    assert first.status_code == 200
    page = first.context["page"]
    assert page.paginator.count == 60 and len(page.object_list) == 50
    ids = [e.pk for e in page.object_list]
    assert ids == sorted(ids, reverse=True)
    # the first read is itself an event about that patient: 61 now, 11 on page 2
    second = client.get("/administration/audit/", {"patient_id": "4242", "page": "2"})
    assert len(second.context["page"].object_list) == 11
    assert "patient_id=4242" in first.content.decode()  # the pager keeps the filter
    failures = client.get("/administration/audit/", {"outcome": "failure", "action": "patient."})
    assert [e.actor_username for e in failures.context["page"]] == [personas.outsider.username]
    by_user = client.get("/administration/audit/", {"username": personas.township_doctor.username})
    assert [e.action for e in by_user.context["page"]] == ["referral.create"]
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    future = client.get("/administration/audit/", {"since": tomorrow, "action": "patient."})
    assert future.context["page"].paginator.count == 0
    today = timezone.localdate().isoformat()
    in_range = client.get(
        "/administration/audit/", {"since": today, "until": today, "patient_id": "7"}
    )
    assert in_range.context["page"].paginator.count == 2
    assert client.get("/administration/audit/", {"patient_id": "x"}).status_code == 422


def test_each_read_is_audited_with_its_filter(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.quality_manager)
    client.get("/administration/audit/", {"patient_id": "7", "outcome": "failure"})
    event = AuditEvent.objects.filter(action="audit.browse").get()
    assert event.actor_user_id == personas.quality_manager.pk
    assert event.detail == {"filter": {"patient_id": 7, "outcome": "failure"}}
    assert verify_chain().intact


def test_csv_export_streams_the_filtered_rows_and_is_audited(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    _seed(personas)
    response = signed_in_client(personas.admin).get(
        "/administration/audit/export.csv", {"patient_id": "7"}
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["action"] for r in rows] == ["referral.create", "patient.read"]
    assert {r["patient_id"] for r in rows} == {"7"}
    export = AuditEvent.objects.get(action="audit.export")
    assert export.detail == {"filter": {"patient_id": 7}} and export.patient_id == 7


def test_only_the_center_administrators_and_quality_office_may_read_the_log(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    for user in (personas.county_surgeon, personas.committee_member, personas.center_surgeon):
        client = signed_in_client(user)
        page = client.get("/administration/audit/")
        assert page.status_code == 403 and "审计日志" in page.content.decode()
        assert client.get("/administration/audit/export.csv").status_code == 403
        api = client.get("/api/v1/administration/audit")
        assert api.status_code == 403 and api.json()["code"] == "not_audit_reader"
    assert not AuditEvent.objects.filter(action__startswith="audit.").exists()
    assert Client().get("/administration/audit/").status_code == 302  # sign in first


def test_the_api_lists_the_log_newest_first(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    _seed(personas)
    response = signed_in_client(personas.admin).get(
        "/api/v1/administration/audit", {"patient_id": 7}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [e["action"] for e in body["items"]] == ["referral.create", "patient.read"]
    assert AuditEvent.objects.filter(action="audit.browse", patient_id=7).exists()
