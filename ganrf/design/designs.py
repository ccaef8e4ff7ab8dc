"""Discriminator designs: small immutable values whose rf is computed from themselves.

A design is the data a sweep varies (layers, head, normalisation, dropout) plus the input it is
for. Its rf and decision rf come from :func:`ganrf.design.rf.receptive_field` on its own layer specs,
never typed in by hand. :func:`solve` lists the designs that hit a target rf exactly at a given
depth ("rf-equivalent" stacks: one 7x7, two 4x4, three 3x3 at stride 1), and
:func:`match_capacity` widens or narrows channels so that a comparison group does not confound
rf with parameter count; both live in :mod:`ganrf.design.search`.
No torch is imported: configs are checked without it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from ganrf.design.norms import apply_norms
from ganrf.design.rf import LayerSpec, RFError, RFReport, conv_padding, parse_specs, receptive_field
from ganrf.design.spec import SpecError, layer_channels

__all__ = [
    "ConvLayer",
    "DiscriminatorDesign",
    "DesignError",
    "DROPOUT",
    "FAMILIES",
    "HEADS",
    "NORMS",
    "param_count",
    "notes_initial",
    "onelayer",
]

HEADS = ("image", "patch")
NORMS = ("none", "batch", "instance", "spectral")
FAMILIES = ("stride1", "stride2", "dilated", "resnet")  # resnet: ganrf.design.resnet
# Discriminator dropout unless a design asks for more: every sweep has run without it, as the
# notes' onelayer_multi_rfs and DCGAN's and SNGAN's discriminators do. The notes' first
# discriminator (:func:`notes_initial`) had 0.3, and says so itself.
DROPOUT = 0.0
NOTES_DROPOUT = 0.3
MAX_CHANNELS = 512


class DesignError(ValueError):
    """A design request that cannot be met; the message names the nearest feasible choices."""


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer of a discriminator: square kernel, stride, dilation, output channels."""

    kernel: int
    stride: int = 1
    dilation: int = 1
    channels: int = 64

    @property
    def spec(self) -> LayerSpec:
        """The layer's geometry, padded by :func:`ganrf.design.rf.conv_padding`."""
        pb, pe = conv_padding(self.kernel, self.stride, self.dilation)
        k, s, d = (self.kernel,) * 2, (self.stride,) * 2, (self.dilation,) * 2
        return LayerSpec("conv", k, s, (pb, pb), (pe, pe), d)  # type: ignore[arg-type]

    @property
    def token(self) -> str:
        """What the layer is, e.g. ``conv5s2`` or ``conv3d2`` (:attr:`LayerSpec.token`)."""
        return self.spec.token


class DesignViews:
    """What every design family derives alike from its ``layers`` (each with a ``token`` and
    ``channels``), ``head`` and ``report`` (its :class:`~ganrf.design.rf.RFReport`): the plain
    stacks here and the residual ones (:class:`ganrf.design.resnet.ResidualDesign`)."""

    layers: tuple
    head: str

    @property
    def rf(self) -> int:
        """Theoretical rf of one unit of the last conv map (square)."""
        return self.report.size[0]  # type: ignore[attr-defined]

    @property
    def decision_rf(self) -> int:
        return self.report.decision_rf[0]  # type: ignore[attr-defined]

    @property
    def depth(self) -> int:
        """Layers (plain) or blocks (residual): each family's unit of depth."""
        return len(self.layers)

    @property
    def feature_size(self) -> int:
        return self.report.feature_size[0]  # type: ignore[attr-defined]

    # -- as text and data ---------------------------------------------------------------------
    @property
    def spec_string(self) -> str:
        """Layers as a spec string, e.g. ``"conv5s2,conv5s2"`` (the CLI's and config's form)."""
        return ",".join(layer.token for layer in self.layers)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(layer.channels for layer in self.layers)

    @property
    def name(self) -> str:
        return f"rf{self.rf}-d{self.depth}-{self.spec_string.replace(',', '_')}-{self.head}"

    def to_dict(self) -> dict:
        """The whole design as JSON-ready data: what a trial's ``design.json`` records and the
        analysis reads without torch.

        ``layers`` is the spec string and ``channels`` a comma-separated string such as
        ``"64,128"`` (the config's ``d.channels`` form; :meth:`from_spec` takes both back).
        ``rf``, ``decision_rf``, ``effective_stride`` and ``output_grid`` are side lengths (the
        design is square); ``table`` is the layer table :meth:`RFReport.table` prints.
        """
        rep = self.report
        return {
            "layers": self.spec_string,
            "channels": ",".join(str(c) for c in self.channels),
            "head": self.head,
            "norm": self.norm,
            "dropout": self.dropout,
            "image_size": self.image_size,
            "in_channels": self.in_channels,
            "depth": self.depth,
            "rf": self.rf,
            "decision_rf": self.decision_rf,
            "decision_reason": rep.decision_reason,
            "mixes_batch": rep.mixes_batch,
            "effective_stride": rep.stride[0],
            "output_grid": rep.output_grid[0],
            "params": param_count(self),
            "table": rep.table(),
        }

    def scaled(self, width: float):
        """Same rf, channels multiplied by ``width`` (at least 1 each)."""
        if width <= 0:
            raise DesignError(f"width multiplier must be positive, got {width}")
        layers = tuple(
            replace(la, channels=max(1, round(la.channels * width))) for la in self.layers
        )
        return replace(self, layers=layers)  # type: ignore[type-var]


def input_value(design) -> dict:
    """The keys every family's ``to_value`` shares: head, norm, dropout and the input."""
    return {
        "head": design.head,
        "norm": design.norm,
        "dropout": design.dropout,
        "image_size": design.image_size,
        "in_channels": design.in_channels,
    }


def from_input_value(cls, layers: tuple, value: dict):
    """``cls(layers, ...)`` with the keys of :func:`input_value` read back."""
    return cls(
        layers,
        head=str(value["head"]),
        norm=str(value["norm"]),
        dropout=float(value["dropout"]),
        image_size=int(value["image_size"]),
        in_channels=int(value["in_channels"]),
    )


def value_error(e: Exception, value: object) -> DesignError:
    """The one sentence for a ``from_value`` input that is not a design value."""
    if isinstance(e, DesignError):
        return e
    return DesignError(f"not a design value ({type(e).__name__}: {e}): {value!r}")


@dataclass(frozen=True)
class DiscriminatorDesign(DesignViews):
    """A discriminator as data.

    Attributes:
        layers: the conv stack, first layer first.
        head: ``"image"`` (flatten + dense, one score per image, the notes' DCGAN head) or
            ``"patch"`` (a 1x1 conv, one score per location: the Markovian/PatchGAN head).
        norm: ``"none"`` (the notes), ``"batch"``, ``"instance"`` (both after every conv but the
            first, as in DCGAN/pix2pix) or ``"spectral"`` (on every conv and the head).
        dropout: after every LeakyReLU (:data:`DROPOUT` by default; the notes' first
            discriminator used 0.3).
        image_size: input height = width.
        in_channels: 1 for MNIST, 3 for RGB.
    """

    layers: tuple[ConvLayer, ...]
    head: str = "image"
    norm: str = "none"
    dropout: float = DROPOUT
    image_size: int = 28
    in_channels: int = 1

    def __post_init__(self) -> None:
        validate(self)

    # -- what it sees -------------------------------------------------------------------------
    @functools.cached_property
    def report(self) -> RFReport:
        """The rf report of this design's conv stack and head (eval-mode semantics for norms)."""
        rep = receptive_field(
            self.specs, (self.in_channels, self.image_size, self.image_size), head=self.head
        )
        # The norms run as the module trains (BatchNorm in training mode), by the same rule the
        # tracer applies to a built module.
        norms = [(self.norm, "") for i in range(self.depth) if self.normalised(i)]
        return apply_norms(rep, norms)

    def normalised(self, index: int) -> bool:
        """Whether a batch or instance norm follows conv ``index`` (0-based): every conv but the
        first, as in DCGAN and pix2pix."""
        return self.norm in ("batch", "instance") and index > 0

    @property
    def specs(self) -> list[LayerSpec]:
        return [layer.spec for layer in self.layers]

    def to_value(self) -> dict:
        """The design as a plain JSON value that :meth:`from_value` turns back into it without
        parsing a spec string: how a sweep carries a solved design to its trials."""
        layers = [[la.kernel, la.stride, la.dilation, la.channels] for la in self.layers]
        return {"layers": layers, **input_value(self)}

    @classmethod
    def from_value(cls, value: dict) -> DiscriminatorDesign:
        """Inverse of :meth:`to_value` (lists or tuples alike: JSON makes tuples lists).

        Raises:
            DesignError: a value that is not one, or a design that cannot be built.
        """
        try:
            layers = tuple(ConvLayer(*map(int, la)) for la in value["layers"])
            return from_input_value(cls, layers, value)
        except (KeyError, TypeError, ValueError) as e:
            raise value_error(e, value) from None

    @classmethod
    def from_spec(
        cls,
        layers: str,
        *,
        channels: tuple[int, ...] | str | None = None,
        head: str = "image",
        norm: str = "none",
        dropout: float = DROPOUT,
        image_size: int = 28,
        in_channels: int = 1,
    ) -> DiscriminatorDesign:
        """Build a design from a spec string such as ``"conv5s2,conv5s2"``.

        Channels default to 64 doubling at every stride-2 layer (capped at 512), as in the notes'
        64 -> 128 discriminator.
        """
        try:
            specs, parsed_head = parse_specs(layers)
            convs = [_square_conv(s) for s in specs]
            channels = layer_channels(channels, len(convs), layers)
        except (RFError, SpecError) as e:
            raise DesignError(str(e)) from None
        head = parsed_head or head
        if channels is None:
            channels = default_channels([c.stride for c in convs])
        layers_t = tuple(replace(c, channels=ch) for c, ch in zip(convs, channels))
        return cls(layers_t, head, norm, dropout, image_size, in_channels)


def _square_conv(spec: LayerSpec) -> ConvLayer:
    """The design layer of a parsed spec (channels set later), if it is a square conv."""
    if spec.kind != "conv" or spec.kernel[0] != spec.kernel[1]:
        raise DesignError(
            f"designs take square conv layers only, got {spec.token}; "
            "use receptive_field() for other stacks"
        )
    return ConvLayer(spec.kernel[0], spec.stride[0], spec.dilation[0])


def default_channels(strides: list[int], base: int = 64) -> tuple[int, ...]:
    out, c = [], base
    for i, s in enumerate(strides):
        if i > 0 and s > 1:
            c = min(MAX_CHANNELS, c * 2)
        out.append(c)
    return tuple(out)


def validate(design: DiscriminatorDesign) -> None:
    """Raise :class:`DesignError` with one sentence for anything that cannot be built."""
    if design.head not in HEADS:
        raise DesignError(f"unknown head {design.head!r}; choose one of {', '.join(HEADS)}")
    if design.norm not in NORMS:
        raise DesignError(f"unknown norm {design.norm!r}; choose one of {', '.join(NORMS)}")
    if not design.layers:
        raise DesignError("a design needs at least one conv layer (depth >= 1)")
    if design.image_size < 1 or design.in_channels < 1:
        raise DesignError(
            f"image size {design.image_size} and channels {design.in_channels} must be positive"
        )
    if not 0.0 <= design.dropout < 1.0:
        raise DesignError(f"dropout {design.dropout} must be in [0, 1)")
    for i, la in enumerate(design.layers, 1):
        if min(la.kernel, la.stride, la.dilation, la.channels) < 1:
            raise DesignError(
                f"layer {i} {la}: kernel, stride, dilation and channels must all be >= 1"
            )
    size = design.image_size
    for i, la in enumerate(design.layers, 1):
        size = la.spec.out_size((size, size))[0]
        if size < 1:
            raise DesignError(
                f"layer {i} ({la.token}) leaves no feature map on a {design.image_size}px input; "
                f"use at most {i - 1} such layers or a larger image"
            )


def param_count(design: DiscriminatorDesign) -> int:
    """Trainable parameters of the module :func:`ganrf.models.build_discriminator` builds
    (checked against the built module in the tests). A residual design
    (:class:`ganrf.design.resnet.ResidualDesign`) counts its own."""
    if not isinstance(design, DiscriminatorDesign):
        return design.param_count()
    total, cin = 0, design.in_channels
    for i, la in enumerate(design.layers):
        normed = design.normalised(i)
        bias = not (normed and design.norm == "batch")  # BatchNorm's shift replaces the bias
        total += cin * la.channels * la.kernel**2 + (la.channels if bias else 0)
        if normed:
            total += 2 * la.channels  # affine scale and shift
        cin = la.channels
    if design.head == "image":
        total += cin * design.feature_size**2 + 1
    else:
        total += cin + 1
    return total


# --------------------------------------------------------------------------------------------
# The notes' designs
# --------------------------------------------------------------------------------------------


def notes_initial(image_size: int = 28, in_channels: int = 1) -> DiscriminatorDesign:
    """The notes' initial discriminator: conv 64 k5 s2, conv 128 k5 s2, dense (rf 13), with
    their dropout 0.3 after each LeakyReLU (:data:`NOTES_DROPOUT`)."""
    return DiscriminatorDesign(
        (ConvLayer(5, 2, channels=64), ConvLayer(5, 2, channels=128)),
        dropout=NOTES_DROPOUT,
        image_size=image_size,
        in_channels=in_channels,
    )


def onelayer(
    kernel: int,
    image_size: int = 28,
    in_channels: int = 1,
    head: str = "image",
    dropout: float = DROPOUT,
) -> DiscriminatorDesign:
    """The notes' ``onelayer_multi_rfs``: one conv (64, stride 1, same padding, kernel k),
    LeakyReLU, dense (the notes use no dropout there)."""
    return DiscriminatorDesign(
        (ConvLayer(kernel, 1, channels=64),),
        head=head,
        dropout=dropout,
        image_size=image_size,
        in_channels=in_channels,
    )
