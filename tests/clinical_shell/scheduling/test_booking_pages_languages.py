"""The booking pages in Chinese and in English: each shows only its language once the data on it
(names, procedures, reasons people typed, the refusal sentence as recorded) is taken out."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas, make_persona
from test_translations import LANGUAGES, other_language_in, visible_text, without_data

from clinical_shell.credentialing import services as credentialing
from clinical_shell.network.models import Role
from clinical_shell.records.models import Patient
from clinical_shell.scheduling import services
from clinical_shell.scheduling.models import Booking

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_booking_page_shows_only_its_language(
    language: str,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    shuangbai = shell_network.shuangbai
    surgeon = personas.county_surgeon
    quality = make_persona("feng.quality", "冯质控", "none", (shuangbai, Role.QUALITY_MANAGER))
    admin = make_persona("chu.admin", "褚管理", "none", (shuangbai, Role.ADMINISTRATOR))
    credentialing.set_institution_licence(
        actor=None, institution=shuangbai, hospital_grade=2, max_surgical_grade=3
    )
    today = timezone.localdate()
    privilege = credentialing.grant_privilege(
        actor=None,
        surgeon=surgeon,
        institution=shuangbai,
        technique=None,
        grade=3,
        valid_from=today,
        valid_until=today + timedelta(days=365),
    )

    def data(**changes: object) -> services.BookingIn:
        fields: dict[str, object] = {
            "patient": patient_in_shuangbai,
            "procedure_name": "股骨颈骨折空心钉内固定术",
            "grade": 3,
            "surgeon": surgeon,
            "institution": shuangbai,
            "scheduled_on": today + timedelta(days=2),
        }
        fields.update(changes)
        return services.BookingIn(**fields)  # type: ignore[arg-type]

    flagged = services.book_operation(actor=surgeon, data=data())
    override = services.book_operation(
        actor=surgeon,
        data=data(grade=4, emergency_override=True, override_reason="开放性骨盆骨折大出血"),
    )
    credentialing.revoke_privilege(actor=admin, privilege=privilege, reason="术后严重并发症")
    flagged.refresh_from_db()
    assert flagged.state == Booking.State.FLAGGED
    override.refresh_from_db()
    shown_data = {
        patient_in_shuangbai.name,
        patient_in_shuangbai.masked_resident_id,
        shuangbai.name,
        surgeon.person.full_name,
        quality.person.full_name,
        "股骨颈骨折空心钉内固定术",
        "开放性骨盆骨折大出血",
        "术后严重并发症",
        override.overridden_reason,
        # the language switch names each language in itself
        "简体中文",
        "English",
    }

    surgeon_client = signed_in_client(surgeon)
    quality_client = signed_in_client(quality)
    pages: list[tuple[Client, str, str, dict[str, object] | None]] = [
        (surgeon_client, "list", "/scheduling/", None),
        (surgeon_client, "flagged list", "/scheduling/?state=flagged", None),
        (surgeon_client, "form", "/scheduling/new/", None),
        (
            surgeon_client,
            "refused form",
            "/scheduling/new/",
            {
                "patient": patient_in_shuangbai.pk,
                "institution": shuangbai.pk,
                "surgeon": surgeon.pk,
                "procedure_name": "股骨颈骨折空心钉内固定术",
                "grade": 3,
                "scheduled_on": (today + timedelta(days=3)).isoformat(),
            },
        ),
        (surgeon_client, "flagged booking", f"/scheduling/{flagged.pk}/", None),
        (surgeon_client, "override booking", f"/scheduling/{override.pk}/", None),
        (quality_client, "overrides", "/scheduling/overrides/", None),
    ]
    for client, name, url, post in pages:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        response = client.post(url, post) if post is not None else client.get(url)
        assert response.status_code in (200, 409), (name, response.status_code)
        html = response.content.decode()
        text = without_data(visible_text(html), shown_data)
        if name == "refused form":
            # the refusal sentence comes from credentialing's catalogue in the request language
            assert 'data-code="privilege_revoked"' in html
        assert other_language_in(text, language) == [], (name, other_language_in(text, language))
