"""``osteon sim fluoro``: a C-arm shot (PNG) of a case, intact or as a recorded session left it."""

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from osteon.console import CommandError, emit


def _session_state(recording: Path, case: Path | None, tick: int | None) -> tuple[Any, Any, Path]:
    # the recorded session re-run up to `tick` (default: its end): model, state, case
    from sim_core.replay import RecordingError, model_for_recording, read_recording
    from sim_core.state import make_state
    from sim_core.step import run

    try:
        rec = read_recording(recording)
        model = model_for_recording(rec, case_path=case)
    except RecordingError as exc:
        raise CommandError(str(exc)) from exc
    ticks = len(rec.inputs) if tick is None else tick
    if not 0 <= ticks <= len(rec.inputs):
        raise CommandError(
            f"记录只有 {len(rec.inputs)} 个节拍 / the recording has {len(rec.inputs)} ticks, "
            f"not {ticks}"
        )
    state = make_state(model)
    run(model, state, rec.inputs[:ticks])
    return model, state, Path(case or rec.meta["case"]["path"])


def fluoro_command(
    case: Annotated[
        Path | None, typer.Argument(help="Case bundle directory (optional with --recording)")
    ] = None,
    scenario: Annotated[
        str | None, typer.Option(help="Scenario: its plan centres the C-arm, its instrument shows")
    ] = None,
    view: Annotated[
        str, typer.Option(help="ap, lateral, oblique, inlet, outlet (oblique:-30 sets the angle)")
    ] = "ap",
    angle: Annotated[
        float | None, typer.Option(help="Oblique / inlet / outlet angle in degrees")
    ] = None,
    out: Annotated[Path, typer.Option(help="PNG to write / 输出图像")] = Path("fluoro.png"),
    recording: Annotated[
        Path | None, typer.Option(help="A session recording: shoot its state at --tick")
    ] = None,
    tick: Annotated[
        int | None,
        typer.Option(min=0, help="With --recording: after this many ticks (default: end)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Take a fluoroscopy shot: a radiograph cast through the case's current bone with the
    instrument in place (512² PNG). Without --recording the bone is intact and the
    instrument waits at its start, 40 mm before the planned entry."""
    import time

    from sim_core import fluoro
    from sim_core.case.bundle import BundleError, load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.scenarios import ScenarioError
    from sim_core.state import make_state

    try:
        shot_view = fluoro.View.parse(view, angle)
    except fluoro.FluoroError as exc:
        raise CommandError(str(exc)) from exc
    if recording is not None:
        model, state, case = _session_state(recording, case, tick)
    else:
        if case is None or scenario is None:
            raise CommandError(
                "需要病例和场景，或一个记录 / give a case and --scenario, or --recording"
            )
        try:
            model = model_from_bundle(load_bundle(case), scenario)
        except (BundleError, ScenarioError) as exc:
            raise CommandError(str(exc)) from exc
        state = make_state(model)
    try:
        bundle = load_bundle(case)
    except BundleError as exc:
        raise CommandError(str(exc)) from exc
    scope = fluoro.Fluoroscope.for_case(bundle, model.plan, model.instrument)
    start = time.perf_counter()
    shot = scope.shot(state.density, state.st, shot_view)
    ms = (time.perf_counter() - start) * 1e3
    fluoro.write_png(out, shot.image(), f"Osteon fluoro {shot_view.label} tick {state.tick}")
    result = {
        "png": str(out),
        "view": shot_view.label,
        "tick": state.tick,
        "scenario": model.scenario.name,
        "instrument": model.instrument.name,
        "pixels": int(shot.line_integral.shape[0]),
        "max_line_integral": float(np.max(shot.line_integral)),
        "ms": round(ms, 1),
    }
    emit(
        result,
        as_json=as_json,
        human=f"透视 / fluoro {shot_view.label} (tick {state.tick}) → {out}  ({ms:.0f} ms)",
    )
