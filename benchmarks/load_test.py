"""Load test of the clinical shell: N simulated clinicians against uvicorn and PostgreSQL.

Usage: .venv/bin/python benchmarks/load_test.py [--users 200] [--spawn-rate 2] [--duration 60]
           [--workers 2] [--wait-min 5] [--wait-max 15] [--patients 5000] [--ct-cases 1]

1. Database: OSTEON_LOAD_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/osteon_load),
   created if missing; `osteon shell demo` migrates it and loads the demo region when it is empty
   (kept for later runs), then VACUUM ANALYZE. DICOM files, cases and collected static files
   (collectstatic, only when a static source changed) go under var/load/.
2. Plan: the demo accounts with a clinical role (surgeons, residents, nurses, radiologists,
   township doctors) and, for each, search terms and patients drawn from that account's own care
   scope and the CT series it may open, written to var/load/plan.json for benchmarks/locustfile.py.
3. Server: uvicorn with clinical_shell.asgi:application and --workers W, on a free 127.0.0.1 port
   (loopback only), stopped by its pid at the end whatever happens.
4. Locust, headless, as a subprocess under a hard time limit: --users users started at
   --spawn-rate per second, each signing in once; --duration seconds after the last sign-in the
   locustfile ends the run.
5. Result, benchmarks/results/load-<date>.json: two phases, the ramp (users starting and signing
   in) and the steady phase (everyone signed in, browsing), each with per-endpoint requests,
   errors and exact p50/p95/p99/max (every request's time is recorded, no histogram rounding),
   the load average and machine CPU use in that phase; the machine, the load average before and
   after, the CPU time the server and Locust took.

Goal (issue 11): p95 <= 300 ms on every page and API endpoint and no errors, judged on the steady
phase. The ramp is reported in full but apart: its sign-ins are argon2 at full cost (about 0.25 s
of CPU each here, by design), and 200 people signing in within a minute is not a ward day.

The machine is shared (other work may be running): the load average and the CPU time taken by the
server and by Locust itself (on the same cores) are recorded so a reader can judge the numbers.
So is PostgreSQL: the connections open to the load-test database are watched, and the run is
stopped when they pass half of max_connections (a leaking server would starve everyone else).

DJANGO_SETTINGS_MODULE, when set, is the server's settings (recorded in the result): a way to
measure a settings variant against the shell's own.
"""

import argparse
import json
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
WORK = REPO / "var" / "load"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/osteon_load"
P95_GOAL_MS = 300.0
SIGN_IN_POST = "/accounts/sign-in/ [post]"
# per account: how many patients of its scope the plan names (search terms come from them)
PATIENTS_PER_ACCOUNT = 60
# the server's settings: the shell's own unless the environment names a variant to compare
SERVER_SETTINGS = os.environ.get("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")


def ensure_database(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def server_env(url: str) -> dict[str, str]:
    """The environment of every shell process of the run: this database, files under var/load."""
    env = dict(os.environ)
    env.update(
        OSTEON_DATABASE_URL=url,
        OSTEON_SECRET_KEY=env.get(
            "OSTEON_SECRET_KEY", "load-test-only-key-0123456789abcdef0123456789abcdef"
        ),
        # no default secrets outside tests (docs/security.md, Secrets)
        OSTEON_ID_HMAC_KEY=env.get(
            "OSTEON_ID_HMAC_KEY", "load-test-only-id-key-0123456789abcdef0123456789ab"
        ),
        OSTEON_AUDIT_KEY=env.get(
            "OSTEON_AUDIT_KEY", "load-test-only-audit-key-0123456789abcdef012345678"
        ),
        OSTEON_AUDIT_SIGNING_KEY=env.get("OSTEON_AUDIT_SIGNING_KEY", "1d" * 32),
        OSTEON_DICOM_ROOT=str(WORK / "dicom"),
        OSTEON_CASE_ROOT=str(WORK / "cases"),
        OSTEON_MEDIA_ROOT=str(WORK / "media"),
        OSTEON_STATIC_ROOT=str(WORK / "static"),
        OSTEON_HUEY_PATH=str(WORK / "huey-tasks.sqlite3"),
        OSTEON_DEBUG="false",
        DJANGO_SETTINGS_MODULE=SERVER_SETTINGS,
    )
    return env


def prepare_database(url: str, patients: int, ct_cases: int) -> dict[str, Any]:
    """Migrate and load the demo region when empty (idempotent); returns the demo summary."""
    done = subprocess.run(
        [
            str(VENV_BIN / "osteon"),
            "shell",
            "demo",
            "--patients",
            str(patients),
            "--ct-cases",
            str(ct_cases),
            "--json",
        ],
        cwd=REPO,
        # its own database: the demo loader writes demo accounts only where this is set
        env={**server_env(url), "OSTEON_DEMO": "true"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"osteon shell demo failed: {done.stderr.strip()[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def vacuum_analyze(url: str) -> None:
    """Fresh planner statistics: the demo is bulk-loaded and this PostgreSQL may run without
    autovacuum (recorded in the result); with none, the planner takes 5,000 patients for one
    and picks nested loops (the patient list went from 6 ms to 89 ms)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def collect_static(url: str) -> None:
    """collectstatic into var/load/static (the manifest the pages need), when a source changed.

    Compressing the viewer's bundle takes minutes on a small machine: skipped when the manifest
    is newer than every file under an app's static/ folder.
    """
    root = WORK / "static"
    manifest = root / "staticfiles.json"
    sources = [
        f
        for d in REPO.glob("clinical_shell/**/static")
        if "node_modules" not in d.parts
        for f in d.rglob("*")
        if f.is_file()
    ]
    newest = max((f.stat().st_mtime for f in sources), default=0.0)
    if manifest.exists() and manifest.stat().st_mtime >= newest:
        return
    done = subprocess.run(
        [str(VENV_BIN / "python"), "clinical_shell/manage.py", "collectstatic", "--noinput"],
        cwd=REPO,
        env=server_env(url),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"collectstatic failed: {done.stderr.strip()[-2000:]}")


def build_plan(url: str, seed: int) -> dict[str, Any]:
    """Accounts with a clinical role, each with search terms and patients from its own scope."""
    os.environ.update(server_env(url))
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.contrib.auth.models import User

    from clinical_shell.demo import ROLE_PASSWORDS
    from clinical_shell.imaging.models import Series
    from clinical_shell.network.models import CLINICAL_ROLES, Membership
    from clinical_shell.records.access import clinical_institution_ids
    from clinical_shell.records.models import CareRelationship
    from clinical_shell.records.selectors import search_patients

    rng = random.Random(seed)
    first_role: dict[int, str] = {}
    for user_id, role in Membership.objects.filter(role__in=CLINICAL_ROLES).values_list(
        "person__user_id", "role"
    ):
        first_role.setdefault(user_id, role)
    series = list(
        Series.objects.filter(study__patient__isnull=False).values_list("pk", "study__patient_id")
    )
    accounts = []
    for user in User.objects.filter(pk__in=first_role, is_active=True).order_by("username"):
        scope = clinical_institution_ids(user)
        in_scope = list(
            search_patients(institution_ids=scope, text="")
            .order_by("pk")  # the list order does not matter here, only who is in scope
            .values_list("pk", "name", "name_pinyin_initials", "resident_id")
        )
        if not in_scope:
            continue
        rows = rng.sample(in_scope, min(PATIENTS_PER_ACCOUNT, len(in_scope)))
        visible = [
            {"patient_id": patient_id, "series_id": series_id}
            for series_id, patient_id in series
            if CareRelationship.objects.filter(
                patient_id=patient_id, institution_id__in=scope
            ).exists()
        ]
        accounts.append(
            {
                "username": user.username,
                "password": ROLE_PASSWORDS[first_role[user.pk]],
                "role": first_role[user.pk],
                "patient_ids": [r[0] for r in rows],
                # surname + first given character, as people type a name
                "names": sorted({r[1][:2] for r in rows}),
                "initials": sorted({r[2] for r in rows if r[2]}),
                "resident_ids": [r[3] for r in rows if r[3]],
                "series": visible,
            }
        )
    rng.shuffle(accounts)  # users take accounts in turn: mix roles and institutions from the start
    return {"accounts": accounts}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(VENV_BIN / "uvicorn"),
                "clinical_shell.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=server_env(url),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"uvicorn exited ({server.returncode}), see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/sign-in/", timeout=5):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    stop_server(server)
    raise SystemExit(f"uvicorn did not answer within 90 s, see {log}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the uvicorn master (it stops its workers); SIGKILL to its group if it hangs."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # its own session: only what it started
            server.wait(timeout=10)


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children so far."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.NoSuchProcess:
                continue
        return float(total)
    except psutil.NoSuchProcess:
        return 0.0


class Sampler(threading.Thread):
    """Every few seconds: load average, machine CPU use, server CPU time, and the connections
    open to the load-test database, with a guard.

    The PostgreSQL server is shared with other work: a server that leaks connections would
    starve everyone of them. Past `connection_limit` the run is stopped (`tripped` is set).
    """

    def __init__(
        self, server_pid: int, url: str, connection_limit: int, period_s: float = 2.0
    ) -> None:
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.url = url
        self.connection_limit = connection_limit
        self.period_s = period_s
        self.samples: list[dict[str, float]] = []
        self.server_cpu_s = 0.0
        self.tripped = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        psutil.cpu_percent(None)
        name = urlparse(self.url).path.lstrip("/")
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._done.wait(self.period_s):
                # the workers are gone once the server stops: keep the last reading of their time
                self.server_cpu_s = max(self.server_cpu_s, process_cpu_seconds(self.server_pid))
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name]
                ).fetchone()
                connections = (row[0] if row else 0) - 1  # not this one
                self.samples.append(
                    {
                        "time": time.time(),
                        "load_1m": round(os.getloadavg()[0], 2),
                        "cpu_percent": psutil.cpu_percent(None),
                        "db_connections": connections,
                    }
                )
                if connections > self.connection_limit:
                    self.tripped.set()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=self.period_s + 5)


def run_locust(
    *, host: str, plan: Path, record: Path, args: argparse.Namespace, guard: threading.Event
) -> dict[str, Any]:
    """Headless Locust subprocess under a hard time limit, stopped early when `guard` is set;
    returns its exit code, CPU seconds, log tail and why it was stopped early, if it was."""
    ramp_s = args.users / args.spawn_rate
    # the locustfile stops the run `duration` s after the last sign-in; this cap only guards
    # against a run that never gets everyone signed in (sign-ins lag the spawning under load)
    cap_s = int(3 * ramp_s + args.duration + 120)
    env = dict(os.environ)
    env.update(
        OSTEON_LOAD_PLAN=str(plan),
        OSTEON_LOAD_RECORD=str(record),
        OSTEON_LOAD_USERS=str(args.users),
        OSTEON_LOAD_STEADY_S=str(args.duration),
        OSTEON_LOAD_WAIT_MIN=str(args.wait_min),
        OSTEON_LOAD_WAIT_MAX=str(args.wait_max),
    )
    command = [
        str(VENV_BIN / "locust"),
        "-f",
        str(REPO / "benchmarks" / "locustfile.py"),
        "--headless",
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        f"{cap_s}s",
        "--host",
        host,
        "--only-summary",
        "--stop-timeout",
        "10",
        "--loglevel",
        "WARNING",
    ]
    record.unlink(missing_ok=True)
    log_path = WORK / "locust.log"
    with log_path.open("wb") as log:
        locust = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        cpu_s = 0.0
        deadline = time.monotonic() + cap_s + 60
        stopped_early = ""
        while locust.poll() is None and time.monotonic() < deadline:
            cpu_s = max(cpu_s, process_cpu_seconds(locust.pid))
            if guard.is_set() and not stopped_early:
                # Locust quits on SIGTERM like at the end of a run: the record is still written
                stopped_early = "too many database connections (see db_connections_max)"
                locust.terminate()
            time.sleep(1)
        if locust.poll() is None:
            locust.kill()
            locust.wait(timeout=10)
            raise SystemExit(f"locust ran past {cap_s + 60} s and was stopped, see {log_path}")
    return {
        "exit_code": locust.returncode,
        "cpu_seconds": round(cpu_s, 1),
        "run_time_cap_s": cap_s,
        "stopped_early": stopped_early,
        "log_tail": log_path.read_text("utf-8", errors="replace")[-2000:],
    }


def percentile(ordered: list[float], q: float) -> float:
    """Nearest rank on sorted values."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarise(requests: list[list[Any]], seconds: float) -> dict[str, Any]:
    """Per endpoint and all together: requests, errors, p50/p95/p99/max ms, requests per s."""
    by_name: dict[str, list[list[Any]]] = {}
    for row in requests:
        by_name.setdefault(row[1], []).append(row)

    def stats(rows: list[list[Any]]) -> dict[str, Any]:
        times = sorted(float(r[2]) for r in rows)
        return {
            "requests": len(rows),
            "errors": sum(1 for r in rows if r[3]),
            "p50_ms": round(percentile(times, 0.50), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "p99_ms": round(percentile(times, 0.99), 1),
            "max_ms": round(times[-1], 1),
            "requests_per_s": round(len(rows) / seconds, 2) if seconds > 0 else None,
        }

    errors: dict[tuple[str, str], int] = {}
    for row in requests:
        if row[3]:
            errors[(row[1], row[3])] = errors.get((row[1], row[3]), 0) + 1
    return {
        "seconds": round(seconds, 1),
        "all": stats(requests) if requests else None,
        "endpoints": {name: stats(rows) for name, rows in sorted(by_name.items())},
        "errors": [
            {"name": name, "error": error, "count": count}
            for (name, error), count in sorted(errors.items(), key=lambda kv: -kv[1])
        ][:20],
    }


def machine_info(url: str) -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
        max_connections = conn.execute("SHOW max_connections").fetchone()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": model,
        "logical_cpus": psutil.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "postgresql": version[0] if version else "?",
        "postgresql_autovacuum": autovacuum[0] if autovacuum else "?",
        "postgresql_max_connections": int(max_connections[0]) if max_connections else None,
    }


def database_info(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    with psycopg.connect(url) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            for table in ("records_patient", "records_encounter", "imaging_instance")
        }
    return {
        "engine": "postgresql",
        "host": parsed.hostname,
        "name": parsed.path.lstrip("/"),
        "patients": counts["records_patient"][0] if counts["records_patient"] else 0,
        "encounters": counts["records_encounter"][0] if counts["records_encounter"] else 0,
        "dicom_instances": counts["imaging_instance"][0] if counts["imaging_instance"] else 0,
    }


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("django", "uvicorn", "locust")}


def connection_limit(url: str) -> int:
    """Half the server's max_connections: the rest stays for everyone else."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return int(row[0]) // 2 if row else 50


def phase_loads(samples: list[dict[str, float]], start: float, end: float) -> dict[str, Any]:
    inside = [x for x in samples if start <= x["time"] <= end]
    loads = [x["load_1m"] for x in inside]
    cpu = [x["cpu_percent"] for x in inside]
    return {
        "load_1m_mean": round(sum(loads) / len(loads), 2) if loads else None,
        "load_1m_max": max(loads) if loads else None,
        "machine_cpu_percent_mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
        "db_connections_max": max((x["db_connections"] for x in inside), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--spawn-rate", type=float, default=2.0, help="users started per second")
    parser.add_argument(
        "--duration", type=int, default=60, help="seconds measured once every user is signed in"
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--wait-min", type=float, default=5.0, help="think time, seconds")
    parser.add_argument("--wait-max", type=float, default=15.0)
    parser.add_argument("--patients", type=int, default=5000, help="demo patients if empty")
    parser.add_argument("--ct-cases", type=int, default=1, help="demo CT studies if empty")
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument("--output", type=Path, default=None, help="result JSON path")
    args = parser.parse_args()

    url = os.environ.get("OSTEON_LOAD_DATABASE_URL", DEFAULT_URL)
    WORK.mkdir(parents=True, exist_ok=True)
    ensure_database(url)
    print("preparing the database and static files …", file=sys.stderr)
    demo = prepare_database(url, args.patients, args.ct_cases)
    collect_static(url)
    vacuum_analyze(url)
    plan = build_plan(url, args.seed)
    plan_path = WORK / "plan.json"
    plan_path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    record_path = WORK / "requests.json"

    port = free_port()
    host = f"http://127.0.0.1:{port}"
    server = start_server(url, port, args.workers, WORK / "server.log")
    try:
        load_before = [round(x, 2) for x in os.getloadavg()]
        server_cpu_before = process_cpu_seconds(server.pid)  # start-up (imports) left out
        sampler = Sampler(server.pid, url, connection_limit(url))
        sampler.start()
        started = datetime.now(UTC)
        print(
            f"{args.users} users against {host}, then {args.duration} s once all are signed in …",
            file=sys.stderr,
        )
        locust = run_locust(
            host=host, plan=plan_path, record=record_path, args=args, guard=sampler.tripped
        )
        sampler.stop()
        load_after = [round(x, 2) for x in os.getloadavg()]
    finally:
        stop_server(server)
    server_log = (WORK / "server.log").read_text("utf-8", errors="replace")

    record = json.loads(record_path.read_text("utf-8")) if record_path.exists() else {}
    requests: list[list[Any]] = record.get("requests", [])
    t0 = min((r[0] for r in requests), default=started.timestamp())
    t_end = max((r[0] + r[2] / 1000 for r in requests), default=t0)
    steady_from: float | None = record.get("steady_from")
    split = steady_from if steady_from is not None else t_end
    ramp = [r for r in requests if r[0] < split]
    steady = [r for r in requests if r[0] >= split]
    ramp_summary = summarise(ramp, split - t0)
    ramp_summary.update(phase_loads(sampler.samples, t0, split))
    steady_summary = summarise(steady, t_end - split) if steady_from is not None else None
    if steady_summary is not None:
        steady_summary.update(phase_loads(sampler.samples, split, t_end))

    in_goal = {
        name: e
        for name, e in (steady_summary["endpoints"] if steady_summary else {}).items()
        if name != SIGN_IN_POST
    }
    worst = max(in_goal, key=lambda n: in_goal[n]["p95_ms"]) if in_goal else None
    errors = sum(e["errors"] for e in in_goal.values())
    met = bool(
        worst
        and in_goal[worst]["p95_ms"] <= P95_GOAL_MS
        and errors == 0
        and not locust["stopped_early"]
    )
    report = {
        "benchmark": "load",
        "date": started.isoformat(timespec="seconds"),
        "users": args.users,
        "signed_in": record.get("signed_in"),
        "spawn_rate_per_s": args.spawn_rate,
        "steady_duration_s": args.duration,
        "think_time_s": [args.wait_min, args.wait_max],
        "accounts": len(plan["accounts"]),
        "server": {
            "command": f"uvicorn clinical_shell.asgi:application --workers {args.workers}",
            "settings": SERVER_SETTINGS,
            "workers": args.workers,
            "cpu_seconds_during_run": round(sampler.server_cpu_s - server_cpu_before, 1),
            "log_tail": server_log[-2000:],
        },
        "locust": locust,
        "database": database_info(url),
        "demo": demo.get("summary", ""),
        "load_average_at_start": load_before,
        "load_average_at_end": load_after,
        "machine": machine_info(url),
        "versions": versions(),
        "goal": {
            "p95_ms": P95_GOAL_MS,
            "errors": 0,
            "scope": "steady phase (all users signed in), every page and API endpoint",
            "worst_endpoint": worst,
            "worst_p95_ms": in_goal[worst]["p95_ms"] if worst else None,
            "errors_seen": errors,
            "met": met,
        },
        "steady": steady_summary,
        "ramp": ramp_summary,
    }
    out = args.output or (
        REPO / "benchmarks" / "results" / f"load-{datetime.now(UTC):%Y-%m-%d}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for phase, summary in (("ramp", ramp_summary), ("steady", steady_summary)):
        if summary is None:
            print(f"{phase}: no data (not every user signed in?)", file=sys.stderr)
            continue
        print(f"{phase} ({summary['seconds']} s, load {summary['load_1m_mean']}):", file=sys.stderr)
        for name, e in summary["endpoints"].items():
            print(
                f"  {name:<40} {e['requests']:>6} req {e['errors']:>4} err  "
                f"p50 {e['p50_ms']:>7} p95 {e['p95_ms']:>7} p99 {e['p99_ms']:>7} ms",
                file=sys.stderr,
            )
    if locust["stopped_early"]:
        print(f"stopped early: {locust['stopped_early']}", file=sys.stderr)
    verdict = "met" if met else "missed"
    print(
        f"goal p95 <= {P95_GOAL_MS:.0f} ms, 0 errors (steady phase): {verdict} "
        f"(worst {worst}: {in_goal[worst]['p95_ms'] if worst else '-'} ms, {errors} errors); "
        f"written to {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
