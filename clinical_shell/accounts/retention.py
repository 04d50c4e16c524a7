"""Retention of the sign-in failure stream and the throttling counters (a daily task)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from clinical_shell.accounts.models import SignInFailure, SignInThrottle


@dataclass(frozen=True)
class Purged:
    failures: int
    counters: int
    client_attempts: int


def purge_sign_in_records(*, now: datetime | None = None) -> Purged:
    """Drop failures past OSTEON_SIGNIN_FAILURE_RETENTION_DAYS, counters nobody needs any more
    (no lock, last failure outside the window) and axes' attempts past the cool-off."""
    now = now or timezone.now()
    keep_from = now - timedelta(days=settings.OSTEON_SIGNIN_FAILURE_RETENTION_DAYS)
    failures, _ = SignInFailure.objects.filter(at__lt=keep_from).delete()
    window = timedelta(seconds=settings.OSTEON_SIGNIN_FAILURE_WINDOW_S)
    counters, _ = (
        SignInThrottle.objects.filter(locked_at__isnull=True)
        .filter(Q(last_failure_at__lt=now - window) | Q(last_failure_at__isnull=True))
        .filter(Q(next_attempt_at__lt=now) | Q(next_attempt_at__isnull=True))
        .delete()
    )
    cooloff = timedelta(seconds=settings.OSTEON_SIGNIN_CLIENT_COOLOFF_S)
    attempts, _ = AccessAttempt.objects.filter(attempt_time__lt=now - cooloff).delete()
    return Purged(failures=failures, counters=counters, client_attempts=attempts)
