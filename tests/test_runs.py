"""Trial-folder reports: appended in storage at once, trimmed when a run starts again."""

import json

import pyarrow.fs as pafs
import pytest

from ganrf import runs


def _steps(path):
    return [json.loads(line)["progress/step"] for line in path.read_text().splitlines()]


def test_reports_are_appended_and_trimmed_for_a_restart(tmp_path):
    fs, file = pafs.LocalFileSystem(), str(tmp_path / "trial" / runs.REPORTS_FILE)
    for step in (2, 4, 6):
        runs.append_report(fs, file, {"progress/step": step, "status": "running"})
    assert _steps(tmp_path / "trial" / runs.REPORTS_FILE) == [2, 4, 6]
    # resumed from step 4's checkpoint: step 6 will be reported again
    runs.append_report(fs, file, {"progress/step": 6, "status": "finished"}, until_step=4)
    assert _steps(tmp_path / "trial" / runs.REPORTS_FILE) == [2, 4, 6]
    folder = runs.read_trial(tmp_path / "trial")
    assert folder.status == "finished" and len(folder.results) == 3
    # restarted with no checkpoint at all: every earlier report goes
    runs.append_report(fs, file, None, until_step=0)
    assert (tmp_path / "trial" / runs.REPORTS_FILE).read_text() == ""


def test_a_trial_folder_holding_only_a_checkpoint_is_not_an_experiment(tmp_path):
    """Early in a sweep a trial's checkpoint (which holds a config.json) can reach storage before
    Tune's params.json: the experiment is still the experiment, and the checkpoint no trial."""
    exp = tmp_path / "exp"
    (exp / "t" / "checkpoint_000000").mkdir(parents=True)
    (exp / "t" / "checkpoint_000000" / runs.CONFIG_FILE).write_text('{"seed": 0}')
    with pytest.raises(FileNotFoundError, match=f"^no trial folders under {exp}; "):
        runs.experiment_dirs(exp)  # no sweep.json, no trial: nothing to read, said so
    (exp / runs.SWEEP_FILE).write_text('{"trials": 2}')
    assert runs.experiment_dirs(exp) == [exp]
    assert runs.experiment_dirs(tmp_path) == [exp]
    assert runs.trial_dirs(exp) == []
