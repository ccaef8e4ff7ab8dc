"""Run files survive a kill at any moment: a writer appending reports is SIGKILLed at hundreds of
random moments, and after every kill each file parses whole and every report the writer had
acknowledged (``append_report`` returned) is still there. Before run files were written through
a temporary file and a rename, this lost whole histories (truncate, then write)."""

import json
import os
import random
import signal
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from ganrf import runs

KILLS = 200
PAD = "x" * 2000  # a report of a few kB, so a rewrite of the file takes a while to land in


def writer(path: str, start: int, ack_fd: int) -> None:
    """Append reports start, start+1, ... forever, writing each step number to ``ack_fd`` once
    its append returned."""
    fs = pafs.LocalFileSystem()
    step = start
    while True:
        runs.append_report(fs, path, {"progress/step": step, "pad": PAD})
        os.write(ack_fd, f"{step}\n".encode())
        step += 1


def kill_once(path: str, start: int, delay: float) -> tuple[list[int], bool]:
    """Start a writer at ``start``, SIGKILL it after ``delay`` s: (the steps it acknowledged,
    whether it died mid-write, leaving its temporary file)."""
    read_fd, ack_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write until killed
        os.close(read_fd)
        try:
            writer(path, start, ack_fd)
        finally:
            os._exit(1)
    os.close(ack_fd)
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    acked = b""
    while chunk := os.read(read_fd, 65536):
        acked += chunk
    os.close(read_fd)
    folder = os.path.dirname(path)
    mid_write = any(n.endswith(".tmp") for n in os.listdir(folder))
    for n in os.listdir(folder):  # what a kill leaves: a stale temporary file, never read
        if n.endswith(".tmp"):
            os.unlink(os.path.join(folder, n))
    return [int(s) for s in acked.split()], mid_write


def test_reports_survive_sigkill_at_random_moments(tmp_path):
    path = str(tmp_path / "trial" / runs.REPORTS_FILE)
    rng = random.Random(0)
    acknowledged: list[int] = []
    mid_writes = 0
    for _ in range(KILLS):
        start = acknowledged[-1] + 1 if acknowledged else 0
        steps, mid_write = kill_once(path, start, rng.uniform(0.0, 0.01))
        acknowledged += steps
        mid_writes += mid_write
        if not os.path.exists(path):
            assert not acknowledged  # killed before its first report landed
            continue
        lines = Path(path).read_text().splitlines()
        rows = [json.loads(line) for line in lines]  # every line whole: no cut report
        got = [r["progress/step"] for r in rows]
        assert got[: len(acknowledged)] == acknowledged  # nothing acknowledged is lost
        # at most the one report whose append was cut by the kill after landing
        assert len(got) - len(acknowledged) <= 1
        if len(got) > len(acknowledged):
            acknowledged.append(got[-1])  # it landed: the next writer goes on after it
    print(
        f"\n{KILLS} SIGKILLs: {mid_writes} landed mid-write (a temporary file left), "
        f"{len(acknowledged)} reports in the file, none lost, every line whole"
    )
    assert len(acknowledged) > KILLS // 4  # the writers did write between kills
    assert mid_writes > 0  # some kills did land mid-write


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    real = pafs.LocalFileSystem()
    path = str(tmp_path / runs.REPORTS_FILE)
    runs.append_report(real, path, {"progress/step": 1})

    class DiskFullAtRename:
        type_name = "local"

        def __getattr__(self, name):
            return getattr(real, name)

        def move(self, *_):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        runs.append_report(DiskFullAtRename(), path, {"progress/step": 2})
    assert runs.parse_jsonl(Path(path).read_text()) == [{"progress/step": 1}]
    assert os.listdir(tmp_path) == [runs.REPORTS_FILE]
