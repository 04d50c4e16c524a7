"""A month with an alarm for the dashboard tests (import as dashboard_data): three clean
operations at the center, all infected, and one clean operation at 双柏 without infection."""

from datetime import date, timedelta

from django.contrib.auth.models import User
from quality_cohorts import at, encounter
from shell_personas import Network, make_persona

from clinical_shell.quality import services
from clinical_shell.quality.models import IndicatorDefinition
from clinical_shell.records.models import Encounter

JAN = date(2026, 1, 1)
CODE = "ssi-clean-30d"


def alarm_month(network: Network, quality_manager: User) -> list[Encounter]:
    t = at(2026, 1, 5)
    made = [
        encounter(network.center, t, facts={"clean_incision": t, "ssi_30d": t + timedelta(days=4)})
        for _ in range(3)
    ]
    made.append(encounter(network.shuangbai, t, facts={"clean_incision": t}))
    services.set_thresholds(
        actor=quality_manager,
        indicator=IndicatorDefinition.objects.get(code=CODE),
        reason="测试",
        min_denominator=3,
    )
    services.recompute_month(JAN, codes=[CODE])
    return made


def shuangbai_quality_manager(network: Network) -> User:
    user: User = make_persona(
        "sb_quality", "双柏质控", "none", (network.shuangbai, "quality_manager")
    )
    return user
