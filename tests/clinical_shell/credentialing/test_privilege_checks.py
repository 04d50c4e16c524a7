"""check_privilege and institution_licensed: what scheduling relies on to refuse a booking."""

from datetime import date

import pytest
from shell_personas import Network, Personas

from clinical_shell.credentialing.models import (
    InstitutionLicence,
    Privilege,
    Technique,
    TechniqueFiling,
)
from clinical_shell.credentialing.services import check_privilege, institution_licensed

ON = date(2026, 6, 1)


def _privilege(personas: Personas, network: Network, **fields: object) -> Privilege:
    values: dict[str, object] = {
        "surgeon": personas.county_surgeon,
        "institution": network.shuangbai,
        "valid_from": date(2026, 1, 1),
        "valid_until": date(2027, 12, 31),
    }
    values.update(fields)
    return Privilege.objects.create(**values)


def test_catalog_has_the_orthopedic_restricted_items_and_four_grades(db: None) -> None:
    codes = set(Technique.objects.filter(orthopedic=True).values_list("code", flat=True))
    assert {"allograft-msk", "ai-assisted-treatment", "tumour-ablation"} <= codes
    from clinical_shell.credentialing.models import SurgicalGrade

    assert list(SurgicalGrade.objects.values_list("level", flat=True)) == [1, 2, 3, 4]


def test_an_active_grade_privilege_covers_its_grade_and_below(
    personas: Personas, shell_network: Network
) -> None:
    held = _privilege(personas, shell_network, grade=3)
    for grade in (1, 3):
        check = check_privilege(
            personas.county_surgeon,
            technique=None,
            grade=grade,
            institution=shell_network.shuangbai,
            on=ON,
        )
        assert check.ok and check.privilege_id == held.pk
    above = check_privilege(
        personas.county_surgeon, technique=None, grade=4, institution=shell_network.shuangbai, on=ON
    )
    assert not above.ok and above.reason_code == "grade_too_low"


def test_a_privilege_counts_only_at_its_institution(
    personas: Personas, shell_network: Network
) -> None:
    _privilege(personas, shell_network, grade=4)
    elsewhere = check_privilege(
        personas.county_surgeon, technique=None, grade=2, institution=shell_network.yongren, on=ON
    )
    assert not elsewhere.ok and elsewhere.reason_code == "no_privilege"


@pytest.mark.parametrize(
    ("fields", "on", "code"),
    [
        ({"valid_until": date(2026, 5, 31)}, ON, "privilege_expired"),
        ({"valid_from": date(2026, 7, 1)}, ON, "privilege_not_started"),
        (
            {"status": Privilege.Status.SUSPENDED, "status_reason": "complication"},
            ON,
            "privilege_suspended",
        ),
        ({"status": Privilege.Status.REVOKED, "status_reason": "audit"}, ON, "privilege_revoked"),
    ],
)
def test_expired_future_suspended_and_revoked_privileges_do_not_count(
    personas: Personas, shell_network: Network, fields: dict[str, object], on: date, code: str
) -> None:
    technique = Technique.objects.get(code="allograft-msk")
    held = _privilege(personas, shell_network, technique=technique, **fields)
    check = check_privilege(
        personas.county_surgeon,
        technique="allograft-msk",
        grade=None,
        institution=shell_network.shuangbai,
        on=on,
    )
    assert not check.ok
    assert check.reason_code == code
    assert check.privilege_id == held.pk
    assert check.reason


def test_both_grade_and_technique_are_required_when_both_are_asked(
    personas: Personas, shell_network: Network
) -> None:
    _privilege(personas, shell_network, grade=4)
    check = check_privilege(
        personas.county_surgeon,
        technique="ai-assisted-treatment",
        grade=3,
        institution=shell_network.shuangbai,
        on=ON,
    )
    assert not check.ok and check.reason_code == "no_privilege"
    unknown = check_privilege(
        personas.county_surgeon,
        technique="no-such",
        grade=None,
        institution=shell_network.shuangbai,
        on=ON,
    )
    assert unknown.reason_code == "unknown_technique"


def test_institution_needs_a_licence_for_the_grade_and_a_filing_for_the_technique(
    personas: Personas, shell_network: Network
) -> None:
    inst = shell_network.shuangbai
    assert institution_licensed(inst, technique=None, grade=2).reason_code == (
        "institution_not_graded"
    )
    InstitutionLicence.objects.create(institution=inst, hospital_grade=2, max_surgical_grade=3)
    assert institution_licensed(inst, technique=None, grade=3).ok
    assert institution_licensed(inst, technique=None, grade=4).reason_code == (
        "institution_grade_too_low"
    )
    assert institution_licensed(inst, technique="allograft-msk", grade=None).reason_code == (
        "technique_not_filed"
    )
    filing = TechniqueFiling.objects.create(
        institution=inst, technique=Technique.objects.get(code="allograft-msk"), filed_on=ON
    )
    assert institution_licensed(inst, technique="allograft-msk", grade=3).ok
    filing.status = TechniqueFiling.Status.SUSPENDED
    filing.save(update_fields=["status"])
    assert institution_licensed(inst, technique="allograft-msk", grade=3).reason_code == (
        "technique_filing_suspended"
    )


def test_surgeons_are_reminded_60_30_and_7_days_before_expiry(
    personas: Personas, shell_network: Network
) -> None:
    from datetime import timedelta

    from clinical_shell.credentialing import services
    from clinical_shell.notifications.models import Notification

    today = date(2026, 6, 1)
    due = _privilege(personas, shell_network, grade=3, valid_until=today + timedelta(days=30))
    _privilege(personas, shell_network, grade=2, valid_until=today + timedelta(days=31))
    _privilege(
        personas,
        shell_network,
        grade=4,
        valid_until=today + timedelta(days=7),
        status=Privilege.Status.REVOKED,
    )
    assert services.remind_expiring_privileges(today=today) == [due.pk]
    told = Notification.objects.get(kind="credentialing.expiry")
    assert told.recipient == personas.county_surgeon
