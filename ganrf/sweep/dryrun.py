"""``--dry-run``: the grid a sweep would run, printed before Ray starts."""

from __future__ import annotations

import sys

from ganrf.config import not_in_force
from ganrf.design.designs import param_count
from ganrf.sweep.trial import Trial, pack_name


def print_trials(packs: list[list[Trial]], how: str, cuda: bool = True) -> None:
    """``--dry-run``: one line per trial (what it is and the keys that vary) under its pack,
    then the config every trial shares, on stderr: only the keys in force, so not an epoch
    count a step count replaces, nor a CUDA-only key on a machine without CUDA (``cuda``)."""
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
    hidden = not_in_force(shared, cuda)
    print("every trial shares:", file=sys.stderr)
    for k, v in shared.items():
        if k not in hidden:
            print(f"  {k}={v}", file=sys.stderr)
    if hidden:
        print(f"  (not in force, so not shown: {', '.join(hidden)})", file=sys.stderr)
