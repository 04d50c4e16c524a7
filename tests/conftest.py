"""Fixtures shared by every test package."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from migration_seeds import is_transactional, restore_snapshot, take_snapshot
from osteon_cli import CliRunner, runner
from pytest_django import DjangoDbBlocker
from pytest_django.plugin import blocking_manager_key


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> None:
    """The test database as migrated, with its seeded rows remembered (see `migration_seeds`)."""
    with django_db_blocker.unblock():
        take_snapshot()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # After the wrapped teardown, so after pytest-django's flush of a transactional test; the
    # last test's teardown also drops the test database, and nothing follows it anyway.
    result = yield
    if nextitem is not None and is_transactional(item):
        with item.config.stash[blocking_manager_key].unblock():
            restore_snapshot()
    return result


@pytest.fixture
def osteon_cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """``osteon ARGS...`` in-process; returns exit code, stdout and stderr."""
    return runner(capsys)


@pytest.fixture(scope="session")
def fake_libhd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the stand-in ``libHD.so`` (``tests/haptics/fake_libhd.c``), built with
    gcc: the C symbols pyOpenHaptics calls, a simulated arm, a 1 kHz scheduler thread."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed, so the stand-in libHD.so cannot be built")
    out = tmp_path_factory.mktemp("libhd")
    source = Path(__file__).resolve().parent / "haptics" / "fake_libhd.c"
    flags = ["-shared", "-fPIC", "-O2", "-pthread", "-Wl,-soname,libHD.so"]
    subprocess.run([gcc, *flags, "-o", str(out / "libHD.so"), str(source), "-lm"], check=True)
    return out
