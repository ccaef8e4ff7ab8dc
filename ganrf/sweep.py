"""The command line every sweep script shares: presets, the search space, validation, and the
hand-off to Ray Tune (``ganrf.tune``, imported only once the space is valid).

A sweep script defines ``PRESETS`` (base training config and default search space per preset)
and calls :func:`main`. Everything is validated before Ray starts: unknown names, infeasible
designs, empty grids, bad sizes, an unwritable storage path, an existing experiment without
``--resume``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ganrf.config import LOSSES, ConfigError, TrainConfig
from ganrf.designs import FAMILIES, NORMS, DesignError
from ganrf.experiments import EXPERIMENTS, Space, SpaceError, build_grid
from ganrf.train_cli import parse_set


@dataclass(frozen=True)
class Preset:
    base: dict[str, Any]  # TrainConfig keys shared by every trial
    space: Space
    about: str  # one line for --help


def rgb_presets(
    *,
    dataset: str,
    image_size: int,
    defaults: dict[str, dict[str, tuple]],
    data: dict[str, Any] | None = None,
    smoke: dict[str, Any],
    full: dict[str, Any],
    full_about: str,
) -> dict[str, Preset]:
    """The presets of an RGB sweep with the DCGAN generator (sweeps/celeba_rf.py,
    sweeps/imagenet_rf.py): ``smoke``, synthetic RGB images of the dataset's size, tiny models
    and no Inception metrics, seconds on a CPU; ``full``, every experiment at 3 seeds with
    DCGAN's Adam (2e-4, beta1 0.5) at batch 128.

    ``defaults`` are the per-experiment rf/depth/head grids for this image size; ``data`` adds
    data keys to both presets; ``smoke`` and ``full`` add (or override) each preset's keys.
    """
    rgb = {
        "data.dataset": dataset,
        "data.image_size": image_size,
        "data.channels": 3,
        "g.kind": "dcgan",
        **(data or {}),
    }

    def space(**kw: Any) -> Space:
        return Space(image_size=image_size, in_channels=3, defaults=defaults, **kw)

    return {
        "smoke": Preset(
            about=f"seconds on a CPU: synthetic {image_size}x{image_size} RGB images, tiny models, "
            "no Inception metrics",
            base={
                **rgb,
                "data.dataset": "synthetic",
                **smoke,
                "schedule.batch_size": 16,
                "schedule.steps": 4,
                "schedule.eval_every_steps": 2,
                "eval.metrics": False,
            },
            space=space(experiments=("onelayer",), rfs=(1, 5)),
        ),
        "full": Preset(
            about=full_about,
            base={
                **rgb,
                "schedule.batch_size": 128,
                **full,
                "optim.lr_g": 2e-4,
                "optim.lr_d": 2e-4,
                "optim.beta1": 0.5,
                "eval.samples": 10_000,
            },
            space=space(experiments=EXPERIMENTS, seeds=3),
        ),
    }


# Keys every grid point sets itself, and the flag that controls each.
GRID_KEYS = {
    "d.layers": "--experiments/--rfs/--depths",
    "d.channels": "--experiments (same_rf matches capacity)",
    "d.head": "--heads",
    "d.norm": "--norm",
    "d.dropout": "--dropout",
    "seed": "--seeds",
}


def train_keys(config: dict[str, Any]) -> dict[str, Any]:
    """The training-config keys of a sweep config (``meta.*`` keys are for the sweep itself)."""
    return {k: v for k, v in config.items() if not k.startswith("meta.")}


class SweepError(ValueError):
    """Bad input to a sweep: one sentence, exit status 2, nothing on disk touched."""


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SweepError(f"{flag} takes comma-separated whole numbers, got {text!r}") from None
    if not values:
        raise SweepError(f"{flag} is empty")
    return values


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
        "downsampling) or dilated",
    )
    p.add_argument("--dropout", type=float, help="discriminator dropout (default 0, as the notes)")
    p.add_argument("--seeds", type=int, help="seeds per grid point")
    p.add_argument("--loss", choices=LOSSES, help="GAN loss for every trial")
    p.add_argument("--epochs", type=int, help="override the preset's epochs")
    p.add_argument("--data-root", default="data", help="dataset folder (MNIST downloads here)")
    p.add_argument(
        "--storage-path", default="runs", help="where experiments are kept (default runs/)"
    )
    p.add_argument("--name", help="experiment name (default: <dataset>_rf-<preset>-<time>)")
    p.add_argument(
        "--resume", action="store_true", help="continue the interrupted experiment --name"
    )
    p.add_argument(
        "--address", help="join an existing Ray cluster (e.g. auto) instead of starting one"
    )
    p.add_argument("--max-concurrent", type=int, help="trials running at once")
    p.add_argument("--cpus-per-trial", type=int, default=1)
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
) -> tuple[dict, list[dict], Preset]:
    """Base config and validated grid points; raises SweepError/SpaceError/ConfigError."""
    preset = presets["smoke" if args.smoke_test else args.preset]
    base = dict(preset.base)
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
    space = preset.space
    if args.experiments:
        space = replace(
            space, experiments=tuple(e.strip() for e in args.experiments.split(",") if e.strip())
        )
    if args.rfs:
        space = replace(space, rfs=_ints(args.rfs, "--rfs"))
    if args.depths:
        space = replace(space, depths=_ints(args.depths, "--depths"))
    if args.heads:
        space = replace(space, heads=tuple(h.strip() for h in args.heads.split(",") if h.strip()))
    if args.seeds is not None:
        space = replace(space, seeds=args.seeds)
    if args.norm:
        space = replace(space, norm=args.norm)
    if args.family:
        space = replace(space, family=args.family)
    if args.dropout is not None:
        space = replace(space, dropout=args.dropout)
    if args.trial_timeout_s is not None:
        if args.trial_timeout_s <= 0:
            raise SweepError(f"--trial-timeout-s must be positive, got {args.trial_timeout_s}")
        base["meta.trial_timeout_s"] = args.trial_timeout_s
    for flag in ("max_concurrent", "cpus_per_trial", "max_failures"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "max_failures" else 1):
            raise SweepError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.gpus_per_trial is not None and not 0 <= args.gpus_per_trial <= 8:
        raise SweepError(f"--gpus-per-trial must be between 0 and 8, got {args.gpus_per_trial}")
    points = build_grid(space)
    for point in points:  # every trial's config is checked before Ray starts
        TrainConfig.from_dict(train_keys({**base, **point}))
    return base, points, preset


def storage_root(path: str) -> str:
    """The storage path as Tune should get it: a URI as given, a local folder made absolute."""
    from analysis.load import is_uri

    return path.rstrip("/") if is_uri(path) else str(Path(path).resolve())


def _check_storage(root: str) -> None:
    """Fail now, not after the first trial, when the storage path cannot be written."""
    from analysis.load import filesystem

    probe = f".ganrf-write-test-{os.getpid()}"
    try:
        fs, inner = filesystem(root)
        fs.create_dir(inner, recursive=True)
        with fs.open_output_stream(f"{inner}/{probe}") as f:
            f.write(b"")
        fs.delete_file(f"{inner}/{probe}")
    except Exception as e:  # OSError, pyarrow's ArrowInvalid / ArrowException, credentials
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0][:120]
        raise SweepError(
            f"cannot write to storage path {root} ({reason}); choose another --storage-path"
        ) from None


def _check_data(base: dict[str, Any]) -> None:
    """Fail now, not inside every trial, when the dataset cannot be had (data.py's own rules)."""
    from ganrf.data import check_data

    cfg = TrainConfig.from_dict(train_keys(base))
    check_data(cfg.data, test_split=cfg.eval.metrics)


def main(
    argv: list[str] | None,
    *,
    prog: str,
    doc: str,
    dataset: str,
    presets: dict[str, Preset],
    default: str = "laptop",
) -> int:
    parser = build_parser(prog, doc, presets, default)
    args = parser.parse_args(argv)
    if args.resume:
        return _resume(args, prog, given_flags(parser, argv), default)
    args.preset = args.preset or default
    try:
        base, points, _ = resolve(args, presets, dataset)
        storage = storage_root(args.storage_path)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = args.name or f"{dataset}_rf-{'smoke' if args.smoke_test else args.preset}-{stamp}"
        if args.dry_run:
            for p in points:
                print(" ".join(f"{k}={v}" for k, v in p.items()))
            print(f"{len(points)} trials; base config: {base}", file=sys.stderr)
            return 0
        flags = defining_flags(args, default)
        _check_storage(storage)
        _check_data(base)
    except (SweepError, SpaceError, ConfigError, DesignError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # DataError and friends
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2

    from ganrf import tune as gtune  # Ray starts only now, with a valid space

    exp_path = f"{storage}/{name}"
    if gtune.experiment_exists(exp_path):
        print(
            f"{prog}: error: experiment {name!r} already exists in {storage}; continue it with "
            f"--resume --name {name}, or choose another --name",
            file=sys.stderr,
        )
        return 2
    gtune.init_ray(args.address, args.dashboard)
    print(f"{len(points)} trials -> {exp_path}", file=sys.stderr)
    gtune.run_sweep(
        base=base,
        points=points,
        storage_path=storage,
        name=name,
        max_concurrent=args.max_concurrent,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        max_failures=args.max_failures,
        flags=flags,
    )
    return finish(exp_path, prog)


# Flags that define an experiment, recorded in sweep.json when it starts (normalised, see
# defining_flags); --resume continues it as recorded and accepts these only with the recorded
# values. --smoke-test is recorded as --preset smoke.
DEFINING = (
    "preset",
    "experiments",
    "rfs",
    "depths",
    "heads",
    "seeds",
    "norm",
    "family",
    "dropout",
    "loss",
    "epochs",
    "set",
    "data_root",
    "trial_timeout_s",
    "max_concurrent",
    "cpus_per_trial",
    "gpus_per_trial",
    "max_failures",
)


def defining_flags(args: argparse.Namespace, default: str) -> dict[str, Any]:
    """The defining flags of ``args`` (every one of :data:`DEFINING`), normalised so that
    equal meanings compare equal: ``--smoke-test`` is ``--preset smoke``, no --preset is the
    script's default, lists are split and stripped (``1, 5`` is ``1,5``), --set is a dict
    (a later item wins), --data-root an absolute path; a flag not given is None.

    Raises:
        SweepError: a list flag that is not one.
    """
    flags = {f: _normalise(f, getattr(args, f)) for f in DEFINING}
    flags["preset"] = "smoke" if args.smoke_test else (args.preset or default)
    return flags


def _normalise(flag: str, value: Any) -> Any:
    if value is None:
        return None
    if flag in ("experiments", "heads"):
        return [v.strip() for v in value.split(",") if v.strip()]
    if flag in ("rfs", "depths"):
        return list(_ints(value, f"--{flag}"))
    if flag == "set":
        try:
            return parse_set(value)
        except ValueError as e:
            raise SweepError(str(e)) from None
    if flag == "data_root":
        return os.path.abspath(value)
    return value


def _shown(flag: str, value: Any) -> str:
    """A normalised flag value as it would be typed, e.g. ``--rfs 1,5``."""
    name = f"--{flag.replace('_', '-')}"
    if value is None:
        return f"no {name}"
    if flag == "set":
        return " ".join(f"--set {k}={v}" for k, v in value.items()) or "no --set"
    if isinstance(value, list):
        return f"{name} {','.join(str(v) for v in value)}"
    return f"{name} {value}"


def given_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations of the flags ``argv`` gives, defaults or not (argparse applies no
    default to an attribute the namespace already has)."""
    blank = argparse.Namespace(**{a.dest: None for a in parser._actions if a.dest != "help"})
    return {k for k, v in vars(parser.parse_args(argv, blank)).items() if v is not None}


def _check_resume_flags(
    args: argparse.Namespace, given: set[str], recorded: dict[str, Any] | None, default: str
) -> str | None:
    """Why the defining flags given with --resume cannot be honoured, or None when they all
    equal the recorded ones (``recorded`` None: a sweep from before flags were recorded)."""
    if "smoke_test" in given:
        given = given | {"preset"}
    asked = [f for f in DEFINING if f in given]
    if not asked:
        return None
    if recorded is None:
        names = ", ".join(f"--{f.replace('_', '-')}" for f in asked)
        return (
            f"this experiment did not record the flags it started with, so --resume continues "
            f"it as it was started; drop {names}"
        )
    now = defining_flags(args, default)
    differ = []
    for f in asked:
        if now[f] == recorded.get(f):
            continue
        said = "--smoke-test" if f == "preset" and args.smoke_test else _shown(f, now[f])
        was = recorded.get(f)
        differ.append(
            f"{said} differs from the recorded {_shown(f, was)}"
            if was is not None
            else f"{said} was not given when the sweep started"
        )
    if not differ:
        return None
    return f"{', '.join(differ)}; drop {'it' if len(differ) == 1 else 'them'} or start a new --name"


def _resume(args: argparse.Namespace, prog: str, given: set[str], default: str) -> int:
    """Continue an interrupted sweep exactly as it was started (``Tuner.restore``)."""
    if not args.name:
        print(f"{prog}: error: --resume needs --name, the experiment to continue", file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"{prog}: error: --dry-run does not apply to --resume; drop it", file=sys.stderr)
        return 2
    storage = storage_root(args.storage_path)
    exp_path = f"{storage}/{args.name}"

    from ganrf import tune as gtune

    if not gtune.experiment_exists(exp_path):
        print(f"{prog}: error: no experiment {args.name!r} to resume in {storage}", file=sys.stderr)
        return 2
    try:
        problem = _check_resume_flags(args, given, gtune.read_sweep(exp_path).get("flags"), default)
    except (gtune.ResumeError, SweepError) as e:
        problem = str(e)
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
    gtune.init_ray(args.address, args.dashboard)
    print(f"resuming {exp_path}", file=sys.stderr)
    try:
        gtune.resume_sweep(exp_path)
    except gtune.ResumeError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    return finish(exp_path, prog)


# Trial statuses that are results: a diverged trial ended by the training's own rule, and its
# page shows it. A sweep none of whose trials reached one of these failed (exit status 1).
RESULT_STATUSES = ("finished", "diverged")
SHOWN_LOGS = 3  # error.txt paths printed when trials failed


def finish(exp_path: str, prog: str = "sweep") -> int:
    """Write results.csv and the analysis page into the experiment folder; print their paths
    and how many trials finished, diverged, errored, timed out or are unfinished.

    For an object store, the small files are fetched to a temporary folder, analysed there and
    the three results uploaded beside the trials.

    Returns:
        0 when at least one trial finished (or diverged), else 1, with one sentence on stderr
        saying how the trials ended and where their error logs are.
    """
    import tempfile

    from analysis.load import (
        TRIAL_STATUSES,
        fetch_experiment,
        final_rows,
        is_uri,
        load_experiment,
        upload,
        write_results_csv,
    )
    from analysis.report import write_page

    local = Path(exp_path)
    if is_uri(exp_path):
        local = fetch_experiment(exp_path, tempfile.mkdtemp(prefix="ganrf-results-"))
    frame = load_experiment(local)
    csv = write_results_csv(frame, local / "results.csv")
    page = write_page(frame, local / "report.html")  # the frame read once serves both
    if is_uri(exp_path):
        for f in (csv, page, page.with_suffix(".md")):
            upload(f, exp_path)
        csv, page = f"{exp_path}/results.csv", f"{exp_path}/report.html"
    final = final_rows(frame)
    counts = final["trial_status"].value_counts().to_dict()
    names = {"running": "unfinished", "timed_out": "timed out"}
    summary = ", ".join(f"{counts[s]} {names.get(s, s)}" for s in TRIAL_STATUSES if counts.get(s))
    failed = final[~final["trial_status"].isin(RESULT_STATUSES)]
    logs = [
        f"{exp_path}/{t}/error.txt" for t in failed["trial"] if (local / t / "error.txt").exists()
    ]
    where = ""
    if logs:
        more = f" and {len(logs) - SHOWN_LOGS} more" if len(logs) > SHOWN_LOGS else ""
        where = f"; their logs: {', '.join(logs[:SHOWN_LOGS])}{more}"
    print(f"results: {csv}\nreport:  {page}\ntrials:  {summary}{where}")
    if final["trial_status"].isin(RESULT_STATUSES).any():
        return 0
    unfinished = counts.get("running", 0)
    name = exp_path.rstrip("/").rsplit("/", 1)[-1]
    hint = f"; continue it with --resume --name {name}" if unfinished else ""
    print(
        f"{prog}: error: no trial finished ({summary}){where}{hint}",
        file=sys.stderr,
    )
    return 1
