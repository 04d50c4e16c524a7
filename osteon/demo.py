"""``osteon demo`` (what ``make run`` ends with): the demo region in the shell, the demo case seen.

``make run`` first writes the demo CT phantom and builds its case (Makefile targets, skipped
when present). This then loads the Chuxiong demo region into the shell's database when it is
empty, starts the shell on 127.0.0.1 (its bridge endpoint beside it), enrols a local simulator
station once (``var/station/``, a one-time code from ``osteon shell enrolment-code``) and runs
it as a child process so the shell shows it online, starts the live relay with the station's
own room (``station-<id>``) and asks the station, over the bridge, to stream its Panda3D view
there (a live session in the shell plays it: ``/live/<id>/``), and opens the demo case in scenario 1
(L4 pedicle pilot hole): in a Panda3D window with the mouse/keyboard device where there is a
display; where there is none it renders the case offscreen and runs the scenario with the
scripted expert, writing a screenshot, the recording and the result JSON under var/demo/. The shell
keeps serving until Ctrl-C.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from osteon.console import CommandError, emit

ROOT = Path(__file__).resolve().parent.parent
DEMO_CASE_DIR = ROOT / "assets" / "cases"
DEMO_CASE = DEMO_CASE_DIR / "demo-lumbar"
DEMO_SCREENSHOT = ROOT / "var" / "demo" / "demo-lumbar.png"
DEMO_SCENARIO = "pedicle_pilot_hole"
# the demo case each scenario runs on (`make run` builds assets/cases/demo-<region>; the shell
# offers every case built there when a session is started, see stations.selectors.asset_cases)
DEMO_REGIONS = ("lumbar", "hip", "knee")
SCENARIO_REGION = {
    "pedicle_pilot_hole": "lumbar",
    "burr_lesion": "lumbar",
    "femoral_neck_guide_wire": "hip",
    "knee_lesion_burr": "knee",
}
SESSION_DIR = ROOT / "var" / "demo" / "session"
# the first start collects and compresses the static files (about 25 s here) before uvicorn
SHELL_READY_TIMEOUT_S = 180.0
# the demo's simulator station: enrolled once, its keys and outbox kept here
STATION_DIR = ROOT / "var" / "station"
STATION_ROOM = "模拟训练室 1"
# the live relay beside the shell (the shell's default OSTEON_STREAM_RELAY_URL) and the room of
# the demo's live session (clinical_shell.live.demo)
DEMO_RELAY_PORT = 8765
DEMO_RELAY_ROOM = "demo-or"
DEMO_RELAY_STREAMS = ("field", "endoscope")


def demo_case(region: str, case_dir: Path = DEMO_CASE_DIR) -> Path:
    """The demo case directory of a region (lumbar, hip, knee)."""
    if region not in DEMO_REGIONS:
        raise CommandError(
            f"没有这个演示部位 / no demo region {region!r} (known: {', '.join(DEMO_REGIONS)})"
        )
    return case_dir / f"demo-{region}"


def demo_case_for(scenario: str, case_dir: Path = DEMO_CASE_DIR) -> Path:
    """The demo case a scenario runs on."""
    if scenario not in SCENARIO_REGION:
        raise CommandError(
            f"没有演示病例的场景 / no demo case for scenario {scenario!r} "
            f"(known: {', '.join(sorted(SCENARIO_REGION))})"
        )
    return demo_case(SCENARIO_REGION[scenario], case_dir)


def _osteon(*args: str) -> list[str]:
    return [sys.executable, "-m", "osteon", *args]


def load_shell_demo() -> None:
    """Migrate and load the demo region (a no-op when it is already there).

    This command is the demo, so it allows the loader (OSTEON_DEMO); the loader still refuses a
    database it did not create itself (clinical_shell.demo.ensure_demo_database)."""
    env = {**os.environ, "OSTEON_DEMO": "true"}
    done = subprocess.run(_osteon("shell", "demo"), cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        raise CommandError("演示数据载入失败 / loading the demo region failed (see above)")


def start_shell(port: int) -> subprocess.Popen[bytes]:
    """The shell's server as a child process; returns once it answers HTTP."""
    shell = subprocess.Popen(
        _osteon("shell", "serve", "--host", "127.0.0.1", "--port", str(port)), cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + SHELL_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if shell.poll() is not None:
            raise CommandError(
                f"临床平台未能启动 / the shell exited at start (code {shell.returncode})"
            )
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return shell
        except OSError:
            time.sleep(0.3)
    shell.terminate()
    raise CommandError(
        f"临床平台未在 {SHELL_READY_TIMEOUT_S:.0f} 秒内响应 / the shell did not answer"
    )


def enrol_demo_station(station_dir: Path = STATION_DIR) -> bool:
    """Enrol the local station with the shell once (a one-time code from the shell)."""
    if (station_dir / "station.json").exists():
        return True
    code = subprocess.run(
        _osteon("shell", "enrolment-code", "--institution", "CX-CENTER", "--room", STATION_ROOM,
                "--json"),
        cwd=ROOT, check=False, stdout=subprocess.PIPE,
    )  # fmt: skip
    if code.returncode != 0:
        return False
    info = json.loads(code.stdout)
    # the shell's bridge starts beside the web server: give it a few tries
    for _ in range(5):
        done = subprocess.run(
            _osteon("station", "enroll", "--shell", info["bridge"], "--code", info["code"],
                    "--shell-key", info["shell_key"], "--dir", str(station_dir)),
            cwd=ROOT, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return True
        if (station_dir / "station.json").exists():
            return True
        time.sleep(1.0)
    return False


def start_station(
    station_dir: Path = STATION_DIR, view_case: Path | None = None
) -> subprocess.Popen[bytes] | None:
    """The local simulator station as a child process, so the shell shows it online; its
    streamed view shows ``view_case`` until it ran a session."""
    if not enrol_demo_station(station_dir):
        emit(
            {"station": None},
            as_json=False,
            human="本地工作站未能注册 / the local station could not enrol (see above); "
            "the shell runs without it",
        )
        return None
    args = ["station", "run", "--dir", str(station_dir)]
    if view_case is not None:
        args += ["--view-case", str(view_case)]
    station = subprocess.Popen(_osteon(*args), cwd=ROOT)
    emit(
        {"station": str(station_dir)},
        as_json=False,
        human=f"本地模拟工作站已启动 / local simulator station running ({station_dir})",
    )
    return station


def _relay_secret_path() -> Path:
    # as clinical_shell.settings reads it: `osteon shell keys` (make run) created the file
    key_dir = Path(os.environ.get("OSTEON_KEY_DIR", str(ROOT / "var" / "keys")))
    return Path(
        os.environ.get("OSTEON_STREAM_RELAY_SECRET_PATH", str(key_dir / "stream_relay_secret"))
    )


def local_station_id(station_dir: Path = STATION_DIR) -> str | None:
    """The enrolled local station's id (None when it is not enrolled)."""
    try:
        return str(json.loads((station_dir / "station.json").read_text())["station_id"])
    except (OSError, ValueError, KeyError):
        return None


def start_relay(
    port: int = DEMO_RELAY_PORT,
    config_dir: Path = ROOT / "var" / "demo",
    station_id: str | None = None,
) -> subprocess.Popen[bytes] | None:
    """The live relay as a child process, the demo room's streams being ffmpeg's test picture
    and tone (no camera here), at 360p only: two encodes are what two cores spare. With
    ``station_id``, the room ``station-<id>`` takes that station's published view."""
    secret = _relay_secret_path()
    if os.environ.get("OSTEON_STREAM_RELAY_SECRET") or not secret.exists():
        emit(
            {"relay": None},
            as_json=False,
            human="直播中继未启动：没有共享密钥文件 / the live relay was not started: no shared "
            f"secret file at {secret} (run `osteon shell keys`)",
        )
        return None
    test_stream = {"source": {"kind": "test", "fps": 25}, "qualities": ["360p"]}
    rooms: dict[str, Any] = {DEMO_RELAY_ROOM: {name: test_stream for name in DEMO_RELAY_STREAMS}}
    if station_id is not None:
        # the station encodes its own view and publishes it (clinical_shell.stations.streams)
        published = {"source": {"kind": "publish"}, "qualities": ["360p"]}
        rooms[f"station-{station_id}"] = {"view": published}
    config = {"secret_file": str(secret), "rooms": rooms}
    path = config_dir / "relay.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    relay = subprocess.Popen(
        [sys.executable, "-m", "streaming.relay", "--host", "127.0.0.1", "--port", str(port),
         "--config", str(path)],
        cwd=ROOT,
    )  # fmt: skip
    emit(
        {"relay": f"ws://127.0.0.1:{port}"},
        as_json=False,
        human=f"直播中继 / live relay: ws://127.0.0.1:{port} (room {DEMO_RELAY_ROOM})",
    )
    return relay


def stream_local_station(station_id: str | None) -> None:
    """Ask the local station, over the bridge, to stream its view into a live session."""
    if station_id is None:
        return
    done = subprocess.run(
        _osteon("shell", "station-stream", "--station", station_id, "--json"),
        cwd=ROOT, check=False, stdout=subprocess.PIPE,
    )  # fmt: skip
    if done.returncode != 0:
        emit(
            {"station_stream": None},
            as_json=False,
            human="工作站画面直播未启动 / the station's view is not streamed (see above)",
        )
        return
    info = json.loads(done.stdout)
    emit(
        info,
        as_json=False,
        human=f"工作站画面直播 / the station's view, live: /live/{info['live_session']}/",
    )


def show_case(case_dir: Path = DEMO_CASE, screenshot: Path = DEMO_SCREENSHOT) -> Path | None:
    """Open ``case_dir`` in a window, or render it offscreen; return the PNG when offscreen."""
    from sim_core.case.bundle import BundleError, load_bundle
    from sim_core.view.case_viewer import view_case
    from sim_core.view.display import has_display

    try:
        load_bundle(case_dir)
    except BundleError as exc:
        raise CommandError(
            f"演示病例不可用 / the demo case is not usable ({exc}); run `make run`"
        ) from None
    if has_display():
        view_case(case_dir)
        return None
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    png = view_case(case_dir, screenshot=screenshot)
    emit(
        {"case": str(case_dir), "screenshot": str(png)},
        as_json=False,
        human=f"无显示器：已离屏渲染 / no display: rendered offscreen to {png}",
    )
    return png


def run_live_session(
    case_dir: Path = DEMO_CASE, out_dir: Path = SESSION_DIR, scenario: str = DEMO_SCENARIO
) -> None:
    """A scenario in a window with the mouse/keyboard device; recorded so that it replays."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = _osteon(
        "sim", "run", str(case_dir), "--scenario", scenario, "--device", "mouse",
        "--record", str(out_dir / "live.osrec"),
    )  # fmt: skip
    if subprocess.run(args, cwd=ROOT, check=False).returncode != 0:
        raise CommandError("演示模拟失败 / the demo simulation failed (see above)")


def run_scripted_session(
    case_dir: Path = DEMO_CASE, out_dir: Path = SESSION_DIR, scenario: str = DEMO_SCENARIO
) -> Path:
    """A scenario with the scripted expert, headless: screenshot, recording and result JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = out_dir / "result.json"
    args = _osteon(
        "sim", "run", str(case_dir), "--scenario", scenario, "--device", "scripted:expert",
        "--screenshot", str(out_dir / "final.png"), "--record", str(out_dir / "session.osrec"),
        "--json",
    )  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, check=False, stdout=subprocess.PIPE)
    if done.returncode != 0:
        raise CommandError("演示模拟失败 / the demo simulation failed (see above)")
    result.write_bytes(done.stdout)
    score = json.loads(done.stdout)
    grade = f", grade {score['gr_grade']}" if "gr_grade" in score else ""
    emit(
        score,
        as_json=False,
        human=(
            f"演示（专家脚本）/ {scenario} on {case_dir.name}, scripted expert: "
            f"{'通过 / passed' if score.get('passed') else '未通过 / failed'}, "
            f"score {score.get('score')}{grade}; "
            f"screenshot {out_dir / 'final.png'}, result {result}"
        ),
    )
    return result


def run_demo(port: int | None = None, scenario: str = DEMO_SCENARIO) -> None:
    """Serve the shell with its station, and open ``scenario`` on its demo case."""
    case_dir = demo_case_for(scenario)
    port = port or int(os.environ.get("OSTEON_PORT", "8000"))
    # a SIGTERM to `make run` must also stop the shell child: unwind through `finally`
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    load_shell_demo()
    shell = start_shell(port)
    station: subprocess.Popen[bytes] | None = None
    relay: subprocess.Popen[bytes] | None = None
    try:
        station = start_station(view_case=case_dir)
        station_id = local_station_id() if station is not None else None
        relay = start_relay(station_id=station_id)
        if relay is not None:
            stream_local_station(station_id)
        emit(
            {"shell": f"http://127.0.0.1:{port}/"},
            as_json=False,
            human=f"临床平台 / clinical shell: http://127.0.0.1:{port}/  (Ctrl-C 停止 / to stop)",
        )
        from sim_core.view.display import has_display

        # with a display the surgeon drives the scenario with the mouse; without one the
        # scripted expert runs it headless and leaves a screenshot and the result
        if has_display():
            run_live_session(case_dir, scenario=scenario)
        else:
            show_case(case_dir, DEMO_SCREENSHOT.with_name(f"{case_dir.name}.png"))
            run_scripted_session(case_dir, scenario=scenario)
        shell.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for child in (station, relay):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=10)
        if shell.poll() is None:
            shell.send_signal(signal.SIGTERM)
            shell.wait(timeout=10)
