"""The monotonic clock and an absolute-deadline sleep, callable from nopython, nogil code.

`clock_gettime` and `clock_nanosleep` (libc) are bound by symbol name (numba
`ExternalFunction`), so the compiled servo loop reads the clock and sleeps without the GIL and
without ctypes pointers baked into the code. Linux only (CLOCK_MONOTONIC = 1,
TIMER_ABSTIME = 1).
"""

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

CLOCK_MONOTONIC = 1
TIMER_ABSTIME = 1
NS_PER_S = 1_000_000_000

# typed Any: these are numba typing objects, called only inside jitted code
_clock_gettime: Any = types.ExternalFunction(
    "clock_gettime", types.int32(types.int32, types.voidptr)
)
_clock_nanosleep: Any = types.ExternalFunction(
    "clock_nanosleep", types.int32(types.int32, types.int32, types.voidptr, types.voidptr)
)


def _data_pointer_typing(typingctx: Any, array: Any) -> Any:
    # the address of an array's first element, as the `struct timespec *` libc expects
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(array)(context, builder, args[0]).data
        return builder.bitcast(data, cgutils.voidptr_t)

    return types.voidptr(array), codegen


def _null_pointer_typing(typingctx: Any) -> Any:
    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return cgutils.voidptr_t(None)

    return types.voidptr(), codegen


_data_pointer: Any = intrinsic(_data_pointer_typing)
_null_pointer: Any = intrinsic(_null_pointer_typing)


@njit("i8(i8[::1])", cache=True, nogil=True)
def monotonic_ns(timespec: npt.NDArray[np.int64]) -> int:
    """CLOCK_MONOTONIC in ns; `timespec` is a 2-slot int64 scratch array (tv_sec, tv_nsec)."""
    _clock_gettime(CLOCK_MONOTONIC, _data_pointer(timespec))
    return int(timespec[0] * NS_PER_S + timespec[1])


@njit("void(i8, i8[::1])", cache=True, nogil=True)
def sleep_until_ns(deadline_ns: int, timespec: npt.NDArray[np.int64]) -> None:
    """Sleep until CLOCK_MONOTONIC reaches `deadline_ns` (returns at once if already past)."""
    timespec[0] = deadline_ns // NS_PER_S
    timespec[1] = deadline_ns % NS_PER_S
    # EINTR (a signal) just ends this wait early; the caller re-reads the clock anyway
    _clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, _data_pointer(timespec), _null_pointer())
