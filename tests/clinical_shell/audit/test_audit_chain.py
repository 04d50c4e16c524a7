"""The audit log is append-only and hash-chained; the chain check names the first broken link."""

import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError
from typer.testing import CliRunner

from clinical_shell.audit import services as audit
from clinical_shell.audit.models import GENESIS_HASH, AppendOnlyError, AuditEvent
from clinical_shell.audit.selectors import verify_chain
from clinical_shell.cli import app as shell_cli
from clinical_shell.network.models import Person


def _three_events() -> list[AuditEvent]:
    return [audit.record(actor=None, action=f"test.event{i}", detail={"i": i}) for i in range(3)]


def _disable_triggers() -> None:
    # only a database owner can do this; the test plays the insider who tampers with the log
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER audit_event_no_update")
            cursor.execute("DROP TRIGGER audit_event_no_delete")


def test_events_chain_each_to_the_previous_hash(db: None) -> None:
    first, second, third = _three_events()
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.entry_hash
    assert third.prev_hash == second.entry_hash
    assert verify_chain().intact


def test_an_event_records_who_what_patient_where_and_outcome(db: None) -> None:
    from clinical_shell.audit.context import RequestOrigin, _origin

    token = _origin.set(RequestOrigin(source_ip="10.53.23.7", user_agent="station/1"))
    try:
        event = audit.record(
            actor=None,
            action="patient.read",
            success=False,
            patient_id=42,
            reason="会诊 / consultation",
            username="someone",
        )
    finally:
        _origin.reset(token)
    event.refresh_from_db()
    assert (event.source_ip, event.user_agent) == ("10.53.23.7", "station/1")
    assert (event.action, event.outcome, event.patient_id) == ("patient.read", "failure", 42)
    assert event.actor_username == "someone" and event.reason.startswith("会诊")
    offset = event.occurred_at.utcoffset()
    assert offset is not None and offset.total_seconds() == 0


def test_the_model_refuses_update_and_delete(db: None) -> None:
    event = _three_events()[0]
    event.action = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()


def test_the_database_refuses_raw_update_and_delete(db: None) -> None:
    event = _three_events()[0]
    for sql in (
        "UPDATE audit_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action="test.event0").exists()


def test_the_chain_check_names_an_altered_event(db: None) -> None:
    events = _three_events()
    _disable_triggers()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET patient_id = 7 WHERE id = %s", [events[1].pk])
    report = verify_chain()
    assert not report.intact
    assert report.first_broken_id == events[1].pk
    assert "altered" in report.problem


def test_the_chain_check_names_the_successor_of_a_removed_event(db: None) -> None:
    events = _three_events()
    _disable_triggers()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    report = verify_chain()
    assert report.first_broken_id == events[2].pk
    assert "link broken" in report.problem


def test_verify_audit_command_reports_the_broken_link(db: None) -> None:
    events = _three_events()
    runner = CliRunner()
    ok = runner.invoke(shell_cli, ["verify-audit", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["intact"] is True
    _disable_triggers()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET reason = 'hidden' WHERE id = %s", [events[0].pk]
        )
    broken = runner.invoke(shell_cli, ["verify-audit", "--json"])
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["first_broken_id"] == events[0].pk


def test_audit_actor_is_the_signed_in_user(db: None) -> None:
    from clinical_shell.network import services as network

    person: Person = network.create_person(
        actor=None, username="u1", password="x" * 12, full_name="测试"
    )
    event = audit.record(actor=person.user, action="test.actor")
    assert (event.actor_user_id, event.actor_username) == (person.user.pk, "u1")


def test_flush_outside_tests_cannot_empty_the_audit_log(db: None, settings: Any) -> None:
    _three_events()
    settings.RUNNING_TESTS = False
    with pytest.raises(CommandError):
        call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.count() >= 3
