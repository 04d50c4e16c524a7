"""Run the ``osteon`` console command in-process, as the console script would."""

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from osteon.cli import main


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


CliRunner = Callable[..., CliResult]


def runner(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
