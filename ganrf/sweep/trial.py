"""One trial of a sweep, as one value from the grid point to the row of the page.

A :class:`Trial` is the typed training config (carrying the discriminator design the grid
solved) plus the sweep's meta: which experiments it serves and its time budget. The sweep makes
it once from a grid point (:meth:`Trial.make`), checks it, and hands Ray Tune
:meth:`Trial.to_flat` (a flat dict with the design as a plain value: Tune stores it in the trial
folder's ``params.json``); the trainable rebuilds it once with :meth:`Trial.from_flat`, taking
the design as it is: no rf spec is parsed on the way (a trial from before the design was carried
parses its ``d.layers`` once). The trial folder's ``config.json``, ``design.json`` and
``meta.json`` are what the analysis reads. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganrf.config import TrainConfig, carried_config
from ganrf.design.designs import DiscriminatorDesign, default_channels
from ganrf.design.resnet import ResidualDesign
from ganrf.runs import DESIGN_KEY, EXPERIMENT_KEY, META_PREFIX, NAME_KEY, split_meta
from ganrf.sweep.experiments import GridPoint


@dataclass(frozen=True)
class Trial:
    """A training config and the sweep's meta about it.

    Attributes:
        config: the resolved, validated training config.
        experiments: the named experiments this trial serves (a design two share runs once).
        timeout_s: wall-time budget per attempt (None: no budget).
    """

    config: TrainConfig
    experiments: tuple[str, ...] = ()
    timeout_s: float | None = None

    @classmethod
    def make(
        cls, base: dict[str, Any], point: GridPoint, *, timeout_s: float | None = None
    ) -> Trial:
        """The trial of ``point`` on the shared ``base`` config keys (validated here, once),
        carrying the point's design."""
        config = TrainConfig.from_dict({**base, "seed": point.seed}, design=point.design)
        return cls(config, point.experiments, timeout_s)

    @property
    def design(self) -> DiscriminatorDesign | ResidualDesign:
        return self.config.design()

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def name(self) -> str:
        """Readable and unique within a sweep: rf, depth, layers, head, the channels when the
        grid set other than the default ones (capacity-matched ``same_rf`` stacks: ``-c102``),
        and the seed. (Norm, dropout and every other key are the same for a whole sweep.)"""
        d = self.design
        chosen = self.config.d.channels
        default = ",".join(map(str, default_channels([la.stride for la in d.layers])))
        tag = f"-c{chosen.replace(',', '_')}" if chosen and chosen != default else ""
        return f"{d.name}{tag}-s{self.seed}"

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """What a tracker groups and filters trials by, flat and named (:data:`HPARAMS`): the
        design's rf, depth, layers, channels, head, norm and family, the loss, the dataset, the
        seed and the experiments it serves."""
        d, c = self.design, self.config
        return {
            "rf": d.rf,
            "depth": d.depth,
            "layers": d.spec_string,
            "channels": ",".join(map(str, d.channels)),
            "head": d.head,
            "norm": c.d.norm,
            "family": "resnet" if isinstance(d, ResidualDesign) else "plain",
            "loss": c.loss.kind,
            "dataset": c.data.dataset,
            "seed": c.seed,
            "experiment": ",".join(self.experiments),
        }

    @property
    def meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            EXPERIMENT_KEY: ",".join(self.experiments),
            NAME_KEY: self.name,
        }
        if self.timeout_s is not None:
            meta[f"{META_PREFIX}timeout_s"] = self.timeout_s
        return meta

    def to_flat(self) -> dict[str, Any]:
        """Flat config keys, the design as a plain value (:data:`ganrf.runs.DESIGN_KEY`) and
        ``meta.*`` keys: what Tune carries (JSON-safe)."""
        design = self.config.discriminator.to_value()
        return {**self.config.to_dict(), DESIGN_KEY: design, **self.meta}

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> Trial:
        """Inverse of :meth:`to_flat`; a flat value from before the design was carried (no
        :data:`ganrf.runs.DESIGN_KEY`) has its ``d.layers`` parsed, once.

        Raises:
            ConfigError: an unknown or bad key. DesignError: a bad design value.
        """
        config, meta, design = split_meta(flat)
        exps = meta.get(EXPERIMENT_KEY) or ""
        timeout = meta.get(f"{META_PREFIX}timeout_s")
        return cls(
            carried_config(config, design),
            tuple(e for e in exps.split(",") if e),
            None if timeout is None else float(timeout),
        )


# Tune's config holds each of these beside the trial value (``ganrf.sweep.raytune.tune``), so
# trackers and ``ExperimentAnalysis.dataframe()`` see ``rf``, ``depth``... and not one opaque list.
HPARAMS = (
    "rf",
    "depth",
    "layers",
    "channels",
    "head",
    "norm",
    "family",
    "loss",
    "dataset",
    "seed",
    "experiment",
)


def named_hyperparameters(config: dict[str, Any]) -> dict[str, Any]:
    """A Tune trial's flat, named hyper-parameters: the :data:`HPARAMS` keys of its config
    (``ganrf.sweep.raytune.tune.param_space`` puts them there beside the trial value)."""
    return {k: config[k] for k in HPARAMS if k in config}


def pack_hyperparameter(key: str, flats: list[dict[str, Any]]) -> Any:
    """One hyper-parameter of a packed trial (its members' flat values): the value they share,
    else every member's joined by "|" (a pack of rf 1 and rf 3: "1|3"), so it stays one
    filterable value."""
    values = [Trial.from_flat(f).hyperparameters[key] for f in flats]
    if all(v == values[0] for v in values):
        return values[0]
    return "|".join(str(v) for v in values)


def pack_name(members: list[Trial]) -> str:
    """A pack's name: its one member's name, the design with every seed when the members share
    a design (``rf5-d1-conv5-image-s0-1-2``), else ``pack<K>-`` and the first member's name."""
    if len(members) == 1:
        return members[0].name
    if len({m.design for m in members}) == 1:
        return f"{members[0].design.name}-s{'-'.join(str(m.seed) for m in members)}"
    return f"pack{len(members)}-{members[0].name}"


def make_packs(trials: list[Trial], size: int) -> list[list[Trial]]:
    """Split ``trials`` into packs of at most ``size`` members that may train together
    (:func:`ganrf.training.pack.pack_key`); the members of a pack share a design where they can, so
    each stacked discriminator group is as large as possible. ``size`` 1: one trial each."""
    from ganrf.training.pack import pack_key, packable  # torch, only when packing is asked for

    if size <= 1:
        return [[t] for t in trials]
    groups: dict[tuple, list[Trial]] = {}
    for t in trials:
        key = ("alone", t.name) if packable(t.config) else pack_key(t.config)
        groups.setdefault(key, []).append(t)
    packs: list[list[Trial]] = []
    for members in groups.values():
        members = sorted(members, key=lambda t: (t.design.name, t.seed))
        packs += [members[i : i + size] for i in range(0, len(members), size)]
    return packs
