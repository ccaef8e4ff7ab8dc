"""``ganrf ls``: a killed sweep says how many of its trials never started, and how to resume."""

import json
import os
import time

from ganrf.cli import main as ganrf_main


def _trial(exp, name, statuses):
    d = exp / name
    d.mkdir(parents=True)
    flat = {"data.dataset": "synthetic", "d.layers": "conv1", "seed": 0}
    (d / "params.json").write_text(json.dumps({"trial": flat}))
    rows = [{"progress/step": 2 * i, "status": s} for i, s in enumerate(statuses, 1)]
    (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_ls_on_a_killed_sweep_counts_the_trials_never_started(tmp_path, capsys):
    store = tmp_path / "runs"
    exp = store / "mnist_rf-laptop-1"
    _trial(exp, "rf1-s0", ["running", "finished"])
    _trial(exp, "rf1-s1", ["running", "finished"])
    _trial(exp, "rf3-s0", ["running"])  # killed mid-trial
    sweep = exp / "sweep.json"  # the sweep planned 8 trials; 5 never got a folder
    sweep.write_text(json.dumps({"resources": {}, "trials": 8, "flags": {"preset": "laptop"}}))
    os.utime(sweep, (1_700_000_000, 1_700_000_000))
    done = store / "mine"  # a finished sweep under a name of one's own: no hint
    _trial(done, "rf5-s0", ["finished"])
    (done / "sweep.json").write_text(json.dumps({"resources": {}, "trials": 1, "flags": {}}))
    os.utime(done / "sweep.json", (1_700_000_060, 1_700_000_060))

    assert ganrf_main(["ls", str(store)]) == 0
    started = [time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) for t in (1.7e9, 1.7e9 + 60)]
    assert capsys.readouterr().out.splitlines() == [
        "experiment         preset  trials  finished  diverged  running  errored  timed_out  "
        "not_started  started           page",
        f"mnist_rf-laptop-1  laptop  8       2         0         1        0        0          "
        f"5            {started[0]}  -",
        f"mine               -       1       1         0         0        0        0          "
        f"0            {started[1]}  -",
        f"mnist_rf-laptop-1: 5 never started and 1 unfinished of its 8 trials; unless it is "
        f"still running, continue it with: python sweeps/mnist_rf.py --resume --name "
        f"mnist_rf-laptop-1 --storage-path {store}",
    ]


def test_ls_names_the_recorded_script_and_start_under_any_name(tmp_path, capsys):
    # a sweep under a name of one's own, killed: its hint names the script sweep.json recorded
    # (no "sweeps/SCRIPT.py"), and "started" is the start it recorded, not the file's last write
    store = tmp_path / "runs"
    exp = store / "killme"
    _trial(exp, "rf3-s0", ["running"])
    sweep = {"resources": {}, "trials": 2, "flags": {}, "script": "sweeps/celeba_rf.py"}
    (exp / "sweep.json").write_text(json.dumps({**sweep, "started": 1_600_000_000}))
    os.utime(exp / "sweep.json", (1_700_000_000, 1_700_000_000))
    assert ganrf_main(["ls", str(store)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert time.strftime("%Y-%m-%d %H:%M", time.localtime(1.6e9)) in out[1]
    assert out[-1] == (
        "killme: 1 never started and 1 unfinished of its 2 trials; unless it is still running, "
        f"continue it with: python sweeps/celeba_rf.py --resume --name killme --storage-path {store}"
    )


def test_the_sweep_script_is_recorded_as_the_readme_runs_it():
    from ganrf.sweep.raytune.tune import sweep_script

    assert sweep_script("/home/me/gan_rf/sweeps/photo_rf.py") == "sweeps/photo_rf.py"
    assert sweep_script("sweeps/mnist_rf.py") == "sweeps/mnist_rf.py"
    assert sweep_script("/usr/bin/pytest") == "/usr/bin/pytest"
