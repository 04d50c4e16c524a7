"""API shapes for plans, their elements, checks and the implant catalog: explicit fields only."""

from datetime import datetime

from ninja import Field, Schema

from clinical_shell.planning.models import Plan, PlanElement
from clinical_shell.planning.services import ElementData

# a point in the case frame [mm]; NaN and infinity pass the schema and are refused with the
# checks' own code ("non_finite_point"), like a point outside the volume
Point = list[float]


class ImplantOut(Schema):
    id: str
    kind: str
    name_zh: str
    name_en: str
    diameter_mm: float
    length_mm: float


class ElementIn(Schema):
    kind: PlanElement.Kind
    label: str = Field("", max_length=100)
    entry_mm: Point = Field(..., min_length=3, max_length=3)
    target_mm: Point = Field(..., min_length=3, max_length=3)
    # required for pedicle screws, K-wires and guide wires; a drill hole may name its drill bit
    implant_id: str = Field("", max_length=64)
    # an osteotomy plane's normal (case frame)
    plane_normal: Point | None = Field(None, min_length=3, max_length=3)
    # a burr region's radius [mm]
    radius_mm: float | None = None

    def data(self) -> ElementData:
        return ElementData(
            kind=str(self.kind),
            label=self.label,
            entry_mm=list(self.entry_mm),
            target_mm=list(self.target_mm),
            implant_id=self.implant_id,
            plane_normal=list(self.plane_normal) if self.plane_normal is not None else None,
            radius_mm=self.radius_mm,
        )


class ElementWriteIn(Schema):
    # the plan version the client last saw
    version: int
    element: ElementIn


class CheckIn(Schema):
    element: ElementIn


class VersionIn(Schema):
    version: int


class PlanIn(Schema):
    patient_id: int
    case_id: int
    title: str = Field(..., min_length=1, max_length=200)


class ZoneOut(Schema):
    # the implant surface to the nearest voxel of the zone [mm]; <= 0 touches it; null: none
    # within 15 mm
    clearance_mm: float | None
    # where along the span, from the entry [mm]
    at_mm: float | None


class ChecksOut(Schema):
    """sim_core.plan_checks.ElementChecks (definitions in docs/planning.md)."""

    kind: str
    implant_id: str | None
    radius_mm: float
    path_length_mm: float
    span_end_mm: list[float]
    span_length_mm: float
    # "nerve", "vessel", "protected_zone"
    zones: dict[str, ZoneOut]
    breach_mm: float | None
    gr_grade: str | None
    bone_width_mm: float | None
    bone_width_at_mm: float | None
    bone_depth_mm: float | None
    # protected_zone_contact, cortical_breach, wider_than_bone, longer_than_bone
    flags: list[str]


class ElementOut(Schema):
    id: int
    kind: str
    label: str
    entry_mm: list[float]
    target_mm: list[float]
    implant_id: str
    plane_normal: list[float] | None
    radius_mm: float | None
    checks: ChecksOut
    updated_at: datetime


class PlanSummaryOut(Schema):
    id: int
    patient_id: int
    case_id: int
    title: str
    status: str
    version: int
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None

    @staticmethod
    def resolve_created_by(obj: Plan) -> str:
        return obj.created_by.get_username()

    @staticmethod
    def resolve_approved_by(obj: Plan) -> str | None:
        return obj.approved_by.get_username() if obj.approved_by is not None else None


class PlanOut(PlanSummaryOut):
    elements: list[ElementOut]

    @staticmethod
    def resolve_elements(obj: Plan) -> list[PlanElement]:
        return list(obj.elements.all())
