"""ganrf train: one GAN from the command line, with a progress bar.

examples:
ganrf train --layers conv5s2,conv5s2 --epochs 5 --out runs/notes13
ganrf train --dataset synthetic --steps 50 --set d.head=patch --set loss.kind=hinge
ganrf train --resume runs/notes13/checkpoint --out runs/notes13 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from ganrf.config import DATASETS, LOSSES, ConfigError, TrainConfig, add_set_flag, parse_set
from ganrf.design.designs import HEADS, NORMS

# CLI flag -> config key
FLAGS = {
    "dataset": "data.dataset",
    "data_root": "data.root",
    "layers": "d.layers",
    "head": "d.head",
    "norm": "d.norm",
    "loss": "loss.kind",
    "epochs": "schedule.epochs",
    "steps": "schedule.steps",
    "batch_size": "schedule.batch_size",
    "seed": "seed",
    "device": "device",
}


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train one GAN and write samples and checkpoints",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", choices=DATASETS, help="default mnist")
    p.add_argument("--data-root", help="where the dataset is (default data; MNIST downloads there)")
    p.add_argument(
        "--layers", help='discriminator layers (default "conv5s2,conv5s2", the notes\' D)'
    )
    p.add_argument("--head", choices=HEADS, help="discriminator head (default image: dense)")
    p.add_argument("--norm", choices=NORMS, help="discriminator normalisation (default none)")
    p.add_argument("--loss", choices=LOSSES, help="GAN loss (default ns, non-saturating)")
    p.add_argument("--epochs", type=int, help="passes over the data (default 50, the notes')")
    p.add_argument("--steps", type=int, help="stop after this many steps instead of epochs")
    p.add_argument("--batch-size", type=int, help="default 256 (the notes')")
    p.add_argument("--seed", type=int, help="default 0; a seed reruns exactly on one machine")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--config", type=Path, help="a config.json (flat keys) to start from")
    add_set_flag(p)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/train"),
        help="trial folder: config.json, samples/, checkpoint/ (default runs/train)",
    )
    p.add_argument("--resume", type=Path, help="checkpoint folder to continue from")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)


def _read_config(path: Path) -> dict:
    """``--config``: a JSON object of flat keys, or one sentence saying what is wrong."""
    hint = "pass a config.json of flat keys (a trial folder's, or `ganrf train --dry-run`'s output)"
    try:
        raw = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read --config {path} ({e.strerror}); {hint}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {path} is not JSON ({e}); {hint}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"--config {path} holds a {type(raw).__name__}, not an object; {hint}")
    return raw


def resolve(args: argparse.Namespace) -> TrainConfig:
    for flag in ("steps", "epochs", "batch_size"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            name = "--" + flag.replace("_", "-")
            raise ConfigError(f"{name} must be at least 1, got {value}")
    raw: dict = _read_config(args.config) if args.config else {}
    for flag, key in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            raw[key] = value
    raw.update(parse_set(args.set))
    cfg = TrainConfig.from_dict(raw)
    design, size = cfg.design(), cfg.data.image_size
    if design.rf > size:  # every family, as ganrf rf and ganrf designs refuse it
        raise ConfigError(
            f"rf {design.rf} of {design.spec_string} is larger than the {size}px input; the "
            f"largest useful rf is {size} (use smaller kernels or fewer layers, or a larger "
            "data.image_size)"
        )
    return cfg


def _check_writable(out: Path) -> None:
    """Make ``--out`` now, the last check before training, and write a probe file in it, or
    say in one sentence why not (/proc, /sys, a read-only folder)."""
    probe = out / f".ganrf-write-test-{os.getpid()}"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise ConfigError(f"cannot write --out {out}: it is a file; choose a folder") from None
    except OSError as e:
        raise ConfigError(
            f"cannot write --out {out} ({e.strerror}); choose another folder"
        ) from None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ganrf.training.loop import train

    cfg = resolve(args)
    if args.dry_run:
        print(cfg.to_json())
        return 0
    from ganrf.data import check_data
    from ganrf.training.checkpoint import CHECKPOINT_FILE, CheckpointError

    if args.resume is not None and not (args.resume / CHECKPOINT_FILE).is_file():
        raise CheckpointError(  # before anything is written under --out
            f"no {CHECKPOINT_FILE} in {args.resume}; pass a checkpoint directory (the trial "
            "folder's checkpoint/)"
        )
    check_data(cfg.data, test_split=cfg.eval.metrics)  # before anything is written under --out
    out: Path = args.out
    _check_writable(out)
    bars: list = []  # made at the first step, so set-up errors print alone

    def progress(step: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, initial=step - 1, unit="step", dynamic_ncols=True))
        bars[0].update(1)

    def report(metrics: dict, checkpoint: str | None) -> None:
        shown = {
            k.split("/")[-1]: round(v, 3)
            for k, v in metrics.items()
            if k.startswith(("loss/", "metric/fid")) and isinstance(v, float)
        }
        if bars:
            bars[0].set_postfix(shown)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        if checkpoint is not None:  # keep the latest, replaced whole
            tmp = out / "checkpoint.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(checkpoint, tmp)
            shutil.rmtree(out / "checkpoint", ignore_errors=True)
            tmp.rename(out / "checkpoint")

    try:
        final = train(cfg, report, resume_from=args.resume, out_dir=out, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(
        f"{final['status']} at step {final['progress/step']}; trial folder {out}", file=sys.stderr
    )
    return 0 if final["status"] == "finished" else 1
