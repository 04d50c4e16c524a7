"""``osteon devices``: every kind listed, with whether it is available here and why not."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from osteon_cli import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def test_devices_lists_every_kind_and_why_the_missing_ones_are_missing(
    osteon_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    result = osteon_cli("devices", "--json")
    assert result.exit_code == 0, result.stderr
    devices = {d["kind"]: d for d in json.loads(result.stdout)["devices"]}
    assert list(devices) == ["scripted", "mouse", "openhaptics", "openvr"]
    assert devices["scripted"]["available"] is True
    # nothing else is here: no display, no libHD.so, no SteamVR
    assert devices["mouse"]["available"] is False and "DISPLAY" in devices["mouse"]["reason"]
    assert devices["openhaptics"]["available"] is False
    assert "libHD.so" in devices["openhaptics"]["reason"]
    assert devices["openvr"]["available"] is False and "SteamVR" in devices["openvr"]["reason"]
    for device in devices.values():
        assert "\n" not in device["reason"] and "Traceback" not in device["reason"]


def test_devices_without_arguments_prints_a_table(
    osteon_cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPLAY", ":93")  # named, but no X server runs there
    result = osteon_cli("devices")
    assert result.exit_code == 0 and result.stdout == ""
    assert "✓ scripted:FILE" in result.stderr and "✗ openvr" in result.stderr
    assert "✗ mouse" in result.stderr and "display :93" in result.stderr


def test_the_mouse_is_available_on_a_real_x_display() -> None:
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-m", "osteon.cli", "devices", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    devices = {d["kind"]: d for d in json.loads(done.stdout)["devices"]}
    assert devices["mouse"]["available"] is True, devices["mouse"]
