"""One traced op as an rf rule sees it (:class:`Call`), and what the table prints for it
(:class:`Row`); the rules are in :mod:`ganrf.design.ops` and :mod:`ganrf.design.windowed`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ganrf.design.rf import Pair, RFError
from ganrf.design.values import Value

__all__ = ["Call", "Row", "Rule", "need_map", "pair"]


@dataclass
class Call:
    """One node's call, as a rule sees it."""

    name: str  # as messages and the table name it: "features.0 (Conv2d)", "add_1 (add)"
    target: str  # the rule's key: a module class name or a function/method name
    args: tuple  # concrete arguments of the run (tensors are the real tensors)
    kwargs: dict
    values: tuple  # the Value of each positional argument (Value("const") for non-tensors)
    kw_values: dict
    result: Any
    module: nn.Module | None = None
    norms: list = field(default_factory=list)  # (kind, name) of normalisations, in order

    def arg(self, i: int, key: str, default: Any = None) -> Any:
        if len(self.args) > i:
            return self.args[i]
        return self.kwargs.get(key, default)

    @property
    def x(self) -> Value:
        return self.values[0] if self.values else self.kw_values.get("input", Value("const"))

    @property
    def out_hw(self) -> Pair:
        return tuple(self.result.shape[-2:])  # type: ignore[return-value]

    @property
    def in_hw(self) -> Pair:
        return tuple(self.args[0].shape[-2:])


@dataclass(frozen=True)
class Row:
    """What the table prints for a node that changes what a unit sees."""

    layer: str
    kind: str
    kernel: Pair | None = None
    stride: Pair | None = None
    padding: Pair | None = None
    dilation: Pair | None = None


Rule = Callable[[Call], "tuple[Value, Row | None]"]


def pair(v: Any) -> Pair:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


def need_map(c: Call, what: str) -> Value:
    v = c.x
    if v.kind != "map" or c.args[0].dim() < 3:
        raise RFError(f"{c.name} applies {what} to a {v.kind} tensor, not a (B, C, H, W) map")
    return v
