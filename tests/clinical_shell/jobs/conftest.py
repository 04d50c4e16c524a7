"""Background-job tests: a real worker process (`osteon shell worker`, the Huey consumer) on the
test database and a task storage of its own, CT phantoms uploaded through the import service."""

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from huey.contrib.djhuey import HUEY
from shell_personas import Network, Personas

from clinical_shell.imaging import services
from clinical_shell.imaging.models import Series
from clinical_shell.jobs.worker import start_worker
from clinical_shell.records.models import Patient
from sim_core.ct.phantom import make_phantom, write_phantom

Upload = Callable[[list[Path]], Series]
StartWorker = Callable[..., "subprocess.Popen[bytes]"]


@pytest.fixture(scope="session")
def slow_phantom(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """32 slices of 192 x 192: a build at 0.5 mm takes seconds (time to kill it mid-way)."""
    out = tmp_path_factory.mktemp("jobs-phantom") / "lumbar"
    return write_phantom(make_phantom("lumbar", seed=11, slices=32, matrix=192), out)


@pytest.fixture(scope="session")
def small_phantoms(tmp_path_factory: pytest.TempPathFactory) -> list[list[Path]]:
    """Five small series (16 slices of 128 x 128, distinct UIDs): ~1 s builds at 1 mm."""
    root = tmp_path_factory.mktemp("jobs-small")
    return [
        write_phantom(make_phantom("lumbar", seed=100 + i, slices=16, matrix=128), root / str(i))
        for i in range(5)
    ]


@pytest.fixture
def stores(settings: object, tmp_path: Path) -> Path:
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    settings.OSTEON_CASE_ROOT = tmp_path / "cases"  # type: ignore[attr-defined]
    return tmp_path / "cases"


@pytest.fixture
def upload(
    stores: Path, shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> Upload:
    def send(files: list[Path]) -> Series:
        handles = [(f.name, f.open("rb")) for f in files]
        try:
            report = services.import_upload(
                actor=personas.county_surgeon,
                institution=shell_network.shuangbai,
                files=handles,  # type: ignore[arg-type]
                patient=patient_in_shuangbai,
            )
        finally:
            for _, handle in handles:
                handle.close()
        assert not report.refused and len(report.stored) == len(files)
        uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)
        return Series.objects.get(series_uid=uid)

    return send


@pytest.fixture
def worker(stores: Path, tmp_path: Path) -> Iterator[StartWorker]:
    """Start worker processes (each in its own process group); all are killed at the end."""
    HUEY.flush()  # no wake-up left over from another test
    started: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "worker.log", "ab")  # noqa: SIM115 (closed below)

    def start(workers: int = 2) -> subprocess.Popen[bytes]:
        process = start_worker(workers=workers, output=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    log.close()
