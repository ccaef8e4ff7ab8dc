"""GAN losses as pure functions of discriminator logits.

Logits may be ``(B, 1)`` (image head) or ``(B, 1, H', W')`` (patch head); every loss averages
over all of them, so a patch discriminator's loss is the mean of its per-location losses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ganrf.config import LOSSES


def ns_d(real: Tensor, fake: Tensor) -> Tensor:
    """The notes' (DCGAN) cross-entropy: -log D(x) - log(1 - D(G(z)))."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def ns_g(fake: Tensor) -> Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.softplus(-fake).mean()


def wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def wgan_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_g(fake: Tensor) -> Tensor:
    return -fake.mean()


def gradient_penalty(d: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates.

    A patch critic's value for an image is the mean of its per-location scores, matching how the
    loss averages them. Multiply by lambda outside.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    score = d(x_hat).flatten(1).mean(1)  # (B,)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


# One (d_loss, g_loss) pair per name in ganrf.config.LOSSES, the list the config validates.
_PAIRS: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]] = {
    "ns": (ns_d, ns_g),
    "wgan-gp": (wgan_d, wgan_g),
    "hinge": (hinge_d, hinge_g),
}
assert tuple(_PAIRS) == LOSSES, "ganrf.config.LOSSES and the loss functions disagree"


def get(kind: str) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """(d_loss, g_loss) for ``kind``."""
    try:
        return _PAIRS[kind]
    except KeyError:
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}") from None
