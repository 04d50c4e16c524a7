"""The OpenHaptics adapter's real code path (pyOpenHaptics → libHD.so) against a stand-in arm.

The stand-in ``libHD.so`` is compiled here from ``fake_libhd.c`` with gcc: the same C symbols
pyOpenHaptics calls, a simulated arm circling in the z = 0 plane, a 1 kHz scheduler thread.
Each check runs in a child process, because the dynamic loader reads LD_LIBRARY_PATH only at
start and pyOpenHaptics dlopens ``libHD.so`` when imported.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def run_child(script: str, lib_dir: Path | None, **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    if lib_dir is not None:
        environ["LD_LIBRARY_PATH"] = str(lib_dir)
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


ADAPTER = """
    import ctypes, json, math, time
    import numpy as np
    from haptics.openhaptics import OpenHapticsDevice

    stub = ctypes.CDLL("libHD.so")
    last = (ctypes.c_double * 3)()
    dev = OpenHapticsDevice()
    dev.open()
    dev.calibrate()
    time.sleep(0.3)
    samples = []
    for _ in range(6):
        s = dev.read()
        samples.append([*s.position_mm, *s.axis, s.buttons, s.t_s])
        time.sleep(0.13)
    dev.write_force(np.array([0.5, -0.25, 1.0]))
    time.sleep(0.05)
    stub.osteon_stub_last_force(last)
    sent = list(last)
    dev.write_force(np.array([30.0, 0.0, 40.0]))
    time.sleep(0.05)
    stub.osteon_stub_last_force(last)
    clamped = list(last)
    ticks = dev.callback_ticks
    spec = dev.spec
    dev.close()
    stub.osteon_stub_last_force(last)
    print(json.dumps({
        "samples": samples, "sent": sent, "clamped": clamped, "after_close": list(last),
        "ticks": ticks, "max_force_n": spec.max_force_n, "name": spec.name,
        "stiffness": spec.max_stiffness_n_per_mm, "workspace_max": list(spec.workspace_max_mm),
        "calibrated": stub.osteon_stub_calibrated(),
        "disabled": stub.osteon_stub_device_disabled(),
        "scheduler_running": stub.osteon_stub_scheduler_running(),
        "error": repr(dev.callback_error),
    }))
"""


def test_the_adapter_reads_the_arm_and_sends_clamped_forces(fake_libhd: Path) -> None:
    r = run_child(ADAPTER, fake_libhd)
    assert r["name"] == "openhaptics:Osteon stand-in arm"
    assert r["max_force_n"] == 3.3 and r["stiffness"] == 1.26
    assert r["workspace_max"] == [80, 60, 35]
    # the tip moves on the stand-in's 30 mm circle, the tool axis is the rest axis (-z)
    positions = [s[:3] for s in r["samples"]]
    for x, y, z in positions:
        assert (x * x + y * y) ** 0.5 == pytest.approx(30.0, abs=1e-6) and z == 0.0
    assert len({round(p[0], 3) for p in positions}) == len(positions)
    assert all(s[3:6] == [0.0, 0.0, -1.0] for s in r["samples"])
    assert {s[6] for s in r["samples"]} <= {0, 1}
    assert r["ticks"] > 500  # the scheduler called back at about 1 kHz for ~1 s
    assert r["sent"] == pytest.approx([0.5, -0.25, 1.0])
    assert sum(f * f for f in r["clamped"]) ** 0.5 == pytest.approx(3.3)
    assert r["after_close"] == [0.0, 0.0, 0.0]
    assert r["calibrated"] == 1 and r["disabled"] == 1 and r["scheduler_running"] == 0
    assert r["error"] == "None"


SERVO = """
    import ctypes, json, time
    import numpy as np
    from haptics.openhaptics import OpenHapticsDevice
    from haptics.servo import ForceField, ServoLoop, default_sphere_params

    stub = ctypes.CDLL("libHD.so")
    last = (ctypes.c_double * 3)()
    dev = OpenHapticsDevice()
    dev.open()
    # bone fills x > 0 of a 1 mm grid around the arm's circle: half of each turn is in contact
    density = np.zeros((80, 80, 20), dtype=np.float32)
    density[40:, :, :] = 1.0
    field = ForceField(density, (-40.0, -40.0, -10.0), (1.0, 1.0, 1.0),
                       params=default_sphere_params(radius_mm=3.0, gain_n=2.0))
    loop = ServoLoop(dev, field, realtime=False, capacity_ticks=20000)
    loop.start()
    time.sleep(2.5)
    rows = loop.new_samples()
    stub.osteon_stub_last_force(last)
    stats = loop.stop()
    in_bone = rows[rows[:, 1] > 3.0]
    in_air = rows[rows[:, 1] < -3.0]
    print(json.dumps({
        "ticks": stats.ticks, "rate_hz": stats.rate_hz,
        "force_in_bone": float(np.abs(in_bone[:, 16:19]).max()) if len(in_bone) else 0.0,
        "force_in_air": float(np.abs(in_air[:, 16:19]).max()) if len(in_air) else -1.0,
        "arm_x_span": float(np.ptp(rows[:, 1])), "sent_while_running": list(last),
    }))
"""


def test_the_servo_loop_drives_the_adapter_through_its_channel(fake_libhd: Path) -> None:
    r = run_child(SERVO, fake_libhd)
    assert r["ticks"] > 1500 and 900 < r["rate_hz"] < 1100
    assert r["arm_x_span"] > 50.0  # the loop saw the arm move (pose buffer from the callback)
    assert r["force_in_bone"] > 0.1 and r["force_in_air"] == 0.0


def test_an_unplugged_arm_is_one_clear_sentence(fake_libhd: Path) -> None:
    script = """
        import json
        from haptics.device import DeviceUnavailableError
        from haptics.openhaptics import OpenHapticsDevice
        try:
            OpenHapticsDevice().open()
            print(json.dumps({"error": None}))
        except DeviceUnavailableError as exc:
            print(json.dumps({"error": str(exc)}))
    """
    r = run_child(script, fake_libhd, OSTEON_FAKE_HD_NO_DEVICE="1")
    assert "did not initialise" in r["error"] and "0x302" in r["error"]


def test_a_missing_driver_library_is_one_clear_sentence() -> None:
    script = """
        import json
        from haptics.device import DeviceUnavailableError
        from haptics.openhaptics import probe
        try:
            probe()
            print(json.dumps({"error": None}))
        except DeviceUnavailableError as exc:
            print(json.dumps({"error": str(exc)}))
    """
    r = run_child(script, None)
    assert "libHD.so is not installed" in r["error"]
