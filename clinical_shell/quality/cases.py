"""The cases behind a figure, for every source an indicator is computed from.

A figure's rows are encounters, referrals, consultations, operation bookings or simulator
assessments; the drill-down lists them all as one kind of row (`CaseRow`) so the page and the
API need not know the source. Each source names where its institution lies (the same field
the engine groups by, so the list is exactly the figure's cohort) and how a row reads.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from clinical_shell.records.models import Patient


@dataclass(frozen=True)
class CaseRow:
    source: str  # encounter, referral, consultation, booking, assessment
    id: int
    at: datetime | date | None
    institution_id: int
    institution: str
    # the patient, where the row is about one (an assessment is about a trainee)
    patient_id: int | None
    patient: str
    # what the row is: the encounter's kind, the referral's direction and urgency, ...
    detail: str
    # the row's own page; it checks access again when opened
    link: str

    @property
    def timed(self) -> bool:
        """A booking has a day, the other rows a moment."""
        return isinstance(self.at, datetime)


def _patient(p: Patient) -> str:
    masked = p.masked_resident_id
    return f"{p.name} ({masked})" if masked else p.name


@dataclass(frozen=True)
class _Lister:
    source: str
    institution: str  # the field the engine groups institutions by
    order: str
    related: tuple[str, ...]
    row: Callable[[Any], CaseRow]


def _encounter(e: Any) -> CaseRow:
    return CaseRow(
        source="encounter",
        id=e.pk,
        at=e.started_at,
        institution_id=e.institution_id,
        institution=e.institution.name,
        patient_id=e.patient_id,
        patient=_patient(e.patient),
        detail=str(e.get_kind_display()),
        link=reverse("records:patient_timeline", args=[e.patient_id]),
    )


def _referral(r: Any) -> CaseRow:
    return CaseRow(
        source="referral",
        id=r.pk,
        at=r.sent_at,
        institution_id=r.to_institution_id,
        institution=r.to_institution.name,
        patient_id=r.patient_id,
        patient=_patient(r.patient),
        detail=f"{r.get_direction_display()} · {r.get_urgency_display()} · {r.get_state_display()}",
        link=reverse("referrals:detail", args=[r.pk]),
    )


def _consultation(c: Any) -> CaseRow:
    return CaseRow(
        source="consultation",
        id=c.pk,
        at=c.created_at,
        institution_id=c.requesting_institution_id,
        institution=c.requesting_institution.name,
        patient_id=c.patient_id,
        patient=_patient(c.patient),
        detail=f"{c.get_priority_display()} · {c.get_state_display()}",
        link=reverse("referrals:consult_detail", args=[c.pk]),
    )


def _booking(b: Any) -> CaseRow:
    marks = [b.procedure_name, str(b.get_state_display())]
    if b.emergency_override:
        marks.append(str(_("紧急越权")))
    return CaseRow(
        source="booking",
        id=b.pk,
        at=b.scheduled_on,
        institution_id=b.institution_id,
        institution=b.institution.name,
        patient_id=b.patient_id,
        patient=_patient(b.patient),
        detail=" · ".join(marks),
        link=reverse("scheduling:booking_detail", args=[b.pk]),
    )


def _assessment(r: Any) -> CaseRow:
    trainee = getattr(r.user, "person", None)
    return CaseRow(
        source="assessment",
        id=r.pk,
        at=r.ended_at,
        institution_id=r.station.institution_id,
        institution=r.station.institution.name,
        patient_id=None,
        patient="",
        detail=f"{trainee.full_name if trainee else r.user.get_username()} · {r.scenario} · "
        f"{r.score:.0f} · {_('通过') if r.passed else _('未通过')}",
        link=(
            reverse("stations:session_detail", args=[r.session_id])
            if r.session_id is not None
            else reverse("stations:result_replay", args=[r.pk])
        ),
    )


_LISTERS: dict[str, _Lister] = {
    "encounters": _Lister(
        "encounter", "institution_id", "started_at", ("patient", "institution"), _encounter
    ),
    "referrals": _Lister(
        "referral", "to_institution_id", "sent_at", ("patient", "to_institution"), _referral
    ),
    "consultations": _Lister(
        "consultation",
        "requesting_institution_id",
        "created_at",
        ("patient", "requesting_institution"),
        _consultation,
    ),
    "overrides": _Lister(
        "booking", "institution_id", "scheduled_on", ("patient", "institution"), _booking
    ),
    "credentialing": _Lister(
        "booking", "institution_id", "scheduled_on", ("patient", "institution"), _booking
    ),
    "training": _Lister(
        "assessment",
        "station__institution_id",
        "ended_at",
        ("station__institution", "user__person"),
        _assessment,
    ),
}


def listed(source: str) -> bool:
    return source in _LISTERS


def institution_field(source: str) -> str:
    return _LISTERS[source].institution


@dataclass(frozen=True)
class CasesBehind:
    """The rows of one figure the user may see: counted in the database, read a page at a
    time."""

    source: str
    rows: QuerySet[Any]

    @property
    def kind(self) -> str:
        """What one row is (CaseRow.source); empty for a source without a list."""
        return _LISTERS[self.source].source if self.source else ""

    def count(self) -> int:
        return self.rows.count()

    def page(self, limit: int, offset: int = 0) -> list[CaseRow]:
        if not self.source:
            return []
        lister = _LISTERS[self.source]
        found = self.rows.select_related(*lister.related).order_by(lister.order, "pk")
        return [lister.row(r) for r in found[offset : offset + limit]]


def behind(source: str, model_rows: QuerySet[Any]) -> CasesBehind:
    """`model_rows`: the figure's rows, already narrowed to the scope and to what the user may
    see; re-read by primary key so the annotations of the computation do not travel along."""
    if source not in _LISTERS:
        return CasesBehind(source="", rows=model_rows.none())
    model = model_rows.model
    return CasesBehind(source=source, rows=model.objects.filter(pk__in=model_rows.values("pk")))
