"""Fixtures for the CT DICOM tests: a small written series to read back or break."""

from pathlib import Path

import pytest
from ct_dicom_fixtures import make_volume, write_volume

from sim_core.ct.volume import CtVolume


@pytest.fixture
def small_volume() -> CtVolume:
    return make_volume()


@pytest.fixture
def series_files(tmp_path: Path, small_volume: CtVolume) -> list[Path]:
    """The small volume written as a CT series under tmp_path/series (CT0001 = lowest slice)."""
    return write_volume(small_volume, tmp_path / "series")
