"""Demo accounts: one salt and hash per account, and only in a database the loader made a demo."""

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import Settings
from shell_personas import Personas

from clinical_shell.accounts.models import DemoDatabase
from clinical_shell.accounts.signin import check_sign_in
from clinical_shell.demo import ROLE_PASSWORDS, DemoRefusedError, load_demo


@pytest.mark.django_db
def test_every_demo_account_has_its_own_hash_and_the_database_is_marked(
    settings: Settings,
) -> None:
    settings.OSTEON_DEMO = True
    result = load_demo(patients=10, ct_cases=0)
    assert result.created and DemoDatabase.objects.count() == 1
    hashes = list(User.objects.values_list("password", flat=True))
    assert len(hashes) == result.staff > 150
    assert len(set(hashes)) == len(hashes)
    salts = {h.split("$")[-2] for h in hashes}
    assert len(salts) == len(hashes)
    # still one published password per role: two surgeons, two hashes, both verify
    surgeons = User.objects.filter(username__in=["surgeon001", "surgeon002"])
    assert [u.check_password(ROLE_PASSWORDS["surgeon"]) for u in surgeons] == [True, True]
    # the demo's cheap hash is replaced by one at the configured cost at the first sign-in
    first = User.objects.get(username="surgeon001")
    assert check_sign_in(username="surgeon001", password=ROLE_PASSWORDS["surgeon"]) == first
    first.refresh_from_db()
    assert first.password not in hashes and "m=4096" not in first.password
    # loading again into the marked database is allowed (idempotent)
    assert not load_demo(patients=10, ct_cases=0).created


def test_the_demo_loader_refuses_a_database_that_is_not_a_demo(
    personas: Personas, settings: Settings
) -> None:
    settings.OSTEON_DEMO = True
    users_before = User.objects.count()
    with pytest.raises(DemoRefusedError):
        load_demo(patients=10, ct_cases=0)
    assert User.objects.count() == users_before and not DemoDatabase.objects.exists()


@pytest.mark.django_db
def test_the_demo_loader_refuses_without_the_demo_setting(settings: Settings) -> None:
    settings.OSTEON_DEMO = False
    with pytest.raises(DemoRefusedError):
        load_demo(patients=10, ct_cases=0)
    assert not User.objects.exists() and not DemoDatabase.objects.exists()
