"""Offscreen renders, each in a fresh interpreter.

Panda3D allows one ShowBase per process and keeps its graphics context until the process
ends, so a screenshot taken from a long-lived process (a CLI that goes on, the test runner,
the clinical shell) runs in a child started with ``python -m sim_core.view.offscreen``:
nothing of Panda3D is left behind in the caller, and a crash in a graphics driver cannot take
the caller down. The job and its result travel as pickles in a private temporary directory.
"""

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

RENDER_TIMEOUT_S = 180.0
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ViewError(Exception):
    """A view could not be rendered (no usable display back end, or the renderer died)."""


def run_in_fresh_process(job: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``job`` (a module-level function) in a new interpreter; return its result.

    An exception raised by the job is raised again here; a child that dies or hangs becomes
    a ``ViewError`` carrying the end of its error output.
    """
    with tempfile.TemporaryDirectory(prefix="osteon-view-") as tmp:
        request, reply = Path(tmp) / "job.pickle", Path(tmp) / "reply.pickle"
        request.write_bytes(pickle.dumps((job, args, kwargs)))
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                p for p in (str(_PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
        )
        command = [sys.executable, "-m", "sim_core.view.offscreen", str(request), str(reply)]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=env,
                timeout=RENDER_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ViewError(f"the offscreen renderer took over {RENDER_TIMEOUT_S:.0f} s") from exc
        if not reply.is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise ViewError(f"the offscreen renderer exited with status {done.returncode}: {tail}")
        succeeded, value = pickle.loads(reply.read_bytes())
        if not succeeded:
            raise value
        result: R = value
        return result


def _serve(request: Path, reply: Path) -> None:
    # child side: run the job, pickle back its result or its exception
    job, args, kwargs = pickle.loads(request.read_bytes())
    outcome: tuple[bool, Any]
    try:
        outcome = (True, job(*args, **kwargs))
    except Exception as exc:
        outcome = (False, exc)
    try:
        payload = pickle.dumps(outcome)
    except Exception as exc:
        payload = pickle.dumps(
            (False, ViewError(f"the job's outcome could not be sent back: {exc}"))
        )
    reply.write_bytes(payload)


def replace_atomically(written: Path, final: Path) -> Path:
    """Move a finished file into place, so readers never see a half-written image."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(written, final)
    return final


def temporary_sibling(final: Path) -> Path:
    """A name next to ``final`` for writing it first (same file system, so the move is atomic)."""
    return final.with_name(f".{final.stem}.{os.getpid()}.partial{final.suffix}")


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), Path(sys.argv[2]))
