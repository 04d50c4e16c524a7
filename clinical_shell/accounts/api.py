"""`/api/v1/accounts`: mint, list and revoke one's own machine tokens (a signed-in person only,
never a token: a token cannot mint tokens)."""

from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status

from clinical_shell.accounts import tokens
from clinical_shell.accounts.auth import SessionAuthWithCsrf
from clinical_shell.accounts.models import ApiToken
from clinical_shell.accounts.schemas import IssuedTokenOut, TokenIn, TokenOut
from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut

router = Router(tags=["accounts / 账户"])

_REFUSALS: dict[int | str, Any] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    422: ProblemOut,
    423: ProblemOut,
}


def _out(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "scopes": list(token.scopes),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
        "revoke_reason": token.revoke_reason,
    }


@router.post(
    "/tokens",
    response={201: IssuedTokenOut, **_REFUSALS},
    auth=SessionAuthWithCsrf(),
    summary="Mint a scoped, expiring machine token (shown once) / 签发令牌",
)
def issue_token(request: HttpRequest, payload: TokenIn) -> Status[dict[str, Any]]:
    issued = tokens.issue(
        actor=signed_in_user(request),
        name=payload.name,
        scopes=payload.scopes,
        ttl=None if payload.expires_in_s is None else timedelta(seconds=payload.expires_in_s),
        totp_code=payload.totp_code,
    )
    return Status(201, {**_out(issued.token), "token": issued.raw})


@router.get(
    "/tokens",
    response={200: list[TokenOut], 401: ProblemOut},
    auth=SessionAuthWithCsrf(),
    summary="My tokens (never the secrets) / 我的令牌",
)
def list_tokens(request: HttpRequest) -> list[dict[str, Any]]:
    return [_out(t) for t in tokens.tokens_of(signed_in_user(request))[:200]]


@router.delete(
    "/tokens/{token_id}",
    response={200: TokenOut, 401: ProblemOut, 404: ProblemOut},
    auth=SessionAuthWithCsrf(),
    summary="Revoke a token / 吊销令牌",
)
def revoke_token(request: HttpRequest, token_id: int) -> dict[str, Any]:
    return _out(tokens.revoke(actor=signed_in_user(request), token_id=token_id))
