"""Patient search latency on PostgreSQL with 1,000,000 patients: name prefix, pinyin initials, ID.

Usage: .venv/bin/python benchmarks/patient_search.py [--patients 1000000] [--queries 300]

Queries: two-character name prefixes (surname + first given character, 张明), three pinyin
initials (zmh), exact ID numbers; one-character surname prefixes are reported apart.

Database: OSTEON_BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/osteon_bench,
created if missing). Patients are generated once with COPY and kept for later runs. Each query runs
the shell's own selector (`records.selectors.search_patients`, scoped to one county hospital as a
county surgeon's search is) and fetches the first page of 20, as the search page does; the count
the page shows is timed separately. Results go to benchmarks/results/patient_search-<date>.json.
"""

import argparse
import hashlib
import hmac
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/osteon_bench"
P95_GOAL_MS = 50.0


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
    # the shell has no default secrets outside tests (docs/security.md, Secrets)
    os.environ.setdefault("OSTEON_ID_HMAC_KEY", "benchmark-only-id-key-0123456789abcdef01234567")
    os.environ.setdefault("OSTEON_AUDIT_KEY", "benchmark-only-audit-key-0123456789abcdef012345")
    os.environ.setdefault("OSTEON_AUDIT_SIGNING_KEY", "be" * 32)
    os.environ["DJANGO_SETTINGS_MODULE"] = "clinical_shell.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)


def _pinyin_tables(chars: set[str]) -> tuple[dict[str, str], dict[str, str]]:
    from clinical_shell.records.identity import pinyin_full, pinyin_initials

    return {c: pinyin_full(c) for c in chars}, {c: pinyin_initials(c) for c in chars}


def generate(url: str, patients: int, seed: int) -> float:
    """COPY `patients` rows (and their registration care relationship) in; returns seconds."""
    from django.conf import settings

    from clinical_shell.demo_data import GIVEN_FEMALE, GIVEN_MALE, SURNAMES
    from clinical_shell.network import chuxiong
    from clinical_shell.network.models import Institution
    from clinical_shell.network.services import build_chuxiong_network
    from clinical_shell.records.identity import check_char

    if not Institution.objects.filter(code=chuxiong.CENTER_CODE).exists():
        build_chuxiong_network(actor=None)
    places = [(i.pk, i.county) for i in Institution.objects.exclude(level="center")]
    area = {c.name: c.area_code for c in chuxiong.COUNTIES}
    full, first = _pinyin_tables(set(SURNAMES) | set(GIVEN_MALE) | set(GIVEN_FEMALE))
    key = settings.OSTEON_ID_HMAC_KEY.encode()
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat()
    epoch = date(1930, 1, 1)

    def rows() -> Iterator[tuple[Any, ...]]:
        for n in range(patients):
            sex = "M" if rng.random() < 0.5 else "F"
            given = GIVEN_MALE if sex == "M" else GIVEN_FEMALE
            name = rng.choice(SURNAMES) + "".join(
                rng.choice(given) for _ in range(1 if rng.random() < 0.3 else 2)
            )
            inst, county = rng.choice(places)
            born = epoch + timedelta(days=rng.randrange(0, 365 * 90))
            body = f"{area[county]}{born:%Y%m%d}{(n % 500) * 2 + (sex == 'M'):03d}"
            rid = body + check_char(body)
            digest = hmac.new(key, rid.encode(), hashlib.sha256).hexdigest()
            yield (
                rid,
                digest,
                name,
                "".join(full[c] for c in name),
                "".join(first[c] for c in name),
                sex,
                born.isoformat(),
                inst,
                now,
            )

    started = time.perf_counter()
    columns = (
        "resident_id, resident_id_digest, name, name_pinyin, name_pinyin_initials, sex, "
        "birth_date, registered_at_id, created_at"
    )
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        first_id = cur.execute("SELECT coalesce(max(id), 0) FROM records_patient").fetchone()
        assert first_id is not None
        with cur.copy(
            f"COPY records_patient ({columns}, updated_at, version, deleted_reason, phone, "
            "address) FROM STDIN"
        ) as copy:
            for row in rows():
                copy.write_row((*row, row[-1], 1, "", "", ""))
        cur.execute(
            "INSERT INTO records_carerelationship (patient_id, institution_id, kind, created_at) "
            "SELECT id, registered_at_id, 'registration', created_at FROM records_patient "
            "WHERE id > %s",
            [first_id[0]],
        )
        conn.commit()
        cur.execute("ANALYZE records_patient")
        cur.execute("ANALYZE records_carerelationship")
        conn.commit()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_queries(queries: int, seed: int) -> dict[str, Any]:
    from clinical_shell.demo_data import GIVEN_FEMALE, GIVEN_MALE, SURNAMES
    from clinical_shell.network.models import Institution
    from clinical_shell.records.identity import pinyin_initials
    from clinical_shell.records.models import Patient
    from clinical_shell.records.selectors import search_patients

    rng = random.Random(seed + 1)
    county = Institution.objects.filter(level="county").order_by("code").first()
    assert county is not None
    scope = [county.pk]
    sample_ids = list(
        Patient.objects.filter(registered_at=county).values_list("resident_id", flat=True)[:5000]
    )
    givens = GIVEN_MALE + GIVEN_FEMALE
    kinds: dict[str, list[str]] = {
        "name_prefix": [rng.choice(SURNAMES) + rng.choice(givens) for _ in range(queries)],
        "pinyin_initials": [
            pinyin_initials(rng.choice(SURNAMES) + rng.choice(givens) + rng.choice(givens))
            for _ in range(queries)
        ],
        "resident_id": [rng.choice(sample_ids) for _ in range(queries)],
        # one character matches ~1/30 of all patients: reported, but not what the goal is about
        "surname_only": [rng.choice(SURNAMES) for _ in range(max(30, queries // 10))],
    }
    results: dict[str, Any] = {}
    for kind, texts in kinds.items():
        for text in texts[:10]:  # warm the caches the way a running server has them
            list(search_patients(institution_ids=scope, text=text)[:20])
        page_ms: list[float] = []
        count_ms: list[float] = []
        hits: list[int] = []
        for text in texts:
            qs = search_patients(institution_ids=scope, text=text)
            t0 = time.perf_counter()
            page = list(qs[:20])
            t1 = time.perf_counter()
            total = qs.count()
            t2 = time.perf_counter()
            page_ms.append((t1 - t0) * 1000)
            count_ms.append((t2 - t1) * 1000)
            hits.append(total if page else 0)
        results[kind] = {
            "queries": len(texts),
            "page_p50_ms": round(statistics.median(page_ms), 2),
            "page_p95_ms": round(percentile(page_ms, 0.95), 2),
            "count_p50_ms": round(statistics.median(count_ms), 2),
            "count_p95_ms": round(percentile(count_ms, 0.95), 2),
            "median_matches": statistics.median(hits),
            "example": texts[0] if kind != "resident_id" else texts[0][:4] + "…",
        }
    return results


def machine_info(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "logical_cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "postgresql": version[0] if version else "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20260)
    args = parser.parse_args()
    url = os.environ.get("OSTEON_BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    setup_django(url)
    from clinical_shell.records.models import Patient

    existing = Patient.objects.count()
    generate_s = 0.0
    if existing < args.patients:
        print(f"generating {args.patients - existing} patients …", file=sys.stderr)
        generate_s = generate(url, args.patients - existing, args.seed + existing)
    total = Patient.objects.count()
    searches = run_queries(args.queries, args.seed)
    goal_kinds = ("name_prefix", "pinyin_initials", "resident_id")
    worst_p95 = max(searches[k]["page_p95_ms"] for k in goal_kinds)
    report = {
        "benchmark": "patient_search",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "patients": total,
        "generate_seconds": round(generate_s, 1),
        "scope": "one county hospital (county surgeon's search), first page of 20",
        "searches": searches,
        "goal_page_p95_ms": P95_GOAL_MS,
        "goal_kinds": list(goal_kinds),
        "goal_met": worst_p95 <= P95_GOAL_MS,
        "machine": machine_info(url),
    }
    out_dir = REPO / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"patient_search-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
