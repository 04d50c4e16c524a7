"""Auditing reads that return several rows: the event names every patient the caller was shown.

A list of masked rows is still patient data (PIPL: who saw whose record). One event per page
returned, with `detail.patient_ids` in the order shown; a page of a single patient also fills
the `patient_id` column, so it appears in that patient's access history.
"""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja.pagination import PageNumberPagination

from clinical_shell.audit import services as audit

# attributes naming a patient on rows that belong to one (encounters, studies, duplicate pairs)
_PATIENT_ATTRIBUTES = ("patient_id", "other_id", "survivor_id", "merged_id")


def patient_ids_of(items: Iterable[Any]) -> list[int]:
    ids: dict[int, None] = {}
    for item in items:
        meta = getattr(item, "_meta", None)
        if meta is not None and meta.label_lower == "records.patient":
            ids[int(item.pk)] = None
            continue
        for attribute in _PATIENT_ATTRIBUTES:
            value = getattr(item, attribute, None)
            if isinstance(value, int):
                ids[value] = None
    return list(ids)


def record_read(
    *,
    actor: User | AnonymousUser,
    action: str,
    items: Iterable[Any],
    detail: dict[str, Any] | None = None,
) -> None:
    rows = list(items)
    ids = patient_ids_of(rows)
    audit.record(
        actor=actor,
        action=action,
        patient_id=ids[0] if len(ids) == 1 else None,
        detail={**(detail or {}), "rows": len(rows), "patient_ids": ids},
    )


class AuditedPageNumberPagination(PageNumberPagination):
    """Ninja's page-number pagination that audits the page it returns (`audit_action`).

    The view may put extra audit detail on `request.audit_detail` (e.g. the kind of query).
    """

    def __init__(self, *, audit_action: str, **kwargs: Any) -> None:
        self.audit_action = audit_action
        super().__init__(**kwargs)

    def paginate_queryset(
        self,
        queryset: QuerySet[Any],
        pagination: PageNumberPagination.Input,
        request: HttpRequest,
        **params: Any,
    ) -> Any:
        page = super().paginate_queryset(queryset, pagination, request=request, **params)
        items = list(page[self.items_attribute])
        page[self.items_attribute] = items
        record_read(
            actor=request.user,
            action=self.audit_action,
            items=items,
            detail={"page": pagination.page, **getattr(request, "audit_detail", {})},
        )
        return page
