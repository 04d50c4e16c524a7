"""Every quality page in Chinese and in English, with no text of the other language left
(database values shown as they are, e.g. institution names and Q1's Chinese warning summaries,
are set aside as data)."""

from collections.abc import Callable

import pytest
from dashboard_data import CODE, alarm_month
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas
from test_translations import other_language_in, visible_text, without_data

from clinical_shell.network.models import Institution
from clinical_shell.quality.models import IndicatorDefinition, QualityWarning
from clinical_shell.records.models import Patient


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_quality_pages_show_only_their_language(
    shell_network: Network,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    language: str,
) -> None:
    alarm_month(shell_network, personas.quality_manager)
    warning = QualityWarning.objects.filter(institution=shell_network.center).first()
    assert warning is not None
    data = set(Institution.objects.values_list("name", flat=True))
    data |= {str(p) for p in Patient.objects.all()}
    data |= set(Patient.objects.values_list("name", flat=True))
    data |= set(QualityWarning.objects.values_list("summary", flat=True))
    data |= set(IndicatorDefinition.objects.values_list("description", flat=True))
    # the switch names both languages in every language; Excel is a product's name; units are data
    data |= {"楚雄市", "English", "简体中文", "Excel"}
    data |= set(IndicatorDefinition.objects.values_list("unit", flat=True))
    data |= {personas.quality_manager.person.full_name}
    if language == "en":
        data |= set(IndicatorDefinition.objects.values_list("name_zh", flat=True))
    else:
        data |= set(IndicatorDefinition.objects.values_list("name_en", flat=True))
    client = signed_in_client(personas.quality_manager)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    pages = [
        "/quality/?month=2026-01",
        f"/quality/?level=institution&key={shell_network.center.pk}&month=2026-01",
        f"/quality/cases/{CODE}/?level=prefecture&key=all&month=2026-01",
        f"/quality/funnel/{CODE}/?month=2026-01",
        "/quality/warnings/",
        f"/quality/warnings/{warning.pk}/",
        "/quality/report/?month=2026-01",
    ]
    leftovers = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        found = other_language_in(
            without_data(visible_text(response.content.decode()), data), language
        )
        if found:
            leftovers[path] = found
    assert leftovers == {}
