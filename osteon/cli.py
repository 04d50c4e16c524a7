"""Root of the `osteon` command. Each package owns its subcommands; this only mounts them."""

import importlib
import sys
from typing import Annotated

import typer

from osteon.console import CommandError, print_error

# (name, module holding `app`, help): imported lazily so `osteon --help` stays fast
# and a package's heavy imports (panda3d, django) load only when its command runs.
SUBCOMMANDS: list[tuple[str, str, str]] = [
    ("phantom", "osteon.phantom_cli", "Generate CT phantoms with known ground truth / 生成体模 CT"),
    ("case", "osteon.case_cli", "Build and view simulation cases from CT / 病例构建与查看"),
    ("shell", "clinical_shell.cli", "Clinical web shell / 临床平台 (Django)"),
    ("sim", "osteon.sim_cli", "Simulation engine: run, replay, bench / 模拟引擎"),
    ("devices", "haptics.cli", "Haptic and input devices: what is available / 力反馈与输入设备"),
    ("station", "bridge.station_cli", "Simulator station: enrol, sign in, run / 模拟工作站"),
    ("bridge", "bridge.cli", "Station bridge endpoint and its bench / 工作站桥接"),
]


def _demo(
    scenario: Annotated[
        str,
        typer.Option(
            help="pedicle_pilot_hole, burr_lesion (lumbar case), femoral_neck_guide_wire (hip), "
            "knee_lesion_burr (knee) / 场景"
        ),
    ] = "pedicle_pilot_hole",
) -> None:
    """Open a scenario on its demo case: a window where there is a display, else headless."""
    from osteon.demo import run_demo

    run_demo(scenario=scenario)


def build_app(wanted: str | None) -> typer.Typer:
    """The root command with the subcommand ``wanted`` loaded (all of them for help)."""
    app = typer.Typer(
        name="osteon",
        help="Osteon: patient-specific orthopedic surgery simulator / 骨科手术模拟",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    for name, module, help_text in SUBCOMMANDS:
        if wanted in (None, "--help", "-h") or wanted == name:
            sub = importlib.import_module(module).app
        else:
            sub = typer.Typer()
        app.add_typer(sub, name=name, help=help_text)
    app.command("demo", help="打开演示病例 / open the demo case (window, or offscreen screenshot)")(
        _demo
    )
    return app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    app = build_app(args[0] if args else None)
    try:
        app(args=args, prog_name="osteon")
    except CommandError as exc:
        print_error(exc)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
