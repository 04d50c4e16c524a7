"""Every write of training (modules, curricula, groups, assignments) and starting a module's
session on a station, audited in the same transaction."""

from collections.abc import Iterable, Sequence
from datetime import date

from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.network.models import Institution
from clinical_shell.notifications.services import notify
from clinical_shell.stations import services as stations
from clinical_shell.stations.access import check_case_for_session, check_may_start_session
from clinical_shell.stations.models import Station, StationSession
from clinical_shell.training import selectors
from clinical_shell.training.models import (
    Assignment,
    Curriculum,
    CurriculumModule,
    Module,
    TrainingGroup,
)
from sim_core.scenarios import list_scenarios


@transaction.atomic
def create_module(
    *,
    actor: User | None,
    code: str,
    title: str,
    scenario: str,
    case_kind: str,
    case_content_hash: str,
    pass_score: float,
    attempts_allowed: int = 0,
    prerequisites: Sequence[Module] = (),
    title_en: str = "",
    case_label: str = "",
) -> Module:
    if scenario not in list_scenarios():
        raise DomainError("unknown_scenario", _("未知场景：%(s)s") % {"s": scenario}, status=422)
    if case_kind not in Module.CaseKind.values:
        raise DomainError("bad_case_kind", _("未知病例类型"), status=422)
    if not 0 <= pass_score <= 100 or attempts_allowed < 0:
        raise DomainError("bad_threshold", _("及格分须在 0–100 之间，次数不能为负"), status=422)
    if Module.objects.filter(code=code).exists():
        raise DomainError("code_taken", _("模块代码已存在：%(c)s") % {"c": code})
    module = Module.objects.create(
        code=code,
        title=title,
        title_en=title_en,
        scenario=scenario,
        case_kind=case_kind,
        case_content_hash=case_content_hash,
        case_label=case_label,
        pass_score=pass_score,
        attempts_allowed=attempts_allowed,
    )
    module.prerequisites.set(prerequisites)
    audit.record(
        actor=actor,
        action="training.module_create",
        target=module,
        detail={"code": code, "scenario": scenario, "pass_score": pass_score},
    )
    return module


@transaction.atomic
def create_curriculum(
    *,
    actor: User | None,
    code: str,
    name: str,
    level: str,
    modules: Sequence[Module],
    technique_code: str = "",
    name_en: str = "",
) -> Curriculum:
    if level not in Curriculum.Level.values:
        raise DomainError("bad_level", _("未知培训层级"), status=422)
    curriculum = Curriculum.objects.create(
        code=code, name=name, name_en=name_en, level=level, technique_code=technique_code
    )
    CurriculumModule.objects.bulk_create(
        CurriculumModule(curriculum=curriculum, module=m, position=i) for i, m in enumerate(modules)
    )
    audit.record(actor=actor, action="training.curriculum_create", target=curriculum)
    return curriculum


@transaction.atomic
def create_group(
    *,
    actor: User | None,
    name: str,
    institution: Institution,
    instructors: Iterable[User],
    trainees: Iterable[User],
) -> TrainingGroup:
    group = TrainingGroup.objects.create(name=name, institution=institution)
    group.instructors.set(list(instructors))
    group.trainees.set(list(trainees))
    audit.record(actor=actor, action="training.group_create", target=group)
    return group


def _check_instructs(actor: User, trainee: User, group: TrainingGroup | None) -> None:
    groups = selectors.groups_instructed_by(actor).filter(trainees=trainee)
    if group is not None:
        groups = groups.filter(pk=group.pk)
    if not groups.exists():
        raise PermissionDeniedError("not_instructor", _("只有该学员所在培训组的带教老师可以布置"))


@transaction.atomic
def assign_module(
    *,
    actor: User,
    module: Module,
    trainee: User,
    due_on: date,
    group: TrainingGroup | None = None,
    curriculum: Curriculum | None = None,
    check: bool = True,
) -> Assignment:
    """Assign a module (attempts count from now); assigning it again moves the due date."""
    if check:
        _check_instructs(actor, trainee, group)
    if due_on < timezone.localdate():
        raise DomainError("due_in_past", _("截止日期不能早于今天"), status=422)
    assignment, created = Assignment.objects.get_or_create(
        module=module,
        trainee=trainee,
        defaults={
            "assigned_by": actor,
            "group": group,
            "curriculum": curriculum,
            "assigned_at": timezone.now(),
            "due_on": due_on,
        },
    )
    if not created:
        assignment.due_on = due_on
        assignment.save(update_fields=["due_on"])
    audit.record(
        actor=actor,
        action="training.assign",
        target=assignment,
        detail={"module": module.code, "trainee": trainee.pk, "due_on": due_on.isoformat()},
    )
    notify(
        [trainee],
        title=format_lazy(gettext_lazy("新的培训任务：{}（截止 {}）"), module.title, due_on),
        url=reverse("training:progress"),
        kind="training.assignment",
    )
    return assignment


@transaction.atomic
def assign_curriculum(
    *, actor: User, curriculum: Curriculum, group: TrainingGroup, due_on: date
) -> list[Assignment]:
    if not group.instructors.filter(pk=actor.pk).exists():
        raise PermissionDeniedError("not_instructor", _("只有该培训组的带教老师可以布置"))
    made = []
    for entry in curriculum.entries.select_related("module"):
        for trainee in group.trainees.all():
            made.append(
                assign_module(
                    actor=actor,
                    module=entry.module,
                    trainee=trainee,
                    due_on=due_on,
                    group=group,
                    curriculum=curriculum,
                    check=False,
                )
            )
    return made


def start_module_session(*, actor: User, module: Module, station: Station) -> StationSession:
    """Run the module's scenario on its case at `station` for the actor (the stations app's
    "start session"): refused while a prerequisite is not passed or the attempts are used up."""
    assignment = Assignment.objects.filter(module=module, trainee_id=actor.pk).first()
    if assignment is None:
        raise DomainError("not_assigned", _("该模块未布置给您"))
    passed = {p.module.pk for p in selectors.progress_of(actor) if p.passed}
    progress = selectors.module_progress(actor, module, assignment, passed_modules=passed)
    if progress.locked:
        raise DomainError("prerequisite_missing", _("请先通过前置模块"))
    if progress.exhausted:
        raise DomainError("attempts_exhausted", _("该模块的尝试次数已用完"))
    check_may_start_session(actor, station, actor)
    check_case_for_session(actor, module.case_content_hash)
    session = stations.start_session_from_shell(
        actor=actor,
        station=station,
        case_content_hash=module.case_content_hash,
        scenario=module.scenario,
        user=actor,
    )
    audit.record(
        actor=actor,
        action="training.session_start",
        target=module,
        detail={"session": session.pk, "station": station.pk},
    )
    return session
