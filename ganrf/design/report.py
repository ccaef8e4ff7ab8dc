"""From the values of a traced graph's nodes to the :class:`~ganrf.design.rf.RFReport` the CLI
prints (no torch needed): one table row per node that changes what a unit sees, the rf of the
last feature map, and the decision rf of the output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ganrf.design.norms import apply_norms
from ganrf.design.rf import PATCH_REASON, LayerRow, Pair, RFError, RFReport
from ganrf.design.values import Value

__all__ = ["NodeRF", "build_report"]


@dataclass(frozen=True)
class NodeRF:
    """One node of the graph and what a unit of its output sees."""

    name: str  # "features.0 (Conv2d)", "add_1 (add)"
    value: Value
    layer: str = ""  # the table's token when the node changes what a unit sees, else ""
    kind: str = ""
    kernel: Pair | None = None
    stride: Pair | None = None
    padding: Pair | None = None
    dilation: Pair | None = None


def _jump(value: Value) -> Pair:
    out = []
    for win in (value.h, value.w):
        j = win.jump
        out.append(int(j) if j.denominator == 1 else j)
    return tuple(out)  # type: ignore[return-value]


def _row(index: int, node: NodeRF, image: Pair) -> LayerRow:
    v = node.value
    if v.kind == "map":
        rf, jump = (v.h.size, v.w.size), _jump(v)
        low = (v.h.size_min, v.w.size_min)
        return LayerRow(
            index, node.layer, node.name, node.kind, node.kernel, node.stride, node.padding,
            node.dilation, v.size, rf, jump, rf_min=low if low != rf else None,
        )  # fmt: skip
    return LayerRow(
        index, node.layer, node.name, node.kind, node.kernel, node.stride, node.padding,
        node.dilation, v.size, image, (Fraction(0), Fraction(0)), whole=v.reason or v.kind,
    )  # fmt: skip


def build_report(
    input_shape: tuple[int, int, int],
    nodes: Sequence[NodeRF],
    out: Value,
    norms: Sequence[tuple[str, str]] = (),
) -> RFReport:
    """The report of a traced graph whose output node's value is ``out``; ``norms`` are the
    ``(kind, name)`` normalisations that ran (:func:`ganrf.design.norms.apply_norms`)."""
    image: Pair = (input_shape[1], input_shape[2])
    shown = [n for n in nodes if n.layer]
    rows = tuple(_row(i, n, image) for i, n in enumerate(shown, 1))
    last = out if out.kind == "map" else out.last
    if last is None:
        raise RFError(
            "the output does not depend on any feature map of the input, so there is no "
            "receptive field to report"
        )
    size: Pair = (last.h.size, last.w.size)
    padding: Pair = (last.h.padding, last.w.padding)
    notes = []
    ranges = [(w.size_min, w.size) for w in (last.h, last.w)]
    if any(lo != hi for lo, hi in ranges):
        text = "x".join(f"{lo}-{hi}" if lo != hi else str(hi) for lo, hi in ranges)
        notes.append(
            f"the rf depends on the output position: {text} (resizing, a transposed conv or "
            "uneven adaptive pooling); rf gives the largest"
        )
    holes = [sum(len(t) for t in w.taps) < sum(w.sizes) for w in (last.h, last.w)]
    if any(holes):
        notes.append("a unit sees its span with gaps (dilation or strides leave pixels unseen)")
    if out.kind == "map":
        grid, decision, whole, reason = out.size, size, False, PATCH_REASON
    elif out.kind == "flat":
        src = out.last
        grid, decision, whole, reason = src.size, size, False, PATCH_REASON
    else:
        grid = out.size or (1, 1)
        decision, whole, reason = image, True, out.reason
    rep = RFReport(
        input_shape,
        rows,
        size,
        _jump(last),
        padding,
        last.size,
        grid,  # type: ignore[arg-type]
        decision,
        whole,
        reason,
        notes=tuple(notes),
    )
    return apply_norms(rep, norms)
