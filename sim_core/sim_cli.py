"""``osteon sim``: run a scenario headless, replay a recording, benchmark the engine."""

import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from osteon.console import CommandError, emit

app = typer.Typer(
    help="Simulation engine: run, replay, benchmark / 模拟引擎：运行、重放、基准测试",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

BENCH_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
BUILT_IN_SCRIPTS = ("expert", "novice")


def _device_rows(model: Any, device: str) -> Any:
    # scripted:FILE reads a trajectory file; scripted:expert|novice builds the scenario's script
    from sim_core.trajectories import read_trajectory, scripted_rows

    kind, _, arg = device.partition(":")
    if kind != "scripted" or not arg:
        raise CommandError(
            f"设备 {device!r} 不能无头运行 / device {device!r} cannot run headless here: "
            "use scripted:FILE or scripted:expert|novice (live devices run in the station)"
        )
    if arg in BUILT_IN_SCRIPTS:
        return scripted_rows(model, arg)
    try:
        return read_trajectory(Path(arg))
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from exc


def _load_model(case: Path, scenario: str, instrument: str | None) -> Any:
    from sim_core.case.bundle import BundleError, load_bundle
    from sim_core.instruments import InstrumentError
    from sim_core.model import model_from_bundle
    from sim_core.scenarios import ScenarioError

    try:
        bundle = load_bundle(case)
        return model_from_bundle(bundle, scenario, instrument=instrument)
    except (BundleError, ScenarioError, InstrumentError) as exc:
        raise CommandError(str(exc)) from exc


def _human(result: dict[str, Any]) -> str:
    verdict = "通过 / passed" if result["passed"] else "未通过 / failed"
    lines = [f"{result['scenario']}: {verdict}, score {result['score']:.0f}/100"]
    for name, m in result["metrics"].items():
        mark = {True: "✓", False: "✗", None: " "}[m["passed"]]
        bound = f" ({m['bound']} {m['threshold']:g})" if m["bound"] else ""
        lines.append(f"  {mark} {name} = {m['value']:.3f}{bound}")
    return "\n".join(lines)


@app.command("run")
def run_command(
    case: Annotated[Path, typer.Argument(help="Case bundle directory / 病例目录")],
    scenario: Annotated[str, typer.Option(help="Scenario name or .json file / 场景")],
    device: Annotated[
        str, typer.Option(help="scripted:FILE or scripted:expert|novice / 设备")
    ] = "scripted:expert",
    instrument: Annotated[
        str | None, typer.Option(help="Instrument instead of the scenario's / 器械")
    ] = None,
    record: Annotated[Path | None, typer.Option(help="Write the session recording here")] = None,
    offscreen: Annotated[bool, typer.Option(help="Headless (always, for scripted devices)")] = True,
    screenshot: Annotated[
        Path | None, typer.Option(help="PNG of the final scene (offscreen render)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Run a scenario on a case with a scripted device, headless and as fast as it goes."""
    from sim_core.replay import play, write_recording

    del offscreen  # scripted sessions never open a window
    model = _load_model(case, scenario, instrument)
    rows = _device_rows(model, device)
    state, result = play(model, rows)
    out = {**result.as_dict(), "wall_s": result.wall_s, "speedup": result.speedup}
    if record is not None:
        write_recording(
            record, model=model, rows=rows, result=result, case_path=case, device_name=device
        )
        out["recording"] = str(record)
    if screenshot is not None:
        out["screenshot"] = str(_screenshot(case, model, state, result.sheet, screenshot))
    emit(out, as_json=as_json, human=_human(out))
    if not as_json:
        typer.echo(json.dumps({"state_hash": result.state_hash}), err=True)


def _screenshot(case: Path, model: Any, state: Any, sheet: Any, png: Path) -> Path:
    from sim_core.slots import DT_S, S_DIR, S_FORCE, S_TICK, S_TOOL
    from sim_core.view.session_screenshot import render_scene_png
    from sim_core.view.snapshot import ViewSnapshot

    st = state.st
    chunks = tuple(tuple(int(c) for c in idx) for idx in np.argwhere(state.dirty > 0))
    snap = ViewSnapshot(
        tick=int(st[S_TICK]),
        tool_tip_mm=(float(st[S_TOOL]), float(st[S_TOOL + 1]), float(st[S_TOOL + 2])),
        tool_axis=(float(st[S_DIR]), float(st[S_DIR + 1]), float(st[S_DIR + 2])),
        tool_radius_mm=max(model.instrument.radius_mm, 0.1),
        tool_kind=model.instrument.kind,
        force_n=(float(st[S_FORCE]), float(st[S_FORCE + 1]), float(st[S_FORCE + 2])),
        force_limit_n=model.scenario.force_limit_n,
        elapsed_s=float(st[S_TICK]) * DT_S,
        metrics={m.name: m.value for m in sheet.graded},
        removed_chunks=chunks,  # type: ignore[arg-type]
    )
    try:
        return render_scene_png(
            case,
            [snap],
            (model.plan.entry_mm, model.plan.target_mm),
            png,
            density_override=state.density,
        )
    except Exception as exc:  # the renderer's errors are the user's to read, not a traceback
        raise CommandError(f"{png}: 截图失败 / screenshot failed ({exc})") from exc


@app.command("replay")
def replay_command(
    recording: Annotated[Path, typer.Argument(help="Session recording (.npz) / 记录文件")],
    case: Annotated[
        Path | None, typer.Option(help="The recorded case, if it has moved / 病例目录")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Re-run a recording headless; exit 1 unless metrics and state hash match bit for bit."""
    from sim_core.replay import RecordingError, replay_recording

    try:
        out = replay_recording(recording, case_path=case)
    except RecordingError as exc:
        raise CommandError(str(exc)) from exc
    verdict = "逐位重现 / reproduced bit for bit" if out["reproduced"] else "不一致 / MISMATCH"
    emit(
        out,
        as_json=as_json,
        human=f"{recording}: {verdict}; {out['ticks']} ticks, {out['speedup']:.1f}× real time",
    )
    if not out["reproduced"]:
        raise typer.Exit(1)


def _percentiles_us(samples_s: list[float]) -> dict[str, float]:
    a = np.asarray(samples_s) * 1e6
    return {
        "p50_us": float(np.percentile(a, 50)),
        "p99_us": float(np.percentile(a, 99)),
        "max_us": float(a.max()),
    }


def _force_steps(ticks: int) -> dict[str, Any]:
    # per tool on the synthetic block: the engine step and the bare contact force, from Python
    from sim_core.bench_cases import bench_model, contact_rows
    from sim_core.instruments import list_instruments
    from sim_core.kernels import contact_force
    from sim_core.slots import N_POSE, S_POSE
    from sim_core.state import make_state
    from sim_core.step import step

    tools: dict[str, Any] = {}
    for name in list_instruments():
        model = bench_model(name)
        rows = contact_rows(model, ticks)
        state = make_state(model)
        step_s: list[float] = []
        force_s: list[float] = []
        pose = np.zeros(N_POSE)
        for row in rows:
            t0 = time.perf_counter()
            step(model, state, row)
            t1 = time.perf_counter()
            pose[:] = state.st[S_POSE : S_POSE + N_POSE]
            t2 = time.perf_counter()
            contact_force(state.density, model.spacing_mm, model.tool, pose, model.params)
            t3 = time.perf_counter()
            step_s.append(t1 - t0)
            force_s.append(t3 - t2)
        tools[name] = {
            "step": _percentiles_us(step_s[100:]),
            "contact_force": _percentiles_us(force_s[100:]),
        }
    return tools


def _bench_case(case: Path | None, workdir: Path) -> Path:
    # a small lumbar phantom through the real CT → case path, unless a case is given
    if case is not None:
        return case
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    write_phantom(make_phantom("lumbar", seed=1, slices=80, matrix=128), workdir / "ct")
    build_case(workdir / "ct", workdir / "case")
    return workdir / "case"


def _servo_under_load(case: Path, seconds: float) -> dict[str, Any]:
    # the burr scenario's expert script driving the engine in the compiled 1 kHz loop, while
    # this thread remeshes the chunks it cuts and a second thread renders offscreen frames
    import threading

    from haptics.scripted import ScriptedDevice
    from haptics.servo import EngineServoLoop
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.state import make_state, state_hash
    from sim_core.step import run
    from sim_core.trajectories import scripted_rows
    from sim_core.view.chunk_mesher import remesh_chunks
    from sim_core.view.session_screenshot import render_scene_png

    model = model_from_bundle(load_bundle(case), "burr_lesion")
    rows = scripted_rows(model, "expert")[: int(seconds * 1000)]
    state = make_state(model)
    device = ScriptedDevice(rows, max_force_n=model.device.max_force_n)
    device.open()
    loop = EngineServoLoop(device, model, state, capacity_ticks=len(rows) + 10)
    frames: list[float] = []
    stop = threading.Event()

    def render() -> None:
        png = Path(tempfile.mkdtemp(prefix="osteon-bench-")) / "frame.png"
        while not stop.is_set():
            t0 = time.perf_counter()
            render_scene_png(case, [], None, png, density_override=state.density.copy())
            frames.append(time.perf_counter() - t0)

    renderer = threading.Thread(target=render, name="bench-render", daemon=True)
    loop.start()
    renderer.start()
    remesh_s: list[float] = []
    chunks_per_batch: list[int] = []
    while loop.running:
        time.sleep(0.05)
        # clear the flags first: a cut made while meshing flags its chunk again
        flagged = [tuple(int(c) for c in idx) for idx in np.argwhere(state.dirty > 0)]
        for idx in flagged:
            state.dirty[idx] = 0
        if flagged:
            t0 = time.perf_counter()
            remesh_chunks(state.density, flagged)  # type: ignore[arg-type]
            remesh_s.append(time.perf_counter() - t0)
            chunks_per_batch.append(len(flagged))
    stats = loop.stop()
    stop.set()
    renderer.join(timeout=120)
    done = loop.ticks_done
    step_ns = loop.step_ns[:done]
    replayed = make_state(model)
    run(model, replayed, loop.recorded_inputs())
    remesh_ms = np.asarray(remesh_s) * 1e3
    return {
        "case": str(case),
        "scenario": "burr_lesion",
        "instrument": model.instrument.name,
        "loop": stats.as_dict(),
        "engine_step_in_loop_us": {
            "p50_us": float(np.percentile(step_ns, 50) / 1e3),
            "p99_us": float(np.percentile(step_ns, 99) / 1e3),
            "max_us": float(step_ns.max() / 1e3),
        },
        "remesh_batch_every_50ms": {
            "batches": len(remesh_ms),
            "chunks_p50": float(np.percentile(chunks_per_batch, 50)) if chunks_per_batch else 0.0,
            "p50_ms": float(np.percentile(remesh_ms, 50)) if len(remesh_ms) else 0.0,
            "p95_ms": float(np.percentile(remesh_ms, 95)) if len(remesh_ms) else 0.0,
            "max_ms": float(remesh_ms.max()) if len(remesh_ms) else 0.0,
        },
        "offscreen_frames": {
            "count": len(frames),
            "mean_s": float(np.mean(frames)) if frames else 0.0,
            "note": "each frame renders in a fresh Panda3D offscreen process",
        },
        "recorded_inputs_replay_same_state": state_hash(replayed) == state_hash(state),
    }


def bench(*, ticks: int = 3000, servo_s: float = 12.0, case: Path | None = None) -> dict[str, Any]:
    """Force step per tool, the 1 kHz engine loop under remeshing and rendering load, replay."""
    from sim_core.bench_cases import bench_model, contact_rows
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.replay import play
    from sim_core.trajectories import scripted_rows

    tools = _force_steps(ticks)
    with tempfile.TemporaryDirectory(prefix="osteon-bench-") as workdir:
        case_dir = _bench_case(case, Path(workdir))
        servo = _servo_under_load(case_dir, servo_s)
        replays = {}
        for scenario in ("burr_lesion", "pedicle_pilot_hole"):
            model = model_from_bundle(load_bundle(case_dir), scenario)
            _, result = play(model, scripted_rows(model, "expert"))
            replays[scenario] = {
                "ticks": result.ticks,
                "wall_s": result.wall_s,
                "speedup": result.speedup,
            }
    block = bench_model("burr_sphere_4mm")
    _, block_result = play(block, contact_rows(block, 20000))
    replays["synthetic_block_burr_contact"] = {
        "ticks": block_result.ticks,
        "wall_s": block_result.wall_s,
        "speedup": block_result.speedup,
    }
    worst_p99 = max(t["step"]["p99_us"] for t in tools.values())
    loop = servo["loop"]
    return {
        "date_utc": datetime.now(UTC).isoformat(),
        "machine": {
            "arch": platform.machine(),
            "cpu_count": os.cpu_count(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": __import__("numba").__version__,
            "load_avg_1min": os.getloadavg()[0],
        },
        "ticks_per_tool": ticks,
        "tools": tools,
        "force_step_p99_us_worst": worst_p99,
        "servo_under_load": servo,
        "replay": replays,
        "goals": {
            "force_step_p99_le_100us_all_tools": worst_p99 <= 100.0,
            "force_step_p99_le_100us_in_loop_burr": servo["engine_step_in_loop_us"]["p99_us"]
            <= 100.0,
            "rate_ge_995hz": loop["rate_hz"] >= 995.0,
            "period_p99_le_1_5ms": loop["period_p99_ms"] <= 1.5,
            "period_max_le_3ms": loop["period_max_ms"] <= 3.0,
            "remesh_p95_le_16ms": servo["remesh_batch_every_50ms"]["p95_ms"] <= 16.0,
            "replay_ge_10x_all": all(r["speedup"] >= 10.0 for r in replays.values()),
        },
    }


@app.command("bench")
def bench_command(
    ticks: Annotated[int, typer.Option(min=200, help="Ticks timed per tool")] = 3000,
    servo_s: Annotated[
        float, typer.Option(min=10.0, help="Seconds of 1 kHz loop under load")
    ] = 12.0,
    case: Annotated[
        Path | None, typer.Option(help="Case bundle (default: build a lumbar phantom)")
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="Where the results file goes")] = BENCH_RESULTS,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Force step per tool, the 1 kHz loop under remeshing + rendering load, replay speed-up."""
    result = bench(ticks=ticks, servo_s=servo_s, case=case)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"sim-bench-{datetime.now(UTC):%Y-%m-%d}.json"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=out_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    result["results_file"] = str(path)
    loop = result["servo_under_load"]["loop"]
    lines = [
        f"{n}: step p50 {t['step']['p50_us']:.0f} µs, p99 {t['step']['p99_us']:.0f} µs"
        for n, t in result["tools"].items()
    ]
    lines.append(
        f"loop {loop['rate_hz']:.1f} Hz, period p99 {loop['period_p99_ms']:.2f} ms, "
        f"max {loop['period_max_ms']:.2f} ms"
    )
    lines.append(f"goals: {result['goals']} → {path}")
    emit(result, as_json=as_json, human="\n".join(lines))
