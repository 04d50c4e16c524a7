"""Sign-in state per user (failures, lockout, TOTP) and machine API tokens (stored hashed)."""

from typing import ClassVar

from django.conf import settings
from django.db import models


class SignInState(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_in_state"
    )
    failed_attempts = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # base32 TOTP secret (RFC 6238); empty = TOTP not enrolled
    totp_secret = models.CharField(max_length=64, blank=True)
    # last accepted TOTP time step: a code is accepted once only (replay protection)
    totp_last_step = models.BigIntegerField(default=0)


class ApiToken(models.Model):
    """A bearer token for a machine (station, hospital system); the secret is shown once only."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="first characters, to recognise a token")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
