"""One training step of a pack (K member GANs; K = 1 for a plain trial), on any device.

On CUDA the step runs in bf16 autocast, Adam is capturable, and the whole G+D step of every
member is captured once in a CUDA graph and replayed (eager if capture fails); noise is drawn
outside the graph from each member's own generator and copied in with the real batches. Running
loss sums and the first non-finite step of each member stay on the device, so nothing syncs the
host per step. On CPU: fp32 (bf16 autocast is several times slower there).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from ganrf.config import TrainConfig
from ganrf.training import losses
from ganrf.training.pack import Pack

log = logging.getLogger(__name__)


class Stepper:
    """Runs G+D steps of ``pack`` with its shared hyper-parameters ``cfg``.

    ``first_bad[k]`` holds the first step whose losses were not finite for member k (-1 while
    they are); ``alive[k]`` is False once member k is frozen. Reading them is the only sync.
    """

    def __init__(self, pack: Pack, cfg: TrainConfig, device: torch.device) -> None:
        self.pack, self.cfg, self.device, self.k = pack, cfg, device, pack.k
        self.cuda = device.type == "cuda"
        self.graphed = self.cuda and cfg.cuda_graph
        betas = (cfg.optim.beta1, cfg.optim.beta2)
        # Capturable Adam keeps its step count on the GPU so a CUDA graph can replay it.
        kw: dict[str, Any] = (
            {"capturable": True} if self.graphed else ({"fused": True} if self.cuda else {})
        )
        self.opt_g = torch.optim.Adam(pack.g_parameters(), lr=cfg.optim.lr_g, betas=betas, **kw)
        self.opt_d = torch.optim.Adam(pack.d_parameters(), lr=cfg.optim.lr_d, betas=betas, **kw)
        self.d_loss, self.g_loss = losses.get(cfg.loss.kind)
        self.gp = cfg.loss.gp_weight if cfg.loss.kind == "wgan-gp" else 0.0
        self.batch = cfg.schedule.batch_size
        self.sum_d = torch.zeros(self.k, device=device)
        self.sum_g = torch.zeros(self.k, device=device)
        self.first_bad = torch.full((self.k,), -1, dtype=torch.long, device=device)
        self.alive = torch.ones(self.k, dtype=torch.bool, device=device)
        self.step_t = torch.zeros((), dtype=torch.long, device=device)
        # Each member's own noise stream, seeded as it would be alone.
        self.noise_rngs = [
            torch.Generator(device=device).manual_seed(c.seed + 1) for c in pack.configs
        ]
        self.count = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static: list[Tensor] = []
        self.calls = 0

    def _autocast(self):
        if self.cuda:  # cache off: required inside CUDA graph capture
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return nullcontext()

    def draw_noise(self) -> Tensor:
        """(d_steps, K, B, noise_dim): one G input per D step for every member."""
        shape = (self.cfg.optim.d_steps, self.batch, self.cfg.g.noise_dim)
        return torch.stack(
            [torch.randn(shape, generator=g, device=self.device) for g in self.noise_rngs], 1
        )

    def _masked_sum(self, per_member: Tensor) -> Tensor:
        # A frozen member's loss is left out, so its weights get no gradient.
        return torch.where(self.alive, per_member, torch.zeros_like(per_member)).sum()

    def _step(self, reals: list[Tensor], noise: Tensor) -> None:
        pack = self.pack
        for i, real in enumerate(reals):  # real: (K, B, C, H, W)
            keep = i == len(reals) - 1  # only the last D step's fakes feed the G update
            with self._autocast(), torch.set_grad_enabled(keep):
                # One G forward per D step; the G update reuses the last one's fakes (as the
                # notes' TF code and DCGAN's reference do), which saves a G forward per step.
                fake = pack.generate(noise[i])
            with self._autocast():
                loss_d = pack.per_member(
                    self.d_loss, pack.discriminate(real), pack.discriminate(fake.detach())
                )
                if self.gp:  # packs of one only (ganrf.training.pack.packable)
                    gp = losses.gradient_penalty(pack.d, real[0], fake[0].detach())
                    loss_d = loss_d + self.gp * gp.float()
            self.opt_d.zero_grad(set_to_none=False)
            self._masked_sum(loss_d).backward()
            self.opt_d.step()
        pack.d_requires_grad(False)  # the G step needs grads through D, not of D
        with self._autocast():
            loss_g = pack.per_member(self.g_loss, pack.discriminate(fake))
        self.opt_g.zero_grad(set_to_none=False)
        self._masked_sum(loss_g).backward()
        self.opt_g.step()
        pack.d_requires_grad(True)
        ld, lg = loss_d.detach(), loss_g.detach()
        self.sum_d += ld
        self.sum_g += lg
        bad = ~(torch.isfinite(ld) & torch.isfinite(lg)) & (self.first_bad < 0) & self.alive
        self.first_bad.copy_(torch.where(bad, self.step_t, self.first_bad))
        self.step_t += 1

    def step(self, reals: list[Tensor]) -> None:
        noise = self.draw_noise()
        self.count += 1
        self.calls += 1
        if not self.graphed:
            self._step(reals, noise)
            return
        if self.graph is None and self.calls <= 3:
            self._warm_step(reals, noise)  # warm up on a side stream before capture
            return
        if self.graph is None:
            self._capture(reals, noise)
            if self.graph is None:  # capture failed: eager from now on
                self._step(reals, noise)
                return
        for static, value in zip(self.static, [*reals, noise]):
            static.copy_(value, non_blocking=True)
        self.graph.replay()

    def _warm_step(self, reals: list[Tensor], noise: Tensor) -> None:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            self._step(reals, noise)
        torch.cuda.current_stream().wait_stream(s)

    def _capture(self, reals: list[Tensor], noise: Tensor) -> None:
        self.static = [x.clone() for x in [*reals, noise]]
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self._step(self.static[:-1], self.static[-1])
        except Exception as e:  # an op that cannot be captured: keep training, eagerly
            log.warning("CUDA graph capture failed (%s); continuing without it", e)
            self.graphed = False
            torch.cuda.synchronize()
            return
        self.graph = graph
        # Capture records the step without running it; replay once to run this step.
        graph.replay()

    # -- reading back (each a sync) -----------------------------------------------------------
    def bad_steps(self) -> list[int | None]:
        """Per member, the first step whose losses were not finite (None while all are)."""
        return [None if v < 0 else int(v) for v in self.first_bad.tolist()]

    def take_means(self) -> list[tuple[float, float]]:
        n = max(self.count, 1)
        d, g = (self.sum_d / n).tolist(), (self.sum_g / n).tolist()
        self.sum_d.zero_()
        self.sum_g.zero_()
        self.count = 0
        return list(zip(d, g))

    def freeze(self, members: list[int]) -> None:
        """Stop training ``members`` (diverged): masked out of every loss from now on."""
        if members:
            idx = torch.tensor(members, device=self.device)
            self.alive.index_fill_(0, idx, False)
            self.pack.zero_members(members, [self.opt_g, self.opt_d])

    # -- checkpoint state ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "noise_rngs": [g.get_state() for g in self.noise_rngs],
            "first_bad": self.first_bad.cpu(),
            "alive": self.alive.cpu(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.cuda else [],
        }

    def load_state_dict(self, state: dict[str, Any], step: int) -> None:
        self.pack.load_state_dict(state["pack"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for g, s in zip(self.noise_rngs, state["noise_rngs"]):
            g.set_state(s)
        self.first_bad.copy_(state["first_bad"])
        self.alive.copy_(state["alive"])
        torch.set_rng_state(state["rng_cpu"])
        if self.cuda and state["rng_cuda"]:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        self.step_t.fill_(step)
