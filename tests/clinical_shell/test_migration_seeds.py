"""The rows the migrations seed survive a transactional test's flush (see tests/migration_seeds)."""

import pytest
from django.core.management import call_command
from migration_seeds import is_transactional, restore_snapshot

from clinical_shell.credentialing.models import Technique
from clinical_shell.quality.models import IndicatorDefinition


@pytest.mark.django_db(transaction=True)
def test_seeded_rows_come_back_after_a_flush() -> None:
    indicators = sorted(IndicatorDefinition.objects.values_list("pk", "code"))
    techniques = sorted(Technique.objects.values_list("pk", "code"))
    assert indicators and techniques

    call_command("flush", interactive=False, verbosity=0)
    assert not IndicatorDefinition.objects.exists()

    restore_snapshot()
    assert sorted(IndicatorDefinition.objects.values_list("pk", "code")) == indicators
    assert sorted(Technique.objects.values_list("pk", "code")) == techniques


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_is_recognised(request: pytest.FixtureRequest) -> None:
    assert is_transactional(request.node)


@pytest.mark.django_db
def test_an_ordinary_test_is_not(request: pytest.FixtureRequest) -> None:
    assert not is_transactional(request.node)
