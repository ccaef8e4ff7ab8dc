"""Checkpoints of one training run: models, optimisers, step and RNG states in one file.

Written atomically (a half-written checkpoint never has the real name) and read with
``torch.load(weights_only=True)``, so a checkpoint cannot run code. A resumed run must have the
same config except for :data:`RESUMABLE_KEYS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ganrf.config import TrainConfig
from ganrf.runs import CONFIG_FILE

CHECKPOINT_FILE = "state.pt"
# Keys that may change between a run and its resume; everything else defines the run.
RESUMABLE_KEYS = (
    "schedule.",
    "eval.",
    "device",
    "threads",
    "cuda_graph",
    "data.root",
    "data.workers",
    "data.download",
    "data.device_max_gb",
)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be resumed from."""


def save_checkpoint(path: Path, *, cfg: TrainConfig, step: int, stepper: Any) -> None:
    """Write ``stepper``'s models, optimisers and RNG states at ``step`` into ``path``, atomically."""
    state = {
        "format": 1,
        "step": step,
        "config": cfg.to_json(),
        "g": stepper.g.state_dict(),
        "d": stepper.d.state_dict(),
        "opt_g": stepper.opt_g.state_dict(),
        "opt_d": stepper.opt_d.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if stepper.cuda else [],
    }
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (CHECKPOINT_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path / CHECKPOINT_FILE)  # never a half-written checkpoint under the real name
    (path / CONFIG_FILE).write_text(cfg.to_json())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint directory's state with ``weights_only=True`` (no pickled code runs)."""
    file = Path(path) / CHECKPOINT_FILE
    if not file.exists():
        raise CheckpointError(f"no {CHECKPOINT_FILE} in {path}; pass a checkpoint directory")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"{file} is corrupt, truncated or not a plain-tensor checkpoint ({type(e).__name__}); "
            "resume from an earlier checkpoint"
        ) from None
    if not isinstance(state, dict) or state.get("format") != 1:
        raise CheckpointError(f"{file} is not a gan_rf checkpoint")
    return state


def check_compatible(cfg: TrainConfig, saved_json: str) -> None:
    saved, now = json.loads(saved_json), cfg.to_dict()
    changed = sorted(
        k
        for k in set(saved) | set(now)
        if not k.startswith(RESUMABLE_KEYS) and saved.get(k) != now.get(k)
    )
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed[:4])
        raise CheckpointError(
            f"the checkpoint was made by a different run ({diffs}); resume with its own config"
        )
