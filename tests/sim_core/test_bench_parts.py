"""The pieces of ``osteon sim bench`` that time the engine inside the compiled 1 kHz loop."""

import numpy as np

from osteon.sim_cli import _force_steps_in_loop, _late_ticks


def test_in_loop_timing_reports_force_before_the_whole_tick_for_every_tool() -> None:
    tools = _force_steps_in_loop(0.3)
    assert len(tools) == 13  # every instrument in assets/instruments
    for name, timing in tools.items():
        force, tick = timing["force_written"], timing["whole_tick"]
        assert 0.0 < force["p50_us"] <= force["p99_us"] <= force["max_us"], name
        # the force goes out before erosion and metrics: never later than the tick's end
        assert force["p50_us"] < tick["p50_us"], name
        assert force["max_us"] < tick["max_us"], name


def test_late_ticks_are_told_apart_from_long_steps() -> None:
    stamps = np.array([0, 1, 2, 5, 6], dtype=np.int64) * 1_000_000  # one 3 ms gap
    steps = np.array([20, 30, 25, 40, 20], dtype=np.int64) * 1_000
    out = _late_ticks(stamps, steps)
    assert out["late_ticks"] == 1
    assert out["step_before_late_tick_max_us"] == 25.0  # the step before the gap was short
