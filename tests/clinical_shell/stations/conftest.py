"""Stations test fixtures: the five personas at the prefecture center, an enrolled station with
its real keys, and a real engine recording on a small phantom case (built once per run).

Personas: `surgeon` (center surgeon, the trainee), `colleague` (another surgeon at the center),
`outsider` (a surgeon at 永仁 only), `committee_member` and `administrator` (both at the center).
"""

from pathlib import Path
from typing import Any

import pytest
from shell_personas import Network, Personas, make_persona
from station_helpers import EngineSession, EnrolledStation, StationPersonas, enrol

from clinical_shell.network.models import Role


@pytest.fixture
def people(shell_network: Network, personas: Personas) -> StationPersonas:
    return StationPersonas(
        surgeon=personas.center_surgeon,
        colleague=make_persona(
            "he.center", "何同事", "attending", (shell_network.center, Role.SURGEON)
        ),
        outsider=personas.outsider,
        committee_member=personas.committee_member,
        administrator=personas.admin,
    )


@pytest.fixture
def enrolled(
    people: StationPersonas, shell_network: Network, settings: Any, tmp_path: Path
) -> EnrolledStation:
    settings.OSTEON_STATION_RECORDING_ROOT = tmp_path / "recordings"
    settings.OSTEON_CASE_ARCHIVE_ROOT = tmp_path / "archives"
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "bridge-keys"
    return enrol(people.administrator, shell_network.center)


@pytest.fixture(scope="session")
def engine_session(tmp_path_factory: pytest.TempPathFactory) -> EngineSession:
    """A scripted expert's pedicle pilot hole on a small lumbar phantom, recorded by the engine."""
    from sim_core.case.build import build_case
    from sim_core.case.bundle import load_bundle
    from sim_core.ct.phantom import make_phantom, write_phantom
    from sim_core.model import model_from_bundle
    from sim_core.replay import play, write_recording
    from sim_core.trajectories import scripted_rows

    root = tmp_path_factory.mktemp("stations-engine")
    write_phantom(make_phantom("lumbar", seed=1, slices=40, matrix=96), root / "ct")
    build_case(root / "ct", root / "case", spacing_mm=1.0)
    bundle = load_bundle(root / "case")
    model = model_from_bundle(bundle, "pedicle_pilot_hole")
    rows = scripted_rows(model, "expert")
    _state, result = play(model, rows)
    path = root / "session.npz"
    write_recording(
        path,
        model=model,
        rows=rows,
        result=result,
        case_path=root / "case",
        device_name="scripted:expert",
    )
    return EngineSession(root / "case", bundle.content_hash, path.read_bytes(), result.as_dict())
