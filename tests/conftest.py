"""Fixtures shared by every test package."""

import shutil
import subprocess
from pathlib import Path

import pytest
from osteon_cli import CliRunner, runner


@pytest.fixture
def osteon_cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """``osteon ARGS...`` in-process; returns exit code, stdout and stderr."""
    return runner(capsys)


@pytest.fixture(scope="session")
def fake_libhd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the stand-in ``libHD.so`` (``tests/haptics/fake_libhd.c``), built with
    gcc: the C symbols pyOpenHaptics calls, a simulated arm, a 1 kHz scheduler thread."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed, so the stand-in libHD.so cannot be built")
    out = tmp_path_factory.mktemp("libhd")
    source = Path(__file__).resolve().parent / "haptics" / "fake_libhd.c"
    flags = ["-shared", "-fPIC", "-O2", "-pthread", "-Wl,-soname,libHD.so"]
    subprocess.run([gcc, *flags, "-o", str(out / "libHD.so"), str(source), "-lm"], check=True)
    return out
