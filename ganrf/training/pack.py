"""A pack: K member GANs trained as one computation, each exactly an independent training.

Small GANs leave a GPU mostly idle, and processes sharing a GPU only take turns. A pack fills it
by fusing models instead (horizontal fusion, as HFTA, arXiv 2102.02344): the members' weights are
stacked along a leading member axis (``torch.func.stack_module_state``) and every layer runs
once for all of them under ``torch.func.vmap`` (a conv becomes one grouped conv, a dense layer
one batched matmul). Members share no value: each has its own parameters, BatchNorm statistics,
Adam state (Adam is elementwise, so one Adam over stacked tensors is K Adams), noise stream and
data order, so a member trains exactly as it would alone, up to floating-point reassociation.

Discriminators with the same design are stacked together; a pack may hold several designs (one
stacked group each), while the generator, which is most of the FLOPs, is one group for all.

A pack of one runs the plain modules without vmap. Larger packs need what vmap can batch and
per-member randomness it cannot: no dropout and no WGAN-GP (their random draws would not follow
each member's own stream); and the members must agree on everything but the seed and the
discriminator (:func:`pack_key`). Spectral norm packs: its power iteration
(:mod:`ganrf.models.spectral`) is one batched matrix-vector product for all members.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from ganrf.config import ConfigError, TrainConfig
from ganrf.design.designs import DiscriminatorDesign
from ganrf.models import build_discriminator, generator_for


def build_models(
    cfg: TrainConfig, device: torch.device, design: DiscriminatorDesign | None = None
) -> tuple[nn.Module, nn.Module]:
    """G and D for ``cfg`` (D from ``design``, by default ``cfg.design()``), initialised from
    ``cfg.seed``: G first, then D, as every trial and pack member is."""
    torch.manual_seed(cfg.seed)
    g = generator_for(cfg)
    d = build_discriminator(design or cfg.design())
    g, d = g.to(device), d.to(device)
    if device.type == "cuda":
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    return g, d


def pack_key(cfg: TrainConfig) -> tuple:
    """Trials with equal keys can share a pack: the same config but for seed and ``d.*``."""
    flat = cfg.to_dict()
    return tuple(sorted((k, v) for k, v in flat.items() if k != "seed" and not k.startswith("d.")))


def packable(cfg: TrainConfig) -> str | None:
    """Why ``cfg`` cannot share a pack with other trials (None when it can)."""
    if cfg.d.dropout > 0:
        return "dropout (its masks would not follow the member's own random stream)"
    if cfg.loss.kind == "wgan-gp":
        return "WGAN-GP (its interpolation draws would not follow the member's own stream)"
    return None


def check_pack(configs: list[TrainConfig]) -> None:
    """Raise ConfigError (one sentence) when ``configs`` cannot train as one pack."""
    if not configs:
        raise ConfigError("a pack needs at least one member")
    if len(configs) == 1:
        return
    for cfg in configs:
        why = packable(cfg)
        if why:
            raise ConfigError(f"a trial with {why} cannot share a pack; use --pack 1")
    keys = {pack_key(c) for c in configs}
    if len(keys) > 1:
        a, b = sorted(keys)[:2]
        diff = sorted({k for k, _ in set(a) ^ set(b)})
        raise ConfigError(
            f"pack members must agree on every key but seed and d.*; they differ in {diff[:3]}"
        )
    seeds = [c.seed for c in configs]
    designs = [(c.seed, c.design()) for c in configs]
    if len(set(designs)) < len(configs):
        raise ConfigError(f"two pack members have the same design and seed ({seeds})")


class _Stacked:
    """K same-structure modules as stacked tensors, run together with vmap."""

    def __init__(self, modules: list[nn.Module], device: torch.device) -> None:
        self.template = copy.deepcopy(modules[0]).to("meta")  # structure only
        self.params, self.buffers = stack_module_state([m.to(device) for m in modules])
        self.k = len(modules)

        def call(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(self.template, (p, b), (x,))

        self._call = vmap(call)

    def __call__(self, x: Tensor) -> Tensor:  # (K, B, ...) -> (K, B, ...)
        return self._call(self.params, self.buffers, x)

    def train(self, mode: bool) -> None:
        self.template.train(mode)

    def member_state(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in (self.params | self.buffers).items()}


class Pack:
    """The members' G and D, built and initialised exactly as each would be alone.

    Args:
        configs: one validated config per member (:func:`check_pack` holds).
        designs: their discriminator designs (``cfg.design()`` by default).
        device: where the pack trains.
    """

    def __init__(
        self,
        configs: list[TrainConfig],
        device: torch.device,
        designs: list[DiscriminatorDesign] | None = None,
    ) -> None:
        check_pack(configs)
        self.configs, self.device, self.k = configs, device, len(configs)
        self.designs = designs or [c.design() for c in configs]
        self.fused = self.k > 1
        if not self.fused:
            self.g, self.d = build_models(configs[0], device, self.designs[0])
            self.groups: list[list[int]] = [[0]]
            return
        cpu = torch.device("cpu")
        gs, ds = zip(*(build_models(c, cpu, d) for c, d in zip(configs, self.designs)))
        self.g_stack = _Stacked(gs, device)
        # One stacked group per distinct design, in the members' order of first appearance.
        by_design: dict[DiscriminatorDesign, list[int]] = {}
        for i, design in enumerate(self.designs):
            by_design.setdefault(design, []).append(i)
        self.groups = list(by_design.values())
        self.d_stacks = [_Stacked([ds[i] for i in idx], device) for idx in self.groups]
        self._templates = (gs[0], list(ds))  # CPU modules to load members into for evaluation
        # Made once here: creating index tensors inside a CUDA graph capture is not allowed.
        self._group_idx = [torch.tensor(idx, device=device) for idx in self.groups]
        # Losses come out group after group; _order puts them back in member order.
        stacked = [i for idx in self.groups for i in idx]  # position -> member
        self._order = torch.tensor([stacked.index(m) for m in range(self.k)], device=device)
        # Every stacked parameter, with the member each of its rows belongs to.
        self._rows: list[tuple[Tensor, list[int]]] = [
            (p, list(range(self.k))) for p in self.g_stack.params.values()
        ]
        for st, idx in zip(self.d_stacks, self.groups):
            self._rows += [(p, idx) for p in st.params.values()]

    # -- the computation ----------------------------------------------------------------------
    def generate(self, z: Tensor) -> Tensor:
        """(K, B, noise) -> (K, B, C, H, W)."""
        if not self.fused:
            return self.g(z[0])[None]
        return self.g_stack(z)

    def discriminate(self, x: Tensor) -> list[Tensor]:
        """(K, B, C, H, W) -> per design group, its members' logits (G_k, B, ...)."""
        if not self.fused:
            return [self.d(x[0])[None]]
        return [stack(x[idx]) for stack, idx in zip(self.d_stacks, self._group_idx)]

    def per_member(self, fn: Callable[..., Tensor], *logits: list[Tensor]) -> Tensor:
        """``fn`` (a loss of one member's logits) for every member: (K,), in member order."""
        if not self.fused:
            return fn(*(x[0][0] for x in logits))[None].float()
        vals = [vmap(fn)(*(x[g] for x in logits)) for g in range(len(self.groups))]
        return torch.cat(vals).float()[self._order]

    def g_parameters(self) -> list[Tensor]:
        return list(self.g.parameters()) if not self.fused else list(self.g_stack.params.values())

    def d_parameters(self) -> list[Tensor]:
        if not self.fused:
            return list(self.d.parameters())
        return [p for s in self.d_stacks for p in s.params.values()]

    def d_requires_grad(self, on: bool) -> None:
        for p in self.d_parameters():
            p.requires_grad_(on)

    def train(self, mode: bool = True) -> None:
        if not self.fused:
            self.g.train(mode)
            self.d.train(mode)
            return
        self.g_stack.train(mode)
        for s in self.d_stacks:
            s.train(mode)

    # -- members as plain modules (evaluation) ------------------------------------------------
    def member(self, i: int) -> tuple[nn.Module, nn.Module]:
        """Member ``i``'s G and D as ordinary modules holding its current weights (copies for a
        fused pack: changing them does not change the pack)."""
        if not self.fused:
            return self.g, self.d
        g_t, ds_t = self._templates
        g = copy.deepcopy(g_t).to(self.device)
        g.load_state_dict(self.g_stack.member_state(i))
        group = next(n for n, idx in enumerate(self.groups) if i in idx)
        d = copy.deepcopy(ds_t[i]).to(self.device)
        d.load_state_dict(self.d_stacks[group].member_state(self.groups[group].index(i)))
        return g, d

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if not self.fused:
            return {"g": self.g.state_dict(), "d": [self.d.state_dict()]}
        return {
            "g": _stacked_state(self.g_stack),
            "d": [_stacked_state(s) for s in self.d_stacks],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not self.fused:
            self.g.load_state_dict(state["g"])
            self.d.load_state_dict(state["d"][0])
            return
        _load_stacked(self.g_stack, state["g"])
        for s, st in zip(self.d_stacks, state["d"]):
            _load_stacked(s, st)

    def weights_finite(self) -> Tensor:
        """(K,) bool: member ``i``'s weights are all finite."""
        if not self.fused:
            params = [*self.g.parameters(), *self.d.parameters()]
            return torch.stack([torch.isfinite(p).all() for p in params]).all()[None]
        ok = torch.stack([torch.isfinite(p.flatten(1)).all(1) for p in self.g_parameters()]).all(0)
        for s, idx in zip(self.d_stacks, self.groups):
            d_ok = torch.stack([torch.isfinite(p.flatten(1)).all(1) for p in s.params.values()])
            ok[idx] &= d_ok.all(0)
        return ok

    def zero_members(self, dead: list[int], optimizers: list[torch.optim.Optimizer]) -> None:
        """Freeze diverged members: their weights and Adam moments become zero, so with their
        losses masked out their slice stays finite and never changes again."""
        if not self.fused or not dead:
            return
        states = {id(p): st for opt in optimizers for p, st in opt.state.items()}
        with torch.no_grad():
            for p, members in self._rows:
                local = [members.index(i) for i in dead if i in members]
                if not local:
                    continue
                rows = torch.tensor(local, device=p.device)
                p.index_fill_(0, rows, 0.0)
                for name in ("exp_avg", "exp_avg_sq"):
                    if name in states.get(id(p), {}):
                        states[id(p)][name].index_fill_(0, rows, 0.0)


def _stacked_state(s: _Stacked) -> dict[str, Tensor]:
    return {**s.params, **s.buffers}


def _load_stacked(s: _Stacked, state: dict[str, Tensor]) -> None:
    with torch.no_grad():
        for name, t in (s.params | s.buffers).items():
            t.copy_(state[name])
