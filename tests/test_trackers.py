"""``--tracker``: a sweep's reports and each evaluation's sample grid in TensorBoard (read back
from the event files), MLflow (its local store) and W&B (offline), W&B's output kept out of the
sweep's log, and a tracker whose package is missing stopped in one sentence before Ray starts.
The MLflow and W&B sweeps run where their packages are installed (``pip install -e
".[mlflow,wandb]"``)."""

import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from ganrf.metrics.spec import METRICS
from ganrf.sweep.raytune import trackers
from tests.test_sweep import ROOT, SCRIPT, _load_script, sweep, trial_dirs

ONE_TRIAL = ["--smoke-test", "--rfs", "1", "--seeds", "1", "--set", "eval.grid=16"]


@pytest.fixture(scope="module")
def tensorboard_sweep(tmp_path_factory):
    """One smoke trial (rf 1, one seed: two reports) with --tracker tensorboard."""
    store = tmp_path_factory.mktemp("runs")
    run = sweep(
        *ONE_TRIAL, "--tracker", "tensorboard", "--storage-path", str(store), "--name", "tb"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return store / "tb"


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the TensorBoard event files in ``folder``, as TensorBoard reads them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_tensorboard_holds_the_last_value_of_every_report_key(tensorboard_sweep):
    (trial,) = trial_dirs(tensorboard_sweep)
    assert len(list(trial.glob("events.out.tfevents.*"))) == 1
    # the independent source: Tune's own result.json, one JSON line per report
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    assert [r["progress/step"] for r in rows] == [2, 4]
    board = scalars(trial)
    keys = [k for k in METRICS if isinstance(rows[-1].get(k), (int, float))]
    for key in ("metric/fid", "metric/kid_mean", "metric/success", "erf/conv_size95", "loss/d"):
        assert key in keys, key
    assert len(keys) >= 28  # every registered metric of a digit trial
    for key in keys:
        steps, values = zip(*board[f"ray/tune/{key}"])
        assert steps == (2, 4), key  # one point per report, at its training step
        # event files hold 32-bit floats
        assert values[-1] == np.float32(rows[-1][key]), key
        assert values[0] == np.float32(rows[0][key]), key


def hparams(folder) -> dict:
    """The hyper-parameters TensorBoard's HParams tab shows for the trial in ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(folder))
    events.Reload()
    for raw in events.PluginTagToContent("hparams").values():
        data = plugin_data_pb2.HParamsPluginData.FromString(raw)
        if data.HasField("session_start_info"):
            values = data.session_start_info.hparams
            return {k: getattr(v, v.WhichOneof("kind")) for k, v in values.items()}
    return {}


def test_trackers_see_flat_named_hyperparameters(tensorboard_sweep):
    # Tune's config was {"trial": [...]}: HParams listed only "trial", and a W&B or
    # ExperimentAnalysis user could not group by rf. The expected values come from the trial's
    # own config.json and design.json.
    (trial,) = trial_dirs(tensorboard_sweep)
    config = json.loads((trial / "config.json").read_text())
    design = json.loads((trial / "design.json").read_text())["discriminator"]
    expected = {
        "rf": design["rf"],
        "depth": 1,
        "layers": config["d.layers"],
        "head": config["d.head"],
        "norm": config["d.norm"],
        "family": "plain",
        "loss": config["loss.kind"],
        "dataset": config["data.dataset"],
        "seed": config["seed"],
        "experiment": "onelayer",
    }
    assert expected["rf"] == 1 and expected["layers"] == "conv1"
    board = hparams(trial)
    assert {k: board[k] for k in expected} == expected
    # Tune's own config (what ExperimentAnalysis.dataframe() makes config/rf ... of)
    last = json.loads((trial / "result.json").read_text().splitlines()[-1])
    assert {k: last["config"][k] for k in expected} == expected


def test_the_tracker_is_recorded_and_kept_for_resume(tensorboard_sweep):
    flags = json.loads((tensorboard_sweep / "sweep.json").read_text())["flags"]
    assert flags["tracker"] == "tensorboard"
    # what Tuner.restore runs again on --resume: the callbacks the sweep started with
    state = pickle.loads((tensorboard_sweep / "tuner.pkl").read_bytes())
    loggers = [type(c).__name__ for c in state["_run_config"].callbacks]
    assert loggers == [
        "PublishCallback",  # results.csv and the page while it runs
        "JsonLoggerCallback",
        "CSVLoggerCallback",
        "HParamsTBXLoggerCallback",  # Tune's, with the named hyper-parameters
    ]


def test_without_a_tracker_tune_adds_no_tensorboard_logger(monkeypatch):
    monkeypatch.delenv(trackers.AUTO_LOGGERS_ENV, raising=False)
    loggers = [type(c).__name__ for c in trackers.callbacks(None, "exp")]
    assert loggers == ["JsonLoggerCallback", "CSVLoggerCallback"]
    assert os.environ[trackers.AUTO_LOGGERS_ENV] == "1"  # Tune's own TensorBoard logger is off
    # --resume: a sweep that recorded the flag again; one from before it, as it started
    for flags, env in (({"tracker": None}, "1"), ({"rfs": [1]}, None), (None, None)):
        monkeypatch.delenv(trackers.AUTO_LOGGERS_ENV)
        trackers.restore(flags)
        assert os.environ.get(trackers.AUTO_LOGGERS_ENV) == env
        monkeypatch.setenv(trackers.AUTO_LOGGERS_ENV, "1")


def _hide(monkeypatch, module: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == module else real(n, *a)
    )


@pytest.mark.parametrize(
    "tracker, module", [("tensorboard", "tensorboardX"), ("wandb", "wandb"), ("mlflow", "mlflow")]
)
def test_a_missing_tracker_package_is_one_sentence_and_exit_2(
    tracker, module, tmp_path, monkeypatch, capsys
):
    from ganrf.sweep import cli

    def no_ray(*a, **k):
        raise AssertionError("Ray was started for a sweep that should be refused")

    monkeypatch.setattr(cli, "_ray_started", no_ray)
    _hide(monkeypatch, module)
    mod = _load_script()
    argv = ["--smoke-test", "--tracker", tracker, "--storage-path", str(tmp_path / "runs")]
    code = mod.main(argv, prog="mnist_rf.py", doc="", dataset="mnist", presets=mod.PRESETS)
    assert code == 2
    assert capsys.readouterr().err == (
        f"mnist_rf.py: error: --tracker {tracker} needs the {module} package, which is not "
        f"installed: pip install 'gan-rf[{tracker}]'\n"
    )
    assert not (tmp_path / "runs").exists()  # nothing on disk


def test_resume_needs_the_recorded_trackers_package(tensorboard_sweep, monkeypatch, capsys):
    from ganrf.sweep import cli

    monkeypatch.setattr(cli, "_ray_started", lambda *a: pytest.fail("Ray was started"))
    _hide(monkeypatch, "tensorboardX")
    mod = _load_script()
    argv = ["--resume", "--name", "tb", "--storage-path", str(tensorboard_sweep.parent)]
    code = mod.main(argv, prog="mnist_rf.py", doc="", dataset="mnist", presets=mod.PRESETS)
    assert code == 2
    assert capsys.readouterr().err == (
        "mnist_rf.py: error: --tracker tensorboard needs the tensorboardX package, which is not "
        "installed: pip install 'gan-rf[tensorboard]'\n"
    )


def test_the_extras_install_each_trackers_package():
    import tomllib

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for tracker, module in trackers.TRACKERS.items():
        assert any(req.lower().startswith(module.lower()) for req in extras[tracker]), tracker
    # CI (the dev extra) writes and reads TensorBoard event files
    assert {"tensorboardx", "tensorboard"} <= {
        r.split(">")[0].split("=")[0].lower() for r in extras["dev"]
    }


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def saved_grids(trial: Path) -> dict[int, bytes]:
    """The trial's sample grids as the trainable saved them, by step: the independent source."""
    from ganrf.runs import sample_grids

    return {step: path.read_bytes() for step, path in sample_grids(trial)}


def test_tensorboard_shows_each_evaluations_sample_grid(tensorboard_sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (trial,) = trial_dirs(tensorboard_sweep)
    grids = saved_grids(trial)
    assert sorted(grids) == [2, 4]
    assert not np.array_equal(pixels(grids[2]), pixels(grids[4]))  # a mixed-up step would show
    events = EventAccumulator(str(trial), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == ["samples"]
    shown = events.Images("samples")
    assert [e.step for e in shown] == [2, 4]  # at the report's training step, as its scalars
    for e in shown:
        expected = pixels(grids[e.step])
        assert (e.height, e.width) == expected.shape[:2]
        assert np.array_equal(pixels(e.encoded_image_string), expected)


def test_a_packed_trials_grids_are_each_members(tmp_path):
    """A pack reports its members' summary; each member's grid is logged under its own name, and
    a member that saved none at that step (it diverged) is left out."""
    from ganrf.runs import NAME_KEY, TRIAL_KEY, sample_grid_file
    from ganrf.sweep.raytune import samples

    config = {TRIAL_KEY: [{NAME_KEY: "rf1-s0"}, {NAME_KEY: "rf1-s1"}]}
    trial = types.SimpleNamespace(config=config, local_path=str(tmp_path), path="/nowhere")
    result = {"progress/step": 4}
    assert samples.grid_files(trial, result) == [
        ("samples/rf1-s0", f"rf1-s0/{sample_grid_file(4)}"),
        ("samples/rf1-s1", f"rf1-s1/{sample_grid_file(4)}"),
    ]
    (tmp_path / "rf1-s0" / "samples").mkdir(parents=True)
    (tmp_path / "rf1-s0" / sample_grid_file(4)).write_bytes(b"png")
    assert samples.read_grids(trial, result) == [("samples/rf1-s0", b"png")]
    assert samples.read_grids(trial, {"status": "timed_out"}) == []


def sweep_in(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A smoke sweep run from ``folder`` (where a tracker's local files go), into folder/runs."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--storage-path", str(folder / "runs")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
        env=os.environ | {"PYTHONPATH": str(ROOT)} | env,
    )


@pytest.fixture(scope="module")
def mlflow_sweep(tmp_path_factory):
    """One smoke trial with --tracker mlflow, to a local MLflow store in a fresh folder."""
    pytest.importorskip("mlflow")
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"  # MLflow 3's local store; artifacts in ./mlruns
    run = sweep_in(
        folder, *ONE_TRIAL, "--tracker", "mlflow", "--name", "ml", env={"MLFLOW_TRACKING_URI": uri}
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, uri


def test_mlflow_keeps_each_evaluations_sample_grid(mlflow_sweep):
    import mlflow

    folder, uri = mlflow_sweep
    (trial,) = trial_dirs(folder / "runs" / "ml")
    grids = saved_grids(trial)
    client = mlflow.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ml").experiment_id])
    listed = [a.path for a in client.list_artifacts(run.info.run_id, "samples")]
    assert (
        listed
        == [f"samples/step{s:08d}.png" for s in sorted(grids)]
        == [
            "samples/step00000002.png",
            "samples/step00000004.png",
        ]
    )
    store = Path(unquote(urlparse(run.info.artifact_uri).path))
    assert store.is_relative_to(folder / "mlruns")  # the local store, beside the sweep
    for step, png in grids.items():
        assert (store / f"samples/step{step:08d}.png").read_bytes() == png  # the file itself
    assert run.data.metrics["metric/fid"] > 0  # and the numbers, as before


@pytest.fixture(scope="module")
def wandb_sweep(tmp_path_factory):
    """One smoke trial with --tracker wandb, offline, its run in a fresh folder."""
    pytest.importorskip("wandb")
    folder = tmp_path_factory.mktemp("wandb")
    env = {"WANDB_MODE": "offline", "WANDB_DIR": str(folder)}
    run = sweep_in(folder, *ONE_TRIAL, "--tracker", "wandb", "--name", "wb", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder, run


def test_wandb_gets_each_evaluations_sample_grid(wandb_sweep):
    folder, _ = wandb_sweep
    (trial,) = trial_dirs(folder / "runs" / "wb")
    grids = saved_grids(trial)
    (offline,) = (folder / "wandb").glob("offline-run-*")
    media = sorted((offline / "files" / "media" / "images").glob("samples_*.png"))
    assert len(media) == len(grids) == 2
    # W&B encodes the image it was given again: the pixels are the grid's
    logged = [pixels(p.read_bytes()) for p in media]
    for png in grids.values():
        assert sum(np.array_equal(pixels(png), img) for img in logged) == 1


def test_wandb_keeps_out_of_the_sweeps_log(wandb_sweep):
    """Unsilenced, W&B's banner, run history and summary came through Ray as some 35 lines
    behind ANSI-coloured prefixes, for one trial: the sweep's own lines are what is left."""
    _, run = wandb_sweep
    log = run.stdout + run.stderr
    assert "wandb:" not in log, run.stderr
    assert "\x1b[" not in log  # no colour codes in a log that is not a terminal
    assert "rf1-d1-conv1-image-s0 finished" in run.stdout
    assert len(run.stderr.splitlines()) <= 4, run.stderr  # the sweep's two lines, Ray's one


def test_worker_prefixes_are_plain_in_a_log_file(monkeypatch):
    """Ray colours each ``(Actor pid=...)`` prefix with ANSI codes; a sweep whose stderr is not a
    terminal turns that off (RAY_COLOR_PREFIX=0, read by Ray's driver as it prints), unless the
    user chose."""
    from ganrf.sweep.raytune import tune as gtune

    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.delenv("RAY_COLOR_PREFIX", raising=False)
    gtune.plain_worker_prefixes()
    assert os.environ["RAY_COLOR_PREFIX"] == "0"
    monkeypatch.setenv("RAY_COLOR_PREFIX", "1")
    gtune.plain_worker_prefixes()
    assert os.environ["RAY_COLOR_PREFIX"] == "1"
    monkeypatch.delenv("RAY_COLOR_PREFIX")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    gtune.plain_worker_prefixes()
    assert "RAY_COLOR_PREFIX" not in os.environ
