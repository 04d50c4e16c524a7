"""Eligibility check latency on PostgreSQL for a surgeon with 10,000 scores (goal p95 <= 50 ms).

Usage: .venv/bin/python benchmarks/eligibility.py [--scores 10000] [--runs 300]

Database: OSTEON_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/
osteon_bench_eligibility, created if missing, emptied of this benchmark's rows first). One
surgeon gets `--scores` results over two years on two modules' scenarios (80 % verified, 10 %
pending, 10 % rejected, as result rows written directly); the grade-4 requirement asks for
verified passes of both modules within a year. Each run is the shell's own
`credentialing.eligibility.check_eligibility` (what the apply page and the API call), timed
from Python; `check_privilege` (what scheduling asks per booking) is timed beside it.
Results go to benchmarks/results/eligibility-<date>.json.
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/osteon_bench_eligibility"
P95_GOAL_MS = 50.0
CASE = "sha256:" + "be" * 32


def ensure_database(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str) -> None:
    sys.path.insert(0, str(REPO))
    os.environ["OSTEON_DATABASE_URL"] = url
    os.environ.setdefault("OSTEON_SECRET_KEY", "benchmark-only-key-0123456789abcdef0123456789")
    # a fresh checkout has no key files: the audit chain needs a key of its own here
    os.environ.setdefault("OSTEON_AUDIT_KEY", "benchmark-only-audit-key-0123456789abcdef012345")
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinical_shell.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def build(scores: int, seed: int) -> dict[str, Any]:
    """The surgeon, their scores, the requirement; returns the objects the runs need."""
    import nacl.signing
    import zmq
    from django.utils import timezone

    from clinical_shell.credentialing import services
    from clinical_shell.network import services as network
    from clinical_shell.network.models import Institution, Person, Role
    from clinical_shell.stations import services as stations
    from clinical_shell.stations.models import CaseArchive, SessionResult, StationSession
    from clinical_shell.training.models import Module

    rng = random.Random(seed)
    center = Institution.objects.filter(code="BENCH-CENTER").first()
    if center is None:
        center = network.create_institution(
            actor=None, code="BENCH-CENTER", name="基准测试医院", level="center", county="楚雄市"
        )
    person = Person.objects.filter(user__username="bench.surgeon").first()
    if person is None:
        person = network.create_person(
            actor=None, username="bench.surgeon", password="Bench-only-2026!", full_name="基准"
        )
        network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    surgeon = person.user
    # this benchmark's rows from an earlier run go first
    SessionResult.objects.filter(user=surgeon).delete()
    StationSession.objects.filter(user=surgeon).delete()

    services.set_institution_licence(
        actor=None, institution=center, hospital_grade=3, max_surgical_grade=4
    )
    services.set_practice_record(actor=None, user=surgeon, practising_since=date(2010, 1, 1))
    modules = []
    for code, scenario in (("bench-pedicle", "pedicle_pilot_hole"), ("bench-burr", "burr_lesion")):
        module, _ = Module.objects.get_or_create(
            code=code,
            defaults={
                "title": code,
                "scenario": scenario,
                "case_kind": "teaching",
                "case_content_hash": CASE,
                "pass_score": 70,
            },
        )
        modules.append(module)
    requirement = services.save_requirement(
        actor=None,
        grade=4,
        min_years_practice=10,
        min_hospital_grade=3,
        modules=[(modules[0], 5, 85.0, 365), (modules[1], 3, 80.0, 365)],
    )
    issued = stations.create_enrolment_code(actor=None, institution=center, room="bench")
    station = stations.enroll_station(
        code=issued.code,
        curve_public_key=zmq.curve_keypair()[0].decode(),
        signing_public_key=nacl.signing.SigningKey.generate().verify_key.encode().hex(),
        hostname="bench",
    )

    CaseArchive.objects.get_or_create(
        archive_hash="sha256:bench-archive",
        defaults={"content_hash": CASE, "path": "", "size_bytes": 0, "bundle_path": ""},
    )
    started = time.perf_counter()
    now = timezone.now()
    sessions = []
    for i in range(scores):
        module = modules[i % 2]
        sessions.append(
            StationSession(
                station=station,
                user=surgeon,
                case_hash="sha256:bench-archive",
                case_content_hash=CASE,
                scenario=module.scenario,
                origin=StationSession.Origin.STATION,
                state=StationSession.State.FINISHED,
                uid=f"bench-{seed}-{i}",
            )
        )
    sessions = StationSession.objects.bulk_create(sessions, batch_size=2000)
    states = ["verified"] * 8 + ["pending", "rejected"]
    results = [
        SessionResult(
            message_id=session.uid,
            session=session,
            station=station,
            user=surgeon,
            case_hash=session.case_hash,
            scenario=session.scenario,
            recording_sha256="0" * 64,
            recording_path="",
            metrics={"time_s": rng.uniform(40, 200)},
            score=rng.uniform(30, 100),
            passed=True,
            final_state_hash="bench",
            signature="benchmark-row",
            verification=rng.choice(states),
        )
        for session in sessions
    ]
    rows = SessionResult.objects.bulk_create(results, batch_size=2000)
    # spread over two years (auto_now_add stamped them all now)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE stations_sessionresult SET received_at = %s - (random() * interval '730 days')"
            " WHERE user_id = %s",
            [now, surgeon.pk],
        )
        cursor.execute("ANALYZE stations_sessionresult")
        cursor.execute("ANALYZE stations_stationsession")
    return {
        "surgeon": surgeon,
        "center": center,
        "requirement": requirement,
        "rows": len(rows),
        "generate_s": time.perf_counter() - started,
    }


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {
        "p50_ms": round(pct(50), 2),
        "p95_ms": round(pct(95), 2),
        "p99_ms": round(pct(99), 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "max_ms": round(ordered[-1], 2),
    }


def run(scene: dict[str, Any], runs: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from clinical_shell.credentialing.eligibility import check_eligibility
    from clinical_shell.credentialing.services import check_privilege

    surgeon, center, requirement = scene["surgeon"], scene["center"], scene["requirement"]
    for _ in range(10):  # warm-up: connections, query plans, caches
        check_eligibility(surgeon, requirement, center)
    with CaptureQueriesContext(connection) as queries:
        result = check_eligibility(surgeon, requirement, center)
    eligibility_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        check_eligibility(surgeon, requirement, center)
        eligibility_ms.append((time.perf_counter() - start) * 1000)
    today = timezone.localdate()
    privilege_ms = []
    for _ in range(runs):
        start = time.perf_counter()
        check_privilege(surgeon, technique=None, grade=4, institution=center, on=today)
        privilege_ms.append((time.perf_counter() - start) * 1000)
    return {
        "check_eligibility": {**_percentiles(eligibility_ms), "queries": len(queries)},
        "check_privilege": _percentiles(privilege_ms),
        "eligible": result.eligible,
        "passes_found": [m.passes_found for m in result.modules],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scores", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args()
    url = os.environ.get("OSTEON_BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    setup_django(url)
    scene = build(args.scores, args.seed)
    measured = run(scene, args.runs)
    report = {
        "benchmark": "eligibility",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "system": platform.platform(),
            "load_1m": round(os.getloadavg()[0], 2),
        },
        "database": "postgresql",
        "scores": scene["rows"],
        "runs": args.runs,
        "generate_s": round(scene["generate_s"], 1),
        "goal_p95_ms": P95_GOAL_MS,
        **measured,
        "goal_met": measured["check_eligibility"]["p95_ms"] <= P95_GOAL_MS,
    }
    out = (
        REPO / "benchmarks" / "results" / f"eligibility-{datetime.now(UTC).date().isoformat()}.json"
    )
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
