"""Strict readers for the environment: a typo in a deployment variable fails loudly at start-up."""

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


class SettingsError(Exception):
    """A deployment variable holds a value the shell refuses to guess about."""


def env_bool(name: str, default: bool) -> bool:
    # only the two literal words: "1", "yes" or "False " are rejected rather than guessed
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise SettingsError(f"{name} 只能是 true 或 false / must be 'true' or 'false', got {raw!r}")


def env_str(name: str, default: str) -> str:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.strip():
        raise SettingsError(f"{name} 不能为空 / must not be empty")
    return raw


def env_int(name: str, default: int) -> int:
    """A positive whole number; anything else is refused rather than guessed."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name} 必须是正整数 / must be a positive whole number, got {raw!r}")
    return int(raw)


def env_optional(name: str) -> str | None:
    """A setting that may be absent; set but blank is refused (a half-written deployment file)."""
    raw = os.environ.get(name)
    if raw is None:
        return None
    if not raw.strip():
        raise SettingsError(f"{name} 不能为空 / must not be empty (unset it instead)")
    return raw


def ice_urls(name: str, schemes: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated STUN/TURN URLs (``stun:host:3478``, ``turns:host:5349?transport=tcp``),
    each with one of ``schemes``; absent: none."""
    raw = env_optional(name)
    if raw is None:
        return ()
    urls = tuple(part.strip() for part in raw.split(","))
    for url in urls:
        if not url.startswith(schemes) or len(url) <= len(url.split(":", 1)[0]) + 1 or " " in url:
            raise SettingsError(
                f"{name}: 每项须以 {' 或 '.join(schemes)} 开头 / each entry must start with "
                f"{' or '.join(schemes)} and name a host, got {url!r}"
            )
    return urls


def env_secret(name: str) -> str | None:
    """A secret from NAME or from the file named by NAME_FILE (Docker/systemd credentials)."""
    direct = os.environ.get(name)
    file_name = os.environ.get(f"{name}_FILE")
    if direct is not None and file_name is not None:
        raise SettingsError(f"{name} 与 {name}_FILE 只能设置一个 / set only one of them")
    if file_name is not None:
        path = Path(file_name)
        if not path.is_file():
            raise SettingsError(f"{name}_FILE: 文件不存在 / no such file: {path}")
        value = path.read_text(encoding="utf-8").strip()
        if not value:
            raise SettingsError(f"{name}_FILE: 文件为空 / file is empty: {path}")
        return value
    if direct is not None and not direct.strip():
        raise SettingsError(f"{name} 不能为空 / must not be empty")
    return direct


def parse_database_url(url: str) -> dict[str, Any]:
    """`sqlite:///abs/path`, `sqlite:///relative` or `postgresql://user:pw@host:port/name`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        # sqlite:////abs -> "//abs"; sqlite:///rel -> "/rel": keep the usual URL meaning
        name = path[1:] if path.startswith("//") else path.lstrip("/")
        if not name:
            raise SettingsError(f"数据库地址缺少文件名 / database URL has no file name: {url!r}")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            # several processes write (web, case-build workers): take the write lock when a
            # transaction starts, wait for it rather than fail, and let readers run beside a writer
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    if parsed.scheme in ("postgres", "postgresql"):
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise SettingsError(f"数据库地址缺少库名 / database URL has no database name: {url!r}")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            # under the ASGI server each request may run in a fresh thread, so persistent
            # connections (CONN_MAX_AGE) are left open per thread until PostgreSQL refuses new
            # clients (seen in the load test after ~100 requests); a bounded pool per process
            # instead: requests beyond it wait for a connection rather than exhaust the server
            "CONN_MAX_AGE": 0,
            "OPTIONS": {
                "pool": {
                    "min_size": 1,
                    "max_size": env_int("OSTEON_DB_POOL_MAX", 8),
                    "timeout": 20,
                }
            },
        }
    raise SettingsError(
        f"不支持的数据库地址 / unsupported database URL scheme {parsed.scheme!r} "
        "(use sqlite:/// or postgresql://)"
    )
