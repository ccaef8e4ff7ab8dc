"""Discriminator designs and what they see: rf arithmetic (:mod:`~ganrf.design.rf`,
torch-free), tracing an ``nn.Module`` (:mod:`~ganrf.design.trace`), the norm rule
(:mod:`~ganrf.design.norms`), design values (:mod:`~ganrf.design.designs`) and the solver that
finds them (:mod:`~ganrf.design.search`).

:func:`receptive_field` is the one entry point for any of them: a spec string, a list of layer
specs, or a module. Importing this package imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ganrf.design import rf
from ganrf.design.rf import LayerSpec, RFError, RFReport

if TYPE_CHECKING:
    from torch import nn

__all__ = ["receptive_field", "RFError", "RFReport"]


def receptive_field(
    model: nn.Module | Sequence[LayerSpec | str] | str,
    input_shape: Sequence[int],
    *,
    head: str | None = None,
) -> RFReport:
    """Receptive field of a model or of a list of layer specs.

    Args:
        model: an ``nn.Module`` that ``torch.fx`` can trace (its graph is followed by
            :func:`ganrf.design.trace.trace_module` and run once on zeros for the shapes:
            branches, residual adds and muls, channel concats, padding, pools, transposed convs,
            upsampling, global pooling, dense heads, self-attention), a list of
            :class:`LayerSpec`, or a spec string such as ``"conv5s2,conv5s2,dense"`` (see
            :func:`ganrf.design.rf.parse_specs`).
        input_shape: ``(C, H, W)`` of one input image.
        head: for specs only: ``"image"`` (flatten + dense: one decision over the whole image) or
            ``"patch"`` / ``None`` (one decision per location of the last map).

    Returns:
        An :class:`RFReport`: one table row per layer (traced: per node that changes what a
        unit sees: convs, pools, pads, merges, resizes, the op that makes it global), the rf of
        the last feature map and the decision rf of the output. A merge sees the union of its
        branches' windows, each with its own offset; after upsampling or a transposed conv the
        rf depends on the output position, so a row shows the range (``4-5``), ``rf`` the
        largest, and a note says so. Global pooling, a dense layer over the flattened map,
        self-attention and whole-map normalisations make the decision rf the whole image.

    Raises:
        RFError: one sentence naming what cannot be followed, never a guessed number:
            control flow on tensor values (fx cannot trace it: the line is named), an op or
            module without an rf rule (``ganrf.design.ops``), branches merged at different
            strides, a channel slice of a concat whose branches differ, interpolation by a
            non-integer factor, or layers that leave no feature map.
    """
    if not hasattr(model, "named_modules"):  # specs: torch-free arithmetic
        return rf.receptive_field(model, input_shape, head=head)
    if len(input_shape) != 3:
        raise RFError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    # A module is traced by running it, which needs torch: imported only now.
    from ganrf.design.trace import trace_module

    return trace_module(model, tuple(int(v) for v in input_shape))  # type: ignore[arg-type]
