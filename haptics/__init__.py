"""Haptic devices behind one interface, and the 1 kHz servo loops that feed them forces.

- `device`: `HapticDevice` (open, close, calibrate, read, write_force, spec), `DeviceSpec`,
  `DeviceSample`, `DeviceUnavailableError`; units mm, s, N, axes documented there.
- Implementations, each driver imported only when opened or probed:
  `scripted` (trajectory files), `mouse` (mouse and keyboard through Panda3D events; events
  can be injected without a display), `openhaptics` (pyOpenHaptics / libHD.so) and
  `openvr_device` (OpenVR controllers, pose only, force as vibration).
- `registry`: every device kind, `device_statuses()` (available here, and why not),
  `make_device` / `open_device` by ``--device`` name; `cli`: ``osteon devices [--json]``.
- `servo`: `ServoLoop` (any force kernel) and `EngineServoLoop` (the whole engine step), both
  compiled numba loops that run without the GIL in their own thread, and their timing stats;
  their logs are pre-faulted (`prefaulted_zeros`), so writing them never page-faults.
- Live sessions with a window (``osteon sim run --device mouse|openhaptics|openvr``):
  `osteon.live_run` drives `EngineServoLoop` from the device and lets the view follow it.

Not yet done: the OpenVR adapter is tested only up to the missing SteamVR runtime (no headset
here); its polling and vibration paths have never run against a real controller. A live
OpenHaptics session runs its Python scheduler callback in the same process as the window,
whose drawing holds the GIL: expect a jittery arm until the window moves to its own process.
"""
