"""Strict environment parsing for the shell's settings."""

from pathlib import Path

import pytest

from clinical_shell.env import SettingsError, env_bool, env_secret, parse_database_url


@pytest.mark.parametrize("raw", ["1", "yes", "True", "false ", ""])
def test_env_bool_rejects_anything_but_true_or_false(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSTEON_X", raw)
    with pytest.raises(SettingsError, match="OSTEON_X"):
        env_bool("OSTEON_X", False)


def test_env_bool_reads_true_false_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSTEON_X", raising=False)
    assert env_bool("OSTEON_X", True) is True
    monkeypatch.setenv("OSTEON_X", "false")
    assert env_bool("OSTEON_X", True) is False


def test_secret_comes_from_a_file_and_not_from_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cret\n")
    monkeypatch.delenv("OSTEON_K", raising=False)
    monkeypatch.setenv("OSTEON_K_FILE", str(secret))
    assert env_secret("OSTEON_K") == "s3cret"
    monkeypatch.setenv("OSTEON_K", "other")
    with pytest.raises(SettingsError, match="only one"):
        env_secret("OSTEON_K")
    monkeypatch.delenv("OSTEON_K")
    monkeypatch.setenv("OSTEON_K_FILE", str(tmp_path / "missing"))
    with pytest.raises(SettingsError, match="no such file"):
        env_secret("OSTEON_K")


def test_database_urls_parse_to_django_settings() -> None:
    pg = parse_database_url("postgresql://osteon:p%40ss@db.example:5433/shell")
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "shell",
        "osteon",
        "p@ss",
        "db.example",
        "5433",
    )
    assert parse_database_url("sqlite:////var/lib/osteon.db")["NAME"] == "/var/lib/osteon.db"
    assert parse_database_url("sqlite:///var/osteon.db")["NAME"] == "var/osteon.db"
    with pytest.raises(SettingsError, match="unsupported"):
        parse_database_url("mysql://x/y")
    with pytest.raises(SettingsError, match="no database name"):
        parse_database_url("postgresql://host/")
