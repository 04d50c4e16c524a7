"""Reads of the records for pages, the API and other apps (access is checked by the caller)."""

import re
from dataclasses import dataclass
from datetime import date

from django.db.models import (
    Case,
    Exists,
    IntegerField,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)

from clinical_shell.records.identity import (
    ResidentIdError,
    normalize_resident_id,
    pinyin_full,
    resident_id_digest,
)
from clinical_shell.records.models import (
    Allergy,
    CareRelationship,
    Diagnosis,
    Document,
    DuplicateCandidate,
    Encounter,
    MergeRequest,
    Patient,
    Problem,
    Procedure,
    RecordVersion,
)

_ASCII_LETTERS = re.compile(r"^[a-zA-Z]+$")
_ID_LIKE = re.compile(r"^\d{17}[\dXx]$")


@dataclass(frozen=True)
class SearchQuery:
    kind: str  # "all", "resident_id", "pinyin", "name", "invalid_id"
    value: str


def classify_query(raw: str) -> SearchQuery:
    """An 18-character ID, pinyin (initials or spelled out), or the start of a Chinese name."""
    text = raw.strip()
    if not text:
        return SearchQuery("all", "")
    if _ID_LIKE.match(text):
        try:
            return SearchQuery("resident_id", normalize_resident_id(text))
        except ResidentIdError:
            return SearchQuery("invalid_id", text)
    if _ASCII_LETTERS.match(text):
        return SearchQuery("pinyin", text.lower())
    return SearchQuery("name", text)


def live_patients() -> QuerySet[Patient]:
    return Patient.objects.filter(deleted_at__isnull=True, merged_into__isnull=True)


def filter_by_query(patients: QuerySet[Patient], query: SearchQuery) -> QuerySet[Patient]:
    if query.kind == "resident_id":
        return patients.filter(resident_id_digest=resident_id_digest(query.value))
    if query.kind == "invalid_id":
        return patients.none()
    if query.kind == "pinyin":
        # initials (zsf) or spelled pinyin (zhangsan): both prefix matches on indexed columns
        return patients.filter(
            Q(name_pinyin_initials__startswith=query.value) | Q(name_pinyin__startswith=query.value)
        )
    if query.kind == "name":
        return patients.filter(name__startswith=query.value)
    return patients


# patient lists: 汉语拼音 order; the same reading (张伟, 章伟) by name, then by id
PINYIN_ORDER = ("name_sort_key", "name", "id")


def _match_rank(query: SearchQuery) -> Case:
    """0 exact, 1 prefix, 2 the pinyin initials exactly, 3 the start of the initials.

    What a Chinese clerk expects: the full name (or its full spelling) typed is the person
    meant; 张三 is listed before 张三丰 for 张三 and for zhangsan; zs finds 张三 before 张三丰.
    """
    value = query.value
    if query.kind == "name":
        exact, prefix = Q(name=value), Q(name__startswith=value)
    elif query.kind == "pinyin":
        exact, prefix = Q(name_pinyin=value), Q(name_pinyin__startswith=value)
    else:
        # an ID number matches exactly or not at all; an empty query lists everyone
        return Case(default=Value(0), output_field=IntegerField())
    return Case(
        When(exact, then=Value(0)),
        When(prefix, then=Value(1)),
        When(name_pinyin_initials=value, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )


def search_patients(*, institution_ids: list[int], text: str) -> QuerySet[Patient]:
    """Live patients in care at one of `institution_ids` matching `text`.

    Ordered by how well they match (`_match_rank`), then in 汉语拼音 order (`PINYIN_ORDER`).
    """
    in_care = CareRelationship.objects.filter(
        patient_id=OuterRef("pk"), institution_id__in=institution_ids
    )
    scoped = live_patients().filter(Exists(in_care))
    query = classify_query(text)
    return (
        filter_by_query(scoped, query)
        .select_related("registered_at")
        .annotate(match_rank=_match_rank(query))
        .order_by("match_rank", *PINYIN_ORDER)
    )


def patient_timeline(patient_id: int) -> QuerySet[Encounter]:
    """All live encounters of the patient across the network, newest first, with their codes."""
    return (
        Encounter.objects.filter(patient_id=patient_id, deleted_at__isnull=True)
        .select_related("institution", "department", "attending")
        .prefetch_related(
            Prefetch("diagnoses", queryset=Diagnosis.objects.filter(deleted_at__isnull=True)),
            Prefetch("procedures", queryset=Procedure.objects.filter(deleted_at__isnull=True)),
        )
        .order_by("-started_at", "-id")
    )


def encounter_count(patient_id: int) -> int:
    return Encounter.objects.filter(patient_id=patient_id, deleted_at__isnull=True).count()


def open_duplicates(*, institution_ids: list[int] | None = None) -> QuerySet[DuplicateCandidate]:
    """Open candidates; with `institution_ids`, only pairs whose both patients are in care there."""
    candidates = DuplicateCandidate.objects.filter(status=DuplicateCandidate.Status.OPEN)
    if institution_ids is not None:
        in_care = CareRelationship.objects.filter(institution_id__in=institution_ids)
        candidates = candidates.filter(
            Exists(in_care.filter(patient_id=OuterRef("patient_id"))),
            Exists(in_care.filter(patient_id=OuterRef("other_id"))),
        )
    return candidates.select_related("patient__registered_at", "other__registered_at").order_by(
        "created_at", "id"
    )


def duplicate_candidate(candidate_id: int) -> DuplicateCandidate | None:
    return DuplicateCandidate.objects.filter(pk=candidate_id).first()


def patient_by_resident_id(resident_id: str) -> Patient | None:
    """The one live patient with this (normalised) resident ID number, if exactly one."""
    matches = list(live_patients().filter(resident_id_digest=resident_id_digest(resident_id))[:2])
    return matches[0] if len(matches) == 1 else None


def in_care_at(patient_id: int, institution_ids: list[int]) -> bool:
    """Whether one of `institution_ids` has a care relationship with the patient."""
    return bool(institution_ids) and (
        CareRelationship.objects.filter(
            patient_id=patient_id, institution_id__in=institution_ids
        ).exists()
    )


def pending_merge_request(candidate_id: int) -> MergeRequest | None:
    """The merge request of a duplicate pair waiting for a second person, if any."""
    return (
        MergeRequest.objects.select_related("requested_by__person", "survivor", "merged")
        .filter(candidate_id=candidate_id, status=MergeRequest.Status.PENDING)
        .first()
    )


def encounter_detail(encounter_id: int) -> Encounter | None:
    """A live encounter with its institution, department, attending and live codes."""
    return (
        Encounter.objects.filter(pk=encounter_id, deleted_at__isnull=True)
        .select_related("institution", "department", "attending", "patient")
        .prefetch_related(
            Prefetch(
                "diagnoses",
                queryset=Diagnosis.objects.filter(deleted_at__isnull=True).order_by(
                    "-primary", "id"
                ),
            ),
            Prefetch(
                "procedures",
                queryset=Procedure.objects.filter(deleted_at__isnull=True).order_by(
                    "performed_at", "id"
                ),
            ),
            Prefetch(
                "documents",
                queryset=Document.objects.filter(deleted_at__isnull=True)
                .select_related("author")
                .order_by("created_at", "id"),
            ),
        )
        .first()
    )


def live_diagnosis(encounter_id: int, diagnosis_id: int) -> Diagnosis | None:
    return Diagnosis.objects.filter(
        pk=diagnosis_id, encounter_id=encounter_id, deleted_at__isnull=True
    ).first()


def live_procedure(encounter_id: int, procedure_id: int) -> Procedure | None:
    return Procedure.objects.filter(
        pk=procedure_id, encounter_id=encounter_id, deleted_at__isnull=True
    ).first()


def record_history(row: Model) -> QuerySet[RecordVersion]:
    """Every version of a record, newest first, with who changed it."""
    return (
        RecordVersion.objects.filter(model_label=row._meta.label_lower, object_id=row.pk)
        .select_related("changed_by__person")
        .order_by("-version", "-id")
    )


def patient_allergies(patient_id: int) -> QuerySet[Allergy]:
    return Allergy.objects.filter(patient_id=patient_id, deleted_at__isnull=True).order_by("id")


def patient_allergy(patient_id: int, allergy_id: int) -> Allergy | None:
    return patient_allergies(patient_id).filter(pk=allergy_id).first()


def patient_problems(patient_id: int, *, active_only: bool = False) -> QuerySet[Problem]:
    """The problem list: active problems first, then by onset (unknown onset last)."""
    problems = Problem.objects.filter(patient_id=patient_id, deleted_at__isnull=True)
    if active_only:
        problems = problems.filter(status=Problem.Status.ACTIVE)
    return problems.annotate(
        resolved=Case(
            When(status=Problem.Status.RESOLVED, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    ).order_by("resolved", "-onset_date", "id")


def patient_problem(patient_id: int, problem_id: int) -> Problem | None:
    return Problem.objects.filter(
        pk=problem_id, patient_id=patient_id, deleted_at__isnull=True
    ).first()


@dataclass(frozen=True)
class PossibleDuplicate:
    patient: Patient
    reasons: tuple[str, ...]  # "resident_id", "name_birth_date", "pinyin_birth_date"


def possible_duplicates(
    *, name: str, birth_date: date | None, resident_id: str = "", limit: int = 10
) -> list[PossibleDuplicate]:
    """Live patients anywhere in the regional index who may be the person about to be registered.

    Same resident ID (by digest), or same name and birth date, or the same spelled pinyin and
    birth date (张伟 / 章伟 typed for the same man). The caller shows them masked and audits it.
    """
    reasons: dict[int, list[str]] = {}
    live = live_patients()
    if resident_id:
        try:
            digest = resident_id_digest(normalize_resident_id(resident_id))
        except ResidentIdError:
            digest = ""
        if digest:
            for pk in live.filter(resident_id_digest=digest).values_list("pk", flat=True)[:limit]:
                reasons.setdefault(pk, []).append("resident_id")
    name = name.strip()
    if name and birth_date is not None:
        same_day = live.filter(birth_date=birth_date)
        for pk in same_day.filter(name=name).values_list("pk", flat=True)[:limit]:
            reasons.setdefault(pk, []).append("name_birth_date")
        spelled = pinyin_full(name)
        if spelled:
            by_pinyin = same_day.filter(name_pinyin=spelled).exclude(name=name)
            for pk in by_pinyin.values_list("pk", flat=True)[:limit]:
                reasons.setdefault(pk, []).append("pinyin_birth_date")
    patients = live.filter(pk__in=reasons).select_related("registered_at").order_by("id")
    return [PossibleDuplicate(p, tuple(reasons[p.pk])) for p in patients[:limit]]
