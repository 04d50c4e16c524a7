"""Personas and a small network shared by every clinical-shell test (imaging's included).

Network: the prefecture center, two county hospitals (双柏, 永仁) and a township centre under 双柏.
Personas (each a Django user with a `person`): see `Personas`. Patient `patient_in_shuangbai` is
registered at the township centre and was seen at the 双柏 county hospital; nobody else treats them.
"""

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas, make_persona

from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records import services as records
from clinical_shell.records.models import Patient


@pytest.fixture
def shell_network(db: None) -> Network:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    shuangbai = network.create_institution(
        actor=None,
        code="CX-SB",
        name="双柏县人民医院",
        level="county",
        county="双柏县",
        parent=center,
    )
    tuodian = network.create_institution(
        actor=None,
        code="CX-SB-T1",
        name="双柏县妥甸镇卫生院",
        level="township",
        county="双柏县",
        parent=shuangbai,
    )
    yongren = network.create_institution(
        actor=None,
        code="CX-YR",
        name="永仁县人民医院",
        level="county",
        county="永仁县",
        parent=center,
    )
    return Network(center=center, shuangbai=shuangbai, tuodian=tuodian, yongren=yongren)


@pytest.fixture
def personas(shell_network: Network) -> Personas:
    n = shell_network
    return Personas(
        township_doctor=make_persona(
            "li.township", "李乡医", "assistant", (n.tuodian, Role.TOWNSHIP_DOCTOR)
        ),
        county_surgeon=make_persona(
            "wang.county", "王县医", "attending", (n.shuangbai, Role.SURGEON)
        ),
        center_surgeon=make_persona(
            "zhao.center", "赵中心", "chief", (n.center, Role.SURGEON), (n.yongren, Role.SURGEON)
        ),
        outsider=make_persona("sun.yongren", "孙永仁", "attending", (n.yongren, Role.SURGEON)),
        committee_member=make_persona(
            "qian.committee", "钱委员", "chief", (n.center, Role.COMMITTEE_MEMBER)
        ),
        quality_manager=make_persona(
            "zhou.quality", "周质控", "none", (n.center, Role.QUALITY_MANAGER)
        ),
        admin=make_persona("wu.admin", "吴管理", "none", (n.center, Role.ADMINISTRATOR)),
        radiologist=make_persona(
            "zheng.radio", "郑放射", "attending", (n.shuangbai, Role.RADIOLOGIST)
        ),
    )


@pytest.fixture
def patient_in_shuangbai(shell_network: Network, personas: Personas) -> Patient:
    patient = records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
        resident_id=SHUANGBAI_MAN_ID,
    )
    records.record_encounter(
        actor=personas.county_surgeon,
        patient=patient,
        institution=shell_network.shuangbai,
        data=records.EncounterIn(
            kind="inpatient",
            started_at=timezone.now() - timedelta(days=3),
            chief_complaint="跌倒后右髋疼痛 / right hip pain after a fall",
            diagnoses=[
                records.DiagnosisIn("S72.0", "股骨颈骨折 / femoral neck fracture", "31B2.1", True)
            ],
        ),
    )
    return patient


@pytest.fixture
def signed_in_client() -> Callable[[User], Client]:
    """A test client with a real session for `user` (the sign-in page itself is tested apart)."""

    def make(user: User) -> Client:
        client = Client()
        client.force_login(user, backend="clinical_shell.accounts.backends.LockoutModelBackend")
        return client

    return make
