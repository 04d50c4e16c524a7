"""Reading and checking the audit chain."""

from dataclasses import dataclass

from django.db.models import QuerySet

from clinical_shell.audit.models import GENESIS_HASH, AuditEvent


@dataclass(frozen=True)
class ChainReport:
    events_checked: int
    first_broken_id: int | None
    problem: str

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def verify_chain(*, batch_size: int = 2000) -> ChainReport:
    """Walk the log in id order; name the first event whose hash or link does not hold.

    A changed field breaks that event's own keyed hash (which cannot be recomputed without
    OSTEON_AUDIT_KEY); a removed event breaks its successor's link; a removed tail is not
    detectable from the chain alone: the signed checkpoints (checkpoints.py) catch it.
    """
    expected_prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:batch_size])
        if not batch:
            return ChainReport(checked, None, "")
        for event in batch:
            if event.prev_hash != expected_prev:
                return ChainReport(
                    checked,
                    event.id,
                    "链接断开(前一条记录被删除或修改) / link broken: prev_hash mismatch",
                )
            if event.compute_hash() != event.entry_hash:
                return ChainReport(
                    checked, event.id, "记录内容被修改 / event content altered: hash mismatch"
                )
            expected_prev = event.entry_hash
            checked += 1
            last_id = event.id


def events_for_patient(patient_id: int) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(patient_id=patient_id).order_by("-id")
