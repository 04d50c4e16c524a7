"""Case builder benchmark: a 512 x 512 x 300 CT phantom series to a case bundle.

Times each stage, measures the build process's peak resident memory, and times scikit-image's
marching cubes on the same bone field beside the chosen mesher (VTK flying edges) as the
reference. Writes ``benchmarks/results/case_build-<date>.json`` with the machine and date.
Goal on the 2-core reference machine: <= 10 s total, <= 3 GiB peak.

    .venv/bin/python benchmarks/case_build.py [--slices 300] [--region lumbar]
"""

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict[str, Any]:
    import psutil

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def _build_child(series: str, out: str, queue: "mp.Queue[dict[str, Any]]") -> None:
    # a fresh process, so its peak RSS is the build's alone
    from sim_core.case.build import build_case

    start = time.perf_counter()
    summary = build_case(Path(series), Path(out))
    total = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"summary": summary, "total_s": total, "peak_rss_gib": peak_kib / 2**20})


def _mesher_reference(case_dir: Path) -> dict[str, float]:
    """VTK flying edges (used) against scikit-image marching cubes on the same field."""
    import numpy as np
    from skimage.measure import marching_cubes

    from sim_core.case.bundle import load_bundle
    from sim_core.case.mesh import _mask_field, surface_of_mask

    bundle = load_bundle(case_dir)
    mask = bundle.bone_id == 1
    spacing = bundle.spacing_mm
    start = time.perf_counter()
    surface_of_mask(mask, spacing)
    vtk_s = time.perf_counter() - start
    start = time.perf_counter()
    field = _mask_field(mask)
    marching_cubes(field, level=0.5, spacing=(spacing,) * 3)  # type: ignore[no-untyped-call]
    skimage_s = time.perf_counter() - start
    return {
        "bone_voxels": int(np.count_nonzero(mask)),
        "vtk_flying_edges_s": round(vtk_s, 3),
        "skimage_marching_cubes_s": round(skimage_s, 3),
        "speedup_vs_skimage": round(skimage_s / vtk_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--region", default="lumbar", choices=["lumbar", "hip", "knee"])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--matrix", type=int, default=512)
    args = parser.parse_args()
    # other work on the machine slows every stage: record the load when the run began
    load_at_start = round(os.getloadavg()[0], 2)

    from sim_core.case.validate import compare_with_truth
    from sim_core.ct.phantom import make_phantom, write_phantom

    work = Path(tempfile.mkdtemp(prefix="osteon-bench-"))
    try:
        series, case = work / "series", work / "case"
        start = time.perf_counter()
        phantom = make_phantom(args.region, seed=1, slices=args.slices, matrix=args.matrix)
        write_phantom(phantom, series)
        phantom_s = time.perf_counter() - start
        del phantom
        ctx = mp.get_context("spawn")
        queue: mp.Queue[dict[str, Any]] = ctx.Queue()
        child = ctx.Process(target=_build_child, args=(str(series), str(case), queue))
        child.start()
        built = queue.get()
        child.join()
        summary = built["summary"]
        result = {
            "benchmark": "case_build",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {**_machine(), "load_average_1m_at_start": load_at_start},
            "input": {
                "region": args.region,
                "shape": [args.slices, args.matrix, args.matrix],
                "phantom_generate_and_write_s": round(phantom_s, 2),
            },
            "case_shape": summary["shape"],
            "stages_s": summary["timings_s"],
            "total_s": round(built["total_s"], 2),
            "peak_rss_gib": round(built["peak_rss_gib"], 2),
            "goals": {"total_s": 10.0, "peak_rss_gib": 3.0},
            "mesher": _mesher_reference(case),
            "accuracy": compare_with_truth(case, series),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"case_build-{result['date'][:10]}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write(f"\nwritten to {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
