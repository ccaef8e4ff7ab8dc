"""Faults through real Ray Tune: a sweep never loses finished work and never dies of one trial.

Faults are injected with the GANRF_FAULT hook of ganrf/sweep/raytune/trainable.py (off unless
the variable is set).
The driver-kill fault and the bad-input table live in tests/test_sweep.py.
"""

import json
import os

import pandas as pd
import pytest

from tests.test_sweep import results, sweep, trial_dirs

SMOKE = ["--smoke-test", "--set", "schedule.steps=8", "--set", "schedule.eval_every_steps=2"]


def run(tmp_path, name, *extra, fault=None, timeout=240):
    env = dict(os.environ)
    env.pop("GANRF_FAULT", None)
    if fault:
        env["GANRF_FAULT"] = json.dumps(fault)
    return sweep(
        *SMOKE, "--storage-path", str(tmp_path), "--name", name, *extra, env=env, timeout=timeout
    )


def by_rf(exp):
    return {
        json.loads((t / "design.json").read_text())["discriminator"]["rf"]: t
        for t in trial_dirs(exp)
    }


def test_trial_that_raises_once_is_retried_from_its_checkpoint(tmp_path):
    r = run(tmp_path, "flaky", fault={"kind": "raise", "rf": 5, "after_reports": 2, "attempts": 1})
    assert r.returncode == 0, r.stderr[-3000:]
    trial = by_rf(tmp_path / "flaky")[5]
    steps = [x["progress/step"] for x in results(trial)]
    assert steps == [2, 4, 6, 8]  # continued from step 4's checkpoint, nothing repeated
    assert results(trial)[-1]["status"] == "finished"
    table = pd.read_csv(tmp_path / "flaky" / "results.csv")
    assert set(table["trial_status"]) == {"finished"}


def test_trial_that_always_raises_is_errored_and_the_others_finish(tmp_path):
    r = run(
        tmp_path,
        "broken",
        "--max-failures",
        "1",
        fault={"kind": "raise", "rf": 5, "after_reports": 1},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    exp = tmp_path / "broken"
    trials = by_rf(exp)
    assert (trials[5] / "error.txt").exists()
    assert int((trials[5] / ".fault-attempts").read_text()) == 2  # first try + one retry
    table = pd.read_csv(exp / "results.csv").set_index("rf")
    assert table.loc[5, "trial_status"] == "errored" and table.loc[1, "trial_status"] == "finished"
    page = (exp / "report.html").read_text()
    assert "1 errored" in page


def test_divergence_stops_without_retries_or_poisoned_checkpoints(tmp_path):
    r = run(
        tmp_path,
        "nan",
        "--set",
        "optim.lr_d=1e10",
        "--set",
        "optim.lr_g=1e10",
        "--set",
        "loss.kind=hinge",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    exp = tmp_path / "nan"
    for trial in trial_dirs(exp):
        rows = results(trial)
        assert rows[-1]["status"] == "diverged" and rows[-1]["diverged_step"] < 2
        assert not (trial / "error.txt").exists()  # no failure, so no retries burned
        assert not list(trial.glob("checkpoint_*"))  # the poisoned state was never saved
    table = pd.read_csv(exp / "results.csv")
    assert set(table["trial_status"]) == {"diverged"}
    assert "diverged" in (exp / "report.md").read_text()


def test_hung_trial_is_ended_by_its_time_budget(tmp_path):
    r = run(
        tmp_path,
        "hang",
        "--trial-timeout-s",
        "20",
        "--max-failures",
        "1",
        fault={"kind": "hang", "rf": 5, "after_reports": 1},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    exp = tmp_path / "hang"
    trials = by_rf(exp)
    assert json.loads((trials[5] / "timed_out.json").read_text()) == {"timed_out_after_s": 20.0}
    assert results(trials[5])[-1]["status"] == "timed_out"
    table = pd.read_csv(exp / "results.csv").set_index("rf")
    assert (
        table.loc[5, "trial_status"] == "timed_out" and table.loc[1, "trial_status"] == "finished"
    )


@pytest.mark.parametrize("victim", ["tuner.pkl", "experiment_state"])
def test_corrupt_experiment_state_is_a_clear_error(tmp_path, victim):
    r = run(tmp_path, "state")
    assert r.returncode == 0, r.stderr[-3000:]
    exp = tmp_path / "state"
    target = (
        exp / "tuner.pkl" if victim == "tuner.pkl" else next(exp.glob("experiment_state-*.json"))
    )
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 3])
    r = sweep("--resume", "--name", "state", "--storage-path", str(tmp_path))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "truncated or corrupt" in r.stderr and "Traceback" not in r.stderr
