"""Scale-out: two shell processes on one PostgreSQL and one Redis. A sign-in on server A raises a
live event there; a browser page connected to server B receives it.

Always on the local PostgreSQL and Redis (whatever database the rest of the run uses): a
database of its own, created, migrated and dropped by the test.
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Page, sync_playwright
from shell_server import REPO, ShellServer, child_secrets_env, start_shell_server

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# this test's own Redis database, apart from the other tests'
REDIS_URL = "redis://127.0.0.1:6379/14"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
USERNAME, PASSWORD = "scale.surgeon", "Osteon-scale-2026!"
SHOTS = Path(os.environ.get("OSTEON_E2E_SHOTS", "/tmp/shellshots2"))

MAKE_USER = f"""
import django
django.setup()
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
center = network.create_institution(
    actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
)
person = network.create_person(
    actor=None, username={USERNAME!r}, password={PASSWORD!r}, full_name="王医生", title="attending"
)
network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
print(person.user.pk)
"""


def child_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "OSTEON_")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env["DJANGO_SETTINGS_MODULE"] = "clinical_shell.settings"
    # the children are not tests: without this process's secrets they refuse to start on a
    # fresh checkout, which has no key files
    env.update(child_secrets_env())
    env.update(extra)
    return env


@pytest.fixture
def scale_out_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, migrated; dropped afterwards."""
    name = f"osteon_scale_out_{os.getpid()}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        subprocess.run(
            [sys.executable, "-m", "osteon", "shell", "migrate"],
            cwd=REPO,
            env=child_env(OSTEON_DATABASE_URL=url),
            check=True,
            capture_output=True,
            timeout=600,
        )
        yield url
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")


def test_an_event_raised_on_one_shell_process_reaches_a_browser_on_another(
    scale_out_database: str, tmp_path: Path
) -> None:
    user_id = int(
        subprocess.run(
            [sys.executable, "-c", MAKE_USER],
            cwd=REPO,
            env=child_env(OSTEON_DATABASE_URL=scale_out_database),
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        ).stdout.split()[-1]
    )
    env = {
        "OSTEON_DATABASE_URL": scale_out_database,
        "OSTEON_REDIS_URL": REDIS_URL,
        "OSTEON_SECRET_KEY": "scale-out-test-key-0123456789-abcdefghijklmnopqrstuvwxyz-XYZ",
        "OSTEON_STATIC_ROOT": str(REPO / "var" / "test-static-scale-out"),
    }
    servers: list[ShellServer] = []
    try:
        servers.append(start_shell_server(env=env, log=tmp_path / "a.log"))
        # one collectstatic is enough: B serves what A collected, as a second machine would
        servers.append(
            start_shell_server(env=env, log=tmp_path / "b.log", extra_args=("--no-collectstatic",))
        )
        server_a, server_b = servers
        assert server_a.process.pid != server_b.process.pid
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # the person's page on server B listens to their own topic
            on_b = browser.new_context(locale="zh-CN").new_page()
            sign_in(on_b, server_b.url)
            on_b.evaluate(
                """topic => new Promise(resolve => {
                    window.liveEvents = [];
                    const handler = event => window.liveEvents.push(event);
                    handler.onSubscribed = resolve;
                    OsteonLive.subscribe(topic, handler);
                })""",
                f"user.{user_id}",
            )
            # the same person signs in on server A (another browser): A publishes the notice
            on_a = browser.new_context(locale="zh-CN").new_page()
            sign_in(on_a, server_a.url)
            on_b.wait_for_function("window.liveEvents.length > 0", timeout=20_000)
            events = on_b.evaluate("window.liveEvents")
            SHOTS.mkdir(parents=True, exist_ok=True)
            on_b.screenshot(path=str(SHOTS / "scale_out_server_b.png"))
            browser.close()
    finally:
        for server in servers:
            server.stop()
    assert len(events) == 1
    assert events[0]["kind"] == "signed_in"
    assert events[0]["source_ip"] == "127.0.0.1"
    # both servers answered: the sign-ins are in their logs, one each
    assert "POST /accounts/sign-in/" in server_a.log.read_text()
    assert "POST /accounts/sign-in/" in server_b.log.read_text()
