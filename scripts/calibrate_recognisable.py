"""Judge issue 20's calibration cases and pick ``metric/recognisable``'s share cut from them.

    python scripts/calibrate_recognisable.py --data-root DATA [--samples 2000,10000]

For each n and each case (``ganrf.metrics.cases``: seven recognisable, seven no-number) prints
the share of samples the judges call recognisable digits, the digit classes holding >= 2.5% of
those, and the set-level verdict under the committed ``SHARE_MIN``. Then the margins:

* share: the worst recognisable case's share against the best share of a no-number case that
  meets the class rule (>= MIN_CLASSES classes); the cut is their midpoint (``SHARE_MIN``);
* classes: the recognisable cases' fewest classes against the most classes of a no-number case
  whose share passes the cut (one digit repeated).

Exits 1 when a case is judged against its listing or the committed cut is not the midpoint.
Cases are made from training digits perm[:20000] (never seen by a judge) and the test split; a
case at the smaller n is the first n images of the case at the largest n.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ganrf.data import load_mnist
from ganrf.metrics import cases
from ganrf.metrics import judge as J


def real_digits(root: str) -> tuple[np.ndarray, np.ndarray]:
    """Training digits perm[:CASE_DIGITS] and the (permuted) test digits, ``(n, 28, 28)`` in
    [0, 1]."""
    train, _ = load_mnist(root, train=True, download=False)
    test, _ = load_mnist(root, train=False, download=False)
    perm = J.split_permutation(len(train))[: cases.CASE_DIGITS]
    test_perm = torch.randperm(len(test), generator=torch.Generator().manual_seed(J.SPLIT_SEED))
    return (
        (train[perm, 0].numpy() / 255.0).astype(np.float32),
        (test[test_perm, 0].numpy() / 255.0).astype(np.float32),
    )


def judge_case(images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample verdicts and classes (``judge_samples``) of images ``(n, 28, 28)`` in [0, 1]."""
    return J.judge_samples(torch.from_numpy(images)[:, None] * 2 - 1)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", default="data")
    p.add_argument("--samples", default="2000,10000", help="comma-separated n")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    train, test = real_digits(args.data_root)
    ns = [int(s) for s in args.samples.split(",")]
    rows: dict[tuple[str, int], dict] = {}
    t0 = time.time()
    for name in cases.EXPECTED:
        # the smaller n is the first n images of the largest: verdicts are per sample
        ok, cls = judge_case(cases.make_case(name, train, test, max(ns)))
        for n in ns:
            rows[name, n] = J.set_verdict(ok[:n], cls[:n])
    header = " | ".join(f"share n={n:,} | classes n={n:,}" for n in ns)
    print(f"| case | listed | {header} | verdict |")
    print("| --- | --- |" + " ---: | ---: |" * len(ns) + " --- |")
    wrong = []
    for name, expected in cases.EXPECTED.items():
        cells = " | ".join(
            f"{rows[name, n]['metric/recognisable_share']:.3f} | "
            f"{rows[name, n]['metric/recognisable_classes']}"
            for n in ns
        )
        verdicts = {rows[name, n]["metric/recognisable"] for n in ns}
        if verdicts != {expected}:
            wrong.append(name)
        shown = "/".join(str(rows[name, n]["metric/recognisable"]) for n in ns)
        print(f"| {name} | {'recognisable' if expected else 'no number'} | {cells} | {shown} |")
    good = {k: v for k, v in rows.items() if cases.EXPECTED[k[0]]}
    bad = {k: v for k, v in rows.items() if not cases.EXPECTED[k[0]]}
    low = min(good.items(), key=lambda kv: kv[1]["metric/recognisable_share"])
    by_share = {k: v for k, v in bad.items() if v["metric/recognisable_classes"] >= J.MIN_CLASSES}
    high = max(by_share.items(), key=lambda kv: kv[1]["metric/recognisable_share"])
    lo, hi = low[1]["metric/recognisable_share"], high[1]["metric/recognisable_share"]
    mid = round((lo + hi) / 2, 2)
    print(
        f"\nshare margin: worst recognisable {lo:.3f} ({low[0][0]}, n={low[0][1]:,}) - best "
        f"no-number with >= {J.MIN_CLASSES} classes {hi:.3f} ({high[0][0]}, n={high[0][1]:,}) "
        f"= {lo - hi:.3f}; midpoint {mid:.2f} (committed SHARE_MIN {J.SHARE_MIN})"
    )
    few = min(v["metric/recognisable_classes"] for v in good.values())
    passing = [(k, v) for k, v in bad.items() if v["metric/recognisable_share"] >= J.SHARE_MIN]
    if passing:
        most = max(passing, key=lambda kv: kv[1]["metric/recognisable_classes"])
        print(
            f"class margin: fewest classes of a recognisable case {few} - most classes of a "
            f"no-number case passing the share cut {most[1]['metric/recognisable_classes']} "
            f"({most[0][0]}, n={most[0][1]:,}); rule >= {J.MIN_CLASSES} classes each >= "
            f"{J.CLASS_MIN_SHARE:.1%} of the recognised samples"
        )
    print(f"({time.time() - t0:.0f} s)")
    if lo <= hi:
        print("NO MARGIN: a no-number case shares at least as much as a recognisable one")
        return 1
    if abs(mid - J.SHARE_MIN) > 1e-9:
        print(f"SHARE_MIN is {J.SHARE_MIN}, the cases' midpoint is {mid:.2f}: update it")
        return 1
    print("every case as listed" if not wrong else f"MISJUDGED: {', '.join(wrong)}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
