"""The command line every sweep script shares: presets, the search space, validation, and the
hand-off to Ray Tune (``ganrf.sweep.raytune.tune``, imported only once the space is valid).

A sweep script defines ``PRESETS`` (base training config and default search space per preset)
and calls :func:`main`. Everything is validated before Ray starts (:mod:`ganrf.sweep.plan`):
unknown names, infeasible designs, empty grids, bad sizes, an unwritable storage path, an
existing experiment without ``--resume``. ``--dry-run`` prints the grid
(:mod:`ganrf.sweep.dryrun`); a sweep ends in :func:`ganrf.sweep.results.finish`.
"""

from __future__ import annotations

import argparse
import sys
import time

from ganrf.config import LOSSES, ConfigError, add_set_flag
from ganrf.design.designs import FAMILIES, NORMS, DesignError
from ganrf.storage import storage_root
from ganrf.sweep.dryrun import print_trials
from ganrf.sweep.estimate import TIMED_STEPS, busy, estimate, print_estimate
from ganrf.sweep.experiments import EXPERIMENTS, SpaceError
from ganrf.sweep.flags import (
    SweepError,
    check_resume_flags,
    defining_flags,
    experiment_name,
    given_flags,
)
from ganrf.sweep.plan import (
    auto_pack,
    check_address,
    check_data,
    check_storage,
    pack_size,
    resolve,
)
from ganrf.sweep.presets import DATA_LAYOUT, Preset, preset_dataset, preset_defaults
from ganrf.sweep.raytune import trackers
from ganrf.sweep.results import Publish, finish
from ganrf.sweep.trial import Trial, make_packs
from ganrf.tools.parser import OneLineParser

__all__ = ["build_parser", "main", "resolve", "finish"]


def build_parser(
    prog: str, doc: str, presets: dict[str, Preset], default: str
) -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=prog,
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="While it runs, a sweep prints one line per trial change (started, reported, "
        "finished, errored)\nand Tune's full table at the end; `kill -USR1 PID` (its first line "
        "gives the PID) prints the table at once.",
    )
    _add_space_flags(p, presets, default)
    _add_run_flags(p, presets)
    _add_dry_run_flags(p)
    return p


def _add_space_flags(p: argparse.ArgumentParser, presets: dict[str, Preset], default: str) -> None:
    """The flags that say which trials the sweep runs: preset, experiments, the grid's axes and
    what every trial shares (norm, family, loss, schedule, ``--set``)."""
    p.add_argument(
        "--preset",
        choices=sorted(presets),
        default=None,  # None: the script's default (so --resume can tell it was given)
        help=f"default {default}; " + "; ".join(f"{k}: {v.about}" for k, v in presets.items()),
    )
    p.add_argument("--smoke-test", action="store_true", help="same as --preset smoke")
    p.add_argument(
        "--experiments",
        help=f"comma-separated, from {', '.join(EXPERIMENTS)} (default: "
        f"{preset_defaults(presets, 'experiments')})",
    )
    p.add_argument(
        "--rfs",
        help=f"target rfs, e.g. 1,3,5,7 (default: {preset_defaults(presets, 'rfs')}; a "
        "preset's rfs are for its own experiments, others that --experiments adds bring "
        "theirs)",
    )
    p.add_argument(
        "--depths",
        help="depths, e.g. 1,2,3,4 (default: each experiment's own, ganrf.sweep.experiments)",
    )
    p.add_argument(
        "--heads", help="image, patch or image,patch (default: image; the heads experiment both)"
    )
    p.add_argument(
        "--norm",
        choices=NORMS,
        help="discriminator normalisation for every design (default: none; spectral for "
        "--family resnet)",
    )
    p.add_argument(
        "--family",
        choices=FAMILIES,
        help="how designs reach an rf (default: each preset's own: "
        + "; ".join(f"{k} {v.space.family}" for k, v in presets.items())
        + "): stride1 stacks, stride2 (the notes' downsampling), dilated, or resnet (SNGAN-style residual blocks, with the residual G, "
        "hinge loss, spectral norm and no dropout unless --loss/--norm/--dropout say otherwise)",
    )
    p.add_argument(
        "--dropout",
        type=float,
        help="discriminator dropout (default 0, as ganrf train's and the notes' "
        "onelayer_multi_rfs; their first discriminator had 0.3)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        help=f"seeds per grid point (default: {preset_defaults(presets, 'seeds')})",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        help="GAN loss for every trial (default: ns, the notes'; hinge for --family resnet)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="train every trial for this many passes over the data instead of the preset's "
        f"schedule ({preset_defaults(presets, 'schedule')})",
    )
    add_set_flag(
        p,
        help="any training config key for every trial, e.g. --set optim.lr_d=2e-4 "
        "(repeatable); the keys, with their defaults, are listed by `ganrf train --dry-run` "
        "and explained in ganrf/config.py",
    )


def _add_run_flags(p: argparse.ArgumentParser, presets: dict[str, Preset]) -> None:
    """The flags that say where and how the sweep runs: data, storage, name, resume, Ray's
    cluster and resources, retries, the dashboard and a tracker."""
    p.add_argument(
        "--data-root",
        default="data",
        metavar="DIR",
        help=f"dataset folder, default ./data: {DATA_LAYOUT[preset_dataset(presets)]}",
    )
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
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="trials running at once (default: as many as the resources allow)",
    )
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
    p.add_argument(
        "--max-failures", type=int, default=2, help="retries of a trial that raises (default 2)"
    )
    p.add_argument(
        "--trial-timeout-s",
        type=float,
        help="wall-time budget per trial attempt; a trial over it ends as timed_out (default: "
        "none)",
    )
    p.add_argument("--dashboard", action="store_true", help="start Ray's dashboard on 127.0.0.1")
    p.add_argument(
        "--tracker",
        choices=sorted(trackers.TRACKERS),
        help="also log every trial's reports to TensorBoard, Weights & Biases or MLflow "
        "(docs/trackers.md)",
    )


def _add_dry_run_flags(p: argparse.ArgumentParser) -> None:
    """``--dry-run`` and its ``--estimate``: the grid printed, and timed, before Ray starts."""
    p.add_argument(
        "--dry-run", action="store_true", help="print the grid and exit before Ray starts"
    )
    p.add_argument(
        "--estimate",
        nargs="?",
        const=TIMED_STEPS,
        type=int,
        metavar="STEPS",
        help=f"with --dry-run: time STEPS training steps (default and least {TIMED_STEPS}, after "
        "warm-up) "
        "and one evaluation of each distinct trial on this machine, and print the sweep's "
        "projected wall time (minutes per distinct trial; a heavy grid takes a few minutes)",
    )


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
    problem = _estimate_problem(args)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    if args.resume:
        return _resume(args, prog, given_flags(parser, argv), default, publish)
    args.preset = args.preset or default
    try:
        trials, _ = resolve(args, presets, dataset)
        storage = storage_root(args.storage_path)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = args.name or f"{dataset}_rf-{'smoke' if args.smoke_test else args.preset}-{stamp}"
        k = pack_size(args.pack)
        if args.dry_run:
            return _dry_run(args, trials, k)
        flags = defining_flags(args, default)
        _check_before_ray(args, trials, storage)
    # RuntimeError: DataError and friends
    except (SweepError, SpaceError, ConfigError, DesignError, RuntimeError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return _run(args, prog, trials, k, (storage, name), flags, publish)


def _estimate_problem(args: argparse.Namespace) -> str | None:
    """Why ``--estimate`` cannot apply as given (without --dry-run, too few steps), or None."""
    if args.estimate is not None and not args.dry_run:
        drop = " (and drop --resume)" if args.resume else ""
        return f"--estimate times the grid without running it: add --dry-run{drop}"
    if args.estimate is not None and args.estimate < TIMED_STEPS:
        return (
            f"--estimate {args.estimate}: time at least {TIMED_STEPS} steps "
            f"(e.g. --estimate {TIMED_STEPS})"
        )
    return None


def _dry_run(args: argparse.Namespace, trials: list[Trial], k: int | None) -> int:
    """``--dry-run``: print the packed grid, and with ``--estimate`` time it on this machine."""
    import torch

    size = k or auto_pack(trials, torch.cuda.is_available())
    how = f"--pack {k}" if k else f"--pack auto: {size} on this machine"
    packs = make_packs(trials, size)
    if args.estimate is not None:
        check_data(trials[0].config)  # before the grid: a missing dataset is one line
    print_trials(packs, how, torch.cuda.is_available())
    if args.estimate is not None:
        warning = busy()
        if warning:
            print(warning, file=sys.stderr)
        device = "cuda" if torch.cuda.is_available() else f"cpu, {torch.get_num_threads()} threads"
        print_estimate(estimate(packs, steps=args.estimate), device, args.estimate)
    return 0


def _check_before_ray(args: argparse.Namespace, trials: list[Trial], storage: str) -> None:
    """What must hold before Ray starts: the tracker installed, the data there, the address
    answering and the storage writable (first the data: a sweep that cannot start leaves no
    folder)."""
    if trackers.missing(args.tracker):
        raise SweepError(trackers.missing(args.tracker))
    check_data(trials[0].config)
    check_address(args.address)
    check_storage(storage)


def _run(
    args: argparse.Namespace,
    prog: str,
    trials: list[Trial],
    k: int | None,
    where: tuple[str, str],
    flags: dict,
    publish: Publish | None,
) -> int:
    """Start Ray, pack the valid space and run the sweep as experiment ``name`` in ``storage``
    (``where``), unless an experiment is there already."""
    from ganrf.sweep.raytune import tune as gtune  # Ray starts only now, with a valid space

    storage, name = where
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
        tracker=args.tracker,
    )
    return finish(exp_path, prog, publish)


def _ray_started(args: argparse.Namespace, prog: str) -> bool:
    """Join ``--address`` or start the embedded Ray; False after one sentence on stderr."""
    from ganrf.sweep.raytune import tune as gtune

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
    storage = storage_root(args.storage_path)
    exp_path = f"{storage}/{args.name}"

    from ganrf.sweep.raytune import tune as gtune

    if not gtune.experiment_exists(exp_path):
        print(
            f"{prog}: error: no experiment {args.name!r} to resume in {storage}; "
            f"`ganrf ls {args.storage_path}` lists the ones there",
            file=sys.stderr,
        )
        return 2
    try:
        recorded = gtune.read_sweep(exp_path).get("flags")
        problem = check_resume_flags(args, given, recorded, default)
        problem = problem or trackers.missing((recorded or {}).get("tracker"))
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
