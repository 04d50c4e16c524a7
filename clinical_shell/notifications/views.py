from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.notifications import selectors, services
from clinical_shell.notifications.models import Notification

PAGE_SIZE = 20


@login_required
@require_http_methods(["GET"])
def inbox(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    unread_only = request.GET.get("unread") == "1"
    page = Paginator(selectors.for_user(user, unread_only=unread_only), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "notifications/inbox.html",
        {"page": page, "unread_only": unread_only, "english": request.LANGUAGE_CODE == "en"},
    )


@login_required
@require_http_methods(["POST"])
def open_notification(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark one read and go where it points (POST: reading changes state)."""
    user = signed_in_user(request)
    n = get_object_or_404(Notification, pk=notification_id, recipient=user)
    services.mark_read(user, [n.pk])
    return redirect(n.url or "notifications:inbox")


@login_required
@require_http_methods(["POST"])
def mark_all_read(request: HttpRequest) -> HttpResponse:
    services.mark_read(signed_in_user(request))
    return redirect("notifications:inbox")
