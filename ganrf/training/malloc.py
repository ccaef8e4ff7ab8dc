"""Keep freed memory in the process on the CPU: glibc's malloc otherwise returns it every step.

A CPU training step allocates and frees tensors of several megabytes (one layer's activations of
D at batch 64 are 64 x 64 x 28 x 28 floats, 12.8 MB). glibc serves blocks that large with a fresh
``mmap`` (or trims them off the heap when they are freed), so every step the kernel maps and
zeroes those pages again: on the 2-core dev machine the laptop preset's rf-1 step took 27 to 59 ms
depending only on the process's memory layout, and 27-29 ms with the settings below (the same
work, the same values). PyTorch's CPU guide says the same and suggests jemalloc or tcmalloc; a
pip install cannot bring those, and glibc's own ``mallopt`` does it.
"""

from __future__ import annotations

import ctypes
import platform

KEEP_BYTES = 2**31 - 1  # mallopt takes a C int: trim only beyond 2 GiB of free heap top

# Each setting once: (glibc's <malloc.h> parameter, its environment variable, the value).
SETTINGS = (
    (-8, "MALLOC_ARENA_MAX", 1),  # M_ARENA_MAX: one arena for every thread
    (-4, "MALLOC_MMAP_MAX_", 0),  # M_MMAP_MAX: no block gets its own mmap
    (-1, "MALLOC_TRIM_THRESHOLD_", KEEP_BYTES),  # M_TRIM_THRESHOLD
)

# The same settings as environment variables, for processes started from now on (Ray's workers):
# glibc reads them at start-up, before any thread has made an arena of its own, which
# mallopt(M_ARENA_MAX) cannot undo (measured: a Tune trial in a fresh worker ran its rf-1 steps
# at 40 ms instead of 29 with mallopt alone). Other C libraries ignore them.
WORKER_ENV = {name: str(value) for _, name, value in SETTINGS}


def keep_freed_memory() -> bool:
    """Serve every allocation from the heap, and keep what is freed (up to 2 GiB) for reuse.

    One arena for the whole process: a Ray Tune trainable runs in a thread, and a thread's own
    arena (64 MB heaps) would still map and unmap step after step. Memory held stays at the
    process's peak, which the training reaches anyway. Returns whether the settings took
    (False off glibc, e.g. macOS or musl: nothing changes there).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return all(libc.mallopt(ctypes.c_int(k), ctypes.c_int(v)) == 1 for k, _, v in SETTINGS)
    except (OSError, AttributeError):
        return False
