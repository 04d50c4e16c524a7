"""Excel export: the indicator table with the counts the selector holds, and the definitions."""

from collections.abc import Callable
from io import BytesIO

import pytest
from dashboard_data import CODE, JAN, alarm_month
from django.contrib.auth.models import User
from django.test import Client
from openpyxl import load_workbook
from shell_personas import Network, Personas

from clinical_shell.quality import selectors
from clinical_shell.quality.export import definition_headers, figure_headers
from clinical_shell.quality.models import IndicatorDefinition


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_export_holds_the_selector_counts_and_the_definitions(
    shell_network: Network,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    language: str,
) -> None:
    alarm_month(shell_network, personas.quality_manager)
    client = signed_in_client(personas.quality_manager)
    client.cookies["django_language"] = language
    response = client.get("/quality/export.xlsx?month=2026-01", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(BytesIO(response.content))
    figures_sheet, definitions_sheet = book.worksheets
    headers = [c.value for c in figures_sheet[2]]
    from django.utils import translation

    with translation.override(language):
        assert headers == figure_headers()
        assert [c.value for c in definitions_sheet[1]] == definition_headers()
    rows = {row[0]: row for row in figures_sheet.iter_rows(min_row=3, values_only=True)}
    expected = selectors.indicator_results(month=JAN)
    assert set(rows) == {f.code for f in expected}
    for figure in expected:
        row = rows[figure.code]
        assert (row[3], row[5], row[6]) == (figure.value, figure.numerator, figure.denominator)
    assert (rows[CODE][5], rows[CODE][6]) == (3, 4)
    codes = [row[0] for row in definitions_sheet.iter_rows(min_row=2, values_only=True)]
    assert codes == list(
        IndicatorDefinition.objects.filter(active=True)
        .order_by("code")
        .values_list("code", flat=True)
    )
