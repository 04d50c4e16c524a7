"""Throttling before any password is looked at: per client (delay and django-axes), overall,
per sign-in name, bounded hashing; failures kept in their own stream with retention."""

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper
from shell_personas import PERSONA_PASSWORD, Personas

from clinical_shell.accounts import signin, throttle
from clinical_shell.accounts.models import SignInFailure, SignInThrottle
from clinical_shell.accounts.retention import purge_sign_in_records
from clinical_shell.audit.models import AuditEvent

SIGN_IN = "/accounts/sign-in/"


def _post(client: Client, username: str, password: str, ip: str, **extra: Any) -> Any:
    meta: dict[str, Any] = {"REMOTE_ADDR": ip, **extra}
    return client.post(SIGN_IN, {"username": username, "password": password}, **meta)


def test_spraying_one_password_across_30_accounts_from_one_client_is_throttled(
    personas: Personas,
) -> None:
    for i in range(30):
        User.objects.create_user(username=f"staff{i:02d}", password=f"Real-password-{i:02d}x")
    client = Client()
    statuses = []
    for i in range(30):
        response = _post(client, f"staff{i:02d}", "Winter-2026-sprayed", "10.1.1.5")
        statuses.append(response.status_code)
        if response.status_code == 429:
            retry_after = int(response["Retry-After"])
            assert retry_after >= 1
            assert "登录尝试过于频繁" in response.content.decode()
    assert 429 in statuses
    first = statuses.index(429)
    # every spray attempt after the first refusal is refused too, and none got a hash's look
    assert set(statuses[first:]) == {429} and set(statuses[:first]) == {200}
    # the address is refused even with a right password; the same account from elsewhere is not
    assert _post(client, "wang.county", PERSONA_PASSWORD, "10.1.1.5").status_code == 429
    assert _post(Client(), "wang.county", PERSONA_PASSWORD, "10.1.1.6").status_code == 302


def test_axes_limits_an_address_and_ignores_a_forged_forwarded_for(
    personas: Personas, settings: SettingsWrapper
) -> None:
    # no progressive delay: only django-axes' per-address limit is left to refuse
    settings.OSTEON_SIGNIN_CLIENT_FREE_FAILURES = 1000
    settings.OSTEON_SIGNIN_ACCOUNT_FREE_FAILURES = 1000
    settings.AXES_FAILURE_LIMIT = 5
    client = Client()
    for i in range(5):
        # a client-sent X-Forwarded-For must not make each attempt look like a new address
        response = _post(
            client, f"guess{i}", "Nope-nope-2026", "10.2.2.2", HTTP_X_FORWARDED_FOR=f"7.7.7.{i}"
        )
        assert response.status_code in (200, 429)
    response = _post(client, "wang.county", PERSONA_PASSWORD, "10.2.2.2")
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert (
        settings.OSTEON_SIGNIN_CLIENT_COOLOFF_S - 60
        < retry_after
        <= (settings.OSTEON_SIGNIN_CLIENT_COOLOFF_S)
    )
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"10.2.2.2"}
    # once the cool-off has passed the address may try again
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(hours=1))
    assert _post(client, "wang.county", PERSONA_PASSWORD, "10.2.2.2").status_code == 302


def test_failures_from_everywhere_together_hit_the_overall_limit(
    personas: Personas, settings: SettingsWrapper
) -> None:
    settings.OSTEON_SIGNIN_GLOBAL_FAILURES = 6
    for i in range(6):
        assert _post(Client(), f"who{i}", "Nope-nope-2026", f"10.3.0.{i}").status_code == 200
    # a fresh address, a real account, the right password: refused while the wave lasts
    response = _post(Client(), "wang.county", PERSONA_PASSWORD, "10.3.9.9")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1


def test_five_anonymous_attempts_no_longer_lock_a_clinician_out(personas: Personas) -> None:
    attacker = Client()
    for _ in range(5):
        assert _post(attacker, "wang.county", "wrong-password-1", "10.4.4.4").status_code == 200
    owner = Client()
    response = _post(owner, "wang.county", PERSONA_PASSWORD, "10.4.4.5")
    assert response.status_code == 302 and response["Location"] == "/patients/"


def test_the_delay_grows_with_each_failure_of_a_name(personas: Personas) -> None:
    name = personas.county_surgeon.username
    waits = []
    for _ in range(9):
        try:
            signin.check_sign_in(username=name, password="wrong-password-1")
        except throttle.ThrottledError as exc:
            waits.append(exc.retry_after_s)
            # the test does not sleep: the wait is over
            SignInThrottle.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        except signin.SignInError:
            continue
    # failures 1-5 cost nothing; after the 6th the next attempt waits 2 s, after the 7th 4 s
    assert waits == [2, 4]
    # a name with no account is slowed exactly the same way
    for _ in range(6):
        with pytest.raises(signin.SignInError):
            signin.check_sign_in(username="no.such.person", password="wrong-password-1")
    with pytest.raises(throttle.ThrottledError) as made_up:
        signin.check_sign_in(username="no.such.person", password="wrong-password-1")
    assert made_up.value.retry_after_s == 2


def test_concurrent_hashing_is_bounded_and_the_excess_refused_quickly(
    personas: Personas, settings: SettingsWrapper
) -> None:
    settings.OSTEON_PASSWORD_HASH_CONCURRENCY = 1
    settings.OSTEON_PASSWORD_HASH_WAIT_S = 0.2
    held = threading.Event()
    release = threading.Event()

    def hold_the_only_slot() -> None:
        with throttle.hashing_slot():
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_only_slot)
    holder.start()
    try:
        assert held.wait(5)
        started = time.perf_counter()
        response = _post(Client(), "wang.county", PERSONA_PASSWORD, "10.5.5.5")
        elapsed = time.perf_counter() - started
    finally:
        release.set()
        holder.join()
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert elapsed < 5.0  # the wait is 0.2 s; the rest is the request on a busy shared machine
    # with the slot free again the same attempt goes through
    assert _post(Client(), "wang.county", PERSONA_PASSWORD, "10.5.5.5").status_code == 302


def test_failures_go_to_their_own_stream_with_retention_not_the_audit_chain(
    personas: Personas,
) -> None:
    chain_before = AuditEvent.objects.count()
    for name in ("wang.county", "nobody.here", "wang.county"):
        _post(Client(), name, "wrong-password-1", "10.6.6.6")
    assert AuditEvent.objects.count() == chain_before
    rows = list(SignInFailure.objects.order_by("at").values_list("username", "source_ip", "reason"))
    assert rows == [
        ("wang.county", "10.6.6.6", "bad_credentials"),
        ("nobody.here", "10.6.6.6", "bad_credentials"),
        ("wang.county", "10.6.6.6", "bad_credentials"),
    ]
    # rows past the retention go, recent ones stay
    old = SignInFailure.objects.order_by("at").first()
    assert old is not None
    SignInFailure.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=400))
    purged = purge_sign_in_records()
    assert purged.failures == 1 and SignInFailure.objects.count() == 2
    # a success is in the chain
    _post(Client(), "wang.county", PERSONA_PASSWORD, "10.6.6.7")
    assert AuditEvent.objects.filter(action="auth.sign_in", outcome="success").exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_address_limit_answers_429_through_the_asgi_stack(
    settings: SettingsWrapper,
) -> None:
    # under uvicorn axes' middleware runs its async branch: the failure that reaches the limit
    # is answered by our lockout callable there too
    settings.OSTEON_SIGNIN_CLIENT_FREE_FAILURES = 1000
    settings.OSTEON_SIGNIN_ACCOUNT_FREE_FAILURES = 1000
    settings.AXES_FAILURE_LIMIT = 3
    client = AsyncClient(REMOTE_ADDR="10.10.0.1")
    statuses = []
    try:
        for i in range(4):
            response = await client.post(
                SIGN_IN, {"username": f"nobody{i}", "password": "Nope-nope-2026"}
            )
            statuses.append(response.status_code)
    finally:
        # the views ran in asgiref's sync thread: its connection must not outlive the test
        # (PostgreSQL refuses to drop a test database somebody is still connected to)
        await sync_to_async(connections.close_all)()
    # the third failure reaches the limit: axes' middleware turns that answer into the 429
    assert statuses == [200, 200, 429, 429] and response["Retry-After"].isdigit()


def test_a_clients_run_of_failures_is_forgotten_after_the_cooloff(
    personas: Personas, settings: SettingsWrapper
) -> None:
    key = throttle.client_key("10.11.0.1")
    long_ago = timezone.now() - timedelta(seconds=settings.OSTEON_SIGNIN_CLIENT_COOLOFF_S + 60)
    SignInThrottle.objects.create(key=key, failures=40, last_failure_at=long_ago)
    _post(Client(), "wang.county", "wrong-password-1", "10.11.0.1")
    assert SignInThrottle.objects.get(key=key).failures == 1
    assert _post(Client(), "wang.county", PERSONA_PASSWORD, "10.11.0.1").status_code == 302


@pytest.mark.asyncio
async def test_password_requests_beyond_the_process_bound_are_refused_at_once(
    settings: SettingsWrapper,
) -> None:
    # under uvicorn requests queue for the one thread sync views run in, before any slot:
    # the admission counter (first middleware, in the event loop) bounds that queue
    settings.OSTEON_PASSWORD_HASH_QUEUE = 2
    assert throttle._enter() and throttle._enter()  # two requests already in
    try:
        started = time.perf_counter()
        refused = await AsyncClient().post(SIGN_IN, {"username": "a", "password": "b"})
        elapsed = time.perf_counter() - started
        # the second step checks no password: not counted, not refused here
        other = await AsyncClient().get("/accounts/unlock/")
    finally:
        throttle._leave()
        throttle._leave()
    assert refused.status_code == 503 and refused["Retry-After"] == "1"
    assert elapsed < 1.0
    assert other.status_code != 503
    assert throttle._admitted == 0
