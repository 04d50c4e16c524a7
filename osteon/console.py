"""Console conventions shared by every subcommand: errors, progress bars, --json output."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

stderr = Console(stderr=True)


class CommandError(Exception):
    """A failure the user can act on: printed as one sentence, never a traceback."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def print_error(exc: CommandError) -> None:
    stderr.print(f"[bold red]错误 / error:[/] {exc.message}", highlight=False, soft_wrap=True)


def emit(result: dict[str, Any], *, as_json: bool, human: str) -> None:
    """Print a result: JSON on stdout for machines, or one human line."""
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    else:
        stderr.print(human, highlight=False, soft_wrap=True)


class StepProgress:
    """A progress bar over named steps, each reporting a fraction done (0..1)."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: Any = None

    def __call__(self, step: str, fraction: float) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task(step, total=1.0)
        self._progress.update(self._task, description=step, completed=fraction)


@contextmanager
def step_progress(*, enabled: bool = True) -> Iterator[StepProgress]:
    """A bar on stderr; disabled (silent) for --json or when stderr is not a terminal."""
    if not enabled:
        yield StepProgress(None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=False) as progress:
        yield StepProgress(progress)
