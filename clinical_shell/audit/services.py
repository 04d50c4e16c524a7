"""Writing audit events: one call per auditable act, chained to the previous event."""

from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from clinical_shell.audit.context import current_origin, note_failure, noted_failures
from clinical_shell.audit.models import GENESIS_HASH, AuditEvent

# arbitrary constant naming the PostgreSQL advisory lock that serialises appends to the chain
_CHAIN_LOCK_KEY = 0x05_7E_0A_D1


@transaction.atomic
def record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    success: bool = True,
    patient_id: int | None = None,
    target: Any = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
    username: str = "",
) -> AuditEvent:
    """Append one event. `target` is a model instance (type and id are recorded) or None."""
    if connection.vendor == "postgresql":
        # two concurrent appends must not both chain to the same predecessor
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    last = AuditEvent.objects.order_by("-id").values_list("entry_hash", flat=True).first()
    origin = current_origin()
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    actor_name = username or (actor.get_username() if actor is not None and actor_id else "")
    event = AuditEvent(
        occurred_at=timezone.now(),
        actor_user_id=actor_id,
        actor_username=actor_name[:150],
        action=action,
        outcome=AuditEvent.Outcome.SUCCESS if success else AuditEvent.Outcome.FAILURE,
        patient_id=patient_id,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        reason=reason[:500],
        source_ip=origin.source_ip,
        user_agent=origin.user_agent,
        detail=detail or {},
        prev_hash=last or GENESIS_HASH,
    )
    event.entry_hash = event.compute_hash()
    event.save()
    if not success:
        note_failure(event.pk)
    return event


# refusals every signed-in request gets an audit event for (the error page says so)
AUDITED_REFUSAL_STATUSES = frozenset({401, 403, 404, 423})


def record_refusal_if_missing(request: HttpRequest, error: Any) -> None:
    """After a request was refused with a DomainError: make sure the log has the refusal.

    Code that refuses usually audits why; when it did not, or when its event was rolled back
    with the transaction the refusal ended, this writes a generic one (path, method, code).
    Anonymous refusals are not chained (anyone could grow the log); sign-in failures have
    their own stream (accounts.SignInFailure).
    """
    status = int(getattr(error, "status", 0))
    user = getattr(request, "user", None)
    if status not in AUDITED_REFUSAL_STATUSES or user is None or not user.is_authenticated:
        return
    # a refusal written inside a transaction that the refusal itself rolled back is gone
    noted = noted_failures()
    if noted and AuditEvent.objects.filter(id__in=noted).exists():
        return
    record(
        actor=user,
        action="request.refused",
        success=False,
        detail={
            "status": status,
            "code": str(getattr(error, "code", "")),
            "method": request.method or "",
            "path": request.path[:300],
        },
    )
