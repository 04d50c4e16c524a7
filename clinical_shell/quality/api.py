"""`/api/v1/quality`: indicator figures, funnels, the cases behind a figure, thresholds, facts,
warnings. Aggregate figures are open to signed-in staff; cases are filtered to what the user may
see (and audited); thresholds are the center's quality office's; facts need write access."""

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError, ProblemOut
from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.quality import selectors, services, warnings
from clinical_shell.quality.models import (
    IndicatorDefinition,
    Level,
    PeriodKind,
    QualityWarning,
)
from clinical_shell.quality.schemas import (
    AcknowledgeIn,
    CaseOut,
    FactIn,
    FactOut,
    FigureOut,
    FunnelOut,
    IndicatorOut,
    ThresholdsIn,
    WarningOut,
)
from clinical_shell.records.access import access_encounter
from clinical_shell.records.models import Procedure

router = Router(tags=["quality / 质控指标"])
ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    422: ProblemOut,
}
T = TypeVar("T")


class FigureQuery(Schema):
    month: date
    period: PeriodKind = PeriodKind.MONTH
    level: Level = Level.PREFECTURE
    key: str = "all"


def _run(fn: Callable[[], T]) -> T:
    """Django's validation and permission errors as problem details."""
    try:
        return fn()
    except ValidationError as exc:
        raise DomainError("invalid", "; ".join(exc.messages), status=422) from exc
    except PermissionDenied as exc:
        raise PermissionDeniedError("not_quality_manager", "not allowed") from exc


def _indicator(code: str) -> IndicatorDefinition:
    found = IndicatorDefinition.objects.filter(code=code).first()
    if found is None:
        raise NotFoundError("indicator_not_found", f"no indicator {code!r}")
    return found


@router.get("/indicators", response={200: list[IndicatorOut], **ERRORS})
def list_indicators(request: HttpRequest) -> Any:
    signed_in_user(request)
    return list(IndicatorDefinition.objects.filter(active=True))


@router.patch("/indicators/{code}/thresholds", response={200: IndicatorOut, **ERRORS})
def change_thresholds(request: HttpRequest, code: str, body: ThresholdsIn) -> Any:
    user = signed_in_user(request)
    center_quality = Membership.objects.filter(
        person__user=user,
        role=Role.QUALITY_MANAGER,
        active=True,
        institution__level=Institution.Level.CENTER,
    ).exists()
    if not center_quality:
        raise PermissionDeniedError("not_quality_office", "thresholds are the quality office's")
    values = body.dict(exclude_unset=True)
    reason = values.pop("reason")
    return _run(
        lambda: services.set_thresholds(
            actor=user, indicator=_indicator(code), reason=reason, **values
        )
    )


@router.get("/results", response={200: list[FigureOut], **ERRORS})
def results(request: HttpRequest, query: Query[FigureQuery]) -> Any:
    signed_in_user(request)
    return selectors.indicator_results(
        month=query.month, period_kind=query.period, level=query.level, key=query.key
    )


@router.get("/funnel/{code}", response={200: FunnelOut, **ERRORS})
def funnel(request: HttpRequest, code: str, query: Query[FigureQuery]) -> Any:
    signed_in_user(request)
    _indicator(code)
    level = query.level if query.level != Level.PREFECTURE else Level.INSTITUTION
    return selectors.funnel(code, month=query.month, period_kind=query.period, level=level)


@router.get("/cases/{code}", response={200: list[CaseOut], **ERRORS})
def cases(
    request: HttpRequest, code: str, query: Query[FigureQuery], numerator: bool = False
) -> Any:
    user = signed_in_user(request)
    _indicator(code)
    found = selectors.cases_behind(
        user,
        code,
        month=query.month,
        period_kind=query.period,
        level=query.level,
        key=query.key,
        numerator=numerator,
    )
    return [
        CaseOut(
            source=c.source,
            id=c.id,
            patient_id=c.patient_id,
            institution_id=c.institution_id,
            at=c.at,
            detail=c.detail,
        )
        for c in found.page(500)
    ]


def _warning_out(w: QualityWarning) -> WarningOut:
    return WarningOut(
        id=w.pk,
        kind=w.kind,
        cause=w.cause,
        period_start=w.period_start,
        summary=w.summary,
        summary_en=w.summary_en,
        status=w.status,
        institution_id=w.institution_id,
        indicator_code=w.indicator.code if w.indicator else None,
        raised_at=w.raised_at,
        due_at=w.due_at,
        escalation_level=w.escalation_level,
        action_note=w.action_note,
    )


def _visible_warning(request: HttpRequest, warning_id: int) -> QualityWarning:
    found = selectors.visible_warnings(signed_in_user(request)).filter(pk=warning_id).first()
    if found is None:
        raise NotFoundError("warning_not_found", f"no warning {warning_id}")
    return found


@router.get("/warnings", response={200: list[WarningOut], **ERRORS})
def open_warnings(request: HttpRequest) -> Any:
    return [_warning_out(w) for w in selectors.open_warnings(signed_in_user(request))[:200]]


@router.post("/warnings/{warning_id}/acknowledge", response={200: WarningOut, **ERRORS})
def acknowledge(request: HttpRequest, warning_id: int, body: AcknowledgeIn) -> Any:
    warning = _visible_warning(request, warning_id)
    done = _run(
        lambda: warnings.acknowledge(
            actor=signed_in_user(request), warning=warning, action_note=body.action_note
        )
    )
    return _warning_out(done)


@router.post("/warnings/{warning_id}/close", response={200: WarningOut, **ERRORS})
def close(request: HttpRequest, warning_id: int) -> Any:
    warning = _visible_warning(request, warning_id)
    return _warning_out(
        _run(lambda: warnings.close(actor=signed_in_user(request), warning=warning))
    )


@router.post("/facts", response={201: FactOut, **ERRORS})
def record_fact(request: HttpRequest, body: FactIn) -> Any:
    user = signed_in_user(request)
    encounter = access_encounter(user, body.encounter_id, write=True)
    procedure = None
    if body.procedure_id is not None:
        procedure = Procedure.objects.filter(
            pk=body.procedure_id, encounter=encounter, deleted_at__isnull=True
        ).first()
        if procedure is None:
            raise NotFoundError("procedure_not_found", "no such procedure in this encounter")
    fact = _run(
        lambda: services.record_fact(
            actor=user,
            encounter=encounter,
            kind=body.kind,
            occurred_at=body.occurred_at,
            procedure=procedure,
            value=body.value,
            note=body.note,
        )
    )
    return Status(
        201,
        FactOut(
            id=fact.pk, encounter_id=encounter.pk, kind=fact.kind, occurred_at=fact.occurred_at
        ),
    )
