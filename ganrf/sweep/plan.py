"""From a sweep's command line to its trials: the preset's base config and search space,
narrowed by the flags, made into validated :class:`~ganrf.sweep.trial.Trial` values, and the
checks that a sweep can start (its data, its storage path), all before Ray starts."""

from __future__ import annotations

import argparse
import os
import socket
from dataclasses import replace

from ganrf import storage
from ganrf.config import ConfigError, TrainConfig, parse_set
from ganrf.sweep.experiments import GRID_KEYS, build_grid, with_family
from ganrf.sweep.flags import SweepError, ints, names
from ganrf.sweep.presets import Preset
from ganrf.sweep.trial import Trial

__all__ = ["resolve", "pack_size", "auto_pack", "check_storage", "check_data"]


def resolve(
    args: argparse.Namespace, presets: dict[str, Preset], dataset: str
) -> tuple[list[Trial], Preset]:
    """The sweep's trials, each made and validated once; raises SweepError/SpaceError/
    ConfigError/DesignError."""
    preset = presets["smoke" if args.smoke_test else args.preset]
    base, space = dict(preset.base), preset.space
    if args.family:  # first: the flags below override the family's recipe
        space, base = with_family(space, base, args.family)
    if preset.base.get("data.dataset", dataset) != "synthetic":
        base["data.root"] = os.path.abspath(args.data_root)
    if args.loss:
        base["loss.kind"] = args.loss
    if args.epochs is not None:
        if args.epochs < 1:
            raise SweepError(f"--epochs must be at least 1, got {args.epochs}")
        base["schedule.epochs"], base["schedule.steps"] = args.epochs, 0
    try:
        settings = parse_set(args.set)
    except ConfigError as e:
        raise SweepError(str(e)) from None
    for key, value in settings.items():
        if key in GRID_KEYS:
            raise SweepError(
                f"--set {key} would be overwritten by every grid point; use {GRID_KEYS[key]}"
            )
        base[key] = value
    if args.experiments:
        chosen = names(args.experiments)
        if space.rfs and not args.rfs and set(chosen) - set(space.experiments):
            # A preset's rfs are its own experiments' (the laptop's onelayer at 1, 3, 5, 13):
            # they stay theirs, and an experiment the flag adds brings its own (same_depth at
            # depth 3 cannot reach rf 3).
            own = {
                e: {**space.defaults[e], "rfs": space.rfs}
                for e in space.experiments
                if e in space.defaults  # the control has no rfs of its own
            }
            space = replace(space, rfs=None, defaults={**space.defaults, **own})
        space = replace(space, experiments=chosen)
    if args.rfs:
        space = replace(space, rfs=ints(args.rfs, "--rfs"))
    if args.depths:
        space = replace(space, depths=ints(args.depths, "--depths"))
    if args.heads:
        space = replace(space, heads=names(args.heads))
    if args.seeds is not None:
        space = replace(space, seeds=args.seeds)
    if args.norm:
        space = replace(space, norm=args.norm)
    if args.dropout is not None:
        space = replace(space, dropout=args.dropout)
    if args.trial_timeout_s is not None and args.trial_timeout_s <= 0:
        raise SweepError(f"--trial-timeout-s must be positive, got {args.trial_timeout_s}")
    for flag in ("max_concurrent", "cpus_per_trial", "max_failures"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "max_failures" else 1):
            raise SweepError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.gpus_per_trial is not None and not 0 <= args.gpus_per_trial <= 8:
        raise SweepError(f"--gpus-per-trial must be between 0 and 8, got {args.gpus_per_trial}")
    # Every trial's config is made and checked here, before Ray starts, carrying its grid
    # point's solved design: the trainable rebuilds the config from its flat keys and takes the
    # design as the value it is (Trial.from_flat), so no rf spec is parsed on the way.
    trials = [Trial.make(base, p, timeout_s=args.trial_timeout_s) for p in build_grid(space)]
    named = [t.name for t in trials]
    twice = sorted({n for n in named if named.count(n) > 1})
    if twice:  # a trial's name is its folder (a packed member's inside its pack's): never shared
        raise SweepError(f"two trials would share the name {twice[0]}; report this as a bug")
    return trials, preset


def pack_size(text: str | None) -> int | None:
    """``--pack``: a positive number, or None for auto."""
    if text in (None, "auto"):
        return None
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise SweepError(f"--pack takes a positive number of members or auto, got {text!r}")
    return k


def auto_pack(trials: list[Trial], gpus: bool) -> int:
    """``--pack auto``: as many members as fit one GPU when there are GPUs, else 1."""
    if not gpus:
        return 1
    from ganrf.sweep.resources import auto_pack_size, gpu_memory_bytes

    return auto_pack_size(trials, gpu_memory_bytes())


def probe_address(address: str, timeout_s: float = 5.0) -> str | None:
    """Why nothing answers at a ``host:port`` address (refused, no such host, no answer in
    ``timeout_s``), or None where a TCP connection opens or the address is not ``host:port``
    (``auto``, ``ray://...``: Ray finds or reaches those itself)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or "://" in address or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except TimeoutError:
        return f"nothing answered at {address} within {timeout_s:g} s"
    except OSError as e:
        return f"nothing listens at {address} ({e.strerror or e})"


def check_address(address: str | None) -> None:
    """Refuse, in one sentence, a ``--address`` where nothing answers (before any folder is
    made: Ray would retry it for minutes).

    Raises:
        SweepError: nothing listens at ``address``.
    """
    unreachable = probe_address(address) if address else None
    if unreachable:
        raise SweepError(
            f"cannot join a Ray cluster at {address}: {unreachable}; start one first "
            "(`ray get-auth-token --generate`, then `RAY_AUTH_MODE=token ray start --head`), "
            "or drop --address to run on this machine alone"
        )


def check_storage(root: str) -> None:
    """Fail now, not after the first trial, when the storage path cannot be written."""
    probe = f".ganrf-write-test-{os.getpid()}"
    try:
        fs, inner = storage.filesystem(root)
        fs.create_dir(inner, recursive=True)
        with fs.open_output_stream(f"{inner}/{probe}") as f:
            f.write(b"")
        fs.delete_file(f"{inner}/{probe}")
    except Exception as e:  # OSError, pyarrow's ArrowInvalid / ArrowException, credentials
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0][:120]
        raise SweepError(
            f"cannot write to storage path {root} ({reason}); choose another --storage-path"
        ) from None


# Datasets that read nothing under --data-root: the synthetic set, the shipped photographs.
NO_DATA_ROOT = ("synthetic", "photo")


def check_data(cfg: TrainConfig) -> None:
    """Fail now, not inside every trial, when the dataset cannot be had (data.py's own rules)."""
    from ganrf import data  # torch: only once the space is valid

    try:
        data.check_data(cfg.data, test_split=cfg.eval.metrics)
    except data.DataError as e:
        if cfg.data.dataset in NO_DATA_ROOT:  # made or shipped: no folder to point at
            raise
        raise data.DataError(
            f"{e} (--data-root {cfg.data.root}: pass --data-root DIR where the data is)"
        ) from None
