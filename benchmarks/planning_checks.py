"""Planning check latency per element on the demo lumbar case (goal p95 <= 50 ms).

Usage: .venv/bin/python benchmarks/planning_checks.py [--case assets/cases/demo-lumbar]
[--runs 200]

The case is the demo's (`make demo-cases` builds it). The model is loaded once through
`sim_core.plan_checks.cached_planning_model` (its load time, with the per-case planning index,
is reported apart; the index's own time is measured on a second build, the memory it holds
from its arrays). Each run checks one pedicle screw: a level and side of L3-L5, its landmark
entry and target each moved up to 3 mm at random, and a screw drawn from the catalog, as
`sim_core.plan_checks.check_element` (what the planning API calls on every element write and
check). Its breach, `sim_core.plan_checks.planned_breach_mm`, is timed beside it, and so is the
simulator's `sim_core.scoring.screw_breach_mm` on the same span, which it must equal (the count
of spans where the two differ is reported; 0 expected). Results go to
benchmarks/results/planning_checks-<date>.json.
"""

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from sim_core.case.bundle import load_bundle
from sim_core.implants import load_catalog
from sim_core.plan_checks import (
    cached_planning_model,
    check_element,
    index_of,
    planned_breach_mm,
    planning_index,
)
from sim_core.scoring import screw_breach_mm

REPO = Path(__file__).resolve().parents[1]
P95_GOAL_MS = 50.0
JITTER_MM = 3.0


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p95_ms": round(float(np.percentile(a, 95)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(float(a.mean()), 2),
        "max_ms": round(float(a.max()), 2),
    }


def run(case: Path, runs: int, seed: int) -> dict[str, Any]:
    bundle = load_bundle(case)
    marks = {m["name"]: bundle.case_from_patient_mm(m["lps_mm"]) for m in bundle.meta["landmarks"]}
    started = time.perf_counter()
    model = cached_planning_model(case, bundle.content_hash)
    load_s = time.perf_counter() - started
    # the index alone: its time, and the memory it holds (its arrays, the trees' points and
    # index arrays, and about 64 bytes per tree node)
    started = time.perf_counter()
    planning_index(model)
    index_s = time.perf_counter() - started
    index = index_of(model)
    trees = [t for t in (index.bone_surface, index.other_surface) if t is not None]
    index_bytes = index.bone.nbytes + sum(v.nbytes for v in index.zone_voxels.values())
    index_bytes += sum(t.data.nbytes + t.indices.nbytes + 64 * t.size for t in trees)
    screws = [i for i in load_catalog() if i.kind == "pedicle_screw"]
    rng = np.random.default_rng(seed)
    check_ms: list[float] = []
    breach_ms: list[float] = []
    scoring_ms: list[float] = []
    differ = 0
    grades: dict[str, int] = {}
    for _ in range(runs):
        level = str(rng.choice(["L3", "L4", "L5"]))
        side = str(rng.choice(["left", "right"]))
        entry = marks[f"{level}_pedicle_entry_{side}"] + rng.uniform(-JITTER_MM, JITTER_MM, 3)
        target = marks[f"{level}_pedicle_target_{side}"] + rng.uniform(-JITTER_MM, JITTER_MM, 3)
        screw = screws[int(rng.integers(len(screws)))]
        t0 = time.perf_counter()
        checks = check_element(
            model,
            kind="pedicle_screw",
            entry_mm=entry,
            target_mm=target,
            diameter_mm=screw.diameter_mm,
            length_mm=screw.length_mm,
        )
        check_ms.append(1000 * (time.perf_counter() - t0))
        grade = checks.gr_grade or "-"
        grades[grade] = grades.get(grade, 0) + 1
        tip = np.asarray(checks.span_end_mm, dtype=np.float64)
        t0 = time.perf_counter()
        planned = planned_breach_mm(model, index, entry, tip, screw.radius_mm)
        breach_ms.append(1000 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        scored = screw_breach_mm(model, entry, tip, screw.radius_mm)
        scoring_ms.append(1000 * (time.perf_counter() - t0))
        differ += planned != scored
    return {
        "case_shape": list(model.shape),
        "spacing_mm": model.spacing_mm,
        "model_load_s": round(load_s, 2),
        "planning_index_s": round(index_s, 2),
        "planning_index_mib": round(index_bytes / 2**20, 1),
        "check_element": _percentiles(check_ms),
        "planned_breach_mm_alone": _percentiles(breach_ms),
        "screw_breach_mm_alone": _percentiles(scoring_ms),
        "breach_differs_from_scoring": differ,
        "grades": dict(sorted(grades.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, default=REPO / "assets" / "cases" / "demo-lumbar")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    measured = run(args.case, args.runs, args.seed)
    report = {
        "benchmark": "planning_checks",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "system": platform.platform(),
            "load_1m": round(os.getloadavg()[0], 2),
        },
        "case": args.case.name,
        "runs": args.runs,
        "goal_p95_ms": P95_GOAL_MS,
        **measured,
        "goal_met": measured["check_element"]["p95_ms"] <= P95_GOAL_MS,
    }
    out = (
        REPO
        / "benchmarks"
        / "results"
        / (f"planning_checks-{datetime.now(UTC).date().isoformat()}.json")
    )
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
