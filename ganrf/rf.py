"""Receptive-field arithmetic: what one unit of a discriminator sees.

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
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = [
    "LayerSpec",
    "LayerRow",
    "RFReport",
    "RFError",
    "parse_specs",
    "receptive_field",
]

Pair = tuple[int, int]


class RFError(ValueError):
    """A model or spec whose receptive field cannot be computed honestly."""


@dataclass(frozen=True)
class LayerSpec:
    """One conv or pool layer, per axis ``(h, w)``.

    ``pad_begin``/``pad_end`` are the zeros added before/after the input on each axis: symmetric
    for an integer padding, ``total // 2`` before and the rest after for ``padding='same'``
    (PyTorch's convention).
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
    def label(self) -> str:
        k = _fmt_pair(self.kernel)
        text = f"{self.kind}{k}s{_fmt_pair(self.stride)}"
        if self.dilation != (1, 1):
            text += f"d{_fmt_pair(self.dilation)}"
        return text


@dataclass(frozen=True)
class LayerRow:
    """One row of the notes-style table: a layer and what a unit after it sees."""

    index: int  # 1-based, as in the notes
    name: str
    kind: str
    kernel: Pair
    stride: Pair
    padding: Pair  # padding before the input (top, left)
    dilation: Pair
    out_size: Pair  # feature-map size after the layer
    rf: Pair  # rf of one unit after this layer, in input pixels
    jump: Pair  # effective stride after this layer


@dataclass(frozen=True)
class RFReport:
    """Receptive field of a discriminator; every field is an ``(h, w)`` pair unless noted."""

    input_shape: tuple[int, int, int]  # (C, H, W)
    layers: tuple[LayerRow, ...]
    size: Pair  # theoretical rf of one unit of the last spatial map
    stride: Pair  # effective stride (jump) of that map
    padding: Pair  # effective padding of that map
    feature_size: Pair  # size of the last spatial map
    output_grid: Pair  # how many decisions per image: (1, 1) for an image head
    decision_rf: Pair  # what one output depends on
    decision_whole: bool  # True when one output depends on the whole input
    decision_reason: str  # why, in one phrase
    mixes_batch: bool = False  # BatchNorm in training mode: outputs depend on other images too
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def depth(self) -> int:
        return len(self.layers)

    def table(self) -> str:
        """The notes-style table: every layer's feature-map size and rf."""
        c, h, w = self.input_shape
        head = ["layer", "kernel", "stride", "pad", "dilation", "feature map", "rf"]
        rows = [["input", "", "", "", "", f"{h}x{w}x{c}", "1"]]
        for r in self.layers:
            rows.append(
                [
                    f"{r.index} {r.name}",
                    _fmt_pair(r.kernel, "x"),
                    _fmt_pair(r.stride, "x"),
                    _fmt_pair(r.padding, "x"),
                    _fmt_pair(r.dilation, "x"),
                    f"{r.out_size[0]}x{r.out_size[1]}",
                    _fmt_pair(r.rf, "x"),
                ]
            )
        widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
        lines = [
            "  ".join(str(v).ljust(wd) for v, wd in zip(row, widths)).rstrip()
            for row in [head, *rows]
        ]
        lines.insert(1, "  ".join("-" * wd for wd in widths))
        decision = _fmt_pair(self.decision_rf, "x")
        lines += [
            "",
            f"rf {_fmt_pair(self.size, 'x')}, effective stride {_fmt_pair(self.stride, 'x')}, "
            f"effective padding {_fmt_pair(self.padding, 'x')}",
            f"decision rf {decision} ({self.decision_reason}), "
            f"output grid {self.output_grid[0]}x{self.output_grid[1]}",
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt_pair(pair: Pair, sep: str = "x") -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}{sep}{pair[1]}"


def _pair(v: int | Sequence[int]) -> Pair:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    if len(t) == 1:
        return (t[0], t[0])
    return t[0], t[1]


# --------------------------------------------------------------------------------------------
# Spec strings: "conv5s2,conv5s2", "conv3,conv3d2,maxpool2", "conv3x5s1p0"
# --------------------------------------------------------------------------------------------

_SPEC_RE = re.compile(
    r"^(?P<kind>conv|maxpool|avgpool)(?P<k>\d+)(?:x(?P<k2>\d+))?"
    r"(?:s(?P<s>\d+))?(?:d(?P<d>\d+))?(?:p(?P<p>\d+))?$"
)
HEAD_TOKENS = {"dense": "image", "image": "image", "patch": "patch"}
SPEC_HELP = (
    "layers are comma-separated tokens like conv5s2 (kernel 5, stride 2), conv3x5 (3x5 kernel), "
    "conv3d2 (dilation 2), conv4s2p1 (explicit padding 1), maxpool2, avgpool3s1; a last token "
    "'dense' or 'patch' names the head"
)


def parse_specs(text: str) -> tuple[list[LayerSpec], str | None]:
    """Parse a layer string into specs and an optional head (``"image"``, ``"patch"``).

    Conv padding defaults to "same" at stride 1 (``d(k-1)`` zeros split ``total//2`` before,
    the rest after, as PyTorch's ``padding='same'``) and to ``d(k-1)//2`` on both sides at larger
    strides (the notes' Keras ``'same'`` gives the same 28 -> 14 -> 7). Pools default to stride =
    kernel and no padding.
    """
    tokens = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not tokens:
        raise RFError(f"no layers in {text!r}; {SPEC_HELP}")
    head = None
    if tokens[-1] in HEAD_TOKENS:
        head = HEAD_TOKENS[tokens.pop()]
    specs = []
    for i, tok in enumerate(tokens, 1):
        m = _SPEC_RE.match(tok)
        if not m:
            raise RFError(f"cannot read layer {i} {tok!r}; {SPEC_HELP}")
        kind = m["kind"]
        k = (int(m["k"]), int(m["k2"] or m["k"]))
        d = int(m["d"] or 1)
        if kind == "conv":
            s = int(m["s"] or 1)
            if m["p"] is not None:
                pb = pe = (int(m["p"]),) * 2
            elif s == 1:
                total = tuple(d * (kk - 1) for kk in k)
                pb = tuple(t // 2 for t in total)
                pe = tuple(t - t // 2 for t in total)
            else:
                pb = pe = tuple(d * (kk - 1) // 2 for kk in k)
        else:
            if d != 1:
                raise RFError(f"layer {i} {tok!r}: dilated pooling is not supported")
            s = int(m["s"] or k[0])
            pb = pe = (int(m["p"] or 0),) * 2
        specs.append(
            LayerSpec(kind, k, (s, s), tuple(pb), tuple(pe), (d, d), name=f"{kind}{i}")  # type: ignore[arg-type]
        )
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


def _stack_report(
    specs: Sequence[LayerSpec], input_shape: tuple[int, int, int]
) -> tuple[list[LayerRow], Pair, Pair, Pair, Pair]:
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
                f"layer {i} ({spec.label}) leaves no feature map on a {h}x{w} input; "
                f"use a larger input or fewer/smaller-stride layers"
            )
        prefix = specs[:i]
        rf = (_rf_backward(prefix, 0), _rf_backward(prefix, 1))
        jump = tuple(math.prod(s.stride[a] for s in prefix) for a in (0, 1))
        rows.append(
            LayerRow(
                index=i,
                name=spec.name or spec.label,
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
    model: nn.Module | Sequence[LayerSpec | str] | str,
    input_shape: Sequence[int],
    *,
    head: str | None = None,
) -> RFReport:
    """Receptive field of a model or of a list of layer specs.

    Args:
        model: an ``nn.Module`` whose conv and pool layers run one after another (it is run once
            on a dummy input to find them), a list of :class:`LayerSpec`, or a spec string such
            as ``"conv5s2,conv5s2,dense"`` (see :func:`parse_specs`).
        input_shape: ``(C, H, W)`` of one input image.
        head: for specs only: ``"image"`` (flatten + dense: one decision over the whole image) or
            ``"patch"`` / ``None`` (one decision per location of the last map).

    Returns:
        An :class:`RFReport`.

    Raises:
        RFError: a branching conv path, transposed convs, functional convs/pools that hooks
            cannot see, or layers that leave no feature map.
    """
    if len(input_shape) != 3:
        raise RFError(f"input_shape must be (C, H, W), got {tuple(input_shape)}")
    shape = tuple(int(v) for v in input_shape)
    if isinstance(model, nn.Module):
        return _trace_module(model, shape)  # type: ignore[arg-type]
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
    rows, size, jump, padding, fmap = _stack_report(specs, shape)  # type: ignore[arg-type]
    if head == "image":
        grid: Pair = (1, 1)
        decision, whole, reason = (shape[1], shape[2]), True, "dense layer over the flattened map"
    else:
        reason = "one decision per location" if head else "no head given: one unit of the last map"
        grid, decision, whole = fmap, size, False
    return RFReport(shape, tuple(rows), size, jump, padding, fmap, grid, decision, whole, reason)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Tracing an nn.Module
# --------------------------------------------------------------------------------------------

_SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_REFUSED = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Conv1d,
    nn.Conv3d,
    nn.Upsample,
    nn.Fold,
    nn.Unfold,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
)
# Autograd nodes that change spatial geometry; finding one we did not hook means a functional
# op (F.conv2d, F.max_pool2d, F.pad, F.interpolate) that would otherwise be silently miscounted.
_GEOMETRY_NODE = re.compile(
    r"Convolution|Pool|Upsample|ConstantPadNd|ReflectionPad|ReplicationPad|Im2Col|Col2Im"
)
_WHOLE_MAP_NORMS = (nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def _module_spec(mod: nn.Module, name: str, in_hw: Pair, out_hw: Pair) -> LayerSpec | str:
    """Spec of one hooked layer, or ``"global"`` for a pool to 1x1."""
    if isinstance(mod, nn.Conv2d):
        k, s, d = _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.dilation)
        # padding_mode (reflect, replicate, circular) pads the same number of pixels: the
        # geometry, and so the rf, is the same as with zeros.
        if isinstance(mod.padding, str):
            if mod.padding == "valid":
                pb = pe = (0, 0)
            else:  # "same": total d(k-1), total//2 before (torch's F.conv2d convention)
                total = tuple(dd * (kk - 1) for kk, dd in zip(k, d))
                pb = tuple(t // 2 for t in total)
                pe = tuple(t - t // 2 for t in total)
        else:
            pb = pe = _pair(mod.padding)
        return LayerSpec("conv", k, s, pb, pe, d, name=name)  # type: ignore[arg-type]
    if isinstance(mod, (nn.MaxPool2d, nn.AvgPool2d)):
        if getattr(mod, "ceil_mode", False):
            raise RFError(f"{name}: pooling with ceil_mode=True is not supported")
        k, s = _pair(mod.kernel_size), _pair(mod.stride or mod.kernel_size)
        d = _pair(getattr(mod, "dilation", 1))
        p = _pair(mod.padding)
        kind = "maxpool" if isinstance(mod, nn.MaxPool2d) else "avgpool"
        return LayerSpec(kind, k, s, p, p, d, name=name)
    # Adaptive pools: global when they reduce to 1x1, a plain pool when the sizes divide.
    if out_hw == (1, 1):
        return "global"
    if all(i % o == 0 for i, o in zip(in_hw, out_hw)):
        k = tuple(i // o for i, o in zip(in_hw, out_hw))
        kind = "maxpool" if isinstance(mod, nn.AdaptiveMaxPool2d) else "avgpool"
        return LayerSpec(kind, k, k, name=name)  # type: ignore[arg-type]
    raise RFError(
        f"{name}: adaptive pooling from {in_hw} to {out_hw} uses overlapping, uneven windows; "
        "its receptive field is not one number"
    )


def _trace_module(model: nn.Module, input_shape: tuple[int, int, int]) -> RFReport:
    names = {
        m: f"{n} ({type(m).__name__})" if n else type(m).__name__ for n, m in model.named_modules()
    }
    for mod, name in names.items():
        if isinstance(mod, _REFUSED):
            raise RFError(
                f"{name} is a {type(mod).__name__}: only 2-d conv and pool layers have rf "
                "arithmetic here (a transposed conv or upsampling inside a discriminator makes "
                "the rf depend on the output position); remove it or compute its rf by hand"
            )

    records: list[dict] = []  # one per spatial layer call, in execution order
    hooks = []

    def pre(mod, args):
        x = args[0]
        records.append({"mod": mod, "in": x, "in_fn": x.grad_fn, "in_hw": tuple(x.shape[-2:])})

    def post(mod, args, out):
        rec = records[-1]
        rec["out_fn"] = out.grad_fn
        rec["out_hw"] = tuple(out.shape[-2:])

    norms_seen: list[tuple[str, nn.Module]] = []

    def norm_hook(mod, args, out):
        norms_seen.append((names[mod], mod))

    for mod in names:
        if isinstance(mod, _SPATIAL):
            hooks.append(mod.register_forward_pre_hook(pre))
            hooks.append(mod.register_forward_hook(post))
        elif isinstance(mod, (nn.modules.batchnorm._BatchNorm, *_WHOLE_MAP_NORMS)):
            hooks.append(mod.register_forward_hook(norm_hook))

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    # Two images so BatchNorm in training mode accepts the batch.
    x = torch.zeros((2, *input_shape), device=device, dtype=dtype, requires_grad=True)
    # Run without touching BatchNorm running statistics or dropout RNG the caller relies on.
    bn_state = {
        m: (m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
        for m in names
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and m.track_running_stats
        and m.running_mean is not None
    }
    rng = torch.get_rng_state()
    try:
        with torch.enable_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
        torch.set_rng_state(rng)
        for m, (mean, var, nbt) in bn_state.items():
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(nbt)
    if not isinstance(out, torch.Tensor):
        raise RFError(f"{type(model).__name__} returned {type(out).__name__}, not one tensor")

    specs: list[LayerSpec] = []
    global_pool = None
    node_of: dict = {}  # autograd node -> index in records (0 = input)
    for i, rec in enumerate(records, 1):
        name = names[rec["mod"]]
        if global_pool is not None:
            raise RFError(
                f"{name} runs after the global pool {global_pool}; the conv path must end there"
            )
        spec = _module_spec(rec["mod"], name, rec["in_hw"], rec["out_hw"])
        if spec == "global":
            global_pool = name
        else:
            specs.append(spec)  # type: ignore[arg-type]
        if rec["out_fn"] is not None:
            node_of[rec["out_fn"]] = i

    # Check the path is a chain: each layer's input depends on the previous layer only.
    for i, rec in enumerate(records, 1):
        if rec.pop("in") is x:
            sources, geometry = {0}, set()
        else:
            sources, geometry = _sources(rec["in_fn"], node_of, x)
        expected = {i - 1}
        if sources != expected or geometry:
            _raise_branch(names[rec["mod"]], i, sources, geometry, records, names)
    sources, geometry = _sources(out.grad_fn, node_of, x)
    if sources != {len(records)} or geometry:
        _raise_branch("the output", len(records) + 1, sources, geometry, records, names)

    rows, size, jump, padding, fmap = _stack_report(specs, input_shape)
    notes: list[str] = []
    mixes_batch = False
    whole, reason = False, "one decision per location"
    for name, mod in norms_seen:
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and (
            mod.training or not mod.track_running_stats
        ):
            mixes_batch, whole = True, True
            reason = f"BatchNorm in training mode ({name}) mixes every position and image"
            notes.append(
                f"{name}: BatchNorm in training mode mixes the whole batch and every position "
                "into each output; in eval mode it is a per-location affine map"
            )
        elif isinstance(mod, _WHOLE_MAP_NORMS) and not whole:
            whole, reason = True, f"{type(mod).__name__} ({name}) normalises over the whole map"
    spatial_out = out.dim() == 4 and tuple(out.shape[-2:]) == fmap
    if global_pool is not None:
        whole, reason = True, f"global pooling ({global_pool})"
        grid: Pair = (1, 1)
    elif spatial_out:
        grid = fmap
    elif out.dim() == 4:
        raise RFError(
            f"the output map is {tuple(out.shape[-2:])} but the last conv/pool map is {fmap}; "
            "something resizes it outside conv and pool layers"
        )
    else:
        grid = (1, 1)
        whole, reason = True, "dense layer over the flattened map"
    decision = (input_shape[1], input_shape[2]) if whole else size
    return RFReport(
        input_shape,
        tuple(rows),
        size,
        jump,
        padding,
        fmap,
        grid,
        decision,
        whole,
        reason,
        mixes_batch,
        tuple(notes),
    )


def _sources(fn, node_of: dict, x: torch.Tensor) -> tuple[set[int], set[str]]:
    """Which hooked layers (0 = the input image) a tensor's autograd graph reaches first, and any
    geometry-changing nodes met on the way."""
    sources: set[int] = set()
    geometry: set[str] = set()
    seen = set()
    stack = [fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node in node_of:
            sources.add(node_of[node])
            continue
        if type(node).__name__ == "AccumulateGrad":
            if node.variable is x:
                sources.add(0)
            continue  # a parameter
        if _GEOMETRY_NODE.search(type(node).__name__):
            geometry.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    return sources, geometry


def _raise_branch(where, index, sources, geometry, records, names) -> None:
    if geometry:
        raise RFError(
            f"before {where} a functional op ({', '.join(sorted(geometry))}) changes the spatial "
            "geometry outside an nn.Module the tracer can see; use nn.Conv2d / nn.MaxPool2d / "
            "nn.AvgPool2d modules"
        )
    label = {0: "the input"} | {i: names[r["mod"]] for i, r in enumerate(records, 1)}
    got = ", ".join(label[s] for s in sorted(sources)) or "nothing"
    raise RFError(
        f"{where} depends on {got}: the conv path branches (a residual add or a concatenation), "
        "and this tool computes the rf of a single chain of conv/pool layers only"
    )
