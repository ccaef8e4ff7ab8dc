"""Effective receptive field (Luo et al. 2016) of a trained discriminator.

The gradient of one central output with respect to the input, its absolute value averaged over
real images and channels, is the ERF map. Its radii are the smallest square half-widths around
the central output's rf centre that hold 50% and 95% of the gradient mass, so ``2 r + 1`` reads
on the same scale as the theoretical rf.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ganrf.designs import DiscriminatorDesign


@dataclass(frozen=True)
class ERF:
    map: Tensor  # (H, W), sums to 1
    center: tuple[float, float]  # (y, x) in input pixels
    radius50: float
    radius95: float

    @property
    def size50(self) -> float:
        return 2 * self.radius50 + 1

    @property
    def size95(self) -> float:
        return 2 * self.radius95 + 1


def effective_rf(d: nn.Module, real: Tensor, design: DiscriminatorDesign) -> ERF:
    """ERF of ``d`` over ``real`` images ``(N, C, H, W)`` in [-1, 1]; D in eval mode."""
    was = d.training
    d.eval()
    try:
        x = real.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            out = d(x)
            if out.dim() == 4:  # patch head: the central location
                i, j = out.shape[2] // 2, out.shape[3] // 2
                central = out[:, 0, i, j]
            else:
                i = j = None
                central = out[:, 0]
            (grad,) = torch.autograd.grad(central.sum(), x)
    finally:
        d.train(was)
    m = grad.abs().float().mean((0, 1))  # (H, W)
    m = m / m.sum().clamp_min(1e-30)
    h, w = m.shape
    if i is None:
        center = ((h - 1) / 2, (w - 1) / 2)
    else:
        rep = design.report
        center = tuple(
            idx * rep.stride[a] - rep.padding[a] + (rep.size[a] - 1) / 2
            for a, idx in enumerate((i, j))
        )
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    cheb = torch.maximum((yy - center[0]).abs(), (xx - center[1]).abs()).flatten().float()
    order = cheb.argsort()
    mass = m.flatten()[order].cumsum(0)
    dist = cheb[order]

    def radius(q: float) -> float:
        k = int(torch.searchsorted(mass, torch.tensor(q - 1e-9)))
        return float(dist[min(k, len(dist) - 1)])

    return ERF(m.cpu(), center, radius(0.5), radius(0.95))  # type: ignore[arg-type]
