"""The referral rule data (criteria, answer times) seeded by a data migration is flushed by any
transactional test that ran before: seed it again for every test here (update_or_create)."""

import importlib

import pytest
from django.apps import apps


@pytest.fixture(autouse=True)
def referral_rules(db: None) -> None:
    module = importlib.import_module(
        "clinical_shell.referrals.migrations.0002_seed_criteria_and_time_limits"
    )
    module.seed(apps, None)
