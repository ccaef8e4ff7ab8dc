"""rf rules of the ops that move a window: conv, transposed conv, pools, adaptive pools,
padding and interpolation (each a :class:`~ganrf.design.window.Window` per axis)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ganrf.design.call import Call, Row, need_map, pair
from ganrf.design.rf import LayerSpec, Pair, RFError, conv_padding
from ganrf.design.values import Value
from ganrf.design.window import Window, WindowError


def _windowed(c: Call, kind: str, k: Pair, s: Pair, pb: Pair, d: Pair, pe: Pair | None = None):
    v = need_map(c, kind)
    out = v.then(*(Window.kernel(k[a], s[a], d[a], pb[a]) for a in (0, 1)), c.out_hw)
    spec = LayerSpec(kind, k, s, pb, pe or pb, d)
    return out, Row(spec.token, kind, k, s, pb, d)


def _conv_pads(padding: Any, k: Pair, d: Pair) -> tuple[Pair, Pair]:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        pads = [conv_padding(kk, 1, dd) for kk, dd in zip(k, d)]  # "same", split as PyTorch does
        return (pads[0][0], pads[1][0]), (pads[0][1], pads[1][1])
    return pair(padding), pair(padding)


# ---- conv, pools, padding, resizing -----------------------------------------------------------


def conv_module(c: Call):
    m = c.module
    k, s, d = pair(m.kernel_size), pair(m.stride), pair(m.dilation)
    pb, pe = _conv_pads(m.padding, k, d)
    return _windowed(c, "conv", k, s, pb, d, pe)


def conv_function(c: Call):
    k = tuple(c.args[1].shape[-2:])
    s, d = pair(c.arg(3, "stride", 1)), pair(c.arg(5, "dilation", 1))
    pb, pe = _conv_pads(c.arg(4, "padding", 0), k, d)  # type: ignore[arg-type]
    return _windowed(c, "conv", k, s, pb, d, pe)  # type: ignore[arg-type]


def _transposed(c: Call, k: Pair, s: Pair, p: Pair, d: Pair):
    v = need_map(c, "a transposed conv")
    try:
        ops = [Window.transposed(k[a], s[a], d[a], p[a]) for a in (0, 1)]
    except WindowError as e:
        raise RFError(f"{c.name}: {e}; its rf is not defined there") from None
    return v.then(*ops, c.out_hw), Row(f"convT{k[0]}s{s[0]}", "convT", k, s, p, d)


def conv_transpose_module(c: Call):
    m = c.module
    return _transposed(c, pair(m.kernel_size), pair(m.stride), pair(m.padding), pair(m.dilation))


def conv_transpose_function(c: Call):
    k = tuple(c.args[1].shape[-2:])
    s, p = pair(c.arg(3, "stride", 1)), pair(c.arg(4, "padding", 0))
    return _transposed(c, k, s, p, pair(c.arg(7, "dilation", 1)))  # type: ignore[arg-type]


def pool_module(c: Call):
    m = c.module
    kind = "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool"
    k, p = pair(m.kernel_size), pair(m.padding)
    s = pair(m.stride or m.kernel_size)
    return _windowed(c, kind, k, s, p, pair(getattr(m, "dilation", 1)))


def pool_function(c: Call):
    kind = "maxpool" if c.target == "max_pool2d" else "avgpool"
    k = pair(c.arg(1, "kernel_size"))
    stride = c.arg(2, "stride")
    s = pair(stride) if stride else k  # None or [] means the kernel size
    dil = c.arg(4, "dilation", 1) if kind == "maxpool" else 1
    return _windowed(c, kind, k, s, pair(c.arg(3, "padding", 0)), pair(dil))


def adaptive_pool(c: Call):
    v = need_map(c, "adaptive pooling")
    if c.out_hw == (1, 1):
        return Value.whole_from(v, f"global pooling ({c.name})", (1, 1)), Row(
            "globalpool", "global"
        )
    ops = [Window.adaptive(n, o) for n, o in zip(c.in_hw, c.out_hw)]
    return v.then(*ops, c.out_hw), Row(f"adaptivepool{c.out_hw[0]}x{c.out_hw[1]}", "adaptive")


def _padded(c: Call, pads: tuple) -> tuple[Value, Row]:
    v = need_map(c, "padding")
    pads = tuple(int(p) for p in pads) + (0,) * (4 - len(pads))  # (left, right, top, bottom)
    before = (pads[2], pads[0])
    ops = [Window.kernel(1, pad_before=p) for p in before]  # a negative pad crops
    return v.then(*ops, c.out_hw), Row("pad", "pad", padding=before)


def pad_module(c: Call):
    p = c.module.padding
    return _padded(c, (p,) * 4 if isinstance(p, int) else tuple(p))


def pad_function(c: Call):
    return _padded(c, tuple(c.arg(1, "pad")))


def _resized(c: Call, mode: str, align_corners: bool | None):
    v = need_map(c, "interpolation")
    if mode not in ("nearest", "nearest-exact", "bilinear") or align_corners:
        raise RFError(
            f"{c.name} interpolates with mode={mode!r}, align_corners={align_corners}: only "
            "nearest and bilinear with align_corners=False have an rf rule here (the others' "
            "taps depend on the map size or carry zero and negative weights)"
        )
    try:
        ops = [Window.resize(n, o, "nearest" if "nearest" in mode else "linear")
               for n, o in zip(c.in_hw, c.out_hw)]  # fmt: skip
    except WindowError as e:
        raise RFError(f"{c.name}: {e}; resize by an integer factor") from None
    factor = f"{c.out_hw[0] // c.in_hw[0]}"
    return v.then(*ops, c.out_hw), Row(f"upsample{factor}-{mode}", "resize")


def upsample_module(c: Call):
    return _resized(c, c.module.mode, c.module.align_corners)


def interpolate_function(c: Call):
    return _resized(c, c.arg(3, "mode", "nearest"), c.arg(4, "align_corners"))
