"""The live pages in Chinese and in English, with no text left in the other language (the scan of
tests/clinical_shell/test_translations.py, on this app's pages)."""

from collections.abc import Callable

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Personas
from test_translations import other_language_in, visible_text, without_data

from clinical_shell.live.models import LiveRecording, LiveSession
from clinical_shell.network.models import Institution, Person
from clinical_shell.records.models import Patient

pytestmark = pytest.mark.django_db

# what people typed or the relay is called: shown as written in either language
TYPED = {"右髋股骨颈骨折 空心钉内固定", "or-3", "field", "endoscope", "field, endoscope"}
TYPED |= {"nobody.here", "zhao.center", "1080p", "720p", "360p", "或 3"}
# each language's own name in the language switch
TYPED |= {"简体中文", "English"}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_live_pages_show_only_their_language(
    language: str,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    make_session: Callable[..., LiveSession],
    patient_in_shuangbai: Patient,
) -> None:
    session = make_session()
    make_session(patient=patient_in_shuangbai)
    LiveRecording.objects.create(
        session=session,
        stream="field",
        path=f"or-3/{session.pk}/field-20261206T031500.000Z-m0.mp4",
        started_at=session.created_at,
        duration_s=2.0,
        size_bytes=1000,
    )
    data = TYPED | set(Person.objects.values_list("full_name", flat=True))
    data |= set(Institution.objects.values_list("name", flat=True))
    pages: list[tuple[str, User, dict[str, str] | None, int]] = [
        ("/live/", personas.county_surgeon, None, 200),
        ("/live/new/", personas.county_surgeon, None, 200),
        (
            "/live/new/",
            personas.county_surgeon,
            {"title": "", "room": "或 3", "streams": "field, endoscope", "invitees": "nobody.here"},
            422,
        ),
        (f"/live/{session.pk}/", personas.center_surgeon, None, 200),
        # the creator's page: the invitation list and the end button too
        (f"/live/{session.pk}/", personas.county_surgeon, None, 200),
        (f"/live/{session.pk}/", personas.outsider, None, 403),
        (f"/live/{session.pk}/recordings/", personas.county_surgeon, None, 200),
        (f"/live/{session.pk}/recordings/", personas.outsider, None, 403),
        (f"/live/{session.pk}/invitees/", personas.county_surgeon, None, 200),
        (
            f"/live/{session.pk}/invitees/",
            personas.county_surgeon,
            {"invitees": "nobody.here"},
            422,
        ),
    ]
    leftovers = {}
    for path, user, form, status in pages:
        client = signed_in_client(user)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        response = client.get(path) if form is None else client.post(path, form)
        assert response.status_code == status, path
        found = other_language_in(
            without_data(visible_text(response.content.decode()), data), language
        )
        if found:
            leftovers[f"{path} {status}"] = found
    assert leftovers == {}
