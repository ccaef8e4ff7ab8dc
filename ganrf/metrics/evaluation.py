"""One evaluation of a set of samples: what the registered metrics' functions read
(:mod:`ganrf.metrics.compute`), and the success verdict's rule.

Kept apart from the :class:`~ganrf.metrics.evaluate.Evaluator` that makes evaluations, so that the
metric functions import this and the evaluator imports them, with no circle.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from torch import Tensor, nn

from ganrf.data.images import to_float
from ganrf.metrics import scores
from ganrf.metrics.erf import ERF, conv_erf, decision_erf
from ganrf.metrics.features import Features
from ganrf.metrics.judge import recognisable_metrics
from ganrf.metrics.swd import MIN_LEVEL, swd

# Fixed on scripts/metric_references.py's cases (docs/metrics.md), n = 2,000 and 10,000: real
# digits score FID/floor 0.91-1.02, precision 0.93-0.94, coverage 0.95-0.97; every failure case
# FID/floor >= 32, coverage <= 0.13, and precision <= 0.47 where its coverage is not 0.
SUCCESS_FID_OVER_FLOOR = 5.0
SUCCESS_PRECISION = 0.7
SUCCESS_COVERAGE = 0.5
PRDC_MAX = 5000  # k-NN scores on at most this many samples each side (O(N^2) distances)
SWD_SEED = 0  # every evaluation cuts the same patches and projects on the same directions
_COMPUTING = object()  # Evaluation.value's mark of a metric being computed (a loop is a bug)


class Evaluation:
    """One evaluation of a set of samples (and of the discriminator, given one): what the
    registered metrics' functions read.

    The work several metrics share is done on first use and kept (the features, KID's random
    subsets, the k-NN pass, the class histogram, the ERF maps), so FID and KID read one set of
    features and the four k-NN scores one pass; :meth:`value` gives any registered metric,
    computed once, so a metric may be made of others (``metric/fid_over_floor``).

    Attributes:
        evaluator: the :class:`Evaluator`: its config (``cfg``), feature network (``net``, or
            None), reference features (``ref``) and images (``real_pixels``), FID floor and
            discriminator design.
        images: the samples ``(N, C, H, W)`` in [-1, 1].
        d: the discriminator, or None (:meth:`Evaluator.score_images`).
        step: the training step.
    """

    def __init__(
        self, evaluator: Any, images: Tensor, *, d: nn.Module | None = None, step: int = 0
    ) -> None:
        self.evaluator, self.images, self.d, self.step = evaluator, images, d, step
        self._values: dict[str, Any] = {}

    def value(self, key: str) -> Any:
        """The registered metric ``key`` of this evaluation, or None where it does not apply.

        Raises:
            KeyError: ``key`` has no function in the registry.
            RuntimeError: metrics that read each other in a loop.
        """
        if self._values.get(key) is _COMPUTING:
            raise RuntimeError(f"metric {key!r} reads itself through other metrics")
        if key not in self._values:
            if key not in self.evaluator.computes:
                raise KeyError(f"metric {key!r} is not registered with a compute function")
            self._values[key] = _COMPUTING
            try:
                self._values[key] = self.evaluator.computes[key](self)
            except BaseException:
                del self._values[key]
                raise
        return self._values[key]

    @property
    def reference(self) -> dict[str, Tensor]:
        """The reference set's ``features`` ``(N, D)`` and, for a net with a stem, ``local``."""
        return self.evaluator.ref

    @cached_property
    def features(self) -> Features | None:
        """The samples' features, or None without a feature network (``eval.features=none``:
        then no FID, KID, precision/recall/density/coverage or classifier scores)."""
        return None if self.evaluator.net is None else self.evaluator.net(self.images)

    @cached_property
    def kid(self) -> tuple[float, float] | None:
        """KID's mean and std over random subsets (drawn from torch's global RNG: once)."""
        if self.features is None:
            return None
        return scores.kid(self.reference["features"], self.features.features)

    @cached_property
    def prdc(self) -> dict[str, float] | None:
        if self.features is None:
            return None
        real, fake = self.reference["features"], self.features.features
        return scores.prdc(real[:PRDC_MAX], fake[:PRDC_MAX])

    @cached_property
    def classes(self) -> dict[str, float] | None:
        """:func:`ganrf.metrics.scores.class_scores`, or None without a classifier."""
        probs = None if self.features is None else self.features.probs
        return None if probs is None else scores.class_scores(probs)

    @cached_property
    def swd(self) -> dict[str, float] | None:
        """:func:`ganrf.metrics.swd.swd` of the samples against the reference images (its
        levels ``l0`` ... and ``mean``), or None for images under 16 px."""
        real = self.evaluator.real_pixels
        if min(real.shape[-2:]) < MIN_LEVEL:
            return None
        return swd(to_float(real), self.images, seed=SWD_SEED)

    @cached_property
    def erfs(self) -> dict[str, ERF] | None:
        """The discriminator's two ERF maps (``conv``, ``decision``), or None without one."""
        if self.d is None:
            return None
        real = self.evaluator.real_images.to(self.evaluator.device)
        design = self.evaluator.design
        return {
            "conv": conv_erf(self.d, real, design),
            "decision": decision_erf(self.d, real, design),
        }

    @cached_property
    def recognisable(self) -> dict[str, float | int] | None:
        """The digits' second level (:func:`ganrf.metrics.judge.recognisable_metrics`): the
        judges' share, classes and set verdict, for 28x28 grey images only."""
        if tuple(self.images.shape[1:]) != (1, 28, 28):
            return None
        return recognisable_metrics(self.images)

    @cached_property
    def erf_values(self) -> dict[str, float] | None:
        return None if self.erfs is None else erf_metrics(self.erfs)


def success(m: dict[str, Any]) -> int:
    """The yes/no verdict from a report's FID-over-floor, precision and coverage (module doc)."""
    return int(
        m["metric/fid_over_floor"] <= SUCCESS_FID_OVER_FLOOR
        and m["metric/precision"] >= SUCCESS_PRECISION
        and m["metric/coverage"] >= SUCCESS_COVERAGE
    )


def erf_metrics(erfs: dict[str, ERF]) -> dict[str, float]:
    """``erf/{kind}_radius50`` ... ``erf/{kind}_size95`` for each ERF kind (conv, decision)."""
    out = {}
    for kind, erf in erfs.items():
        for name in ("radius50", "radius95", "size50", "size95"):
            out[f"erf/{kind}_{name}"] = getattr(erf, name)
    return out
