"""The plan page's rehearsal part: "rehearse on station X" and the deviation report with the
history of the plan's rehearsals (`planning/_rehearsals.html`, included by the plan page)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError
from clinical_shell.planning import rehearsals, selectors
from clinical_shell.planning.access import access_plan
from clinical_shell.planning.models import Plan, Rehearsal
from clinical_shell.stations.access import access_station, member_institution_ids
from clinical_shell.stations.live import display_name
from clinical_shell.stations.selectors import stations_at


def _status(rehearsal: Rehearsal) -> tuple[str, str]:
    """(code, text) of where a rehearsal stands: its result's verification, else its session."""
    result = getattr(rehearsal.session, "result", None)
    if result is not None:
        return result.verification, result.get_verification_display()
    return rehearsal.session.state, rehearsal.session.get_state_display()


def rehearsal_context(user: User | AnonymousUser, plan: Plan) -> dict[str, Any]:
    """What `_rehearsals.html` shows (the caller opened the plan with `access_plan`): per
    element the newest verified report, the history newest first, and the form's choices."""
    history = []
    latest: dict[int, dict[str, Any]] = {}
    for r in selectors.rehearsals_of_plan(plan.pk):
        result = getattr(r.session, "result", None)
        code, text = _status(r)
        history.append(
            {
                "rehearsal": r,
                "who": display_name(r.started_by),
                "station": r.session.station.name,
                "score": result.score if result is not None else None,
                "status": code,
                "status_text": text,
            }
        )
        if r.report and "error" not in r.report and r.element_id not in latest:
            latest[r.element_id] = {
                **r.report,
                "kind_display": r.element.get_kind_display(),
                "at": r.reported_at,
                "rehearsal_id": r.pk,
            }
    elements = list(plan.elements.all())
    approved = plan.status == Plan.Status.APPROVED
    reports = [latest[e.pk] for e in elements if e.pk in latest]
    rehearsable = [e for e in elements if e.kind in rehearsals.SCENARIO_OF_KIND]
    return {
        "rehearsal_history": history,
        "deviation_reports": reports,
        # for the 3D view: each element's newest drilled path beside the planned one
        "achieved_paths": [
            {
                "element_id": r["element_id"],
                "entry_mm": r["achieved"]["entry_mm"],
                "tip_mm": r["achieved"]["tip_mm"],
            }
            for r in reports
            if r.get("achieved", {}).get("entry_mm") and r["achieved"].get("tip_mm")
        ],
        "rehearsable_elements": rehearsable if approved else [],
        # each rehearsable element without a report yet: the table lists it, the form offers
        # the first of them, so a plan's elements are rehearsed one after the other
        "unrehearsed_elements": [e for e in rehearsable if e.pk not in latest],
        "next_element_id": next((e.pk for e in rehearsable if e.pk not in latest), None),
        "rehearsal_stations": list(
            stations_at(member_institution_ids(user)).filter(status="enrolled")
        )
        if approved and user.is_authenticated
        else [],
    }


@login_required
@require_http_methods(["POST"])
def rehearse(request: HttpRequest, plan_id: int) -> HttpResponse:
    """Rehearse one element of the approved plan at a station, for the signed-in surgeon."""
    plan = access_plan(request.user, plan_id, reason="plan rehearse")
    station_raw = request.POST.get("station", "").strip()
    element_raw = request.POST.get("element", "").strip()
    try:
        if not station_raw.isdigit():
            raise DomainError("station_required", _("请选择工作站"), status=422)
        if not element_raw.isdigit():
            raise DomainError("element_required", _("请选择要演练的要素"), status=422)
        station = access_station(request.user, int(station_raw))
        rehearsal = rehearsals.start_rehearsal(
            actor=signed_in_user(request),
            plan=plan,
            element_id=int(element_raw),
            station=station,
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect(reverse("planning:plan_detail", args=[plan.pk]) + "#rehearsals")
    messages.success(request, _("已发送到工作站，请在工作站上完成演练"))
    return redirect("stations:session_detail", session_id=rehearsal.session_id)
