"""Train the recognisability judges (``ganrf.metrics.judge``) and set their real-data thresholds.

    python scripts/train_judges.py --data-root DATA

Three JudgeNets, seeds 1, 2, 3, each trained on the same real training digits (perm[30000:55000]
of the training split under ``SPLIT_SEED``), binarised (``judge.binarise``), no augmentation and
no calibration case. On the
held-out digits perm[55000:] each judge's confidence floor and Mahalanobis radius are set to the
values that keep ``REAL_QUANTILE`` of them. Writes ganrf/metrics/weights/judges.pt and
judges.json (sha256, test accuracies, thresholds). Fails if a judge's test accuracy < 98.5%.
"""

from __future__ import annotations

import argparse
import io
import json
import time

import torch
import torch.nn.functional as F

from ganrf.data import load_mnist, to_float
from ganrf.metrics import judge as J


def train_one(seed: int, x: torch.Tensor, y: torch.Tensor, epochs: int) -> J.JudgeNet:
    torch.manual_seed(seed)
    net = J.JudgeNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = 128
    steps = epochs * (len(x) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(perm) - batch + 1, batch):
            idx = perm[i : i + batch]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"  seed {seed}: epoch {epoch + 1} of {epochs}", flush=True)
    return net.eval().requires_grad_(False)


@torch.no_grad()
def features(net: J.JudgeNet, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.body(b) for b in x.split(1000)])


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", default="data")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    xtr, ytr = load_mnist(args.data_root, train=True, download=False)
    xte, yte = load_mnist(args.data_root, train=False, download=False)
    perm = J.split_permutation(len(xtr))
    fit, held = perm[J.TRAIN_DIGITS], perm[J.THRESHOLD_DIGITS]
    x, y = J.binarise(to_float(xtr[fit])), ytr[fit]  # judges see binarised ink only
    xh, xt = to_float(xtr[held]), to_float(xte)
    states, card = [], []
    t0 = time.time()
    for seed in J.SEEDS:
        net = train_one(seed, x, y, args.epochs)
        acc = (features(net, J.binarise(xt)) @ net.classify.weight.T + net.classify.bias).argmax(1)
        acc = (acc == yte).float().mean().item()
        if acc < 0.985:
            raise SystemExit(f"judge seed {seed}: test accuracy {acc:.4f} < 0.985; not writing")
        means, precision = J.class_statistics(features(net, x), y)
        judge = J.Judge(net, means, precision, float("inf"), 0.0)
        _, conf, dist = judge(xh)
        q = J.REAL_QUANTILE
        radius, min_conf = dist.quantile(q).item(), conf.quantile(1 - q).item()
        states.append(
            {
                "net": net.state_dict(),
                "means": means,
                "precision": precision,
                "radius": torch.tensor(radius),
                "min_confidence": torch.tensor(min_conf),
            }
        )
        card.append(
            {
                "seed": seed,
                "mnist_test_accuracy": round(acc, 4),
                "radius": round(radius, 4),
                "min_confidence": round(min_conf, 4),
            }
        )
        print(
            f"judge seed {seed}: test accuracy {acc:.4f}, radius {radius:.3f}, "
            f"confidence floor {min_conf:.4f} ({time.time() - t0:.0f} s)",
            flush=True,
        )
    buf = io.BytesIO()
    torch.save({"judges": states}, buf)
    J.WEIGHTS.write_bytes(buf.getvalue())
    J.CARD.write_text(
        json.dumps(
            {
                "file": J.WEIGHTS.name,
                "sha256": J.sha256(J.WEIGHTS),
                "judges": card,
                "train_digits": "training split perm[30000:55000] (SPLIT_SEED 2016)",
                "threshold_digits": "training split perm[55000:60000]",
                "real_quantile": J.REAL_QUANTILE,
                "epochs": args.epochs,
                "trained_with": f"torch {torch.__version__}, scripts/train_judges.py",
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {J.WEIGHTS} ({J.WEIGHTS.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
