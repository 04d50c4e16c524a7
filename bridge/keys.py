"""Key files of the bridge: the shell's CURVE keypair and a station's CURVE and Ed25519 keys.

Secret keys are written with mode 0600 into a directory of mode 0700, atomically (temporary
sibling, then rename), so a crash never leaves half a key. CURVE keys are Z85 text (40
characters), the Ed25519 signing key is its 32-byte seed in hex.
"""

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import zmq

from sim_core.atomic_write import write_text_atomic

# the shell's bridge keys live here unless OSTEON_BRIDGE_KEY_DIR says otherwise
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHELL_KEY_DIR = REPO_ROOT / "var" / "bridge"
# the bridge listens on three ports: enrolment at PORT, requests at PORT + 1, telemetry PORT + 2
DEFAULT_PORT = 5750


@dataclass(frozen=True)
class CurveKeys:
    public: str  # Z85, 40 characters
    secret: str  # Z85, 40 characters


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    write_text_atomic(path, text, private=True)


def new_curve_keys() -> CurveKeys:
    public, secret = zmq.curve_keypair()
    return CurveKeys(public.decode("ascii"), secret.decode("ascii"))


def shell_key_dir() -> Path:
    return Path(os.environ.get("OSTEON_BRIDGE_KEY_DIR", str(DEFAULT_SHELL_KEY_DIR)))


def load_or_create_shell_keys(key_dir: Path | None = None) -> CurveKeys:
    """The shell's CURVE keypair (``shell.key`` in ``key_dir``), made on first use.

    The public half is what an administrator hands to a station with its enrolment code
    (``osteon station enroll --shell-key``)."""
    path = (key_dir or shell_key_dir()) / "shell.key"
    if not path.exists():
        keys = new_curve_keys()
        # another process may race to create it: only the first rename's key counts
        write_private(path.with_suffix(".new"), f"{keys.public}\n{keys.secret}\n")
        with contextlib.suppress(FileExistsError):
            os.link(path.with_suffix(".new"), path)
        path.with_suffix(".new").unlink(missing_ok=True)
    public, secret = path.read_text(encoding="ascii").split()
    return CurveKeys(public, secret)


def shell_public_key(key_dir: Path | None = None) -> str:
    """The shell's CURVE public key, Z85 (creating the keypair on first use)."""
    return load_or_create_shell_keys(key_dir).public


def bridge_port() -> int:
    """The enrolment port stations are given (``OSTEON_BRIDGE_PORT``, default 5750)."""
    return int(os.environ.get("OSTEON_BRIDGE_PORT", str(DEFAULT_PORT)))
