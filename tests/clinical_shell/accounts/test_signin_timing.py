"""Timing: a made-up name, a wrong password and a locked account (real or made up) take the same
time to answer, at the production password-hash cost. Medians, interleaved, tolerant bound."""

import statistics
import time

from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell.accounts import throttle
from clinical_shell.accounts.models import SignInThrottle

ROUNDS = 5
# medians on a shared 2-core machine vary by ~30 %; a skipped hash (the old lock answered without
# one) is a ~95 % difference
TOLERANCE = 0.5


def test_unknown_wrong_and_locked_names_take_the_same_time(
    personas: Personas, settings: Settings
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    settings.OSTEON_SIGNIN_LOCK_FAILURES = 1000  # the two locks below are set by hand
    settings.OSTEON_SIGNIN_MAX_DELAY_S = 0
    settings.OSTEON_SIGNIN_CLIENT_FREE_FAILURES = 1000
    settings.AXES_FAILURE_LIMIT = 1000
    locked_user = personas.center_surgeon
    for user in (personas.county_surgeon, locked_user):
        user.set_password(PERSONA_PASSWORD)  # stored at the production cost
        user.save()
    for name in (locked_user.username, "locked.made.up"):
        SignInThrottle.objects.create(
            key=throttle.account_key(name), failures=3, locked_at=timezone.now()
        )
    cases = {
        "made_up": ("nobody.at.all", "Wrong-password-1"),
        "wrong_password": (personas.county_surgeon.username, "Wrong-password-1"),
        "locked_real": (locked_user.username, PERSONA_PASSWORD),
        "locked_made_up": ("locked.made.up", PERSONA_PASSWORD),
    }
    client = Client()
    client.post("/accounts/sign-in/", {"username": "warm.up", "password": "Warm-up-2026"})
    times: dict[str, list[float]] = {name: [] for name in cases}
    statuses: dict[str, set[int]] = {name: set() for name in cases}
    order = list(cases)
    for round_no in range(ROUNDS):
        # a different case goes first each round: the first request of a round is often slower
        for name in order[round_no % 4 :] + order[: round_no % 4]:
            username, password = cases[name]
            started = time.perf_counter()
            response = client.post(
                "/accounts/sign-in/", {"username": username, "password": password}
            )
            times[name].append(time.perf_counter() - started)
            statuses[name].add(response.status_code)
    assert statuses == {
        "made_up": {200},
        "wrong_password": {200},
        "locked_real": {423},
        "locked_made_up": {423},
    }
    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = statistics.median(medians.values())
    assert reference > 0.02, medians  # the hash was really paid at production cost
    for median in medians.values():
        assert abs(median - reference) <= TOLERANCE * reference, medians
