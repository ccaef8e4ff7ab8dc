"""A trial run through Tune and the same trial run by `ganrf train` agree, step for step."""

import json
import subprocess
import sys

import pytest

from tests.test_sweep import results, sweep, trial_dirs

COMPARED = ("loss/d", "loss/g", "metric/fid", "metric/kid_mean", "metric/precision")


def test_tune_trial_and_ganrf_train_agree(tmp_path):
    """Two trials one after another in a reused Ray worker, a few hundred steps each; the
    second reuses the first's process, which once made the same seed give FID 37 or 48."""
    run = sweep(
        *("--smoke-test", "--rfs", "5", "--seeds", "2", "--max-concurrent", "1"),
        *("--set", "schedule.steps=240", "--set", "schedule.eval_every_steps=80"),
        *("--storage-path", str(tmp_path), "--name", "repro"),
        timeout=400,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for trial in trial_dirs(tmp_path / "repro"):
        config = json.loads((trial / "config.json").read_text())
        assert config["device"] == "cpu" and config["threads"] >= 1  # both fixed in the trial
        out = tmp_path / f"cli-{trial.name}"
        cli = subprocess.run(
            [sys.executable, "-m", "ganrf", "train", "--config", str(trial / "config.json")]
            + ["--out", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert cli.returncode == 0, cli.stderr[-2000:]
        tune_rows = results(trial)
        cli_rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["progress/step"] for r in tune_rows] == [80, 160, 240]
        assert [r["progress/step"] for r in cli_rows] == [80, 160, 240]
        for a, b in zip(tune_rows, cli_rows):
            for key in COMPARED:
                assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), (trial.name, key)
