"""`osteon bridge ...`: the shell's bridge endpoint, and its benchmark."""

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from bridge.keys import bridge_port, load_or_create_shell_keys
from osteon.console import CommandError, emit

app = typer.Typer(
    help="Station bridge / 工作站桥接: serve the endpoint, benchmark it",
    no_args_is_help=True,
)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on / 监听地址")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(help="Enrolment port; requests +1, telemetry +2 (OSTEON_BRIDGE_PORT)"),
    ] = None,
    local: Annotated[
        Path | None,
        typer.Option(help="Serve a SQLite LocalShellSide instead of the shell (tests, bench)"),
    ] = None,
    case_store: Annotated[
        Path | None, typer.Option(help="Case archives for --local (named <sha256>.tar)")
    ] = None,
    key_dir: Annotated[
        Path | None,
        typer.Option(help="Where the shell's CURVE keypair lives (OSTEON_BRIDGE_KEY_DIR)"),
    ] = None,
) -> None:
    """Run the bridge endpoint until Ctrl-C or SIGTERM."""
    from bridge.endpoint import serve
    from bridge.shell_side import ShellSide

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    keys = load_or_create_shell_keys(key_dir)
    shell: ShellSide
    if local is not None:
        from bridge.local_side import LocalShellSide

        shell = LocalShellSide(local, case_store=case_store)
    else:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")
        import django

        django.setup()
        try:
            from clinical_shell.stations.bridge_side import DjangoShellSide  # type: ignore[import-not-found,unused-ignore]
        except ImportError as exc:
            raise CommandError(
                f"临床平台桥接未就绪 / the shell's bridge side is missing: {exc}"
            ) from None
        shell = DjangoShellSide()
    serve(shell, keys, host=host, port=port or bridge_port())


@app.command("bench")
def bench_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="machine-readable output / JSON 输出")
    ] = False,
    chaos_results: Annotated[int, typer.Option(help="Results in the chaos run")] = 200,
    out: Annotated[
        Path | None, typer.Option(help="Result file (default benchmarks/results/)")
    ] = None,
    save: Annotated[bool, typer.Option(help="Write the result file")] = True,
) -> None:
    """Round trip, telemetry rate, case transfer, servo loop with and without telemetry, chaos."""
    from bridge.bench import bench, write_result

    result = bench(chaos_results=chaos_results)
    if save:
        result["file"] = str(write_result(result, out))
    emit(result, as_json=as_json, human=json.dumps(result, indent=2, ensure_ascii=False))
