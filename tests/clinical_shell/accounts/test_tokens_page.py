"""The token page: mint (secret shown once), list, revoke; a role without the right is told so."""

from collections.abc import Callable

from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Personas

from clinical_shell.accounts.models import ApiToken


def test_mint_shows_the_secret_once_then_revoke_from_the_list(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.county_surgeon)
    minted = client.post(
        "/accounts/tokens/", {"name": "HIS", "scopes": ["read:patients"], "lifetime_h": "24"}
    )
    assert minted.status_code == 200
    token = ApiToken.objects.get(user=personas.county_surgeon)
    raw = minted.context["issued"].raw
    assert raw in minted.content.decode() and token.scopes == ["read:patients"]
    listed = client.get("/accounts/tokens/").content.decode()
    assert raw not in listed and token.prefix in listed
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/patients").status_code == 200
    client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get("/api/v1/patients").status_code == 401
    # an out-of-list lifetime is refused, not stretched
    refused = client.post("/accounts/tokens/", {"name": "x", "lifetime_h": "99999"})
    assert refused.status_code == 422


def test_a_role_without_the_mint_right_sees_no_form_and_cannot_post(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.quality_manager)
    page = client.get("/accounts/tokens/").content.decode()
    assert 'id="token-not-allowed"' in page and 'id="token-form"' not in page
    assert client.post("/accounts/tokens/", {"name": "x", "lifetime_h": "8"}).status_code == 403
    assert not ApiToken.objects.exists()
