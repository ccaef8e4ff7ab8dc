"""Per-axis windows: which input pixels one unit of a feature map sees (no torch needed).

One axis of a map is described by a :class:`Window`: output position ``o = period * m + r``
sees the input pixels ``advance * m + x`` for ``x`` in ``taps[r]``. A plain conv stack has
``period == 1`` (every position sees the same window, shifted by the effective stride
``advance``); upsampling, transposed convs and uneven adaptive pools make the window depend on the
position's phase ``r``, which is why the rf of such a map is a range.

The same object describes one op (which of its input positions an output position reads) and a
node (which *image* pixels it sees); :meth:`Window.then` composes them, so a node's window is its
input's window followed by the op. Taps are sets, not intervals: a dilated conv on the image sees
every other pixel, and a residual add sees the union of its branches' windows with their offsets
(:meth:`Window.union`). The rf is the span of the taps (Araujo et al., Distill 2019, count it the
same way); the effective padding is minus the first tap of position 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, floor, gcd

__all__ = ["Window", "WindowError"]

Taps = frozenset[int]


class WindowError(ValueError):
    """Windows that cannot be combined honestly (branches advancing at different rates)."""


def _shift(taps: Taps, by: int) -> Taps:
    return frozenset(x + by for x in taps)


@dataclass(frozen=True)
class Window:
    """What output position ``period * m + r`` reads on one axis: ``advance * m + taps[r]``."""

    period: int
    advance: int
    taps: tuple[Taps, ...]

    def __post_init__(self) -> None:
        if self.period < 1 or self.advance < 1 or len(self.taps) != self.period:
            raise WindowError(f"malformed window {self}")
        if any(not t for t in self.taps):
            raise WindowError("a window position sees no input pixel")

    # ---- constructors: one op's index map --------------------------------------------------

    @classmethod
    def identity(cls) -> Window:
        return cls(1, 1, (frozenset({0}),))

    @classmethod
    def kernel(cls, size: int, stride: int = 1, dilation: int = 1, pad_before: int = 0) -> Window:
        """A conv or pool: output ``o`` reads ``o * stride - pad_before + dilation * t``."""
        return cls(1, stride, (frozenset(dilation * t - pad_before for t in range(size)),))

    @classmethod
    def transposed(cls, size: int, stride: int = 1, dilation: int = 1, padding: int = 0) -> Window:
        """A transposed conv: input ``i`` writes output ``stride * i - padding + dilation * t``."""
        taps = []
        for r in range(stride):
            found = [r + padding - dilation * t for t in range(size)]
            taps.append(frozenset(v // stride for v in found if v % stride == 0))
        if not all(taps):
            raise WindowError(
                f"a transposed conv with kernel {size} < stride {stride} leaves output positions "
                "that see no input"
            )
        return cls(stride, 1, tuple(taps))

    @classmethod
    def resize(cls, n_in: int, n_out: int, mode: str) -> Window:
        """Interpolation by an integer factor ``n_out / n_in`` (``mode`` nearest or linear with
        ``align_corners=False``, PyTorch's source index ``(o + 0.5) / f - 0.5``); a tap whose
        weight is exactly zero is not seen."""
        if n_out % n_in:
            raise WindowError(f"interpolation {n_in} -> {n_out} is not by an integer factor")
        f = n_out // n_in
        taps = []
        for r in range(f):
            if mode == "nearest":
                taps.append(frozenset({0}))
                continue
            src = Fraction(2 * r + 1, 2 * f) - Fraction(1, 2)
            low = floor(src)
            taps.append(frozenset({low, low + 1}) if src != low else frozenset({low}))
        return cls(f, 1, tuple(taps)).normalized()

    @classmethod
    def adaptive(cls, n_in: int, n_out: int) -> Window:
        """Adaptive pooling: output ``i`` pools ``floor(i n / o) .. ceil((i + 1) n / o) - 1``."""
        g = gcd(n_in, n_out)
        taps = tuple(
            frozenset(range(floor(r * n_in / n_out), ceil((r + 1) * n_in / n_out)))
            for r in range(n_out // g)
        )
        return cls(n_out // g, n_in // g, taps).normalized()

    # ---- what a node sees --------------------------------------------------------------------

    def at(self, o: int) -> Taps:
        """The input pixels output position ``o`` sees."""
        return _shift(self.taps[o % self.period], self.advance * (o // self.period))

    def span(self, o: int) -> tuple[int, int]:
        """First and last input pixel output position ``o`` sees."""
        seen = self.at(o)
        return min(seen), max(seen)

    @property
    def sizes(self) -> tuple[int, ...]:
        """The rf of each phase: the span of its taps."""
        return tuple(max(t) - min(t) + 1 for t in self.taps)

    @property
    def size(self) -> int:
        """The largest rf over output positions (the only one when ``period == 1``)."""
        return max(self.sizes)

    @property
    def size_min(self) -> int:
        return min(self.sizes)

    @property
    def jump(self) -> Fraction:
        """Input pixels per output position (the effective stride; below 1 after upsampling)."""
        return Fraction(self.advance, self.period)

    @property
    def padding(self) -> int:
        """Effective padding: how far before pixel 0 position 0 reaches."""
        return -min(self.taps[0])

    # ---- composition -------------------------------------------------------------------------

    def then(self, op: Window) -> Window:
        """The window of ``op``'s output, given that its input's positions see ``self``."""
        rep = self.period // gcd(self.period, op.advance)  # op repeats after which the phase does
        period, advance = op.period * rep, self.advance * (op.advance * rep // self.period)
        taps = []
        for big_r in range(period):
            m, r = divmod(big_r, op.period)
            seen: set[int] = set()
            for t in op.taps[r]:
                q = op.advance * m + t
                seen |= _shift(self.taps[q % self.period], self.advance * (q // self.period))
            taps.append(frozenset(seen))
        return Window(period, advance, tuple(taps)).normalized()

    def union(self, other: Window) -> Window:
        """What a unit of an element-wise merge of two branches sees: the union of theirs."""
        if self.jump != other.jump:
            raise WindowError(
                f"the branches advance by {self.jump} and {other.jump} input pixels per position"
            )
        period = self.period * other.period // gcd(self.period, other.period)
        a, b = self.expand(period // self.period), other.expand(period // other.period)
        return Window(period, a.advance, tuple(x | y for x, y in zip(a.taps, b.taps))).normalized()

    def expand(self, k: int) -> Window:
        """The same window written with a period ``k`` times longer."""
        taps = tuple(
            _shift(self.taps[r % self.period], self.advance * (r // self.period))
            for r in range(self.period * k)
        )
        return Window(self.period * k, self.advance * k, taps)

    def normalized(self) -> Window:
        """The shortest period that describes the same window."""
        for d in range(1, self.period):
            k = self.period // d
            if self.period % d or self.advance % k:
                continue
            step = self.advance // k
            if all(
                self.taps[r] == _shift(self.taps[r % d], step * (r // d))
                for r in range(self.period)
            ):
                return Window(d, step, self.taps[:d])
        return self
