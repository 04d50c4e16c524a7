"""Quality pages: the dashboard (network or one institution), the cases behind a figure, funnel
plots, the warnings inbox, the Excel export and the printable monthly report. Thin: the figures
come from quality.selectors, the actions from quality.warnings."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import NotFoundError, PermissionDeniedError
from clinical_shell.network.selectors import institutions
from clinical_shell.quality import dashboard, export, periods, selectors, warnings
from clinical_shell.quality.models import IndicatorDefinition, Level, PeriodKind

CASES_PER_PAGE = 50


def _scope(request: HttpRequest) -> dashboard.Scope:
    user = signed_in_user(request)
    level = request.GET.get("level")
    if level:
        return dashboard.scope_for(user, level, request.GET.get("key", "all"))
    return dashboard.home_scope(user)


def _period(request: HttpRequest) -> str:
    kind = request.GET.get("period", PeriodKind.MONTH)
    return kind if kind in PeriodKind.values else PeriodKind.MONTH


@login_required
@require_http_methods(["GET"])
def index(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    month = dashboard.parse_month(request.GET.get("month"))
    period = _period(request)
    figures = selectors.indicator_results(
        month=month, period_kind=period, level=scope.level, key=scope.key
    )
    cards = dashboard.cards(figures)
    context: dict[str, object] = {
        "scope": scope,
        "month": month,
        "period": period,
        "months": [periods.add_months(month, -i) for i in range(0, 12)],
        "groups": dashboard.grouped(cards),
        "trend_months": [f"{m:%Y-%m}" for m in periods.last_months(month)],
        "sparklines": {c.figure.code: c.sparkline for c in cards},
        "counts": {
            status: sum(1 for f in figures if f.status == status)
            for status in ("alarm", "warning", "ok", "no_data")
        },
    }
    if scope.level == Level.PREFECTURE:
        placed, unplaced, frame = dashboard.network_map(month)
        context["map"] = {
            "frame": frame,
            "points": [
                {
                    "name": p.institution.name,
                    "value": [p.longitude, p.latitude],
                    "status": p.status,
                    "level": p.institution.level,
                    "alarms": p.alarms,
                    "warnings": p.warnings,
                    "url": reverse("quality:index")
                    + f"?level=institution&key={p.institution.pk}&month={month:%Y-%m}",
                }
                for p in placed
            ],
        }
        context["unplaced"] = unplaced
        context["map_points"] = placed
    return render(request, "quality/index.html", context)


def _definition(code: str) -> IndicatorDefinition:
    found = IndicatorDefinition.objects.filter(code=code, active=True).first()
    if found is None:
        raise NotFoundError("not_found", _("未找到该质控指标"))
    return found


@login_required
@require_http_methods(["GET"])
def cases(request: HttpRequest, code: str) -> HttpResponse:
    user = signed_in_user(request)
    scope = _scope(request)
    definition = _definition(code)
    month = dashboard.parse_month(request.GET.get("month"))
    period = _period(request)
    numerator = request.GET.get("numerator") == "1"
    found = selectors.cases_behind(
        user,
        code,
        month=month,
        period_kind=period,
        level=scope.level,
        key=scope.key,
        numerator=numerator,
    )
    total = found.count()
    pages = max(1, -(-total // CASES_PER_PAGE))
    try:
        page = min(max(1, int(request.GET.get("page", "1"))), pages)
    except ValueError:
        page = 1
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "quality/cases.html",
        {
            "scope": scope,
            "definition": definition,
            "name": definition.name_en if request.LANGUAGE_CODE == "en" else definition.name_zh,
            "month": month,
            "period": period,
            "numerator": numerator,
            "listed": bool(found.source),
            "about_patients": found.kind != "assessment",
            "cases": found.page(CASES_PER_PAGE, (page - 1) * CASES_PER_PAGE),
            "total": total,
            "page": page,
            "pages": pages,
            "query": query.urlencode(),
        },
    )


@login_required
@require_http_methods(["GET"])
def funnel(request: HttpRequest, code: str) -> HttpResponse:
    user = signed_in_user(request)
    if not dashboard.sees_network(user):
        raise PermissionDeniedError(
            "not_quality_office", _("医院间比较(漏斗图)仅供全州质控办公室查看")
        )
    definition = _definition(code)
    month = dashboard.parse_month(request.GET.get("month"))
    period = _period(request)
    data = selectors.funnel(code, month=month, period_kind=period)
    names = {str(i.pk): i.name for i in institutions()}
    points = [
        {
            "name": names.get(p.key, p.key),
            "n": p.n,
            "numerator": p.numerator,
            "value": p.value,
            "outside95": p.limits is not None
            and p.value is not None
            and not (p.limits.lower95 <= p.value <= p.limits.upper95),
            "outside998": p.limits is not None
            and p.value is not None
            and not (p.limits.lower998 <= p.value <= p.limits.upper998),
        }
        for p in data.points
    ]
    chart = {
        "p": data.p,
        "points": [[p["n"], p["value"], p["name"]] for p in points if p["value"] is not None],
        "curve": [[c.n, c.lower95, c.upper95, c.lower998, c.upper998] for c in data.curve],
    }
    return render(
        request,
        "quality/funnel.html",
        {
            "definition": definition,
            "name": definition.name_en if request.LANGUAGE_CODE == "en" else definition.name_zh,
            "month": month,
            "period": period,
            "is_rate": definition.aggregate == "rate",
            "p": data.p,
            "points": points,
            "chart": chart,
        },
    )


def _warnings_reader(request: HttpRequest) -> None:
    user = signed_in_user(request)
    dashboard.home_scope(user)  # refuses anyone outside a quality office


@login_required
@require_http_methods(["GET"])
def warning_list(request: HttpRequest) -> HttpResponse:
    _warnings_reader(request)
    user = signed_in_user(request)
    show_closed = request.GET.get("closed") == "1"
    found = selectors.visible_warnings(user) if show_closed else selectors.open_warnings(user)
    if show_closed:
        found = found.order_by("-raised_at", "-pk")
    return render(
        request,
        "quality/warnings.html",
        {"warnings": found[:300], "show_closed": show_closed},
    )


@login_required
@require_http_methods(["GET", "POST"])
def warning_detail(request: HttpRequest, warning_id: int) -> HttpResponse:
    _warnings_reader(request)
    user = signed_in_user(request)
    found = selectors.visible_warnings(user).filter(pk=warning_id).first()
    if found is None:
        raise NotFoundError("not_found", _("未找到该预警，或您无权处理"))
    error = ""
    if request.method == "POST":
        try:
            if request.POST.get("action") == "acknowledge":
                warnings.acknowledge(
                    actor=user, warning=found, action_note=request.POST.get("action_note", "")
                )
                messages.success(request, _("已确认预警并记录处理措施"))
            elif request.POST.get("action") == "close":
                warnings.close(actor=user, warning=found)
                messages.success(request, _("预警已关闭"))
            return redirect("quality:warning", warning_id=found.pk)
        except PermissionDenied as exc:
            raise PermissionDeniedError("not_responsible", _("您不负责处理该预警")) from exc
        except ValidationError as exc:
            error = " ".join(exc.messages)
    drill = ""
    # a threshold warning's cause is "<indicator>:<level>:<key>"; events name their one case
    if found.indicator is not None and found.cause.startswith(f"{found.indicator.code}:"):
        level, _sep, key = found.cause.partition(":")[2].partition(":")
        drill = (
            reverse("quality:cases", args=[found.indicator.code])
            + f"?level={level}&key={key}&month={found.period_start:%Y-%m}"
        )
    return render(
        request,
        "quality/warning.html",
        {"warning": found, "error": error, "drill": drill},
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET"])
def export_xlsx(request: HttpRequest) -> HttpResponse:
    scope = _scope(request)
    month = dashboard.parse_month(request.GET.get("month"))
    period = _period(request)
    content = export.workbook(scope=scope, month=month, period_kind=period)
    response = HttpResponse(
        content,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    name = f"quality-{scope.level}-{scope.key}-{month:%Y-%m}-{period}.xlsx"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_http_methods(["GET"])
def report(request: HttpRequest) -> HttpResponse:
    from clinical_shell.quality import report as monthly

    scope = _scope(request)
    month = dashboard.parse_month(request.GET.get("month"))
    return render(request, "quality/report.html", monthly.context(scope=scope, month=month))
