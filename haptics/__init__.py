"""Haptic devices behind one interface, and the 1 kHz servo loops that feed them forces.

- `device`: `HapticDevice` (open, close, calibrate, read, write_force, spec), `DeviceSpec`,
  `DeviceSample`, `DeviceUnavailableError`; units mm, s, N, axes documented there.
- `scripted` (trajectory files) and `openhaptics` (pyOpenHaptics, imported only when opened):
  the implementations so far. Not yet written: a mouse/keyboard device, OpenVR controllers,
  and the registry behind `osteon devices`.
- `servo`: `ServoLoop` (any force kernel) and `EngineServoLoop` (the whole engine step), both
  compiled numba loops that run without the GIL in their own thread, and their timing stats.
"""
