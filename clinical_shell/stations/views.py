"""Station pages: the live stations list, a station (revoke), enrolment codes, sessions with live
metrics and their verified result, "run a scenario" form, and a user's one-time sign-in code."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from bridge.keys import shell_public_key
from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError
from clinical_shell.network.models import Institution
from clinical_shell.stations import live, selectors, services, streams
from clinical_shell.stations.access import (
    access_session,
    access_station,
    admin_institution_ids,
    check_case_for_session,
    check_may_start_session,
    member_institution_ids,
    require_admin_at,
    visible_sessions,
)
from clinical_shell.stations.models import Station, StationSession, StationStream
from clinical_shell.stations.stream_forms import StationStreamForm
from sim_core.metric_labels import METRIC_LABELS, metric_label
from sim_core.scenarios import ScenarioError, list_scenarios, load_scenario

PAGE_SIZE = 20
# live samples carry a few running values besides the scoring metrics (bridge.station)
LIVE_METRIC_LABELS = {"elapsed_s": "用时 / elapsed (s)"}


def _labels() -> dict[str, object]:
    """Texts the live script writes into the page (in the page's language)."""
    return {
        "presence": {"online": _("在线"), "busy": _("使用中"), "offline": _("离线")},
        "never": _("从未"),
        "metrics": {**METRIC_LABELS, **LIVE_METRIC_LABELS},
        "session_url": reverse("stations:session_detail", args=[0]),
        "states_url": reverse("stations:station_states"),
        "session_state_url": reverse("stations:session_state", args=[0]),
    }


def _scenario_title(name: str) -> str:
    try:
        return load_scenario(name).title
    except ScenarioError:
        return name


def _int_or_none(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None


@login_required
@require_http_methods(["GET"])
def station_list(request: HttpRequest) -> HttpResponse:
    stations = list(selectors.stations_at(member_institution_ids(request.user)))
    audit.record(actor=signed_in_user(request), action="station.list", detail={"via": "page"})
    rows = [(s, live.station_event(s)) for s in stations]
    return render(
        request,
        "stations/station_list.html",
        {
            "rows": rows,
            "is_admin": bool(admin_institution_ids(request.user)),
            "labels": _labels(),
        },
    )


@login_required
@require_http_methods(["GET"])
def station_states(request: HttpRequest) -> JsonResponse:
    """Presence of the stations the user sees, for the pages' 2-second refresh: the bridge runs
    in its own process, and without Redis its live events cannot reach this one. Not audited:
    no patient data, and the page that polls it was."""
    stations = selectors.stations_at(member_institution_ids(request.user))
    return JsonResponse({"stations": [live.station_event(s) for s in stations]})


@login_required
@require_http_methods(["GET"])
def session_state(request: HttpRequest, session_id: int) -> JsonResponse:
    """A session's state, result and latest metrics for its page's refresh (see
    `station_states`); the page's own read was checked and audited, this repeats the check."""
    session = (
        StationSession.objects.filter(visible_sessions(request.user), pk=session_id)
        .select_related("result")
        .first()
    )
    if session is None:
        raise NotFoundError("session_not_found", _("未找到训练记录"))
    return JsonResponse({**live.session_event(session), "metrics": session.last_metrics})


@login_required
@require_http_methods(["GET"])
def station_detail(request: HttpRequest, station_id: int) -> HttpResponse:
    station = access_station(request.user, station_id)
    return _station_page(request, station, StationStreamForm(), "", 200)


def _station_page(
    request: HttpRequest, station: Station, form: StationStreamForm, stream_error: str, status: int
) -> HttpResponse:
    # the caller passed access_station for `station`
    sessions = selectors.sessions_of_station(station.pk, visible_sessions(request.user))
    may_manage = station.institution_id in admin_institution_ids(request.user)
    user = signed_in_user(request)
    return render(
        request,
        "stations/station_detail.html",
        {
            "station": station,
            "event": live.station_event(station),
            "sessions": sessions,
            "may_manage": may_manage,
            # what the station sent and the shell refused, for whoever administers it
            "refusals": selectors.refusals_of_station(station.pk) if may_manage else [],
            "labels": _labels(),
            # the station's view streamed live: the last stream, and who may start one
            "stream": streams.current_stream(station),
            "may_stream": streams.may_stream(user, station) and not station.is_revoked,
            "stream_form": form,
            "stream_error": stream_error,
        },
        status=status,
    )


@login_required
@require_http_methods(["POST"])
def station_stream_start(request: HttpRequest, station_id: int) -> HttpResponse:
    station = access_station(request.user, station_id)
    form = StationStreamForm(request.POST)
    if not form.is_valid():
        return _station_page(request, station, form, "", 422)
    try:
        stream = streams.start_station_stream(
            actor=signed_in_user(request),
            station=station,
            invitees=form.cleaned_data["invitees"],
        )
    except DomainError as exc:
        return _station_page(request, station, form, exc.message, exc.status or 409)
    assert stream.live_session_id is not None
    return redirect("live:session_watch", session_id=stream.live_session_id)


@login_required
@require_http_methods(["POST"])
def station_stream_stop(request: HttpRequest, station_id: int) -> HttpResponse:
    station = access_station(request.user, station_id)
    stream = StationStream.objects.filter(station=station, uid=request.POST.get("stream", ""))
    found = stream.select_related("station").first()
    if found is None:
        raise NotFoundError("stream_not_found", _("未找到这路直播画面"))
    try:
        streams.stop_station_stream(actor=signed_in_user(request), stream=found)
    except DomainError as exc:
        return _station_page(request, station, StationStreamForm(), exc.message, exc.status or 409)
    return redirect("stations:station_detail", station_id=station.pk)


@login_required
@require_http_methods(["GET", "POST"])
def station_revoke(request: HttpRequest, station_id: int) -> HttpResponse:
    station = access_station(request.user, station_id, manage=True)
    error = ""
    if request.method == "POST":
        try:
            services.revoke_station(
                actor=signed_in_user(request),
                station=station,
                reason=request.POST.get("reason", ""),
            )
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("stations:station_detail", station_id=station.pk)
    return render(
        request,
        "stations/station_revoke.html",
        {"station": station, "error": error},
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def enrolment_codes(request: HttpRequest) -> HttpResponse:
    admin_ids = admin_institution_ids(request.user)
    issued = None
    error = ""
    if request.method == "POST":
        institution_id = _int_or_none(request.POST.get("institution", "")) or 0
        require_admin_at(request.user, institution_id)
        ttl_minutes = _int_or_none(request.POST.get("ttl_minutes", "")) or 60
        try:
            issued = services.create_enrolment_code(
                actor=signed_in_user(request),
                institution=Institution.objects.get(pk=institution_id),
                room=request.POST.get("room", ""),
                ttl=timedelta(minutes=ttl_minutes),
            )
        except DomainError as exc:
            error = exc.message
    codes = selectors.enrolment_codes_at(admin_ids)
    page = Paginator(codes, PAGE_SIZE).get_page(request.GET.get("page"))
    audit.record(actor=signed_in_user(request), action="station.enrolment_code_list")
    return render(
        request,
        "stations/enrolment_codes.html",
        {
            "page": page,
            "institutions": Institution.objects.filter(pk__in=admin_ids),
            "issued": issued,
            "shell_key": shell_public_key(settings.OSTEON_BRIDGE_KEY_DIR) if issued else "",
            "bridge_url": settings.OSTEON_BRIDGE_URL,
            "error": error,
            "is_admin": bool(admin_ids),
            "now": timezone.now(),
        },
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET"])
def session_list(request: HttpRequest) -> HttpResponse:
    sessions = selectors.session_rows(StationSession.objects.filter(visible_sessions(request.user)))
    page = Paginator(sessions, PAGE_SIZE).get_page(request.GET.get("page"))
    audit.record(actor=signed_in_user(request), action="station_session.list")
    return render(request, "stations/session_list.html", {"page": page})


@login_required
@require_http_methods(["GET"])
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_session(request.user, session_id)
    session = selectors.session_rows(StationSession.objects.filter(pk=session.pk)).get()
    result = getattr(session, "result", None)
    return render(
        request,
        "stations/session_detail.html",
        {
            "session": session,
            "result": result,
            # the live script reloads when the published result differs from this one
            "result_key": f"{result.pk}:{result.verification}" if result is not None else "",
            "metrics": (
                [(metric_label(k), v) for k, v in sorted(result.metrics.items())]
                if result is not None
                else []
            ),
            "scenario_title": _scenario_title(session.scenario),
            "labels": _labels(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def session_new(request: HttpRequest) -> HttpResponse:
    """ "Run scenario S on case C at station X for user U"."""
    actor = signed_in_user(request)
    stations = selectors.stations_at(member_institution_ids(request.user)).filter(status="enrolled")
    values = {
        "station": request.POST.get("station", request.GET.get("station", "")),
        "case_hash": request.POST.get("case_hash", ""),
        "scenario": request.POST.get("scenario", ""),
        "username": request.POST.get("username", actor.get_username()),
    }
    error = ""
    if request.method == "POST":
        try:
            station_id = _int_or_none(values["station"])
            if station_id is None:
                raise DomainError("station_required", _("请选择工作站"), status=422)
            station = access_station(request.user, station_id)
            trainee = (
                get_user_model()
                .objects.filter(username=values["username"].strip(), is_active=True)
                .first()
            )
            if trainee is None:
                raise NotFoundError("user_not_found", _("未找到该用户"))
            check_may_start_session(actor, station, trainee)
            check_case_for_session(actor, values["case_hash"].strip())
            session = services.start_session_from_shell(
                actor=actor,
                station=station,
                case_content_hash=values["case_hash"].strip(),
                scenario=values["scenario"],
                user=trainee,
            )
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("stations:session_detail", session_id=session.pk)
    return render(
        request,
        "stations/session_new.html",
        {
            "stations": stations,
            "cases": selectors.known_cases(),
            "scenarios": [(name, load_scenario(name).title) for name in list_scenarios()],
            "values": values,
            "error": error,
        },
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def sign_in_code(request: HttpRequest) -> HttpResponse:
    issued = None
    if request.method == "POST":
        issued = services.issue_sign_in_code(actor=signed_in_user(request))
    return render(request, "stations/sign_in_code.html", {"issued": issued})
