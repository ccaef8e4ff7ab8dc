"""What the rf arithmetic reports (no torch needed): :class:`RFReport`, one :class:`LayerRow`
per layer, and the notes-style table both print. :mod:`ganrf.design.rf` fills it for a chain of
layer specs, :mod:`ganrf.design.report` for a traced graph."""

from __future__ import annotations

from dataclasses import dataclass, field

Pair = tuple[int, int]


@dataclass(frozen=True)
class LayerRow:
    """One row of the table: a layer (traced: any node that changes what a unit sees, such as a
    pad, a merge, a resize or a global op) and what a unit after it sees."""

    index: int  # 1-based, as in the notes
    layer: str  # what it is, as a spec token: conv5s2, conv3d2, maxpool2; traced: add, cat, ...
    module: str  # the traced module's or node's name, "" for specs and designs
    kind: str
    kernel: Pair | None  # None for a node that is not a conv or pool
    stride: Pair | None
    padding: Pair | None  # padding before the input (top, left)
    dilation: Pair | None
    out_size: Pair | None  # feature-map size after the layer; None once the map is gone
    rf: Pair  # rf of one unit after this layer, in input pixels (the largest over positions)
    jump: Pair  # effective stride after this layer (a Fraction below 1 after upsampling)
    rf_min: Pair | None = None  # the smallest rf over positions, where it differs from ``rf``
    whole: str = ""  # why a unit after this node sees the whole input ("" when it does not)

    def cells(self, traced: bool) -> list[str]:
        """The row as the table prints it; the rf is ``whole``, a range ``5-6`` or ``13``."""
        geometry = (self.kernel, self.stride, self.padding, self.dilation)
        rf = fmt_pair(self.rf)
        if self.rf_min is not None:
            ranges = [str(b) if a == b else f"{a}-{b}" for a, b in zip(self.rf_min, self.rf)]
            rf = ranges[0] if ranges[0] == ranges[1] else "x".join(ranges)
        return [
            str(self.index),
            self.layer,
            *([self.module] if traced else []),
            *(fmt_pair(v) if v else "" for v in geometry),
            f"{self.out_size[0]}x{self.out_size[1]}" if self.out_size else "-",
            "whole" if self.whole else rf,
        ]


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

    def table(self) -> str:
        """The notes-style table: every layer's feature-map size and rf; a ``module`` column
        names traced modules."""
        c, h, w = self.input_shape
        traced = any(r.module for r in self.layers)
        head = ["#", "layer", *(["module"] if traced else []), "kernel", "stride", "pad"]
        head += ["dilation", "feature map", "rf"]
        blank = [""] * (len(head) - 4)
        rows = [["", "input", *blank, f"{h}x{w}x{c}", "1"]]
        rows += [r.cells(traced) for r in self.layers]
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        lines = [
            "  ".join(v.ljust(wd) for v, wd in zip(row, widths)).rstrip() for row in [head, *rows]
        ]
        lines.insert(1, "  ".join("-" * wd for wd in widths))
        lines += [
            "",
            f"rf {fmt_pair(self.size)}, effective stride {fmt_pair(self.stride)}, "
            f"effective padding {fmt_pair(self.padding)}",
            f"decision rf {fmt_pair(self.decision_rf)} ({self.decision_reason}), "
            f"output grid {self.output_grid[0]}x{self.output_grid[1]}",
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def fmt_pair(pair: Pair, sep: str = "x") -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}{sep}{pair[1]}"
