"""`osteon case ...`: build a simulation case from CT, and look at it."""

from pathlib import Path
from typing import Annotated

import typer

from osteon.console import CommandError, emit, step_progress

app = typer.Typer(no_args_is_help=True)


def _threshold(value: str) -> float | str:
    if value == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise CommandError(
            f"--threshold 应为数字或 auto / must be a number of HU or 'auto': {value!r}"
        ) from None


@app.command("build")
def build(
    series_dir: Annotated[Path, typer.Argument(help="Directory holding the CT DICOM series")],
    out: Annotated[Path, typer.Argument(help="Case bundle directory to create")],
    series: Annotated[str | None, typer.Option("--series", help="Series Instance UID")] = None,
    threshold: Annotated[
        str, typer.Option(help="Bone threshold in HU (130-400) or auto (Otsu)")
    ] = "200",
    spacing: Annotated[float, typer.Option(help="Isotropic voxel size in mm")] = 0.5,
    zones: Annotated[Path | None, typer.Option(help=".npz label map with a 'zones' array")] = None,
    memory_budget: Annotated[float, typer.Option(help="Refuse builds above this many GiB")] = 3.0,
    force: Annotated[bool, typer.Option(help="Replace an existing case at OUT")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Build a voxel bone case from a CT series. / 由 CT 序列构建模拟病例"""
    from sim_core.case.build import CaseBuildError, build_case
    from sim_core.ct.errors import SeriesError

    level = _threshold(threshold)
    try:
        with step_progress(enabled=not as_json) as progress:
            result = build_case(
                series_dir,
                out,
                series_uid=series,
                threshold_hu=level,  # type: ignore[arg-type]
                spacing_mm=spacing,
                zones_path=zones,
                memory_budget_bytes=int(memory_budget * 2**30),
                overwrite=force,
                progress=progress,
            )
    except (SeriesError, CaseBuildError) as exc:
        raise CommandError(str(exc)) from None
    bones = ", ".join(f"{b['name']} {b['volume_mm3'] / 1000:.1f} cm³" for b in result["bones"])
    emit(result, as_json=as_json, human=f"病例已生成 / case built at {out}: {bones}")


@app.command("view")
def view(
    case: Annotated[Path, typer.Argument(help="Case bundle directory")],
    screenshot: Annotated[Path | None, typer.Option(help="Render offscreen to this PNG")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Show the case in a Panda3D window, or render it offscreen to a PNG. / 查看病例"""
    from sim_core.case.bundle import BundleError, load_bundle
    from sim_core.view.case_viewer import view_case

    try:
        load_bundle(case)
    except BundleError as exc:
        raise CommandError(str(exc)) from None
    png = view_case(case, screenshot=screenshot)
    result = {"case": str(case), "screenshot": str(png) if png else None}
    human = f"截图已保存 / screenshot written to {png}" if png else "窗口已关闭 / window closed"
    emit(result, as_json=as_json, human=human)
