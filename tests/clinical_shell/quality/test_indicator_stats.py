"""Small-denominator flag, status against thresholds, funnel limits, stored results."""

from datetime import date, timedelta

import pytest
from quality_cohorts import at, encounter
from scipy.stats import binom
from shell_personas import Network, Personas

from clinical_shell.quality import selectors, services
from clinical_shell.quality.indicators import stats
from clinical_shell.quality.models import IndicatorDefinition, IndicatorResult, ThresholdChange

JAN = date(2026, 1, 1)


def test_funnel_limits_are_binomial_quantiles() -> None:
    # Binomial(100, 0.1): P(X<=15)=0.960, P(X<=16)=0.979 -> 97.5 % quantile 16;
    # P(X<=4)=0.024, P(X<=5)=0.058 -> 2.5 % quantile 5
    assert binom.cdf(15, 100, 0.1) < 0.975 <= binom.cdf(16, 100, 0.1)
    limits = stats.funnel_limits(100, 0.1)
    assert limits.upper95 == pytest.approx(0.16)
    assert limits.lower95 == pytest.approx(0.05)
    assert limits.lower998 < limits.lower95 < 0.1 < limits.upper95 < limits.upper998
    # limits narrow as the number of cases grows
    wide, narrow = stats.funnel_limits(20, 0.1), stats.funnel_limits(2000, 0.1)
    assert narrow.upper95 - narrow.lower95 < wide.upper95 - wide.lower95


def test_status_follows_direction() -> None:
    higher = {"direction": "higher", "warning": 0.7, "alarm": 0.5}
    assert stats.status(0.8, **higher) == "ok"  # type: ignore[arg-type]
    assert stats.status(0.6, **higher) == "warning"  # type: ignore[arg-type]
    assert stats.status(0.4, **higher) == "alarm"  # type: ignore[arg-type]
    assert stats.status(0.05, direction="lower", warning=0.02, alarm=0.04) == "alarm"
    assert stats.status(None, direction="lower", warning=0.02, alarm=0.04) == "no_data"


def test_stored_results_counts_reliability_and_funnel(
    shell_network: Network, personas: Personas
) -> None:
    n, t = shell_network, at(2026, 1, 5)
    for _ in range(4):
        encounter(n.center, t, facts={"clean_incision": t})
    encounter(n.shuangbai, t, facts={"clean_incision": t, "ssi_30d": t + timedelta(days=4)})
    encounter(n.shuangbai, t, facts={"clean_incision": t})
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    site = IndicatorResult.objects.get(
        indicator__code="ssi-clean-30d",
        period_kind="month",
        level="institution",
        scope_key=str(n.shuangbai.pk),
    )
    # 1/2 is stored as such, flagged unreliable under the default minimum of 20 cases
    assert (site.numerator, site.denominator, site.value) == (1, 2, 0.5)
    assert site.reliable is False and site.status == "alarm"
    card = {f.code: f for f in selectors.indicator_results(month=JAN)}["ssi-clean-30d"]
    assert (card.numerator, card.denominator, card.reliable) == (1, 6, False)
    assert card.trend[-1] == pytest.approx(1 / 6) and card.trend[0] is None
    plot = selectors.funnel("ssi-clean-30d", month=JAN)
    assert plot.p == pytest.approx(1 / 6)
    assert {p.key: p.n for p in plot.points} == {str(n.center.pk): 4, str(n.shuangbai.pk): 2}
    # the quality office lowers the minimum: history kept, the figure becomes reliable
    definition = IndicatorDefinition.objects.get(code="ssi-clean-30d")
    services.set_thresholds(
        actor=personas.quality_manager, indicator=definition, reason="小样本试点", min_denominator=2
    )
    change = ThresholdChange.objects.get(indicator=definition)
    assert change.before["min_denominator"] == 20 and change.after["min_denominator"] == 2
    services.recompute_month(JAN, codes=["ssi-clean-30d"])
    # results are rewritten per period on each recomputation
    assert (
        IndicatorResult.objects.get(
            pk__gt=site.pk, level="institution", scope_key=str(n.shuangbai.pk), period_kind="month"
        ).reliable
        is True
    )
    # an empty month: no data, never a zero
    services.recompute_month(date(2026, 3, 1), codes=["ssi-clean-30d"])
    march = {f.code: f for f in selectors.indicator_results(month=date(2026, 3, 1))}
    assert march["ssi-clean-30d"].status == "no_data" and march["ssi-clean-30d"].value is None
