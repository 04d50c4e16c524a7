"""The engine's tick with the drill deep in bone, inside the compiled 1 kHz loop, for two
engine versions in the same run.

The per-tool figures of ``osteon sim bench`` touch the synthetic block 1 mm deep; this one
drills the lumbar phantom's pedicle plan with the 3.2 mm drill (power on, 4 mm/s, from 10 mm
before the entry to the target) and then pivots it ±15° about its tip, the worst case of the
whole-instrument contact (the 45 mm shaft in bone) and of the orientation proxy. The
scripted device drives ``haptics.servo.EngineServoLoop`` (SCHED_FIFO where allowed): per
tick, waking to the force written to the device and to the whole tick done; the loop's
period. Each engine runs in its own process from its own source tree: ``--before REF`` is a
git revision exported to a temporary directory (default: the commit before engine 2), the
other the working tree. Writes ``benchmarks/results/physics-loop-<date>.json``.

    .venv/bin/python benchmarks/physics_loop.py [--before REF] [--case CASE_DIR]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BEFORE_REF = "23d5050"  # the last commit with engine 1 (8 mm stub, 3-DOF proxy)


def _percentiles(ns: Any) -> dict[str, float]:
    import numpy as np

    us = np.asarray(ns, dtype=np.float64) / 1e3
    return {
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "max_us": float(us.max()),
    }


def measure(case: Path | None) -> dict[str, Any]:
    """In the current process's engine: drill the pedicle plan and pivot, in the 1 kHz loop."""
    import numpy as np

    from haptics.scripted import ScriptedDevice
    from haptics.servo import EngineServoLoop
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.state import make_state, state_hash
    from sim_core.step import run
    from sim_core.trajectories import Waypoint, rows_from_waypoints

    with tempfile.TemporaryDirectory(prefix="osteon-physics-") as tmp:
        if case is None:
            from sim_core.case.build import build_case
            from sim_core.ct.phantom import make_phantom, write_phantom

            write_phantom(make_phantom("lumbar", seed=1, slices=80, matrix=128), Path(tmp) / "ct")
            build_case(Path(tmp) / "ct", Path(tmp) / "case")
            case = Path(tmp) / "case"
        model = model_from_bundle(load_bundle(case), "pedicle_pilot_hole")
    entry, target = np.array(model.plan.entry_mm), np.array(model.plan.target_mm)
    axis = (target - entry) / np.linalg.norm(target - entry)
    side = np.cross(axis, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    feed_s = float(np.linalg.norm(target - entry)) / 4.0
    ax = tuple(float(a) for a in axis)
    points = [
        Waypoint(0.0, tuple(entry - 10.0 * axis), ax, True),
        Waypoint(2.0 + feed_s, tuple(target), ax, True),
        Waypoint(3.0 + feed_s, tuple(target), ax, True),
    ]
    t = points[-1].t_s
    for k, deg in enumerate((15.0, -15.0, 0.0)):
        a = np.radians(deg)
        turned = axis * np.cos(a) + np.cross(side, axis) * np.sin(a)
        points.append(Waypoint(t + 1.0 + k, tuple(target), tuple(turned), True))
    rows = rows_from_waypoints(points)
    state = make_state(model)
    device = ScriptedDevice(rows, max_force_n=model.device.max_force_n)
    device.open()
    loop = EngineServoLoop(device, model, state, capacity_ticks=len(rows) + 10)
    loop.start()
    loop.wait()
    stats = loop.stop()
    done = loop.ticks_done
    in_bone = slice(int(2000 + 0.5 * feed_s * 1000), done)  # from half way down the pedicle
    replayed = make_state(model)
    run(model, replayed, loop.recorded_inputs())
    return {
        "instrument": model.instrument.name,
        "tool_row": [float(x) for x in model.tool],
        "ticks": done,
        "loop": stats.as_dict(),
        "force_written_us": _percentiles(loop.force_ns[:done]),
        "whole_tick_us": _percentiles(loop.step_ns[:done]),
        "force_written_in_bone_us": _percentiles(loop.force_ns[in_bone]),
        "whole_tick_in_bone_us": _percentiles(loop.step_ns[in_bone]),
        "recorded_inputs_replay_same_state": state_hash(replayed) == state_hash(state),
        "load_avg_1min_after": os.getloadavg()[0],
    }


def _child(tree: Path, case: Path | None) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    args = [sys.executable, __file__, "--measure"]
    if case is not None:
        args += ["--case", str(case)]
    out = subprocess.run(args, env=env, cwd=tree, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE_REF, help="git revision of the older engine")
    parser.add_argument("--case", type=Path, default=None, help="lumbar case bundle")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.case)))
        return
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="osteon-engine-before-") as tmp:
        archive = subprocess.run(
            ["git", "archive", args.before, "sim_core", "haptics", "osteon", "assets"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        before = _child(Path(tmp), args.case)
    after = _child(ROOT, args.case)
    result = {
        "date_utc": datetime.now(UTC).isoformat(),
        "machine": {
            "arch": platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
            "load_avg_1min_at_start": load_at_start,
            "load_avg_1min_at_end": os.getloadavg()[0],
        },
        "scenario": "pedicle_pilot_hole on the lumbar phantom (seed 1, 80 slices, 128²): drill "
        "3.2 mm along the plan at 4 mm/s, power on, then ±15° about the tip",
        "before": {"revision": args.before, **before},
        "after": {"revision": "working tree", **after},
        "note": "times are from waking to the force written and to the whole tick done, inside "
        "the compiled loop; *_in_bone from half way down the pedicle to the end (pivot "
        "included). The machine's CPUs may be shared: see the load averages.",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"physics-loop-{datetime.now(UTC):%Y-%m-%d}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, sort_keys=True))
    print(path)


if __name__ == "__main__":
    main()
