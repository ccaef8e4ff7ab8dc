"""What one node of a traced graph sees, and how branches merge (no torch needed).

A node's :class:`Value` is one of four kinds:

* ``map``: a ``(..., H, W)`` feature map; each position sees the input pixels of its
  :class:`~ganrf.design.window.Window` on each axis (the union over the map's channels);
* ``flat``: the positions of a map folded into one dimension (``flatten``, ``view``), so the next
  dense layer or matmul mixes them; it remembers the map it came from;
* ``whole``: every unit depends on the whole input (global pooling, a dense layer, self-attention,
  anything computed from such a node), with the reason in one phrase;
* ``const``: depends on no input pixel (parameters, shapes, constants).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ganrf.design.rf import Pair, RFError
from ganrf.design.window import Window, WindowError

__all__ = ["Value", "merge"]


@dataclass(frozen=True)
class Value:
    kind: str  # "map" | "flat" | "whole" | "const"
    h: Window | None = None
    w: Window | None = None
    size: Pair | None = None  # (H, W) of the map, also for a whole node that is still a map
    mixed: bool = False  # a concat joined channels that see different windows
    reason: str = ""  # whole: why one unit sees the whole input
    last: Value | None = None  # flat, whole: the last map before (what RFReport.size describes)

    @classmethod
    def image(cls, size: Pair) -> Value:
        return cls("map", Window.identity(), Window.identity(), size)

    @classmethod
    def whole_from(cls, src: Value, reason: str, size: Pair | None = None) -> Value:
        last = src if src.kind == "map" else src.last
        return cls("whole", size=size, reason=reason, last=last)

    def then(self, h: Window, w: Window, size: Pair) -> Value:
        """This map after a per-axis op (conv, pool, pad, resize) with output ``size``."""
        return replace(self, h=self.h.then(h), w=self.w.then(w), size=size)

    def same_windows(self, other: Value) -> bool:
        return (self.h, self.w) == (other.h, other.w)


def merge(values: Sequence[Value], where: str, *, concat: bool = False) -> Value:
    """An element-wise merge (add, mul, ...) or a channel concat of ``values``: each unit sees
    the union of the branches' windows, each with its own offset."""
    live = [v for v in values if v.kind != "const"]
    if not live:
        return Value("const")
    wholes = [v for v in live if v.kind == "whole"]
    if wholes:
        sizes = [v.size for v in live if v.size is not None]
        return replace(wholes[0], size=sizes[0] if sizes else None)
    kinds = {v.kind for v in live}
    if kinds == {"flat"}:
        sources = [v.last for v in live]
        if any(s is None or s.size != sources[0].size for s in sources):
            raise RFError(
                f"{where} merges flattened maps of different sizes; the tracer cannot line their "
                "positions up: flatten after merging the maps"
            )
        return Value("flat", last=merge(sources, where, concat=concat))
    if kinds != {"map"}:
        raise RFError(
            f"{where} merges a feature map with a flattened one; the tracer cannot tell which "
            "positions line up: merge the maps before flattening"
        )
    if len({v.size for v in live}) > 1:
        raise RFError(
            f"{where} broadcasts maps of sizes {sorted({v.size for v in live})} together, so its "
            "positions do not see shifted copies of one window: make the sizes equal"
        )
    first = live[0]
    h, w = first.h, first.w
    try:
        for v in live[1:]:
            h, w = h.union(v.h), w.union(v.w)
    except WindowError as e:
        raise RFError(
            f"{where} merges branches that move at different rates over the input ({e}); their "
            "union is not one window per position: resample the branches to the same stride"
        ) from None
    mixed = any(v.mixed for v in live) or (concat and any(not v.same_windows(first) for v in live))
    return Value("map", h, w, first.size, mixed=mixed)
