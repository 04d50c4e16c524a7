"""``osteon devices``: every device kind, whether it can be used here, and why not."""

from typing import Annotated

import typer

from osteon.console import emit

app = typer.Typer(
    help="Haptic and input devices / 力反馈与输入设备",
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _human(statuses: list[dict[str, object]]) -> str:
    lines = []
    for s in statuses:
        mark = "✓" if s["available"] else "✗"
        lines.append(f"{mark} {s['usage']:<20} {s['summary']}")
        lines.append(f"    {s['reason']}")
    return "\n".join(lines)


@app.callback(invoke_without_command=True)
def list_devices(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """List every device kind, whether it is available here, and why not."""
    if ctx.invoked_subcommand is not None:
        return
    from haptics.registry import device_statuses

    statuses = [s.as_dict() for s in device_statuses()]
    emit({"devices": statuses}, as_json=as_json, human=_human(statuses))
