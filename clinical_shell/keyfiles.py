"""The shell's secrets: where each comes from, the per-install key files, the start-up refusal.

Each secret is read from its variable (`OSTEON_SECRET_KEY`), from the file that variable's
`_FILE` twin names (Docker/systemd credentials), or from its file in the key directory
(`OSTEON_KEY_DIR`, default `var/keys/`; `osteon shell keys` creates missing ones, mode 600).
The secrets are separate so that each can rotate alone (docs/security.md, "Secrets"):

- `OSTEON_SECRET_KEY`: Django's key (sessions, CSRF, signed values, token hashes);
- `OSTEON_ID_HMAC_KEY`: the keyed digests that make resident ID numbers searchable;
- `OSTEON_AUDIT_KEY`: the HMAC of the audit chain (the database never holds it);
- `OSTEON_AUDIT_SIGNING_KEY`: the Ed25519 seed that signs audit checkpoints.

This module is imported by settings.py: it must not import Django's settings.
"""

import os
import secrets
import tempfile
from pathlib import Path

from clinical_shell.env import SettingsError, env_secret

# variable -> file name in the key directory
KEY_FILES: dict[str, str] = {
    "OSTEON_SECRET_KEY": "secret_key",
    "OSTEON_ID_HMAC_KEY": "id_hmac_key",
    "OSTEON_AUDIT_KEY": "audit_key",
    "OSTEON_AUDIT_SIGNING_KEY": "audit_signing_key",
}
# the previous SECRET_KEYs, one a line, still accepted while sessions and tokens move over
FALLBACKS_FILE = "secret_key_fallbacks"


def _new_value(variable: str) -> str:
    if variable == "OSTEON_AUDIT_SIGNING_KEY":
        return secrets.token_hex(32)  # an Ed25519 seed: 32 bytes
    return secrets.token_urlsafe(48)


def read_key_file(directory: Path, name: str) -> str | None:
    path = directory / name
    if not path.is_file():
        return None
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise SettingsError(f"密钥文件为空 / key file is empty: {path}")
    return value


def configured_secret(variable: str, key_dir: Path, *, use_files: bool) -> str | None:
    """The secret from the environment, else from its key file (when `use_files`), else None."""
    value = env_secret(variable)
    if value is None and use_files:
        value = read_key_file(key_dir, KEY_FILES[variable])
    return value


def configured_fallbacks(key_dir: Path, *, use_files: bool) -> list[str]:
    raw = env_secret("OSTEON_SECRET_KEY_FALLBACKS")
    if raw is None and use_files:
        raw = read_key_file(key_dir, FALLBACKS_FILE)
    if raw is None:
        return []
    return [line.strip() for line in raw.replace(",", "\n").splitlines() if line.strip()]


def ensure_key_files(directory: Path) -> list[Path]:
    """Create the missing key files (random, mode 600, in a mode 700 folder); return the new ones.

    An existing file is never overwritten: that would be a rotation, which has its own steps.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    created: list[Path] = []
    for variable, name in KEY_FILES.items():
        path = directory / name
        if path.exists():
            continue
        # O_EXCL: two concurrent first starts must not write two different keys
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(_new_value(variable) + "\n")
        created.append(path)
    return created


def test_checkpoint_dir() -> Path:
    """Under pytest: audit checkpoints of this process's own, apart from the install's."""
    return Path(tempfile.gettempdir()) / f"osteon-test-audit-checkpoints-{os.getpid()}"


def missing_secrets_error(missing: list[str], key_dir: Path) -> SettingsError:
    names = ", ".join(missing)
    return SettingsError(
        f"未配置密钥，拒绝启动 / refusing to start without these secrets: {names}. "
        f"设置环境变量（或 *_FILE），或运行 `osteon shell keys` 在 {key_dir} 生成 / "
        f"set them (or their *_FILE twins), or run `osteon shell keys` to create per-install "
        f"key files in {key_dir} (see docs/security.md, Secrets)"
    )


def require_configured_secrets() -> None:
    """Raise SettingsError naming every secret the running server lacks (no silent default)."""
    from django.conf import settings

    missing: list[str] = list(getattr(settings, "OSTEON_MISSING_SECRETS", []))
    if missing:
        raise missing_secrets_error(missing, Path(settings.OSTEON_KEY_DIR))
