"""Turn an indicator's declarative spec into aggregate ORM queries (PostgreSQL and SQLite).

Every figure is one grouped aggregate query (rates, counts) or one windowed query that returns the
middle one or two rows of each group (medians): rows are never loaded into Python to be counted.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import Combinable, Window
from django.db.models.functions import ExtractDay, ExtractMonth, ExtractYear, RowNumber
from django.utils import timezone

from clinical_shell.quality.models import ClinicalFact, Level
from clinical_shell.records.models import Diagnosis, Encounter, Procedure

Spec = dict[str, Any]


@dataclass(frozen=True)
class Span:
    """A half-open time window [start, end)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Figure:
    key: str
    numerator: int | None
    denominator: int
    value: float | None


class NoSourceError(Exception):
    """The indicator's data source is defined but not connected yet: no data."""


def _prefix_q(field: str, prefixes: list[str]) -> Q:
    q = Q()
    for prefix in prefixes:
        q |= Q(**{f"{field}__startswith": prefix})
    return q


# ----------------------------------------------------------------------------- encounters


def _fact_time(kind: str) -> Subquery:
    return Subquery(
        ClinicalFact.objects.filter(encounter=OuterRef("pk"), kind=kind).values("occurred_at")[:1]
    )


def _fact_exists(kind: str) -> Exists:
    return Exists(ClinicalFact.objects.filter(encounter=OuterRef("pk"), kind=kind))


def _index_procedures(spec: Spec) -> QuerySet[Procedure]:
    found = Procedure.objects.filter(encounter=OuterRef("pk"), deleted_at__isnull=True)
    prefixes = spec.get("cohort", {}).get("procedure_icd9")
    if prefixes:
        found = found.filter(_prefix_q("icd9cm3_code", prefixes))
    return found.order_by("performed_at", "pk")


def _age_at_admission() -> Combinable:
    birthday_not_reached = Case(
        When(
            Q(_m_adm__lt=F("_m_birth")) | Q(_m_adm=F("_m_birth"), _d_adm__lt=F("_d_birth")),
            then=Value(1),
        ),
        default=Value(0),
        output_field=IntegerField(),
    )
    return F("_y_adm") - F("_y_birth") - birthday_not_reached


def _encounter_time(spec: Spec, name: str) -> Combinable:
    if name == "admission":
        return F("started_at")
    if name == "procedure":
        return Subquery(_index_procedures(spec).values("performed_at")[:1])
    if name.startswith("fact:"):
        return _fact_time(name.removeprefix("fact:"))
    raise ValueError(f"unknown encounter timestamp {name!r}")


def _encounters(spec: Spec, window: Span) -> QuerySet[Any]:
    cohort = spec.get("cohort", {})
    found = Encounter.objects.filter(
        deleted_at__isnull=True, started_at__gte=window.start, started_at__lt=window.end
    )
    if cohort.get("encounter_kinds"):
        found = found.filter(kind__in=cohort["encounter_kinds"])
    if cohort.get("diagnosis_icd10"):
        found = found.filter(
            Exists(
                Diagnosis.objects.filter(
                    _prefix_q("icd10_code", cohort["diagnosis_icd10"]),
                    encounter=OuterRef("pk"),
                    deleted_at__isnull=True,
                )
            )
        )
    if cohort.get("procedure_icd9"):
        found = found.filter(Exists(_index_procedures(spec)))
    for kind in cohort.get("facts", []):
        found = found.filter(_fact_exists(kind))
    for kind in spec.get("exclude", {}).get("facts", []):
        found = found.filter(~_fact_exists(kind))
    if "min_age" in cohort or "max_age" in cohort:
        found = found.annotate(
            _y_adm=ExtractYear("started_at"),
            _m_adm=ExtractMonth("started_at"),
            _d_adm=ExtractDay("started_at"),
            _y_birth=ExtractYear("patient__birth_date"),
            _m_birth=ExtractMonth("patient__birth_date"),
            _d_birth=ExtractDay("patient__birth_date"),
        ).annotate(_age=_age_at_admission())
        if "min_age" in cohort:
            found = found.filter(_age__gte=cohort["min_age"])
        if "max_age" in cohort:
            found = found.filter(_age__lte=cohort["max_age"])
    return found


def _encounter_numerator(spec: Spec, rows: QuerySet[Any]) -> tuple[QuerySet[Any], Q]:
    numerator = spec["numerator"]
    hours = numerator.get("within_hours")
    if "fact" in numerator:
        if hours is None:
            return rows, Q(_fact_exists(numerator["fact"]))
        rows = rows.annotate(
            _num_from=_encounter_time(spec, numerator["from"]),
            _num_to=_fact_time(numerator["fact"]),
        )
        return rows, Q(
            _num_to__gte=F("_num_from"), _num_to__lte=F("_num_from") + timedelta(hours=hours)
        )
    if "referral" in numerator:
        from clinical_shell.referrals.models import Referral

        referred = Referral.objects.filter(
            patient=OuterRef("patient_id"),
            from_institution=OuterRef("institution_id"),
            direction=numerator["referral"],
            sent_at__gte=OuterRef("started_at"),
            sent_at__lte=OuterRef("_ref_until"),
        )
        rows = rows.annotate(_ref_until=F("started_at") + timedelta(hours=hours))
        return rows, Q(Exists(referred))
    raise ValueError(f"unknown numerator {numerator!r}")


def _encounter_group(spec: Spec, level: str) -> Combinable:
    if level == Level.INSTITUTION:
        return F("institution_id")
    if level == Level.COUNTY:
        return F("institution__county")
    if level == Level.SURGEON:
        return Subquery(_index_procedures(spec).values("surgeon_id")[:1])
    return Value("all")


# ----------------------------------------------------------------------------- other sources


def _grouped(level: str, institution: str, county: str) -> Combinable:
    if level == Level.INSTITUTION:
        return F(institution)
    if level == Level.COUNTY:
        return F(county)
    return Value("all")


def _referrals(spec: Spec, window: Span) -> QuerySet[Any]:
    from clinical_shell.referrals.models import Referral

    cohort = spec.get("cohort", {})
    found = Referral.objects.filter(
        sent_at__gte=window.start, sent_at__lt=window.end, to_institution__isnull=False
    )
    if cohort.get("direction"):
        found = found.filter(direction=cohort["direction"])
    if cohort.get("urgency"):
        found = found.filter(urgency=cohort["urgency"])
    return found


def _referral_time(spec: Spec, name: str) -> Combinable:
    return F({"sent": "sent_at", "answered": "answered_at"}[name])


def _referral_numerator(spec: Spec, rows: QuerySet[Any]) -> tuple[QuerySet[Any], Q]:
    numerator = spec["numerator"]
    to = _referral_time(spec, numerator["to"])
    delta = timedelta(hours=numerator["within_hours"])
    rows = rows.annotate(_num_to=to)
    return rows, Q(_num_to__isnull=False, _num_to__lte=F("sent_at") + delta)


def _referral_group(spec: Spec, level: str) -> Combinable:
    return _grouped(level, "to_institution_id", "to_institution__county")


def _consultations(spec: Spec, window: Span) -> QuerySet[Any]:
    from clinical_shell.referrals.consult_models import Consultation

    return Consultation.objects.filter(created_at__gte=window.start, created_at__lt=window.end)


def _consultation_time(spec: Spec, name: str) -> Combinable:
    from clinical_shell.referrals.consult_models import OpinionReport

    if name == "requested":
        return F("created_at")
    return Subquery(
        OpinionReport.objects.filter(consultation=OuterRef("pk")).values("signed_at")[:1]
    )


def _consultation_group(spec: Spec, level: str) -> Combinable:
    return _grouped(level, "requesting_institution_id", "requesting_institution__county")


def _overrides(spec: Spec, window: Span) -> QuerySet[Any]:
    from clinical_shell.scheduling.models import Booking

    return Booking.objects.filter(
        emergency_override=True, created_at__gte=window.start, created_at__lt=window.end
    )


def _training(spec: Spec, window: Span) -> QuerySet[Any]:
    from clinical_shell.stations.models import SessionResult

    # only results verified by replay count, as for credentialing; rejected ones never do. The
    # period is when the assessment ended (signed by the station), not when it reached the shell
    return SessionResult.objects.filter(
        verification=SessionResult.Verification.VERIFIED,
        ended_at__gte=window.start,
        ended_at__lt=window.end,
    )


def _training_numerator(spec: Spec, rows: QuerySet[Any]) -> tuple[QuerySet[Any], Q]:
    return rows, Q(passed=True)


def _training_group(spec: Spec, level: str) -> Combinable:
    # where the assessment was taken: the station's institution
    return _grouped(level, "station__institution_id", "station__institution__county")


def _restricted_operations(spec: Spec, window: Span) -> QuerySet[Any]:
    from clinical_shell.scheduling.models import Booking

    # operations under privilege management: a restricted technique or a grade 3-4 operation
    return Booking.objects.filter(
        Q(technique_code__gt="") | Q(grade__gte=spec.get("cohort", {}).get("min_grade", 3)),
        scheduled_on__gte=timezone.localtime(window.start).date(),
        scheduled_on__lt=timezone.localtime(window.end).date(),
    ).exclude(state=Booking.State.CANCELLED)


def _covered_numerator(spec: Spec, rows: QuerySet[Any]) -> tuple[QuerySet[Any], Q]:
    from clinical_shell.scheduling.models import Booking

    # covered: booked under valid privileges (no emergency override) and not flagged since,
    # when a privilege it relied on was revoked or ran out before the operation
    return rows, Q(emergency_override=False) & ~Q(state=Booking.State.FLAGGED)


def _booking_group(spec: Spec, level: str) -> Combinable:
    if level == Level.SURGEON:
        return F("surgeon__person__id")
    return _grouped(level, "institution_id", "institution__county")


@dataclass(frozen=True)
class _Source:
    rows: Callable[[Spec, Span], QuerySet[Any]]
    group: Callable[[Spec, str], Combinable]
    time: Callable[[Spec, str], Combinable] | None = None
    numerator: Callable[[Spec, QuerySet[Any]], tuple[QuerySet[Any], Q]] | None = None
    surgeon: bool = False


SOURCES: dict[str, _Source] = {
    "encounters": _Source(
        _encounters, _encounter_group, _encounter_time, _encounter_numerator, surgeon=True
    ),
    "referrals": _Source(_referrals, _referral_group, _referral_time, _referral_numerator),
    "consultations": _Source(_consultations, _consultation_group, _consultation_time),
    "overrides": _Source(_overrides, _booking_group, surgeon=True),
    "training": _Source(_training, _training_group, numerator=_training_numerator),
    "credentialing": _Source(
        _restricted_operations, _booking_group, numerator=_covered_numerator, surgeon=True
    ),
}


def _source(spec: Spec) -> _Source:
    found = SOURCES.get(spec["source"])
    if found is None:
        raise NoSourceError(spec["source"])
    return found


def levels_for(spec: Spec, per_surgeon: bool) -> list[str]:
    levels = [Level.PREFECTURE, Level.COUNTY, Level.INSTITUTION]
    if per_surgeon and spec["source"] in SOURCES and SOURCES[spec["source"]].surgeon:
        levels.append(Level.SURGEON)
    return [str(level) for level in levels]


def cohort(spec: Spec, window: Span) -> QuerySet[Any]:
    """The rows in the denominator (the cases behind a figure)."""
    return _source(spec).rows(spec, window)


def group_of(spec: Spec, level: str) -> Combinable:
    """The expression a figure at `level` is grouped by (its key), to narrow rows to one."""
    return _source(spec).group(spec, level)


def numerator_rows(spec: Spec, aggregate: str, window: Span) -> QuerySet[Any]:
    """The rows in the numerator of a rate (all the cohort's rows for counts and medians)."""
    source = _source(spec)
    rows = source.rows(spec, window)
    if aggregate != "rate" or source.numerator is None:
        return rows
    rows, condition = source.numerator(spec, rows)
    return rows.filter(condition)


def compute(spec: Spec, aggregate: str, window: Span, level: str) -> list[Figure]:
    """Figures of one indicator over one window, one per group of `level`."""
    source = _source(spec)
    rows = source.rows(spec, window).annotate(_g=source.group(spec, level))
    if level == Level.SURGEON:
        rows = rows.filter(_g__isnull=False)
    if aggregate == "median_minutes":
        return _medians(spec, source, rows, level)
    if aggregate == "count":
        counted = rows.values("_g").annotate(n=Count("pk")).order_by()
        return [Figure(str(r["_g"]), None, r["n"], float(r["n"])) for r in counted]
    assert source.numerator is not None
    rows, condition = source.numerator(spec, rows)
    grouped = rows.values("_g").annotate(den=Count("pk"), num=Count("pk", filter=condition))
    return [
        Figure(str(r["_g"]), r["num"], r["den"], r["num"] / r["den"] if r["den"] else None)
        for r in grouped.order_by()
    ]


def _medians(spec: Spec, source: _Source, rows: QuerySet[Any], level: str) -> list[Figure]:
    assert source.time is not None
    measure = spec["measure"]
    rows = rows.annotate(
        _from=source.time(spec, measure["from"]), _to=source.time(spec, measure["to"])
    ).filter(_from__isnull=False, _to__isnull=False, _to__gte=F("_from"))
    rows = rows.annotate(_d=ExpressionWrapper(F("_to") - F("_from"), output_field=DurationField()))
    partition = None if level == Level.PREFECTURE else [F("_g")]
    rows = rows.annotate(
        _rn=Window(RowNumber(), partition_by=partition, order_by=[F("_d").asc(), F("pk").asc()]),
        _n=Window(Count("pk"), partition_by=partition),
    )
    # the middle row (odd n) or the two middle rows (even n) of each group
    middle = rows.filter(_rn__gte=(F("_n") + 1) / 2, _rn__lte=(F("_n") + 2) / 2)
    found: dict[str, tuple[int, list[float]]] = {}
    for key, duration, n in middle.values_list("_g", "_d", "_n"):
        minutes = duration.total_seconds() / 60 if isinstance(duration, timedelta) else duration
        found.setdefault(str(key), (n, []))[1].append(float(minutes))
    return [Figure(key, None, n, sum(ms) / len(ms)) for key, (n, ms) in found.items()]
