"""DICOM import rate: a 300-slice 512 x 512 CT phantom series through the imaging import service.

Usage: .venv/bin/python benchmarks/dicom_import.py [--slices 300] [--matrix 512] [--sqlite]

The series is sim_core's lumbar CT phantom (uncompressed, about 0.5 MiB a slice). It goes in the
way an upload does: `imaging.services.import_upload` with one open file per slice, each checked,
hashed, written to the store (flushed and fsynced) and indexed (see import_upload for how files
are grouped into transactions). Timed: the whole call, and the first and second half of the
files apart (a rate that falls as the index grows shows in the second half). Database:
PostgreSQL by default (a fresh `osteon_bench_dicom` database each run, from
OSTEON_BENCH_DATABASE_URL's server), or a fresh SQLite file with --sqlite. Goal: >= 140
instances/s (what Orthanc reaches on this class of machine). Results go to
benchmarks/results/dicom_import-<date>.json.
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/osteon_bench_dicom"
GOAL_INSTANCES_PER_S = 140.0


def fresh_postgres(url: str) -> None:
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(url: str, dicom_root: Path) -> None:
    sys.path.insert(0, str(REPO))
    os.environ["OSTEON_DATABASE_URL"] = url
    os.environ["OSTEON_DICOM_ROOT"] = str(dicom_root)
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


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def make_uploader() -> tuple[Any, Any, Any]:
    """(user, institution, patient): a center surgeon uploading for their own patient."""
    from datetime import date

    from clinical_shell.network import services as network
    from clinical_shell.network.models import Role
    from clinical_shell.records import services as records

    center = network.create_institution(
        actor=None, code="BENCH", name="基准测试医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None,
        username="bench.surgeon",
        password="Benchmark-only-2026!",
        full_name="基准",
        title="attending",
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    patient = records.register_patient(
        actor=person.user, institution=center, name="李明", sex="M", birth_date=date(1970, 1, 1)
    )
    return person.user, center, patient


def import_files(files: list[Path], uploader: tuple[Any, Any, Any]) -> tuple[float, int, int]:
    """(seconds, stored, refused) for one import_upload call over `files`."""
    from clinical_shell.imaging import services as imaging

    user, center, patient = uploader
    handles = [(f.name, f.open("rb")) for f in files]
    try:
        start = time.perf_counter()
        report = imaging.import_upload(
            actor=user,
            institution=center,
            files=handles,
            patient=patient,
        )
        seconds = time.perf_counter() - start
    finally:
        for _, handle in handles:
            handle.close()
    return seconds, len(report.stored), len(report.refused)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--matrix", type=int, default=512)
    parser.add_argument("--sqlite", action="store_true", help="a fresh SQLite file, not PostgreSQL")
    args = parser.parse_args()

    from sim_core.ct.phantom import make_phantom, write_phantom

    work = Path(tempfile.mkdtemp(prefix="osteon-dicom-bench-"))
    try:
        started = time.perf_counter()
        files = write_phantom(
            make_phantom("lumbar", seed=11, slices=args.slices, matrix=args.matrix),
            work / "series",
        )
        generate_s = time.perf_counter() - started
        if args.sqlite:
            url = f"sqlite:///{work / 'bench.sqlite3'}"
        else:
            url = os.environ.get("OSTEON_BENCH_DATABASE_URL", DEFAULT_URL)
            fresh_postgres(url)
        setup_django(url, work / "dicom")
        from django.db import connection

        uploader = make_uploader()
        half = len(files) // 2
        first_s, stored_a, refused_a = import_files(files[:half], uploader)
        second_s, stored_b, refused_b = import_files(files[half:], uploader)
        total_s = first_s + second_s
        stored, refused = stored_a + stored_b, refused_a + refused_b
        size_mib = sum(f.stat().st_size for f in files) / 2**20
        rate = stored / total_s
        result = {
            "benchmark": "dicom_import",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "database": connection.vendor,
            "series": {
                "phantom": "lumbar seed 11",
                "slices": len(files),
                "matrix": args.matrix,
                "transfer_syntax": "explicit VR little endian (uncompressed)",
                "size_mib": round(size_mib, 1),
                "generate_s": round(generate_s, 2),
            },
            "stored": stored,
            "refused": refused,
            "import_s": round(total_s, 3),
            "instances_per_s": round(rate, 1),
            "mib_per_s": round(size_mib / total_s, 1),
            "first_half_instances_per_s": round(stored_a / first_s, 1),
            "second_half_instances_per_s": round(stored_b / second_s, 1),
            "goal_instances_per_s": GOAL_INSTANCES_PER_S,
            "meets_goal": rate >= GOAL_INSTANCES_PER_S,
            "path": "imaging.services.import_upload: per file parse + checks, sha256, written "
            "and fsynced under a temporary name (3 threads, 8 ahead); first file of a series in "
            "its own transaction, the rest in transactions of 32; renamed into place before "
            "commit; audit per study",
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"dicom_import-{datetime.now(UTC):%Y-%m-%d}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
