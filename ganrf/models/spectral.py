"""Spectral normalisation (Miyato et al. 2018) that packs: the same maths as
``torch.nn.utils.parametrizations.spectral_norm``, written so that ``torch.func.vmap`` can run it
for K stacked members at once.

PyTorch's version updates its power-iteration vectors with ``F.normalize(..., out=self._u)``,
and vmap cannot batch an ``out=`` write. Here the iteration computes new vectors and writes them
back with ``copy_``, which vmap batches: under a pack each member's ``u`` and ``v`` are its own
row of the stacked buffers, so one power iteration per member is one batched matrix-vector
product. Values, random draws at construction and state-dict keys
(``parametrizations.weight.original``, ``parametrizations.weight.0._u``/``_v``) are PyTorch's,
so a module built with either gives the same numbers and loads the other's checkpoints.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = ["PackableSpectralNorm", "spectral_norm"]


class PackableSpectralNorm(nn.Module):
    """``weight / sigma``, sigma the largest singular value of ``weight`` flattened to
    ``(out, in * k * k)``, estimated by power iteration (``n_power_iterations`` per training
    forward; the vectors are buffers, used as they are in eval mode)."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, eps: float = 1e-12) -> None:
        super().__init__()
        if weight.ndim < 2 or n_power_iterations < 1:
            raise ValueError("spectral norm needs a weight of 2+ dims and >= 1 power iteration")
        self.n_power_iterations, self.eps = n_power_iterations, eps
        h, w = weight.flatten(1).shape
        u = weight.new_empty(h).normal_(0, 1)  # the draws PyTorch's makes, in its order
        v = weight.new_empty(w).normal_(0, 1)
        self.register_buffer("_u", F.normalize(u, dim=0, eps=eps))
        self.register_buffer("_v", F.normalize(v, dim=0, eps=eps))
        self._power_method(weight.flatten(1), 15)  # start from good vectors, as PyTorch

    @torch.no_grad()
    def _power_method(self, weight_mat: Tensor, n: int) -> None:
        u, v = self._u, self._v
        for _ in range(n):
            u = F.normalize(torch.mv(weight_mat, v), dim=0, eps=self.eps)
            v = F.normalize(torch.mv(weight_mat.mT, u), dim=0, eps=self.eps)
        # In place, so the update reaches the (stacked) buffer; copy_ is what vmap can batch.
        self._u.copy_(u)
        self._v.copy_(v)

    def forward(self, weight: Tensor) -> Tensor:
        # In fp32 under CUDA's bf16 autocast too: autocast runs mv in bf16, and vdot refuses a
        # bf16 vector against the fp32 u. The normalised weight is cast where the conv uses it.
        # (Only CUDA steps autocast; on the meta device, where footprints are counted, there is
        # no autocast to turn off.)
        off = torch.autocast("cuda", enabled=False) if weight.is_cuda else nullcontext()
        with off:
            weight_mat = weight.flatten(1)  # (out, in * k * k)
            if self.training:
                self._power_method(weight_mat, self.n_power_iterations)
            # Clones: a later forward (D(real) then D(fake)) rewrites the buffers that this
            # forward's graph would otherwise have saved.
            u = self._u.clone(memory_format=torch.contiguous_format)
            v = self._v.clone(memory_format=torch.contiguous_format)
            sigma = torch.vdot(u, torch.mv(weight_mat, v))
            return weight / sigma


def spectral_norm(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """``module`` (a conv or linear layer) with its ``weight`` spectrally normalised."""
    weight = module.weight  # type: ignore[union-attr]
    parametrize.register_parametrization(
        module, "weight", PackableSpectralNorm(weight, n_power_iterations)
    )
    return module
