"""Reads of the records for pages, the API and other apps (access is checked by the caller)."""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import (
    Case,
    Exists,
    F,
    IntegerField,
    Model,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Right, Substr
from django.utils import timezone

from clinical_shell.audit.models import AuditEvent
from clinical_shell.records.access import RecordScope
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
# the last 4-6 characters of a resident ID (the last may be X)
_ID_TAIL = re.compile(r"^\d{3,5}[\dXx]$")
_DIGITS = re.compile(r"^\d{1,12}$")
# 1958-03-14, 1958/3/14, 1958.3.14, 1958年3月14日; 19580314 is tried in classify_query
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
# a patient number typed with its mark: #123, No.123 (the list shows it as #123)
_PATIENT_NUMBER = re.compile(r"^(?:#|no\.?)(\d{1,12})$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class SearchQuery:
    # "all", "resident_id", "invalid_id", "pinyin", "name", "birth_date", "id_tail"
    # (4-6 digits: the end of a resident ID or a patient number), "patient_number"
    kind: str
    value: str


def normalize_query(raw: str) -> str:
    """NFKC (全角 ｚｓｆ / １９５８ / 　 become zsf / 1958 / a space), spaces dropped."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", raw))


def _as_date(year: str, month: str, day: str) -> date | None:
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def classify_query(raw: str) -> SearchQuery:
    """What the clerk typed: an 18-character ID, the last 4-6 characters of one, a birth date,
    a patient number, pinyin (initials or spelled out), or a Chinese name (or given name)."""
    text = normalize_query(raw)
    if not text:
        return SearchQuery("all", "")
    if _ID_LIKE.match(text):
        try:
            return SearchQuery("resident_id", normalize_resident_id(text))
        except ResidentIdError:
            return SearchQuery("invalid_id", text)
    if match := _DATE.match(text):
        day = _as_date(*match.groups())
        return SearchQuery("birth_date", day.isoformat()) if day else SearchQuery("none", text)
    if len(text) == 8 and text.isdigit() and (day := _as_date(text[:4], text[4:6], text[6:])):
        return SearchQuery("birth_date", day.isoformat())
    if _ID_TAIL.match(text):
        return SearchQuery("id_tail", text.upper())
    if match := _PATIENT_NUMBER.match(text):
        return SearchQuery("patient_number", match.group(1))
    if _DIGITS.match(text):
        return SearchQuery("patient_number", text)
    if _ASCII_LETTERS.match(text):
        return SearchQuery("pinyin", text.lower())
    return SearchQuery("name", text)


def live_patients() -> QuerySet[Patient]:
    return Patient.objects.filter(deleted_at__isnull=True, merged_into__isnull=True)


def _id_tail_matches(value: str) -> Q:
    """The end of the resident ID via the indexed suffix column (equality, each length its own
    index); four or more digits may also be a patient number."""
    column = "resident_id_suffix" if len(value) == 6 else f"id_last{len(value)}"
    tail = Q(**{column: value})
    return tail | Q(pk=int(value)) if value.isdigit() else tail


def filter_by_query(patients: QuerySet[Patient], query: SearchQuery) -> QuerySet[Patient]:
    if query.kind == "resident_id":
        return patients.filter(resident_id_digest=resident_id_digest(query.value))
    if query.kind in ("invalid_id", "none"):
        return patients.none()
    if query.kind == "pinyin":
        # initials (zsf) or spelled pinyin (zhangsan): both prefix matches on indexed columns
        return patients.filter(
            Q(name_pinyin_initials__startswith=query.value) | Q(name_pinyin__startswith=query.value)
        )
    if query.kind == "name":
        # the start of the full name, or the whole given name (三丰 for 张三丰: the name after
        # its first character, indexed as SUBSTRING(name, 2)); compound surnames (欧阳) are not
        # told apart: 阳明 finds 欧阳明
        return patients.alias(given_name=Substr("name", 2)).filter(
            Q(name__startswith=query.value) | Q(given_name=query.value)
        )
    if query.kind == "birth_date":
        return patients.filter(birth_date=date.fromisoformat(query.value))
    if query.kind == "id_tail":
        return patients.alias(
            id_last4=Right("resident_id_suffix", 4), id_last5=Right("resident_id_suffix", 5)
        ).filter(_id_tail_matches(query.value))
    if query.kind == "patient_number":
        return patients.filter(pk=int(query.value))
    return patients


# patient lists: 汉语拼音 order; the same reading (张伟, 章伟) by name, then by id
PINYIN_ORDER = ("name_sort_key", "name", "id")


def _match_rank(query: SearchQuery) -> Case:
    """0 exact, 1 prefix, 2 the pinyin initials exactly, 3 the start of the initials.

    What a Chinese clerk expects: the full name (or its full spelling) typed is the person
    meant; 张三 is listed before 张三丰 for 张三 and for zhangsan; zs finds 张三 before 张三丰.
    A given name (三丰) ranks after every name that starts with what was typed.
    """
    value = query.value
    if query.kind == "name":
        exact, prefix = Q(name=value), Q(name__startswith=value)
    elif query.kind == "pinyin":
        exact, prefix = Q(name_pinyin=value), Q(name_pinyin__startswith=value)
    else:
        # an ID number, date or patient number matches exactly or not at all
        return Case(default=Value(0), output_field=IntegerField())
    return Case(
        When(exact, then=Value(0)),
        When(prefix, then=Value(1)),
        When(name_pinyin_initials=value, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class SearchFilters:
    """Narrowing of a patient search; every field optional. Each uses an index on PostgreSQL.

    `institution_id`: in care at this one of the user's institutions (care_inst_patient).
    `sex`: the sex column (low selectivity; rides on patient_demographics with an age range).
    `age_min`/`age_max`: whole years today, as birth-date bounds (patient_demographics).
    `registered_from`/`registered_to`: the day the patient was registered (patient_registered_on).
    `visited_from`/`visited_to`: an encounter started on one of those days (encounter_timeline).
    `mine_user_id`: "my patients": an encounter this user attended (the attending FK index), or
    registered at one of the user's institutions (the registered_at FK index).
    `recent_user_id`: patients this user opened (audit `patient.read`) in the last
    `RECENT_DAYS` days (audit_actor_time).
    """

    institution_id: int | None = None
    sex: str = ""
    age_min: int | None = None
    age_max: int | None = None
    registered_from: date | None = None
    registered_to: date | None = None
    visited_from: date | None = None
    visited_to: date | None = None
    mine_user_id: int | None = None
    recent_user_id: int | None = None


RECENT_DAYS = 30

# sort keys of the list (a leading "-" reverses): the column and the tie-breakers after it
SORTS: dict[str, tuple[str, ...]] = {
    "name": PINYIN_ORDER,
    "birth_date": ("birth_date", *PINYIN_ORDER),
    "sex": ("sex", *PINYIN_ORDER),
    "institution": ("registered_at__name", *PINYIN_ORDER),
    "last_visit": ("last_visit", *PINYIN_ORDER),
}


def age_in_years(birth_date: date, today: date) -> int:
    """Whole years on `today` (the birthday itself counts; 29 February on 1 March)."""
    return (
        today.year
        - birth_date.year
        - ((today.month, today.day) < (birth_date.month, birth_date.day))
    )


def _patients_read_by(*, user_id: int, since: datetime) -> QuerySet[AuditEvent, int | None]:
    """Ids of the patients `user_id` opened (successful `patient.read` events) since `since`,
    as a subquery on the audit_actor_time index. Belongs in audit.selectors (a read of the
    audit log); kept here until that app offers it."""
    return AuditEvent.objects.filter(
        actor_user_id=user_id,
        occurred_at__gte=since,
        action="patient.read",
        outcome=AuditEvent.Outcome.SUCCESS,
        patient_id__isnull=False,
    ).values_list("patient_id", flat=True)


def _years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year without one
        return today.replace(year=today.year - years, day=28)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _apply_filters(
    patients: QuerySet[Patient], filters: SearchFilters, institution_ids: list[int]
) -> QuerySet[Patient]:
    today = timezone.localdate()
    if filters.sex:
        patients = patients.filter(sex=filters.sex)
    if filters.age_min is not None:
        # at least N whole years old: born on or before this day N years ago
        patients = patients.filter(birth_date__lte=_years_ago(today, filters.age_min))
    if filters.age_max is not None:
        # at most N whole years old: not yet N+1, born after this day N+1 years ago
        patients = patients.filter(birth_date__gt=_years_ago(today, filters.age_max + 1))
    if filters.registered_from is not None:
        patients = patients.filter(created_at__gte=_day_start(filters.registered_from))
    if filters.registered_to is not None:
        patients = patients.filter(
            created_at__lt=_day_start(filters.registered_to + timedelta(days=1))
        )
    if filters.visited_from is not None or filters.visited_to is not None:
        visits = Encounter.objects.filter(patient_id=OuterRef("pk"), deleted_at__isnull=True)
        if filters.visited_from is not None:
            visits = visits.filter(started_at__gte=_day_start(filters.visited_from))
        if filters.visited_to is not None:
            visits = visits.filter(
                started_at__lt=_day_start(filters.visited_to + timedelta(days=1))
            )
        patients = patients.filter(Exists(visits))
    if filters.mine_user_id is not None:
        # one id set from two indexes (encounter attending, patient registered_at), joined
        # once: an OR of the two made PostgreSQL scan every patient
        attended = Encounter.objects.filter(
            attending__user_id=filters.mine_user_id, deleted_at__isnull=True
        ).values("patient_id")
        registered = Patient.objects.filter(registered_at_id__in=institution_ids).values("pk")
        patients = patients.filter(pk__in=attended.union(registered))
    if filters.recent_user_id is not None:
        opened = _patients_read_by(
            user_id=filters.recent_user_id,
            since=timezone.now() - timedelta(days=RECENT_DAYS),
        )
        patients = patients.filter(pk__in=opened)
    return patients


def search_patients(
    *,
    institution_ids: list[int],
    text: str,
    filters: SearchFilters | None = None,
    sort: str = "",
) -> QuerySet[Patient]:
    """Live patients in care at one of `institution_ids` matching `text` and `filters`.

    Ordered by `sort` (a key of `SORTS`, "-" for descending) or else by how well they match
    (`_match_rank`), then in 汉语拼音 order (`PINYIN_ORDER`). Each row carries `last_visit`,
    the start of its latest live encounter (None without one).
    """
    filters = filters or SearchFilters()
    scope = institution_ids
    if filters.institution_id is not None:
        # one of the user's own institutions only: another one widens nothing, it empties
        scope = [filters.institution_id] if filters.institution_id in institution_ids else []
    in_care = CareRelationship.objects.filter(patient_id=OuterRef("pk"), institution_id__in=scope)
    scoped = live_patients().filter(Exists(in_care))
    query = classify_query(text)
    last_visit = (
        Encounter.objects.filter(patient_id=OuterRef("pk"), deleted_at__isnull=True)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    patients = (
        _apply_filters(filter_by_query(scoped, query), filters, institution_ids)
        .select_related("registered_at")
        .annotate(last_visit=Subquery(last_visit))
    )
    descending = sort.startswith("-")
    columns = SORTS.get(sort.lstrip("-"))
    if columns is None:
        return patients.annotate(match_rank=_match_rank(query)).order_by(
            "match_rank", *PINYIN_ORDER
        )
    first = F(columns[0])
    return patients.order_by(
        first.desc(nulls_last=True) if descending else first.asc(nulls_last=True), *columns[1:]
    )


def _in_scope(scope: RecordScope) -> Q:
    return Q(institution_id__in=sorted(scope.own)) | Q(pk__in=scope.shared_ids("encounter"))


def patient_timeline(patient_id: int, scope: RecordScope) -> QuerySet[Encounter]:
    """The patient's live encounters the reader sees (their institutions' and those shared with
    them), newest first, with their codes."""
    return (
        Encounter.objects.filter(_in_scope(scope), patient_id=patient_id, deleted_at__isnull=True)
        .select_related("institution", "department", "attending")
        .prefetch_related(
            Prefetch("diagnoses", queryset=Diagnosis.objects.filter(deleted_at__isnull=True)),
            Prefetch("procedures", queryset=Procedure.objects.filter(deleted_at__isnull=True)),
        )
        .order_by("-started_at", "-id")
    )


def unshared_encounter_count(patient_id: int, scope: RecordScope) -> int:
    """How many of the patient's encounters other institutions hold and have not shared: shown as
    a count, so a clinician knows to ask (by referral or consultation), never as content."""
    return (
        Encounter.objects.filter(patient_id=patient_id, deleted_at__isnull=True)
        .exclude(_in_scope(scope))
        .count()
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


def recommended_survivor(first: Patient, second: Patient) -> Patient:
    """The record to keep of a duplicate pair: the more complete (ID number, phone, address,
    then more visits), and of two as complete the older (registered first)."""

    def completeness(patient: Patient) -> tuple[int, int, float, int]:
        filled = sum(bool(value) for value in (patient.resident_id, patient.phone, patient.address))
        return (
            filled,
            encounter_count(patient.pk),
            -patient.created_at.timestamp(),
            -patient.pk,
        )

    return max((first, second), key=completeness)
