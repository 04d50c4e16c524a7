"""Sign-in state per user (TOTP, forced change), throttles, failure stream, API tokens (hashed)."""

from typing import ClassVar

from django.conf import settings
from django.db import models


class SignInState(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_in_state"
    )
    # base32 TOTP secret (RFC 6238); empty = TOTP not enrolled
    totp_secret = models.CharField(max_length=64, blank=True)
    # last accepted TOTP time step: a code is accepted once only (replay protection)
    totp_last_step = models.BigIntegerField(default=0)
    # a secret offered on the enrolment page, active only once a code from it is confirmed
    totp_pending_secret = models.CharField(max_length=64, blank=True)
    # set when an administrator created or reset the password: the person must choose their own
    must_change_password = models.BooleanField(default=False)
    password_changed_at = models.DateTimeField(null=True, blank=True)


class SignInThrottle(models.Model):
    """Failures counted per sign-in name ("account:<name>") and per client ("client:<address>").

    Keyed by the name typed, not by the user row: a made-up name is slowed and locked exactly
    like a real one, so neither the answer nor its delay tells which names exist.
    """

    key = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    # no attempt is looked at before this (progressive delay)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # account keys only: locked until the owner proves a second factor or an administrator lifts
    locked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar = [models.Index(fields=["last_failure_at"], name="signin_throttle_last")]


class SignInFailure(models.Model):
    """One refused sign-in attempt: an audit stream kept for OSTEON_SIGNIN_FAILURE_RETENTION_DAYS.

    Not in the tamper-evident audit chain: anyone can cause these rows, the chain must not grow
    by an anonymous request. Locks, unlocks and successful sign-ins are in the chain.
    """

    at = models.DateTimeField(db_index=True)
    username = models.CharField(max_length=150)
    source_ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # bad_credentials, bad_second_factor, locked, throttled_client, throttled_account, ...
    reason = models.CharField(max_length=40)
    # where the attempt came from: page, second_factor, unlock, station
    channel = models.CharField(max_length=20)

    class Meta:
        ordering: ClassVar = ["-at"]


class RecoveryCode(models.Model):
    """A one-time code that stands in for the TOTP code (phone lost); stored as its SHA-256."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    # codes carry 80 random bits: a plain digest cannot be reversed by guessing
    code_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)


class DemoDatabase(models.Model):
    """Present only in a database the demo loader created: it loads demo accounts nowhere else."""

    created_at = models.DateTimeField(auto_now_add=True)


class ApiToken(models.Model):
    """A bearer token for a machine (station, hospital system); the secret is shown once only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="first characters, to recognise a token")
    # HMAC-SHA-256 keyed from SECRET_KEY (accounts.tokens.hash_token), not a plain SHA-256
    token_sha256 = models.CharField(max_length=64, unique=True)
    # e.g. ["read:patients", "write:imaging"] (accounts.tokens.ALL_SCOPES)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    # null only on tokens made before expiry existed: those count as expired
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # owner, sign_out, password_change, ...
    revoke_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
