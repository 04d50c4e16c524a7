"""`osteon phantom ...`: CT phantoms with known ground truth."""

from pathlib import Path
from typing import Annotated

import typer

from osteon.console import CommandError, emit, step_progress

app = typer.Typer(no_args_is_help=True)

REGION_HELP = "lumbar (L3-L5), hip (femur + acetabulum) or knee (distal femur + proximal tibia)"


@app.command("ct")
def ct(
    out_dir: Annotated[Path, typer.Argument(help="New directory for the DICOM series")],
    region: Annotated[str, typer.Option(help=REGION_HELP)] = "lumbar",
    seed: Annotated[int, typer.Option(help="Noise and name seed; same seed, same files")] = 0,
    slices: Annotated[int, typer.Option(min=2, max=2000, help="Number of slices")] = 200,
    matrix: Annotated[int, typer.Option(min=16, max=1024, help="Rows = columns")] = 512,
    osteoporotic: Annotated[bool, typer.Option(help="Cancellous bone at about 90 HU")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Write a CT phantom series (real DICOM) and its ground-truth sidecar. / 生成体模 CT 序列"""
    from sim_core.ct.anatomy import REGIONS
    from sim_core.ct.phantom import TRUTH_JSON, make_phantom, write_phantom

    if region not in REGIONS:
        raise CommandError(f"未知部位 / unknown region {region!r}: choose {', '.join(REGIONS)}")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise CommandError(f"{out_dir}: 已存在且非空 / exists and is not empty")
    with step_progress(enabled=not as_json) as progress:
        phantom = make_phantom(
            region,
            seed=seed,
            slices=slices,
            matrix=matrix,
            osteoporotic=osteoporotic,
            progress=progress,
        )
        files = write_phantom(phantom, out_dir, progress=progress)
    result = {
        "series_dir": str(out_dir),
        "files": len(files),
        "shape": phantom.truth["shape"],
        "spacing_mm": [round(s, 4) for s in phantom.volume.spacing_mm],
        "region": region,
        "truth": str(out_dir / TRUTH_JSON),
        "bone_volume_mm3": phantom.truth["bone_volume_mm3"],
    }
    emit(result, as_json=as_json, human=f"已写入 / wrote {len(files)} slices to {out_dir}")
