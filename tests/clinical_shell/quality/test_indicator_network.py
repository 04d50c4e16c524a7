"""Network indicators: referral rates and answer times, teleconsultation, overrides, no data."""

from datetime import date, timedelta

import pytest
from quality_cohorts import at, consultation, encounter, figures, override, patient, referral
from shell_personas import Network, Personas

JAN = date(2026, 1, 1)


def test_up_and_down_referral_rates(shell_network: Network, personas: Personas) -> None:
    n, t = shell_network, at(2026, 1, 4)
    by = personas.county_surgeon
    sent_up = encounter(n.shuangbai, t, kind="outpatient")
    referral(
        sent_up.patient, n.shuangbai, n.center, direction="up", sent=t + timedelta(hours=5), by=by
    )
    late = encounter(n.shuangbai, t, kind="emergency")
    referral(late.patient, n.shuangbai, n.center, direction="up", sent=t + timedelta(days=5), by=by)
    encounter(n.shuangbai, t)
    elsewhere = encounter(n.shuangbai, t)  # referred up by another institution: not this one's
    referral(
        elsewhere.patient, n.tuodian, n.center, direction="up", sent=t + timedelta(hours=1), by=by
    )
    rate = figures("up-referral-rate", JAN, "institution")[str(n.shuangbai.pk)]
    assert (rate.numerator, rate.denominator) == (1, 4)
    stay = encounter(n.center, t)
    referral(
        stay.patient, n.center, n.shuangbai, direction="down", sent=t + timedelta(days=6), by=by
    )
    encounter(n.center, t)
    down = figures("down-referral-rate", JAN, "institution")[str(n.center.pk)]
    assert (down.numerator, down.denominator) == (1, 2)


def test_referral_answer_within_24h_and_median(shell_network: Network, personas: Personas) -> None:
    n, t = shell_network, at(2026, 1, 4)
    by, who = personas.county_surgeon, patient(n.shuangbai, date(1950, 1, 1))
    for hours in (2, 10, 30):
        referral(
            who,
            n.shuangbai,
            n.center,
            direction="up",
            sent=t,
            answered=t + timedelta(hours=hours),
            by=by,
        )
    referral(who, n.shuangbai, n.center, direction="up", sent=t, by=by)  # unanswered
    referral(
        who, n.center, n.shuangbai, direction="down", sent=t, answered=t + timedelta(hours=1), by=by
    )
    answered = figures("up-referral-answered-24h", JAN, "institution")[str(n.center.pk)]
    assert (answered.numerator, answered.denominator) == (2, 4)
    median = figures("up-referral-time-to-answer", JAN)["all"]
    assert median.denominator == 3
    assert median.value == pytest.approx(600.0)
    down = figures("down-referral-time-to-answer", JAN, "institution")[str(n.shuangbai.pk)]
    assert down.value == pytest.approx(60.0)


def test_teleconsultation_turnaround(shell_network: Network, personas: Personas) -> None:
    n, t = shell_network, at(2026, 1, 4)
    by, who = personas.county_surgeon, patient(n.shuangbai, date(1950, 1, 1))
    consultation(who, n.shuangbai, t, t + timedelta(hours=4), by)
    consultation(who, n.shuangbai, t, t + timedelta(hours=8), by)
    consultation(who, n.shuangbai, t, None, by)  # no opinion yet: not measured
    turnaround = figures("teleconsultation-turnaround", JAN)["all"]
    assert turnaround.denominator == 2
    assert turnaround.value == pytest.approx(360.0)


def test_privilege_overrides_counted(shell_network: Network, personas: Personas) -> None:
    n, t = shell_network, at(2026, 1, 4)
    who = patient(n.shuangbai, date(1950, 1, 1))
    override(who, n.shuangbai, personas.county_surgeon, t)
    override(who, n.shuangbai, personas.county_surgeon, t + timedelta(days=3))
    override(who, n.center, personas.center_surgeon, at(2026, 2, 2))
    sites = figures("privilege-overrides", JAN, "institution")
    assert sites[str(n.shuangbai.pk)].value == 2 and str(n.center.pk) not in sites
    surgeons = figures("privilege-overrides", JAN, "surgeon")
    assert surgeons[str(personas.county_surgeon.person.pk)].value == 2
