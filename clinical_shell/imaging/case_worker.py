"""The case-build worker process: how the shell starts it, and its entry point.

`launch(job_id)` starts `python -m clinical_shell.imaging.case_worker <job id>` detached from the
request, pointed at the same database, DICOM store and case root as the process that launched it
(under tests these differ from what the environment says). The worker runs
`services.run_case_build` and exits; its output goes to `<case root>/logs/<job id>.log`.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def launch(job_id: int) -> None:
    """Start the worker for `job_id`; if it cannot start, the job fails saying why."""
    from clinical_shell.imaging.services import case_root, fail_case_build

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="clinical_shell.settings",
        OSTEON_DATABASE_URL=database_url(),
        OSTEON_DICOM_ROOT=str(Path(settings.OSTEON_DICOM_ROOT).resolve()),
        OSTEON_CASE_ROOT=str(Path(settings.OSTEON_CASE_ROOT).resolve()),
    )
    logs = case_root() / "logs"
    try:
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{job_id}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "clinical_shell.imaging.case_worker", str(job_id)],
                env=env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # its own session: a restart of the web process does not take the build with it
                start_new_session=True,
            )
    except OSError as exc:
        fail_case_build(
            job_id=job_id,
            error=f"无法启动构建进程 / could not start the build worker: {exc.strerror}",
        )
        return
    # reap it when it ends (no zombies in a long-running web process)
    threading.Thread(target=process.wait, name=f"case-build-{job_id}", daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write("usage: python -m clinical_shell.imaging.case_worker JOB_ID\n")
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")
    import django

    django.setup()
    from clinical_shell.imaging.services import run_case_build

    job = run_case_build(int(argv[1]))
    if job is None:
        sys.stderr.write(f"job {argv[1]}: not queued (already claimed or unknown)\n")
        return 0
    sys.stderr.write(f"job {job.pk}: {job.status} {job.error}\n")
    return 0 if job.status == job.Status.DONE else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
