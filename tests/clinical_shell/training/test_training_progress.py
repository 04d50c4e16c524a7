"""Training progress: attempts and passes from judged results only, prerequisites, attempts
allowed, due dates, the instructor's view of who is behind, and starting a module's session."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas, make_persona
from training_scores import CASE, enrolled_station, score_row

from clinical_shell.errors import DomainError
from clinical_shell.network.models import Role
from clinical_shell.notifications.models import Notification
from clinical_shell.stations import case_archives
from clinical_shell.stations.models import SessionResult, Station, StationSession
from clinical_shell.training import selectors, services
from clinical_shell.training.models import Module, TrainingGroup


@dataclass(frozen=True)
class Scene:
    instructor: User
    residents: list[User]
    basics: Module
    advanced: Module
    group: TrainingGroup
    station: Station


@pytest.fixture
def scene(personas: Personas, shell_network: Network) -> Scene:
    instructor = make_persona("he.teacher", "何带教", "chief", (shell_network.center, Role.SURGEON))
    residents = [
        make_persona(f"res{i}", f"住院{i}", "resident", (shell_network.center, Role.RESIDENT))
        for i in range(3)
    ]
    basics = services.create_module(
        actor=None,
        code="pedicle-basic",
        title="椎弓根开路（基础）",
        scenario="pedicle_pilot_hole",
        case_kind="teaching",
        case_content_hash=CASE,
        pass_score=70,
        attempts_allowed=3,
    )
    advanced = services.create_module(
        actor=None,
        code="burr-lesion",
        title="病灶磨除",
        scenario="burr_lesion",
        case_kind="teaching",
        case_content_hash=CASE,
        pass_score=75,
        prerequisites=[basics],
    )
    group = services.create_group(
        actor=None,
        name="2026 级骨科住院医师",
        institution=shell_network.center,
        instructors=[instructor],
        trainees=residents,
    )
    due = timezone.localdate() + timedelta(days=14)
    for resident in residents:
        for module in (basics, advanced):
            services.assign_module(
                actor=instructor, module=module, trainee=resident, due_on=due, group=group
            )
    return Scene(
        instructor=instructor,
        residents=residents,
        basics=basics,
        advanced=advanced,
        group=group,
        station=enrolled_station(shell_network.center),
    )


def _row(user: User, code: str) -> selectors.ModuleProgress:
    return next(p for p in selectors.progress_of(user) if p.module.code == code)


def test_only_verified_passes_count_and_attempts_are_judged_results(
    scene: Scene,
) -> None:
    resident = scene.residents[0]
    station = scene.station
    score_row(station, resident, score=95.0, verification=SessionResult.Verification.PENDING)
    score_row(station, resident, score=95.0, verification=SessionResult.Verification.REJECTED)
    score_row(station, resident, score=60.0)
    row = _row(resident, "pedicle-basic")
    assert (row.attempts, row.passed, row.best_score, row.status) == (2, False, 60.0, "in_progress")
    assert _row(resident, "burr-lesion").status == "locked"
    score_row(station, resident, score=88.0)
    row = _row(resident, "pedicle-basic")
    assert (row.attempts, row.passed, row.best_score) == (3, True, 88.0)
    assert [p["score"] for p in row.curve] == [60.0, 88.0]
    assert _row(resident, "burr-lesion").status == "not_started"


def test_an_attempt_the_scenario_failed_never_passes_the_module(scene: Scene) -> None:
    """A critical error fails the attempt whatever its score (sim_core.scoring caps it, but a
    module's pass score is set by people): the scenario's verdict is required as well."""
    resident = scene.residents[0]
    score_row(scene.station, resident, score=95.0, passed=False)
    row = _row(resident, "pedicle-basic")
    assert (row.attempts, row.passed) == (1, False)


def test_attempts_before_the_assignment_do_not_count_and_a_late_pass_does_not_either(
    scene: Scene,
) -> None:
    resident = scene.residents[1]
    station = scene.station
    score_row(station, resident, score=99.0, days_ago=30)  # before it was assigned
    for _ in range(3):
        score_row(station, resident, score=50.0)
    score_row(station, resident, score=99.0)  # a fourth attempt: beyond the three allowed
    row = _row(resident, "pedicle-basic")
    assert (row.attempts, row.passed, row.status) == (4, False, "exhausted")


def test_the_instructor_sees_who_is_behind(
    scene: Scene, signed_in_client: Callable[[User], Client]
) -> None:
    residents = scene.residents
    station = scene.station
    score_row(station, residents[2], score=90.0)
    for _ in range(3):
        score_row(station, residents[1], score=40.0)
    rows = selectors.group_overview(scene.group)
    assert rows[0].trainee.username == "res1"
    assert [r.behind for r in rows] == [True, False, False]
    standing = selectors.standing_in(residents[2], scene.group)
    assert (standing.rank, standing.size, standing.passed) == (1, 3, 1)

    client = signed_in_client(scene.instructor)
    page = client.get(f"/training/groups/{scene.group.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-trainee="res1" data-behind="true"' in html
    # the assignment form, once, inside the page body
    assert html.count('id="assign"') == 1 and html.index('id="assign"') > html.index("<main>")
    other = signed_in_client(residents[0])
    assert other.get(f"/training/groups/{scene.group.pk}/").status_code == 403


def test_overdue_modules_are_behind(scene: Scene) -> None:
    resident = scene.residents[0]
    later = timezone.localdate() + timedelta(days=15)
    assert _row(resident, "pedicle-basic").status == "not_started"
    row = next(
        p for p in selectors.progress_of(resident, today=later) if p.module.code == "pedicle-basic"
    )
    assert row.status == "overdue" and row.behind


def test_only_an_instructor_of_the_trainee_assigns_and_the_trainee_is_told(
    scene: Scene, personas: Personas
) -> None:
    resident = scene.residents[0]
    with pytest.raises(DomainError) as refused:
        services.assign_module(
            actor=personas.center_surgeon,
            module=scene.basics,
            trainee=resident,
            due_on=timezone.localdate(),
        )
    assert refused.value.code == "not_instructor"
    assert Notification.objects.filter(recipient=resident, kind="training.assignment").count() == 2


def test_a_module_session_starts_on_the_station_with_its_scenario_and_case(
    scene: Scene, tmp_path: Path
) -> None:
    resident = scene.residents[0]
    station = scene.station
    advanced = scene.advanced
    with pytest.raises(DomainError) as locked:
        services.start_module_session(actor=resident, module=advanced, station=station)
    assert locked.value.code == "prerequisite_missing"
    basics = scene.basics
    # the case bundle must exist for the stations app to pack it: a stand-in like its tests

    bundle = tmp_path / "tiny-case"
    bundle.mkdir()
    (bundle / "case.json").write_text('{"content_hash": "sha256:tiny"}')
    Module.objects.filter(pk=basics.pk).update(
        case_content_hash=case_archives.archive_for_bundle(bundle).content_hash
    )
    basics.refresh_from_db()
    session = services.start_module_session(actor=resident, module=basics, station=station)
    assert isinstance(session, StationSession)
    assert (session.scenario, session.case_content_hash, session.user) == (
        "pedicle_pilot_hole",
        basics.case_content_hash,
        resident,
    )


def test_the_instructor_assigns_a_curriculum_to_the_group_from_its_page(
    scene: Scene, signed_in_client: Callable[[User], Client]
) -> None:
    extra = services.create_module(
        actor=None,
        code="neck-wire",
        title="股骨颈导针",
        scenario="femoral_neck_guide_wire",
        case_kind="teaching",
        case_content_hash=CASE,
        pass_score=70,
    )
    curriculum = services.create_curriculum(
        actor=None, code="y1", name="第一年", level="resident_y1", modules=[extra]
    )
    due = (timezone.localdate() + timedelta(days=7)).isoformat()
    url = f"/training/groups/{scene.group.pk}/assign/"
    outsider = signed_in_client(scene.residents[0])
    assert (
        outsider.post(url, {"what": f"curriculum:{curriculum.pk}", "due_on": due}).status_code
        == 403
    )
    client = signed_in_client(scene.instructor)
    response = client.post(url, {"what": f"curriculum:{curriculum.pk}", "due_on": due})
    assert response.status_code == 302
    assigned = {p.module.code for r in scene.residents for p in selectors.progress_of(r)}
    assert "neck-wire" in assigned
    assert all(
        any(p.module.code == "neck-wire" for p in selectors.progress_of(r)) for r in scene.residents
    )
