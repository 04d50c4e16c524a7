"""SSI, early rehabilitation, severe-trauma median, key-operation mortality and reoperation."""

from datetime import date, timedelta

import pytest
from quality_cohorts import at, encounter, figures, surgeon
from shell_personas import Network

JAN = date(2026, 1, 1)


def test_ssi_in_clean_surgery(shell_network: Network) -> None:
    n, t = shell_network, at(2026, 1, 5)
    encounter(n.center, t, facts={"clean_incision": t, "ssi_30d": t + timedelta(days=12)})
    encounter(n.center, t, facts={"clean_incision": t})
    encounter(n.shuangbai, t, facts={"clean_incision": t})
    encounter(n.shuangbai, t, facts={"ssi_30d": t + timedelta(days=3)})  # not a clean incision
    encounter(n.shuangbai, t, kind="outpatient", facts={"clean_incision": t})  # not inpatient
    whole = figures("ssi-clean-30d", JAN)["all"]
    assert (whole.numerator, whole.denominator) == (1, 3)
    site = figures("ssi-clean-30d", JAN, "institution")[str(n.center.pk)]
    assert (site.numerator, site.denominator) == (1, 2)


def test_early_rehabilitation_after_replacement_per_surgeon(shell_network: Network) -> None:
    n, t = shell_network, at(2026, 1, 5)
    wang, zhao = surgeon("wang"), surgeon("zhao")
    op = t + timedelta(hours=24)  # the builder operates 24 h after admission
    encounter(
        n.center,
        t,
        icd9="81.51",
        surgeon=wang,
        facts={"rehab_first_session": op + timedelta(hours=20)},
    )
    encounter(
        n.center,
        t,
        icd9="81.54",
        surgeon=wang,
        facts={"rehab_first_session": op + timedelta(hours=60)},
    )
    encounter(n.center, t, icd9="81.54", surgeon=zhao)
    encounter(
        n.center, t, icd9="79.35", surgeon=zhao, facts={"rehab_first_session": op}
    )  # not a replacement
    whole = figures("arthroplasty-early-rehab", JAN)["all"]
    assert (whole.numerator, whole.denominator) == (1, 3)
    per_surgeon = figures("arthroplasty-early-rehab", JAN, "surgeon")
    assert (per_surgeon[str(wang.pk)].numerator, per_surgeon[str(wang.pk)].denominator) == (1, 2)
    assert (per_surgeon[str(zhao.pk)].numerator, per_surgeon[str(zhao.pk)].denominator) == (0, 1)


def test_severe_trauma_median_minutes(shell_network: Network) -> None:
    n, t = shell_network, at(2026, 1, 7)
    for minutes in (90, 150, 400, 30):  # median of 30, 90, 150, 400 = 120
        encounter(
            n.center,
            t,
            kind="emergency",
            facts={
                "severe_trauma": t,
                "arrival": t,
                "surgery_start": t + timedelta(minutes=minutes),
            },
        )
    for minutes in (60, 200, 100):  # median 100
        encounter(
            n.yongren,
            t,
            kind="emergency",
            facts={
                "severe_trauma": t,
                "arrival": t,
                "surgery_start": t + timedelta(minutes=minutes),
            },
        )
    encounter(
        n.center, t, facts={"arrival": t, "surgery_start": t + timedelta(minutes=5)}
    )  # not severe
    encounter(n.center, t, facts={"severe_trauma": t, "arrival": t})  # not operated
    whole = figures("severe-trauma-time-to-surgery", JAN)["all"]
    assert whole.denominator == 7
    assert whole.value == pytest.approx(100.0)  # 30 60 90 100 150 200 400
    sites = figures("severe-trauma-time-to-surgery", JAN, "institution")
    assert sites[str(n.center.pk)].value == pytest.approx(120.0)
    yongren = sites[str(n.yongren.pk)]
    assert yongren.denominator == 3
    assert yongren.value == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("code", "fact", "codes"),
    [
        ("arthroplasty-mortality-30d", "death_30d", ("81.51", "81.52")),
        ("arthroplasty-reoperation", "unplanned_reoperation", ("81.54", "81.51")),
        ("spine-mortality-30d", "death_30d", ("81.08", "03.09")),
        ("spine-reoperation", "unplanned_reoperation", ("03.09", "81.02")),
    ],
)
def test_key_operation_outcomes(
    shell_network: Network, code: str, fact: str, codes: tuple[str, str]
) -> None:
    n, t = shell_network, at(2026, 1, 9)
    encounter(n.center, t, icd9=codes[0], facts={fact: t + timedelta(days=10)})
    encounter(n.center, t, icd9=codes[1])
    encounter(n.shuangbai, t, icd9=codes[1])
    encounter(n.center, t, born=date(2010, 1, 1), icd9=codes[0], facts={fact: t})  # a child: out
    encounter(n.center, t, icd9="79.35", facts={fact: t})  # another operation: out
    whole = figures(code, JAN)["all"]
    assert (whole.numerator, whole.denominator) == (1, 3)
    assert figures(code, date(2026, 2, 1))["all"].denominator == 0
