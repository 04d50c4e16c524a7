"""API shapes of the network (no patient data)."""

from ninja import Schema


class InstitutionOut(Schema):
    id: int
    code: str
    name: str
    level: str
    county: str
    parent_id: int | None
