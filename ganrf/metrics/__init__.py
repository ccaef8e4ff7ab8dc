"""Every trial's scores: how good the generator is, and what the discriminator looked at.

* :mod:`ganrf.metrics.spec`: the registry of every reported key (torch-free; the analysis reads it);
* :mod:`ganrf.metrics.evaluate`: :class:`Evaluator`, which computes them for a trial;
* :mod:`ganrf.metrics.compute`: each registered metric's function (``@computes(key)``);
* :mod:`ganrf.metrics.evaluation`: one evaluation, what those functions read, and the success rule;
* :mod:`ganrf.metrics.features`: the feature networks and the reference sets;
* :mod:`ganrf.metrics.scores`: the scores on feature vectors (FID, KID, PRDC, class scores, SSIM);
* :mod:`ganrf.metrics.erf`: the effective receptive fields (conv stack, decision gradient);
* :mod:`ganrf.metrics.mnist_cnn`: the shipped MNIST feature network.

This package module imports no torch, so ``import ganrf.metrics.spec`` stays light; the torch
names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Evaluator": "ganrf.metrics.evaluate",
    "Evaluation": "ganrf.metrics.evaluation",
    "FeatureNet": "ganrf.metrics.features",
    "MetricsError": "ganrf.metrics.features",
    "inception_feature_net": "ganrf.metrics.features",
    "mnist_feature_net": "ganrf.metrics.features",
    "Features": "ganrf.metrics.features",
    "SUCCESS_FID_OVER_FLOOR": "ganrf.metrics.evaluation",
    "SUCCESS_PRECISION": "ganrf.metrics.evaluation",
    "SUCCESS_COVERAGE": "ganrf.metrics.evaluation",
    "success": "ganrf.metrics.evaluation",
    "conv_erf": "ganrf.metrics.erf",
    "decision_erf": "ganrf.metrics.erf",
    "erf_radii": "ganrf.metrics.erf",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganrf.metrics' has no attribute {name!r}")
