"""Sweeps through real Ray Tune (smoke preset, synthetic digits), and bad input before Ray."""

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "sweeps" / "mnist_rf.py"


def sweep(*args, timeout=240, **kw):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        **kw,
    )


def trial_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in exp.iterdir() if (p / "params.json").exists())


def results(trial: Path) -> list[dict]:
    """The trial's reports, as the trainable writes them to storage at each report."""
    from ganrf.runs import read_trial

    return read_trial(trial).results


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    store = tmp_path_factory.mktemp("runs")
    run = sweep(*SMOKE_START, "--storage-path", str(store), "--name", "smoke")
    assert run.returncode == 0, run.stderr[-3000:]
    return store, run


# The smoke preset's own grid, spelled out, so that --resume has recorded flags to compare.
SMOKE_START = ["--smoke-test", "--rfs", "1,5", "--seeds", "1", "--set", "eval.grid=16"]


def test_smoke_sweep_end_to_end(smoke):
    store, run = smoke
    exp = store / "smoke"
    table = pd.read_csv(exp / "results.csv")
    assert sorted(table["rf"]) == [1, 5]  # the smoke grid: onelayer at rf 1 and 5, one seed
    assert set(table["trial_status"]) == {"finished"}
    assert set(table["decision_rf"]) == {28}
    assert table["metric/fid"].notna().all() and table["time/epoch_s"].notna().all()
    for trial in trial_dirs(exp):
        assert json.loads((trial / "config.json").read_text())["data.dataset"] == "synthetic"
        assert json.loads((trial / "design.json").read_text())["discriminator"]["rf"] in (1, 5)
        assert list((trial / "samples").glob("*.png")) and list((trial / "erf").glob("*.png"))
        rows = results(trial)
        assert [r["progress/step"] for r in rows] == [2, 4]
        assert {"loss/d", "metric/fid", "time/epoch_s", "status"} <= set(rows[-1])
        assert list(trial.glob("checkpoint_*"))
        assert not list(trial.glob("events.out.tfevents.*"))  # no --tracker: no TensorBoard
    assert (exp / "report.html").exists() and (exp / "report.md").exists()
    assert f"results: {exp / 'results.csv'}" in run.stdout


def processes_under(folder: Path) -> list[str]:
    """The command lines of live processes that name ``folder`` (Ray's, started with
    RAY_TMPDIR there, carry its session folder)."""
    out = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in cmd:
            out.append(cmd)
    return out


def test_sigterm_stops_the_sweep_as_ctrl_c_and_leaves_no_process(tmp_path):
    """SIGTERM (kill, a batch system's limit) once a trial has reported: the sweep ends within
    seconds without native stack traces, no Ray process is left, and --resume finishes it."""
    import tempfile

    ray_tmp = Path(tempfile.mkdtemp(prefix="rt-"))  # short: Ray's socket paths have a limit
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    args = ["--smoke-test", "--rfs", "1", "--seeds", "1", "--storage-path", str(tmp_path)]
    args += ["--name", "termed", "--set", "schedule.steps=200", "--set", "eval.grid=16"]
    args += ["--set", "schedule.eval_every_steps=40"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as err_file:  # a file: a full pipe would block the sweep
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
    exp = tmp_path / "termed"
    deadline = time.time() + 180
    while time.time() < deadline:
        trials = trial_dirs(exp) if exp.exists() else []
        if trials and results(trials[0]):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"the sweep never reported: {log.read_text()[-2000:]}")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=90)
    err = log.read_text()
    assert "Stack trace" not in err and "*** SIG" not in err, err[-3000:]
    assert "SIGTERM: stopping the sweep as on Ctrl-C" in err
    for _ in range(50):  # Ray's processes end with its shutdown, give them a moment
        if not processes_under(ray_tmp):
            break
        time.sleep(0.2)
    assert processes_under(ray_tmp) == []
    (trial,) = trial_dirs(exp)
    assert results(trial)[-1].get("status") != "finished"  # it was stopped mid-trial
    run = sweep("--resume", "--name", "termed", "--storage-path", str(tmp_path), env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert results(trial)[-1]["status"] == "finished" and results(trial)[-1]["progress/step"] == 200


def test_same_name_without_resume_is_refused(smoke):
    store, _ = smoke
    state = sorted((store / "smoke").glob("experiment_state-*.json"))
    before = [p.stat().st_mtime_ns for p in state]
    run = sweep("--smoke-test", "--storage-path", str(store), "--name", "smoke")
    assert run.returncode == 2
    assert "already exists" in run.stderr and "--resume --name smoke" in run.stderr
    assert [p.stat().st_mtime_ns for p in state] == before  # nothing overwritten


def test_resume_after_the_driver_is_killed(tmp_path):
    """SIGKILL the driver mid-sweep; --resume finishes it without redoing finished trials, and
    the running trial continues from its checkpoint, not from step 0."""
    args = [
        "--smoke-test",
        "--storage-path",
        str(tmp_path),
        "--name",
        "killed",
        "--max-concurrent",
        "1",
        "--set",
        "schedule.steps=40",
        "--set",
        "schedule.eval_every_steps=8",
    ]
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    exp = tmp_path / "killed"
    deadline = time.time() + 180
    try:
        while time.time() < deadline:  # kill once one trial finished and the other checkpointed
            trials = trial_dirs(exp) if exp.exists() else []
            done = [t for t in trials if any(r.get("status") == "finished" for r in results(t))]
            mid = [
                t
                for t in trials
                if t not in done and list(t.glob("checkpoint_*")) and len(results(t)) >= 1
            ]
            if done and mid:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the sweep never reached the point to kill it")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished_rows = len(results(done[0]))
    steps_before = [r["progress/step"] for r in results(mid[0])]
    assert steps_before[-1] < 40

    run = sweep("--resume", "--name", "killed", "--storage-path", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(results(done[0])) == finished_rows  # the finished trial was not rerun
    steps = [r["progress/step"] for r in results(mid[0])]
    assert steps[-1] == 40 and results(mid[0])[-1]["status"] == "finished"
    # continued from its checkpoint: the steps already reported are not reported again
    assert steps == sorted(set(steps)) and steps[: len(steps_before)] == steps_before
    table = pd.read_csv(exp / "results.csv")
    assert len(table) == 2 and set(table["trial_status"]) == {"finished"}


# -- bad input: one sentence, exit 2, before Ray starts --------------------------------------


def _load_script():
    spec = importlib.util.spec_from_file_location("mnist_rf_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _NoRay(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):  # import machinery inspects every module's dunders
            raise AttributeError(name)
        raise AssertionError(
            f"Ray was reached (ganrf.sweep.raytune.tune.{name}) for input that should fail first"
        )


BAD_INPUT = [
    (["--experiments", "threelayers"], "unknown experiment 'threelayers'"),
    (["--heads", "global"], "unknown head 'global'"),
    (["--rfs", "29"], "larger than the 28px input"),
    (["--rfs", "three"], "--rfs takes comma-separated whole numbers"),
    (["--rfs", ","], "--rfs is empty"),
    (["--rfs", "1,,5"], "--rfs takes comma-separated whole numbers (e.g. 1,3,5), got '1,,5'"),
    (
        ["--experiments", "same_depth", "--rfs", "3", "--depths", "3"],
        "rf 3, depth 3: no stride1 design",
    ),
    (["--experiments", "onelayer", "--depths", "2"], "has depth 1, but --depths is 2"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--max-concurrent", "0"], "--max-concurrent must be positive"),
    (["--set", "schedule.batch_size=0"], "schedule.batch_size must be at least 1"),
    (["--set", "optim.lr=1"], "unknown config key 'optim.lr'"),
    (["--set", "loss.kind"], "must be KEY=VALUE"),
    (["--set", "data.dataset=cifar"], "data.dataset must be one of mnist"),
    (["--set", "loss.kind=lsgan"], "loss.kind must be one of ns, wgan-gp, hinge"),
    (["--set", "data.image_size=0"], "data.image_size must be a positive number of pixels"),
    (["--set", "schedule.steps=-5"], "schedule.steps must be 0 (use epochs) or positive"),
    (["--trial-timeout-s", "-1"], "--trial-timeout-s must be positive"),
    (
        ["--family", "stride2", "--experiments", "same_depth", "--depths", "6", "--rfs", "13"],
        "the deepest is 5",
    ),
    (["--resume"], "--resume needs --name"),
    (["--resume", "--name", "x", "--dry-run"], "--dry-run does not apply to --resume; drop it"),
]


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_input_fails_before_ray(args, message, tmp_path, monkeypatch, capsys):
    mod = _load_script()
    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    code = mod.main(
        ["--smoke-test", "--storage-path", str(tmp_path / "runs"), *args],
        prog="mnist_rf.py",
        doc="",
        dataset="mnist",
        presets=mod.PRESETS,
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1  # one sentence, no traceback
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--loss", "lsgan"], "invalid choice: 'lsgan'"),
        (["--norm", "layer"], "invalid choice: 'layer'"),
        (["--family", "stride3"], "invalid choice: 'stride3'"),
        (["--preset", "huge"], "invalid choice: 'huge'"),
        (["--name", "../escape"], "'../escape' is not an experiment name"),
        (["--name", "a/b", "--resume"], "'a/b' is not an experiment name"),
        (["--name", ".hidden"], "not starting with '.'"),
    ],
)
def test_unknown_names_refused_by_the_parser(args, message, capsys):
    mod = _load_script()
    with pytest.raises(SystemExit) as exit_:
        mod.main(args, prog="mnist_rf.py", doc="", dataset="mnist", presets=mod.PRESETS)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_missing_data_without_network_fails_before_ray(tmp_path, monkeypatch, capsys):
    mod = _load_script()
    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    code = mod.main(
        [
            "--data-root",
            str(tmp_path / "nodata"),
            "--set",
            "data.download=false",
            "--storage-path",
            str(tmp_path / "runs"),
        ],
        prog="mnist_rf.py",
        doc="",
        dataset="mnist",
        presets=mod.PRESETS,
    )
    err = capsys.readouterr().err
    assert code == 2 and "MNIST files train-images-idx3-ubyte, " in err
    assert f"(--data-root {tmp_path / 'nodata'}: pass --data-root DIR where the data is)" in err
    assert not (tmp_path / "runs").exists()  # nothing made for a sweep that did not start


def test_unwritable_storage_path(tmp_path, monkeypatch, capsys):
    mod = _load_script()
    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = mod.main(
        ["--smoke-test", "--storage-path", str(blocker / "runs")],
        prog="mnist_rf.py",
        doc="",
        dataset="mnist",
        presets=mod.PRESETS,
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot write to storage path" in err
    assert blocker.read_text() == "not a folder"


def test_dry_run_prints_grid_without_ray(monkeypatch, capsys):
    mod = _load_script()
    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    code = mod.main(
        ["--preset", "full", "--dry-run"],
        prog="mnist_rf.py",
        doc="",
        dataset="mnist",
        presets=mod.PRESETS,
    )
    out = capsys.readouterr()
    assert code == 0 and "trials" in out.err
    lines = out.out.strip().splitlines()
    assert len(lines) % 3 == 0 and all("seed=" in x for x in lines)  # three seeds per point
    assert "\n  schedule.epochs=50\n" in out.err  # the full preset counts epochs


def test_dry_run_shows_only_the_keys_in_force(monkeypatch, capsys):
    """A step-counted run shows no epoch count, a machine without CUDA no CUDA-only key."""
    import torch

    mod = _load_script()
    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert mod.main(["--dry-run"], prog="", doc="", dataset="mnist", presets=mod.PRESETS) == 0
    err = capsys.readouterr().err  # the laptop preset counts steps
    assert "schedule.epochs=" not in err and "schedule.eval_every=" not in err
    assert "cuda_graph" not in err.split("(not in force")[0]
    assert "\n  schedule.steps=3000\n" in err
    assert err.endswith(
        "\n  (not in force, so not shown: schedule.epochs, schedule.eval_every, cuda_graph)\n"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    argv = ["--dry-run", "--pack", "1"]  # (auto would size packs to a GPU this has not)
    assert mod.main(argv, prog="", doc="", dataset="mnist", presets=mod.PRESETS) == 0
    assert "\n  cuda_graph=True\n" in capsys.readouterr().err


def test_resuming_a_missing_experiment_points_to_ganrf_ls(tmp_path, capsys):
    mod = _load_script()
    args = ["--resume", "--name", "nosuch", "--storage-path", str(tmp_path)]
    assert mod.main(args, prog="mnist_rf.py", doc="", dataset="mnist", presets=mod.PRESETS) == 2
    err = capsys.readouterr().err
    assert f"no experiment 'nosuch' to resume in {tmp_path}; `ganrf ls {tmp_path}` lists" in err


@pytest.mark.parametrize("script, size", [("celeba_rf.py", 64), ("imagenet_rf.py", 128)])
def test_rgb_sweeps_smoke_on_cpu(tmp_path, script, size):
    from PIL import Image

    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "sweeps" / script),
            "--smoke-test",
            "--storage-path",
            str(tmp_path),
            "--name",
            "rgb",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = pd.read_csv(tmp_path / "rgb" / "results.csv")
    assert sorted(table["rf"]) == [1, 5] and set(table["trial_status"]) == {"finished"}
    for trial in trial_dirs(tmp_path / "rgb"):
        assert json.loads((trial / "config.json").read_text())["data.image_size"] == size
        (grid,) = sorted((trial / "samples").glob("*.png"))[-1:]
        with Image.open(grid) as im:
            assert im.mode == "RGB" and im.width > size  # a grid of RGB size x size samples


def test_photo_sweep_smoke_needs_no_data_and_shows_each_rf_beside_real_crops(tmp_path):
    """sweeps/photo_rf.py on a machine with no data and no network: real crops of a shipped
    photograph, SWD per level in the results, and the page's rows of samples per rf."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "sweeps" / "photo_rf.py"), "--smoke-test"]
        + [
            "--storage-path",
            str(tmp_path),
            "--name",
            "photo",
            "--data-root",
            str(tmp_path / "none"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (tmp_path / "none").exists()  # nothing read or written there
    table = pd.read_csv(tmp_path / "photo" / "results.csv")
    assert sorted(table["rf"]) == [4, 25] and set(table["trial_status"]) == {"finished"}
    assert set(table["dataset"]) == {"photo"} and set(table["metric/feature_net"]) == {"none"}
    assert table[["metric/swd", "metric/swd_l0", "metric/swd_l1"]].notna().all().all()
    assert table[["metric/fid", "metric/swd_l2"]].isna().all().all()  # no network; 32 px: 2 levels
    page = (tmp_path / "photo" / "report.html").read_text()
    assert "photo: what each rf reproduces" in page
    assert page.count('class="rf-row"') == 2 and page.count("real photo</figcaption>") == 2
    assert "a few hundred crops of a real photograph" in page
    assert "four questions" not in page  # MNIST's: not claimed unanswered by photo trials


def test_object_store_storage_path(tmp_path):
    """A URI storage path (file:// here; s3:// and gs:// on a cluster) goes through pyarrow like
    Tune's own storage: sweep, refusal of a reused name, resume and analysis all work on it."""
    uri = f"file://{tmp_path}/store"
    run = sweep("--smoke-test", "--storage-path", uri, "--name", "obj")
    assert run.returncode == 0, run.stderr[-3000:]
    exp = tmp_path / "store" / "obj"
    assert (
        (exp / "results.csv").exists()
        and (exp / "report.html").exists()
        and (exp / "sweep.json").exists()
    )
    assert f"report:  {uri}/obj/report.html" in run.stdout
    again = sweep("--smoke-test", "--storage-path", uri, "--name", "obj")
    assert again.returncode == 2 and "--resume --name obj" in again.stderr
    resumed = sweep("--resume", "--storage-path", uri, "--name", "obj")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    from analysis.load import final_rows, load_experiment

    final = final_rows(load_experiment(f"{uri}/obj"))
    assert sorted(final["rf"]) == [1, 5] and set(final["trial_status"]) == {"finished"}
    assert final["artifact/samples"].notna().all()


def test_set_is_declared_and_parsed_in_one_place():
    """`ganrf train`, the bench and the sweep scripts take --set from config.add_set_flag and
    read it with config.parse_set."""
    from ganrf.config import ConfigError, parse_set
    from ganrf.sweep.flags import defining_flags

    declared = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "ganrf").rglob("*.py")
        if re.search(r'add_argument\(\s*"--set"', p.read_text())
    )
    assert declared == ["ganrf/config.py"]
    assert parse_set([" optim.lr_d = 2e-4", "d.head=image", "d.head=patch", "eval.x=a=b"]) == {
        "optim.lr_d": "2e-4",
        "d.head": "patch",  # a later item wins
        "eval.x": "a=b",
    }
    for bad in ("loss.kind", "=hinge"):
        with pytest.raises(ConfigError, match="must be KEY=VALUE"):
            parse_set([bad])
    mod = _load_script()
    parser = mod.main.__globals__["build_parser"]("p", "", mod.PRESETS, "laptop")
    args = parser.parse_args(["--set", "d.width=2", "--set", "d.width=3"])
    assert defining_flags(args, "laptop")["set"] == {"d.width": "3"}


def test_preset_has_no_dead_max_concurrent():
    from dataclasses import fields

    from ganrf.sweep.presets import Preset

    assert [f.name for f in fields(Preset)] == ["base", "space", "about"]


def _script(name):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), ROOT / "sweeps" / name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RGB = {"data.channels": 3, "g.kind": "dcgan"}
TINY = {"schedule.batch_size": 16, "schedule.steps": 4, "schedule.eval_every_steps": 2}
DCGAN = {"schedule.batch_size": 128, "optim.lr_g": 2e-4, "optim.lr_d": 2e-4, "optim.beta1": 0.5}


@pytest.mark.parametrize(
    "script, smoke, full, full_rfs",
    [
        (
            "celeba_rf.py",
            {"data.image_size": 64, "data.synthetic_size": 128, "d.width": 0.125},
            {"data.dataset": "celeba", "data.image_size": 64, "schedule.epochs": 20},
            (1, 3, 5, 9, 17, 33),
        ),
        (
            "imagenet_rf.py",
            {"data.image_size": 128, "data.synthetic_size": 64, "d.width": 0.0625},
            {"data.dataset": "imagenet", "data.image_size": 128, "schedule.epochs": 10},
            (1, 3, 5, 9, 17, 33, 65),
        ),
    ],
)
def test_rgb_scripts_share_one_preset_shape(script, smoke, full, full_rfs):
    from ganrf.sweep.experiments import QUESTIONS
    from ganrf.sweep.presets import Preset, rgb_presets

    mod = _script(script)
    assert mod.rgb_presets is rgb_presets and set(mod.PRESETS) == {"smoke", "full"}
    assert "Preset(" not in (ROOT / "sweeps" / script).read_text()  # no hand-copied presets
    s, f = mod.PRESETS["smoke"], mod.PRESETS["full"]
    assert isinstance(s, Preset) and isinstance(f, Preset)
    size = smoke["data.image_size"]
    assert s.about == (
        f"seconds on a CPU: synthetic {size}x{size} RGB images, tiny models, no Inception metrics"
    )
    assert s.base.items() >= {**RGB, **TINY, **smoke, "data.dataset": "synthetic"}.items()
    assert s.base["g.width"] == 0.0625 and s.base["eval.metrics"] is False
    assert f.base.items() >= {**RGB, **DCGAN, **full, "eval.samples": 10_000}.items()
    assert (s.space.experiments, s.space.rfs, s.space.image_size) == (("onelayer",), (1, 5), size)
    assert (f.space.experiments, f.space.seeds, f.space.in_channels) == (
        QUESTIONS,
        3,
        3,
    )  # no control: its verdicts are MNIST's
    assert f.space.defaults["onelayer"]["rfs"] == full_rfs
    assert ("data.workers" in f.base) == (script == "imagenet_rf.py")  # ImageNet streams


@pytest.mark.parametrize(
    "script, layout, message",
    [
        (
            "imagenet_rf.py",
            "empty",
            "is not a class-folder tree of images (it has no class folders)",
        ),
        ("imagenet_rf.py", "text", "is not a class-folder tree of images (its class folders hold"),
        ("imagenet_rf.py", "missing", "is not a class-folder tree of images (it does not exist)"),
        ("celeba_rf.py", "empty", "CelebA is not in"),  # download on, and it fails
        ("celeba_rf.py", "text", "no CelebA images under"),  # --set data.download=false
    ],
)
def test_rgb_data_is_checked_before_ray(script, layout, message, tmp_path, monkeypatch, capsys):
    """The issue's imagenet sweep over an empty folder started Ray, printed a traceback per trial
    and exited 0: now one sentence, exit 2, before Ray."""
    import torchvision

    def offline(self):
        raise RuntimeError("no network in tests")

    monkeypatch.setattr(torchvision.datasets.CelebA, "download", offline)
    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    root = tmp_path / "data"
    if layout != "missing":
        root.mkdir()
    if layout == "text":
        (root / "n01440764").mkdir()
        (root / "n01440764" / "README.txt").write_text("not an image")
    mod = _script(script)
    extra = ["--set", "data.download=false"] if (script, layout) == ("celeba_rf.py", "text") else []
    code = mod.main(
        ["--data-root", str(root), "--experiments", "onelayer", "--rfs", "5", "--seeds", "1"]
        + ["--max-failures", "0", "--storage-path", str(tmp_path / "runs"), *extra],
        prog=script,
        doc="",
        dataset=script.split("_")[0],
        presets=mod.PRESETS,
        default="full",
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"{script}: error: ")
    assert not (tmp_path / "runs").exists()  # the data is checked before the storage path
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if layout == "missing" else ["data"])


def _trial(exp, name, rf, statuses, error=False):
    d = exp / name
    d.mkdir(parents=True)
    flat = {"data.dataset": "synthetic", "d.layers": f"conv{rf}", "seed": 0}
    (d / "params.json").write_text(json.dumps({"trial": flat | {"meta.experiment": "onelayer"}}))
    rows = [{"progress/step": 2 * i, "status": s} for i, s in enumerate(statuses, 1)]
    (d / "result.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if error:
        (d / "error.txt").write_text("Traceback (most recent call last): ...")


def test_sweep_without_a_finished_trial_exits_1(tmp_path, capsys):
    from analysis.publish import publish
    from ganrf.sweep.results import finish

    exp = tmp_path / "allbad"
    _trial(exp, "rf1-a", 1, [], error=True)
    _trial(exp, "rf5-b", 5, ["running"], error=True)
    assert finish(str(exp), "imagenet_rf.py", publish) == 1
    out, err = capsys.readouterr()
    assert err == (
        f"imagenet_rf.py: error: no trial finished (2 errored); their logs: "
        f"{exp}/rf1-a/error.txt, {exp}/rf5-b/error.txt\n"
    )
    assert f"trials:  2 errored; their logs: {exp}/rf1-a/error.txt" in out
    assert (exp / "results.csv").exists() and (exp / "report.html").exists()


def test_sweep_with_some_finished_trials_exits_0_and_counts_them(tmp_path, capsys):
    from ganrf.sweep.results import finish

    exp = tmp_path / "mixed"
    _trial(exp, "rf1-a", 1, ["running", "finished"], error=True)  # retried, then finished
    _trial(exp, "rf3-b", 3, ["diverged"])
    _trial(exp, "rf5-c", 5, ["running"], error=True)
    _trial(exp, "rf7-d", 7, ["running"])
    assert finish(str(exp)) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[-1] == (
        f"trials:  1 finished, 1 diverged, 1 unfinished, 1 errored; their logs: "
        f"{exp}/rf5-c/error.txt"
    )
    exp = tmp_path / "interrupted"  # nothing errored: say how to continue
    _trial(exp, "rf1-a", 1, ["running"])
    assert finish(str(exp), "mnist_rf.py") == 1
    assert capsys.readouterr().err == (
        "mnist_rf.py: error: no trial finished (1 unfinished); continue it with "
        "--resume --name interrupted\n"
    )


def test_sweep_output_names_one_status_and_the_results_folder(smoke):
    store, run = smoke
    out = run.stdout + run.stderr
    assert f"results in {store / 'smoke'}" in run.stderr  # printed at the start
    assert "Checkpoint successfully created" not in out  # Ray's per-report log line
    assert "Result logdir" not in out  # Ray's staging folder, not the results
    header = next(line for line in out.splitlines() if "| Trial name" in line)
    assert header.count("status") == 1 and "| result" not in header
    table = pd.read_csv(store / "smoke" / "results.csv")
    assert "trial_status" in table.columns and "status" not in table.columns


def test_partial_results_while_the_sweep_runs(tmp_path):
    """results.csv and the page exist, naming the running trial, before the sweep ends: rf 5
    hangs after its first report and the test reads them meanwhile."""
    env = {
        **os.environ,
        "GANRF_PUBLISH_EVERY_S": "0",
        "GANRF_FAULT": json.dumps({"kind": "hang", "rf": 5, "after_reports": 1}),
    }
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *SMOKE_START, "--storage-path", str(tmp_path)]
        + ["--name", "partial"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    exp = tmp_path / "partial"
    deadline = time.time() + 180
    try:
        while time.time() < deadline:
            assert proc.poll() is None, "the sweep ended: rf 5 should still be running"
            try:
                table = pd.read_csv(exp / "results.csv")
                page = (exp / "report.html").read_text()
            except (OSError, pd.errors.EmptyDataError):
                table = None
            running = None if table is None else table[table["trial_status"] == "running"]
            if (
                running is not None
                and set(table["trial_status"]) == {"finished", "running"}
                and running["metric/fid"].notna().all()  # the hanging trial's evaluation is in
                and "1 trial(s) still running" in page  # the page is written after the csv
            ):
                break
            time.sleep(0.5)
        else:
            pytest.fail("no partial results.csv naming a running trial while the sweep ran")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert running["rf"].tolist() == [5]
    assert running["trial"].item() in page.split("still running")[1].split("</p>")[0]


def test_sweep_records_its_defining_flags(smoke):
    store, _ = smoke
    flags = json.loads((store / "smoke" / "sweep.json").read_text())["flags"]
    assert flags == {
        "preset": "smoke",  # --smoke-test
        "experiments": None,
        "rfs": [1, 5],
        "depths": None,
        "heads": None,
        "seeds": 1,
        "norm": None,
        "family": None,
        "dropout": None,
        "loss": None,
        "epochs": None,
        "set": {"eval.grid": "16"},
        "data_root": str(ROOT / "data"),
        "trial_timeout_s": None,
        "max_concurrent": None,
        "cpus_per_trial": None,
        "gpus_per_trial": None,
        "max_failures": 2,
        "pack": None,
        "tracker": None,
    }


def test_resume_accepts_the_command_that_started_it(smoke):
    """After a crash the natural move is the same command plus --resume: equal flags, however
    spelled (--preset smoke for --smoke-test, "1, 5" for "1,5"), are accepted."""
    store, _ = smoke
    exp = store / "smoke"
    rows = {t.name: len(results(t)) for t in trial_dirs(exp)}
    run = sweep(
        *["--preset", "smoke", "--rfs", "1, 5", "--seeds", "1", "--set", "eval.grid = 16"],
        *["--max-failures", "2", "--storage-path", str(store), "--name", "smoke", "--resume"],
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"resuming {exp}" in run.stderr and "trials:  2 finished" in run.stdout
    assert {t.name: len(results(t)) for t in trial_dirs(exp)} == rows  # nothing was rerun


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "2"], "--seeds 2 differs from the recorded --seeds 1; drop it"),
        (
            ["--preset", "laptop", "--rfs", "1,3"],  # omitted --preset means the default
            "--preset laptop differs from the recorded --preset smoke, --rfs 1,3 differs from "
            "the recorded --rfs 1,5; drop them",
        ),
        (["--epochs", "3"], "--epochs 3 was not given when the sweep started; drop it"),
        (
            ["--smoke-test", "--set", "eval.grid=16", "--set", "schedule.steps=9"],
            "--set eval.grid=16 --set schedule.steps=9 differs from the recorded "
            "--set eval.grid=16; drop it",
        ),
        (["--rfs", "1,x"], "--rfs takes comma-separated whole numbers (e.g. 1,3,5), got '1,x'"),
    ],
)
def test_resume_refuses_flags_that_differ(smoke, args, message, monkeypatch, capsys):
    from ganrf.sweep.raytune import tune as gtune

    def no_ray(*a, **k):
        raise AssertionError("Ray was started for a resume that should be refused")

    monkeypatch.setattr(gtune, "init_ray", no_ray)
    store, _ = smoke
    mod = _load_script()
    code = mod.main(
        [*args, "--storage-path", str(store), "--name", "smoke", "--resume"],
        prog="mnist_rf.py",
        doc="",
        dataset="mnist",
        presets=mod.PRESETS,
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("mnist_rf.py: error: ") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_ganrf_ls_on_a_folder_and_a_file_uri(tmp_path, capsys):
    from ganrf.cli import main as ganrf_main

    store = tmp_path / "runs"
    exp = store / "mnist_rf-smoke-1"
    _trial(exp, "rf1-s0", 1, ["running", "finished"])
    _trial(exp, "rf3-s0", 3, ["running", "diverged"])
    _trial(exp, "rf5-s0", 5, ["running"])
    _trial(exp, "rf7-s0", 7, [], error=True)
    (exp / "sweep.json").write_text(json.dumps({"resources": {}, "flags": {"preset": "smoke"}}))
    (exp / "report.html").write_text("<html></html>")
    other = store / "celeba_rf-full-2"
    _trial(other, "rf9-s0", 9, ["finished"])
    (store / "not-an-experiment").mkdir()
    for where in (str(store), store.as_uri()):
        assert ganrf_main(["ls", where]) == 0
        out = capsys.readouterr().out.splitlines()
        head = out[0].split()
        assert head[:8] == ["experiment", "preset", "trials", *runs_statuses()]
        rows = {line.split()[0]: line.split() for line in out[1:3]}  # then the resume hint
        assert set(rows) == {"mnist_rf-smoke-1", "celeba_rf-full-2"}
        smoke = rows["mnist_rf-smoke-1"]
        assert smoke[1:8] == ["smoke", "4", "1", "1", "1", "1", "0"]
        assert smoke[-1].endswith("mnist_rf-smoke-1/report.html")
        assert rows["celeba_rf-full-2"][1:4] == ["-", "1", "1"]
    assert ganrf_main(["ls", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err


def runs_statuses():
    from ganrf.runs import TRIAL_STATUSES

    return list(TRIAL_STATUSES)


# An interrupted smoke sweep made by the code before ganrf had sub-packages (commit b1bc4d5):
# `sweeps/mnist_rf.py --smoke-test --name premove --max-concurrent 1 --set schedule.steps=40
# --set schedule.eval_every_steps=8`, SIGKILLed once rf 1 had finished and rf 5 had written its
# second checkpoint; Tune's state names rf 5's checkpoint at step 16. Kept: the state files, each
# trial's reports and the checkpoint Tune's state names (samples, ERFs and the page removed).
PREMOVE = ROOT / "tests" / "data" / "premove_sweep.tar.gz"


def test_a_sweep_started_before_the_move_resumes(tmp_path):
    import tarfile

    with tarfile.open(PREMOVE) as tar:
        tar.extractall(tmp_path, filter="data")
    exp = tmp_path / "premove"
    # Tune pickled the old module paths: without the aliases, restoring fails to import them.
    assert b"ganrf.tune_progress" in (exp / "tuner.pkl").read_bytes()
    done, mid = trial_dirs(exp)
    assert [r["progress/step"] for r in results(done)] == [8, 16, 24, 32, 40]
    assert [p.name for p in mid.glob("checkpoint_*")] == ["checkpoint_000001"]

    run = sweep("--resume", "--name", "premove", "--storage-path", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert [r["progress/step"] for r in results(done)] == [8, 16, 24, 32, 40]  # not rerun
    rows = results(mid)
    assert [r["progress/step"] for r in rows] == [8, 16, 24, 32, 40]
    assert rows[-1]["status"] == "finished"
    table = pd.read_csv(exp / "results.csv")
    assert sorted(table["rf"]) == [1, 5] and set(table["trial_status"]) == {"finished"}


def test_dry_run_with_family_resnet_shows_residual_designs(monkeypatch, capsys):
    mod = _load_script()
    monkeypatch.setitem(sys.modules, "ganrf.sweep.raytune.tune", _NoRay("ganrf.sweep.raytune.tune"))
    argv = ["--preset", "full", "--family", "resnet", "--experiments", "heads", "--seeds", "1"]
    code = mod.main(
        [*argv, "--dry-run"], prog="mnist_rf.py", doc="", dataset="mnist", presets=mod.PRESETS
    )
    out = capsys.readouterr()
    assert code == 0
    lines = out.out.strip().splitlines()
    assert [x.split()[0] for x in lines[:4]] == [
        "rf9-d1-res5-image-s0",
        "rf9-d2-res3_res3-image-s0",
        "rf17-d1-res9-image-s0",
        "rf17-d2-res5_res5-image-s0",
    ]
    assert len(lines) == 8 and sum("-patch-" in x for x in lines) == 4
    # res3,res3 on 1x28x28, 64 channels: first block 1*64*9+64 + 64*64*9+64 + 1*64+64 = 37696,
    # second (identity shortcut) 2*(64*64*9+64) = 73856, head 65
    assert "rf=9 decision_rf=28 params_d=111617" in lines[1]
    for recipe in ("g.kind=resnet", "loss.kind=hinge", "d.norm=spectral", "d.dropout=0.0"):
        assert f"\n  {recipe}\n" in out.err


def test_what_tune_pickled_before_the_ray_package_still_unpickles():
    """A sweep started before the Ray adapter moved to ganrf.sweep.raytune names its trial-name
    function, progress callback and TensorBoard callback by the old paths in Tune's state;
    ``--resume`` aliases them (runs made then resume; tests/data/premove_sweep.tar.gz is older)."""
    import pickle

    from ganrf.sweep.raytune import progress, tensorboard, trainable
    from ganrf.sweep.raytune import tune as gtune

    before = set(sys.modules)
    try:
        gtune.alias_moved_modules()
        for obj, old in [
            (gtune._trial_name, "ganrf.sweep.tune"),
            (gtune._resolved, "ganrf.sweep.tune"),
            (progress.PublishCallback, "ganrf.sweep.progress"),
            (tensorboard.HParamsTBXLoggerCallback, "ganrf.sweep.tensorboard"),
            (trainable.trainable, "ganrf.sweep.trainable"),
        ]:
            data = pickle.dumps(obj, protocol=0).replace(obj.__module__.encode(), old.encode())
            assert f"c{old}\n".encode() in data
            assert pickle.loads(data) is obj
    finally:
        for name in set(gtune.MOVED_MODULES) - before:
            sys.modules.pop(name, None)


def session_processes(ray_tmpdir: str) -> dict[int, str]:
    """Every process (but this one) whose command line, environment or open files name
    ``ray_tmpdir``, the RAY_TMPDIR of one sweep. Ray's agents rename themselves
    (``ray::DashboardAgent``), and setproctitle's longer title may overwrite part of
    ``/proc/PID/environ``, but their output goes to the session's log files. Their command
    lines, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (entry / "environ").read_bytes()
            files = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if (
            ray_tmpdir in cmd
            or f"RAY_TMPDIR={ray_tmpdir}\0".encode() in env
            or any(f.startswith(ray_tmpdir + "/") for f in files)
        ):
            found[int(entry.name)] = cmd.strip()[:100]
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_driver_leaves_no_ray_process_behind(tmp_path):
    """SIGKILL the driver of a running sweep: within seconds no process of its Ray session is
    left. Without the reaper (ganrf.sweep.raytune.reaper), Ray 2.60's dashboard and runtime-env
    agents outlived it by some 60 s."""
    import contextlib
    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths have a limit
    env = os.environ | {"RAY_TMPDIR": ray_tmp}
    args = ["--smoke-test", "--rfs", "1", "--seeds", "1", "--set", "schedule.steps=4000"]
    driver = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args, "--storage-path", str(tmp_path), "--name", "kill"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # until both agents are up and, unless a loaded machine is slow to start it, the trial
        deadline, agents_up = time.time() + 300, None
        while time.time() < deadline:
            names = " ".join(session_processes(ray_tmp).values())
            if "DashboardAgent" in names and "RuntimeEnvAgent" in names:
                agents_up = agents_up or time.time()
                if "ImplicitFunc" in names or time.time() > agents_up + 60:
                    break
            assert driver.poll() is None, "the sweep ended before its trial started"
            time.sleep(1)
        else:
            pytest.fail(f"Ray's agents not up in 300 s: {session_processes(ray_tmp)}")
        driver.kill()
        driver.wait()
        deadline = time.time() + 20
        while session_processes(ray_tmp) and time.time() < deadline:
            time.sleep(1)
        assert session_processes(ray_tmp) == {}, names
    finally:
        driver.kill()
        for pid in session_processes(ray_tmp):  # what a failure left: not for the next test
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(ray_tmp, ignore_errors=True)
