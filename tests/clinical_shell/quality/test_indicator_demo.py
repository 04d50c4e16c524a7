"""The quality demo: every records-based indicator has values and each kind of warning is raised."""

from datetime import date

from django.utils import timezone
from quality_cohorts import patient
from shell_personas import Network, Personas

from clinical_shell.quality import periods, selectors
from clinical_shell.quality.demo import load_quality_demo
from clinical_shell.quality.models import IndicatorDefinition, QualityWarning, WarningKind
from clinical_shell.records.models import Diagnosis


def test_demo_values_and_warnings(shell_network: Network, personas: Personas) -> None:
    for n in range(30):
        patient(shell_network.center, date(1930 + n, 3, 1))
    result = load_quality_demo(month_count=2)  # the demo loads 12; two keep the test short
    assert result["encounters"] > 50
    last = periods.add_months(periods.month_start(timezone.localdate()), -1)
    shown = {f.code: f for f in selectors.indicator_results(month=last, period_kind="rolling12")}
    for definition in IndicatorDefinition.objects.filter(
        spec__source__in=["encounters", "overrides"]
    ):
        figure = shown[definition.code]
        assert figure.value is not None and figure.denominator > 0, definition.code
    hip = shown["hip-prompt-surgery-36h"]
    assert 0.5 < (hip.value or 0) < 0.95  # realistic, not all-or-nothing
    assert set(QualityWarning.objects.values_list("kind", flat=True)) == set(WarningKind.values)
    # diagnoses fit: every hip-fracture admission is coded S72.x
    assert not Diagnosis.objects.filter(
        description__contains="股骨", icd10_code__startswith="M"
    ).exists()
    assert load_quality_demo() == {"skipped": True}
