"""Virtual fluoroscopy benchmark: milliseconds per 512² C-arm shot on the three demo regions.

For the lumbar, hip and knee phantoms at the demo size (``osteon phantom ct`` defaults, the
cases ``make run`` builds) it times ``Fluoroscope.shot`` (attenuation grid of the current
density + the compiled ray caster, instrument included) for every view of the region's
scenario, after one warm-up shot that loads the compiled kernel. Writes
``benchmarks/results/fluoro-<date>.json`` with the machine, date and load.

    .venv/bin/python benchmarks/fluoro.py [--repeats 5] [--cases-dir assets/cases]

Cases are read from ``--cases-dir`` (``demo-<region>``) when built there, else built into a
temporary folder first (about 10 s each).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
REGION_SCENARIO = {
    "lumbar": "pedicle_pilot_hole",
    "hip": "femoral_neck_guide_wire",
    "knee": "knee_lesion_burr",
}
VIEWS = {
    "lumbar": ("ap", "lateral", "oblique:30", "oblique:-30"),
    "hip": ("ap", "lateral", "inlet", "outlet"),
    "knee": ("ap", "lateral", "oblique:30", "oblique:-30"),
}


def _machine() -> dict[str, Any]:
    import numba
    import numpy as np

    return {
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "load_avg_1min_at_start": os.getloadavg()[0],
    }


def _case(region: str, cases_dir: Path, workdir: Path) -> Path:
    built = cases_dir / f"demo-{region}"
    if (built / "case.json").is_file():
        return built
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    write_phantom(make_phantom(region, seed=7), workdir / f"ct-{region}")
    build_case(workdir / f"ct-{region}", workdir / f"case-{region}")
    return workdir / f"case-{region}"


def bench_region(region: str, case: Path, repeats: int) -> dict[str, Any]:
    from sim_core import fluoro
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.slots import Q_TIP, S_POSE
    from sim_core.state import make_state

    bundle = load_bundle(case)
    model = model_from_bundle(bundle, REGION_SCENARIO[region])
    state = make_state(model)
    # the instrument at the planned target, so every shot casts it too
    state.st[S_POSE + Q_TIP : S_POSE + Q_TIP + 3] = model.plan.target_mm
    t0 = time.perf_counter()
    scope = fluoro.Fluoroscope.for_case(bundle, model.plan, model.instrument)
    setup_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    scope.shot(state.density, state.st, fluoro.View.parse("ap"))
    first_ms = (time.perf_counter() - t0) * 1e3
    views: dict[str, Any] = {}
    for name in VIEWS[region]:
        view = fluoro.View.parse(name)
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            shot = scope.shot(state.density, state.st, view)
            ms.append((time.perf_counter() - t0) * 1e3)
        views[view.label] = {
            "ms_median": round(statistics.median(ms), 1),
            "ms_min": round(min(ms), 1),
            "ms_max": round(max(ms), 1),
            "instrument_pixels": int((shot.instrument > 0).sum()),
        }
    return {
        "case": str(case),
        "grid": list(bundle.hu.shape),
        "spacing_mm": bundle.spacing_mm,
        "scenario": model.scenario.name,
        "instrument": model.instrument.name,
        "soft_tissue_grid_ms": round(setup_ms, 1),
        "first_shot_ms_incl_kernel_load": round(first_ms, 1),
        "views": views,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases-dir", type=Path, default=ROOT / "assets" / "cases")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    machine = _machine()
    regions: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="osteon-fluoro-bench-") as tmp:
        for region in REGION_SCENARIO:
            case = _case(region, args.cases_dir, Path(tmp))
            regions[region] = bench_region(region, case, args.repeats)
    medians = [v["ms_median"] for r in regions.values() for v in r["views"].values()]
    result = {
        "date_utc": datetime.now(UTC).isoformat(),
        "machine": {**machine, "load_avg_1min_at_end": os.getloadavg()[0]},
        "image": "512 x 512, perspective cone beam, source-isocentre 600 mm, source-detector "
        "1000 mm, 300 mm detector; step = voxel spacing, trilinear",
        "regions": regions,
        "ms_per_512_image_median_of_views": round(statistics.median(medians), 1),
        "ms_per_512_image_worst_view": max(medians),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"fluoro-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("ms_per_512_image_median_of_views",
                                              "ms_per_512_image_worst_view")}))  # fmt: skip
    print(f"→ {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
