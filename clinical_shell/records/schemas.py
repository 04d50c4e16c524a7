"""API shapes for patients and encounters: explicit fields, masked ID in lists."""

from datetime import date, datetime

from ninja import Field, Schema


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
    name: str = Field(min_length=1, max_length=64)
    sex: str = Field(pattern="^[MFU]$")
    birth_date: date
    resident_id: str = ""
    phone: str = ""
    address: str = ""


class DiagnosisSchema(Schema):
    icd10_code: str
    description: str
    ao_ota_code: str = ""
    primary: bool = False


class ProcedureSchema(Schema):
    icd9cm3_code: str
    description: str
    performed_at: datetime


class EncounterIn(Schema):
    institution_id: int
    kind: str
    started_at: datetime
    chief_complaint: str
    notes: str = ""
    department_id: int | None = None
    diagnoses: list[DiagnosisSchema] = Field(default_factory=list)
    procedures: list[ProcedureSchema] = Field(default_factory=list)


class EncounterOut(Schema):
    id: int
    patient_id: int
    institution_id: int
    institution_name: str = Field(alias="institution.name")
    kind: str
    started_at: datetime
    chief_complaint: str
    diagnoses: list[DiagnosisSchema]
    procedures: list[ProcedureSchema]


class DuplicateOut(Schema):
    id: int
    patient: PatientListOut
    other: PatientListOut
    reason: str
    status: str


class MergeIn(Schema):
    survivor_id: int
    reason: str = Field(min_length=1, max_length=300)
