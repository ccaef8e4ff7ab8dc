"""The ganrf command line: receptive fields, designs, training, cluster checks, experiments.

Example: ganrf rf "conv5s2,conv5s2" --input 28
"""

from __future__ import annotations

import argparse
import sys

from ganrf.design.designs import FAMILIES, HEADS, DesignError, param_count
from ganrf.design.resnet import RES_HELP, ResidualDesign, is_residual
from ganrf.design.rf import SPEC_HELP, RFError, parse_specs, receptive_field
from ganrf.design.search import solve
from ganrf.tools.parser import OneLineParser


def _cmd_rf(args: argparse.Namespace) -> int:
    if is_residual(args.layers):  # residual blocks: their main path (ganrf.design.resnet)
        head = {"head": args.head} if args.head else {}
        d = ResidualDesign.from_spec(
            args.layers, image_size=args.input, in_channels=args.channels, **head
        )
        print(d.report.table())
        _note_fit(d.rf, args.input)
        return 0
    specs, named = parse_specs(args.layers)  # once: the specs, not the text, go on
    if named and args.head and named != args.head:
        raise RFError(
            f"{args.layers!r} ends in a {named} head but --head asks for {args.head}; "
            "give the head once"
        )
    shape = (args.channels, args.input, args.input)
    rep = receptive_field(specs, shape, head=args.head or named)
    print(rep.table())
    _note_fit(max(rep.size), args.input)
    return 0


def _note_fit(rf: int, size: int) -> None:
    """One rule for every family: ``ganrf rf`` reports any stack (SNGAN's CIFAR D has rf 48 on
    32 px) and says when its rf exceeds the input; ``ganrf designs``, ``ganrf train`` and the
    sweeps refuse such a D."""
    if rf > size:
        print(
            f"note: rf {rf} is larger than the {size}px input: each unit of the last map sees "
            "the whole image and padding beyond it (ganrf designs, ganrf train and the sweeps "
            f"refuse such a D; the largest useful rf is {size})"
        )


def _cmd_designs(args: argparse.Namespace) -> int:
    designs = solve(
        args.rf,
        args.depth,
        family=args.family,
        image_size=args.input,
        in_channels=args.channels,
        head=args.head,
        exhaustive=args.all,
    )
    for d in designs:
        print(
            f"{d.spec_string:<32} rf {d.rf:<3} decision rf {d.decision_rf:<3} "
            f"channels {','.join(map(str, d.channels)):<16} params {param_count(d)}"
        )
    return 0


def _cmd_cluster_check(args: argparse.Namespace) -> int:
    from ganrf.sweep.raytune.cluster import (
        check_cluster_config,
        missing_mounts,
        mount_hint,
    )  # Ray, lazily

    config = check_cluster_config(args.config)
    types = ", ".join(
        f"{name} ({t['node_config'].get('InstanceType', '?')}, "
        f"{t.get('min_workers', 0)}-{t.get('max_workers', config['max_workers'])})"
        for name, t in config["available_node_types"].items()
    )
    print(f"{args.config}: valid for Ray {_ray_version()}; node types: {types}")
    missing = missing_mounts(config)
    if missing:
        print(
            f"ganrf cluster-check: error: `ray up` would stop here: file_mounts copies "
            f"{missing[0]} to every node and it does not exist on this machine; "
            f"{mount_hint(missing[0])}",
            file=sys.stderr,
        )
        return 2
    return 0


def _cmd_ls(args: argparse.Namespace) -> int:
    from ganrf.storage import StorageError
    from ganrf.tools.listing import format_table, list_experiments, resume_hints

    try:
        experiments = list_experiments(args.storage)
    except (FileNotFoundError, StorageError) as e:
        print(f"ganrf ls: error: {e}", file=sys.stderr)
        return 2
    if not experiments:
        print(f"no experiments in {args.storage}")
        return 0
    print(format_table(experiments))
    for line in resume_hints(experiments, args.storage):
        print(line)
    return 0


def _ray_version() -> str:
    from importlib.metadata import version  # the version without importing Ray

    return version("ray")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="ganrf",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    _add_rf(sub)
    _add_designs(sub)
    _add_cluster_check(sub)
    _add_ls(sub)
    from ganrf.tools import score as score_cli
    from ganrf.tools import train as train_cli  # the training command lives beside its loop

    train_cli.add_parser(sub)
    score_cli.add_parser(sub)
    return p


def _add_rf(sub) -> None:
    """``ganrf rf``: the notes-style rf table of a layer stack."""
    rf = sub.add_parser(
        "rf",
        help="print the notes-style rf table of a layer stack",
        description=f"Print every layer's feature-map size and rf. {SPEC_HELP}; {RES_HELP}.",
    )
    rf.add_argument("layers", help='e.g. "conv5s2,conv5s2" (the notes\' discriminator, rf 13)')
    rf.add_argument("--input", type=int, default=28, help="input height = width (default 28)")
    rf.add_argument("--channels", type=int, default=1, help="input channels (default 1)")
    rf.add_argument(
        "--head",
        choices=HEADS,
        default=None,
        help="image: dense over the flattened map; patch: one decision per location",
    )
    rf.set_defaults(func=_cmd_rf)


def _add_designs(sub) -> None:
    """``ganrf designs``: the stacks that hit an rf exactly at a depth."""
    ds = sub.add_parser(
        "designs",
        help="list discriminator designs that hit an rf exactly",
        description="List the discriminator layer stacks of a given depth whose theoretical rf "
        "is exactly --rf on an --input x --input image: each with its layer string (for ganrf "
        "rf and ganrf train --layers), rf, decision rf, channels and parameter count. An rf larger "
        "than the input, or a depth the family cannot reach, is refused with the nearest one "
        "that works.",
        epilog="example: ganrf designs --rf 13 --depth 2 --family stride2",
    )
    ds.add_argument("--rf", type=int, required=True, help="the target rf, in input pixels")
    ds.add_argument(
        "--depth", type=int, required=True, help="conv layers in the stack (resnet: blocks)"
    )
    ds.add_argument(
        "--family",
        choices=FAMILIES,
        default="stride1",
        help="stride1: stride-1 stacks (default); stride2: the notes' downsampling; dilated; "
        "resnet: SNGAN-style residual blocks",
    )
    ds.add_argument("--input", type=int, default=28, help="input height = width (default 28)")
    ds.add_argument("--channels", type=int, default=1, help="input channels (default 1)")
    ds.add_argument(
        "--head",
        choices=HEADS,
        default="image",
        help="image: dense over the flattened map (default); patch: one decision per location",
    )
    ds.add_argument(
        "--all", action="store_true", help="every kernel split, not only the most balanced"
    )
    ds.set_defaults(func=_cmd_designs)


def _add_cluster_check(sub) -> None:
    """``ganrf cluster-check``: a Ray cluster YAML checked offline."""
    cc = sub.add_parser(
        "cluster-check",
        help="validate a Ray cluster YAML offline, as `ray up` would",
        description=(
            "Check a Ray cluster launcher YAML without starting anything or contacting a cloud: "
            "Ray's own validation, as `ray up` runs it (its schema: typo'd or misplaced keys, "
            "wrong types; head_node_type among available_node_types), each node type's "
            "min_workers <= max_workers, and the security promises (only SSH open in the "
            "security group, Ray started with RAY_AUTH_MODE=token, the dashboard on "
            "127.0.0.1). Prints the node types and exits 0 when the file passes; otherwise "
            "prints the first problem in one sentence and exits 2."
        ),
        epilog="example: ganrf cluster-check cluster/gpu.yaml",
    )
    cc.add_argument("config", help="the cluster YAML to check, e.g. cluster/gpu.yaml")
    cc.set_defaults(func=_cmd_cluster_check)


def _add_ls(sub) -> None:
    """``ganrf ls``: the experiments in a storage folder."""
    ls = sub.add_parser(
        "ls",
        help="list the experiments in a storage folder",
        description="List the experiments in a storage folder (a local folder, file://, s3:// "
        "or gs://): preset, trial counts by status (running: still running or interrupted; "
        "not_started: the sweep's trials with no folder yet), when each started, and its page; "
        "then, for each sweep with trials left, the command that resumes it.",
    )
    ls.add_argument("storage", nargs="?", default="runs", help="default runs/ (as the sweeps)")
    ls.set_defaults(func=_cmd_ls)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RFError, DesignError, ValueError, RuntimeError) as e:
        print(f"ganrf {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
