"""`/api/v1/notifications`: the signed-in person's own notifications only."""

from django.http import HttpRequest
from django.utils import translation
from ninja import Router, Schema
from ninja.pagination import PageNumberPagination, paginate

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.notifications import selectors, services
from clinical_shell.notifications.models import Notification

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str
    created_at: str
    read: bool


class ReadIn(Schema):
    ids: list[int] | None = None


class ReadOut(Schema):
    marked: int
    unread: int


def _out(n: Notification) -> NotificationOut:
    english = translation.get_language() == "en"
    return NotificationOut(
        id=n.pk,
        kind=n.kind,
        title=n.title_en if english else n.title_zh,
        body=n.body_en if english else n.body_zh,
        url=n.url,
        created_at=n.created_at.isoformat(),
        read=n.read_at is not None,
    )


@router.get("", response=list[NotificationOut])
@paginate(PageNumberPagination, page_size=20)
def list_notifications(request: HttpRequest, unread: bool = False) -> list[NotificationOut]:
    user = signed_in_user(request)
    return [_out(n) for n in selectors.for_user(user, unread_only=unread)[:500]]


@router.post("/read", response=ReadOut)
def read_notifications(request: HttpRequest, payload: ReadIn) -> ReadOut:
    user = signed_in_user(request)
    marked = services.mark_read(user, payload.ids)
    return ReadOut(marked=marked, unread=selectors.unread_count(user))
