"""Signed checkpoints of the audit chain, kept outside the database.

The keyed chain (models.py) shows that no row was changed or removed from its middle, but a
removed tail leaves a shorter chain that is still intact. A checkpoint records, at one moment,
the last event's id and hash and how many events there were, signed with an Ed25519 key
(OSTEON_AUDIT_SIGNING_KEY) and appended to a file under OSTEON_AUDIT_CHECKPOINT_DIR. A later
check then finds any event a checkpoint named missing or changed. Each checkpoint also names its
predecessor (sequence number and signature digest), so a checkpoint line removed from the
middle of the file is found too. What happens after the last checkpoint is covered only once the
next one is written (the periodic task in tasks.py): that interval is the window of loss.

Put the folder on storage the database's owner cannot rewrite (another host, append-only or
WORM mount): the file is opened for appending only, never rewritten, by this code.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from clinical_shell.audit.models import AuditEvent

CHECKPOINT_FILE = "checkpoints.jsonl"


def _signing_key() -> SigningKey:
    seed = str(getattr(settings, "OSTEON_AUDIT_SIGNING_KEY", ""))
    try:
        return SigningKey(bytes.fromhex(seed))
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "OSTEON_AUDIT_SIGNING_KEY 须为 64 位十六进制 / must be a 64-hex-digit Ed25519 seed "
            "(docs/security.md, Secrets)"
        ) from exc


def _verify_key() -> VerifyKey:
    # a checking host may hold the public key only (OSTEON_AUDIT_VERIFY_KEY, hex)
    public = getattr(settings, "OSTEON_AUDIT_VERIFY_KEY", "")
    if public:
        return VerifyKey(bytes.fromhex(str(public)))
    return _signing_key().verify_key


def checkpoint_path(directory: Path | None = None) -> Path:
    return Path(directory or settings.OSTEON_AUDIT_CHECKPOINT_DIR) / CHECKPOINT_FILE


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    last_id: int
    entry_hash: str
    events: int
    written_at: str
    signature: str


def read_checkpoints(directory: Path | None = None) -> list[dict[str, Any]]:
    path = checkpoint_path(directory)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def write_checkpoint(directory: Path | None = None) -> Checkpoint | None:
    """Append a signed checkpoint of the chain's head; None when nothing was added since."""
    head = AuditEvent.objects.order_by("-id").values("id", "entry_hash").first()
    if head is None:
        return None
    previous = read_checkpoints(directory)
    last = previous[-1] if previous else None
    if last is not None and last["body"]["last_id"] == head["id"]:
        return None
    body: dict[str, Any] = {
        "seq": (last["body"]["seq"] + 1) if last else 1,
        "last_id": head["id"],
        "entry_hash": head["entry_hash"],
        "events": AuditEvent.objects.filter(id__lte=head["id"]).count(),
        "written_at": timezone.now().isoformat(timespec="seconds"),
        "prev_sig_sha256": (hashlib.sha256(last["sig"].encode()).hexdigest() if last else "0" * 64),
    }
    signature = _signing_key().sign(_canonical(body)).signature.hex()
    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"body": body, "sig": signature}, sort_keys=True) + "\n"
    # O_APPEND: earlier lines are never rewritten, even by a concurrent writer
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return Checkpoint(
        seq=body["seq"],
        last_id=body["last_id"],
        entry_hash=body["entry_hash"],
        events=body["events"],
        written_at=body["written_at"],
        signature=signature,
    )


@dataclass(frozen=True)
class CheckpointReport:
    checkpoints_checked: int
    bad_seq: int | None
    problem: str

    @property
    def intact(self) -> bool:
        return self.bad_seq is None


def verify_checkpoints(directory: Path | None = None) -> CheckpointReport:
    """Check every checkpoint's signature and link, and that the database still holds its head."""
    verify_key = _verify_key()
    prev_sig_digest = "0" * 64
    checked = 0
    for expected_seq, entry in enumerate(read_checkpoints(directory), start=1):
        body, sig = entry.get("body", {}), str(entry.get("sig", ""))
        seq = int(body.get("seq", -1))
        try:
            verify_key.verify(_canonical(body), bytes.fromhex(sig))
        except (BadSignatureError, ValueError):
            return CheckpointReport(checked, seq, "检查点签名无效 / checkpoint signature invalid")
        if seq != expected_seq or body.get("prev_sig_sha256") != prev_sig_digest:
            return CheckpointReport(
                checked, seq, "检查点缺失或乱序 / a checkpoint is missing or out of order"
            )
        head = AuditEvent.objects.filter(id=body["last_id"]).values_list("entry_hash", flat=True)
        if list(head) != [body["entry_hash"]]:
            return CheckpointReport(
                checked,
                seq,
                f"检查点记录的第 {body['last_id']} 条事件缺失或被改 / event {body['last_id']} "
                "named by the checkpoint is missing or changed (history truncated or rewritten)",
            )
        if AuditEvent.objects.filter(id__lte=body["last_id"]).count() != body["events"]:
            return CheckpointReport(
                checked,
                seq,
                "检查点之前的事件数不符 / the number of events up to the checkpoint differs",
            )
        prev_sig_digest = hashlib.sha256(sig.encode()).hexdigest()
        checked += 1
    return CheckpointReport(checked, None, "")
