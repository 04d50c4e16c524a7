"""The worker process: the Huey consumer that runs jobs, and how other processes start one.

`run_worker` first puts back in line the jobs a dead worker left running, then consumes wake-ups
with a few threads until it is stopped (SIGINT: let running jobs finish; SIGTERM: stop now, the
next start recovers them). `worker_environment` is what a parent (the `serve` command, a test)
passes to a worker child so it uses the same database, task storage and file stores.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import IO
from urllib.parse import quote

from django.conf import settings
from django.db import connection, connections

from clinical_shell.jobs import selectors

REPO_ROOT = Path(__file__).resolve().parents[2]
# an idle worker looks for new wake-ups at least this often [s] (SQLite storage is polled)
POLL_MAX_DELAY_S = 1.0


def default_worker_count() -> int:
    """Enough threads for every heavy slot, and one more so light jobs never wait behind them."""
    return selectors.heavy_jobs_max() + 1


def run_worker(*, workers: int | None = None) -> None:
    """Recover lost jobs, then run the Huey consumer in this process until stopped."""
    from huey.consumer_options import ConsumerConfig
    from huey.contrib.djhuey import HUEY

    from clinical_shell.jobs.running import recover_jobs

    recovered = recover_jobs()
    if recovered:
        logging.getLogger(__name__).warning("recovered jobs left by a dead worker: %s", recovered)
    # worker threads open their own connections
    connections.close_all()
    config = ConsumerConfig(
        workers=workers or default_worker_count(),
        worker_type="thread",
        initial_delay=0.1,
        backoff=1.15,
        max_delay=POLL_MAX_DELAY_S,
        periodic=True,
        check_worker_health=True,
    )
    config.validate()
    logger = logging.getLogger("huey")
    if not logger.handlers:
        config.setup_logger(logger)
    HUEY.create_consumer(**config.values).run()


def database_url() -> str:
    """The URL of the database this process is connected to (the test database under tests)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(str(db['NAME'])).resolve()}"
    user = quote(str(db.get("USER") or ""), safe="")
    password = quote(str(db.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{auth}{db.get('HOST') or ''}{port}/{quote(str(db['NAME']), safe='')}"


def worker_environment() -> dict[str, str]:
    """The environment of a worker child that shares this process's database, task storage,
    file stores and limits (under tests these differ from what the environment says)."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="clinical_shell.settings",
        OSTEON_DATABASE_URL=database_url(),
        OSTEON_DICOM_ROOT=str(Path(settings.OSTEON_DICOM_ROOT).resolve()),
        OSTEON_CASE_ROOT=str(Path(settings.OSTEON_CASE_ROOT).resolve()),
        OSTEON_HEAVY_JOBS_MAX=str(settings.OSTEON_HEAVY_JOBS_MAX),
        OSTEON_JOB_MEMORY_LIMIT_BYTES=str(settings.OSTEON_JOB_MEMORY_LIMIT_BYTES),
    )
    huey = settings.HUEY
    if huey.get("filename"):
        env["OSTEON_HUEY_PATH"] = str(Path(str(huey["filename"])).resolve())
    if settings.OSTEON_REDIS_URL:
        env["OSTEON_REDIS_URL"] = settings.OSTEON_REDIS_URL
    env["OSTEON_HUEY_NAME"] = str(huey.get("name", "osteon"))
    # the same secrets and checkpoint folder: the worker's audit events join this process's
    # chain and its ID digests match (under tests these are the fixed test keys, which a child
    # outside pytest would not have: it would refuse them as missing)
    secrets = {"OSTEON_SECRET_KEY": settings.SECRET_KEY} | {
        name: str(getattr(settings, name, ""))
        for name in ("OSTEON_ID_HMAC_KEY", "OSTEON_AUDIT_KEY", "OSTEON_AUDIT_SIGNING_KEY")
    }
    for name, value in secrets.items():
        if value:
            env.pop(f"{name}_FILE", None)  # one source per secret
            env[name] = value
    env["OSTEON_AUDIT_CHECKPOINT_DIR"] = str(settings.OSTEON_AUDIT_CHECKPOINT_DIR)
    return env


def start_worker(
    *,
    workers: int | None = None,
    output: IO[bytes] | int | None = None,
    env: dict[str, str] | None = None,
) -> "subprocess.Popen[bytes]":
    """Start `osteon shell worker` as a child process in its own process group.

    The caller stops it by its pid (SIGINT lets running jobs finish). Its own process group, so
    a signal to the group reaches it and nothing else. `env` is laid over `worker_environment()`.
    """
    command = [sys.executable, "-m", "osteon", "shell", "worker"]
    if workers:
        command += ["--workers", str(workers)]
    return subprocess.Popen(
        command,
        env={**worker_environment(), **(env or {})},
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,
    )
