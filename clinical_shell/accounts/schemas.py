"""API shapes for machine tokens."""

from datetime import datetime

from ninja import Field, Schema


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    # omitted: every scope the caller's role may mint (accounts.tokens.MINT_POLICY)
    scopes: list[str] | None = Field(default=None, max_length=32)
    # omitted: the default lifetime; more than the maximum is refused (422)
    expires_in_s: int | None = Field(default=None, ge=1, le=10 * 365 * 24 * 3600)
    # required when the account has TOTP: minting is a sign-in
    totp_code: str = Field(default="", max_length=32)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoke_reason: str


class IssuedTokenOut(TokenOut):
    token: str  # the secret: returned by this call only, never stored in clear
