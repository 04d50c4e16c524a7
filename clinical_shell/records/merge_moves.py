"""What a merge of duplicate records moves: every row of the patient's care that points at the
merged record, in every app, found from the models themselves so that an app added later (a new
table with a patient key) is moved too, not left behind on a record nobody opens any more.

Kept where they are: the records' own bookkeeping (their care links are copied separately, the
duplicate review and merge requests, the merged record's pointer to the one kept). The audit log
keeps patient ids as written (it is append-only and is the history).
"""

from dataclasses import dataclass

from django.db import IntegrityError, models, transaction
from django.db.models import ForeignObjectRel
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from clinical_shell.errors import DomainError
from clinical_shell.records.models import Patient

_KEPT = {
    "records.Patient",
    "records.CareRelationship",
    "records.DuplicateCandidate",
    "records.MergeRequest",
}

# how the confirmation names what moves; a table not named here shows its verbose name
_NAMES: dict[str, Promise] = {
    "records.Encounter": pgettext_lazy("merge moves", "就诊"),
    "records.Allergy": pgettext_lazy("merge moves", "过敏"),
    "records.Document": pgettext_lazy("merge moves", "文书"),
    "records.Problem": pgettext_lazy("merge moves", "问题"),
    "imaging.Study": pgettext_lazy("merge moves", "影像检查"),
    "imaging.StudyLinkRequest": pgettext_lazy("merge moves", "影像关联申请"),
    "imaging.SimulationCase": pgettext_lazy("merge moves", "模拟病例"),
    "imaging.CaseBuildJob": pgettext_lazy("merge moves", "病例构建任务"),
    "planning.Plan": pgettext_lazy("merge moves", "手术规划"),
    "referrals.Referral": pgettext_lazy("merge moves", "转诊"),
    "referrals.Consultation": pgettext_lazy("merge moves", "会诊"),
    "referrals.MdtCase": pgettext_lazy("merge moves", "MDT 病例"),
    "scheduling.Booking": pgettext_lazy("merge moves", "手术预约"),
    "live.LiveSession": pgettext_lazy("merge moves", "手术直播"),
}


@dataclass(frozen=True)
class Reference:
    model: type[models.Model]
    field: str

    @property
    def label(self) -> str:
        return f"{self.model._meta.label}.{self.field}"

    @property
    def name(self) -> str:
        return str(_NAMES.get(self.model._meta.label, self.model._meta.verbose_name_plural))

    def rows(self, patient_id: int) -> "models.QuerySet[models.Model]":
        return self.model._base_manager.filter(**{f"{self.field}_id": patient_id})


def patient_references() -> list[Reference]:
    """Every (model, field) holding a patient key that a merge moves, records' own first."""
    found = []
    for rel in Patient._meta.get_fields(include_hidden=True):
        # reverse sides of foreign keys to Patient: another table's patient column
        if not isinstance(rel, ForeignObjectRel) or rel.related_model is None:
            continue
        model = rel.related_model
        if model._meta.label not in _KEPT:
            found.append(Reference(model, rel.field.name))
    return sorted(found, key=lambda r: (r.model._meta.app_label != "records", r.label))


@dataclass(frozen=True)
class Moving:
    label: str
    name: str
    count: int


def what_moves(patient_id: int) -> list[Moving]:
    """Per table, how many rows a merge would move from `patient_id`; the care record's own
    tables always listed, others only where there is something."""
    listed = []
    for ref in patient_references():
        count = ref.rows(patient_id).count()
        if count or ref.model._meta.app_label == "records":
            listed.append(Moving(ref.label, ref.name, count))
    return listed


def move_everything(merged: Patient, survivor: Patient) -> dict[str, int]:
    """Point every moved row of `merged` at `survivor`; the counts by table.

    A row that cannot move because the survivor already has its twin where only one is allowed
    (both records on one MDT meeting's list, say) refuses the merge with the table named, and
    nothing moves (the caller's transaction rolls back).
    """
    moved: dict[str, int] = {}
    for ref in patient_references():
        try:
            with transaction.atomic():
                count = ref.rows(merged.pk).update(**{ref.field: survivor})
        except IntegrityError as exc:
            raise DomainError(
                "merge_conflict",
                _("两份档案在“%(what)s”中有不能并存的记录，请先处理其中一份再合并")
                % {"what": ref.name},
                status=409,
            ) from exc
        if count:
            moved[ref.label] = count
    return moved
