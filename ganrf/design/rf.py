"""Receptive-field arithmetic: what one unit of a discriminator sees (no torch needed).

The method is the one in the project's notes (``shared/DESIGN.md``):

* only conv and pool layers count, layer 1 is the first;
* feature-map size forward: ``w(i+1) = (w(i) + 2 p(i+1) - k(i+1)) / s(i+1) + 1`` (floored, as
  PyTorch does, and with the padding split into its two sides so ``padding='same'`` with an even
  kernel is exact);
* rf backward from 1: ``rf(j) = (rf(j+1) - 1) * s(j) + k(j)`` for ``j = i .. 1``;

generalised, after Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks"
(Distill, 2019), to dilation (effective kernel ``d (k - 1) + 1``), max/avg pooling, non-square
kernels, effective stride (the product of strides, the "jump") and effective padding
``sum_l p_l * prod_{i<l} s_i``. Height and width are computed separately.

Two numbers matter for a discriminator, and the report gives both:

* ``size``: the theoretical rf of one unit of the last spatial feature map;
* ``decision_rf``: what one *output* depends on. A dense layer over the flattened map, global
  pooling, or a normalisation whose statistics span the whole map (BatchNorm in training mode,
  InstanceNorm, GroupNorm, LayerNorm) makes it the whole input; a per-location (patch) head keeps
  it equal to ``size``.

This module works on layer specs (one chain) and imports no torch. A module is traced as a
graph by :mod:`ganrf.design.trace` (branches, merges, resizing: per-axis windows in
:mod:`ganrf.design.window`), whose report is the same :class:`RFReport`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ganrf.design.spec import SpecError, split_spec, unreadable
from ganrf.design.table import LayerRow, Pair, RFReport, fmt_pair

__all__ = [
    "LayerSpec",
    "LayerRow",
    "RFReport",
    "RFError",
    "conv_padding",
    "parse_specs",
    "receptive_field",
    "torch_conv_padding",
]

DENSE_REASON = "dense layer over the flattened map"
PATCH_REASON = "one decision per location"


class RFError(ValueError):
    """A model or spec whose receptive field cannot be computed honestly."""


# --------------------------------------------------------------------------------------------
# The padding rule, written once (the normalisation rule is in ganrf.design.norms)
# --------------------------------------------------------------------------------------------


def conv_padding(kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Default zeros ``(before, after)`` one axis of a conv gets here, in specs and designs.

    At stride 1 it is "same": ``d(k-1)`` in all, ``total // 2`` before and the rest after, as
    PyTorch's ``padding='same'`` splits an even kernel's padding. At larger strides it is
    ``d(k-1)//2`` on each side (the notes' Keras ``'same'`` gives the same 28 -> 14 -> 7 with
    ``conv5s2``).
    """
    total = dilation * (kernel - 1)
    if stride == 1:
        return total // 2, total - total // 2
    return total // 2, total // 2


def torch_conv_padding(kernel: int, stride: int = 1, dilation: int = 1) -> int | str:
    """The ``padding`` argument of an ``nn.Conv2d`` whose geometry is :func:`conv_padding`'s:
    ``"same"`` at stride 1 (PyTorch splits it as :func:`conv_padding` does), else the symmetric
    integer."""
    if stride == 1:
        return "same"
    return conv_padding(kernel, stride, dilation)[0]


# --------------------------------------------------------------------------------------------
# Layers (their report and its table: ganrf.design.table)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerSpec:
    """One conv or pool layer, per axis ``(h, w)``.

    ``pad_begin``/``pad_end`` are the zeros added before/after the input on each axis: symmetric
    for an integer padding, ``total // 2`` before and the rest after for ``padding='same'``
    (PyTorch's convention). ``name`` is the module's name when traced, else "".
    """

    kind: str  # "conv" | "maxpool" | "avgpool"
    kernel: Pair
    stride: Pair = (1, 1)
    pad_begin: Pair = (0, 0)
    pad_end: Pair = (0, 0)
    dilation: Pair = (1, 1)
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("conv", "maxpool", "avgpool"):
            raise RFError(f"unknown layer kind {self.kind!r}; use conv, maxpool or avgpool")
        for label, pair, low in (
            ("kernel", self.kernel, 1),
            ("stride", self.stride, 1),
            ("dilation", self.dilation, 1),
            ("padding", self.pad_begin, 0),
            ("padding", self.pad_end, 0),
        ):
            if len(pair) != 2 or any(int(v) != v or v < low for v in pair):
                raise RFError(
                    f"layer {self.name or self.kind}: {label} {pair} must be two integers >= {low}"
                )

    @property
    def effective_kernel(self) -> Pair:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore[return-value]

    def out_size(self, size: Pair) -> Pair:
        """Feature-map size after this layer (the notes' forward formula, floored)."""
        out = []
        for n, pb, pe, ke, s in zip(
            size, self.pad_begin, self.pad_end, self.effective_kernel, self.stride
        ):
            out.append((n + pb + pe - ke) // s + 1)
        return tuple(out)  # type: ignore[return-value]

    @property
    def token(self) -> str:
        """What the layer is, as a spec token: ``conv5s2``, ``conv3d2``, ``conv4p1``,
        ``maxpool2``. Stride, dilation and padding appear only where they differ from
        :func:`parse_specs`' defaults, so a token of square values reads back to this layer."""
        text = f"{self.kind}{fmt_pair(self.kernel)}"
        if self.kind == "conv":
            stride_default: Pair = (1, 1)
            pads = [
                conv_padding(k, s, d) for k, s, d in zip(self.kernel, self.stride, self.dilation)
            ]
            pad_default = (tuple(p[0] for p in pads), tuple(p[1] for p in pads))
        else:
            stride_default, pad_default = (self.kernel[0],) * 2, ((0, 0), (0, 0))  # type: ignore[assignment]
        if self.stride != stride_default:
            text += f"s{fmt_pair(self.stride)}"
        if self.dilation != (1, 1):
            text += f"d{fmt_pair(self.dilation)}"
        if (self.pad_begin, self.pad_end) != pad_default:
            text += f"p{fmt_pair(self.pad_begin)}"
            if self.pad_end != self.pad_begin:
                text += f"-{fmt_pair(self.pad_end)}"
        return text


# --------------------------------------------------------------------------------------------
# Spec strings: "conv5s2,conv5s2", "conv3,conv3d2,maxpool2", "conv3x5s1p0"
# --------------------------------------------------------------------------------------------

_SPEC_RE = re.compile(
    r"^(?P<kind>conv|maxpool|avgpool)(?P<k>\d+)(?:x(?P<k2>\d+))?"
    r"(?:s(?P<s>\d+))?(?:d(?P<d>\d+))?(?:p(?P<p>\d+))?$"
)
SPEC_HELP = (
    "layers are comma-separated tokens like conv5s2 (kernel 5, stride 2), conv3x5 (3x5 kernel), "
    "conv3d2 (dilation 2), conv4s2p1 (explicit padding 1), maxpool2, avgpool3s1; a last token "
    "'dense' or 'patch' names the head"
)


def parse_specs(text: str) -> tuple[list[LayerSpec], str | None]:
    """Parse a layer string into specs and an optional head (``"image"``, ``"patch"``).

    Conv padding defaults to :func:`conv_padding` ("same" at stride 1, ``d(k-1)//2`` each side
    at larger strides). Pools default to stride = kernel and no padding.
    """
    try:
        tokens, head = split_spec(text)  # the grammar every family shares (ganrf.design.spec)
    except SpecError as e:
        raise RFError(str(e)) from None
    specs = []
    for i, tok in enumerate(tokens, 1):
        m = _SPEC_RE.match(tok)
        if not m:
            raise RFError(str(unreadable(i, tok, SPEC_HELP)))
        kind = m["kind"]
        k = (int(m["k"]), int(m["k2"] or m["k"]))
        d = int(m["d"] or 1)
        if kind == "conv":
            s = int(m["s"] or 1)
            if m["p"] is not None:
                pb = pe = (int(m["p"]),) * 2
            else:
                pads = [conv_padding(kk, s, d) for kk in k]
                pb, pe = (pads[0][0], pads[1][0]), (pads[0][1], pads[1][1])
        else:
            if d != 1:
                raise RFError(f"layer {i} {tok!r}: dilated pooling is not supported")
            s = int(m["s"] or k[0])
            pb = pe = (int(m["p"] or 0),) * 2
        specs.append(LayerSpec(kind, k, (s, s), pb, pe, (d, d)))  # type: ignore[arg-type]
    return specs, head


# --------------------------------------------------------------------------------------------
# The arithmetic
# --------------------------------------------------------------------------------------------


def _rf_backward(specs: Sequence[LayerSpec], axis: int) -> int:
    """The notes' formula: rf = 1 above the last layer, then rf = (rf - 1) * s + k going down."""
    rf = 1
    for spec in reversed(specs):
        rf = (rf - 1) * spec.stride[axis] + spec.effective_kernel[axis]
    return rf


def stack_report(
    specs: Sequence[LayerSpec], input_shape: tuple[int, int, int]
) -> tuple[list[LayerRow], Pair, Pair, Pair, Pair]:
    """Rows, rf, effective stride, effective padding and last map size of a chain of layers."""
    c, h, w = input_shape
    if min(c, h, w) < 1:
        raise RFError(f"input shape {input_shape} must be positive (C, H, W)")
    if not specs:
        raise RFError("the model has no conv or pool layer, so it has no receptive field")
    size: Pair = (h, w)
    rows = []
    for i, spec in enumerate(specs, 1):
        size = spec.out_size(size)
        if min(size) < 1:
            raise RFError(
                f"layer {i} ({spec.token}) leaves no feature map on a {h}x{w} input; "
                f"use a larger input or fewer/smaller-stride layers"
            )
        prefix = specs[:i]
        rf = (_rf_backward(prefix, 0), _rf_backward(prefix, 1))
        jump = tuple(math.prod(s.stride[a] for s in prefix) for a in (0, 1))
        rows.append(
            LayerRow(
                index=i,
                layer=spec.token,
                module=spec.name,
                kind=spec.kind,
                kernel=spec.kernel,
                stride=spec.stride,
                padding=spec.pad_begin,
                dilation=spec.dilation,
                out_size=size,
                rf=rf,
                jump=jump,  # type: ignore[arg-type]
            )
        )
    last = rows[-1]
    padding = tuple(
        sum(
            spec.pad_begin[a] * math.prod(p.stride[a] for p in specs[:li])
            for li, spec in enumerate(specs)
        )
        for a in (0, 1)
    )
    return rows, last.rf, last.jump, padding, size  # type: ignore[return-value]


def receptive_field(
    model: Sequence[LayerSpec | str] | str,
    input_shape: Sequence[int],
    *,
    head: str | None = None,
) -> RFReport:
    """Receptive field of a list of layer specs (for an ``nn.Module`` too:
    :func:`ganrf.design.receptive_field`).

    Args:
        model: a list of :class:`LayerSpec`, or a spec string such as
            ``"conv5s2,conv5s2,dense"`` (see :func:`parse_specs`).
        input_shape: ``(C, H, W)`` of one input image.
        head: as for :func:`ganrf.design.receptive_field`, which documents the report and
            the errors.
    """
    if len(input_shape) != 3:
        raise RFError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    shape: tuple[int, int, int] = tuple(int(v) for v in input_shape)  # type: ignore[assignment]
    if hasattr(model, "named_modules"):  # an nn.Module, recognised without importing torch
        raise RFError("for an nn.Module use ganrf.design.receptive_field, which traces it")
    if isinstance(model, str):
        specs, parsed_head = parse_specs(model)
        head = head or parsed_head
    else:
        specs = []
        for item in model:
            if isinstance(item, str):
                more, h = parse_specs(item)
                if h:
                    head = head or h
                specs += more
            else:
                specs.append(item)
    if head not in (None, "image", "patch"):
        raise RFError(f"unknown head {head!r}; use 'image' or 'patch'")
    rows, size, jump, padding, fmap = stack_report(specs, shape)
    if head == "image":
        grid: Pair = (1, 1)
        decision, whole, reason = (shape[1], shape[2]), True, DENSE_REASON
    else:
        reason = PATCH_REASON if head else "no head given: one unit of the last map"
        grid, decision, whole = fmap, size, False
    return RFReport(shape, tuple(rows), size, jump, padding, fmap, grid, decision, whole, reason)
