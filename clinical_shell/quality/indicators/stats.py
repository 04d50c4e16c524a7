"""Reliability, status against thresholds, and binomial funnel-plot control limits.

Small denominators: a figure on fewer cases than the indicator's `min_denominator` (default 20)
is shown with its counts but flagged not reliable, and raises no threshold warning.

Funnel limits (Spiegelhalter 2005, without his interpolation): for a unit with n cases and the
network's proportion p, the limits are q_lo/n and q_hi/n where q is the exact binomial quantile of
Binomial(n, p) at (1-c)/2 and (1+c)/2 for c = 95 % and 99.8 %: the smallest r with P(X <= r) >= q.
"""

from dataclasses import dataclass

from scipy.stats import binom

from clinical_shell.quality.models import Direction, Status


def reliable(denominator: int, min_denominator: int) -> bool:
    return denominator >= min_denominator


def status(
    value: float | None, *, direction: str, warning: float | None, alarm: float | None
) -> str:
    if value is None:
        return Status.NO_DATA
    sign = -1.0 if direction == Direction.HIGHER else 1.0
    if alarm is not None and sign * (value - alarm) > 0:
        return Status.ALARM
    if warning is not None and sign * (value - warning) > 0:
        return Status.WARNING
    return Status.OK


@dataclass(frozen=True)
class Limits:
    n: int
    lower95: float
    upper95: float
    lower998: float
    upper998: float


def binomial_limit(n: int, p: float, q: float) -> float:
    """The q-quantile of Binomial(n, p) as a proportion: smallest r with P(X <= r) >= q, over n."""
    return float(binom.ppf(q, n, p)) / n


def funnel_limits(n: int, p: float) -> Limits:
    return Limits(
        n=n,
        lower95=binomial_limit(n, p, 0.025),
        upper95=binomial_limit(n, p, 0.975),
        lower998=binomial_limit(n, p, 0.001),
        upper998=binomial_limit(n, p, 0.999),
    )
