"""Effective receptive fields (Luo et al. 2016) of a discriminator: two different measures.

* :func:`conv_erf`, the ERF of the **conv stack**: the gradient of the central unit of the last
  conv feature map (before the head; summed over its channels, as Luo et al. set the gradient of
  the centre pixel to 1) with respect to the input. It lies inside the theoretical rf (the
  design's ``rf``, a column of ``results.csv``) and is the measure to read beside it, for every
  head.
* :func:`decision_erf`, the **decision gradient**: the gradient of the decision itself, the whole
  image's logit for the image (dense) head, the central location's logit for the patch head. A
  dense head sees the whole image, so for it this map spreads over the image whatever the conv
  rf; it answers "which pixels moved the verdict", not "how far does a conv unit see".

Each map is the absolute gradient averaged over real images and input channels, normalised to
sum to 1. Its radii are the smallest square (Chebyshev) half-widths around the unit's rf centre
that hold 50% and 95% of the mass, so ``2 r + 1`` reads on the same scale as the theoretical rf.
Every tensor follows the input's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganrf.design.designs import DiscriminatorDesign


@dataclass(frozen=True)
class ERF:
    map: Tensor  # (H, W) on the CPU, sums to 1
    center: tuple[float, float]  # (y, x) in input pixels
    radius50: float
    radius95: float

    @property
    def size50(self) -> float:
        return 2 * self.radius50 + 1

    @property
    def size95(self) -> float:
        return 2 * self.radius95 + 1


def erf_radii(
    m: Tensor, center: tuple[float, float], qs: tuple[float, ...] = (0.5, 0.95)
) -> Tensor:
    """Smallest Chebyshev radii around ``center`` holding fractions ``qs`` of the map ``m``'s mass.

    ``m`` is ``(H, W)``, non-negative; returns a float tensor ``(len(qs),)`` on ``m``'s device.
    """
    h, w = m.shape
    dev = m.device
    yy = torch.arange(h, device=dev, dtype=torch.float64)[:, None]
    xx = torch.arange(w, device=dev, dtype=torch.float64)[None, :]
    cheb = torch.maximum((yy - center[0]).abs(), (xx - center[1]).abs()).flatten()
    order = cheb.argsort(stable=True)
    p = m.double().flatten()
    mass = p[order].cumsum(0) / p.sum().clamp_min(1e-300)
    dist = cheb[order]
    q = torch.tensor(qs, dtype=torch.float64, device=dev) - 1e-9
    k = torch.searchsorted(mass, q).clamp_max(len(dist) - 1)
    return dist[k].float()


def _gradient_map(out: Tensor, x: Tensor) -> Tensor:
    (grad,) = torch.autograd.grad(out.sum(), x)
    m = grad.abs().float().mean((0, 1))  # (H, W)
    return m / m.sum().clamp_min(1e-30)


def _unit_center(design: DiscriminatorDesign, i: int, j: int) -> tuple[float, float]:
    """Input-pixel centre of the rf of unit ``(i, j)`` of the last conv map."""
    rep = design.report
    return tuple(  # type: ignore[return-value]
        idx * rep.stride[a] - rep.padding[a] + (rep.size[a] - 1) / 2 for a, idx in enumerate((i, j))
    )


def _measure(d: nn.Module, real: Tensor, unit) -> tuple[Tensor, tuple[int, int] | None]:
    was = d.training
    d.eval()
    try:
        x = real.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out, ij = unit(x)
            m = _gradient_map(out, x)
    finally:
        d.train(was)
    return m, ij


def _erf(m: Tensor, center: tuple[float, float]) -> ERF:
    r50, r95 = erf_radii(m, center).tolist()
    return ERF(m.detach().cpu(), center, r50, r95)


def conv_erf(d: nn.Module, real: Tensor, design: DiscriminatorDesign) -> ERF:
    """ERF of the conv stack (``d.features``) of ``d`` over ``real`` ``(N, C, H, W)`` in [-1, 1].

    The central unit ``(H'//2, W'//2)`` of the last conv map, summed over its channels; D in
    eval mode (dropout off).
    """

    def unit(x: Tensor):
        fmap = d.features(x)  # (N, C', H', W')
        i, j = fmap.shape[2] // 2, fmap.shape[3] // 2
        return fmap[:, :, i, j], (i, j)

    m, (i, j) = _measure(d, real, unit)  # type: ignore[misc]
    return _erf(m, _unit_center(design, i, j))


def decision_erf(d: nn.Module, real: Tensor, design: DiscriminatorDesign) -> ERF:
    """Gradient map of ``d``'s decision: the image logit (image head), or the central location's
    logit (patch head), over ``real`` images; D in eval mode."""

    def unit(x: Tensor):
        out = d(x)
        if out.dim() == 4:  # patch head: the central location
            i, j = out.shape[2] // 2, out.shape[3] // 2
            return out[:, 0, i, j], (i, j)
        return out[:, 0], None

    m, ij = _measure(d, real, unit)
    if ij is None:
        h, w = m.shape
        center = ((h - 1) / 2, (w - 1) / 2)
    else:
        center = _unit_center(design, *ij)
    return _erf(m, center)
