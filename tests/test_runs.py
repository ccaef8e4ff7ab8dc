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


def _experiment(root):
    """An experiment folder by hand: a single trial that finished, a pack of two members (one
    wrote its files, one never started) and sweep.json."""
    exp = root / "exp"
    alone, pack = exp / "rf1-x_00000", exp / "pack2-x_00001"
    for folder, members in ((alone, ["rf1-s0"]), (pack, ["rf5-s0", "rf5-s1"])):
        folder.mkdir(parents=True)
        flats = [{"seed": i, runs.NAME_KEY: m, "meta.experiment": "onelayer"} for i, m in
                 enumerate(members)]  # fmt: skip
        (folder / runs.PARAMS_FILE).write_text(json.dumps({runs.TRIAL_KEY: flats}))
    (alone / runs.REPORTS_FILE).write_text('{"status": "finished", "progress/step": 4}\n')
    design = {"discriminator": {"layers": "conv5", "rf": 5}, "generator": {"kind": "mnist"}}
    runs.write_trial_files(pack / "rf5-s0", design=design, meta={runs.NAME_KEY: "rf5-s0"})
    (exp / runs.SWEEP_FILE).write_text(json.dumps({"flags": {"preset": "smoke"}}))
    return exp


def test_a_pack_is_expanded_into_its_members_by_one_function(tmp_path):
    params = {runs.TRIAL_KEY: [{runs.NAME_KEY: "a"}, {runs.NAME_KEY: "b"}]}
    assert runs.member_folders("s3://b/exp/p", params) == ["s3://b/exp/p/a", "s3://b/exp/p/b"]
    assert runs.member_folders("p", {runs.TRIAL_KEY: [{runs.NAME_KEY: "a"}]}) == ["p"]
    assert runs.member_folders("p", {runs.TRIAL_KEY: {runs.NAME_KEY: "a"}}) == ["p"]
    assert runs.member_folders("p", None) == ["p"]  # unreadable params.json: the folder itself
    exp = _experiment(tmp_path)
    assert [p.relative_to(exp).as_posix() for p in runs.trial_dirs(exp)] == [
        "pack2-x_00001/rf5-s0",
        "pack2-x_00001/rf5-s1",
        "rf1-x_00000",
    ]


def test_walk_trials_reads_every_trial_with_its_design_and_status(tmp_path):
    exp = _experiment(tmp_path)
    folders = runs.walk_trials(exp)
    assert [(f.path.name, f.status, f.config.get("seed")) for f in folders] == [
        ("rf5-s0", "running", 0),
        ("rf5-s1", "running", 1),
        ("rf1-x_00000", "finished", 0),
    ]
    assert folders[0].design["discriminator"] == {"layers": "conv5", "rf": 5}
    assert runs.read_design(folders[0].path) == folders[0].design
    assert folders[1].design is None and runs.read_design(folders[1].path) is None
    assert folders[1].pack_dir == exp / "pack2-x_00001"


def test_the_sweep_file_is_read_in_one_place(tmp_path):
    exp = _experiment(tmp_path)
    assert runs.read_sweep(exp) == {"flags": {"preset": "smoke"}}
    assert runs.sweep_preset(exp) == runs.sweep_preset(f"file://{exp}") == "smoke"
    assert runs.sweep_preset(tmp_path) is None  # no sweep.json
    (exp / runs.SWEEP_FILE).write_text("[1]")
    assert runs.sweep_preset(exp) is None
