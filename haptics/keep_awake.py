"""Keep the CPUs out of idle sleep while a haptic loop runs.

A loop thread that sleeps to each 1 ms deadline is woken by a timer interrupt. When its CPU
has gone idle in between, the wake-up first has to bring that CPU back: out of a deep C-state
on a physical machine (tens to hundreds of µs), or, in a virtual machine without a cpuidle
driver, back from a `hlt` that handed the virtual CPU to the host, which may run something
else first. On this project's 2-core VM a loop that does nothing at all, on an idle machine,
wakes more than 3 ms late a few times in every 30 s for that reason (`osteon sim bench`,
`idle_machine_reference`).

Two standard remedies, both only for the life of the loop:
- hold `/dev/cpu_dma_latency` at 0 µs (the kernel's PM QoS request; what `cyclictest` does):
  a cpuidle driver then picks only the shallowest idle state;
- where no cpuidle driver governs idle (no request can reach the plain `hlt`; the kernel's
  own answer for KVM guests is the `haltpoll` driver), one polling thread per CPU under
  SCHED_IDLE: it runs only when nothing else wants that CPU, so it takes no time from the
  engine, the view or the shell, and the CPU never halts. It costs power: the CPUs stay busy
  for as long as the loop runs.
"""

import os
import platform
import struct
import threading
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from llvmlite import binding, ir
from numba import njit, types
from numba.extending import intrinsic

DMA_LATENCY = Path("/dev/cpu_dma_latency")
CPUIDLE_DRIVER = Path("/sys/devices/system/cpu/cpuidle/current_driver")

# the spin-wait hint: lets a sibling hyperthread run and saves power; the memory clobber makes
# the asm a compiler barrier too, so the stop flag is re-read every turn
_RELAX_ASM = {"x86_64": "pause", "aarch64": "yield"}.get(platform.machine(), "")
binding.initialize_native_asmparser()  # numba does not set one up; inline asm needs it


def _cpu_relax_typing(typingctx: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        builder.asm(ir.FunctionType(ir.VoidType(), []), _RELAX_ASM, "~{memory}", [], True)
        return context.get_dummy_value()

    return types.void(), codegen


_cpu_relax: Any = intrinsic(_cpu_relax_typing)


@njit("i8(i8[::1])", cache=True, nogil=True)
def spin_until_stopped(stop: npt.NDArray[np.int64]) -> int:
    """Spin, without the GIL, until `stop[0]` is non-zero; returns the number of turns."""
    turns = 0
    while stop[0] == 0:
        _cpu_relax()
        turns += 1
    return turns


def cpuidle_driver() -> str:
    """The kernel's cpuidle driver ("none" when idle is a plain halt), "" if unknown."""
    try:
        return CPUIDLE_DRIVER.read_text(encoding="ascii").strip()
    except OSError:
        return ""


class KeepAwake:
    """While started: `/dev/cpu_dma_latency` held at 0, and, where no cpuidle driver governs
    idle (or `pollers=True`), one SCHED_IDLE polling thread per CPU this process may use.

    `note` says what was done (for the bench and the session log); nothing here fails the
    loop: a machine that refuses both runs the loop as before.
    """

    def __init__(self, *, pollers: bool | None = None) -> None:
        self.pollers = pollers if pollers is not None else cpuidle_driver() in ("", "none")
        self._stop = np.zeros(1, dtype=np.int64)
        self._threads: list[threading.Thread] = []
        self._latency_file: BinaryIO | None = None
        self.note = "not started"

    def start(self) -> None:
        if self._threads or self._latency_file is not None:
            raise RuntimeError("KeepAwake is already started")
        parts = [self._hold_latency()]
        if self.pollers:
            spin_until_stopped(np.ones(1, dtype=np.int64))  # compile or load first: returns at once
            self._stop[0] = 0
            for cpu in sorted(os.sched_getaffinity(0)):
                thread = threading.Thread(
                    target=self._poll, args=(cpu,), name=f"keep-awake-{cpu}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            parts.append(f"{len(self._threads)} SCHED_IDLE polling threads")
        self.note = "; ".join(parts)

    def _hold_latency(self) -> str:
        try:
            # the request lasts as long as the file stays open
            self._latency_file = DMA_LATENCY.open("wb", buffering=0)
            self._latency_file.write(struct.pack("i", 0))
        except OSError as exc:
            self._latency_file = None
            return f"cpu_dma_latency not held ({exc.strerror or exc})"
        return "cpu_dma_latency held at 0 us"

    def _poll(self, cpu: int) -> None:
        try:
            os.sched_setaffinity(0, {cpu})
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            return  # an ordinary-priority spinner would take time from real work: none at all
        spin_until_stopped(self._stop)

    def stop(self) -> None:
        self._stop[0] = 1
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads.clear()
        if self._latency_file is not None:
            self._latency_file.close()
            self._latency_file = None

    def __enter__(self) -> "KeepAwake":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
