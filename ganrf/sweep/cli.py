"""The command line every sweep script shares: presets, the search space, validation, and the
hand-off to Ray Tune (``ganrf.sweep.tune``, imported only once the space is valid).

A sweep script defines ``PRESETS`` (base training config and default search space per preset)
and calls :func:`main`. Everything is validated before Ray starts: unknown names, infeasible
designs, empty grids, bad sizes, an unwritable storage path, an existing experiment without
``--resume``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ganrf import runs
from ganrf.config import LOSSES, ConfigError, TrainConfig
from ganrf.design.designs import FAMILIES, NORMS, DesignError, param_count
from ganrf.sweep.experiments import EXPERIMENTS, GRID_KEYS, SpaceError, build_grid, with_family
from ganrf.sweep.flags import (
    SweepError,
    check_resume_flags,
    defining_flags,
    experiment_name,
    given_flags,
    ints,
)
from ganrf.sweep.presets import Preset
from ganrf.sweep.trial import Trial, make_packs, pack_name
from ganrf.tools.train import parse_set


def build_parser(
    prog: str, doc: str, presets: dict[str, Preset], default: str
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--preset",
        choices=sorted(presets),
        default=None,  # None: the script's default (so --resume can tell it was given)
        help=f"default {default}; " + "; ".join(f"{k}: {v.about}" for k, v in presets.items()),
    )
    p.add_argument("--smoke-test", action="store_true", help="same as --preset smoke")
    p.add_argument("--experiments", help=f"comma-separated, from {', '.join(EXPERIMENTS)}")
    p.add_argument("--rfs", help="target rfs, e.g. 1,3,5,7")
    p.add_argument("--depths", help="depths, e.g. 1,2,3,4")
    p.add_argument("--heads", help="image, patch or image,patch")
    p.add_argument("--norm", choices=NORMS, help="discriminator normalisation for every design")
    p.add_argument(
        "--family",
        choices=FAMILIES,
        help="how designs reach an rf: stride1 stacks (default), stride2 (the notes' "
        "downsampling), dilated, or resnet (SNGAN-style residual blocks, with the residual G, "
        "hinge loss, spectral norm and no dropout unless --loss/--norm/--dropout say otherwise)",
    )
    p.add_argument(
        "--dropout",
        type=float,
        help="discriminator dropout (default 0, as the notes' onelayer_multi_rfs; their first "
        "discriminator, ganrf train's default, has 0.3)",
    )
    p.add_argument("--seeds", type=int, help="seeds per grid point")
    p.add_argument("--loss", choices=LOSSES, help="GAN loss for every trial")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--data-root", default="data", help="dataset folder (MNIST downloads here)")
    p.add_argument(
        "--storage-path", default="runs", help="where experiments are kept (default runs/)"
    )
    p.add_argument(
        "--name",
        type=experiment_name,
        help="experiment name (default: <dataset>_rf-<preset>-<time>)",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the interrupted experiment --name"
    )
    p.add_argument(
        "--address", help="join an existing Ray cluster (e.g. auto) instead of starting one"
    )
    p.add_argument("--max-concurrent", type=int, help="trials running at once")
    p.add_argument(
        "--pack",
        default=None,
        help="member GANs trained as one fused computation per trial: a number, or auto "
        "(default: on GPUs as many as fit one GPU, on CPUs 1); members that cannot share a "
        "pack (dropout, WGAN-GP) train alone; spectral norm packs",
    )
    p.add_argument(
        "--cpus-per-trial",
        type=int,
        help="CPU threads per trial (default: on CPU-only machines every core of a node, so "
        "trials run one after another at full speed; with GPUs 1)",
    )
    p.add_argument(
        "--gpus-per-trial",
        type=float,
        help="GPU share per trial (default: sized to the model, at least 1/8)",
    )
    p.add_argument("--max-failures", type=int, default=2, help="retries of a trial that raises")
    p.add_argument(
        "--trial-timeout-s",
        type=float,
        help="wall-time budget per trial attempt; a trial over it ends as timed_out",
    )
    p.add_argument("--dashboard", action="store_true", help="start Ray's dashboard on 127.0.0.1")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training config key for every trial, e.g. --set optim.lr_d=2e-4",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print the grid and exit before Ray starts"
    )
    return p


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
    except ValueError as e:
        raise SweepError(str(e)) from None
    for key, value in settings.items():
        if key in GRID_KEYS:
            raise SweepError(
                f"--set {key} would be overwritten by every grid point; use {GRID_KEYS[key]}"
            )
        base[key] = value
    if args.experiments:
        space = replace(
            space, experiments=tuple(e.strip() for e in args.experiments.split(",") if e.strip())
        )
    if args.rfs:
        space = replace(space, rfs=ints(args.rfs, "--rfs"))
    if args.depths:
        space = replace(space, depths=ints(args.depths, "--depths"))
    if args.heads:
        space = replace(space, heads=tuple(h.strip() for h in args.heads.split(",") if h.strip()))
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
    # Every trial's config is made and checked here, before Ray starts, and never again.
    trials = [Trial.make(base, p, timeout_s=args.trial_timeout_s) for p in build_grid(space)]
    names = [t.name for t in trials]
    twice = sorted({n for n in names if names.count(n) > 1})
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


def print_trials(packs: list[list[Trial]], how: str) -> None:
    """``--dry-run``: one line per trial (what it is and the keys that vary) under its pack,
    then the config every trial shares, on stderr."""
    trials = [t for p in packs for t in p]
    flats = [t.config.to_dict() for t in trials]
    shared = {k: v for k, v in flats[0].items() if all(f[k] == v for f in flats)}
    flat_of = {id(t): f for t, f in zip(trials, flats)}
    for n, pack in enumerate(packs, 1):
        if len(pack) > 1:
            print(f"pack {n}: {pack_name(pack)} ({len(pack)} members)")
        for t in pack:
            d = t.design
            varying = " ".join(f"{k}={v}" for k, v in flat_of[id(t)].items() if k not in shared)
            indent = "  " if len(pack) > 1 else ""
            print(
                f"{indent}{t.name}  experiment={','.join(t.experiments)} rf={d.rf} "
                f"decision_rf={d.decision_rf} params_d={param_count(d)}  {varying}"
            )
    print(f"{len(trials)} trials in {len(packs)} packed trials ({how})", file=sys.stderr)
    print("every trial shares:", file=sys.stderr)
    for k, v in shared.items():
        instead = UNUSED_WHEN.get(k)
        unused = instead and shared.get(instead, 0) != 0
        print(f"  {k}={v}" + (f"  (not used: {instead} is set)" if unused else ""), file=sys.stderr)


# Schedule keys that a set (non-zero) key replaces, so --dry-run does not show both as if in force
UNUSED_WHEN = {
    "schedule.epochs": "schedule.steps",
    "schedule.eval_every": "schedule.eval_every_steps",
}


def _check_storage(root: str) -> None:
    """Fail now, not after the first trial, when the storage path cannot be written."""
    probe = f".ganrf-write-test-{os.getpid()}"
    try:
        fs, inner = runs.filesystem(root)
        fs.create_dir(inner, recursive=True)
        with fs.open_output_stream(f"{inner}/{probe}") as f:
            f.write(b"")
        fs.delete_file(f"{inner}/{probe}")
    except Exception as e:  # OSError, pyarrow's ArrowInvalid / ArrowException, credentials
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0][:120]
        raise SweepError(
            f"cannot write to storage path {root} ({reason}); choose another --storage-path"
        ) from None


def _check_data(cfg: TrainConfig) -> None:
    """Fail now, not inside every trial, when the dataset cannot be had (data.py's own rules)."""
    from ganrf.data import DataError, check_data

    try:
        check_data(cfg.data, test_split=cfg.eval.metrics)
    except DataError as e:
        raise DataError(
            f"{e} (--data-root {cfg.data.root}: pass --data-root DIR where the data is)"
        ) from None


def main(
    argv: list[str] | None,
    *,
    prog: str,
    doc: str,
    dataset: str,
    presets: dict[str, Preset],
    default: str = "laptop",
    publish: Publish | None = None,
) -> int:
    """Run the sweep script's command line ``argv``; ``publish`` writes results.csv and the
    page when the sweep ends (the scripts pass :func:`analysis.publish.publish`)."""
    parser = build_parser(prog, doc, presets, default)
    args = parser.parse_args(argv)
    if args.resume:
        return _resume(args, prog, given_flags(parser, argv), default, publish)
    args.preset = args.preset or default
    try:
        trials, _ = resolve(args, presets, dataset)
        storage = runs.storage_root(args.storage_path)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = args.name or f"{dataset}_rf-{'smoke' if args.smoke_test else args.preset}-{stamp}"
        k = pack_size(args.pack)
        if args.dry_run:
            import torch

            size = k or auto_pack(trials, torch.cuda.is_available())
            how = f"--pack {k}" if k else f"--pack auto: {size} on this machine"
            print_trials(make_packs(trials, size), how)
            return 0
        flags = defining_flags(args, default)
        _check_data(trials[0].config)  # first: a sweep that cannot start leaves no folder
        _check_storage(storage)
    except (SweepError, SpaceError, ConfigError, DesignError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # DataError and friends
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2

    from ganrf.sweep import tune as gtune  # Ray starts only now, with a valid space

    exp_path = f"{storage}/{name}"
    if gtune.experiment_exists(exp_path):
        print(
            f"{prog}: error: experiment {name!r} already exists in {storage}; continue it with "
            f"--resume --name {name}, or choose another --name",
            file=sys.stderr,
        )
        return 2
    if not _ray_started(args, prog):
        return 2
    packs = make_packs(trials, k or auto_pack(trials, gtune.cluster_has_gpus()))
    print(
        f"{len(trials)} trials in {len(packs)} packed trials; results in {exp_path}",
        file=sys.stderr,
    )
    if publish is not None:
        print(
            f"results.csv and report.html there are refreshed while the sweep runs "
            f"(at most every {gtune.publish_every_s():g} s)",
            file=sys.stderr,
        )
    gtune.run_sweep(
        packs=packs,
        storage_path=storage,
        name=name,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures,
        flags=flags,
        publish=publish,
    )
    return finish(exp_path, prog, publish)


def _ray_started(args: argparse.Namespace, prog: str) -> bool:
    """Join ``--address`` or start the embedded Ray; False after one sentence on stderr."""
    from ganrf.sweep import tune as gtune

    try:
        gtune.init_ray(args.address, args.dashboard)
    except gtune.RayJoinError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return False
    return True


def _resume(
    args: argparse.Namespace, prog: str, given: set[str], default: str, publish: Publish | None
) -> int:
    """Continue an interrupted sweep exactly as it was started (``Tuner.restore``)."""
    if not args.name:
        print(f"{prog}: error: --resume needs --name, the experiment to continue", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"{prog}: error: --dry-run does not apply to --resume; drop it", file=sys.stderr)
        return 2
    storage = runs.storage_root(args.storage_path)
    exp_path = f"{storage}/{args.name}"

    from ganrf.sweep import tune as gtune

    if not gtune.experiment_exists(exp_path):
        print(
            f"{prog}: error: no experiment {args.name!r} to resume in {storage}; "
            f"`ganrf ls {args.storage_path}` lists the ones there",
            file=sys.stderr,
        )
        return 2
    try:
        problem = check_resume_flags(args, given, gtune.read_sweep(exp_path).get("flags"), default)
    except (gtune.ResumeError, SweepError) as e:
        problem = str(e)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    if not _ray_started(args, prog):
        return 2
    print(f"resuming {exp_path}; results in {exp_path}", file=sys.stderr)
    try:
        gtune.resume_sweep(exp_path)
    except gtune.ResumeError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return finish(exp_path, prog, publish)


# Trial statuses that are results: a diverged trial ended by the training's own rule, and its
# page shows it. A sweep none of whose trials reached one of these failed (exit status 1).
RESULT_STATUSES = ("finished", "diverged")
SHOWN_LOGS = 3  # error.txt paths printed when trials failed


# What a sweep script hands main() to write results.csv and the page at the end
# (analysis.publish.publish): exp_path -> (local experiment folder, csv path, page path).
Publish = Callable[[str], "tuple[Path, str, str]"]


def finish(exp_path: str, prog: str = "sweep", publish: Publish | None = None) -> int:
    """Publish the results (``publish``: results.csv and the page), then print how many trials
    finished, diverged, errored, timed out or are unfinished.

    Returns:
        0 when at least one trial finished (or diverged), else 1, with one sentence on stderr
        saying how the trials ended and where their error logs are.
    """
    if publish is not None:
        local, csv, page = publish(exp_path)
        print(f"results: {csv}\nreport:  {page}")
    elif runs.is_uri(exp_path):
        local = runs.fetch_experiment(exp_path, tempfile.mkdtemp(prefix="ganrf-results-"))
    else:
        local = Path(exp_path)
    folders = [runs.read_trial(t) for t in runs.trial_dirs(local)]
    statuses = {f.path.relative_to(local).as_posix(): f.status for f in folders}
    counts = Counter(statuses.values())
    names = {"running": "unfinished", "timed_out": "timed out"}
    summary = ", ".join(
        f"{counts[s]} {names.get(s, s)}" for s in runs.TRIAL_STATUSES if counts.get(s)
    )
    logs = []  # a pack's members share its error.txt: list each file once
    for f in folders:
        tune_dir = f.pack_dir or f.path
        log_file = f"{exp_path}/{tune_dir.relative_to(local).as_posix()}/{runs.ERROR_FILE}"
        failed = f.status not in RESULT_STATUSES and (tune_dir / runs.ERROR_FILE).exists()
        if failed and log_file not in logs:
            logs.append(log_file)
    where = ""
    if logs:
        more = f" and {len(logs) - SHOWN_LOGS} more" if len(logs) > SHOWN_LOGS else ""
        where = f"; their logs: {', '.join(logs[:SHOWN_LOGS])}{more}"
    print(f"trials:  {summary or 'none'}{where}")
    if any(s in RESULT_STATUSES for s in statuses.values()):
        return 0
    unfinished = counts.get("running", 0)
    name = exp_path.rstrip("/").rsplit("/", 1)[-1]
    hint = f"; continue it with --resume --name {name}" if unfinished else ""
    print(f"{prog}: error: no trial finished ({summary}){where}{hint}", file=sys.stderr)
    return 1
