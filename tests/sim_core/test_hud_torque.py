"""The live HUD shows the torque bone holds against the hand (3-DOF devices cannot render it)."""

import numpy as np
import pytest
from synthetic_cases import phantom_case

from osteon.live_run import hud_metrics
from sim_core.metric_labels import metric_label
from sim_core.slots import N_STATE, S_PEAK_FORCE_N, S_TORQUE
from sim_core.state import SimState


def test_the_hud_carries_the_torque_magnitude_and_labels_it() -> None:
    st = np.zeros(N_STATE, dtype=np.float64)
    st[S_TORQUE : S_TORQUE + 3] = (30.0, -40.0, 0.0)
    st[S_PEAK_FORCE_N] = 6.5
    state = SimState(density=np.zeros((1, 1, 1), np.float32), st=st, dirty=np.zeros(1, np.uint8))
    assert hud_metrics(state) == {"peak_force_n": 6.5, "torque_n_mm": 50.0}
    assert metric_label("torque_n_mm") == "扭矩 / torque (N·mm)"


def test_a_live_device_with_torque_output_gets_its_limit_in_the_model(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from haptics.channel import N_POSE
    from haptics.scripted import ScriptedDevice
    from osteon.sim_cli import model_for_device
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.slots import P_MAX_TORQUE_N_MM

    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    case = phantom_case("lumbar", root)
    model = model_from_bundle(load_bundle(case), "pedicle_pilot_hole")
    assert model.params[P_MAX_TORQUE_N_MM] == 0.0  # the default: a 3-DOF arm
    rows = np.zeros((1, N_POSE))
    arm = ScriptedDevice(rows, max_torque_n_mm=25.0)
    torque_model = model_for_device(case, model, arm.spec)
    assert torque_model.params[P_MAX_TORQUE_N_MM] == 25.0
    assert torque_model.digest != model.digest  # the recording names the model it ran
    assert model_for_device(case, model, ScriptedDevice(rows).spec) is model
