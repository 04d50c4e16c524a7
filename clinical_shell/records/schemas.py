"""API shapes for patients and encounters: explicit fields, masked ID in lists."""

from datetime import date, datetime

from ninja import Field, Schema

from clinical_shell.records.models import Diagnosis, Encounter, MergeRequest, Patient, Procedure
from clinical_shell.schema_fields import model_field

# free text without a column limit (TextField): bounded here, far above any real note
NOTES_MAX_LENGTH = 20_000


class PatientListOut(Schema):
    id: int
    name: str
    name_pinyin_initials: str
    masked_resident_id: str
    sex: str
    birth_date: date
    registered_at_id: int


class PatientOut(PatientListOut):
    resident_id: str
    phone: str
    address: str
    version: int


class PatientIn(Schema):
    institution_id: int
    name: str = model_field(Patient, "name")
    sex: str = model_field(Patient, "sex")
    birth_date: date
    resident_id: str = model_field(Patient, "resident_id", "")
    phone: str = model_field(Patient, "phone", "")
    address: str = model_field(Patient, "address", "")


class DiagnosisSchema(Schema):
    icd10_code: str = model_field(Diagnosis, "icd10_code")
    description: str = model_field(Diagnosis, "description")
    ao_ota_code: str = model_field(Diagnosis, "ao_ota_code", "")
    primary: bool = False


class ProcedureSchema(Schema):
    icd9cm3_code: str = model_field(Procedure, "icd9cm3_code")
    description: str = model_field(Procedure, "description")
    performed_at: datetime


class DiagnosisOut(DiagnosisSchema):
    # "icd10" when checked against the code table; "" when only its format was checked
    code_system: str
    laterality: str


class ProcedureOut(ProcedureSchema):
    code_system: str
    laterality: str


class EncounterIn(Schema):
    institution_id: int
    kind: str = model_field(Encounter, "kind")
    started_at: datetime
    chief_complaint: str = model_field(Encounter, "chief_complaint")
    notes: str = Field("", max_length=NOTES_MAX_LENGTH)
    department_id: int | None = None
    diagnoses: list[DiagnosisSchema] = Field(default_factory=list, max_length=50)
    procedures: list[ProcedureSchema] = Field(default_factory=list, max_length=50)


class EncounterOut(Schema):
    id: int
    patient_id: int
    institution_id: int
    institution_name: str = Field(alias="institution.name")
    kind: str
    started_at: datetime
    chief_complaint: str
    diagnoses: list[DiagnosisOut]
    procedures: list[ProcedureOut]


class DuplicateOut(Schema):
    id: int
    patient: PatientListOut
    other: PatientListOut
    reason: str
    status: str


class MergeIn(Schema):
    survivor_id: int
    reason: str = Field(min_length=1, max_length=300)


class MergeRequestOut(Schema):
    """A merge waiting for (or decided by) a second person."""

    id: int
    candidate_id: int
    survivor_id: int
    merged_id: int
    reason: str
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str

    @staticmethod
    def resolve_requested_by(obj: MergeRequest) -> str:
        return obj.requested_by.get_username()

    @staticmethod
    def resolve_decided_by(obj: MergeRequest) -> str | None:
        return obj.decided_by.get_username() if obj.decided_by is not None else None


class MergeDecisionIn(Schema):
    note: str = model_field(MergeRequest, "decision_note", "")


class CodeOut(Schema):
    """One entry of an offline code table; `name` is in the request's language."""

    system: str
    code: str
    name: str
    name_zh: str
    name_en: str
    level: str
    selectable: bool


class CodeSearchParams(Schema):
    system: str
    q: str = Field("", max_length=100)
    limit: int = Field(20, ge=1, le=50)
    selectable: bool = False
