"""The reaper (ganrf.sweep.raytune.reaper) kills what a driver started and left behind, and
nothing else; tests/test_sweep.py kills a real sweep's driver."""

import contextlib
import os
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def until(get, ok, timeout: float = 10.0):
    """``get()`` once ``ok`` of it holds (polled), else its last value."""
    deadline = time.time() + timeout
    while not ok(value := get()) and time.time() < deadline:
        time.sleep(0.05)
    return value


def running(pid: int) -> bool:
    """``pid`` is a process that has not ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_reaper_kills_the_drivers_descendants_once_the_pipe_closes():
    from ganrf.sweep.raytune import reaper

    # a "driver" whose child starts a grandchild and exits: the grandchild is re-parented (as
    # Ray's agents are when the raylet dies), so only a note taken earlier can find it
    driver = subprocess.Popen(["bash", "-c", "sleep 300 & bash -c 'sleep 301 & sleep 1'; wait"])
    bystander = subprocess.Popen(["sleep", "302"])
    r, w = os.pipe()
    killed: list[int] = []
    watcher = threading.Thread(
        target=lambda: killed.extend(reaper.watch(driver.pid, r, interval=0.2, grace=0))
    )
    watcher.start()
    noted: dict[int, int] = {}
    try:
        noted = until(lambda: reaper.descendants(driver.pid), lambda d: len(d) >= 3)
        # sleep 300, the inner bash, sleep 301 (and sleep 1); then the inner bash ends, and
        # sleep 301 is no longer a descendant
        assert until(lambda: reaper.descendants(driver.pid), lambda d: len(d) == 1)
        os.close(w)  # the driver "ends"
        watcher.join(10)
        assert not watcher.is_alive()
        assert until(lambda: {p for p in noted if running(p)}, lambda a: not a) == set()
        assert len(killed) == 2  # both sleeps, wherever they were
        assert bystander.poll() is None  # not a descendant: spared
    finally:
        if watcher.is_alive():
            os.close(w)
            watcher.join(10)
        for p in (driver, bystander):
            p.kill()
            p.wait()
        for pid, started in noted.items():  # what a failure left: the same processes only
            if (reaper._stat(pid) or (0, None))[1] == started:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
        os.close(r)
