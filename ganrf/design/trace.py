"""Tracing an ``nn.Module``: find its conv and pool layers by running it once.

:func:`ganrf.design.receptive_field` hands a module here; the arithmetic itself lives, torch-free, in
:mod:`ganrf.design.rf`. Hooks record every 2-d conv and pool call in execution order, the autograd graph
checks that they form one chain (a residual add or a concatenation is refused, as is a functional
op that changes the geometry unseen), and the normalisations that ran are handed to
:func:`ganrf.design.norms.apply_norms`, the one rule for what they do to the decision rf.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from ganrf.design.norms import apply_norms
from ganrf.design.rf import (
    DENSE_REASON,
    PATCH_REASON,
    LayerSpec,
    Pair,
    RFError,
    RFReport,
    conv_padding,
    stack_report,
)

__all__ = ["trace_module"]


def _pair(v: int | Sequence[int]) -> Pair:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    if len(t) == 1:
        return (t[0], t[0])
    return t[0], t[1]


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
# Which modules are which kind in ganrf.design.norms.NORM_KINDS (the rule lives there).
_NORM_CLASSES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.modules.batchnorm._BatchNorm, "batch"),
    (nn.InstanceNorm2d, "instance"),
    (nn.GroupNorm, "group"),
    (nn.LayerNorm, "layer"),
    (nn.LocalResponseNorm, "localresponse"),
)


def _norm_kind(mod: nn.Module) -> str | None:
    """The kind of normalisation ``mod`` is, or ``None`` when it keeps decisions per location:
    BatchNorm counts only in training mode or without running statistics."""
    for cls, kind in _NORM_CLASSES:
        if isinstance(mod, cls):
            if kind == "batch" and not mod.training and mod.track_running_stats:
                return None
            return kind
    return None


def _module_spec(mod: nn.Module, name: str, in_hw: Pair, out_hw: Pair) -> LayerSpec | str:
    """Spec of one hooked layer, or ``"global"`` for a pool to 1x1."""
    if isinstance(mod, nn.Conv2d):
        k, s, d = _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.dilation)
        # padding_mode (reflect, replicate, circular) pads the same number of pixels: the
        # geometry, and so the rf, is the same as with zeros.
        if isinstance(mod.padding, str):
            if mod.padding == "valid":
                pb = pe = (0, 0)
            else:  # "same" (PyTorch allows it at stride 1 only): split as conv_padding does
                pads = [conv_padding(kk, 1, dd) for kk, dd in zip(k, d)]
                pb, pe = (pads[0][0], pads[1][0]), (pads[0][1], pads[1][1])
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


def trace_module(model: nn.Module, input_shape: tuple[int, int, int]) -> RFReport:
    """Receptive field of ``model`` on ``(C, H, W)`` inputs, found by running it once on zeros
    (BatchNorm statistics and the RNG state are restored afterwards); see
    :func:`ganrf.design.receptive_field`."""
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

    norms_seen: list[tuple[str, str]] = []  # (kind, name) per normalisation call

    def norm_hook(mod, args, out):
        kind = _norm_kind(mod)
        if kind is not None:
            norms_seen.append((kind, names[mod]))

    for mod in names:
        if isinstance(mod, _SPATIAL):
            hooks.append(mod.register_forward_pre_hook(pre))
            hooks.append(mod.register_forward_hook(post))
        elif isinstance(mod, tuple(cls for cls, _ in _NORM_CLASSES)):
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

    rows, size, jump, padding, fmap = stack_report(specs, input_shape)
    spatial_out = out.dim() == 4 and tuple(out.shape[-2:]) == fmap
    if global_pool is not None:
        grid: Pair = (1, 1)
        whole, reason = True, f"global pooling ({global_pool})"
    elif spatial_out:
        grid = fmap
        whole, reason = False, PATCH_REASON
    elif out.dim() == 4:
        raise RFError(
            f"the output map is {tuple(out.shape[-2:])} but the last conv/pool map is {fmap}; "
            "something resizes it outside conv and pool layers"
        )
    else:
        grid = (1, 1)
        whole, reason = True, DENSE_REASON
    decision = (input_shape[1], input_shape[2]) if whole else size
    rep = RFReport(
        input_shape, tuple(rows), size, jump, padding, fmap, grid, decision, whole, reason
    )
    return apply_norms(rep, norms_seen)


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
