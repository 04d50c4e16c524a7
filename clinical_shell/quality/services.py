"""Recording clinical facts, editing thresholds, recomputing stored indicator results."""

from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinical_shell.audit import services as audit
from clinical_shell.quality import periods
from clinical_shell.quality.indicators import engine, stats
from clinical_shell.quality.models import (
    ClinicalFact,
    FactKind,
    IndicatorDefinition,
    IndicatorResult,
    PeriodKind,
    ThresholdChange,
)
from clinical_shell.records.models import Encounter, Procedure


@transaction.atomic
def record_fact(
    *,
    actor: User | None,
    encounter: Encounter,
    kind: str,
    occurred_at: datetime,
    procedure: Procedure | None = None,
    value: float | None = None,
    note: str = "",
) -> ClinicalFact:
    """Record (or correct) one timed fact of an encounter; audited; its month is recomputed."""
    if kind not in FactKind.values:
        raise ValidationError({"kind": f"unknown fact kind {kind!r}"})
    if procedure is not None and procedure.encounter_id != encounter.pk:
        raise ValidationError({"procedure": "the procedure belongs to another encounter"})
    fact, _created = ClinicalFact.objects.update_or_create(
        encounter=encounter,
        kind=kind,
        defaults={
            "occurred_at": occurred_at,
            "procedure": procedure,
            "value": value,
            "note": note[:300],
            "recorded_by": actor,
        },
    )
    audit.record(
        actor=actor,
        action="quality.fact.record",
        patient_id=encounter.patient_id,
        target=fact,
        detail={"kind": kind, "occurred_at": occurred_at.isoformat()},
    )
    from clinical_shell.quality.tasks import schedule_recompute

    admitted = timezone.localdate(encounter.started_at)
    transaction.on_commit(lambda: schedule_recompute(admitted))
    if kind == FactKind.DEATH_30D:
        from clinical_shell.quality import warnings

        transaction.on_commit(lambda: warnings.raise_event_warnings(fact.occurred_at.date()))
    return fact


THRESHOLD_FIELDS = ("target", "warning", "alarm", "min_denominator")


@transaction.atomic
def set_thresholds(
    *, actor: User, indicator: IndicatorDefinition, reason: str, **values: Any
) -> IndicatorDefinition:
    """The quality office changes target/warning/alarm thresholds: kept in history, audited."""
    if not reason.strip():
        raise ValidationError({"reason": "a reason is required"})
    unknown = set(values) - set(THRESHOLD_FIELDS)
    if unknown:
        raise ValidationError({name: "not a threshold" for name in unknown})
    locked = IndicatorDefinition.objects.select_for_update().get(pk=indicator.pk)
    before = {name: getattr(locked, name) for name in THRESHOLD_FIELDS}
    for name, value in values.items():
        setattr(locked, name, value)
    locked.save()
    after = {name: getattr(locked, name) for name in THRESHOLD_FIELDS}
    ThresholdChange.objects.create(
        indicator=locked, changed_by=actor, before=before, after=after, reason=reason[:300]
    )
    audit.record(
        actor=actor,
        action="quality.thresholds.change",
        target=locked,
        reason=reason,
        detail={"before": before, "after": after},
    )
    return locked


def _store(definition: IndicatorDefinition, kind: str, month: date, window: engine.Span) -> int:
    rows: list[IndicatorResult] = []
    for level in engine.levels_for(definition.spec, definition.per_surgeon):
        try:
            figures = engine.compute(definition.spec, definition.aggregate, window, level)
        except engine.NoSourceError:
            figures = []
        if level == "prefecture" and not figures:
            figures = [engine.Figure("all", None, 0, None)]
        for figure in figures:
            value = figure.value
            if definition.aggregate == "count" and value is None:
                value = 0.0
            is_reliable = definition.aggregate == "count" or stats.reliable(
                figure.denominator, definition.min_denominator
            )
            if definition.aggregate != "count" and figure.denominator == 0:
                value = None
            rows.append(
                IndicatorResult(
                    indicator=definition,
                    period_kind=kind,
                    period_start=month,
                    level=level,
                    scope_key=figure.key,
                    numerator=figure.numerator,
                    denominator=figure.denominator,
                    value=value,
                    reliable=is_reliable,
                    status=stats.status(
                        value,
                        direction=definition.direction,
                        warning=definition.warning,
                        alarm=definition.alarm,
                    ),
                )
            )
    with transaction.atomic():
        IndicatorResult.objects.filter(
            indicator=definition, period_kind=kind, period_start=month
        ).delete()
        IndicatorResult.objects.bulk_create(rows)
    return len(rows)


def recompute_month(
    month: date, *, codes: list[str] | None = None, raise_warnings: bool = True
) -> int:
    """Recompute and store every active indicator for `month` and the 12 months ending with it,
    then raise the warnings the new figures call for. Returns the number of results stored."""
    month = periods.month_start(month)
    definitions = IndicatorDefinition.objects.filter(active=True)
    if codes is not None:
        definitions = definitions.filter(code__in=codes)
    stored = 0
    for definition in definitions:
        stored += _store(definition, PeriodKind.MONTH, month, periods.month_window(month))
        stored += _store(definition, PeriodKind.ROLLING_12, month, periods.rolling12_window(month))
    if raise_warnings:
        from clinical_shell.quality import warnings

        warnings.raise_threshold_warnings(month)
        warnings.raise_event_warnings(month)
    return stored
