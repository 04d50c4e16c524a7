"""The credentialing scene shared by its tests: a pedicle module, a grade-4 requirement at the
prefecture center, its committee (chair, four members, one of them the applicant's supervisor),
the applicant (the center surgeon) and a station for their scores.

Import as `from credentialing_board import Board, build_board`.
"""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import User
from shell_personas import Network, Personas, make_persona
from training_scores import CASE, enrolled_station

from clinical_shell.credentialing import services
from clinical_shell.credentialing.models import Committee, Requirement
from clinical_shell.network.models import Role
from clinical_shell.stations.models import Station
from clinical_shell.training.models import Module


@dataclass(frozen=True)
class Board:
    applicant: User
    supervisor: User  # a committee member who supervises the applicant
    members: list[User]  # members who may vote (not the supervisor)
    chair: User
    committee: Committee
    module: Module
    requirement: Requirement
    station: Station


def build_board(personas: Personas, network: Network) -> Board:
    center = network.center
    chair = make_persona("jiang.chair", "蒋主任", "chief", (center, Role.COMMITTEE_MEMBER))
    supervisor = make_persona("chen.sup", "陈上级", "chief", (center, Role.COMMITTEE_MEMBER))
    members = [
        personas.committee_member,
        make_persona("feng.member", "冯委员", "chief", (center, Role.COMMITTEE_MEMBER)),
        make_persona("chu.member", "褚委员", "associate_chief", (center, Role.COMMITTEE_MEMBER)),
    ]
    committee = services.set_committee(
        actor=None, institution=center, chair=chair, quorum=3, majority_percent=50
    )
    services.set_institution_licence(
        actor=None, institution=center, hospital_grade=3, max_surgical_grade=4
    )
    module = Module.objects.create(
        code="pedicle-l4",
        title="L4 椎弓根开路",
        scenario="pedicle_pilot_hole",
        case_kind=Module.CaseKind.TEACHING,
        case_content_hash=CASE,
        pass_score=70,
    )
    requirement = services.save_requirement(
        actor=None,
        grade=4,
        min_years_practice=5,
        min_hospital_grade=3,
        modules=[(module, 2, 80.0, 90)],
    )
    applicant = personas.center_surgeon
    services.set_practice_record(
        actor=None, user=applicant, practising_since=date(2012, 9, 1), supervisor=supervisor
    )
    return Board(
        applicant=applicant,
        supervisor=supervisor,
        members=members,
        chair=chair,
        committee=committee,
        module=module,
        requirement=requirement,
        station=enrolled_station(center),
    )
