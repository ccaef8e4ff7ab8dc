"""The ``resnet`` family: SNGAN/BigGAN-style residual discriminators as designs (no torch).

A residual D is a stack of pre-activation blocks (Miyato et al. 2018, SNGAN; Brock et al. 2019,
BigGAN)::

    block:      x -> ReLU -> conv k -> ReLU -> conv k -> [avgpool 2]  (+)  shortcut(x)
    shortcut:   identity, or conv 1x1 -> [avgpool 2] when channels or size change
    first:      x -> conv k -> ReLU -> conv k -> [avgpool 2]  (+)  [avgpool 2] -> conv 1x1

(the first block is SNGAN's "optimized" block: no activation on the image, pool before the 1x1),
then ReLU and the head: ``image`` = global mean over the last map + a linear layer (one logit
per image; SNGAN sums, see :class:`ganrf.models.resnet.GlobalMeanHead`), ``patch`` = a 1x1 conv
(one logit per location).

Spec tokens: ``res3`` is a block of two 3x3 convs, ``res3s2`` one that then downsamples by a 2x2
average pool (its jump is 2, as ``conv3s2``'s is). Kernels are odd, so every conv is centred.

The rf of a block stack. The shortcut's window (a 1x1 conv and at most the pool's 2x2) lies inside
the main path's, so the union of the two branches is the main path: conv k, conv k, [avgpool 2]
per block, a plain chain whose report :func:`ganrf.design.rf.receptive_field` gives. In closed
form, with ``J_i`` the jump before block ``i`` (``2^(downsamplings before it)``) and ``p_i`` 1
when it pools::

    rf = 1 + sum_i J_i * (2 (k_i - 1) + p_i)

SNGAN's 32px D (CIFAR-10: ``res3s2,res3s2,res3,res3``, 128 channels) by hand: block 1 at J = 1
adds 2*2 + 1 = 5 (rf 6), block 2 at J = 2 adds 2*5 = 10 (16), blocks 3 and 4 at J = 4 add
4*4 = 16 each: rf 48, on an 8x8 last map. Its global-sum head decides over the whole image.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from ganrf.design.designs import (
    DROPOUT,
    HEADS,
    DesignError,
    DesignViews,
    DiscriminatorDesign,
    default_channels,
    from_input_value,
    input_value,
    value_error,
)
from ganrf.design.rf import LayerSpec, RFReport, conv_padding, receptive_field
from ganrf.design.spec import SpecError, layer_channels, split_spec, unreadable

__all__ = [
    "ResBlock",
    "ResidualDesign",
    "design_from_spec",
    "is_residual",
]

RES_NORMS = ("none", "spectral")
MAX_SOLVED_BLOCKS = 5
KERNELS = (1, 3, 5, 7, 9)  # odd: every conv centred, so the shortcut's window lies inside
GLOBAL_MEAN_REASON = "global mean over the last map"
_TOKEN_RE = re.compile(r"^res(?P<k>\d+)(?:s(?P<s>\d+))?$")
RES_HELP = (
    "residual layers are comma-separated blocks like res3 (two 3x3 convs) or res3s2 (then a 2x2 "
    "average pool); odd kernels; a last token 'dense' or 'patch' names the head"
)


@dataclass(frozen=True)
class ResBlock:
    """One residual block: two ``kernel`` x ``kernel`` convs to ``channels``, then an average pool
    when ``down``."""

    kernel: int = 3
    down: bool = False
    channels: int = 64

    @property
    def stride(self) -> int:
        """The block's jump (2 when it pools), as a plain layer's stride."""
        return 2 if self.down else 1

    @property
    def token(self) -> str:
        return f"res{self.kernel}{'s2' if self.down else ''}"

    def specs(self, index: int) -> list[LayerSpec]:
        """The main path as layers, named ``block<index>.conv1`` ... for the table."""
        pb, pe = conv_padding(self.kernel)
        conv = [
            LayerSpec(
                "conv", (self.kernel,) * 2, (1, 1), (pb, pb), (pe, pe), name=f"block{index}.{c}"
            )  # type: ignore[arg-type]
            for c in ("conv1", "conv2")
        ]
        if self.down:
            conv.append(LayerSpec("avgpool", (2, 2), (2, 2), name=f"block{index}.pool"))
        return conv


@dataclass(frozen=True)
class ResidualDesign(DesignViews):
    """A residual discriminator as data (the ``resnet`` family).

    Attributes:
        layers: the blocks, first first (``layers`` as in
            :class:`~ganrf.design.designs.DiscriminatorDesign`, whose ``stride``/``channels`` they
            share).
        head: ``"image"`` (ReLU, global mean, linear) or ``"patch"`` (ReLU, 1x1 conv).
        norm: ``"spectral"`` (SNGAN: on every conv, shortcut and the head) or ``"none"``.
        dropout: after every block (SNGAN has none: 0).
        image_size, in_channels: the input.
    """

    layers: tuple[ResBlock, ...]
    head: str = "image"
    norm: str = "spectral"
    dropout: float = 0.0
    image_size: int = 32
    in_channels: int = 3

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise DesignError(f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        if self.norm not in RES_NORMS:
            raise DesignError(
                f"residual designs take norm {' or '.join(RES_NORMS)} (SNGAN), not {self.norm!r}"
            )
        if not self.layers:
            raise DesignError("a residual design needs at least one block")
        if not 0.0 <= self.dropout < 1.0:
            raise DesignError(f"dropout {self.dropout} must be in [0, 1)")
        if self.image_size < 1 or self.in_channels < 1:
            raise DesignError(
                f"image size {self.image_size} and channels {self.in_channels} must be positive"
            )
        size = self.image_size
        for i, b in enumerate(self.layers, 1):
            if b.kernel not in KERNELS or b.channels < 1:
                raise DesignError(
                    f"block {i} {b.token}: kernel must be one of {KERNELS} and channels >= 1"
                )
            size //= b.stride
            if size < 1:
                raise DesignError(
                    f"block {i} ({b.token}) leaves no feature map on a {self.image_size}px "
                    f"input; pool in at most {i - 1} blocks or use a larger image"
                )

    # -- what it sees -------------------------------------------------------------------------
    @property
    def specs(self) -> list[LayerSpec]:
        """The main path, layer by layer (the branches' union: see the module docstring)."""
        return [s for i, b in enumerate(self.layers, 1) for s in b.specs(i)]

    @functools.cached_property
    def report(self) -> RFReport:
        rep = receptive_field(
            self.specs, (self.in_channels, self.image_size, self.image_size), head=self.head
        )
        note = "shortcuts (1x1 conv, 2x2 pool) see inside the main path's window"
        rep = replace(rep, notes=(*rep.notes, note))
        if self.head == "image":
            rep = replace(rep, decision_reason=GLOBAL_MEAN_REASON)
        return rep

    def param_count(self) -> int:
        """Trainable parameters of :class:`ganrf.models.resnet.ResidualDiscriminator` (spectral
        norm's vectors are buffers). Per block ``cin -> c``: conv1 ``cin -> h`` and conv2
        ``h -> c`` with ``h = c`` in the first block and ``h = cin`` after (SNGAN), each
        ``k^2`` weights per pair plus a bias; a 1x1 shortcut ``cin * c + c`` when the block
        pools or changes channels (always in the first); the head ``c + 1``."""
        total, cin = 0, self.in_channels
        for i, b in enumerate(self.layers):
            c, k2 = b.channels, b.kernel**2
            hidden = c if i == 0 else cin
            total += cin * hidden * k2 + hidden + hidden * c * k2 + c
            if i == 0 or b.down or cin != c:
                total += cin * c + c
            cin = c
        return total + cin + 1

    def to_dict(self) -> dict:
        """As :meth:`DiscriminatorDesign.to_dict` (the same keys), plus ``family``."""
        return {"family": "resnet", **super().to_dict()}

    def to_value(self) -> dict:
        """As :meth:`DiscriminatorDesign.to_value`: a plain JSON value (blocks as
        ``[kernel, down, channels]``, marked ``family: resnet``) that :func:`design_from_value`
        turns back into this design without parsing a spec."""
        layers = [[b.kernel, int(b.down), b.channels] for b in self.layers]
        return {"family": "resnet", "layers": layers, **input_value(self)}

    @classmethod
    def from_value(cls, value: dict) -> ResidualDesign:
        """Inverse of :meth:`to_value`.

        Raises:
            DesignError: a value that is not one, or a design that cannot be built.
        """
        try:
            blocks = tuple(ResBlock(int(k), bool(d), int(c)) for k, d, c in value["layers"])
            return from_input_value(cls, blocks, value)
        except (KeyError, TypeError, ValueError) as e:
            raise value_error(e, value) from None

    @classmethod
    def from_spec(
        cls,
        layers: str,
        *,
        channels: tuple[int, ...] | str | None = None,
        head: str = "image",
        norm: str = "spectral",
        dropout: float = 0.0,
        image_size: int = 32,
        in_channels: int = 3,
    ) -> ResidualDesign:
        """From ``"res3s2,res3s2,res3,res3"``; channels default to 64 doubling at every pooling
        block but the first (capped at 512), as the plain families'."""
        try:
            tokens, parsed_head = split_spec(layers)  # the grammar every family shares
            blocks = [_block(i, tok) for i, tok in enumerate(tokens, 1)]
            channels = layer_channels(channels, len(blocks), layers)
        except SpecError as e:
            raise DesignError(str(e)) from None
        head = parsed_head or head
        if channels is None:
            channels = default_channels([b.stride for b in blocks])
        blocks_t = tuple(replace(b, channels=c) for b, c in zip(blocks, channels))
        return cls(blocks_t, head, norm, dropout, image_size, in_channels)


def _block(index: int, token: str) -> ResBlock:
    """The block a residual token names (channels set later): ``res3`` or ``res3s2``."""
    m = _TOKEN_RE.match(token)
    if not m or m["s"] not in (None, "1", "2"):
        raise unreadable(index, token, RES_HELP)
    return ResBlock(int(m["k"]), m["s"] == "2")


def is_residual(layers: str) -> bool:
    """Whether a spec string names residual blocks (its first token starts with ``res``)."""
    return layers.strip().lower().startswith("res")


def design_from_value(value: dict) -> DiscriminatorDesign | ResidualDesign:
    """The design a plain value names (``to_value`` of either family; ``family: resnet`` marks a
    residual one)."""
    if isinstance(value, dict) and value.get("family") == "resnet":
        return ResidualDesign.from_value(value)
    return DiscriminatorDesign.from_value(value)


def design_from_spec(
    layers: str,
    *,
    channels: tuple[int, ...] | str | None = None,
    head: str = "image",
    norm: str = "none",
    dropout: float = DROPOUT,
    image_size: int = 28,
    in_channels: int = 1,
) -> DiscriminatorDesign | ResidualDesign:
    """The design a spec string names: residual blocks (``res3s2,...``,
    :meth:`ResidualDesign.from_spec`) or a plain stack (``conv5s2,...``,
    :meth:`DiscriminatorDesign.from_spec`); the defaults are the config's."""
    cls = ResidualDesign if is_residual(layers) else DiscriminatorDesign
    return cls.from_spec(
        layers,
        channels=channels,
        head=head,
        norm=norm,
        dropout=dropout,
        image_size=image_size,
        in_channels=in_channels,
    )
