"""Validity study of the scores: simulated hands of graded skill, and a catalog of bad techniques.

Per scenario it reports:

- score against skill: mean, SD, pass rate per skill level of `haptics.simulated_hand`
  users (each a different person: their parameters spread around the level's), whether the
  means rise monotonically, and Cohen's d between adjacent levels and between the ends;
- the false-pass rate of the bad-technique catalog (``sim_core.trajectories.bad_techniques``:
  the scoring's catalog, a wrong level only where the scenario is on a vertebra; scripted, on
  the base case): the share of bad techniques that pass;
- test–retest: the same persons at one skill level, two attempts each: within-person SD of
  the score and the correlation between attempts;
- what part of the score each metric carries: its nominal weight, and over all hand sessions
  the mean points it earned and lost and the correlation of its points with the score.

Users run on the base phantoms (seed 1, the test phantoms) and on other people's anatomy
(``CASE_VARIANTS``: a small person with narrow pedicles, a varus hip and narrow condyles, a large
one with wide pedicles, a valgus hip and wide condyles; other noise seeds and tilted
acquisitions), each with its plan made
on its own landmarks, built once under ``var/validity-cases/``. Sessions
run headless through the engine's own step, faster than real time; wall time per session is
recorded. Writes ``benchmarks/results/validity-<date>.json`` with the machine and date.

    .venv/bin/python benchmarks/validity.py [--users 20] [--scenarios ...] [--workers 2]
        [--cases base small large] [--suffix name]
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sim_core.ct.anatomy import Variation

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CASES = ROOT / "var" / "validity-cases"
SCENARIO_REGION = {
    "pedicle_pilot_hole": "lumbar",
    "burr_lesion": "lumbar",
    "femoral_neck_guide_wire": "hip",
    "knee_lesion_burr": "knee",
}
# the knee's lesion lies in the lateral condyle, outside a 128-pixel field at the knee's fine
# in-plane spacing: its phantoms keep the demo's field of view, on 1 mm voxels (as the tests')
WIDE_FIELD_SPACING_MM = {"knee": 1.0}
SKILLS = (0.0, 0.33, 0.67, 1.0)
RETEST_SKILL = 0.67
SLICES, MATRIX = 80, 128  # the tests' phantom size: small enough to build in seconds


@dataclass(frozen=True)
class CaseVariant:
    """One simulated patient: noise seed, acquisition tilt and anatomy per region."""

    name: str
    seed: int
    tilt_deg: tuple[float, float, float]
    variation: dict[str, Variation]  # region -> anatomy; absent: the template

    def anatomy(self, region: str) -> Variation:
        return self.variation.get(region, Variation())


# "base" is the tests' phantom. The others are other people, not other noise: the small one
# is near the small end of adult lumbar and femoral dimensions (narrow pedicles, shallow body,
# short neck in varus), the large one near the large end (wide pedicles, valgus, long neck).
CASE_VARIANTS = (
    CaseVariant("base", 1, (0.0, 0.0, 0.0), {}),
    CaseVariant(
        "small",
        2,
        (4.0, 0.0, -3.0),
        {
            "lumbar": Variation(
                scale=0.9, pedicle_width_mm=7.0, pedicle_medial_offset_deg=3.0, body_depth_mm=29.0
            ),
            "hip": Variation(
                scale=0.9, neck_shaft_deg=125.0, anteversion_deg=8.0, neck_diameter_mm=25.0
            ),
            "knee": Variation(scale=0.9, condyle_spacing_mm=34.0),
        },
    ),
    CaseVariant(
        "large",
        3,
        (-3.0, 2.0, 2.0),
        {
            "lumbar": Variation(
                scale=1.12,
                pedicle_width_mm=12.0,
                pedicle_medial_offset_deg=-3.0,
                body_width_mm=58.0,
                level_spacing_mm=43.0,
            ),
            "hip": Variation(
                scale=1.1, neck_shaft_deg=136.0, anteversion_deg=16.0, neck_length_mm=58.0
            ),
            "knee": Variation(scale=1.1, condyle_spacing_mm=46.0),
        },
    ),
)


@dataclass(frozen=True)
class Job:
    scenario: str
    case: str
    kind: str  # "hand" | "bad"
    skill: float = 0.0
    seed: int = 0
    trial: int = 0
    technique: str = ""


def _machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_avg": os.getloadavg(),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def case_path(region: str, variant: str) -> Path:
    return CASES / f"{region}-{variant}"


def build_cases(regions: Sequence[str], names: Sequence[str] | None = None) -> None:
    from sim_core.case.build import build_case
    from sim_core.ct.anatomy import anatomy
    from sim_core.ct.phantom import make_phantom, write_phantom

    for region in regions:
        for variant in CASE_VARIANTS:
            if names is not None and variant.name not in names:
                continue
            out = case_path(region, variant.name)
            if (out / "case.json").exists():
                continue
            series = CASES / f"{region}-{variant.name}-ct"
            wide = WIDE_FIELD_SPACING_MM.get(region)
            if not series.exists():
                phantom = make_phantom(
                    region,
                    seed=variant.seed,
                    slices=SLICES,
                    matrix=MATRIX,
                    pixel_mm=anatomy(region).pixel_mm * 512 / MATRIX if wide else None,
                    rotation_deg=variant.tilt_deg,
                    variation=variant.anatomy(region),
                )
                write_phantom(phantom, series)
            if wide:
                build_case(series, out, spacing_mm=wide)
            else:
                build_case(series, out)


_models: dict[tuple[str, str], Any] = {}


def _model(scenario: str, variant: str) -> Any:
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle

    if (scenario, variant) not in _models:
        bundle = load_bundle(case_path(SCENARIO_REGION[scenario], variant))
        _models[scenario, variant] = (bundle, model_from_bundle(bundle, scenario))
    return _models[scenario, variant]


def run_job(job: Job) -> dict[str, Any]:
    from haptics.simulated_hand import hand_session
    from sim_core.model import model_from_bundle
    from sim_core.replay import play
    from sim_core.scenarios import load_scenario, other_level
    from sim_core.scoring import score
    from sim_core.trajectories import WRONG_LEVEL, bad_technique_rows

    bundle, model = _model(job.scenario, job.case)
    start = time.perf_counter()
    if job.kind == "hand":
        state, rows, hand = hand_session(model, job.skill, job.seed, trial=job.trial)
        sheet = score(model, state)
        events = list(hand.events)
    else:
        other = None
        if job.technique == "wrong_level":
            shifted = other_level(load_scenario(job.scenario), WRONG_LEVEL)
            other = model_from_bundle(bundle, shifted)
        rows = bad_technique_rows(model, job.technique, other_level=other)
        _, result = play(model, rows)
        sheet = result.sheet
        events = []
    wall = time.perf_counter() - start
    return {
        **job.__dict__,
        "score": sheet.score,
        "raw_score": sheet.raw_score,
        "passed": sheet.passed,
        "critical_errors": list(sheet.critical_errors),
        "failed": [m.name for m in sheet.graded if not m.passed],
        "points": {m.name: m.weight * (m.credit or 0.0) for m in sheet.graded},
        "weights": {m.name: m.weight for m in sheet.graded},
        "values": {m.name: m.value for m in sheet.metrics},
        "events": events,
        "sim_s": rows.shape[0] / 1000.0,
        "wall_s": wall,
    }


def _cohen_d(a: list[float], b: list[float]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    pooled = math.sqrt(
        ((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1))
        / (len(a) + len(b) - 2)
    )
    if pooled == 0.0:
        return None
    return float((np.mean(b) - np.mean(a)) / pooled)


def summarise(scenario: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    hands = [r for r in rows if r["kind"] == "hand" and r["trial"] == 0]
    by_skill: dict[str, Any] = {}
    means = []
    groups = []
    for skill in SKILLS:
        scores = [r["score"] for r in hands if r["skill"] == skill]
        groups.append(scores)
        if not scores:
            continue
        means.append(float(np.mean(scores)))
        by_skill[f"{skill:.2f}"] = {
            "n": len(scores),
            "mean": float(np.mean(scores)),
            "sd": float(np.std(scores, ddof=1)) if len(scores) > 1 else None,
            "pass_rate": float(np.mean([r["passed"] for r in hands if r["skill"] == skill])),
            "per_case": {
                case: float(np.mean(s))
                for case in sorted({r["case"] for r in hands})
                if (s := [r["score"] for r in hands if r["skill"] == skill and r["case"] == case])
            },
            "critical_rate": float(
                np.mean([bool(r["critical_errors"]) for r in hands if r["skill"] == skill])
            ),
        }
    effect = {
        f"{SKILLS[i]:.2f}->{SKILLS[i + 1]:.2f}": _cohen_d(groups[i], groups[i + 1])
        for i in range(len(SKILLS) - 1)
    }
    effect[f"{SKILLS[0]:.2f}->{SKILLS[-1]:.2f}"] = _cohen_d(groups[0], groups[-1])
    bad = [r for r in rows if r["kind"] == "bad"]
    retest_pairs: dict[tuple[str, int], dict[int, float]] = {}
    for r in rows:
        if r["kind"] == "hand" and r["skill"] == RETEST_SKILL:
            retest_pairs.setdefault((r["case"], r["seed"]), {})[r["trial"]] = r["score"]
    pairs = [(p[0], p[1]) for p in retest_pairs.values() if 0 in p and 1 in p]
    retest: dict[str, Any] = {"skill": RETEST_SKILL, "pairs": len(pairs)}
    if len(pairs) >= 2:
        a, b = np.array(pairs).T
        retest["within_person_sd"] = float(np.sqrt(np.mean((a - b) ** 2) / 2.0))
        retest["mean_abs_difference"] = float(np.mean(np.abs(a - b)))
        retest["correlation"] = (
            float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else None
        )
    all_hands = [r for r in rows if r["kind"] == "hand"]
    carried: dict[str, Any] = {}
    if all_hands:
        total = np.array([r["raw_score"] for r in all_hands])
        for name in sorted(all_hands[0]["weights"]):
            pts = np.array([r["points"].get(name, 0.0) for r in all_hands])
            w = all_hands[0]["weights"][name]
            corr = (
                float(np.corrcoef(pts, total)[0, 1])
                if np.std(pts) > 0 and np.std(total) > 0
                else None
            )
            carried[name] = {
                "weight_pct": w,
                "mean_points": float(np.mean(pts)),
                "mean_points_lost": float(w - np.mean(pts)),
                "correlation_with_score": corr,
                "fail_rate": float(np.mean([name in r["failed"] for r in all_hands])),
            }
    speed = [r["sim_s"] / r["wall_s"] for r in all_hands if r["wall_s"] > 0]
    return {
        "by_skill": by_skill,
        "monotone": all(means[i] < means[i + 1] for i in range(len(means) - 1)),
        "effect_size_cohen_d": effect,
        "bad_techniques": {
            r["technique"]: {
                "passed": r["passed"],
                "score": r["score"],
                "critical_errors": r["critical_errors"],
                "failed": r["failed"],
            }
            for r in bad
        },
        "false_pass_rate": float(np.mean([r["passed"] for r in bad])) if bad else None,
        "test_retest": retest,
        "score_carried_by_metric": carried,
        "hand_sessions": len(all_hands),
        "speed_vs_real_time": {
            "median": float(np.median(speed)) if speed else None,
            "min": float(np.min(speed)) if speed else None,
        },
    }


def _report(
    args: argparse.Namespace, started: float, results: list[dict[str, Any]], *, complete: bool
) -> dict[str, Any]:
    users: dict[str, int] = {}
    for r in results:
        if r["kind"] == "hand" and r["trial"] == 0:
            key = f"{r['scenario']}/{r['case']}/{r['skill']:.2f}"
            users[key] = users.get(key, 0) + 1
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "complete": complete,
        "users_per_skill_per_case": args.users,
        "users_run": users,
        "cases": {
            v.name: {
                "seed": v.seed,
                "tilt_deg": v.tilt_deg,
                "anatomy": {r: asdict(a) for r, a in v.variation.items()},
            }
            for v in CASE_VARIANTS
            if v.name in args.cases
        },
        "skills": SKILLS,
        "wall_s": time.perf_counter() - started,
        "scenarios": {
            s: summarise(s, [r for r in results if r["scenario"] == s]) for s in args.scenarios
        },
        "sessions": results,
    }


def _write(out: Path, report: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20, help="simulated users per skill level")
    parser.add_argument("--retest-users", type=int, default=None, help="default: --users")
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIO_REGION))
    parser.add_argument("--cases", nargs="*", default=[v.name for v in CASE_VARIANTS])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--skip-bad", action="store_true", help="no bad-technique catalog")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--suffix", default="", help="validity-<date>-<suffix>.json")
    parser.add_argument(
        "--budget-min", type=float, default=0.0, help="stop starting sessions after this long"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from sim_core.scenarios import load_scenario
    from sim_core.trajectories import bad_techniques

    started = time.perf_counter()
    build_cases(sorted({SCENARIO_REGION[s] for s in args.scenarios}), args.cases)
    retest_users = args.users if args.retest_users is None else args.retest_users
    jobs: list[Job] = []
    for scenario in args.scenarios:
        for technique in () if args.skip_bad else bad_techniques(load_scenario(scenario)):
            jobs.append(Job(scenario, args.cases[0], "bad", technique=technique))
    # user by user across scenarios, cases and skills: a run stopped by --budget-min is balanced
    for seed in range(args.users):
        for scenario in args.scenarios:
            for case in args.cases:
                for skill in SKILLS:
                    jobs.append(Job(scenario, case, "hand", skill, seed))
                if seed < retest_users:
                    jobs.append(Job(scenario, case, "hand", RETEST_SKILL, seed, trial=1))
    print(f"{len(jobs)} sessions on {args.workers} workers", flush=True)
    tail = f"-{args.suffix}" if args.suffix else ""
    out = args.out or RESULTS / f"validity-{datetime.now(UTC).date().isoformat()}{tail}.json"
    results: list[dict[str, Any]] = []
    stopped = False
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for start in range(0, len(jobs), args.workers):
            if args.budget_min and time.perf_counter() - started > 60.0 * args.budget_min:
                stopped = True
                print(f"time budget spent: {len(results)} of {len(jobs)} sessions", flush=True)
                break
            for r in pool.map(run_job, jobs[start : start + args.workers]):
                results.append(r)
                label = r["technique"] or f"skill {r['skill']:.2f} user {r['seed']} t{r['trial']}"
                print(
                    f"{r['scenario']} {r['case']} {label}: {r['score']:.1f} "
                    f"{'pass' if r['passed'] else 'fail'} {r['critical_errors']} "
                    f"({r['sim_s']:.0f} s simulated in {r['wall_s']:.1f} s)",
                    flush=True,
                )
            # written after every batch: a stopped or killed run keeps what it finished
            _write(out, _report(args, started, results, complete=False))
    report = _report(args, started, results, complete=not stopped)
    _write(out, report)
    for s, summary in report["scenarios"].items():
        print(
            s,
            {k: round(v["mean"], 1) for k, v in summary["by_skill"].items()},
            "monotone",
            summary["monotone"],
            "false passes",
            summary["false_pass_rate"],
            "retest",
            summary["test_retest"],
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
