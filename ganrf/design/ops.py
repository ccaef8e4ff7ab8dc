"""The rf rule of each op a traced discriminator may run: what its output sees, given its inputs.

A rule gets a :class:`Call` (the node, its concrete arguments from one run, their
:class:`~ganrf.design.values.Value`\\ s, the result) and returns the output's value and, for an op
that changes what a unit sees, the :class:`Row` the table prints. Rules are found by module class
(:data:`MODULE_RULES`, first ``isinstance`` match) or by function/method name
(:data:`FUNCTION_RULES`; ``torch.add``, ``operator.add`` and ``x.add`` share ``"add"``). An op
with no rule is refused with one sentence (:func:`no_rule`): a guessed rule would be a wrong
number.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganrf.design.call import Call, Row, Rule
from ganrf.design.rf import RFError
from ganrf.design.values import Value, merge
from ganrf.design.windowed import (
    adaptive_pool,
    conv_function,
    conv_module,
    conv_transpose_function,
    conv_transpose_module,
    interpolate_function,
    pad_function,
    pad_module,
    pool_function,
    pool_module,
    upsample_module,
)

__all__ = ["MODULE_RULES", "FUNCTION_RULES", "find_rule", "no_rule", "norm_kind"]

DENSE = "dense layer over the flattened map"
ATTENTION = "self-attention ({}) lets every position see every other: global"


# ---- merges, per-location ops, reshapes -------------------------------------------------------


def elementwise(c: Call):
    """Add, mul and every per-location op: the union of the inputs' windows."""
    live = [v for v in (*c.values, *c.kw_values.values()) if v.kind != "const"]
    out = merge(live, c.name)
    if out.kind == "map" and isinstance(c.result, torch.Tensor):
        out = Value("map", out.h, out.w, tuple(c.result.shape[-2:]), out.mixed)  # type: ignore[arg-type]
    return out, (Row(c.target, "merge") if len(live) > 1 else None)


def concat(c: Call):
    tensors = c.arg(0, "tensors")
    values = c.values[0] if c.values else c.kw_values["tensors"]
    dim = c.arg(1, "dim", 0) % tensors[0].dim()
    live = [v for v in values if v.kind != "const"]
    if any(v.kind == "map" for v in live) and dim >= tensors[0].dim() - 2:
        raise RFError(
            f"{c.name} concatenates maps along a spatial axis, so positions on either side see "
            "unrelated windows: concatenate along channels"
        )
    return merge(live, c.name, concat=True), (Row("cat", "merge") if len(live) > 1 else None)


def channel_slice(c: Call):
    """``x[:, :c]``, ``chunk``, ``split``: keeps the windows unless a concat mixed them."""
    v = c.x
    if v.kind != "map":
        return v, None
    index = c.arg(1, "idx", None)
    if c.target == "getitem":
        items = index if isinstance(index, tuple) else (index,)
        spatial = items[2:] if Ellipsis not in items else items
        if not all(isinstance(i, slice) and i == slice(None) for i in spatial):
            raise RFError(
                f"{c.name} indexes the spatial axes of a map; only channel slices have an rf rule"
            )
    if v.mixed:
        raise RFError(
            f"{c.name} takes some channels of a concat whose branches see different windows; the "
            "tracer keeps one window per map: slice before concatenating"
        )
    return v, None


def flatten(c: Call):
    v = c.x
    if v.kind != "map" or not isinstance(c.result, torch.Tensor):
        return v, None
    res, src = c.result, c.args[0]
    if res.dim() >= 2 and tuple(res.shape[-2:]) == tuple(src.shape[-2:]):
        return v, None  # the spatial axes are untouched (a view over batch or channels)
    return Value("flat", last=v), None


def unflatten(c: Call):
    """``view``/``reshape``: back to a map when a flattened one gets its own size again."""
    v = c.x
    back = isinstance(c.result, torch.Tensor) and c.result.dim() >= 3
    if v.kind == "flat" and back and v.last and tuple(c.result.shape[-2:]) == v.last.size:
        return v.last, None
    return flatten(c)


def permute(c: Call):
    v = c.x
    if v.kind == "map":
        dims = [d % c.args[0].dim() for d in _dims(c)]
        n = c.args[0].dim()
        if (
            c.target == "permute"
            and dims[-2:] != [n - 2, n - 1]
            or c.target == "transpose"
            and ({dims[0], dims[1]} & {n - 2, n - 1} and dims[0] != dims[1])
        ):
            raise RFError(f"{c.name} moves the spatial axes of a map; permute a flattened one")
    return v, None


def _dims(c: Call) -> list[int]:
    rest = c.args[1:]
    if len(rest) == 1 and isinstance(rest[0], (tuple, list)):
        return list(rest[0])
    return [int(d) for d in rest] or list(c.kwargs.get("dims", ()))


def reduction(c: Call):
    v = c.x
    if v.kind in ("whole", "const"):
        return v, None
    dim = c.arg(1, "dim")
    n = c.args[0].dim()
    dims = set(range(n)) if dim is None else {d % n for d in _pair_or_list(dim)}
    if v.kind == "flat" or {n - 2, n - 1} <= dims:
        size = tuple(c.result.shape[-2:]) if c.result.dim() >= 2 and v.kind == "map" else None
        reason = f"global pooling ({c.name})"
        return Value.whole_from(v, reason, size if size == (1, 1) else None), Row(
            f"global{c.target}", "global"
        )
    if dims & {n - 2, n - 1}:
        raise RFError(f"{c.name} reduces one spatial axis only; reduce both or neither")
    return Value("map", v.h, v.w, tuple(c.result.shape[-2:])), None  # over channels: per location


def _pair_or_list(v: Any) -> list[int]:
    return [v] if isinstance(v, int) else list(v)


def dense(c: Call):
    v = c.x
    if v.kind == "map":
        raise RFError(
            f"{c.name} is a dense layer on the last axis of a (B, C, H, W) map, which mixes one "
            "spatial axis only; flatten the map first"
        )
    if v.kind == "flat":
        return Value.whole_from(v, DENSE), Row("dense", "global")
    return v, None


def attention(c: Call):
    live = [v for v in (*c.values, *c.kw_values.values()) if v.kind in ("map", "flat")]
    if not live or any(v.kind == "whole" for v in (*c.values, *c.kw_values.values())):
        return merge(list(c.values), c.name), None
    return Value.whole_from(live[0], ATTENTION.format(c.name)), Row("attention", "global")


def softmax(c: Call):
    v = c.x
    if v.kind != "map":
        if v.kind == "flat":
            raise RFError(
                f"{c.name} is a softmax over a flattened map; the tracer does not know whether it "
                "runs over positions or channels: apply it to the (B, C, H, W) map"
            )
        return v, None
    n = c.args[0].dim()
    dim = c.arg(1, "dim")
    dim = getattr(c.module, "dim", dim)
    if dim is None or dim % n >= n - 2:
        return Value.whole_from(v, f"softmax over positions ({c.name})"), Row("softmax", "global")
    return v, None


def const(c: Call):
    return Value("const"), None


def norm(c: Call):
    kind = norm_kind(c.module)
    if kind is not None:
        c.norms.append((kind, c.name))
    return elementwise(c)


_NORM_CLASSES: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.modules.batchnorm._BatchNorm, "batch"),
    (nn.InstanceNorm2d, "instance"),
    (nn.GroupNorm, "group"),
    (nn.LayerNorm, "layer"),
    (nn.LocalResponseNorm, "localresponse"),
)


def norm_kind(mod: nn.Module) -> str | None:
    """The kind of normalisation ``mod`` is (a key of ``ganrf.design.norms.NORM_KINDS``), or
    ``None`` when it keeps decisions per location: BatchNorm counts only in training mode or
    without running statistics."""
    for cls, kind in _NORM_CLASSES:
        if isinstance(mod, cls):
            if kind == "batch" and not mod.training and mod.track_running_stats:
                return None
            return kind
    return None


_POINTWISE_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.Identity, nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.Softmax2d,
)  # fmt: skip

MODULE_RULES: tuple[tuple[type[nn.Module], Rule], ...] = (
    (nn.Conv2d, conv_module),
    (nn.ConvTranspose2d, conv_transpose_module),
    ((nn.MaxPool2d, nn.AvgPool2d), pool_module),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), adaptive_pool),
    (nn.modules.padding._ReflectionPadNd, pad_module),
    (nn.modules.padding._ReplicationPadNd, pad_module),
    (nn.modules.padding._ConstantPadNd, pad_module),
    (nn.modules.padding._CircularPadNd, pad_module),
    (nn.Upsample, upsample_module),
    (nn.Flatten, flatten),
    (nn.Linear, dense),
    (nn.MultiheadAttention, attention),
    ((nn.Softmax, nn.LogSoftmax), softmax),
    (tuple(cls for cls, _ in _NORM_CLASSES), norm),
    (_POINTWISE_MODULES, elementwise),
)  # type: ignore[assignment]

_ELEMENTWISE = [
    "add",
    "iadd",
    "radd",
    "sub",
    "isub",
    "rsub",
    "mul",
    "imul",
    "rmul",
    "truediv",
    "itruediv",
    "div",
    "floordiv",
    "maximum",
    "minimum",
    "where",
    "lerp",
    "addcmul",
    "addcdiv",
    "neg",
    "abs",
    "pow",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "square",
    "clamp",
    "clip",
    "clamp_min",
    "clamp_max",
    "relu",
    "relu_",
    "leaky_relu",
    "leaky_relu_",
    "gelu",
    "silu",
    "elu",
    "selu",
    "celu",
    "mish",
    "sigmoid",
    "tanh",
    "softplus",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "dropout",
    "dropout2d",
    "contiguous",
    "float",
    "double",
    "to",
    "type_as",
    "clone",
    "detach",
    "mul_",
    "add_",
    "sub_",
    "div_",
]

FUNCTION_RULES: dict[str, Rule] = {
    **dict.fromkeys(_ELEMENTWISE, elementwise),
    "conv2d": conv_function,
    "conv_transpose2d": conv_transpose_function,
    "max_pool2d": pool_function,
    "avg_pool2d": pool_function,
    "adaptive_avg_pool2d": adaptive_pool,
    "adaptive_max_pool2d": adaptive_pool,
    "pad": pad_function,
    "interpolate": interpolate_function,
    "upsample": interpolate_function,
    "cat": concat,
    "concat": concat,
    "getitem": channel_slice,
    "chunk": channel_slice,
    "split": channel_slice,
    "flatten": flatten,
    "view": unflatten,
    "reshape": unflatten,
    "permute": permute,
    "transpose": permute,
    "sum": reduction,
    "mean": reduction,
    "amax": reduction,
    "logsumexp": reduction,
    "linear": dense,
    "bmm": attention,
    "matmul": attention,
    "einsum": attention,
    "scaled_dot_product_attention": attention,
    "softmax": softmax,
    "log_softmax": softmax,
    "size": const,
    "dim": const,
    "getattr": const,
}


def find_rule(target: str, module: nn.Module | None) -> Rule | None:
    if module is not None:
        for classes, rule in MODULE_RULES:
            if isinstance(module, classes):
                return rule
        return None
    return FUNCTION_RULES.get(target)


def no_rule(name: str, where: str = "") -> RFError:
    at = f" at {where}" if where else ""
    return RFError(
        f"{name}{at} has no rf rule, so the tracer cannot say what its output sees: write it with "
        "the ops ganrf.design.ops has rules for (conv, pools, pad, interpolate, add, cat, ...), "
        "or add a rule for it there"
    )
