"""Each evaluation's sample grid, for the trackers (``--tracker``): a TensorBoard image, a W&B
image, an MLflow artifact.

At every evaluation the trainable saves the grid its generator drew from the trial's fixed noise
into the trial folder (:func:`ganrf.runs.sample_grid_file`) and reports with a checkpoint; Tune
syncs the trial's artifacts to storage before that report reaches the driver (``SyncConfig(
sync_artifacts=True)``, forced on every checkpoint). There Tune's tracker callbacks, which log
only the report's numbers, are given the grid by the subclasses below (and
:class:`ganrf.sweep.raytune.tensorboard.HParamsTBXLoggerCallback`), read from the trial's folder
in storage (a local folder or an object store): the report dict itself stays numbers, so
result.json, progress.csv and Tune's state do not grow. A packed trial's report is its members'
summary; each member's grid is logged, tagged by the member's name. Modules of their own, so that
Tune, which pickles the callbacks into the experiment's state, finds them by name on ``--resume``.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.result import TIMESTEPS_TOTAL, TRAINING_ITERATION

from ganrf import runs

TAG = "samples"  # a plain trial's grid; a packed member's is samples/<member name>


def grid_files(trial: Any, result: dict[str, Any]) -> list[tuple[str, str]]:
    """(tag, path relative to the trial folder) of the grid(s) the evaluation behind ``result``
    saved: the trial's own, or each packed member's (a member that has stopped saved none)."""
    step = result.get("progress/step")
    if not isinstance(step, int):
        return []
    flats = trial.config.get(runs.TRIAL_KEY) or []
    name = runs.sample_grid_file(step)
    if len(flats) <= 1:
        return [(TAG, name)]
    members = [f.get(runs.NAME_KEY, f"member{i}") for i, f in enumerate(flats)]
    return [(f"{TAG}/{m}", f"{m}/{name}") for m in members]


def read_grids(trial: Any, result: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(tag, PNG bytes) of each grid of :func:`grid_files` that is there: in the trial's folder
    on the driver (``trial.local_path``: where a trial on this machine writes, and what Tune
    syncs to storage when the trial ends), else in the trial's folder in storage (where Tune
    syncs a trial's artifacts from another node)."""
    out = []
    for tag, rel in grid_files(trial, result):
        png = _read_local(trial.local_path, rel) or _read_storage(trial, rel)
        if png:  # none: a diverged member, or a grid not (yet) synced; the numbers still go
            out.append((tag, png))
    return out


def _read_local(folder: str | None, rel: str) -> bytes | None:
    try:
        return (Path(folder) / rel).read_bytes() if folder else None
    except OSError:
        return None


def _read_storage(trial: Any, rel: str) -> bytes | None:
    try:
        with trial.storage.storage_filesystem.open_input_stream(f"{trial.path}/{rel}") as f:
            return f.read()
    except (OSError, AttributeError):
        return None


def pixels(png: bytes) -> np.ndarray:
    """A PNG as an (H, W, 3) uint8 array: what TensorBoard and W&B are given."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def step_of(result: dict[str, Any]) -> int:
    """The step Tune's loggers plot a report at: its training step, else its report count."""
    return result.get(TIMESTEPS_TOTAL) or result[TRAINING_ITERATION]


class SamplesWandbLoggerCallback(WandbLoggerCallback):
    """Tune's W&B logger, plus each evaluation's grid as a ``wandb.Image`` (key ``samples``):
    an (H, W, 3) array in the logged dict, which Tune's logger turns into one."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        grids = read_grids(trial, result)
        if grids:
            result = {**result, **{tag: pixels(png) for tag, png in grids}}
        super().log_trial_result(iteration, trial, result)


class SamplesMLflowLoggerCallback(MLflowLoggerCallback):
    """Tune's MLflow logger, plus each evaluation's grid as an artifact of the trial's run, under
    ``samples/`` as the trial folder has it (``samples/stepNNNNNNNN.png``; a packed member's under
    ``samples/<member name>/``)."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        super().log_trial_result(iteration, trial, result)
        grids = read_grids(trial, result)
        if not grids:
            return
        import mlflow

        client = mlflow.MlflowClient()  # at the tracking URI Tune's logger set for the process
        name = os.path.basename(runs.sample_grid_file(result["progress/step"]))
        with tempfile.TemporaryDirectory() as tmp:
            for tag, png in grids:
                path = os.path.join(tmp, name)
                with open(path, "wb") as f:
                    f.write(png)
                client.log_artifact(self._trial_runs[trial], path, artifact_path=tag)
