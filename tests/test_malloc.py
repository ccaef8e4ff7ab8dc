import os
import platform
import subprocess
import sys

import pytest

# Run in a fresh interpreter: malloc's settings are process-wide. mallinfo2 counts the bytes
# malloc has mmapped (hblkhd) and the free bytes it keeps in its heaps (fordblks).
PROBE = """
import ctypes, sys
from ganrf.training.malloc import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
took = keep_freed_memory() if sys.argv[1] == "keep" else None
size = 64 << 20  # 64 MiB, like a batch-256 activation of D
p = libc.malloc(size)
mapped = libc.mallinfo2().hblkhd
libc.free(p)
print(took, mapped >= size, libc.mallinfo2().fordblks >= size)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_keep_freed_memory_serves_big_blocks_from_the_heap_and_keeps_them():
    def probe(mode: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    # glibc's default: a big block is its own mmap, unmapped again when freed (each step
    # page-faults it anew); with the settings it comes from the heap and stays there.
    assert probe("default") == "None True False"
    assert probe("keep") == "True False True"


def test_ray_workers_start_with_the_heap_settings(local_ray):
    # ganrf.training.malloc: a trial's CPU steps keep freed memory in one heap; the worker gets the
    # settings in its environment, which glibc reads before any thread makes its own arena.
    @local_ray.remote
    def env() -> dict:
        return {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}

    assert local_ray.get(env.remote()) == {
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_MAX_": "0",
        "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1),
    }
