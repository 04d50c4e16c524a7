"""The audit chain is keyed (HMAC) and anchored by signed checkpoints outside the database:
an insider who can write the database can neither rewrite a row nor cut the tail unnoticed."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from typer.testing import CliRunner

from clinical_shell.audit import services as audit
from clinical_shell.audit.checkpoints import (
    checkpoint_path,
    verify_checkpoints,
    write_checkpoint,
)
from clinical_shell.audit.models import GENESIS_HASH, AuditEvent
from clinical_shell.audit.selectors import verify_chain
from clinical_shell.audit.triggers import triggers_set_aside
from clinical_shell.cli import app as shell_cli


@pytest.fixture
def checkpoint_dir(tmp_path: Path, settings: Any) -> Path:
    settings.OSTEON_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return Path(settings.OSTEON_AUDIT_CHECKPOINT_DIR)


def _events(n: int) -> list[AuditEvent]:
    return [audit.record(actor=None, action=f"test.event{i}", detail={"i": i}) for i in range(n)]


def _unkeyed(event: AuditEvent) -> str:
    return event.legacy_hash()


def _rewrite(event_id: int, **changes: Any) -> None:
    """The insider: triggers off, the row changed, its hash and its successors' recomputed
    the only way possible without the audit key (plain SHA-256, as the chain was before)."""
    with triggers_set_aside(connection), connection.cursor() as cursor:
        for field, value in changes.items():
            cursor.execute(
                f"UPDATE audit_auditevent SET {field} = %s WHERE id = %s", [value, event_id]
            )
        prev = GENESIS_HASH
        for event in AuditEvent.objects.order_by("id"):
            event.prev_hash = prev
            digest = _unkeyed(event)
            cursor.execute(
                "UPDATE audit_auditevent SET prev_hash = %s, entry_hash = %s WHERE id = %s",
                [prev, digest, event.id],
            )
            prev = digest


def test_the_chain_is_keyed_not_a_plain_sha256(db: None, settings: Any) -> None:
    event = _events(1)[0]
    assert event.entry_hash != _unkeyed(event)
    assert verify_chain().intact
    settings.OSTEON_AUDIT_KEY = "a-different-key-the-attacker-guessed"
    assert not verify_chain().intact


def test_a_rewritten_row_with_recomputed_unkeyed_hashes_is_detected(db: None) -> None:
    events = _events(4)
    _rewrite(events[1].id, reason="nothing to see", patient_id=None)
    report = verify_chain()
    assert not report.intact
    # the very first row already fails: the rewriter could not produce keyed hashes
    assert report.first_broken_id == events[0].id
    assert "altered" in report.problem


def test_truncating_history_after_a_checkpoint_is_detected(db: None, checkpoint_dir: Path) -> None:
    events = _events(5)
    checkpoint = write_checkpoint()
    assert checkpoint is not None and checkpoint.last_id == events[-1].id
    assert verify_checkpoints().intact
    with triggers_set_aside(connection), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditevent WHERE id >= %s", [events[3].id])
    # the chain alone cannot see a removed tail ...
    assert verify_chain().intact
    # ... the signed checkpoint outside the database can
    report = verify_checkpoints()
    assert not report.intact and report.bad_seq == 1
    assert "missing" in report.problem
    result = CliRunner().invoke(shell_cli, ["verify-audit", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["checkpoint_failed"] == 1


def test_a_forged_or_removed_checkpoint_line_is_detected(db: None, checkpoint_dir: Path) -> None:
    _events(2)
    write_checkpoint()
    _events(2)
    write_checkpoint()
    _events(1)
    write_checkpoint()
    assert verify_checkpoints().checkpoints_checked == 3
    path = checkpoint_path()
    lines = path.read_text().splitlines()
    # a forged count without the signing key
    forged = json.loads(lines[1])
    forged["body"]["events"] += 1
    path.write_text("\n".join([lines[0], json.dumps(forged), lines[2]]) + "\n")
    assert "signature" in verify_checkpoints().problem
    # a checkpoint dropped from the middle
    path.write_text("\n".join([lines[0], lines[2]]) + "\n")
    report = verify_checkpoints()
    assert not report.intact and "missing or out of order" in report.problem


def test_no_new_events_no_new_checkpoint(db: None, checkpoint_dir: Path) -> None:
    assert write_checkpoint() is None  # empty log
    _events(1)
    assert write_checkpoint() is not None
    assert write_checkpoint() is None
    assert len(checkpoint_path().read_text().splitlines()) == 1


def test_rekey_moves_an_unkeyed_chain_onto_the_key_once(db: None, checkpoint_dir: Path) -> None:
    events = _events(3)
    _rewrite(events[0].id)  # no change of content: the chain as written before the key
    assert not verify_chain().intact
    call_command("rekey_audit")
    assert verify_chain().intact
    assert verify_checkpoints().checkpoints_checked == 1
    call_command("rekey_audit")  # a second run changes nothing
    assert verify_checkpoints().checkpoints_checked == 1


def test_rekey_refuses_to_launder_a_broken_unkeyed_chain(db: None, checkpoint_dir: Path) -> None:
    events = _events(3)
    _rewrite(events[0].id)
    with triggers_set_aside(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET reason = 'x' WHERE id = %s", [events[1].id])
    with pytest.raises(CommandError, match="broken"):
        call_command("rekey_audit")
    assert not verify_chain().intact


def test_checkpoint_signature_uses_the_configured_ed25519_key(
    db: None, checkpoint_dir: Path, settings: Any
) -> None:
    _events(1)
    write_checkpoint()
    settings.OSTEON_AUDIT_SIGNING_KEY = hashlib.sha256(b"another").hexdigest()
    assert "signature" in verify_checkpoints().problem
