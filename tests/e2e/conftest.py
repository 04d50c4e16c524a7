"""Browser tests run against the production server: `osteon shell serve` (uvicorn, WhiteNoise
serving the collected, hashed static files), started once per session on the test database.

Tests using `shell_server` write their data in committed transactions
(`@pytest.mark.django_db(transaction=True)`) so that the server process sees it. Files the
server reads (DICOM, cases) live in folders both processes are pointed at: the fixture sets
this process's settings to the same folders it gave the server.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from pytest_django.fixtures import Settings
from pytest_django.plugin import DjangoDbBlocker
from shell_server import ShellServer, database_url, start_shell_server

REPO = Path(__file__).resolve().parents[2]
# settings naming folders the server reads or writes: shared with it through the environment
SHARED_FOLDERS = {
    "OSTEON_DICOM_ROOT": "dicom",
    "MEDIA_ROOT": "media",
    "OSTEON_CASE_ROOT": "cases",
    "OSTEON_CASE_ARCHIVE_ROOT": "case-archives",
    "OSTEON_PLANNER_MESH_ROOT": "planner-meshes",
}
# the environment variable that sets each of them
_VARIABLE = {"MEDIA_ROOT": "OSTEON_MEDIA_ROOT"}


@pytest.fixture(scope="session")
def _shell_server_process(
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ShellServer, Path]]:
    folders = tmp_path_factory.mktemp("shell-server")
    with django_db_blocker.unblock():
        db_url = database_url()
        db_name = Path(str(settings.DATABASES["default"]["NAME"])).stem
    env = {
        "OSTEON_DATABASE_URL": db_url,
        # kept between runs: collectstatic then only compresses what changed
        "OSTEON_STATIC_ROOT": str(REPO / "var" / f"test-static-{db_name}"),
        **{_VARIABLE.get(name, name): str(folders / sub) for name, sub in SHARED_FOLDERS.items()},
    }
    if settings.HUEY.get("filename"):
        # jobs a page enqueues land in this test run's queue, never the development one
        env["OSTEON_HUEY_PATH"] = str(settings.HUEY["filename"])
    server = start_shell_server(env=env, log=folders / "server.log")
    yield server, folders
    server.stop()


@pytest.fixture
def shell_server(_shell_server_process: tuple[ShellServer, Path], settings: Settings) -> str:
    """The base URL (no trailing slash) of the shell served by uvicorn on the test database."""
    server, folders = _shell_server_process
    assert server.process.poll() is None, f"shell server died:\n{server.log.read_text()}"
    for name, sub in SHARED_FOLDERS.items():
        setattr(settings, name, folders / sub)
    return server.url
