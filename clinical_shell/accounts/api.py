"""`/api/v1/accounts`: issue and revoke machine tokens (needs a signed-in person, not a token)."""

from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status

from clinical_shell.accounts import services
from clinical_shell.accounts.auth import SessionAuthWithCsrf
from clinical_shell.accounts.schemas import IssuedTokenOut, TokenIn, TokenOut
from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut

router = Router(tags=["accounts / 账户"])


@router.post(
    "/tokens",
    response={201: IssuedTokenOut, 401: ProblemOut, 409: ProblemOut},
    auth=SessionAuthWithCsrf(),
    summary="Issue a machine token (shown once) / 签发令牌",
)
def issue_token(request: HttpRequest, payload: TokenIn) -> Status[dict[str, Any]]:
    issued = services.issue_api_token(actor=signed_in_user(request), name=payload.name)
    t = issued.token
    return Status(
        201,
        {
            "id": t.pk,
            "name": t.name,
            "prefix": t.prefix,
            "created_at": t.created_at,
            "revoked_at": t.revoked_at,
            "token": issued.raw,
        },
    )


@router.delete(
    "/tokens/{token_id}",
    response={200: TokenOut, 401: ProblemOut, 404: ProblemOut},
    auth=SessionAuthWithCsrf(),
    summary="Revoke a token / 吊销令牌",
)
def revoke_token(request: HttpRequest, token_id: int) -> Any:
    return services.revoke_api_token(actor=signed_in_user(request), token_id=token_id)
