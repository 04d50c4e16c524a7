"""Types and constants of the clinical-shell test personas (fixtures are in conftest.py).

Import as `from shell_personas import Personas, Network` (pytest puts this directory on sys.path).
"""

from dataclasses import dataclass

from django.contrib.auth.models import User

from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Person

PERSONA_PASSWORD = "Osteon-test-2026!"


@dataclass(frozen=True)
class Network:
    center: Institution
    shuangbai: Institution  # 双柏县人民医院 (county)
    tuodian: Institution  # 双柏县妥甸镇卫生院 (township under 双柏)
    yongren: Institution  # 永仁县人民医院 (another county: the outsider's)


@dataclass(frozen=True)
class Personas:
    township_doctor: User  # 妥甸镇 township doctor
    county_surgeon: User  # 双柏 county orthopedic surgeon
    center_surgeon: User  # prefecture center surgeon, also visiting surgeon at 永仁
    outsider: User  # 永仁 county surgeon: no relationship with 双柏 patients
    committee_member: User  # credentialing committee (center)
    quality_manager: User  # quality manager (center)
    admin: User  # system administrator (center)
    radiologist: User  # 双柏 radiologist: reads records, writes none

    def all(self) -> dict[str, User]:
        return dict(self.__dict__)


def make_persona(username: str, full_name: str, title: str, *at: tuple[Institution, str]) -> User:
    person: Person = network.create_person(
        actor=None, username=username, password=PERSONA_PASSWORD, full_name=full_name, title=title
    )
    for institution, role in at:
        network.add_membership(actor=None, person=person, institution=institution, role=role)
    return person.user


# 532322 = 双柏县; born 1958-03-14; sequence 123 (odd: male); check character computed by GB 11643
SHUANGBAI_MAN_ID = "532322195803141230"
