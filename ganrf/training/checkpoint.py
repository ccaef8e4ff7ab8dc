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
from ganrf.storage import atomic_path

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


FORMAT = 2  # 2: a pack's state (a plain trial is a pack of one)


def save_checkpoint(
    path: Path, *, configs: list[TrainConfig], step: int, state: dict[str, Any]
) -> None:
    """Write a pack's ``state`` at ``step`` into the folder ``path``, atomically, with the
    members' configs (``config.json`` for a pack of one, ``configs.json`` for more)."""
    full = {"format": FORMAT, "step": step, "configs": [c.to_json() for c in configs], **state}
    path.mkdir(parents=True, exist_ok=True)
    with atomic_path(path / CHECKPOINT_FILE) as tmp:  # never a half-written checkpoint
        torch.save(full, tmp)
    if len(configs) == 1:
        name, text = CONFIG_FILE, configs[0].to_json()
    else:
        name, text = "configs.json", json.dumps([c.to_dict() for c in configs], indent=2)
    with atomic_path(path / name) as tmp:
        tmp.write_text(text)


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
    if not isinstance(state, dict) or "format" not in state:
        raise CheckpointError(f"{file} is not a gan_rf checkpoint")
    if state["format"] != FORMAT:
        raise CheckpointError(
            f"{file} was written by another version of gan_rf (format {state['format']}, this "
            f"one reads {FORMAT}); start the run again"
        )
    return state


def check_compatible(configs: list[TrainConfig], saved: list[str]) -> None:
    """Refuse to resume a checkpoint made by a different run (or pack)."""
    if len(saved) != len(configs):
        raise CheckpointError(
            f"the checkpoint holds {len(saved)} members, this run has {len(configs)}; "
            "resume with its own configs"
        )
    for cfg, saved_json in zip(configs, saved):
        _check_one(cfg, saved_json)


def _check_one(cfg: TrainConfig, saved_json: str) -> None:
    # A key the checkpoint's config lacks was added to the config since: the run that wrote it
    # behaved as its default (data.photo, eval.features, ... keep the old behaviour by default).
    saved = {**TrainConfig().to_dict(), **json.loads(saved_json)}
    now = cfg.to_dict()
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
