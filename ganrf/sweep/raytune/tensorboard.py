"""Tune's TensorBoard logger with the trial's named hyper-parameters in the HParams tab
(``--tracker tensorboard``: :mod:`ganrf.sweep.raytune.trackers`).

Tune's own logger writes a trial's resolved grid variables there, which for a sweep is the one
opaque trial list (TensorBoard drops it): this one writes rf, depth, layers, head... from the
trial's config (:func:`ganrf.sweep.trial.named_hyperparameters`). A module of its own, so
that the class Tune pickles into the experiment's state is found by name on ``--resume``.
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import TBXLoggerCallback

from ganrf.sweep.trial import named_hyperparameters


class HParamsTBXLoggerCallback(TBXLoggerCallback):
    def _try_log_hparams(self, trial: Any, result: dict) -> None:
        from tensorboardX.summary import hparams

        params = named_hyperparameters(trial.config)
        for summary in hparams(hparam_dict=params, metric_dict=result):
            self._trial_writer[trial].file_writer.add_summary(summary)
