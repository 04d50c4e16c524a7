"""The kinds of background job: each app declares its tasks with `@job_task(name, ...)`.

A task is a plain function of a `JobContext`; the jobs app claims the job, runs the function in a
worker, and records how it ended. Declared in an app's `tasks.py` (imported at start-up by
`JobsConfig.ready`, so the web process and the worker know the same kinds).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser, User

if TYPE_CHECKING:
    from clinical_shell.jobs.models import Job
    from clinical_shell.jobs.running import JobContext

TaskFunction = Callable[["JobContext"], None]
EndHook = Callable[["Job"], None]
ViewRule = Callable[[User | AnonymousUser, "Job"], bool]


def _creator_only(user: User | AnonymousUser, job: "Job") -> bool:
    return bool(user.is_authenticated and job.created_by_id == user.pk)


@dataclass(frozen=True)
class JobKind:
    name: str
    run: TaskFunction
    # counts against OSTEON_HEAVY_JOBS_MAX (memory- or CPU-hungry: a case build, a replay)
    heavy: bool
    # runs after the first that an error of `retry_on` may start, `retry_backoff_s` * 2**n apart;
    # only errors that leave nothing behind (the task cleans up) belong in `retry_on`
    retries: int
    retry_backoff_s: float
    retry_on: tuple[type[BaseException], ...]
    # who may watch the job (its live topic, its page): whoever may see its subject; audited
    # by the rule itself when it reads patient data
    can_view: ViewRule
    # called in the transaction that ends a run failed or cancelled (by its worker, or by the
    # recovery scan for a dead worker's job): write the domain's own record, remove leftovers
    on_end: EndHook | None
    # the step texts its task reports (Chinese msgids): stored as they are, translated when shown
    steps: tuple[str, ...]


_KINDS: dict[str, JobKind] = {}


def job_task(
    name: str,
    *,
    heavy: bool = False,
    retries: int = 0,
    retry_backoff_s: float = 5.0,
    retry_on: tuple[type[BaseException], ...] = (),
    can_view: ViewRule = _creator_only,
    on_end: EndHook | None = None,
    steps: tuple[str, ...] = (),
) -> Callable[[TaskFunction], TaskFunction]:
    """Register the decorated function as the task of job kind `name`."""

    def register(run: TaskFunction) -> TaskFunction:
        known = _KINDS.get(name)
        if known is not None and known.run is not run:
            raise ValueError(f"job kind {name!r} is declared twice")
        _KINDS[name] = JobKind(
            name=name,
            run=run,
            heavy=heavy,
            retries=retries,
            retry_backoff_s=retry_backoff_s,
            retry_on=retry_on,
            can_view=can_view,
            on_end=on_end,
            steps=steps,
        )
        return run

    return register


def kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"no job kind {name!r} (is its app's tasks.py imported?)") from None


def kinds() -> list[str]:
    return sorted(_KINDS)


def declared_steps() -> list[str]:
    return sorted({step for declared in _KINDS.values() for step in declared.steps})
