"""Training pass rate (verified simulator results) and credentialing coverage (operations under
privilege management booked under valid privileges), on hand-built cohorts."""

from collections.abc import Callable
from datetime import date, datetime, timedelta
from itertools import count

import pytest
from django.contrib.auth.models import User
from django.test import Client
from quality_cohorts import at, figures, patient
from shell_personas import Network, Personas

from clinical_shell.network.models import Institution
from clinical_shell.quality import selectors, services
from clinical_shell.scheduling.models import Booking
from clinical_shell.stations.models import SessionResult, Station

JAN = date(2026, 1, 1)
_serial = count(1)


def _station(institution: Institution) -> Station:
    n = next(_serial)
    return Station.objects.create(
        name=f"模拟工作站{n}",
        institution=institution,
        room="技能中心",
        curve_public_key=f"curve{n:035d}",
        signing_public_key=f"{n:064x}",
    )


def _result(
    station: Station,
    user: User,
    ended: datetime,
    *,
    passed: bool,
    verification: str = SessionResult.Verification.VERIFIED,
) -> None:
    n = next(_serial)
    SessionResult.objects.create(
        message_id=f"m{n}",
        station=station,
        user=user,
        case_hash="sha256:" + "0" * 64,
        scenario="pedicle_pilot_hole",
        recording_sha256="0" * 64,
        recording_path="",
        score=90.0 if passed else 40.0,
        passed=passed,
        final_state_hash="x",
        signature="00",
        ended_at=ended,
        verification=verification,
    )


def test_training_pass_rate_counts_verified_results_only(
    shell_network: Network, personas: Personas
) -> None:
    n, t = shell_network, at(2026, 1, 10)
    center, county = _station(n.center), _station(n.shuangbai)
    trainee = personas.county_surgeon
    for passed in (True, True, False):
        _result(center, trainee, t, passed=passed)
    _result(county, trainee, t, passed=False)
    # a rejected replay and a result not verified yet never count, even marked passed
    _result(center, trainee, t, passed=True, verification=SessionResult.Verification.REJECTED)
    _result(center, trainee, t, passed=True, verification=SessionResult.Verification.PENDING)
    _result(center, trainee, at(2026, 2, 1), passed=True)  # February
    network = figures("training-pass-rate", JAN)["all"]
    assert (network.numerator, network.denominator) == (2, 4)
    sites = figures("training-pass-rate", JAN, "institution")
    assert (sites[str(n.center.pk)].numerator, sites[str(n.center.pk)].denominator) == (2, 3)
    assert sites[str(n.shuangbai.pk)].value == 0.0
    county_level = figures("training-pass-rate", JAN, "county")
    assert county_level["双柏县"].denominator == 1


def _booking(
    surgeon: User,
    institution: Institution,
    day: date,
    *,
    grade: int = 3,
    technique: str = "",
    override: bool = False,
    state: str = Booking.State.PERFORMED,
) -> None:
    Booking.objects.create(
        patient=patient(institution, date(1950, 1, 1)),
        procedure_name="腰椎后路融合术",
        procedure_code="81.08",
        grade=grade,
        technique_code=technique,
        surgeon=surgeon,
        institution=institution,
        scheduled_on=day,
        state=state,
        emergency_override=override,
        override_reason="急诊" if override else "",
        booked_by=surgeon,
    )


def test_credentialing_coverage(shell_network: Network, personas: Personas) -> None:
    n, day = shell_network, date(2026, 1, 12)
    surgeon = personas.county_surgeon
    _booking(surgeon, n.shuangbai, day)  # grade 3 under privilege: covered
    _booking(surgeon, n.shuangbai, day, grade=4, technique="allograft-msk")  # covered
    _booking(surgeon, n.shuangbai, day, override=True)  # emergency override: not covered
    _booking(surgeon, n.shuangbai, day, state=Booking.State.FLAGGED)  # privilege lapsed
    _booking(surgeon, n.shuangbai, day, state=Booking.State.CANCELLED)  # not an operation
    _booking(surgeon, n.shuangbai, day, grade=2)  # grade 2: not under privilege management
    _booking(surgeon, n.shuangbai, day, grade=1, technique="allograft-msk")  # restricted: counts
    _booking(surgeon, n.shuangbai, date(2026, 2, 1))  # February
    site = figures("credentialing-coverage", JAN, "institution")[str(n.shuangbai.pk)]
    assert (site.numerator, site.denominator) == (3, 5)
    by_surgeon = figures("credentialing-coverage", JAN, "surgeon")
    assert by_surgeon[str(surgeon.person.pk)].denominator == 5


def test_empty_period_shows_no_data_and_thresholds_apply(
    shell_network: Network, personas: Personas
) -> None:
    services.recompute_month(JAN, codes=["training-pass-rate", "credentialing-coverage"])
    shown = {f.code: f for f in selectors.indicator_results(month=JAN)}
    for code in ("training-pass-rate", "credentialing-coverage"):
        assert shown[code].status == "no_data" and shown[code].value is None
    for _ in range(12):
        _booking(personas.county_surgeon, shell_network.shuangbai, date(2026, 1, 20))
    _booking(personas.county_surgeon, shell_network.shuangbai, date(2026, 1, 20), override=True)
    services.recompute_month(JAN, codes=["credentialing-coverage"])
    shown = {f.code: f for f in selectors.indicator_results(month=JAN)}
    coverage = shown["credentialing-coverage"]
    assert coverage.value == pytest.approx(12 / 13) and coverage.status == "alarm"
    assert (coverage.numerator, coverage.denominator) == (12, 13)


def test_result_window_is_when_the_assessment_ended(
    shell_network: Network, personas: Personas
) -> None:
    station = _station(shell_network.center)
    _result(
        station, personas.county_surgeon, at(2026, 1, 31, 23) - timedelta(minutes=1), passed=True
    )
    assert figures("training-pass-rate", JAN)["all"].denominator == 1


def test_drill_down_lists_assessments_and_bookings_of_the_scope(
    shell_network: Network, personas: Personas
) -> None:
    n, t = shell_network, at(2026, 1, 10)
    center, county = _station(n.center), _station(n.shuangbai)
    _result(center, personas.county_surgeon, t, passed=True)
    _result(center, personas.county_surgeon, t, passed=False)
    _result(county, personas.county_surgeon, t, passed=False)
    office = personas.quality_manager
    every = selectors.cases_behind(office, "training-pass-rate", month=JAN)
    assert every.count() == 3 and {r.source for r in every.page(10)} == {"assessment"}
    at_center = selectors.cases_behind(
        office, "training-pass-rate", month=JAN, level="institution", key=str(n.center.pk)
    )
    rows = at_center.page(10)
    assert len(rows) == 2 and {r.institution_id for r in rows} == {n.center.pk}
    assert all(r.patient_id is None and "/stations/" in r.link for r in rows)
    passed = selectors.cases_behind(
        office,
        "training-pass-rate",
        month=JAN,
        level="institution",
        key=str(n.center.pk),
        numerator=True,
    )
    assert passed.count() == 1

    _booking(personas.county_surgeon, n.shuangbai, date(2026, 1, 12))
    _booking(personas.county_surgeon, n.shuangbai, date(2026, 1, 12), override=True)
    uncovered = selectors.cases_behind(office, "credentialing-coverage", month=JAN)
    assert [r.detail.endswith("紧急越权") for r in uncovered.page(10)] == [False, True]
    # the county surgeon works at 双柏: the county's bookings, not the center's assessments
    own = selectors.cases_behind(personas.county_surgeon, "training-pass-rate", month=JAN)
    assert [r.institution_id for r in own.page(10)] == [n.shuangbai.pk]


def test_the_drill_down_page_lists_assessments_a_page_at_a_time(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    station = _station(shell_network.center)
    for i in range(55):
        _result(
            station, personas.county_surgeon, at(2026, 1, 10) + timedelta(minutes=i), passed=True
        )
    client = signed_in_client(personas.quality_manager)
    url = "/quality/cases/training-pass-rate/?level=prefecture&key=all&month=2026-01"
    first = client.get(url)
    assert first.status_code == 200
    assert first.context["total"] == 55 and first.context["pages"] == 2
    html = first.content.decode()
    assert html.count('data-source="assessment"') == 50
    second = client.get(url + "&page=2")
    assert second.content.decode().count('data-source="assessment"') == 5
    assert client.get(url + "&page=x").context["page"] == 1
