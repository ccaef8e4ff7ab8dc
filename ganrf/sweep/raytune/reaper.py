"""Leave no Ray process behind a sweep driver that was killed (SIGKILL, the OOM killer).

A local ``ray.init`` starts Ray's processes as the driver's descendants. Killed, the driver
takes the GCS, raylet, dashboard and log monitor with it at once, but Ray 2.60's dashboard agent
and runtime-env agent (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``, children of the raylet,
some 180 MB together) outlive it: each notices the raylet's death, then reports it to the GCS,
which is gone too, and waits out that call's 60 s timeout (``ray._private.process_watcher``:
``report_raylet_error_logs`` -> ``publish_error_to_driver(..., 60)``). Measured here: a sweep
SIGKILLed after its first trial started still had both agents 60 s later, none at 70 s.

:func:`start` runs this module as a small watcher process of its own session (so a signal to
the driver's process group does not reach it) that reads a pipe from the driver and, every
second, notes the driver's descendants (pid and start time, read from ``/proc``). When the pipe
closes (the driver ended, however), it SIGKILLs every one it noted that is still the same
process. After a clean exit Ray has stopped its processes already and there is nothing left to
kill. Linux only (``/proc``); elsewhere nothing is started. No Ray import: it must start fast
and outlive Ray.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict

INTERVAL_S = 1.0
GRACE_S = 2.0  # after a clean exit, Ray's own processes may take a moment to end themselves
_watcher: subprocess.Popen | None = None  # kept: its pipe must stay open while the driver lives


def start() -> None:
    """Start the watcher for this process (once; Linux only)."""
    global _watcher
    if _watcher is not None or not sys.platform.startswith("linux"):
        return
    _watcher = subprocess.Popen(
        [sys.executable, "-m", __name__, str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks since boot) of ``pid``, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
    return int(fields[1]), int(fields[19])  # fields 4 and 22


def descendants(root: int) -> dict[int, int]:
    """Every living descendant of ``root``, with its start time."""
    table = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := _stat(int(name))) is not None:
            table[int(name)] = st
    children = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    out: dict[int, int] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out[child] = table[child][1]
                todo.append(child)
    return out


def watch(
    driver: int, fd: int = 0, interval: float = INTERVAL_S, grace: float = GRACE_S
) -> list[int]:
    """Note ``driver``'s descendants until ``fd`` reaches its end, then, ``grace`` seconds
    later, SIGKILL those still alive (the same pid and start time); the pids it killed."""
    seen: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([fd], [], [], interval)
        seen.update(descendants(driver))
        seen.pop(os.getpid(), None)
        if ready and not os.read(fd, 4096):
            break
    time.sleep(grace)
    killed = []
    for pid, started in seen.items():
        st = _stat(pid)
        if st is not None and st[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except OSError:
                pass
    return killed


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    watch(int(sys.argv[1]))
