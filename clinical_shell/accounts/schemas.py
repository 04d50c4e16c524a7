"""API shapes for machine tokens."""

from datetime import datetime

from ninja import Field, Schema


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100)


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedTokenOut(TokenOut):
    token: str  # the secret: returned by this call only, never stored in clear
