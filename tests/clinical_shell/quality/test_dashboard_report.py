"""The printable monthly report: one page per indicator group, the month's warnings, print CSS."""

from collections.abc import Callable
from pathlib import Path

from dashboard_data import CODE, alarm_month
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.quality.dashboard import GROUPS
from clinical_shell.quality.models import IndicatorDefinition, QualityWarning

CSS = Path(__file__).parents[3] / "clinical_shell/quality/static/quality/quality.css"


def test_report_has_a_page_per_group_with_counts_and_the_warnings(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    alarm_month(shell_network, personas.quality_manager)
    response = signed_in_client(personas.quality_manager).get("/quality/report/?month=2026-01")
    assert response.status_code == 200
    html = response.content.decode()
    pages = response.context["pages"]
    # every active indicator is in exactly one group page; the warnings have a page of their own
    assert [g for g, _t, _r in pages] == [g for g, _p in GROUPS]
    shown = sorted(card.figure.code for _g, _t, rows in pages for card, _r in rows)
    assert shown == sorted(
        IndicatorDefinition.objects.filter(active=True).values_list("code", flat=True)
    )
    assert html.count('class="report-page"') == len(pages) + 1
    ssi = next(card for _g, _t, rows in pages for card, _r in rows if card.figure.code == CODE)
    assert ssi.counts == "3/4" and ssi.figure.status == "alarm"
    for warning in QualityWarning.objects.filter(period_start__year=2026):
        assert warning.summary in html
    css = CSS.read_text()
    assert "@media print" in css and "break-after: page" in css
