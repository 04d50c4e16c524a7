"""KeepAwake: the CPUs held out of idle sleep while a real-time loop runs, and only then."""

import os
import struct
import threading
import time

import numpy as np
import pytest

from haptics.keep_awake import DMA_LATENCY, KeepAwake, spin_until_stopped


def keep_awake_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("keep-awake-")]


def test_the_spin_sees_a_stop_set_by_another_thread() -> None:
    # if the compiled loop kept the flag in a register it would never end
    stop = np.zeros(1, dtype=np.int64)
    turns: list[int] = []
    spinner = threading.Thread(target=lambda: turns.append(spin_until_stopped(stop)))
    spinner.start()
    time.sleep(0.05)
    stop[0] = 1
    spinner.join(timeout=2.0)
    assert not spinner.is_alive()
    assert turns[0] > 0


def test_pollers_run_one_per_cpu_under_sched_idle_and_end_on_stop() -> None:
    keep = KeepAwake(pollers=True)
    keep.start()
    try:
        threads = keep_awake_threads()
        assert len(threads) == len(os.sched_getaffinity(0))
        deadline = time.monotonic() + 2.0
        policies: set[int] = set()
        while time.monotonic() < deadline and policies != {os.SCHED_IDLE}:
            ids = [t.native_id for t in threads if t.native_id is not None]
            policies = {os.sched_getscheduler(i) for i in ids}
        # SCHED_IDLE: they take only time nobody else wants
        assert policies == {os.SCHED_IDLE}
        assert "SCHED_IDLE polling threads" in keep.note
    finally:
        keep.stop()
    assert keep_awake_threads() == []


def test_the_latency_request_is_held_at_zero_only_while_started() -> None:
    if not os.access(DMA_LATENCY, os.W_OK):
        pytest.skip(f"{DMA_LATENCY} is not writable here")

    def current_us() -> int:
        value: int = struct.unpack("i", DMA_LATENCY.read_bytes()[:4])[0]
        return value

    before = current_us()
    with KeepAwake(pollers=False) as keep:
        assert current_us() == 0
        assert keep.note == "cpu_dma_latency held at 0 us"
        assert keep_awake_threads() == []
    assert current_us() == before
