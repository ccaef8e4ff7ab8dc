"""Tune's TensorBoard logger with the trial's named hyper-parameters in the HParams tab and each
evaluation's sample grid in the Images tab (``--tracker tensorboard``:
:mod:`ganrf.sweep.raytune.trackers`).

Tune's own logger writes a trial's resolved grid variables there, which for a sweep is the one
opaque trial list (TensorBoard drops it): this one writes rf, depth, layers, head... from the
trial's config (:func:`ganrf.sweep.trial.named_hyperparameters`). The grid (tag ``samples``, a
packed member's ``samples/<member name>``) is read from the trial's folder in storage
(:mod:`ganrf.sweep.raytune.samples`) and logged at the report's training step, beside its
scalars. A module of its own, so that the class Tune pickles into the experiment's state is found
by name on ``--resume``.
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import TBXLoggerCallback

from ganrf.sweep.raytune.samples import pixels, read_grids, step_of
from ganrf.sweep.trial import named_hyperparameters


class HParamsTBXLoggerCallback(TBXLoggerCallback):
    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        super().log_trial_result(iteration, trial, result)
        grids = read_grids(trial, result)
        if not grids:
            return
        writer = self._trial_writer[trial]
        for tag, png in grids:
            writer.add_image(tag, pixels(png), global_step=step_of(result), dataformats="HWC")
        writer.flush()

    def _try_log_hparams(self, trial: Any, result: dict) -> None:
        from tensorboardX.summary import hparams

        params = named_hyperparameters(trial.config)
        for summary in hparams(hparam_dict=params, metric_dict=result):
            self._trial_writer[trial].file_writer.add_summary(summary)
