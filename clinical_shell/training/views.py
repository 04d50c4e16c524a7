"""Training pages: a trainee's progress (modules, attempts, learning curves, standing in the
cohort), an instructor's group (who is behind), and starting a module's session."""

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.stations.access import access_station, member_institution_ids
from clinical_shell.stations.selectors import stations_at
from clinical_shell.training import selectors, services
from clinical_shell.training.models import Curriculum, Module, TrainingGroup
from sim_core.metric_labels import metric_label


def _curves(progress: list[selectors.ModuleProgress]) -> list[dict[str, object]]:
    """Per module: the score and each metric over the verified attempts (for ECharts)."""
    curves = []
    for p in progress:
        names = sorted({name for point in p.curve for name in point["metrics"]})
        curves.append(
            {
                "title": p.module.display_title,
                "min_score": p.module.pass_score,
                "points": [[point["at"], point["score"]] for point in p.curve],
                "metrics": [
                    {
                        "name": metric_label(name),
                        "points": [
                            [point["at"], point["metrics"][name]]
                            for point in p.curve
                            if isinstance(point["metrics"].get(name), int | float)
                        ],
                    }
                    for name in names
                ],
            }
        )
    return curves


@login_required
@require_http_methods(["GET"])
def progress(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    rows = selectors.progress_of(user)
    audit.record(actor=user, action="training.progress_view", detail={"trainee": user.pk})
    return render(
        request,
        "training/progress.html",
        {
            "trainee": user,
            "rows": rows,
            "curves": _curves(rows),
            "standings": [
                selectors.standing_in(user, g) for g in selectors.groups_of_trainee(user)
            ],
            "groups": selectors.groups_instructed_by(user),
            "stations": stations_at(member_institution_ids(user)).filter(status="enrolled"),
        },
    )


@login_required
@require_http_methods(["GET"])
def group(request: HttpRequest, group_id: int) -> HttpResponse:
    user = signed_in_user(request)
    found = TrainingGroup.objects.filter(pk=group_id).select_related("institution").first()
    if found is None:
        raise NotFoundError("not_found", _("未找到该培训组"))
    if not found.instructors.filter(pk=user.pk).exists():
        raise PermissionDeniedError("not_instructor", _("只有该组带教老师可以查看"))
    audit.record(actor=user, action="training.group_view", target=found)
    rows = selectors.group_overview(found)
    module_ids: list[int] = []
    for row in rows:
        for p in row.progress:
            if p.module.pk not in module_ids:
                module_ids.append(p.module.pk)
    modules = {m.pk: m for m in Module.objects.filter(pk__in=module_ids)}
    table = [
        (row, [next((p for p in row.progress if p.module.pk == mid), None) for mid in module_ids])
        for row in rows
    ]
    return render(
        request,
        "training/group.html",
        {
            "group": found,
            "modules": [modules[m] for m in module_ids],
            "table": table,
            "all_modules": selectors.modules(),
            "curricula": Curriculum.objects.all(),
            "min_due": timezone.localdate().isoformat(),
        },
    )


@login_required
@require_http_methods(["POST"])
def assign(request: HttpRequest, group_id: int) -> HttpResponse:
    """Assign a module, or every module of a curriculum, to the whole group by a due date."""
    user = signed_in_user(request)
    found = TrainingGroup.objects.filter(pk=group_id, instructors=user).first()
    if found is None:
        raise PermissionDeniedError("not_instructor", _("只有该组带教老师可以布置"))
    try:
        due_on = date.fromisoformat(request.POST.get("due_on", ""))
    except ValueError:
        messages.error(request, _("请填写截止日期"))
        return redirect("training:group", group_id=found.pk)
    what = request.POST.get("what", "")
    try:
        if what.startswith("curriculum:") and what[11:].isdigit():
            curriculum = Curriculum.objects.filter(pk=int(what[11:])).first()
            if curriculum is None:
                raise NotFoundError("not_found", _("未找到该培训计划"))
            services.assign_curriculum(
                actor=user, curriculum=curriculum, group=found, due_on=due_on
            )
        elif what.startswith("module:") and what[7:].isdigit():
            module = selectors.modules().filter(pk=int(what[7:])).first()
            if module is None:
                raise NotFoundError("not_found", _("未找到该模块"))
            for trainee in found.trainees.all():
                services.assign_module(
                    actor=user, module=module, trainee=trainee, due_on=due_on, group=found
                )
        else:
            raise DomainError("nothing_chosen", _("请选择模块或培训计划"), status=422)
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("training:group", group_id=found.pk)


@login_required
@require_http_methods(["POST"])
def start(request: HttpRequest, module_id: int) -> HttpResponse:
    user = signed_in_user(request)
    module = Module.objects.filter(pk=module_id, active=True).first()
    if module is None:
        raise NotFoundError("not_found", _("未找到该模块"))
    raw = request.POST.get("station", "").strip()
    try:
        if not raw.isdigit():
            raise DomainError("station_required", _("请选择工作站"), status=422)
        station = access_station(request.user, int(raw))
        session = services.start_module_session(actor=user, module=module, station=station)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("training:progress")
    return redirect("stations:session_detail", session_id=session.pk)
