"""Secrets: no development default outside tests, per-install key files, and rotation of the
session key (fallbacks) and of the resident-ID search key (digests recomputed)."""

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas
from shell_server import REPO, free_port
from typer.testing import CliRunner

from clinical_shell.cli import app as shell_cli
from clinical_shell.env import SettingsError
from clinical_shell.keyfiles import KEY_FILES, configured_secret, require_configured_secrets
from clinical_shell.records.models import Patient
from clinical_shell.records.selectors import search_patients

SECRET_VARIABLES = (*KEY_FILES, "OSTEON_SECRET_KEY_FALLBACKS")


def _env_without_secrets(key_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and not any(k.startswith(s) for s in SECRET_VARIABLES)
    }
    env["OSTEON_KEY_DIR"] = str(key_dir)
    return env


def test_the_server_refuses_to_start_without_configured_secrets(tmp_path: Path) -> None:
    env = _env_without_secrets(tmp_path / "no-keys")
    serve = subprocess.run(
        [sys.executable, "-m", "osteon", "shell", "serve", "--port", str(free_port()),
         "--no-worker", "--no-bridge", "--no-collectstatic"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert serve.returncode != 0
    assert "OSTEON_SECRET_KEY" in serve.stderr and "OSTEON_AUDIT_KEY" in serve.stderr
    assert "osteon shell keys" in serve.stderr


def test_the_asgi_and_wsgi_entry_points_check_the_secrets(settings: Any) -> None:
    # (the subprocess above is the real refusal; this pins that both entry points ask for it)
    for entry in ("asgi.py", "wsgi.py"):
        assert "require_configured_secrets()" in (REPO / "clinical_shell" / entry).read_text()
    settings.OSTEON_MISSING_SECRETS = ["OSTEON_AUDIT_KEY"]
    with pytest.raises(SettingsError, match="OSTEON_AUDIT_KEY"):
        require_configured_secrets()


def test_keys_command_writes_private_random_key_files_that_settings_read(
    tmp_path: Path, settings: Any
) -> None:
    key_dir = tmp_path / "keys"
    settings.OSTEON_KEY_DIR = key_dir
    made = CliRunner().invoke(shell_cli, ["keys", "--json"])
    assert made.exit_code == 0, made.output
    values = {}
    for name in KEY_FILES.values():
        mode = stat.S_IMODE((key_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
        values[name] = (key_dir / name).read_text().strip()
    # and the live relay's secret, beside them (the relay reads it from there)
    relay = key_dir / "stream_relay_secret"
    assert stat.S_IMODE(relay.stat().st_mode) == 0o600
    values[relay.name] = relay.read_text().strip()
    assert len(set(values.values())) == len(values)  # independent secrets
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    # what settings.py reads when no variable is set
    for variable, name in KEY_FILES.items():
        assert configured_secret(variable, key_dir, use_files=True) == values[name]
    # a second run keeps the install's keys
    assert CliRunner().invoke(shell_cli, ["keys"]).exit_code == 0
    assert (key_dir / "secret_key").read_text().strip() == values["secret_key"]


def test_sessions_survive_secret_key_rotation_with_the_old_key_as_fallback(
    personas: Personas, signed_in_client: Callable[[User], Client], settings: Any
) -> None:
    during = signed_in_client(personas.county_surgeon)
    idle = signed_in_client(personas.center_surgeon)
    assert during.get("/patients/").status_code == 200
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "the-rotated-key-" + "r" * 48
    settings.SECRET_KEY_FALLBACKS = [old]
    # a session used while the old key is a fallback moves over to the new key
    assert during.get("/patients/").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert during.get("/patients/").status_code == 200
    # one not used in that window ends once the old key leaves the fallbacks
    response = idle.get("/patients/")
    assert response.status_code == 302 and "sign-in" in response["Location"]


def test_id_search_finds_patients_again_after_the_id_key_rotates_and_digests_are_recomputed(
    patient_in_shuangbai: Patient, shell_network: Network, settings: Any
) -> None:
    where = [shell_network.tuodian.pk]
    assert list(search_patients(institution_ids=where, text=SHUANGBAI_MAN_ID)) == [
        patient_in_shuangbai
    ]
    settings.OSTEON_ID_HMAC_KEY = "the-rotated-id-key-" + "i" * 40
    assert list(search_patients(institution_ids=where, text=SHUANGBAI_MAN_ID)) == []
    call_command("rehash_resident_ids")
    assert list(search_patients(institution_ids=where, text=SHUANGBAI_MAN_ID)) == [
        patient_in_shuangbai
    ]
    stored = Patient.objects.get(pk=patient_in_shuangbai.pk).resident_id_digest
    assert SHUANGBAI_MAN_ID not in stored
