"""Referral inbox latency on PostgreSQL with 100,000 referrals (goal: a busy institution's inbox
p95 <= 100 ms).

Usage: .venv/bin/python benchmarks/referral_inbox.py [--referrals 100000] [--runs 200]

Database: OSTEON_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/
osteon_bench_referrals, created if missing; this benchmark's rows from an earlier run are
removed first). The region: one prefecture center, 10 counties, 50 townships, 20,000 patients;
`--referrals` referrals over two years in every state, 40 % of them addressed to the center (the
busy institution). Each run is what the inbox page does for a center surgeon: the shell's own
`referrals.selectors.inbox` (visibility through the user's memberships included), its count for
the pager and its first page of 20 rows with patient and institutions; timed from Python per box
(incoming, outgoing, overdue) and for a search. Results go to
benchmarks/results/referral_inbox-<date>.json.
"""

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/osteon_bench_referrals"
P95_GOAL_MS = 100.0
PAGE = 20


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


def build(count: int, seed: int) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from clinical_shell.network import services as network
    from clinical_shell.network.models import Institution, Person, Role
    from clinical_shell.records.models import Patient
    from clinical_shell.referrals.models import Direction, Referral, State, Urgency

    rng = random.Random(seed)
    center = Institution.objects.filter(code="RB-CENTER").first()
    if center is None:
        center = network.create_institution(
            actor=None, code="RB-CENTER", name="基准州中心", level="center", county="楚雄市"
        )
    counties = []
    for c in range(10):
        county, _ = Institution.objects.get_or_create(
            code=f"RB-C{c}",
            defaults={
                "name": f"基准县{c}",
                "level": "county",
                "county": f"县{c}",
                "parent": center,
            },
        )
        counties.append(county)
    townships = []
    for t in range(50):
        township, _ = Institution.objects.get_or_create(
            code=f"RB-T{t}",
            defaults={
                "name": f"基准乡{t}",
                "level": "township",
                "county": counties[t % 10].county,
                "parent": counties[t % 10],
            },
        )
        townships.append(township)
    person = Person.objects.filter(user__username="bench.referrals").first()
    if person is None:
        person = network.create_person(
            actor=None, username="bench.referrals", password="Bench-only-2026!", full_name="基准"
        )
        network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    user = person.user
    Referral.objects.filter(from_institution__code__startswith="RB-").delete()
    Patient.objects.filter(registered_at__code__startswith="RB-").delete()

    started = time.perf_counter()
    surnames = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
    patients = Patient.objects.bulk_create(
        [
            Patient(
                name=rng.choice(surnames) + rng.choice("秀英桂兰建国志强明华丽娟"),
                name_pinyin="bench",
                name_pinyin_initials=rng.choice("wlzlcyzhzw") + rng.choice("xgjzmhlj"),
                name_sort_key="bench",
                sex=rng.choice("MF"),
                birth_date=datetime(1930 + rng.randrange(80), 1, 1).date(),
                registered_at=rng.choice(townships),
            )
            for _ in range(20_000)
        ],
        batch_size=5000,
    )
    states = [s for s in State.values]
    weights = [2, 6, 6, 4, 6, 60, 4, 4]  # most referrals of two years are completed
    rows = []
    for i in range(count):
        to_center = rng.random() < 0.4
        sender = rng.choice(counties) if to_center else rng.choice(townships)
        receiver = center if to_center else (sender.parent or center)
        if rng.random() < 0.15:  # some go down, from the center
            sender, receiver = center, rng.choice(counties)
        state = rng.choices(states, weights)[0]
        rows.append(
            Referral(
                patient=rng.choice(patients),
                direction=Direction.DOWN if sender.level == "center" else Direction.UP,
                urgency=rng.choices(Urgency.values, [80, 15, 5])[0],
                state=state,
                from_institution=sender,
                to_institution=receiver,
                reason=f"基准转诊 {i}",
                criteria=["up_hip_fracture_elderly"],
                created_by=user,
            )
        )
    Referral.objects.bulk_create(rows, batch_size=5000)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE referrals_referral SET created_at = %s - (random() * interval '730 days')"
            " WHERE reason LIKE '基准转诊%%'",
            [now],
        )
        cursor.execute(
            "UPDATE referrals_referral SET sent_at = created_at,"
            " answer_due_at = created_at + interval '2 days'"
            " WHERE reason LIKE '基准转诊%%' AND state <> 'draft'"
        )
        # a busy week: some open ones are recent, some of them late
        cursor.execute(
            "UPDATE referrals_referral SET created_at = %s - (random() * interval '4 days'),"
            " answer_due_at = %s - interval '1 day' + (random() * interval '3 days')"
            " WHERE reason LIKE '基准转诊%%' AND state = 'sent'",
            [now, now],
        )
    # as autovacuum leaves a table in service: dead rows of the earlier run and of the updates
    # above gone, the visibility map set (index-only counts)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE referrals_referral")
        cursor.execute("VACUUM ANALYZE records_patient")
    return {"user": user, "rows": count, "generate_s": time.perf_counter() - started}


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


def run(user: Any, runs: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clinical_shell.referrals.selectors import InboxFilter, inbox

    cases = {
        "incoming": InboxFilter(box="incoming"),
        "incoming_sent": InboxFilter(box="incoming", state="sent"),
        "outgoing": InboxFilter(box="outgoing"),
        "overdue": InboxFilter(box="overdue"),
        "search": InboxFilter(box="incoming", q="王"),
    }
    measured: dict[str, Any] = {}
    for name, f in cases.items():

        def once(f: InboxFilter = f) -> tuple[int, int]:
            rows = inbox(user, f)
            total = rows.count()
            page = list(rows[:PAGE])
            return total, len(page)

        for _ in range(5):
            once()
        with CaptureQueriesContext(connection) as queries:
            total, shown = once()
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            once()
            samples.append((time.perf_counter() - start) * 1000)
        measured[name] = {
            **_percentiles(samples),
            "queries": len(queries),
            "rows_in_box": total,
            "shown": shown,
        }
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args()
    url = os.environ.get("OSTEON_BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    setup_django(url)
    scene = build(args.referrals, args.seed)
    measured = run(scene["user"], args.runs)
    worst = max(m["p95_ms"] for m in measured.values())
    report = {
        "benchmark": "referral_inbox",
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
        "referrals": scene["rows"],
        "runs": args.runs,
        "page_size": PAGE,
        "generate_s": round(scene["generate_s"], 1),
        "goal_p95_ms": P95_GOAL_MS,
        "boxes": measured,
        "worst_p95_ms": worst,
        "goal_met": worst <= P95_GOAL_MS,
    }
    out = REPO / "benchmarks" / "results" / f"referral_inbox-{datetime.now(UTC).date()}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
