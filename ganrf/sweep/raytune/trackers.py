"""Experiment trackers for a sweep (``--tracker``), through Ray Tune's own logger callbacks.

Every sweep has Tune write each trial's reports into its folder as ``result.json`` and
``progress.csv`` (``ganrf.runs`` and ``ganrf ls`` read ``result.json``). ``--tracker`` adds one of:

* ``tensorboard``: TensorBoard event files in each trial folder (``TBXLoggerCallback``; needs
  tensorboardX), one scalar per numeric report key, tagged ``ray/tune/<key>``
  (``ray/tune/metric/fid``), at its training step, the trial's hyper-parameters (rf, depth,
  layers, head...: :data:`ganrf.sweep.trial.HPARAMS`) in the HParams tab and each evaluation's
  sample grid in the Images tab (``samples``): ``tensorboard --logdir runs/NAME``;
* ``wandb``: a Weights & Biases run per trial, grouped under the sweep's name
  (``WandbLoggerCallback``), in the project ``$WANDB_PROJECT`` (default ``gan_rf``), with each
  evaluation's sample grid as an image (``samples``); log in with ``wandb login`` or
  ``$WANDB_API_KEY``, or set ``WANDB_MODE=offline``;
* ``mlflow``: an MLflow run per trial in the experiment named after the sweep (or
  ``$MLFLOW_EXPERIMENT_NAME``), at ``$MLFLOW_TRACKING_URI`` (default: MLflow's local store)
  (``MLflowLoggerCallback``), with each evaluation's sample grid as an artifact
  (``samples/stepNNNNNNNN.png``).

The grids come from the trial's folder (:mod:`ganrf.sweep.raytune.samples`). A packed trial
(``--pack``) is one Tune trial, so a tracker shows its summary row (the members' means), not
each member, but each member's sample grid, under its name. Tune would add a TensorBoard logger
of its own whenever tensorboardX is installed (it comes with ``ray[tune]``): :func:`callbacks`
turns Tune's automatic loggers off and names the ones it wants, so that the flag decides. Tune keeps the callbacks in the
experiment's state, so ``--resume`` continues with the tracker the sweep started with.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

# Each tracker, the module it needs, and the extra of pyproject.toml that installs it.
TRACKERS = {"tensorboard": "tensorboardX", "wandb": "wandb", "mlflow": "mlflow"}
AUTO_LOGGERS_ENV = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"  # Ray Tune's switch, read at fit()
WANDB_PROJECT = "gan_rf"


def missing(tracker: str | None) -> str | None:
    """Why ``tracker`` cannot run here (its package is not installed), in one sentence, or None."""
    if tracker is None or importlib.util.find_spec(TRACKERS[tracker]) is not None:
        return None
    return (
        f"--tracker {tracker} needs the {TRACKERS[tracker]} package, which is not installed: "
        f"pip install 'gan-rf[{tracker}]'"
    )


def callbacks(tracker: str | None, experiment: str) -> list[Any]:
    """Tune's logger callbacks for a new sweep named ``experiment``: result.json and
    progress.csv, and ``tracker``'s (None: no tracker). Turns Tune's automatic loggers off in
    this process (:func:`restore` does it again on ``--resume``)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    os.environ[AUTO_LOGGERS_ENV] = "1"
    loggers: list[Any] = [JsonLoggerCallback(), CSVLoggerCallback()]
    if tracker == "tensorboard":
        from ganrf.sweep.raytune.tensorboard import HParamsTBXLoggerCallback

        loggers.append(HParamsTBXLoggerCallback())
    elif tracker == "wandb":
        from ganrf.sweep.raytune.samples import SamplesWandbLoggerCallback

        project = os.environ.get("WANDB_PROJECT") or WANDB_PROJECT
        loggers.append(
            SamplesWandbLoggerCallback(project=project, group=experiment, **wandb_init())
        )
    elif tracker == "mlflow":
        from ganrf.sweep.raytune.samples import SamplesMLflowLoggerCallback

        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or experiment
        loggers.append(SamplesMLflowLoggerCallback(experiment_name=name))
    elif tracker is not None:
        raise ValueError(f"unknown tracker {tracker!r}; one of {', '.join(TRACKERS)}")
    return loggers


def wandb_init() -> dict[str, Any]:
    """What each trial's ``wandb.init`` is given beside Tune's own arguments: silent settings,
    unless ``WANDB_SILENT`` says otherwise, and W&B's own name for Tune's ``reinit=True`` where
    W&B has one (it warns about the boolean).

    Each run is logged by an actor in a Ray worker, whose output Ray copies into the sweep's log,
    each line behind a ``(_WandbLoggingActor pid=...)`` prefix: unsilenced, W&B's banner and, per
    trial, its run history and summary (some 35 lines for one smoke trial) buried the sweep's
    own lines. The actor is started after Ray, so an environment variable set now would not reach
    it: the setting travels with the run's ``wandb.init`` arguments. The run itself logs as
    before; ``wandb sync`` and the W&B page show everything."""
    import wandb

    silent = os.environ.get("WANDB_SILENT", "true").strip().lower() not in ("false", "0", "no")
    out: dict[str, Any] = {"settings": wandb.Settings(silent=silent)}
    try:
        wandb.Settings(reinit="finish_previous")  # W&B 0.19.10 on; before, only a boolean
        out["reinit"] = "finish_previous"
    except Exception:  # an older W&B's validation error, whatever its type
        pass
    return out


def restore(flags: dict[str, Any] | None) -> None:
    """Before ``Tuner.restore``: a sweep that recorded ``--tracker`` (given or not) was started
    with :func:`callbacks`, which Tune kept, so Tune must again add no loggers of its own; an
    older sweep resumes with Tune's automatic ones, as it started."""
    if flags is not None and "tracker" in flags:
        os.environ[AUTO_LOGGERS_ENV] = "1"
