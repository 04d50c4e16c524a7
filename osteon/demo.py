"""``osteon demo`` (what ``make run`` ends with): the demo region in the shell, the demo case seen.

``make run`` first writes the demo CT phantom and builds its case (Makefile targets, skipped
when present). This then loads the Chuxiong demo region into the shell's database when it is
empty, starts the shell on 127.0.0.1, and shows the demo case: in a Panda3D window where there
is a display, rendered offscreen to a PNG (and the path printed) where there is none. The
shell keeps serving until Ctrl-C.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from osteon.console import CommandError, emit

ROOT = Path(__file__).resolve().parent.parent
DEMO_CASE = ROOT / "assets" / "cases" / "demo-lumbar"
DEMO_SCREENSHOT = ROOT / "var" / "demo" / "demo-lumbar.png"
SHELL_READY_TIMEOUT_S = 60.0


def _osteon(*args: str) -> list[str]:
    return [sys.executable, "-m", "osteon", *args]


def load_shell_demo() -> None:
    """Migrate and load the demo region (a no-op when it is already there)."""
    done = subprocess.run(_osteon("shell", "demo"), cwd=ROOT, check=False)
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


def run_demo(port: int | None = None) -> None:
    port = port or int(os.environ.get("OSTEON_PORT", "8000"))
    # a SIGTERM to `make run` must also stop the shell child: unwind through `finally`
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    load_shell_demo()
    shell = start_shell(port)
    try:
        emit(
            {"shell": f"http://127.0.0.1:{port}/"},
            as_json=False,
            human=f"临床平台 / clinical shell: http://127.0.0.1:{port}/  (Ctrl-C 停止 / to stop)",
        )
        show_case()
        shell.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if shell.poll() is None:
            shell.send_signal(signal.SIGTERM)
            shell.wait(timeout=10)
