"""Audit events: append-only rows chained by HMAC-SHA-256 so that any edit or removal is detectable.

The model refuses updates and deletes; the database refuses them too (trigger added in migration
0002), so only someone who can drop triggers can tamper. The chain is keyed with
OSTEON_AUDIT_KEY, which the database does not hold: whoever rewrites rows cannot recompute the
hashes, and `verify-audit` finds the rewrite. Signed checkpoints outside the database
(audit/checkpoints.py) catch a removed tail.
"""

import hashlib
import hmac
import json
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

GENESIS_HASH = "0" * 64


class AppendOnlyError(Exception):
    """Someone tried to change or remove an audit event."""


class AuditQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("审计记录不可修改 / audit events cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("审计记录不可删除 / audit events cannot be deleted")


class AuditEvent(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", "成功 / success"
        FAILURE = "failure", "失败 / failure"

    occurred_at = models.DateTimeField()  # UTC (USE_TZ); set by the recorder, part of the hash
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    # plain ids, not foreign keys: the log must outlive and never block changes to what it names
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    source_ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering: ClassVar = ["id"]
        indexes: ClassVar = [
            models.Index(fields=["actor_user_id", "occurred_at"], name="audit_actor_time")
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None or not self._state.adding:
            raise AppendOnlyError("审计记录不可修改 / audit events cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("审计记录不可删除 / audit events cannot be deleted")

    def canonical_payload(self) -> dict[str, Any]:
        """The fields the hash covers (everything but the row id and the hash itself)."""
        return {
            "occurred_at": self.occurred_at.isoformat(timespec="microseconds"),
            "actor_user_id": self.actor_user_id,
            "actor_username": self.actor_username,
            "action": self.action,
            "outcome": self.outcome,
            "patient_id": self.patient_id,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "reason": self.reason,
            "source_ip": self.source_ip,
            "user_agent": self.user_agent,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
        }

    def _canonical_bytes(self) -> bytes:
        blob = json.dumps(
            self.canonical_payload(), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        return blob.encode("utf-8")

    def compute_hash(self) -> str:
        """HMAC-SHA-256 of the canonical payload under the audit key."""
        return hmac.new(audit_key(), self._canonical_bytes(), hashlib.sha256).hexdigest()

    def legacy_hash(self) -> str:
        """The unkeyed SHA-256 of chains written before the key (read by `rekey_audit` only)."""
        return hashlib.sha256(self._canonical_bytes()).hexdigest()


def audit_key() -> bytes:
    key = str(getattr(settings, "OSTEON_AUDIT_KEY", ""))
    if not key:
        raise ImproperlyConfigured(
            "OSTEON_AUDIT_KEY 未配置 / not configured: the audit chain cannot be written or "
            "checked (docs/security.md, Secrets)"
        )
    return key.encode("utf-8")
