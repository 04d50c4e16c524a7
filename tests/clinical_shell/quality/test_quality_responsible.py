"""Warnings reach the named department head (科主任) of the institution concerned, who may handle
them there and nowhere else; summaries are written in both languages."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import translation
from quality_cohorts import at, encounter
from shell_personas import Network, Personas, make_persona

from clinical_shell.network.models import Department, Role
from clinical_shell.notifications.models import Notification
from clinical_shell.quality import selectors, services, warnings
from clinical_shell.quality.models import IndicatorDefinition, QualityWarning

JAN = date(2026, 1, 1)


@pytest.fixture
def center_head(shell_network: Network, personas: Personas) -> Department:
    head = make_persona("center.head", "周主任", "chief", (shell_network.center, Role.SURGEON))
    ortho, _ = Department.objects.get_or_create(
        institution=shell_network.center, code="ORTHO", defaults={"name": "骨科"}
    )
    ortho.head = head.person
    ortho.save()
    n, t = shell_network, at(2026, 1, 5)
    for _ in range(3):
        encounter(n.center, t, facts={"clean_incision": t, "ssi_30d": t + timedelta(days=4)})
    services.set_thresholds(
        actor=personas.quality_manager,
        indicator=IndicatorDefinition.objects.get(code="ssi-clean-30d"),
        reason="试点",
        min_denominator=3,
    )
    return ortho


def test_the_head_is_told_and_handles_their_institution_only(
    center_head: Department, shell_network: Network, personas: Personas
) -> None:
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    head = center_head.head.user  # type: ignore[union-attr]
    told = Notification.objects.filter(recipient=head, kind="quality.warning")
    # of the three warnings (center, its county 楚雄市, prefecture) only the center's own
    # reaches its head: a county figure goes to the county hospital's head (none in 楚雄市 here)
    own = QualityWarning.objects.get(cause=f"ssi-clean-30d:institution:{shell_network.center.pk}")
    network_wide = QualityWarning.objects.get(cause="ssi-clean-30d:prefecture:all")
    assert told.count() == 1
    assert list(selectors.open_warnings(head)) == [own]
    done = warnings.acknowledge(actor=head, warning=own, action_note="科内讨论3例切口感染")
    assert done.acknowledged_by == head
    with pytest.raises(PermissionDenied):
        warnings.acknowledge(actor=head, warning=network_wide, action_note="越权")
    # an ordinary surgeon of the same institution is neither told nor allowed
    with pytest.raises(PermissionDenied):
        warnings.acknowledge(actor=personas.center_surgeon, warning=network_wide, action_note="x")
    assert not Notification.objects.filter(
        recipient=personas.center_surgeon, kind="quality.warning"
    ).exists()


def test_a_head_who_left_is_not_told(center_head: Department) -> None:
    assert center_head.head is not None
    center_head.head.memberships.update(active=False)
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    assert QualityWarning.objects.exists()
    assert not Notification.objects.filter(recipient=center_head.head.user).exists()


def test_summaries_in_both_languages(center_head: Department, shell_network: Network) -> None:
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    own = QualityWarning.objects.get(cause=f"ssi-clean-30d:institution:{shell_network.center.pk}")
    assert own.summary.startswith("Ⅰ类切口手术部位感染率 2026-01") and "100.0% (3/3)" in own.summary
    assert shell_network.center.name in own.summary
    assert own.summary_en.startswith("Surgical site infection") and "(3/3)" in own.summary_en
    with translation.override("en"):
        assert own.shown_summary == own.summary_en
    with translation.override("zh-hans"):
        assert own.shown_summary == own.summary
    note = Notification.objects.filter(kind="quality.warning").order_by("pk").last()
    assert note is not None and note.title_en.startswith("Indicator crossed its alarm line: ")
    assert "Surgical site infection" in note.title_en and "感染" not in note.title_en
    assert note.title_zh.startswith("指标越过报警线: Ⅰ类切口")
