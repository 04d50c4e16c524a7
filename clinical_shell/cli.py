"""`osteon shell ...`: run and look after the clinical web shell."""

import os
from typing import Annotated

import typer

from osteon.console import CommandError, emit

app = typer.Typer(
    help="Clinical web shell / 临床平台: migrate, demo data, serve, verify the audit chain",
    no_args_is_help=True,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output / JSON 输出")]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")
    import django

    from clinical_shell.env import SettingsError

    try:
        django.setup()
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


@app.command()
def migrate(as_json: JsonFlag = False) -> None:
    """Create or update the database tables / 创建或升级数据库表."""
    _setup_django()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0 if as_json else 1)
    emit(
        {"migrated": True, "database": str(connection.settings_dict["NAME"])},
        as_json=as_json,
        human=f"数据库已就绪 / database ready: {connection.settings_dict['NAME']}",
    )


@app.command()
def demo(
    patients: Annotated[int, typer.Option(help="number of demo patients / 演示患者数")] = 5000,
    seed: Annotated[int, typer.Option(help="random seed / 随机种子")] = 20260,
    ct_cases: Annotated[
        int, typer.Option(help="patients given a CT phantom and a built case / CT 病例数")
    ] = 3,
    as_json: JsonFlag = False,
) -> None:
    """Load the Chuxiong demo region (idempotent) and print the demo sign-ins / 载入演示数据."""
    _setup_django()
    from django.core.management import call_command

    from clinical_shell.demo import DemoRefusedError, load_demo

    call_command("migrate", interactive=False, verbosity=0)
    try:
        result = load_demo(patients=patients, seed=seed, ct_cases=ct_cases)
    except DemoRefusedError as exc:
        raise CommandError(str(exc)) from None
    lines = [result.summary]
    lines.append("演示账号 / demo sign-ins (user / password / institution):")
    lines += [f"  {s.username} / {s.password} / {s.where}" for s in result.sign_ins]
    emit(result.as_dict(), as_json=as_json, human="\n".join(lines))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on / 监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port / 端口")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="web server processes (more than 1 needs Redis) / 进程数")
    ] = 1,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="also run the task worker / 任务进程")
    ] = True,
    bridge: Annotated[
        bool, typer.Option("--bridge/--no-bridge", help="also run the bridge endpoint / 桥接")
    ] = True,
    collectstatic: Annotated[
        bool,
        typer.Option(
            "--collectstatic/--no-collectstatic",
            help="collect static files first (skip when a deploy step did) / 收集静态文件",
        ),
    ] = True,
    as_json: JsonFlag = False,
) -> None:
    """Serve the shell (uvicorn), its task worker and bridge / 启动临床平台 (Ctrl-C 停止)."""
    _setup_django()
    from clinical_shell.env import SettingsError
    from clinical_shell.keyfiles import require_configured_secrets
    from clinical_shell.serving import serve as run_serving

    try:
        require_configured_secrets()
    except SettingsError as exc:
        raise CommandError(str(exc)) from None

    code = run_serving(
        host=host,
        port=port,
        workers=workers,
        with_worker=worker,
        with_bridge=bridge,
        with_collectstatic=collectstatic,
        as_json=as_json,
    )
    if code:
        raise typer.Exit(code)


@app.command()
def keys(as_json: JsonFlag = False) -> None:
    """Create the missing per-install key files (mode 600) / 生成本机密钥文件."""
    _setup_django()
    from pathlib import Path

    from django.conf import settings

    from clinical_shell.keyfiles import ensure_key_files
    from clinical_shell.live.relay import relay_secret, relay_secret_path

    key_dir = Path(settings.OSTEON_KEY_DIR)
    created = ensure_key_files(key_dir)
    # the live relay's secret, shared with `python -m streaming.relay` (osteon demo starts one)
    relay_file = relay_secret_path()
    if settings.OSTEON_STREAM_RELAY_SECRET is None and not relay_file.exists():
        relay_secret()
        created.append(relay_file)
    names = ", ".join(p.name for p in created)
    emit(
        {"key_dir": str(key_dir), "created": [p.name for p in created]},
        as_json=as_json,
        human=f"密钥目录 / key directory {key_dir}: "
        + (f"新建 / created {names}" if created else "已齐全 / complete"),
    )


@app.command("verify-audit")
def verify_audit(as_json: JsonFlag = False) -> None:
    """Check the keyed audit chain and its signed checkpoints / 校验审计链与签名检查点."""
    _setup_django()
    from clinical_shell.audit.checkpoints import verify_checkpoints
    from clinical_shell.audit.selectors import verify_chain

    report = verify_chain()
    anchors = verify_checkpoints()
    result = {
        "intact": report.intact and anchors.intact,
        "events_checked": report.events_checked,
        "first_broken_id": report.first_broken_id,
        "problem": report.problem,
        "checkpoints_checked": anchors.checkpoints_checked,
        "checkpoint_failed": anchors.bad_seq,
        "checkpoint_problem": anchors.problem,
    }
    if result["intact"]:
        emit(
            result,
            as_json=as_json,
            human=f"审计链完整 / audit chain intact: {report.events_checked} events, "
            f"{anchors.checkpoints_checked} checkpoints",
        )
        return
    if as_json:
        emit(result, as_json=True, human="")
        raise typer.Exit(1)
    if not report.intact:
        raise CommandError(
            f"审计链在第 {report.first_broken_id} 条记录处断开 / audit chain broken at event "
            f"{report.first_broken_id}: {report.problem}",
            exit_code=1,
        )
    raise CommandError(
        f"审计检查点 {anchors.bad_seq} 不符 / audit checkpoint {anchors.bad_seq}: "
        f"{anchors.problem}",
        exit_code=1,
    )


@app.command()
def worker(
    workers: Annotated[
        int,
        typer.Option(help="worker threads (0: heavy-job limit + 1) / 工作线程数"),
    ] = 0,
) -> None:
    """Run the background-job worker (Huey consumer) until stopped / 运行后台任务工作进程."""
    _setup_django()
    from clinical_shell.jobs.worker import run_worker

    if workers < 0:
        raise CommandError("--workers 不能为负 / must not be negative")
    run_worker(workers=workers or None)


@app.command("station-stream")
def station_stream(
    station: Annotated[int, typer.Option(help="station id / 工作站编号")],
    as_json: JsonFlag = False,
) -> None:
    """Stream a station's view into a live session (console: trusted; the demo uses it) /
    直播工作站画面."""
    _setup_django()
    from clinical_shell.errors import DomainError
    from clinical_shell.stations.stream_demo import stream_station

    try:
        stream = stream_station(station)
    except (LookupError, DomainError) as exc:
        raise CommandError(
            f"无法直播工作站画面 / cannot stream the station's view: {exc}"
        ) from None
    result = {"stream": stream.uid, "state": stream.state, "live_session": stream.live_session_id}
    emit(
        result,
        as_json=as_json,
        human=f"工作站画面直播 / station view streaming: /live/{stream.live_session_id}/ "
        f"({stream.state})",
    )


@app.command("enrolment-code")
def enrolment_code(
    institution: Annotated[str, typer.Option(help="institution code / 机构代码, e.g. CX-CENTER")],
    room: Annotated[str, typer.Option(help="room of the station / 工作站所在房间")],
    ttl_minutes: Annotated[int, typer.Option(help="validity in minutes / 有效期（分钟）")] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Create a one-time station enrolment code (console: trusted) / 生成工作站注册码."""
    _setup_django()
    from datetime import timedelta

    from django.conf import settings

    from bridge.keys import shell_public_key
    from clinical_shell.errors import DomainError
    from clinical_shell.network.models import Institution
    from clinical_shell.stations.services import create_enrolment_code

    where = Institution.objects.filter(code=institution).first()
    if where is None:
        raise CommandError(f"没有机构 / no institution {institution!r}")
    try:
        issued = create_enrolment_code(
            actor=None, institution=where, room=room, ttl=timedelta(minutes=ttl_minutes)
        )
    except DomainError as exc:
        raise CommandError(exc.message) from None
    result = {
        "code": issued.code,
        "expires_at": issued.expires_at.isoformat(),
        "shell_key": shell_public_key(settings.OSTEON_BRIDGE_KEY_DIR),
        "bridge": settings.OSTEON_BRIDGE_URL,
    }
    emit(
        result,
        as_json=as_json,
        human=(
            f"注册码 / enrolment code: {issued.code} (至 / until {result['expires_at']})\n"
            f"osteon station enroll --shell {result['bridge']} --shell-key {result['shell_key']} "
            f"--code {issued.code}"
        ),
    )
