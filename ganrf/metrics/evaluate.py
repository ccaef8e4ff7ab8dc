"""The evaluator: every trial's scores, computed every evaluation period.

:class:`Evaluator` generates ``eval.samples`` images from fixed noise and computes every metric
of the registry (:mod:`ganrf.metrics.spec`) that has a function (registered with
:func:`ganrf.metrics.compute.computes`), in the registry's order, on one
:class:`~ganrf.metrics.evaluation.Evaluation`: the samples' features are computed once by the dataset's feature network and scored against cached reference
features of a fixed random subset of real images (:mod:`ganrf.metrics.features`):

* ``metric/fid``: Fréchet distance of the feature network's features (``metric/feature_net``
  names it: the shipped MNIST CNN for 28x28 digits, Inception-V3 for RGB), beside its floor
  ``metric/fid_floor``, the same distance for n *real* training images (what a perfect generator
  would score at this n; computed once per reference set and cached), and
  ``metric/fid_over_floor``;
* ``metric/kid_mean``, ``metric/kid_std``; ``metric/precision``, ``recall``, ``density``,
  ``coverage`` (k = 5, Naeem et al.'s definitions);
* ``metric/local_fid`` (feature networks with a ``stem``, the MNIST evaluator): Fréchet distance
  of the evaluator's own intermediate features, the 64-d vector at every position of its second
  conv map (each sees an 8x8-pixel neighbourhood: strokes, ends, junctions), over the first
  ``LOCAL_IMAGES`` images;
* ``metric/ssim``: mean pairwise SSIM of samples (high = alike, a collapse);
* ``metric/swd`` and ``metric/swd_l0`` ...: the multi-scale sliced Wasserstein distance on
  Laplacian-pyramid patches (:mod:`ganrf.metrics.swd`), on pixels, per level (level k's patches
  span ``7 * 2**k`` px), for images of at least 16 px; with ``eval.features=none`` (no feature
  network, nothing downloaded) it and SSIM are the sample metrics;
* with a classifier (MNIST): ``metric/classifier_score``, ``class_count``, ``class_kl``,
  ``confident_share`` and ``metric/success``;
* ``erf/conv_*``: the conv stack's ERF (its central unit; compare with the design's theoretical
  ``rf``, a column of ``results.csv``), and ``erf/decision_*``: the gradient map of the decision
  (whole image for the dense head), each as radii and sizes ``2 r + 1`` holding 50% / 95% of the
  mass, with both maps saved as images.

**Success** ("did it generate digits?", :func:`ganrf.metrics.evaluation.success`) is 1 when the samples are as close to the real digits as
``SUCCESS_FID_OVER_FLOOR`` times the real-vs-real floor, *and* their precision is at least
``SUCCESS_PRECISION`` (most samples lie on the real digits' manifold), *and* their coverage is at
least ``SUCCESS_COVERAGE`` (they cover most of it). The constants were fixed on the calibration
cases of ``scripts/metric_references.py`` (docs/metrics.md) before any sweep: real digits and a
held-out real split pass; blurred digits, noise, one digit, mixtures of digit fragments, blobs and
independent pixels (what a 1x1 discriminator can enforce) fail, each with a margin.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganrf.design.designs import DiscriminatorDesign
from ganrf.metrics import scores, spec
from ganrf.metrics.compute import COMPUTES
from ganrf.metrics.erf import ERF
from ganrf.metrics.evaluation import Evaluation
from ganrf.metrics.features import (
    FeatureNet,
    cache_dir,
    inception_feature_net,
    mnist_feature_net,
    reference_images,
)
from ganrf.metrics.swd import MAX_IMAGES
from ganrf.models import sample
from ganrf.storage import atomic_path

log = logging.getLogger(__name__)


class Evaluator:
    """Scores a generator and a discriminator; reused across a trial's evaluations."""

    def __init__(
        self,
        cfg,
        device: torch.device,
        feature_net: FeatureNet | None = None,
        design: DiscriminatorDesign | None = None,
    ) -> None:
        self.cfg, self.device = cfg, device
        # Every registered metric that has a function (ganrf.metrics.compute), in registry order.
        self.computes: dict[str, Callable[[Evaluation], Any]] = {
            k: COMPUTES[k] for k in spec.METRICS if k in COMPUTES
        }
        self.design = design or cfg.design()
        if feature_net is None and cfg.eval.features == "auto":
            mnist_like = (cfg.data.image_size, cfg.data.channels) == (28, 1)
            feature_net = (
                mnist_feature_net(device)
                if mnist_like
                else inception_feature_net(device, cfg.eval.inception_weights)
            )
        self.net = feature_net  # None: eval.features=none, pixel metrics only
        self.n = cfg.eval.samples
        real, floor, key = reference_images(cfg, self.n)
        self.real_images = real[: cfg.eval.erf_images]
        # SWD's reference, kept as uint8: at most swd.MAX_IMAGES of them are read
        self.real_pixels = ((real[:MAX_IMAGES] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        self.ref = {k: v.to(device) for k, v in self._reference(real, floor, key).items()}
        self.fid_floor = float(self.ref["fid_floor"])

    def _reference(self, real: Tensor, floor: Tensor | None, key: str) -> dict[str, Tensor]:
        """Reference features and the FID floor, computed once and cached on disk by dataset,
        split, subset and evaluator (none without a feature network)."""
        if self.net is None:
            return {"fid_floor": torch.tensor(math.nan, dtype=torch.float64)}
        path = cache_dir() / f"ref-{key}-{self.net.name}-v2.pt" if key else None
        if path is not None and path.exists():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:
                log.warning("reference cache %s unreadable; recomputing", path)
        f = self.net(real)
        ref = {"features": f.features}
        if f.local is not None:
            ref["local"] = f.local
        fid_floor = math.nan
        if floor is not None:
            fid_floor = scores.frechet_distance(f.features, self.net(floor).features)
        ref["fid_floor"] = torch.tensor(fid_floor, dtype=torch.float64)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                torch.save({k: v.cpu() for k, v in ref.items()}, tmp)
        return ref

    def score_images(self, fake: Tensor) -> dict[str, Any]:
        """Every registered sample metric for generated images ``(N, C, H, W)`` in [-1, 1]
        (no discriminator: no ERF)."""
        return self._report(Evaluation(self, fake))

    def __call__(
        self, *, g: nn.Module, d: nn.Module, cfg, device, out_dir: Path | None, step: int
    ) -> dict[str, Any]:
        noise = torch.randn(
            self.n, cfg.g.noise_dim, generator=torch.Generator().manual_seed(20_000 + cfg.seed)
        ).to(device)
        ev = Evaluation(self, sample(g, noise), d=d, step=step)
        out = self._report(ev)
        if out_dir is not None:
            for kind, erf in ev.erfs.items():
                out[f"artifact/erf_{kind}"] = save_erf(erf, Path(out_dir), step, kind)
        return out

    def _report(self, ev: Evaluation) -> dict[str, Any]:
        """What scored the samples, then every registered metric that applies, in registry order."""
        out: dict[str, Any] = {
            "metric/feature_net": "none" if self.net is None else self.net.name,
            "metric/samples": len(ev.images),
        }
        for key in self.computes:
            value = ev.value(key)
            if value is not None:
                out[key] = value
        return out


def seconds_per_evaluation(
    cfg, g: nn.Module, d: nn.Module, device: torch.device, design: DiscriminatorDesign | None = None
) -> float:
    """Wall time of one evaluation of ``g`` and ``d``, timed on a second call: the first builds
    the reference statistics (cached on disk), a one-time cost of a sweep, not of an evaluation."""
    ev = Evaluator(cfg, device, design=design)

    def once() -> None:
        ev(g=g, d=d, cfg=cfg, device=device, out_dir=None, step=0)
        if device.type == "cuda":
            torch.cuda.synchronize()

    once()  # the reference statistics
    t0 = time.perf_counter()
    once()
    return time.perf_counter() - t0


def save_erf(erf: ERF, out_dir: Path, step: int, kind: str) -> str:
    """The ERF map as ``erf/{kind}-stepNNNNNNNN.png`` (scaled to its maximum); its relative path."""
    from torchvision.utils import save_image

    path = out_dir / "erf" / f"{kind}-step{step:08d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    m = erf.map / erf.map.max().clamp_min(1e-30)
    save_image(m[None, None], path)
    return str(path.relative_to(out_dir))
