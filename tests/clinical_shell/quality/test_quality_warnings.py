"""Warnings: raised once per period and cause, acknowledged with a note, closed, escalated."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from quality_cohorts import at, encounter, override, patient
from shell_personas import Network, Personas

from clinical_shell.notifications.models import Notification
from clinical_shell.quality import selectors, services, warnings
from clinical_shell.quality.models import IndicatorDefinition, QualityWarning

JAN = date(2026, 1, 1)


@pytest.fixture
def alarming(shell_network: Network, personas: Personas) -> Network:
    n, t = shell_network, at(2026, 1, 5)
    for _ in range(3):
        encounter(n.center, t, facts={"clean_incision": t, "ssi_30d": t + timedelta(days=4)})
    definition = IndicatorDefinition.objects.get(code="ssi-clean-30d")
    services.set_thresholds(
        actor=personas.quality_manager, indicator=definition, reason="试点", min_denominator=3
    )
    return n


def test_threshold_alarm_raised_once_and_notified(alarming: Network, personas: Personas) -> None:
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    raised = QualityWarning.objects.filter(kind="threshold_alarm")
    # prefecture, the center's county and the center itself: three causes, one warning each
    assert sorted(raised.values_list("cause", flat=True)) == sorted(
        [
            "ssi-clean-30d:prefecture:all",
            "ssi-clean-30d:county:楚雄市",
            f"ssi-clean-30d:institution:{alarming.center.pk}",
        ]
    )
    told = Notification.objects.filter(recipient=personas.quality_manager, kind="quality.warning")
    assert told.count() == 3
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    assert raised.count() == 3 and told.count() == 3
    assert selectors.open_warnings(personas.quality_manager).count() == 3
    assert selectors.open_warnings(personas.county_surgeon).count() == 0


def test_small_denominator_raises_nothing(shell_network: Network) -> None:
    t = at(2026, 1, 5)
    encounter(shell_network.center, t, facts={"clean_incision": t, "ssi_30d": t})
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    assert not QualityWarning.objects.exists()


def test_acknowledge_needs_a_note_and_a_quality_manager(
    alarming: Network, personas: Personas
) -> None:
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    warning = QualityWarning.objects.get(cause="ssi-clean-30d:prefecture:all")
    with pytest.raises(ValidationError):
        warnings.acknowledge(actor=personas.quality_manager, warning=warning, action_note="  ")
    with pytest.raises(PermissionDenied):
        warnings.acknowledge(actor=personas.county_surgeon, warning=warning, action_note="看过")
    with pytest.raises(ValidationError):
        warnings.close(actor=personas.quality_manager, warning=warning)
    done = warnings.acknowledge(
        actor=personas.quality_manager, warning=warning, action_note="组织感染科复核3例"
    )
    assert (done.status, done.action_note) == ("acknowledged", "组织感染科复核3例")
    closed = warnings.close(actor=personas.quality_manager, warning=warning)
    assert closed.status == "closed" and closed.closed_by == personas.quality_manager


def test_overdue_warnings_escalate(alarming: Network, personas: Personas) -> None:
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    assert warnings.escalate_overdue(timezone.now() + timedelta(days=1)) == 0
    handled = QualityWarning.objects.get(cause="ssi-clean-30d:prefecture:all")
    warnings.acknowledge(actor=personas.quality_manager, warning=handled, action_note="处理中")
    assert warnings.escalate_overdue(timezone.now() + timedelta(days=4)) == 2
    levels = dict(QualityWarning.objects.values_list("cause", "escalation_level"))
    assert levels["ssi-clean-30d:prefecture:all"] == 0
    assert sorted(levels.values()) == [0, 1, 1]
    escalated = Notification.objects.filter(kind="quality.warning.escalated")
    assert escalated.filter(recipient=personas.admin).exists()


def test_single_events_raise_one_warning_each(shell_network: Network, personas: Personas) -> None:
    n, t = shell_network, at(2026, 1, 6)
    override(patient(n.shuangbai, date(1950, 1, 1)), n.shuangbai, personas.county_surgeon, t)
    operated = encounter(n.center, t, icd9="81.51")
    services.record_fact(
        actor=personas.center_surgeon,
        encounter=operated,
        kind="death_30d",
        occurred_at=t + timedelta(days=12),
    )
    not_key = encounter(n.center, t, icd9="79.35")
    services.record_fact(
        actor=personas.center_surgeon, encounter=not_key, kind="death_30d", occurred_at=t
    )
    warnings.raise_event_warnings(JAN)
    warnings.raise_event_warnings(JAN)
    kinds = sorted(QualityWarning.objects.values_list("kind", "institution_id"))
    assert kinds == sorted(
        [("privilege_override", n.shuangbai.pk), ("death_after_key_op", n.center.pk)]
    )
