"""Hip-fracture indicators on a hand-built cohort: inclusions, exclusions, a transfer, periods."""

from datetime import date, timedelta

import pytest
from quality_cohorts import at, encounter, figures
from shell_personas import Network

JAN = date(2026, 1, 1)


@pytest.fixture
def hip_cohort(shell_network: Network) -> Network:
    n = shell_network
    t = at(2026, 1, 10)
    # A: 86 y, operated 20 h after arrival, assessed at 50 h, out of bed 30 h after surgery
    encounter(
        n.shuangbai,
        t,
        icd10="S72.0",
        facts={
            "arrival": t,
            "surgery_start": t + timedelta(hours=20),
            "orthogeriatric_assessment": t + timedelta(hours=50),
            "mobilised": t + timedelta(hours=50),
        },
    )
    # B: 76 y, operated at 40 h (late), assessed at 80 h (late), died within 30 days
    encounter(
        n.shuangbai,
        t,
        icd10="S72.1",
        facts={
            "arrival": t,
            "surgery_start": t + timedelta(hours=40),
            "orthogeriatric_assessment": t + timedelta(hours=80),
            "death_30d": t + timedelta(days=9),
        },
    )
    # C: turns 60 the day after admission: 59, excluded everywhere
    encounter(
        n.shuangbai,
        t,
        born=date(1966, 1, 11),
        icd10="S72.0",
        facts={"arrival": t, "surgery_start": t + timedelta(hours=5)},
    )
    # D: 80 y, treated without surgery: out of prompt-surgery, in assessment and mortality
    encounter(
        n.shuangbai,
        t,
        icd10="S72.2",
        facts={
            "arrival": t,
            "non_operative": t,
            "orthogeriatric_assessment": t + timedelta(hours=10),
        },
    )
    # E: a transfer: arrives at the township (sent on), operated at the center 30 h after the
    # first arrival; counted once, at the center
    first = encounter(
        n.tuodian,
        t,
        icd10="S72.0",
        kind="emergency",
        facts={"arrival": t, "transferred_out": t + timedelta(hours=3)},
    )
    encounter(
        n.center,
        t + timedelta(hours=6),
        who=first.patient,
        icd10="S72.0",
        facts={"arrival": t, "surgery_start": t + timedelta(hours=30)},
    )
    # F: not a hip fracture (S82 tibia), G: an outpatient visit; both out
    encounter(
        n.shuangbai, t, icd10="S82.1", facts={"arrival": t, "surgery_start": t + timedelta(hours=5)}
    )
    encounter(n.shuangbai, t, kind="outpatient", icd10="S72.0", facts={"arrival": t})
    # H: February: outside January, inside the rolling 12 months ending in February
    feb = at(2026, 2, 3)
    encounter(
        n.yongren,
        feb,
        icd10="S72.0",
        facts={"arrival": feb, "surgery_start": feb + timedelta(hours=12)},
    )
    return n


def test_prompt_surgery_counts_inclusions_exclusions_and_transfer(hip_cohort: Network) -> None:
    n = hip_cohort
    whole = figures("hip-prompt-surgery-36h", JAN)["all"]
    # A (20 h) and E at the center (30 h) in time; B late; C under 60, D non-operative, E's
    # township encounter transferred out, F not a hip fracture, G outpatient
    assert (whole.numerator, whole.denominator) == (2, 3)
    assert whole.value == pytest.approx(2 / 3)
    per_site = figures("hip-prompt-surgery-36h", JAN, "institution")
    assert (per_site[str(n.shuangbai.pk)].numerator, per_site[str(n.shuangbai.pk)].denominator) == (
        1,
        2,
    )
    assert (per_site[str(n.center.pk)].numerator, per_site[str(n.center.pk)].denominator) == (1, 1)
    assert str(n.tuodian.pk) not in per_site
    per_county = figures("hip-prompt-surgery-36h", JAN, "county")
    assert (per_county["双柏县"].numerator, per_county["双柏县"].denominator) == (1, 2)


def test_prompt_surgery_empty_and_rolling_periods(hip_cohort: Network) -> None:
    empty = figures("hip-prompt-surgery-36h", date(2026, 3, 1))
    assert [(f.denominator, f.value) for f in empty.values()] in ([], [(0, None)])
    rolling = figures("hip-prompt-surgery-36h", date(2026, 2, 1), rolling=True)["all"]
    assert (rolling.numerator, rolling.denominator) == (3, 4)


def test_orthogeriatric_assessment_within_72h(hip_cohort: Network) -> None:
    whole = figures("hip-orthogeriatric-72h", JAN)["all"]
    # A (50 h) and D (10 h) in time, B at 80 h late, E at the center never assessed
    assert (whole.numerator, whole.denominator) == (2, 4)


def test_mobilised_after_surgery(hip_cohort: Network) -> None:
    whole = figures("hip-mobilised-day1", JAN)["all"]
    # operated: A (out of bed 30 h after surgery), B (never), E at the center (never)
    assert (whole.numerator, whole.denominator) == (1, 3)


def test_hip_thirty_day_mortality(hip_cohort: Network) -> None:
    whole = figures("hip-mortality-30d", JAN)["all"]
    assert (whole.numerator, whole.denominator) == (1, 4)  # B died; A, B, D, E at the center
