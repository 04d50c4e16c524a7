"""`osteon station ...`: enrol a simulator station, sign a person in, run it."""

import logging
from pathlib import Path
from typing import Annotated

import typer

from bridge.keys import REPO_ROOT
from osteon.console import CommandError, emit

app = typer.Typer(
    help="Simulator station / 模拟工作站: enrol, sign in, run",
    no_args_is_help=True,
)

DEFAULT_DIR = REPO_ROOT / "var" / "station"
DirOption = Annotated[Path, typer.Option("--dir", help="Station directory / 工作站目录")]
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output / JSON 输出")]


@app.command("enroll")
def enroll_command(
    shell: Annotated[str, typer.Option(help="tcp://HOST:PORT of the shell's bridge / 平台地址")],
    code: Annotated[str, typer.Option(help="One-time enrolment code / 一次性注册码")],
    shell_key: Annotated[
        str, typer.Option(help="The shell's CURVE public key (Z85), shown with the code")
    ],
    room: Annotated[str, typer.Option(help="Room, when the code names none / 房间")] = "",
    station_dir: DirOption = DEFAULT_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Present a one-time enrolment code once; keep the station's new keys (0600)."""
    from bridge.station import StationError, enroll

    try:
        cfg = enroll(station_dir, shell_url=shell, code=code, shell_key=shell_key, room=room)
    except StationError as exc:
        raise CommandError(str(exc)) from None
    emit(
        {
            "station_id": cfg.station_id,
            "name": cfg.name,
            "institution": cfg.institution,
            "room": cfg.room,
            "dir": str(station_dir),
        },
        as_json=as_json,
        human=f"已注册 / enrolled as {cfg.station_id} ({cfg.institution} {cfg.room})",
    )


@app.command("sign-in")
def sign_in_command(
    username: Annotated[str, typer.Option(help="Shell account / 平台账号")],
    password: Annotated[str | None, typer.Option(help="Password / 密码")] = None,
    code: Annotated[str | None, typer.Option(help="One-time code from the shell page")] = None,
    station_dir: DirOption = DEFAULT_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Sign a person in at this station with their shell account."""
    from bridge.station import StationError, load_identity, sign_in_once

    if (password is None) == (code is None):
        raise CommandError("请给出 --password 或 --code 之一 / give --password or --code")
    method = "password" if password is not None else "one_time_code"
    try:
        ok = sign_in_once(
            load_identity(station_dir),
            username=username,
            secret=password or code or "",
            method=method,
        )
    except StationError as exc:
        raise CommandError(str(exc)) from None
    emit(
        {"username": ok.username, "display_name": ok.display_name, "sign_in_id": ok.sign_in_id},
        as_json=as_json,
        human=f"已登录 / signed in: {ok.display_name} ({ok.username})",
    )


@app.command("run")
def run_command(
    station_dir: DirOption = DEFAULT_DIR,
    realtime: Annotated[
        bool,
        typer.Option(help="Pace scripted sessions to the wall clock (off: as fast as it goes)"),
    ] = True,
    username: Annotated[str | None, typer.Option(help="Sign this person in at start")] = None,
    password: Annotated[str | None, typer.Option(help="Their password")] = None,
    code: Annotated[str | None, typer.Option(help="Or their one-time code")] = None,
    max_sessions: Annotated[
        int | None, typer.Option(help="Stop after this many sessions, once all are acked")
    ] = None,
    view_case: Annotated[
        Path | None,
        typer.Option(help="The case a streamed view shows before this station ran any session"),
    ] = None,
) -> None:
    """Run the station: connect, heartbeat, take sessions from the shell, queue results."""
    from bridge.station import StationError, StationRunner

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    sign_in = None
    if username is not None:
        if (password is None) == (code is None):
            raise CommandError("请给出 --password 或 --code 之一 / give --password or --code")
        method = "password" if password is not None else "one_time_code"
        sign_in = (username, password or code or "", method)
    try:
        runner = StationRunner(
            station_dir,
            realtime=realtime,
            echo=lambda s: typer.echo(s, err=True),
            view_case=view_case,
        )
    except StationError as exc:
        raise CommandError(str(exc)) from None
    import signal

    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    try:
        code_out = runner.run(max_sessions=max_sessions, sign_in=sign_in)
    except KeyboardInterrupt:
        code_out = 0
    if code_out:
        raise CommandError("工作站已被吊销 / the shell revoked this station", exit_code=code_out)


@app.command("status")
def status_command(station_dir: DirOption = DEFAULT_DIR, as_json: JsonFlag = False) -> None:
    """This station's identity and its outbox."""
    from bridge.outbox import Outbox
    from bridge.station import StationError, load_identity

    try:
        cfg = load_identity(station_dir).config
    except StationError as exc:
        raise CommandError(str(exc)) from None
    outbox = Outbox(station_dir / "outbox.sqlite3")
    counts = outbox.counts()
    outbox.close()
    emit(
        {
            "station_id": cfg.station_id,
            "shell": f"{cfg.shell_host}:{cfg.router_port}",
            "outbox": counts,
        },
        as_json=as_json,
        human=f"{cfg.station_id}: outbox pending {counts['pending']}, acked {counts['acked']}, "
        f"refused {counts['refused']}",
    )
