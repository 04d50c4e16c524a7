"""Fixtures shared by every test package."""

import pytest
from osteon_cli import CliRunner, runner


@pytest.fixture
def osteon_cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """``osteon ARGS...`` in-process; returns exit code, stdout and stderr."""
    return runner(capsys)
