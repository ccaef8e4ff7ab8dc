"""What a sweep prints while it runs: one line per trial change, Tune's table on request."""

import os
import signal
from types import SimpleNamespace

from ganrf.sweep.raytune import progress
from ganrf.sweep.raytune.progress import trial_changes


class Named(SimpleNamespace):  # a Tune trial as the reporter reads it
    def __str__(self):
        return "rf5-d1-conv5-image-s0-a_00000"  # Tune's name: ours, then its id


def named(status, result=None):
    path = "/runs/x/rf5-d1-conv5-image-s0-a_00000"
    return Named(trial_id="a_00000", status=status, last_result=result or {}, path=path)


def test_one_line_per_trial_change():
    seen = {}
    first = {"training_iteration": 1, "progress/step": 1000, "metric/fid": 35.123}
    first |= {"loss/d": 1.2, "loss/g": 0.61, "status": "running"}
    last = first | {"training_iteration": 2, "progress/step": 2000, "status": "diverged"}
    steps = [
        [named("PENDING")],
        [named("RUNNING")],
        [named("RUNNING")],  # nothing new: no line
        [named("RUNNING", first)],
        [named("TERMINATED", last)],
    ]
    lines = [line for trials in steps for line in trial_changes(seen, trials, "12:00:00")]
    assert lines == [
        "12:00:00 rf5-d1-conv5-image-s0 started",
        "12:00:00 rf5-d1-conv5-image-s0 reported step 1000, fid 35.12, loss D 1.2, loss G 0.61",
        "12:00:00 rf5-d1-conv5-image-s0 reported step 2000, fid 35.12, loss D 1.2, loss G 0.61",
        "12:00:00 rf5-d1-conv5-image-s0 diverged",
    ]
    assert trial_changes({}, [named("ERROR")], "12:00:01") == [
        "12:00:01 rf5-d1-conv5-image-s0 errored; its log: "
        "/runs/x/rf5-d1-conv5-image-s0-a_00000/error.txt"
    ]


def test_the_full_table_at_the_end_and_on_sigusr1(monkeypatch, capsys):
    tables = []
    monkeypatch.setattr(progress._Reporter, "report", lambda self, *a: tables.append(a[1]))
    lines = progress.reporter("/runs/x")
    before = signal.getsignal(signal.SIGUSR1)
    try:
        lines.report([named("RUNNING")], False)
        assert tables == []  # no table while it runs, unless asked
        os.kill(os.getpid(), signal.SIGUSR1)
        lines.report([named("RUNNING")], False)
        lines.report([named("RUNNING")], False)  # asked once: one table
        lines.report([named("TERMINATED", {"training_iteration": 1})], True)
    finally:
        signal.signal(signal.SIGUSR1, before)
    assert tables == [False, True]
    assert capsys.readouterr().out.splitlines()[0] == (
        "progress: one line per trial change and the full table at the end (for it now: "
        f"kill -USR1 {os.getpid()})"
    )
    assert lines.should_report([], done=False)  # every step: report() prints only changes
