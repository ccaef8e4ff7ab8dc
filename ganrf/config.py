"""Typed training configuration.

Ray Tune, the CLI and the tests hand over a flat dict (``{"d.layers": "conv5s2,conv5s2",
"loss.kind": "hinge"}``) or a nested one; :meth:`TrainConfig.from_dict` turns it into
dataclasses once, checking types and rejecting unknown keys with the nearest valid name.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_type_hints

from ganrf.design.designs import DROPOUT, ConvLayer, DiscriminatorDesign
from ganrf.design.resnet import ResidualDesign, design_from_spec, design_from_value

DATASETS = ("mnist", "celeba", "imagenet", "folder", "photo", "synthetic")
LOSSES = ("ns", "wgan-gp", "hinge")
GENERATORS = ("mnist", "dcgan", "resnet")


class ConfigError(ValueError):
    """A config that cannot run; the message names the key and what to do."""


@dataclass
class DataConfig:
    dataset: str = "mnist"  # mnist | celeba | imagenet | folder | photo | synthetic
    root: str = "data"  # torchvision downloads MNIST here when it is missing
    download: bool = True  # False: fail with a clear message instead of downloading
    image_size: int = 28  # 28 for MNIST, 64 for CelebA, 64 or 128 for ImageNet
    channels: int = 1
    subset: int = 0  # use the first N training images (0: all)
    synthetic_size: int = 2048  # images in the in-memory synthetic set
    # dataset "photo" (ganrf.data.photo): crops of pictures shipped with scikit-image
    photo: str = "astronaut"  # comma-separated keys of ganrf.data.photo.PHOTOS
    photo_size: int = 128  # each picture resized to this shorter side before cropping (0: as is)
    crops: int = 4096  # random image_size crops in the training set
    flip: bool = True  # flip half the crops left to right
    workers: int = 4  # DataLoader workers when the dataset streams from disk
    device_max_gb: float = 4.0  # hold the dataset on the device as uint8 when it fits


@dataclass
class GeneratorConfig:
    kind: str = "mnist"  # "mnist": the notes' generator; "dcgan": 64/128 RGB; "resnet": SNGAN
    noise_dim: int = 100
    width: float = 1.0  # channel multiplier (rf of D is unaffected)


@dataclass
class DiscriminatorConfig:
    layers: str = "conv5s2,conv5s2"  # spec string, as `ganrf rf` reads it; res3s2,res3: blocks
    channels: str = ""  # comma-separated per layer; "" = 64 doubling at stride 2
    head: str = "image"  # image (dense, DCGAN) | patch (1x1 conv, PatchGAN)
    norm: str = "none"  # none | batch | instance | spectral
    dropout: float = DROPOUT  # 0: every sweep's, DCGAN's and SNGAN's (the notes' first: 0.3)
    width: float = 1.0  # channel multiplier applied on top of `channels`


@dataclass
class LossConfig:
    kind: str = "ns"  # ns (non-saturating, the notes) | wgan-gp | hinge
    gp_weight: float = 10.0  # WGAN-GP lambda (Gulrajani et al. 2017)


@dataclass
class OptimConfig:
    # The notes: Adam(1e-4) with Keras defaults (beta1 0.9). DCGAN's paper uses 2e-4, 0.5.
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    d_steps: int = 1  # discriminator updates per generator update


@dataclass
class ScheduleConfig:
    epochs: int = 50  # the notes' 50 epochs
    steps: int = 0  # > 0: stop after this many generator steps instead of `epochs`
    batch_size: int = 256
    eval_every: int = 1  # epochs between evaluations (reports and checkpoints)
    eval_every_steps: int = 0  # > 0: evaluate every N steps instead (short runs, tests)


@dataclass
class EvalConfig:
    grid: int = 64  # samples in the fixed-noise grid written at every evaluation
    metrics: bool = True  # the dataset's metrics (see ganrf.metrics); off for speed tests
    samples: int = 10_000  # generated samples the metrics use
    erf_images: int = 64  # real images averaged for the effective-rf map
    inception_weights: str = ""  # local pt_inception-2015-12-05 weights for RGB FID (offline)
    # auto: the shipped digit CNN for 28x28 grey, Inception-V3 for the rest (FID, KID, PRDC);
    # none: pixel metrics only (SWD per level, SSIM), no network downloaded
    features: str = "auto"


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    g: GeneratorConfig = field(default_factory=GeneratorConfig)
    d: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    device: str = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | cuda:1 | mps
    threads: int = 0  # CPU threads for this trial (0: torch's default)
    cuda_graph: bool = True  # capture the whole step in one CUDA graph on CUDA
    # The discriminator the d.* and data.* keys describe, before d.width: one value, resolved
    # once when the config is made (given by a sweep, else parsed from d.layers) and carried as
    # it is; d.layers is not read again, so a new discriminator means a new config (from_dict,
    # with_design). Not a config key: to_dict writes the d.* keys that describe it. The
    # default is the default keys' design, built without parsing them.
    discriminator: DiscriminatorDesign | ResidualDesign = field(
        default_factory=lambda: DiscriminatorDesign(
            (ConvLayer(5, 2, channels=64), ConvLayer(5, 2, channels=128))
        ),
        repr=False,
        compare=False,  # the d.* keys describe it whole: equal keys, equal designs
    )

    # -- conversion ---------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        raw: dict[str, Any] | None = None,
        *,
        design: DiscriminatorDesign | ResidualDesign | None = None,
        **overrides: Any,
    ) -> TrainConfig:
        """From a flat (``"d.layers"``) or nested (``{"d": {"layers": ...}}``) dict.

        Args:
            design: the discriminator, already solved (before ``d.width``): it sets the
                ``d.*`` keys that describe it and is carried as it is, never parsed from them
                (:meth:`with_design`). Without it, ``d.layers`` is parsed, once.
        """
        flat = _flatten(raw or {})
        flat.update(_flatten(overrides))
        cfg = cls()
        valid = sorted(_all_keys(cfg))
        for key, value in flat.items():
            if key not in valid:
                near = difflib.get_close_matches(key, valid, n=1)
                hint = (
                    f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(valid)}"
                )
                raise ConfigError(f"unknown config key {key!r}{hint}")
            _set(cfg, key, value)
        cfg._check()  # the keys' own errors first, then the design they name or are given
        if design is None:
            cfg.discriminator = cfg._parse_design()  # the keys stay as they were written
        else:
            cfg._carry(design)
        cfg.validate()
        return cfg

    def with_design(self, design: DiscriminatorDesign | ResidualDesign) -> TrainConfig:
        """A copy of this config whose discriminator is ``design`` (before ``d.width``), carried
        as the value it is: the ``d.*`` keys are set to describe it (``config.json`` stays flat
        and readable).

        Raises:
            ConfigError: ``design`` is for another input than ``data.image_size`` and
                ``data.channels``.
        """
        cfg = copy.deepcopy(self)
        cfg._carry(design)
        cfg.validate()
        return cfg

    def _parse_design(self) -> DiscriminatorDesign | ResidualDesign:
        """The design the ``d.*`` and ``data.*`` keys name, parsed from ``d.layers``."""
        return design_from_spec(
            self.d.layers,
            channels=self.d.channels or None,
            head=self.d.head,
            norm=self.d.norm,
            dropout=self.d.dropout,
            image_size=self.data.image_size,
            in_channels=self.data.channels,
        )

    def _carry(self, design: DiscriminatorDesign | ResidualDesign) -> None:
        if (design.image_size, design.in_channels) != (self.data.image_size, self.data.channels):
            raise ConfigError(
                f"the discriminator design is for {design.image_size}px images of "
                f"{design.in_channels} channel(s), but data.image_size is {self.data.image_size} "
                f"and data.channels {self.data.channels}; a sweep solves its designs for its "
                "preset's images, so choose the preset (or script) for these"
            )
        self.discriminator = design
        self.d.layers, self.d.channels = design.spec_string, ",".join(map(str, design.channels))
        self.d.head, self.d.norm, self.d.dropout = design.head, design.norm, design.dropout

    def to_dict(self) -> dict[str, Any]:
        """Flat dict that :meth:`from_dict` reads back (and that is stored as config.json): the
        config keys, the discriminator as the ``d.*`` keys that describe it."""
        keyed = {f.name: getattr(self, f.name) for f in fields(self) if f.name != DESIGN_FIELD}
        return _flatten(
            {k: asdict(v) if dataclasses.is_dataclass(v) else v for k, v in keyed.items()}
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    # -- derived ------------------------------------------------------------------------------
    def design(self) -> DiscriminatorDesign | ResidualDesign:
        """The discriminator this config trains: :attr:`discriminator` with ``d.width``
        applied."""
        if self.d.width == 1.0:
            return self.discriminator
        return self.discriminator.scaled(self.d.width)

    def validate(self) -> None:
        """Raise ConfigError (DesignError for the design) with one sentence for anything that
        cannot run."""
        self._check()
        self.design()  # raises DesignError for a width that cannot be applied

    def _check(self) -> None:
        checks = [
            (self.data.dataset in DATASETS, "data.dataset", f"one of {', '.join(DATASETS)}"),
            (self.loss.kind in LOSSES, "loss.kind", f"one of {', '.join(LOSSES)}"),
            (self.g.kind in GENERATORS, "g.kind", f"one of {', '.join(GENERATORS)}"),
            (self.data.image_size > 0, "data.image_size", "a positive number of pixels"),
            (self.data.channels in (1, 3), "data.channels", "1 or 3"),
            (self.data.subset >= 0, "data.subset", "0 (all) or a positive count"),
            (self.data.synthetic_size > 0, "data.synthetic_size", "positive"),
            (self.data.crops > 0, "data.crops", "positive"),
            (self.eval.features in ("auto", "none"), "eval.features", "auto or none"),
            (self.data.photo_size >= 0, "data.photo_size", "0 (as shipped) or a number of pixels"),
            (self.g.noise_dim > 0, "g.noise_dim", "positive"),
            (self.g.width > 0, "g.width", "positive"),
            (self.d.width > 0, "d.width", "positive"),
            (self.optim.lr_g > 0 and self.optim.lr_d > 0, "optim.lr_g/lr_d", "positive"),
            (
                0 <= self.optim.beta1 < 1 and 0 <= self.optim.beta2 < 1,
                "optim.beta1/beta2",
                "in [0, 1)",
            ),
            (self.optim.d_steps >= 1, "optim.d_steps", "at least 1"),
            (
                self.schedule.epochs >= 1 or self.schedule.steps >= 1,
                "schedule.epochs",
                "at least 1",
            ),
            (self.schedule.steps >= 0, "schedule.steps", "0 (use epochs) or positive"),
            (self.schedule.batch_size >= 1, "schedule.batch_size", "at least 1"),
            (self.schedule.eval_every >= 1, "schedule.eval_every", "at least 1 epoch"),
            (self.schedule.eval_every_steps >= 0, "schedule.eval_every_steps", "0 or positive"),
            (self.eval.grid >= 1 and self.eval.samples >= 1, "eval.grid/samples", "positive"),
            (self.threads >= 0, "threads", "0 (default) or a positive count"),
            (
                re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device) is not None,
                "device",
                f"auto, cpu, cuda, cuda:N or mps, not {self.device!r}",
            ),
            (self.loss.gp_weight >= 0, "loss.gp_weight", "non-negative"),
        ]
        for ok, key, what in checks:
            if not ok:
                raise ConfigError(f"{key} must be {what}")
        if self.g.kind == "mnist" and self.data.image_size != 28:
            raise ConfigError(
                f"g.kind 'mnist' makes 28x28 images but data.image_size is {self.data.image_size}; "
                "use g.kind 'dcgan' for 64 or 128"
            )
        if self.g.kind == "resnet" and self.data.image_size not in (28, 32, 64, 128):
            raise ConfigError(
                f"g.kind 'resnet' makes 28, 32, 64 or 128 px images, not {self.data.image_size}"
            )


def carried_config(keys: dict[str, Any], design: dict[str, Any] | None) -> TrainConfig:
    """The config of a flat trial value: its ``keys`` and the plain design value it carries
    (:meth:`DiscriminatorDesign.to_value`), taken as it is; ``design`` None (a value from
    before the design was carried): ``d.layers`` parsed, once.

    Raises:
        ConfigError: an unknown or bad key. DesignError: a bad design value.
    """
    carried = None if design is None else design_from_value(design)
    return TrainConfig.from_dict(keys, design=carried)


# Keys a listing of a config leaves out as not in force (``--dry-run``, the page's "held
# fixed"): schedule keys that a set (non-zero) key replaces, and keys that do nothing without CUDA.
UNUSED_WHEN = {
    "schedule.epochs": "schedule.steps",
    "schedule.eval_every": "schedule.eval_every_steps",
}
CUDA_ONLY = ("cuda_graph",)


def not_in_force(flat: dict[str, Any], cuda: bool) -> list[str]:
    """The keys of ``flat`` (a flat config) that do nothing in it: an epoch count a step count
    replaces, and (``cuda`` False) a CUDA-only key."""
    hidden = [k for k, instead in UNUSED_WHEN.items() if k in flat and flat.get(instead, 0) != 0]
    return hidden + ([] if cuda else [k for k in CUDA_ONLY if k in flat])


def add_set_flag(
    parser: argparse.ArgumentParser,
    help: str = "any config key, e.g. --set optim.lr_d=2e-4 (repeatable)",
) -> None:
    """``--set KEY=VALUE``, repeatable, as ``ganrf train``, the bench and the sweep scripts take
    it (:func:`parse_set` reads it)."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def parse_set(items: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` items as a dict of stripped keys and values; a later item wins.
    (:meth:`TrainConfig.from_dict` checks the keys and coerces the values.)

    Raises:
        ConfigError: an item without ``=``.
    """
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} must be KEY=VALUE, e.g. --set d.head=patch")
        values[key.strip()] = value.strip()
    return values


DESIGN_FIELD = "discriminator"  # TrainConfig's design value: not a key, the d.* keys describe it


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _all_keys(obj: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in fields(obj):
        if f.name == DESIGN_FIELD:
            continue
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += _all_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _set(cfg: Any, key: str, value: Any) -> None:
    *path, name = key.split(".")
    target = cfg
    for part in path:
        target = getattr(target, part)
    want = get_type_hints(type(target))[name]
    setattr(target, name, _coerce(key, value, want))


def _coerce(key: str, value: Any, want: type) -> Any:
    if want is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif want in (int, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if want is float:
                return float(value)
            if isinstance(value, int) or value.is_integer():
                return int(value)
        if isinstance(value, str):
            try:
                return want(value)
            except ValueError:
                pass
    elif want is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    kind = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}
    raise ConfigError(f"{key} must be {kind.get(want, want.__name__)}, got {value!r}")
